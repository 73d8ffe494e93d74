//! Reads small request bodies in full before routing, so no response ever
//! leaves its request's body unread. Early answers (401/403 from the guard,
//! 404/405, 415 before parsing) would otherwise skip the body, and the local
//! runtime (`wrangler dev` 4.86, more so with static assets configured) then
//! fails the *next* request on the server with a 503 "worker restarted
//! mid-request" or stalls it. JSON bodies are read by their handlers anyway,
//! so the cost is one copy of at most `READ_FIRST_LIMIT` bytes; larger or
//! unsized bodies (media uploads) keep streaming to their handler.

use axum::body::Body;
use axum::extract::Request;
use axum::http::header::CONTENT_LENGTH;
use axum::response::{IntoResponse, Response};

use crate::app::Next;
use crate::error::ApiError;
use crate::http::MAX_JSON_BYTES;

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

#[cfg(test)]
mod tests {
    use super::*;

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
