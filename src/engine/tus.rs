//! Resumable uploads, tus 1.0.0 (core, creation, termination, expiration) at
//! `/api/uploads`, behind the API's guard: the API forwards the request (its
//! PATCH body unread) with the caller, and this answers it. One tus upload is
//! one R2 multipart upload of `PART`-sized parts; the bytes of a PATCH that
//! do not fill a part wait in a tail object (`{key}.t`) until the next one,
//! so every chunk size of at least 5 MiB works. Each part is committed to D1
//! as it is written, so a PATCH cut off midway keeps its whole parts and
//! `HEAD` tells the client where to resume. The finished file becomes an
//! unattached media row, named by `Jestha-Media-Id`.

// A refusal is the request's one reply, built once: not worth a box.
#![allow(clippy::result_large_err)]

use js_sys::Uint8Array;
use worker::{Env, UploadedPart};

use crate::adapters::d1::{self, Row, V};
use crate::adapters::media::{delete, purge};
use crate::adapters::stream::{self, PartBuf, Source};
use crate::config::Config;
use crate::domain::clock::http_date;
use crate::domain::content::SNIFF_BYTES;
use crate::domain::upload::{self, judge, Caller, Patch, Reply, Standing, Want, MEDIA_ID_HEADER, TUS_VERSION};
use crate::error::ApiError;
use crate::http::now_ms;

/// How long a PATCH holds its upload (refreshed at every part).
const LOCK_MS: i64 = 300_000;
const OFFSET_TYPE: &str = "application/offset+octet-stream";

/// What the API forwards.
pub struct Request<'a> {
    pub method: &'a str,
    /// The upload's id, empty for creation.
    pub id: &'a str,
    pub headers: &'a web_sys::Headers,
    pub caller: Caller,
    /// The client's Content-Length.
    pub length: Option<u64>,
    /// Names the PATCH that holds the lock.
    pub request_id: &'a str,
}

fn internal(e: impl std::fmt::Display) -> Reply {
    crate::log::error("tus", "upload failed", &e.to_string());
    Reply::error(500, "internal error")
}

impl Request<'_> {
    fn header(&self, name: &str) -> Option<String> {
        self.headers.get(name).ok().flatten()
    }
}

/// Answers one tus request; a PATCH body is read to its end whatever the answer.
pub async fn run(env: &Env, req: Request<'_>, body: Option<web_sys::ReadableStream>) -> Reply {
    let mut src = Source::new(body.as_ref());
    let reply = answer(env, &req, &mut src).await;
    src.drain().await;
    reply
}

async fn answer(env: &Env, req: &Request<'_>, src: &mut Source) -> Reply {
    let max = Config::get(env).max_resumable_upload_bytes;
    if req.method == "OPTIONS" {
        return Reply { status: 204, ..Reply::default() }
            .header("tus-version", TUS_VERSION)
            .header("tus-extension", "creation,termination,expiration")
            .header("tus-max-size", max.to_string());
    }
    if req.header("tus-resumable").as_deref() != Some(TUS_VERSION) {
        return Reply::error(412, format!("Tus-Resumable: must be {TUS_VERSION}")).header("tus-version", TUS_VERSION);
    }
    let out = match req.method {
        "POST" => create(env, req, max).await,
        "GET" | "HEAD" => head(env, req).await,
        "PATCH" => patch(env, req, src).await,
        "DELETE" => terminate(env, req).await,
        _ => Err(Reply::error(405, "method not allowed")),
    };
    out.unwrap_or_else(|r| r)
}

/// The upload, if it is the caller's and not expired (else 404, whoever owns it).
async fn load(env: &Env, req: &Request<'_>) -> Result<Row, Reply> {
    let db = d1::db(env).map_err(internal)?;
    let row: Option<Row> = d1::stmt(
        &db,
        "SELECT * FROM uploads WHERE id = ?1 AND account_id = ?2 AND expires_at > ?3",
        &[V::T(req.id), V::T(&req.caller.account), now_ms().into()],
    )
    .map_err(internal)?
    .first(None)
    .await
    .map_err(internal)?;
    row.ok_or_else(|| Reply::error(404, "not found"))
}

/// POST /api/uploads (creation): `Upload-Length`, optional `Upload-Metadata`.
async fn create(env: &Env, req: &Request<'_>, max: u64) -> Result<Reply, Reply> {
    if req.header("upload-defer-length").is_some() {
        return Err(Reply::error(400, "Upload-Defer-Length: not supported; send Upload-Length"));
    }
    let length = upload::number("Upload-Length", req.header("upload-length").as_deref()).map_err(|m| Reply::error(400, m))?;
    if length == 0 {
        return Err(Reply::error(400, "Upload-Length: the file is empty"));
    }
    if length > max {
        return Err(Reply::error(413, format!("Upload-Length: resumable uploads are limited to {max} bytes")));
    }
    let metadata = req.header("upload-metadata").unwrap_or_default();
    upload::metadata_type(&metadata).map_err(|m| Reply::error(400, m))?;
    let now = now_ms();
    let id = crate::domain::ids::ulid(now, crate::adapters::crypto::random_bytes());
    let key = format!("m/{}", hex::encode(crate::adapters::crypto::random_bytes::<16>()));
    let mpu = stream::bucket(env).map_err(internal)?.create_multipart_upload(&key).execute().await.map_err(internal)?;
    let upload_id: String = mpu.upload_id().await;
    let expires = now + Config::get(env).upload_expiry_seconds * 1000;
    let db = d1::db(env).map_err(internal)?;
    let inserted = match d1::stmt(
        &db,
        "INSERT INTO uploads (id, account_id, r2_key, r2_upload_id, upload_length, metadata, created_at, expires_at) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
        &[
            V::T(&id),
            V::T(&req.caller.account),
            V::T(&key),
            V::T(&upload_id),
            (length as i64).into(),
            (!metadata.is_empty()).then_some(metadata.as_str()).into(),
            now.into(),
            expires.into(),
        ],
    ) {
        Ok(s) => s.run().await.map_err(ApiError::from),
        Err(e) => Err(e),
    };
    if let Err(e) = inserted {
        let _ = mpu.abort().await;
        return Err(internal(e));
    }
    Ok(Reply { status: 201, ..Reply::default() }
        .header("location", format!("/api/uploads/{id}"))
        .header("upload-expires", http_date(expires)))
}

/// HEAD (and GET) /api/uploads/{id}: where the upload stands.
async fn head(env: &Env, req: &Request<'_>) -> Result<Reply, Reply> {
    let row = load(env, req).await?;
    let mut r = Reply { status: 200, ..Reply::default() }
        .header("upload-offset", (row.num("upload_offset") as u64).to_string())
        .header("upload-length", (row.num("upload_length") as u64).to_string())
        .header("cache-control", "no-store");
    if let Some(m) = row.text("metadata") {
        r = r.header("upload-metadata", m);
    }
    Ok(finished(r, &row))
}

/// The headers that say how an upload ended, or when it expires.
fn finished(r: Reply, row: &Row) -> Reply {
    match row.text("media_id") {
        Some(media) => r.header(MEDIA_ID_HEADER, media),
        None => r.header("upload-expires", http_date(row.num("expires_at") as i64)),
    }
}

/// DELETE /api/uploads/{id} (termination): the row goes (its trigger lists
/// the multipart upload and objects), then they are cleaned now; the cron
/// retries whatever fails. A finished upload's media go too if unattached.
async fn terminate(env: &Env, req: &Request<'_>) -> Result<Reply, Reply> {
    let row = load(env, req).await?;
    let key = row.text("r2_key").unwrap_or_default();
    let db = d1::db(env).map_err(internal)?;
    let mut stmts = vec![d1::stmt(&db, "DELETE FROM uploads WHERE id = ?1", &[V::T(req.id)]).map_err(internal)?];
    if let Some(media) = row.text("media_id") {
        stmts.push(d1::stmt(&db, "DELETE FROM media WHERE id = ?1 AND post_id IS NULL", &[V::T(&media)]).map_err(internal)?);
    }
    db.batch(stmts).await.map_err(internal)?;
    if row.text("media_id").is_none() {
        if let Err(e) = stream::abort(env, &key, &row.text("r2_upload_id").unwrap_or_default()).await {
            crate::log::error("tus", "abort multipart upload", &e.to_string());
        }
    }
    if let Err(e) = purge(env, &[key.clone(), format!("{key}.t")]).await {
        crate::log::error("tus", "purge upload", &e.to_string());
    }
    Ok(Reply { status: 204, ..Reply::default() })
}

/// PATCH /api/uploads/{id}: appends the body at `Upload-Offset`.
async fn patch(env: &Env, req: &Request<'_>, src: &mut Source) -> Result<Reply, Reply> {
    let ct = req.header("content-type").unwrap_or_default();
    if ct.split(';').next().unwrap_or("").trim() != OFFSET_TYPE {
        return Err(Reply::error(415, format!("Content-Type: must be {OFFSET_TYPE}")));
    }
    let offset = upload::number("Upload-Offset", req.header("upload-offset").as_deref()).map_err(|m| Reply::error(400, m))?;
    let len =
        req.length.ok_or_else(|| Reply::error(400, "Content-Length: required (a PATCH body of unknown length is refused)"))?;
    let row = load(env, req).await?;
    let standing = Standing {
        offset: row.num("upload_offset") as u64,
        length: row.num("upload_length") as u64,
        complete: row.text("media_id").is_some(),
    };
    let last = match upload::patch(standing, offset, len).map_err(|(s, m)| Reply::error(s, m))? {
        Patch::AlreadyComplete => {
            let r = Reply { status: 204, ..Reply::default() }.header("upload-offset", standing.length.to_string());
            return Ok(finished(r, &row));
        }
        Patch::Append { last, .. } => last,
    };
    // The same account may go on with another key: its scopes must still allow the kind.
    if let Some(kind) = row.text("content_type") {
        let (ok, scope) =
            if kind.starts_with("image/") { (req.caller.images, "write:jes") } else { (req.caller.videos, "write:jesclip") };
        if !ok {
            return Err(Reply { need: Some(scope.into()), ..Reply::error(403, format!("Token missing scope(s): {scope}")) });
        }
    }
    let db = d1::db(env).map_err(internal)?;
    let now = now_ms();
    let locked = d1::stmt(
        &db,
        "UPDATE uploads SET lock_id = ?1, lock_until = ?2 WHERE id = ?3 AND upload_offset = ?4 AND media_id IS NULL \
         AND expires_at > ?5 AND (lock_until IS NULL OR lock_until < ?5)",
        &[V::T(req.request_id), (now + LOCK_MS).into(), V::T(req.id), (offset as i64).into(), now.into()],
    )
    .map_err(internal)?
    .run()
    .await
    .map_err(internal)?
    .meta()
    .map_err(internal)?
    .and_then(|m| m.changes)
    .unwrap_or(0);
    if locked != 1 {
        return Err(Reply::error(409, "another PATCH to this upload is in progress"));
    }
    let mut w = Writer::new(env, req, &row, offset);
    let out = w.append(src, len, last).await;
    if out.is_err() && !w.gone {
        // Whole parts written stay committed; only the lock goes.
        if let Ok(s) = d1::stmt(
            &db,
            "UPDATE uploads SET lock_id = NULL, lock_until = NULL WHERE id = ?1 AND lock_id = ?2",
            &[V::T(req.id), V::T(req.request_id)],
        ) {
            let _ = s.run().await;
        }
    }
    out
}

/// One PATCH's writes.
struct Writer<'a> {
    env: &'a Env,
    req: &'a Request<'a>,
    key: String,
    upload_id: String,
    /// Etags of the parts written before, and by, this PATCH.
    parts: Vec<String>,
    tail_len: u32,
    content_type: Option<String>,
    declared: String,
    head: Vec<u8>,
    offset: u64,
    /// The upload was terminated (refused content): nothing to unlock.
    gone: bool,
}

impl<'a> Writer<'a> {
    fn new(env: &'a Env, req: &'a Request<'a>, row: &Row, offset: u64) -> Writer<'a> {
        let parts: Vec<String> = serde_json::from_str(&row.text("parts").unwrap_or_default()).unwrap_or_default();
        let declared = upload::metadata_type(&row.text("metadata").unwrap_or_default()).ok().flatten().unwrap_or_default();
        Writer {
            env,
            req,
            key: row.text("r2_key").unwrap_or_default(),
            upload_id: row.text("r2_upload_id").unwrap_or_default(),
            parts,
            tail_len: row.num("tail_len") as u32,
            content_type: row.text("content_type"),
            declared,
            head: Vec::new(),
            offset,
            gone: false,
        }
    }

    fn tail_key(&self) -> String {
        format!("{}.t", self.key)
    }

    async fn append(&mut self, src: &mut Source, len: u64, last: bool) -> Result<Reply, Reply> {
        let mut buf = PartBuf::default();
        if self.tail_len > 0 {
            self.read_tail(&mut buf).await?;
        }
        let mpu =
            stream::bucket(self.env).map_err(internal)?.resume_multipart_upload(&self.key, &self.upload_id).map_err(internal)?;
        loop {
            let chunk = match src.next().await {
                Ok(Some(c)) => c,
                Ok(None) => break,
                Err(e) => return Err(Reply::error(400, format!("body: could not be read to its end ({e})"))),
            };
            if src.seen > len {
                return Err(Reply::error(400, "body: longer than its Content-Length"));
            }
            self.sniff(&chunk, src.seen == len).await?;
            let mut from = 0;
            while from < chunk.length() {
                from = buf.fill(&chunk, from);
                if buf.is_full() {
                    let part = stream::put_part(&mpu, self.parts.len() as u16 + 1, &mut buf).await.map_err(internal)?;
                    self.parts.push(part.etag());
                    self.commit_part().await?;
                }
            }
        }
        if src.seen != len {
            return Err(Reply::error(400, "body: ended before its Content-Length"));
        }
        self.sniff(&Uint8Array::new_with_length(0), true).await?;
        let db = d1::db(self.env).map_err(internal)?;
        let end = self.offset + len;
        if !last {
            let tail = buf.filled;
            if tail > 0 {
                stream::put_whole(self.env, &self.tail_key(), &buf, None).await.map_err(internal)?;
            }
            let changed = d1::stmt(
                &db,
                "UPDATE uploads SET upload_offset = ?1, tail_len = ?2, content_type = ?3, lock_id = NULL, lock_until = NULL \
                 WHERE id = ?4 AND lock_id = ?5",
                &[
                    (end as i64).into(),
                    i64::from(tail).into(),
                    self.content_type.as_ref().into(),
                    V::T(self.req.id),
                    V::T(self.req.request_id),
                ],
            )
            .map_err(internal)?
            .run()
            .await
            .map_err(internal)?
            .meta()
            .map_err(internal)?
            .and_then(|m| m.changes)
            .unwrap_or(0);
            if changed != 1 {
                return Err(Reply::error(409, "the upload changed during this PATCH (terminated or expired)"));
            }
            let expires = self.expires().await;
            return Ok(Reply { status: 204, ..Reply::default() }
                .header("upload-offset", end.to_string())
                .header("upload-expires", expires));
        }
        if buf.filled > 0 {
            let part = stream::put_part(&mpu, self.parts.len() as u16 + 1, &mut buf).await.map_err(internal)?;
            self.parts.push(part.etag());
        }
        let uploaded: Vec<UploadedPart> =
            self.parts.iter().enumerate().map(|(i, etag)| UploadedPart::new(i as u16 + 1, etag.clone())).collect();
        let obj = mpu.complete(uploaded).await.map_err(internal)?;
        let now = now_ms();
        let media_id = crate::domain::ids::ulid(now, crate::adapters::crypto::random_bytes());
        let content_type = self.content_type.clone().unwrap_or_default();
        db.batch(vec![
            d1::stmt(
                &db,
                "INSERT INTO media (id, owner_id, r2_key, content_type, size, etag, created_at) \
                 SELECT ?1, account_id, r2_key, ?2, upload_length, ?3, ?4 FROM uploads WHERE id = ?5 AND lock_id = ?6",
                &[
                    V::T(&media_id),
                    V::T(&content_type),
                    V::T(&obj.http_etag()),
                    now.into(),
                    V::T(self.req.id),
                    V::T(self.req.request_id),
                ],
            )
            .map_err(internal)?,
            d1::stmt(
                &db,
                "UPDATE uploads SET completed_at = ?1, media_id = ?2, upload_offset = upload_length, tail_len = 0, \
                 parts = '[]', content_type = ?3, lock_id = NULL, lock_until = NULL WHERE id = ?4 AND lock_id = ?5",
                &[now.into(), V::T(&media_id), V::T(&content_type), V::T(self.req.id), V::T(self.req.request_id)],
            )
            .map_err(internal)?,
        ])
        .await
        .map_err(internal)?;
        // A tail a PATCH before left (the trash has it too, once the row goes).
        let _ = delete(self.env, &[self.tail_key()]).await;
        Ok(Reply { status: 204, ..Reply::default() }.header("upload-offset", end.to_string()).header(MEDIA_ID_HEADER, media_id))
    }

    /// The bytes kept from the PATCHes before, into the part buffer.
    async fn read_tail(&mut self, buf: &mut PartBuf) -> Result<(), Reply> {
        let obj = stream::bucket(self.env)
            .map_err(internal)?
            .get(self.tail_key())
            .execute()
            .await
            .map_err(internal)?
            .ok_or_else(|| internal("the tail object is missing"))?;
        let body = match obj.body().map(|b| b.response_body()).transpose().map_err(internal)? {
            Some(worker::ResponseBody::Stream(s)) => s,
            _ => return Err(internal("the tail object has no body")),
        };
        let mut tail = Source::new(Some(&body));
        while let Some(chunk) = tail.next().await.map_err(internal)? {
            buf.fill(&chunk, 0);
        }
        if buf.filled != self.tail_len {
            return Err(internal(format!("the tail object has {} bytes, not {}", buf.filled, self.tail_len)));
        }
        Ok(())
    }

    /// At offset 0 the file is judged on its first bytes; a refused upload is
    /// terminated (nothing of it stays).
    async fn sniff(&mut self, chunk: &Uint8Array, at_end: bool) -> Result<(), Reply> {
        if self.content_type.is_some() {
            return Ok(());
        }
        let want = (SNIFF_BYTES - self.head.len()) as u32;
        self.head.extend(stream::head(chunk, want));
        if self.head.len() < SNIFF_BYTES && !at_end {
            return Ok(());
        }
        match judge("file", &self.head, &self.declared, Want::Any, &self.req.caller) {
            Ok(s) => {
                self.content_type = Some(s.mime().to_string());
                Ok(())
            }
            Err(refusal) => {
                self.gone = true;
                let _ = terminate(self.env, self.req).await;
                Err(refusal.into())
            }
        }
    }

    /// Records a part: the upload's offset is now its whole parts.
    async fn commit_part(&mut self) -> Result<(), Reply> {
        let db = d1::db(self.env).map_err(internal)?;
        let stored = self.parts.len() as u64 * upload::PART;
        let changed = d1::stmt(
            &db,
            "UPDATE uploads SET parts = json_insert(parts, '$[#]', ?1), upload_offset = ?2, tail_len = 0, content_type = ?3, \
             lock_until = ?4 WHERE id = ?5 AND lock_id = ?6",
            &[
                V::T(self.parts.last().map(String::as_str).unwrap_or("")),
                (stored as i64).into(),
                self.content_type.as_ref().into(),
                (now_ms() + LOCK_MS).into(),
                V::T(self.req.id),
                V::T(self.req.request_id),
            ],
        )
        .map_err(internal)?
        .run()
        .await
        .map_err(internal)?
        .meta()
        .map_err(internal)?
        .and_then(|m| m.changes)
        .unwrap_or(0);
        if changed != 1 {
            return Err(Reply::error(409, "the upload changed during this PATCH (terminated or expired)"));
        }
        Ok(())
    }

    async fn expires(&self) -> String {
        let db = d1::db(self.env);
        let at: Option<f64> =
            match db.and_then(|db| d1::stmt(&db, "SELECT expires_at FROM uploads WHERE id = ?1", &[V::T(self.req.id)])) {
                Ok(s) => s.first(Some("expires_at")).await.ok().flatten(),
                Err(_) => None,
            };
        http_date(at.unwrap_or(0.0) as i64)
    }
}
