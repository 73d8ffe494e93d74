//! Routes about the API itself: health and the route table as data.

use axum::http::StatusCode;
use axum::response::Response;
use serde::Serialize;

use crate::auth::principal::Access;
use crate::auth::scope::ScopeSet;
use crate::domain::content::etag_matches;
use crate::error::{ApiError, ApiResult};
use crate::http::json;
use crate::pipeline::ctx::Ctx;
use crate::pipeline::Route;

/// GET /health
pub async fn health(_c: Ctx) -> ApiResult<Response> {
    Ok(json(StatusCode::OK, &serde_json::json!({ "status": "ok" })))
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RouteInfo {
    pub method: String,
    /// API.md notation: `/api/posts/:id`.
    pub path: String,
    /// `public`, `optional`, `authenticated`, `scopes` (all of them),
    /// `any_scope` (one of them), `session_only`, `key_only` or `key_or_token`.
    pub access: &'static str,
    pub scopes: Vec<&'static str>,
}

impl From<&Route> for RouteInfo {
    fn from(r: &Route) -> Self {
        let (access, scopes) = match r.access {
            Access::Public => ("public", vec![]),
            Access::Authenticated => ("authenticated", vec![]),
            Access::Scopes(s) => ("scopes", ScopeSet::of(s).names()),
            Access::AnyScope(s) => ("any_scope", ScopeSet::of(s).names()),
            Access::SessionOnly => ("session_only", vec![]),
            Access::Optional => ("optional", vec![]),
            Access::KeyOnly => ("key_only", vec![]),
            Access::KeyOrToken => ("key_or_token", vec![]),
            Access::Operator => ("operator", vec![]),
        };
        RouteInfo { method: r.method.to_string(), path: api_md_path(r.path), access, scopes }
    }
}

/// `/api/posts/{id}` → `/api/posts/:id`
pub fn api_md_path(table_path: &str) -> String {
    table_path
        .split('/')
        .map(|seg| match seg.strip_prefix('{').and_then(|s| s.strip_suffix('}')) {
            Some(name) => format!(":{name}"),
            None => seg.to_string(),
        })
        .collect::<Vec<_>>()
        .join("/")
}

/// GET /api/routes: the route table, so clients and tests can iterate over it.
pub async fn table(c: Ctx) -> ApiResult<Response> {
    let items: Vec<RouteInfo> = c.table.iter().map(RouteInfo::from).collect();
    Ok(json(StatusCode::OK, &serde_json::json!({ "items": items })))
}

/// GET /openapi.json: the committed document (public/openapi.json) with its
/// example credentials filled in (`openapi::examples`), read
/// from the assets binding so that none of it sits in the wasm, and answered
/// like every route (request id, log line, HEAD), with the asset's ETag.
pub async fn openapi(c: Ctx) -> ApiResult<Response> {
    use axum::http::{header, HeaderValue};
    use axum::response::IntoResponse;
    // fetch_request, not fetch(url, None): the latter links workers-rs's whole
    // RequestInit conversion (every `cf` option) into the wasm for nothing.
    let get = worker::Request::new("https://assets.invalid/openapi.json", worker::Method::Get)?;
    let file = c.app.env.assets("ASSETS")?.fetch_request(get).await?;
    if file.status() != StatusCode::OK {
        return Err(ApiError::internal(format!("openapi.json asset: {}", file.status())));
    }
    let etag = file.headers().get(header::ETAG).cloned();
    let fresh = matches!((c.header("if-none-match"), etag.as_ref().and_then(|t| t.to_str().ok())), (Some(h), Some(t)) if etag_matches(h, t));
    let mut res = if fresh {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        let bytes = axum::body::to_bytes(axum::body::Body::new(file.into_body()), 1 << 20).await.map_err(ApiError::internal)?;
        let doc = std::str::from_utf8(&bytes).map_err(ApiError::internal)?;
        let mut res = (StatusCode::OK, crate::api::openapi::examples::fill(doc)).into_response();
        res.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
        res
    };
    res.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    if let Some(t) = etag {
        res.headers_mut().insert(header::ETAG, t);
    }
    Ok(res)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_are_shown_in_api_md_notation() {
        assert_eq!(api_md_path("/api/auth/api-keys/{id}/webhooks/{webhookId}"), "/api/auth/api-keys/:id/webhooks/:webhookId");
        assert_eq!(api_md_path("/health"), "/health");
    }
}
