//! JesClips: short videos. Upload is multipart (`video` file, `caption`,
//! `visibility`) or JSON naming an uploaded video; the file is checked by its
//! bytes, stored in R2, and the
//! clip is a `posts` row of kind `jesclip`, so reading, editing, deleting,
//! comments, counts and visibility are the Jes ones (routes/posts.rs).

use axum::response::Response;

use crate::api::routes::media::{read_form, upload_all, Want};
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
    if !c.is_multipart() {
        let body = c.json(false).await?;
        let caption = text_field(&body, "caption", MAX_CAPTION_CHARS)?;
        let visibility = visibility_field(&body)?;
        let tags = hashtags(&caption).map_err(|e| ApiError::invalid(e.replacen("content:", "caption:", 1)))?;
        let media_id = str_field(&body, "mediaId")?
            .ok_or_else(|| ApiError::invalid("mediaId: required (or upload multipart with a video file)"))?;
        let attach = vec![unattached(&c, "mediaId", media_id, "video").await?];
        let draft = Draft {
            kind: PostKind::Jesclip,
            content: caption,
            visibility,
            hub: None,
            tags,
            bounce_of: None,
            attach,
            uploads: vec![],
        };
        return publish(&c, draft).await;
    }
    let form = read_form(&mut c).await?;
    let caption =
        body_text("caption", &form.text("caption")?.unwrap_or_default(), MAX_CAPTION_CHARS).map_err(ApiError::invalid)?;
    let visibility = match form.text("visibility")? {
        Some(v) => Visibility::parse(&v).map_err(ApiError::invalid)?,
        None => Visibility::Public,
    };
    let tags = hashtags(&caption).map_err(|e| ApiError::invalid(e.replacen("content:", "caption:", 1)))?;
    let files = form.files("video")?;
    if files.len() != 1 {
        return Err(ApiError::invalid("video: exactly one video file is required"));
    }
    let uploads = upload_all(&c, "video", &files, Want::Video).await?;
    let draft = Draft {
        kind: PostKind::Jesclip,
        content: caption,
        visibility,
        hub: None,
        tags,
        bounce_of: None,
        attach: vec![],
        uploads,
    };
    publish(&c, draft).await
}
