//! R2 (binding `MEDIA`) and multipart bodies. The runtime parses multipart
//! natively (`Request.formData()`), so no parser runs in wasm; a file goes
//! from the parsed form to R2 as a Blob without its bytes entering wasm
//! (only the first bytes are read, to sniff the type).

use axum::body::Bytes;
use js_sys::Uint8Array;
use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_futures::JsFuture;
use web_sys::{Blob, File, FormData};
use worker::{Bucket, Data, Env, HttpMetadata, Range};

use crate::error::{ApiError, ApiResult};

pub const BINDING: &str = "MEDIA";

fn js(what: &'static str) -> impl Fn(JsValue) -> ApiError {
    move |e| ApiError::internal(format!("{what}: {e:?}"))
}

fn bucket(env: &Env) -> ApiResult<Bucket> {
    env.bucket(BINDING).map_err(ApiError::from)
}

/// The R2 keys of rows that select `r2_key`.
pub fn r2_keys(rows: Vec<crate::adapters::d1::Row>) -> Vec<String> {
    rows.iter().filter_map(|r| r.text("r2_key")).collect()
}

/// A parsed `multipart/form-data` body.
pub struct Form(FormData);

/// Parses `body` as the multipart form its full `content_type` (with the
/// boundary) describes; a malformed body is a 400.
pub async fn parse_form(body: &Bytes, content_type: &str) -> ApiResult<Form> {
    let headers = web_sys::Headers::new().map_err(js("headers"))?;
    headers.set("content-type", content_type).map_err(js("headers"))?;
    let req = super::post_request("https://upload.invalid/", Some(&headers), &Uint8Array::from(&body[..]), false)?;
    let parsed = JsFuture::from(req.form_data().map_err(js("formData"))?)
        .await
        .map_err(|_| ApiError::invalid("body: not a valid multipart/form-data body"))?;
    Ok(Form(parsed.unchecked_into()))
}

impl Form {
    /// A text field (the first, if repeated); a file in its place is an error.
    pub fn text(&self, name: &str) -> ApiResult<Option<String>> {
        let v = self.0.get(name);
        if v.is_null() || v.is_undefined() {
            return Ok(None);
        }
        v.as_string().map(Some).ok_or_else(|| ApiError::invalid(format!("{name}: must be a text field")))
    }

    /// Every file under `name`; a text value there is an error.
    pub fn files(&self, name: &str) -> ApiResult<Vec<File>> {
        self.0
            .get_all(name)
            .iter()
            .map(|v| v.dyn_into::<File>().map_err(|_| ApiError::invalid(format!("{name}: must be a file"))))
            .collect()
    }
}

/// The first `n` bytes of a file.
pub async fn head(file: &File, n: usize) -> ApiResult<Vec<u8>> {
    let blob: Blob = file.slice_with_i32_and_i32(0, n as i32).map_err(js("slice"))?;
    let buf = JsFuture::from(blob.array_buffer()).await.map_err(js("arrayBuffer"))?;
    Ok(Uint8Array::new(&buf).to_vec())
}

/// Stores a file under `key`; returns R2's HTTP ETag.
pub async fn put(env: &Env, key: &str, file: &File, content_type: &str) -> ApiResult<String> {
    // R2's put takes a Blob (known length) as is; workers-rs only names
    // streams, strings and bytes, so the Blob travels in the stream variant
    // (it is passed to JS untouched).
    let blob: &JsValue = file.as_ref();
    let meta = HttpMetadata { content_type: Some(content_type.to_string()), ..Default::default() };
    let obj = bucket(env)?
        .put(key, Data::ReadableStream(blob.clone().unchecked_into()))
        .http_metadata(meta)
        .execute()
        .await?
        .ok_or_else(|| ApiError::internal("r2 put: no object"))?;
    Ok(obj.http_etag())
}

/// Deletes objects; failures are reported, not raised (cleanup paths).
pub async fn delete(env: &Env, keys: &[String]) -> Result<(), ApiError> {
    if keys.is_empty() {
        return Ok(());
    }
    bucket(env)?.delete_multiple(keys.iter().map(String::as_str).collect()).await.map_err(ApiError::from)
}

/// Purges `keys` listed in `media_trash`: the objects no media row names are
/// deleted (`forget`); a key a row names keeps its object (a write reported
/// failed may still have committed) and loses its entry.
pub async fn purge(env: &Env, keys: &[String]) -> ApiResult<()> {
    if keys.is_empty() {
        return Ok(());
    }
    let db = crate::adapters::d1::db(env)?;
    let list = serde_json::to_string(keys)?;
    let unnamed: Vec<crate::adapters::d1::Row> = crate::adapters::d1::stmt(
        &db,
        "SELECT j.value AS r2_key FROM json_each(?1) j WHERE NOT EXISTS (SELECT 1 FROM media m WHERE m.r2_key = j.value)",
        &[(&list).into()],
    )?
    .all()
    .await?
    .results()?;
    // In one statement with its check, so a row deleted meanwhile (whose
    // trigger lists the key again) keeps its fresh entry.
    crate::adapters::d1::stmt(
        &db,
        "DELETE FROM media_trash WHERE r2_key IN (SELECT value FROM json_each(?1)) \
         AND EXISTS (SELECT 1 FROM media m WHERE m.r2_key = media_trash.r2_key)",
        &[(&list).into()],
    )?
    .run()
    .await?;
    forget(env, &r2_keys(unnamed)).await
}

/// Deletes the objects of `keys`, which no media row names, then their
/// `media_trash` entries. Deleting an object twice is harmless, so a forget
/// racing another is too.
pub async fn forget(env: &Env, keys: &[String]) -> ApiResult<()> {
    if keys.is_empty() {
        return Ok(());
    }
    delete(env, keys).await?;
    let list = serde_json::to_string(keys)?;
    let db = crate::adapters::d1::db(env)?;
    crate::adapters::d1::stmt(
        &db,
        "DELETE FROM media_trash WHERE r2_key IN (SELECT value FROM json_each(?1))",
        &[(&list).into()],
    )?
    .run()
    .await?;
    Ok(())
}

/// The object's bytes `offset .. offset + length` (all when `None`) as a
/// stream for the response body; `None` when the object is missing.
pub async fn get(env: &Env, key: &str, part: Option<(u64, u64)>) -> ApiResult<Option<web_sys::ReadableStream>> {
    let b = bucket(env)?;
    let mut req = b.get(key);
    if let Some((offset, length)) = part {
        req = req.range(Range::OffsetWithLength { offset, length });
    }
    let Some(obj) = req.execute().await? else { return Ok(None) };
    match obj.body().map(|b| b.response_body()).transpose()? {
        Some(worker::ResponseBody::Stream(s)) => Ok(Some(s)),
        _ => Err(ApiError::internal("r2 get: no body stream")),
    }
}

/// A response body the runtime streams itself (an R2 object). A handler puts
/// it in the response's extensions; `lib.rs` hands it to the JS Response as
/// is (`adapters::js_response`), so the runtime knows its length (Content-Length survives) and no byte
/// passes through wasm.
#[derive(Clone)]
pub struct JsBody(pub web_sys::ReadableStream);

// SAFETY: Workers run one thread per isolate; the http crate's extensions
// want Send + Sync, which a JS handle cannot be shared across anyway.
unsafe impl Send for JsBody {}
unsafe impl Sync for JsBody {}
