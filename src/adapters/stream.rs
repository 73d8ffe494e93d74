//! Upload bodies as the runtime's own chunks, and R2 writes in parts: what
//! lets a file go from the client to R2 with no whole copy in memory. A
//! chunk stays a JS `Uint8Array` (only the bytes something must judge, hash
//! or parse are copied into wasm, a window at a time); file bytes are copied
//! once, by the runtime, into one reused part buffer of `PART` bytes, which
//! goes to R2 as a multipart upload's part when full. So memory is bounded by
//! a part, whatever the file's size (the README has the measured figures).

use js_sys::{Reflect, Uint8Array};
use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_futures::JsFuture;
use worker::{Bucket, Data, Env, HttpMetadata, MultipartUpload, UploadedPart};

use crate::adapters::d1::{self, V};
use crate::domain::upload::PART;
use crate::error::{ApiError, ApiResult};
use crate::http::now_ms;

/// How long a request's multipart upload and keys wait in the trash before
/// the cron may take them for abandoned: a streamed request can run long.
pub const GRACE_MS: i64 = 6 * 3_600_000;

/// A body read chunk by chunk.
pub struct Source {
    reader: Option<web_sys::ReadableStreamDefaultReader>,
    /// Bytes read so far.
    pub seen: u64,
}

impl Source {
    pub fn new(stream: Option<&web_sys::ReadableStream>) -> Source {
        Source { reader: stream.map(|s| s.get_reader().unchecked_into()), seen: 0 }
    }

    /// The next chunk; `None` at the end. An error when the body broke off
    /// (the client went away, or sent less than it declared).
    pub async fn next(&mut self) -> Result<Option<Uint8Array>, String> {
        let Some(reader) = &self.reader else { return Ok(None) };
        let r = JsFuture::from(reader.read()).await.map_err(|e| format!("{e:?}"))?;
        if Reflect::get(&r, &JsValue::from_str("done")).map_or(true, |d| d.is_truthy()) {
            return Ok(None);
        }
        let chunk: Uint8Array = Reflect::get(&r, &JsValue::from_str("value")).map_err(|e| format!("{e:?}"))?.unchecked_into();
        self.seen += u64::from(chunk.length());
        Ok(Some(chunk))
    }

    /// Reads to the end, dropping the bytes (an early answer must not leave
    /// a body unread: see `pipeline::body`).
    pub async fn drain(&mut self) {
        while let Ok(Some(_)) = self.next().await {}
    }
}

/// The first `n` bytes of a chunk, copied into wasm.
pub fn head(chunk: &Uint8Array, n: u32) -> Vec<u8> {
    chunk.subarray(0, n.min(chunk.length())).to_vec()
}

/// One part's worth of bytes, reused part after part.
pub struct PartBuf {
    buf: Uint8Array,
    pub filled: u32,
}

impl Default for PartBuf {
    fn default() -> Self {
        PartBuf { buf: Uint8Array::new_with_length(PART as u32), filled: 0 }
    }
}

impl PartBuf {
    /// Copies what fits of `chunk[from..]`; returns where it stopped.
    pub fn fill(&mut self, chunk: &Uint8Array, from: u32) -> u32 {
        let n = (chunk.length() - from).min(PART as u32 - self.filled);
        if n > 0 {
            self.buf.set(&chunk.subarray(from, from + n), self.filled);
            self.filled += n;
        }
        from + n
    }

    pub fn is_full(&self) -> bool {
        u64::from(self.filled) == PART
    }

    /// The bytes held, as a view (valid until the next `fill`).
    pub fn view(&self) -> Uint8Array {
        self.buf.subarray(0, self.filled)
    }

    /// R2 takes any `Uint8Array` as a body of known length; workers-rs only
    /// names streams, strings and bytes, so it travels in the stream variant
    /// (passed to JS untouched).
    pub fn data(&self) -> Data {
        Data::ReadableStream(JsValue::from(self.view()).unchecked_into())
    }
}

pub fn bucket(env: &Env) -> ApiResult<Bucket> {
    env.bucket(crate::adapters::media::BINDING).map_err(ApiError::from)
}

/// A new multipart upload for `key`, listed in `media_trash_mpu` (due after
/// `GRACE_MS`) before any part is written, so a request that dies leaves it
/// to the cron. Returns it with its id.
pub async fn open_listed(env: &Env, key: &str) -> ApiResult<(MultipartUpload, String)> {
    let mpu = bucket(env)?.create_multipart_upload(key).execute().await?;
    let id = mpu.upload_id().await;
    let db = d1::db(env)?;
    let listed = d1::stmt(
        &db,
        "INSERT OR REPLACE INTO media_trash_mpu (upload_id, r2_key, purge_after) VALUES (?1, ?2, ?3)",
        &[V::T(&id), V::T(key), (now_ms() + GRACE_MS).into()],
    )?
    .run()
    .await;
    if let Err(e) = listed {
        let _ = mpu.abort().await;
        return Err(e.into());
    }
    Ok((mpu, id))
}

/// Uploads the buffer as part `n` and empties it.
pub async fn put_part(mpu: &MultipartUpload, n: u16, buf: &mut PartBuf) -> ApiResult<UploadedPart> {
    let part = mpu.upload_part(n, buf.data()).await?;
    buf.filled = 0;
    Ok(part)
}

/// Stores the buffer as the whole object `key` (a file of at most one part).
pub async fn put_whole(env: &Env, key: &str, buf: &PartBuf, content_type: Option<&str>) -> ApiResult<String> {
    let meta = HttpMetadata { content_type: content_type.map(str::to_string), ..Default::default() };
    let obj = bucket(env)?
        .put(key, buf.data())
        .http_metadata(meta)
        .execute()
        .await?
        .ok_or_else(|| ApiError::internal("r2 put: no object"))?;
    Ok(obj.http_etag())
}

/// Forgets a multipart upload's trash entry (it was completed or aborted).
pub async fn unlist(env: &Env, upload_id: &str) -> ApiResult<()> {
    let db = d1::db(env)?;
    d1::stmt(&db, "DELETE FROM media_trash_mpu WHERE upload_id = ?1", &[V::T(upload_id)])?.run().await?;
    Ok(())
}

/// Aborts a multipart upload and forgets its trash entry; an upload already
/// gone (completed or aborted before) counts as aborted. On another failure
/// the entry stays for the cron.
pub async fn abort(env: &Env, key: &str, upload_id: &str) -> ApiResult<()> {
    let mpu = bucket(env)?.resume_multipart_upload(key, upload_id)?;
    if let Err(e) = mpu.abort().await {
        let m = e.to_string();
        if !(m.contains("NoSuchUpload") || m.contains("does not exist") || m.contains("not found")) {
            return Err(e.into());
        }
    }
    unlist(env, upload_id).await
}

/// An upload request's body, kept unread by the API's `fetch` for the
/// handler to hand over (`take`); what nobody took is drained after the
/// response is made. `length`: the client's Content-Length.
#[derive(Clone)]
pub struct RawBody {
    slot: std::rc::Rc<std::cell::RefCell<Option<web_sys::ReadableStream>>>,
    pub length: Option<u64>,
}

// SAFETY: Workers run one thread per isolate; the http crate's extensions
// want Send + Sync, which a JS handle cannot be shared across anyway.
unsafe impl Send for RawBody {}
unsafe impl Sync for RawBody {}

impl RawBody {
    pub fn new(stream: Option<web_sys::ReadableStream>, length: Option<u64>) -> RawBody {
        RawBody { slot: std::rc::Rc::new(std::cell::RefCell::new(stream)), length }
    }

    pub fn take(&self) -> Option<web_sys::ReadableStream> {
        self.slot.borrow_mut().take()
    }

    pub fn is_taken(&self) -> bool {
        self.slot.borrow().is_none()
    }
}
