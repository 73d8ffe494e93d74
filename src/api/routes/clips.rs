//! JesClips: short videos. Upload is multipart (`video` file, `caption`,
//! `visibility`) or JSON naming an uploaded video; the file is checked by its
//! bytes, stored in R2, and the
//! clip is a `posts` row of kind `jesclip`, so reading, editing, deleting,
//! comments, counts and visibility are the Jes ones (routes/posts.rs).

use axum::response::Response;

use serde_json::Value;

use crate::api::routes::media::{ingest, Uploaded, Want};
use crate::api::routes::posts::{publish, text_field, unattached, visibility_field, Draft};
use crate::domain::content::PostKind;
use crate::domain::content::{body_text, hashtags, Visibility, MAX_CAPTION_CHARS};
use crate::error::{ApiError, ApiResult};
use crate::pipeline::body::str_field;
use crate::pipeline::ctx::Ctx;

/// POST /api/jesclips: multipart (`video`, `caption`, `visibility`), or JSON
/// `{mediaId, caption, visibility}` naming a video uploaded with
/// `POST /api/media` (how MCP clients, which cannot send files, post clips).
pub async fn create(mut c: Ctx) -> ApiResult<Response> {
    let draft = if c.is_multipart() { draft_from_form(&mut c).await? } else { draft_from_json(&mut c).await? };
    publish(&c, draft).await
}

/// JSON `{mediaId, caption, visibility}`: a video already uploaded.
async fn draft_from_json(c: &mut Ctx) -> ApiResult<Draft> {
    let body = c.json(false).await?;
    let caption = text_field(&body, "caption", MAX_CAPTION_CHARS)?;
    let visibility = visibility_field(&body)?;
    let tags = caption_tags(&caption)?;
    let media_id = str_field(&body, "mediaId")?
        .ok_or_else(|| ApiError::invalid("mediaId: required (or upload multipart with a video file)"))?;
    let attach = vec![unattached(c, "mediaId", media_id, "video").await?];
    Ok(clip_draft(caption, visibility, tags, attach, vec![]))
}

/// Multipart: the `video` file comes with the request, streamed to R2.
async fn draft_from_form(c: &mut Ctx) -> ApiResult<Draft> {
    let got = ingest(c, Want::Video, "video", 1, false).await?;
    let fields = || -> ApiResult<_> {
        let caption =
            body_text("caption", got.text("caption").unwrap_or_default(), MAX_CAPTION_CHARS).map_err(ApiError::invalid)?;
        let visibility = match got.text("visibility") {
            Some(v) => Visibility::parse(v).map_err(ApiError::invalid)?,
            None => Visibility::Public,
        };
        let tags = caption_tags(&caption)?;
        if got.uploads.len() != 1 {
            return Err(ApiError::invalid("video: exactly one video file is required"));
        }
        Ok((caption, visibility, tags))
    };
    match fields() {
        Ok((caption, visibility, tags)) => Ok(clip_draft(caption, visibility, tags, vec![], got.uploads)),
        Err(e) => {
            crate::api::routes::media::discard(c, got.uploads.into_iter().map(|u| u.r2_key).collect()).await;
            Err(e)
        }
    }
}

/// A caption's hashtags, its errors naming `caption` (the rule is the Jes content's).
fn caption_tags(caption: &str) -> ApiResult<Vec<String>> {
    hashtags(caption).map_err(|e| ApiError::invalid(e.replacen("content:", "caption:", 1)))
}

fn clip_draft(
    caption: String,
    visibility: Visibility,
    tags: Vec<String>,
    attach: Vec<(String, Value)>,
    uploads: Vec<Uploaded>,
) -> Draft {
    Draft { kind: PostKind::Jesclip, content: caption, visibility, hub: None, tags, bounce_of: None, attach, uploads }
}
