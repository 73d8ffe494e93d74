//! Single-request uploads, streamed: the API hands over a request's unread
//! body (multipart `POST /api/posts`, `POST /api/jesclips`, `POST /api/media`,
//! or a raw `POST /api/media`) with a `Spec`, and this reads it once, chunk
//! by chunk: multipart parsed by the push parser, each file judged on its
//! first bytes before a byte of it is stored, its size counted as it passes,
//! its bytes written to R2 in parts (`adapters::stream`), and the
//! Idempotency-Key fingerprint hashed on the way (`StreamFp`). Any refusal or
//! a body that ends short of its Content-Length aborts the multipart upload
//! and deletes what was stored: nothing is left behind.

// A refusal is the request's one reply, built once: not worth a box.
#![allow(clippy::result_large_err)]

use js_sys::Uint8Array;
use worker::{Env, MultipartUpload, UploadedPart};

use crate::adapters::d1::{self, V};
use crate::adapters::media::purge;
use crate::adapters::stream::{self, PartBuf, Source, GRACE_MS};
use crate::domain::content::SNIFF_BYTES;
use crate::domain::idempotency::{boundary, StreamFp};
use crate::domain::multipart::{Ev, Parser, Span};
use crate::domain::upload::{judge, Reply, Spec, Stored, MAX_FIELDS_BYTES};
use crate::error::ApiError;
use crate::http::now_ms;

/// Bytes of a chunk copied into wasm at a time (parser, fingerprint).
const WINDOW: u32 = 64 * 1024;

/// A file being received.
struct File {
    field: String,
    key: String,
    declared: String,
    head: Vec<u8>,
    content_type: Option<&'static str>,
    size: u64,
    mpu: Option<(MultipartUpload, String)>,
    parts: Vec<UploadedPart>,
}

struct Ingest<'a> {
    env: &'a Env,
    spec: &'a Spec,
    buf: PartBuf,
    file: Option<File>,
    /// A text part being received: its name and bytes.
    text: Option<(String, Vec<u8>)>,
    fields: Vec<(String, String)>,
    field_bytes: usize,
    stored: Vec<Stored>,
    /// Every key listed in the trash by this request (for cleanup).
    keys: Vec<String>,
}

/// Runs one upload; the reply says what was stored or why nothing was.
pub async fn run(env: &Env, spec: Spec, body: Option<web_sys::ReadableStream>) -> Reply {
    let mut src = Source::new(body.as_ref());
    let bound = if spec.raw { None } else { boundary(&spec.content_type).ok().flatten().map(str::to_string) };
    let mut fp = spec.fingerprint.as_ref().map(|(m, t)| StreamFp::new(m, t, bound.as_deref()));
    let mut ing = Ingest {
        env,
        spec: &spec,
        buf: PartBuf::default(),
        file: None,
        text: None,
        fields: vec![],
        field_bytes: 0,
        stored: vec![],
        keys: vec![],
    };
    let out = ing.drive(&mut src, &mut fp).await;
    match out {
        Ok(()) => Reply {
            status: 200,
            fields: ing.fields,
            files: ing.stored,
            fingerprint: fp.map(StreamFp::finish),
            ..Reply::default()
        },
        Err(reply) => {
            ing.clean_up().await;
            src.drain().await;
            reply
        }
    }
}

fn internal(e: impl std::fmt::Display) -> Reply {
    crate::log::error("ingest", "upload failed", &e.to_string());
    Reply::error(500, "internal error")
}

impl Ingest<'_> {
    async fn drive(&mut self, src: &mut Source, fp: &mut Option<StreamFp>) -> Result<(), Reply> {
        let mut parser = if self.spec.raw || self.spec.hash_only {
            None
        } else {
            Some(Parser::new(&self.spec.content_type).map_err(|m| Reply::error(400, m))?)
        };
        if self.spec.raw && !self.spec.hash_only {
            self.start_file("file".into(), self.spec.content_type.clone()).await?;
        }
        let mut scratch = vec![0u8; WINDOW as usize];
        let mut evs = Vec::new();
        loop {
            let chunk = match src.next().await {
                Ok(Some(c)) => c,
                Ok(None) => break,
                Err(e) => return Err(Reply::error(400, format!("body: could not be read to its end ({e})"))),
            };
            if self.spec.length.is_some_and(|l| src.seen > l) {
                return Err(Reply::error(400, "body: longer than its Content-Length"));
            }
            if parser.is_none() && fp.is_none() {
                if !self.spec.hash_only {
                    self.file_data(&chunk).await?;
                }
                continue;
            }
            let mut at = 0;
            while at < chunk.length() {
                let end = (at + WINDOW).min(chunk.length());
                let n = (end - at) as usize;
                chunk.subarray(at, end).copy_to(&mut scratch[..n]);
                if let Some(fp) = fp.as_mut() {
                    fp.push(&scratch[..n]);
                }
                match parser.as_mut() {
                    Some(p) => {
                        evs.clear();
                        p.push(&scratch[..n], &mut evs).map_err(|m| Reply::error(400, m))?;
                        for ev in evs.drain(..) {
                            self.event(ev, &chunk, at, &scratch[..n]).await?;
                        }
                    }
                    None if !self.spec.hash_only => self.file_data(&chunk.subarray(at, end)).await?,
                    None => {}
                }
                at = end;
            }
        }
        if self.spec.length.is_some_and(|l| src.seen != l) {
            return Err(Reply::error(400, "body: ended before its Content-Length"));
        }
        if self.spec.hash_only {
            return Ok(());
        }
        match parser {
            Some(p) => p.finish().map_err(|m| Reply::error(400, m))?,
            None => self.end_file().await?,
        }
        Ok(())
    }

    async fn event(&mut self, ev: Ev, chunk: &Uint8Array, at: u32, window: &[u8]) -> Result<(), Reply> {
        let spec = self.spec;
        match ev {
            Ev::Part(head) if head.filename.is_some() && head.name != spec.file_field => {
                // A file under another name is ignored (FormData `get` semantics),
                // its bytes counted with the text fields'.
                self.text = Some((String::new(), Vec::new()));
            }
            Ev::Part(head) if head.filename.is_some() => {
                if self.stored.len() >= usize::from(spec.max_files) {
                    let what = if spec.max_files == 1 {
                        "exactly one file".to_string()
                    } else {
                        format!("at most {} files", spec.max_files)
                    };
                    return Err(Reply::error(400, format!("{}: {what}", spec.file_field)));
                }
                self.start_file(head.name, head.content_type.unwrap_or_default()).await?;
            }
            Ev::Part(head) => {
                if head.name == spec.file_field {
                    return Err(Reply::error(400, format!("{}: must be a file", head.name)));
                }
                self.text = Some((head.name, Vec::new()));
            }
            Ev::Data(span) => {
                if let Some((name, text)) = self.text.as_mut() {
                    let bytes = match &span {
                        Span::In(a, b) => &window[*a..*b],
                        Span::Held(v) => &v[..],
                    };
                    self.field_bytes += bytes.len();
                    if self.field_bytes > MAX_FIELDS_BYTES {
                        return Err(Reply::error(413, format!("body: text fields are limited to {MAX_FIELDS_BYTES} bytes")));
                    }
                    if !name.is_empty() {
                        text.extend_from_slice(bytes);
                    }
                } else {
                    let view = match span {
                        Span::In(a, b) => chunk.subarray(at + a as u32, at + b as u32),
                        Span::Held(v) => Uint8Array::from(&v[..]),
                    };
                    self.file_data(&view).await?;
                }
            }
            Ev::PartEnd => {
                if let Some((name, bytes)) = self.text.take() {
                    let value = String::from_utf8(bytes).map_err(|_| Reply::error(400, format!("{name}: must be UTF-8 text")))?;
                    if !name.is_empty() && !self.fields.iter().any(|(n, _)| *n == name) {
                        self.fields.push((name, value));
                    }
                } else {
                    self.end_file().await?;
                }
            }
            Ev::End => {}
        }
        Ok(())
    }

    /// A new file: its key is listed in the trash before any byte is stored.
    async fn start_file(&mut self, field: String, declared: String) -> Result<(), Reply> {
        let key = format!("m/{}", hex::encode(crate::adapters::crypto::random_bytes::<16>()));
        let db = d1::db(self.env).map_err(internal)?;
        d1::stmt(
            &db,
            "INSERT INTO media_trash (r2_key, purge_after) VALUES (?1, ?2)",
            &[V::T(&key), (now_ms() + GRACE_MS).into()],
        )
        .map_err(internal)?
        .run()
        .await
        .map_err(internal)?;
        self.keys.push(key.clone());
        self.file =
            Some(File { field, key, declared, head: Vec::new(), content_type: None, size: 0, mpu: None, parts: Vec::new() });
        Ok(())
    }

    /// Judges the file once its first bytes are in.
    fn judge(&mut self) -> Result<(), Reply> {
        let Some(f) = self.file.as_mut() else { return Ok(()) };
        if f.content_type.is_none() {
            let s = judge(&f.field, &f.head, &f.declared, self.spec.want, &self.spec.caller)?;
            f.content_type = Some(s.mime());
        }
        Ok(())
    }

    async fn file_data(&mut self, view: &Uint8Array) -> Result<(), Reply> {
        let max = self.spec.max_bytes;
        let head_full = {
            let Some(f) = self.file.as_mut() else { return Ok(()) };
            f.size += u64::from(view.length());
            if f.size > max {
                return Err(Reply::error(413, format!("{}: files are limited to {max} bytes", f.field)));
            }
            if f.content_type.is_none() {
                let want = (SNIFF_BYTES - f.head.len()) as u32;
                f.head.extend(stream::head(view, want));
            }
            f.head.len() == SNIFF_BYTES
        };
        if head_full {
            self.judge()?;
        }
        let mut from = 0;
        while from < view.length() {
            from = self.buf.fill(view, from);
            if self.buf.is_full() {
                self.judge()?;
                let f = self.file.as_mut().ok_or_else(|| internal("no file"))?;
                if f.mpu.is_none() {
                    f.mpu = Some(stream::open_listed(self.env, &f.key).await.map_err(internal)?);
                }
                let (mpu, _) = f.mpu.as_ref().ok_or_else(|| internal("no upload"))?;
                let n = f.parts.len() as u16 + 1;
                let part = stream::put_part(mpu, n, &mut self.buf).await.map_err(internal)?;
                f.parts.push(part);
            }
        }
        Ok(())
    }

    async fn end_file(&mut self) -> Result<(), Reply> {
        if self.file.as_ref().is_some_and(|f| f.size == 0) {
            let field = self.file.as_ref().map(|f| f.field.clone()).unwrap_or_default();
            return Err(Reply::error(400, format!("{field}: the file is empty")));
        }
        self.judge()?;
        let Some(mut f) = self.file.take() else { return Ok(()) };
        let content_type = f.content_type.unwrap_or("application/octet-stream");
        let etag = match f.mpu.take() {
            None => {
                let etag = stream::put_whole(self.env, &f.key, &self.buf, Some(content_type)).await;
                self.buf.filled = 0;
                etag.map_err(internal)?
            }
            Some((mpu, id)) => {
                if self.buf.filled > 0 {
                    let n = f.parts.len() as u16 + 1;
                    let part = stream::put_part(&mpu, n, &mut self.buf).await;
                    match part {
                        Ok(p) => f.parts.push(p),
                        Err(e) => {
                            f.mpu = Some((mpu, id));
                            self.file = Some(f);
                            return Err(internal(e));
                        }
                    }
                }
                match mpu.complete(f.parts).await {
                    Ok(obj) => {
                        let _ = stream::unlist(self.env, &id).await;
                        obj.http_etag()
                    }
                    Err(e) => {
                        // Still listed: the clean-up (or the cron) aborts it.
                        let _ = stream::abort(self.env, &f.key, &id).await;
                        return Err(internal(ApiError::from(e)));
                    }
                }
            }
        };
        self.stored.push(Stored { field: f.field, key: f.key, content_type: content_type.to_string(), size: f.size, etag });
        Ok(())
    }

    /// After a refusal: the open multipart upload is aborted and every object
    /// this request stored is deleted (their trash entries back this up).
    async fn clean_up(&mut self) {
        if let Some(f) = self.file.take() {
            if let Some((_, id)) = f.mpu {
                if let Err(e) = stream::abort(self.env, &f.key, &id).await {
                    crate::log::error("ingest", "abort multipart upload", &e.to_string());
                }
            }
        }
        if let Err(e) = purge(self.env, &self.keys).await {
            crate::log::error("ingest", "discard uploads", &e.to_string());
        }
    }
}
