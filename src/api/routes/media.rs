//! Media: multipart uploads checked by magic bytes and size, stored in R2
//! under opaque keys, and `GET /api/media/{id}`, which streams an object with
//! Content-Type, Content-Length, ETag and single-range support to whoever may
//! see its Jes. Uploads go to R2 first and then D1 in one batch; if the batch
//! fails the objects are deleted, so no orphan row or object is left.

use axum::body::Body;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{json, Value};
use web_sys::File;

use crate::adapters::crypto::random_bytes;
use crate::adapters::d1::{self, V};
use crate::adapters::media::{self, Form};
use crate::api::routes::content::load::seen;
use crate::api::routes::posts::Draft;
use crate::auth::scope::Scope;
use crate::domain::content::{
    self, body_text, declared_matches, etag_matches, hashtags, sniff, PostKind, RangeAsk, MAX_JES_CHARS, MAX_MEDIA_PER_JES,
    SNIFF_BYTES,
};
use crate::domain::ids;
use crate::error::{ApiError, ApiResult};
use crate::http::{json, now_ms};
use crate::pipeline::ctx::Ctx;

/// A file this request put in R2, before its D1 row exists.
pub struct Uploaded {
    pub id: String,
    pub r2_key: String,
    pub content_type: &'static str,
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

/// Reads a `multipart/form-data` body (at most the upload limit plus room for
/// the other fields) and parses it natively.
pub async fn read_form(c: &mut Ctx) -> ApiResult<Form> {
    if !c.is_multipart() {
        return Err(ApiError::UnsupportedMediaType("Content-Type must be multipart/form-data".into()));
    }
    let limit = max_upload(c) as usize + 64 * 1024;
    if c.header("content-length").and_then(|v| v.parse::<usize>().ok()).is_some_and(|n| n > limit) {
        c.drain().await;
        return Err(ApiError::PayloadTooLarge(format!("body: uploads are limited to {} bytes", max_upload(c))));
    }
    let bytes = c.bytes(limit).await?;
    let ct = c.header("content-type").unwrap_or_default().to_string();
    media::parse_form(&bytes, &ct).await
}

/// What a route takes: images, videos, or either.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Want {
    Image,
    Video,
    Any,
}

/// Checks a file without storing it: size (413), type by magic bytes (415),
/// and the kind the route takes.
async fn check(c: &Ctx, field: &str, file: &File, want: Want) -> ApiResult<content::Sniffed> {
    let size = file.size() as u64;
    if size == 0 {
        return Err(ApiError::invalid(format!("{field}: the file is empty")));
    }
    let max = max_upload(c);
    if size > max {
        return Err(ApiError::PayloadTooLarge(format!("{field}: files are limited to {max} bytes")));
    }
    let kinds = match want {
        Want::Image => "an image (jpeg, png, gif, webp)",
        Want::Video => "a video (mp4, quicktime, webm)",
        Want::Any => "an image (jpeg, png, gif, webp) or a video (mp4, quicktime, webm)",
    };
    let head = media::head(file, SNIFF_BYTES).await?;
    let sniffed = sniff(&head)
        .filter(|s| want == Want::Any || s.is_image() == (want == Want::Image))
        .ok_or_else(|| ApiError::UnsupportedMediaType(format!("{field}: must be {kinds}, judged by its content")))?;
    let declared = file.type_();
    if !declared_matches(&declared, sniffed) {
        return Err(ApiError::UnsupportedMediaType(format!(
            "{field}: declared {declared} but the content is {}",
            sniffed.mime()
        )));
    }
    Ok(sniffed)
}

/// Checks every file first (nothing is stored when one is refused), then
/// puts them in R2 under random keys. A failed put deletes the earlier ones.
pub async fn upload_all(c: &Ctx, field: &str, files: &[File], want: Want) -> ApiResult<Vec<Uploaded>> {
    let kinds = check_all(c, field, files, want).await?;
    store_all(c, files, kinds).await
}

async fn check_all(c: &Ctx, field: &str, files: &[File], want: Want) -> ApiResult<Vec<content::Sniffed>> {
    let mut kinds = Vec::with_capacity(files.len());
    for f in files {
        kinds.push(check(c, field, f, want).await?);
    }
    Ok(kinds)
}

/// How long an upload's keys wait in `media_trash` before the cron may take
/// them for abandoned. The body is read in full before the keys are listed,
/// so only R2 puts and one D1 batch lie between the listing and the rows; a
/// request still writing an hour later would lose its upload.
const UPLOAD_GRACE_MS: i64 = 3_600_000;

async fn store_all(c: &Ctx, files: &[File], kinds: Vec<content::Sniffed>) -> ApiResult<Vec<Uploaded>> {
    if files.is_empty() {
        return Ok(vec![]);
    }
    let keys: Vec<String> = files.iter().map(|_| format!("m/{}", hex::encode(random_bytes::<16>()))).collect();
    // Listed before any byte is put: should this request die before its rows
    // are written (which take the keys off, schema.sql), the cron deletes them.
    let db = d1::db(&c.app.env)?;
    let list = serde_json::to_string(&keys)?;
    let sql = "INSERT INTO media_trash (r2_key, purge_after) SELECT value, ?2 FROM json_each(?1)";
    d1::stmt(&db, sql, &[(&list).into(), (now_ms() + UPLOAD_GRACE_MS).into()])?.run().await?;
    let mut done: Vec<Uploaded> = Vec::with_capacity(files.len());
    for ((f, kind), r2_key) in files.iter().zip(kinds).zip(keys) {
        match media::put(&c.app.env, &r2_key, f, kind.mime()).await {
            Ok(etag) => done.push(Uploaded {
                id: ids::ulid(now_ms(), random_bytes()),
                r2_key,
                content_type: kind.mime(),
                size: f.size() as u64,
                etag,
            }),
            Err(e) => {
                let mut put: Vec<String> = done.into_iter().map(|u| u.r2_key).collect();
                put.push(r2_key);
                discard(c, put).await;
                return Err(e);
            }
        }
    }
    Ok(done)
}

/// A Jes from `multipart/form-data`: `content`, `visibility`, `hub`, and up
/// to four `media` image files.
pub async fn jes_draft_from_form(c: &mut Ctx) -> ApiResult<Draft> {
    let form = read_form(c).await?;
    let content = body_text("content", &form.text("content")?.unwrap_or_default(), MAX_JES_CHARS).map_err(ApiError::invalid)?;
    let visibility = match form.text("visibility")? {
        Some(v) => content::Visibility::parse(&v).map_err(ApiError::invalid)?,
        None => content::Visibility::Public,
    };
    let hub = form.text("hub")?.map(|h| content::hub(&h).map_err(ApiError::invalid)).transpose()?;
    let tags = hashtags(&content).map_err(ApiError::invalid)?;
    let files = form.files("media")?;
    if files.len() > MAX_MEDIA_PER_JES {
        return Err(ApiError::invalid(format!("media: at most {MAX_MEDIA_PER_JES} files per Jes")));
    }
    if content.is_empty() && files.is_empty() {
        return Err(ApiError::invalid("content: must not be empty"));
    }
    let uploads = upload_all(c, "media", &files, Want::Image).await?;
    Ok(Draft { kind: PostKind::Jes, content, visibility, hub, tags, bounce_of: None, attach: vec![], uploads })
}

/// POST /api/media: one image or video (`file`) for a later Jes's `mediaIds`
/// (images) or JesClip's `mediaId` (a video), e.g. from an MCP client, which
/// cannot send files. Until attached it is visible to its owner only.
/// The route takes write:jes or write:jesclip; a key uploads what its scopes
/// make: images (for a Jes) with write:jes, a video (for a JesClip) with
/// write:jesclip, as the scope catalog says upload is part of each.
pub async fn create(mut c: Ctx) -> ApiResult<Response> {
    let form = read_form(&mut c).await?;
    let files = form.files("file")?;
    if files.len() != 1 {
        return Err(ApiError::invalid("file: exactly one file is required"));
    }
    let kinds = check_all(&c, "file", &files, Want::Any).await?;
    let need = if kinds[0].is_image() { Scope::WriteJes } else { Scope::WriteJesclip };
    if !c.who()?.can(need) {
        return Err(ApiError::InsufficientScope(vec![need.as_str()]));
    }
    let mut up = store_all(&c, &files, kinds).await?;
    let u = up.pop().ok_or_else(|| ApiError::internal("upload vanished"))?;
    let db = d1::db(&c.app.env)?;
    let me = &c.who()?.user_id;
    let insert = d1::stmt(
        &db,
        "INSERT INTO media (id, owner_id, r2_key, content_type, size, etag, created_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
        &[
            (&u.id).into(),
            me.into(),
            (&u.r2_key).into(),
            u.content_type.into(),
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
