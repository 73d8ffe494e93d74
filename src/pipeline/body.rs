//! Request bodies. `read_small` reads small bodies in full before routing,
//! so no response ever leaves its request's body unread. Early answers (401/403 from the guard,
//! 404/405, 415 before parsing) would otherwise skip the body, and the local
//! runtime (`wrangler dev` 4.86, more so with static assets configured) then
//! fails the *next* request on the server with a 503 "worker restarted
//! mid-request" or stalls it. JSON bodies are read by their handlers anyway,
//! so the cost is one copy of at most `READ_FIRST_LIMIT` bytes; larger or
//! unsized bodies (media uploads) keep streaming to their handler.

use std::pin::Pin;

use axum::body::{Body, Bytes};
use axum::extract::Request;
use axum::http::header::CONTENT_LENGTH;
use axum::response::{IntoResponse, Response};

use super::Next;
use crate::error::{ApiError, ApiResult};
use crate::http::MAX_JSON_BYTES;
use serde_json::Value;

/// Twice the largest JSON body: an oversized JSON request is still read in
/// full before its 413.
pub const READ_FIRST_LIMIT: usize = 2 * MAX_JSON_BYTES;

/// Whether a body of this declared length is read before routing.
pub fn reads_first(content_length: Option<&str>) -> bool {
    matches!(content_length.and_then(|v| v.trim().parse::<usize>().ok()), Some(n) if n > 0 && n <= READ_FIRST_LIMIT)
}

pub async fn read_small(req: Request, next: Next) -> Response {
    if !reads_first(req.headers().get(CONTENT_LENGTH).and_then(|v| v.to_str().ok())) {
        return next.run(req).await;
    }
    let (parts, body) = req.into_parts();
    match axum::body::to_bytes(body, READ_FIRST_LIMIT).await {
        Ok(bytes) => next.run(Request::from_parts(parts, Body::from(bytes))).await,
        Err(e) => ApiError::invalid(format!("body: could not read the request body ({e})")).into_response(),
    }
}

/// Whether a request's body is an upload the API hands on unread (to the
/// engine, which streams it to R2): multipart Jes and JesClips, any
/// non-JSON `POST /api/media` (multipart, or the file itself with its own
/// Content-Type), and tus PATCHes. `content_type` is the bare mime type.
pub fn streams(method: &str, path: &str, content_type: &str) -> bool {
    match (method, path) {
        ("POST", "/api/posts" | "/api/jesclips") => content_type == "multipart/form-data",
        ("POST", "/api/media") => !is_json(content_type),
        ("PATCH", p) => p.starts_with("/api/uploads/"),
        _ => false,
    }
}

/// `application/json` or any `application/…+json`.
pub fn is_json(mime: &str) -> bool {
    mime == "application/json" || (mime.starts_with("application/") && mime.ends_with("+json"))
}

/// Reads a body of at most `limit` bytes; beyond that it reads on to the end,
/// dropping the rest, and answers 413. (Answering before the body is read
/// makes `wrangler dev`'s proxy fail the next request with a 503; the edge
/// caps request bodies itself, so reading on costs at most that cap.)
pub async fn read_body(mut body: Body, limit: usize) -> ApiResult<Bytes> {
    use axum::body::HttpBody;
    let mut buf: Vec<u8> = Vec::new();
    let mut over = false;
    while let Some(frame) = std::future::poll_fn(|cx| Pin::new(&mut body).poll_frame(cx)).await {
        let frame = frame.map_err(|e| ApiError::invalid(format!("body: could not be read ({e})")))?;
        if let Ok(data) = frame.into_data() {
            if !over && buf.len() + data.len() <= limit {
                buf.extend_from_slice(&data);
            } else {
                over = true;
                buf = Vec::new();
            }
        }
    }
    if over {
        return Err(ApiError::PayloadTooLarge(format!("body: larger than {limit} bytes")));
    }
    Ok(Bytes::from(buf))
}

/// A string field of a JSON object body: absent or null is `None`.
pub fn str_field<'a>(body: &'a Value, name: &str) -> ApiResult<Option<&'a str>> {
    match body.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(_) => Err(ApiError::invalid(format!("{name}: must be a string"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn upload_bodies_stream_and_json_bodies_do_not() {
        assert!(streams("POST", "/api/jesclips", "multipart/form-data"));
        assert!(streams("POST", "/api/posts", "multipart/form-data"));
        assert!(!streams("POST", "/api/posts", "application/json"));
        assert!(streams("POST", "/api/media", "video/mp4") && streams("POST", "/api/media", ""));
        assert!(!streams("POST", "/api/media", "application/json"));
        assert!(streams("PATCH", "/api/uploads/01ABC", "application/offset+octet-stream"));
        assert!(!streams("PATCH", "/api/posts/1", "multipart/form-data"));
        assert!(!streams("GET", "/api/media", "video/mp4"));
    }

    #[test]
    fn only_small_declared_bodies_are_read_first() {
        assert!(reads_first(Some("2")));
        assert!(reads_first(Some("131072")));
        assert!(!reads_first(Some("131073")), "uploads keep streaming");
        assert!(!reads_first(Some("0")));
        assert!(!reads_first(None), "chunked bodies keep streaming");
        assert!(!reads_first(Some("lots")));
    }
}
