//! Discovery: the protected resource metadata (RFC 9728) an MCP client finds
//! through a 401's `WWW-Authenticate`, and the authorization server metadata
//! (RFC 8414) it reads next. The issuer is the request's origin, exactly
//! (no trailing slash): the MCP SDK compares it byte for byte.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::Response;
use serde_json::{json, Value};

use crate::domain::oauth::client::GRANT_TYPES;
use crate::domain::oauth::grantable;
use crate::error::ApiResult;
use crate::pipeline::ctx::Ctx;

/// Public, cacheable for five minutes, readable by browser-based clients.
fn document(v: &Value) -> Response {
    let mut res = crate::http::json(StatusCode::OK, v);
    let h = res.headers_mut();
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("public, max-age=300"));
    h.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, HeaderValue::from_static("*"));
    res
}

fn protected_resource(resource: &str, origin: &str) -> Response {
    document(&json!({
        "resource": resource,
        "authorization_servers": [origin],
        "scopes_supported": grantable().names(),
        "bearer_methods_supported": ["header"],
        "resource_name": "Jestha",
    }))
}

/// GET /.well-known/oauth-protected-resource: the whole API.
pub async fn resource(c: Ctx) -> ApiResult<Response> {
    Ok(protected_resource(&c.origin, &c.origin))
}

/// GET /.well-known/oauth-protected-resource/mcp: the MCP endpoint (RFC 9728
/// §3.1: the resource's path after the well-known part).
pub async fn resource_mcp(c: Ctx) -> ApiResult<Response> {
    Ok(protected_resource(&format!("{}/mcp", c.origin), &c.origin))
}

/// GET /.well-known/oauth-authorization-server
pub async fn server(c: Ctx) -> ApiResult<Response> {
    let o = &c.origin;
    Ok(document(&json!({
        "issuer": o,
        "authorization_endpoint": format!("{o}/oauth/authorize"),
        "token_endpoint": format!("{o}/oauth/token"),
        "registration_endpoint": format!("{o}/oauth/register"),
        "revocation_endpoint": format!("{o}/oauth/revoke"),
        "device_authorization_endpoint": format!("{o}/oauth/device"),
        "response_types_supported": ["code"],
        "response_modes_supported": ["query"],
        "grant_types_supported": GRANT_TYPES,
        "code_challenge_methods_supported": ["S256"],
        "token_endpoint_auth_methods_supported": ["none"],
        "revocation_endpoint_auth_methods_supported": ["none"],
        "scopes_supported": grantable().names(),
        "authorization_response_iss_parameter_supported": true,
        "client_id_metadata_document_supported": true,
        "service_documentation": format!("{o}/docs"),
    })))
}
