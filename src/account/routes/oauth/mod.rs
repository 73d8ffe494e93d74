//! The OAuth 2.1 authorization server (issue 22; API.md "OAuth 2.1 for agents
//! and the CLI"; docs/design/oauth.md): discovery documents, client
//! registration, and (in the files beside this one) authorization, tokens,
//! revocation and the device grant. Its endpoints answer in their RFCs'
//! shapes (snake_case, `{"error","error_description"}`), not the API's
//! envelope, and never store a secret in the clear. The rules are pure, in
//! `domain::oauth`.

pub mod authorize;
pub mod device;
pub mod grants;
pub mod metadata;
pub mod revoke;
pub mod token;

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::Response;
use serde::Serialize;
use serde_json::json;

use crate::adapters::crypto::random_bytes;
use crate::adapters::gate;
use crate::domain::ids;
use crate::domain::oauth::client::client_metadata;
use crate::error::{ApiError, ApiResult};
use crate::http::{client_ip, now_ms};
use crate::pipeline::body::is_json;
use crate::pipeline::ctx::Ctx;

/// Registrations one address may make per hour.
pub const REGISTRATIONS_PER_HOUR: u32 = 20;
/// The largest registration request.
const MAX_REGISTRATION_BYTES: usize = 16 * 1024;

/// An OAuth answer: JSON that is never cached (RFC 6749 §5.1).
pub fn oauth_json(status: StatusCode, body: &impl Serialize) -> Response {
    let mut res = crate::http::json(status, body);
    let h = res.headers_mut();
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
    // Browser-based clients call these directly (see `pipeline::cors_open`).
    h.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, HeaderValue::from_static("*"));
    res
}

/// An OAuth error (RFC 6749 §5.2 and the RFCs that extend it).
pub fn oauth_error(status: StatusCode, error: &str, description: impl Into<String>) -> Response {
    oauth_json(status, &json!({ "error": error, "error_description": description.into() }))
}

/// A throttled OAuth request: 429 with `Retry-After`.
fn too_many(retry_after: u64, what: &str) -> Response {
    let mut res = oauth_error(StatusCode::TOO_MANY_REQUESTS, "invalid_request", format!("too many {what}; try again later"));
    res.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(retry_after));
    res
}

/// Counts one try of `what` by the caller's address against `limit` per
/// `window_secs`; `Some(429)` once the address is over it.
pub async fn throttled(c: &Ctx, what: &str, limit: u32, window_secs: i64) -> ApiResult<Option<Response>> {
    let ip = client_ip(&c.headers).unwrap_or_default();
    let over = gate::address_over(&c.app.env, &format!("oauth:{what}"), &ip, limit, window_secs).await?;
    Ok(over.map(|retry_after| too_many(retry_after, what)))
}

/// POST /oauth/register (RFC 7591): public clients only; the answer's
/// `token_endpoint_auth_method` is always `none` and there is no secret.
pub async fn register(mut c: Ctx) -> ApiResult<Response> {
    if let Some(res) = throttled(&c, "registrations", REGISTRATIONS_PER_HOUR, 3600).await? {
        return Ok(res);
    }
    let bad = |msg: &str| Ok(oauth_error(StatusCode::BAD_REQUEST, "invalid_client_metadata", msg));
    if !is_json(&c.content_type()) {
        return bad("Content-Type must be application/json");
    }
    let bytes = match c.bytes(MAX_REGISTRATION_BYTES).await {
        Ok(b) => b,
        Err(ApiError::PayloadTooLarge(_)) => return bad("the registration is larger than 16 KiB"),
        Err(e) => return Err(e),
    };
    let Ok(body) = serde_json::from_slice::<serde_json::Value>(&bytes) else { return bad("the body is not JSON") };
    let m = match client_metadata(&body) {
        Ok(m) => m,
        Err((error, description)) => return Ok(oauth_error(StatusCode::BAD_REQUEST, error, description)),
    };
    let now = now_ms();
    let id = format!("cli_{}", ids::ulid(now, random_bytes()));
    crate::adapters::cimd::save(&c.app.env, &id, &m, now, None).await?;
    let mut out = json!({
        "client_id": id,
        "client_id_issued_at": now / 1000,
        "client_name": m.client_name,
        "redirect_uris": m.redirect_uris,
        "grant_types": m.grant_types,
        "response_types": if m.redirect_uris.is_empty() { json!([]) } else { json!(["code"]) },
        "token_endpoint_auth_method": "none",
    });
    if !m.scope.is_empty() {
        out["scope"] = m.scope.into();
    }
    if let Some(uri) = m.client_uri {
        out["client_uri"] = uri.into();
    }
    Ok(oauth_json(StatusCode::CREATED, &out))
}
