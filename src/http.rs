//! Request plumbing shared by every handler: the per-request context, JSON
//! body parsing whose every error is an `ApiError`, and response helpers.

use std::sync::Arc;

use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::de::DeserializeOwned;
use serde::Serialize;
use worker::{Context, Env};

use crate::error::ApiError;

/// What every handler may need of the runtime, put on each request by `lib.rs`.
#[derive(Clone)]
pub struct AppState {
    pub env: Env,
    pub ctx: Arc<Context>,
    pub request_id: String,
}

impl AppState {
    /// Runs `fut` after the response is sent (`ctx.waitUntil`), logging a failure.
    pub fn defer(&self, what: &'static str, fut: impl std::future::Future<Output = Result<(), ApiError>> + 'static) {
        let rid = self.request_id.clone();
        self.ctx.wait_until(async move {
            if let Err(e) = fut.await {
                crate::log::error(&rid, what, &e.to_string());
            }
        });
    }
}

/// Largest JSON body any route accepts.
pub const MAX_JSON_BYTES: usize = 64 * 1024;

pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    if bytes.len() > MAX_JSON_BYTES {
        return Err(ApiError::PayloadTooLarge(format!("JSON body larger than {MAX_JSON_BYTES} bytes")));
    }
    if std::str::from_utf8(bytes).is_err() {
        return Err(ApiError::invalid("body: not valid UTF-8"));
    }
    let de = &mut serde_json::Deserializer::from_slice(bytes);
    let value = serde_path_to_error::deserialize(de).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        if !inner.is_data() {
            return ApiError::invalid(format!("body: malformed JSON ({inner})"));
        }
        // serde names a missing field itself; for a bad value, say where it is.
        if path.is_empty() || path == "." {
            ApiError::invalid(format!("body: {inner}"))
        } else {
            ApiError::invalid(format!("{path}: {inner}"))
        }
    })?;
    Ok(value)
}

/// A JSON response with `status`.
pub fn json<T: Serialize>(status: StatusCode, body: &T) -> Response {
    match serde_json::to_vec(body) {
        Ok(bytes) => {
            let mut res = (status, bytes).into_response();
            res.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
            res
        }
        Err(e) => ApiError::internal(e).into_response(),
    }
}

/// A response whose body is JSON text rendered by SQL.
pub fn raw_json(status: StatusCode, body: String) -> Response {
    let mut res = (status, body).into_response();
    res.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    res
}

/// A list page: `{"items": […], "nextCursor": …|null}`.
pub fn page<T: Serialize>(items: &[T], next: Option<String>) -> Response {
    #[derive(Serialize)]
    #[serde(rename_all = "camelCase")]
    struct Page<'a, T> {
        items: &'a [T],
        next_cursor: Option<String>,
    }
    json(StatusCode::OK, &Page { items, next_cursor: next })
}

/// The client address: `CF-Connecting-IP`, which Cloudflare sets in production.
pub fn client_ip(headers: &HeaderMap) -> Option<String> {
    headers
        .get("cf-connecting-ip")
        .and_then(|v| v.to_str().ok())
        .map(|s| s.trim().to_string())
        .filter(|s| s.parse::<std::net::IpAddr>().is_ok())
}

/// The path of an absolute URL as the runtime gives it (`https://host/p?q`
/// -> `/p`), still percent-encoded, as the router matches it.
pub fn url_path(url: &str) -> &str {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    match rest.find(['/', '?', '#']) {
        Some(i) if rest[i..].starts_with('/') => rest[i..].split(['?', '#']).next().unwrap_or("/"),
        _ => "/",
    }
}

pub fn now_ms() -> i64 {
    worker::Date::now().as_millis() as i64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn url_path_is_the_path_alone_still_encoded() {
        assert_eq!(url_path("https://h.example/api/posts/a%20b?x=1#f"), "/api/posts/a%20b");
        assert_eq!(url_path("http://127.0.0.1:8787/api/auth/login"), "/api/auth/login");
        assert_eq!(url_path("https://h.example"), "/");
        assert_eq!(url_path("https://h.example?q=/x"), "/");
    }

    #[derive(serde::Deserialize, Debug)]
    #[allow(dead_code)]
    struct Signup {
        username: String,
    }

    #[test]
    fn json_errors_name_the_problem() {
        let e = parse_json::<Signup>(b"{}").unwrap_err();
        assert!(e.message().contains("missing field `username`"), "{}", e.message());
        let e = parse_json::<Signup>(b"{\"username\":").unwrap_err();
        assert!(e.message().contains("malformed JSON"));
        let e = parse_json::<Signup>(b"{\"username\":\"a\",\"username\":\"b\"}").unwrap_err();
        assert!(e.message().contains("duplicate field"), "{}", e.message());
        let e = parse_json::<Signup>(b"{\"username\": 5}").unwrap_err();
        assert!(e.message().starts_with("username: invalid type"), "{}", e.message());
        let e = parse_json::<Signup>(b"\xff\xfe").unwrap_err();
        assert!(e.message().contains("UTF-8"));
        let deep = "[".repeat(1000) + &"]".repeat(1000);
        assert_eq!(parse_json::<serde_json::Value>(deep.as_bytes()).unwrap_err().code(), "invalid_request");
    }
}
