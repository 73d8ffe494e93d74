//! Media: uploads streamed to R2 (`ingest`: the API checks what needs no
//! body, then hands the body over unread to the engine, which judges each
//! file by its first bytes, counts its size as it passes and writes it to R2
//! in parts: no Worker ever holds a whole file), and `GET /api/media/{id}`,
//! which streams an object with Content-Type, Content-Length, ETag and
//! single-range support to whoever may see its Jes. Objects are in R2 before
//! their D1 rows; if the write fails they are deleted, so no orphan row or
//! object is left.

use axum::body::Body;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{json, Value};

use crate::adapters::crypto::random_bytes;
use crate::adapters::d1::{self, V};
use crate::adapters::media;
use crate::api::routes::content::load::seen;
use crate::api::routes::posts::Draft;
use crate::auth::scope::Scope;
use crate::domain::content::{self, body_text, etag_matches, hashtags, PostKind, RangeAsk, MAX_JES_CHARS, MAX_MEDIA_PER_JES};
use crate::domain::ids;
pub use crate::domain::upload::Want;
use crate::domain::upload::{Caller, Reply, Spec};
use crate::error::{ApiError, ApiResult};
use crate::http::{json, now_ms};
use crate::pipeline::body::is_json;
use crate::pipeline::ctx::Ctx;

/// A file this request put in R2, before its D1 row exists.
pub struct Uploaded {
    pub id: String,
    pub r2_key: String,
    pub content_type: String,
    pub size: u64,
    pub etag: String,
}

impl Uploaded {
    /// What `media_sql!` renders for it.
    pub fn render(&self) -> Value {
        json!({ "id": self.id, "url": format!("/api/media/{}", self.id), "contentType": self.content_type, "size": self.size })
    }
}

/// `MAX_UPLOAD_BYTES`: the largest file accepted.
pub fn max_upload(c: &Ctx) -> u64 {
    crate::config::Config::get(&c.app.env).max_upload_bytes as u64
}

/// The caller as an upload sees it: which kinds its scopes let it upload.
pub fn caller(c: &Ctx) -> ApiResult<Caller> {
    let who = c.who()?;
    Ok(Caller { account: who.user_id.clone(), images: who.can(Scope::WriteJes), videos: who.can(Scope::WriteJesclip) })
}

/// An engine reply's refusal as the API's error.
pub fn refusal(r: Reply) -> ApiError {
    match r.status {
        400 => ApiError::InvalidRequest(r.message),
        403 => match r.need.as_deref() {
            Some("write:jes") => ApiError::InsufficientScope(vec![Scope::WriteJes.as_str()]),
            Some(_) => ApiError::InsufficientScope(vec![Scope::WriteJesclip.as_str()]),
            None => ApiError::Forbidden(r.message),
        },
        404 => ApiError::NotFound,
        405 => ApiError::MethodNotAllowed,
        409 => ApiError::Conflict(r.message),
        412 => ApiError::PreconditionFailed(r.message),
        413 => ApiError::PayloadTooLarge(r.message),
        415 => ApiError::UnsupportedMediaType(r.message),
        _ => ApiError::internal(format!("the engine answered {}: {}", r.status, r.message)),
    }
}

/// A single-request upload, stored: its text fields and files.
pub struct Ingested {
    pub fields: Vec<(String, String)>,
    pub uploads: Vec<Uploaded>,
}

impl Ingested {
    /// A text field (the first, if repeated).
    pub fn text(&self, name: &str) -> Option<&str> {
        self.fields.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str())
    }

    fn keys(&self) -> Vec<String> {
        self.uploads.iter().map(|u| u.r2_key.clone()).collect()
    }
}

/// Hands the request's body, unread, to the engine, which streams its files
/// to R2 (`engine::ingest`): multipart (`file_field` takes up to `max_files`
/// files) or, with `raw`, the body is the file itself. What needs no body is
/// checked here first: the Content-Type (415) and the declared length (413).
pub async fn ingest(c: &mut Ctx, want: Want, file_field: &str, max_files: u8, raw: bool) -> ApiResult<Ingested> {
    if !raw && !c.is_multipart() {
        return Err(ApiError::UnsupportedMediaType("Content-Type must be multipart/form-data".into()));
    }
    // RFC 2046's boundary (1 to 70 characters): refused before any byte is read.
    if !raw {
        if let Err(msg) = crate::domain::idempotency::boundary(c.header("content-type").unwrap_or_default()) {
            return Err(ApiError::invalid(msg));
        }
    }
    let max = max_upload(c);
    let limit = if raw { max } else { max + 64 * 1024 };
    let body = c.raw.as_ref().ok_or_else(|| ApiError::invalid("body: an upload must come as the request's body"))?;
    if body.length.is_some_and(|n| n > limit) {
        return Err(ApiError::PayloadTooLarge(format!("body: uploads are limited to {max} bytes")));
    }
    let length = body.length;
    let stream = body.take();
    let target = c.target();
    let spec = Spec {
        caller: caller(c)?,
        want,
        content_type: c.header("content-type").unwrap_or("").to_string(),
        raw,
        file_field: file_field.to_string(),
        max_files,
        max_bytes: max,
        length,
        fingerprint: c.fingerprint.as_ref().map(|_| (c.method.to_string(), target)),
        hash_only: false,
    };
    let reply = crate::adapters::engine::ingest(&c.app.env, &spec, stream.as_ref()).await?;
    if let Some(cell) = &c.fingerprint {
        cell.set(reply.fingerprint.clone());
    }
    if reply.status >= 400 {
        return Err(refusal(reply));
    }
    let uploads = reply
        .files
        .into_iter()
        .map(|f| Uploaded {
            id: ids::ulid(now_ms(), random_bytes()),
            r2_key: f.key,
            content_type: f.content_type,
            size: f.size,
            etag: f.etag,
        })
        .collect();
    Ok(Ingested { fields: reply.fields, uploads })
}

/// Runs `build` on an upload; should it refuse the fields, the files go again.
async fn keep_or_discard<T>(c: &Ctx, got: &Ingested, built: ApiResult<T>) -> ApiResult<T> {
    if built.is_err() {
        discard(c, got.keys()).await;
    }
    built
}

/// A Jes from `multipart/form-data`: `content`, `visibility`, `hub`, and up
/// to four `media` image files.
pub async fn jes_draft_from_form(c: &mut Ctx) -> ApiResult<Draft> {
    let got = ingest(c, Want::Image, "media", MAX_MEDIA_PER_JES as u8, false).await?;
    let fields = || -> ApiResult<_> {
        let content = body_text("content", got.text("content").unwrap_or_default(), MAX_JES_CHARS).map_err(ApiError::invalid)?;
        let visibility = match got.text("visibility") {
            Some(v) => content::Visibility::parse(v).map_err(ApiError::invalid)?,
            None => content::Visibility::Public,
        };
        let hub = got.text("hub").map(|h| content::hub(h).map_err(ApiError::invalid)).transpose()?;
        let tags = hashtags(&content).map_err(ApiError::invalid)?;
        if content.is_empty() && got.uploads.is_empty() {
            return Err(ApiError::invalid("content: must not be empty"));
        }
        Ok((content, visibility, hub, tags))
    };
    let (content, visibility, hub, tags) = keep_or_discard(c, &got, fields()).await?;
    Ok(Draft { kind: PostKind::Jes, content, visibility, hub, tags, bounce_of: None, attach: vec![], uploads: got.uploads })
}

/// POST /api/media: one image or video for a later Jes's `mediaIds` (images)
/// or JesClip's `mediaId` (a video), e.g. from an MCP client, which cannot
/// send files. The file comes as multipart (`file`) or as the body itself,
/// with its own Content-Type and Content-Length. Until attached it is visible
/// to its owner only. The route takes write:jes or write:jesclip; a key
/// uploads what its scopes make: images with write:jes, a video with
/// write:jesclip (the engine judges the bytes, and answers 403 otherwise).
pub async fn create(mut c: Ctx) -> ApiResult<Response> {
    let mime = c.content_type();
    if is_json(&mime) {
        return Err(ApiError::UnsupportedMediaType(
            "Content-Type must be multipart/form-data, or the file's own type with the file as the body".into(),
        ));
    }
    let raw = !c.is_multipart();
    let mut got = ingest(&mut c, Want::Any, "file", 1, raw).await?;
    if got.uploads.len() != 1 {
        discard(&c, got.keys()).await;
        return Err(ApiError::invalid("file: exactly one file is required"));
    }
    let u = got.uploads.pop().ok_or_else(|| ApiError::internal("upload vanished"))?;
    let db = d1::db(&c.app.env)?;
    let me = &c.who()?.user_id;
    let insert = d1::stmt(
        &db,
        "INSERT INTO media (id, owner_id, r2_key, content_type, size, etag, created_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
        &[
            (&u.id).into(),
            me.into(),
            (&u.r2_key).into(),
            (&u.content_type).into(),
            (u.size as i64).into(),
            (&u.etag).into(),
            now_ms().into(),
        ],
    );
    let written = match insert {
        Ok(s) => s.run().await.map_err(ApiError::from).map(|_| ()),
        Err(e) => Err(e),
    };
    if let Err(e) = written {
        discard(&c, vec![u.r2_key]).await;
        return Err(e);
    }
    Ok(json(StatusCode::CREATED, &u.render()))
}

/// Deletes a failed write's uploads now (see `purge`). Should that fail,
/// their `media_trash` entries stay and the cron deletes them later.
pub async fn discard(c: &Ctx, keys: Vec<String>) {
    if let Err(e) = media::purge(&c.app.env, &keys).await {
        crate::log::error(&c.app.request_id, "discard uploads", &e.to_string());
    }
}

/// Deletes a deleted Jes's objects after the response: its rows are gone
/// (see `forget`; should it fail, the cron finds their `media_trash` entries).
pub fn discard_later(c: &Ctx, keys: Vec<String>) {
    if keys.is_empty() {
        return;
    }
    let env = c.app.env.clone();
    c.app.defer("delete media", async move { media::forget(&env, &keys).await });
}

/// A response carrying the object's bytes (`part`: offset and length) as a
/// `JsBody`: `lib.rs` gives the runtime the R2 stream itself. HEAD fetches
/// nothing.
async fn stream(c: &Ctx, key: &str, part: Option<(u64, u64)>, len: u64) -> ApiResult<Response> {
    let mut res = Response::new(Body::empty());
    set(&mut res, header::CONTENT_LENGTH, &len.to_string());
    if c.method != axum::http::Method::HEAD {
        let body = media::get(&c.app.env, key, part).await?.ok_or(ApiError::NotFound)?;
        res.extensions_mut().insert(media::JsBody(body));
    }
    Ok(res)
}

fn set(res: &mut Response, name: header::HeaderName, value: &str) {
    if let Ok(v) = HeaderValue::from_str(value) {
        res.headers_mut().insert(name, v);
    }
}

/// A media item as `get` reads it: the object, and what the visibility
/// decision needs (the Jes it is on, or for an unattached upload its owner).
struct MediaRow {
    r2_key: String,
    content_type: String,
    size: f64,
    etag: Option<String>,
    visibility: Option<String>,
    is_owner: bool,
    follows_author: bool,
    deleted: bool,
}

impl From<&d1::Row> for MediaRow {
    fn from(r: &d1::Row) -> Self {
        MediaRow {
            r2_key: r.text("r2_key").unwrap_or_default(),
            content_type: r.text("content_type").unwrap_or_default(),
            size: r.num("size"),
            etag: r.text("etag"),
            visibility: r.text("visibility"),
            is_owner: r.flag("is_owner"),
            follows_author: r.flag("follows_author"),
            deleted: r.flag("deleted"),
        }
    }
}

/// GET /api/media/{id}: the object, to anyone who may see the Jes it belongs
/// to (no credential needed for a PUBLIC Jes); an unattached upload only to its
/// owner. Anything else is a 404.
pub async fn get(c: Ctx) -> ApiResult<Response> {
    const SQL: &str = concat!(
        "SELECT m.r2_key, m.content_type, m.size, m.etag, ",
        "coalesce(p.visibility, 'PRIVATE') AS visibility, (coalesce(p.author_id, m.owner_id) IS ?1) AS is_owner, ",
        "EXISTS (SELECT 1 FROM follows WHERE follower_id = ?1 AND followee_id = p.author_id) AS follows_author, ",
        "(p.deleted_at IS NOT NULL OR u.deleted_at IS NOT NULL) AS deleted ",
        "FROM media m LEFT JOIN posts p ON p.id = m.post_id ",
        "JOIN users u ON u.id = coalesce(p.author_id, m.owner_id) WHERE m.id = ?2"
    );
    let db = d1::db(&c.app.env)?;
    let row: Option<d1::Row> = d1::stmt(&db, SQL, &[c.viewer().into(), V::T(&c.id)])?.first(None).await?;
    let row = row.as_ref().map(MediaRow::from);
    let row = row.filter(|r| seen(r.visibility.as_deref(), r.deleted, r.is_owner, r.follows_author)).ok_or(ApiError::NotFound)?;
    let size = row.size as u64;
    let etag = row.etag.clone().unwrap_or_default();
    let mut res = if c.header("if-none-match").is_some_and(|h| etag_matches(h, &etag)) {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        let range_header = match c.header("if-range") {
            Some(v) if v.trim() != etag => None,
            _ => c.header("range"),
        };
        match content::range(range_header, size) {
            RangeAsk::Unsatisfiable => {
                let mut res = json(
                    StatusCode::RANGE_NOT_SATISFIABLE,
                    &json!({ "error": { "code": "range_not_satisfiable", "message": format!("Range: outside the {size} bytes of this media") } }),
                );
                set(&mut res, header::CONTENT_RANGE, &format!("bytes */{size}"));
                return Ok(res);
            }
            RangeAsk::Full => stream(&c, &row.r2_key, None, size).await?,
            RangeAsk::Part { start, end } => {
                let len = end - start + 1;
                let mut res = stream(&c, &row.r2_key, Some((start, len)), len).await?;
                *res.status_mut() = StatusCode::PARTIAL_CONTENT;
                set(&mut res, header::CONTENT_RANGE, &format!("bytes {start}-{end}/{size}"));
                res
            }
        }
    };
    set(&mut res, header::CONTENT_TYPE, &row.content_type);
    set(&mut res, header::ETAG, &etag);
    set(&mut res, header::ACCEPT_RANGES, "bytes");
    // Visibility can change (a PATCH to PRIVATE): caches must revalidate.
    set(&mut res, header::CACHE_CONTROL, "private, no-cache");
    Ok(res)
}
