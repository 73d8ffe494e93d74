//! The `fetch` of both HTTP Workers once the request is theirs: the runtime
//! context, the request through `dispatch` over the route table, the headers
//! every answer carries (`X-Request-Id`, `nosniff`, `no-store` under
//! `/api/`, a 401's `WWW-Authenticate` with the request's origin), one log line, and the answer handed to the runtime.

use std::sync::Arc;

use axum::http::HeaderValue;
use worker::{Context, Env, HttpRequest, Result};

use super::Route;
use crate::auth::challenge;
use crate::{adapters, error, http, log};

/// Serves `req` through `table`; `request_id` names it in logs and headers.
pub async fn serve(
    table: &'static [Route],
    req: HttpRequest,
    env: Env,
    ctx: Context,
    request_id: String,
    started: i64,
) -> Result<web_sys::Response> {
    let method = req.method().to_string();
    let path = req.uri().path().to_string();
    let uri = req.uri().clone();
    let mut req = req;
    req.extensions_mut().insert(http::AppState { env, ctx: Arc::new(ctx), request_id: request_id.clone() });
    let mut res = super::dispatch(table, req.map(axum::body::Body::new)).await;
    let headers = res.headers_mut();
    if let Ok(v) = HeaderValue::from_str(&request_id) {
        headers.insert("x-request-id", v);
    }
    headers.insert("x-content-type-options", HeaderValue::from_static("nosniff"));
    if path.starts_with("/api/") && !headers.contains_key("cache-control") {
        headers.insert("cache-control", HeaderValue::from_static("no-store"));
    }
    if let Some(u) = res.extensions().get::<challenge::Unauthorized>().copied() {
        let origin = challenge::origin(uri.scheme_str().unwrap_or("https"), uri.authority().map_or("", |a| a.as_str()));
        if let Ok(v) = HeaderValue::from_str(&challenge::unauthorized(&origin, u)) {
            res.headers_mut().entry(axum::http::header::WWW_AUTHENTICATE).or_insert(v);
        }
    }
    let detail = res.extensions().get::<error::InternalDetail>().map(|d| d.0.clone());
    log::request(&request_id, &method, &path, res.status().as_u16(), http::now_ms() - started, detail.as_deref());
    // Content: media bodies the runtime streams itself (R2), handed over as
    // is so Content-Length survives and no byte passes through wasm.
    if let Some(body) = res.extensions_mut().remove::<adapters::media::JsBody>() {
        if method != "HEAD" {
            return adapters::js_response(res.status(), res.headers(), Some(&body.0));
        }
    }
    // Every other body is already whole in memory: one copy into a JS buffer,
    // not a Rust stream the runtime pulls through a JS ReadableStream.
    let (parts, body) = res.into_parts();
    let bytes = axum::body::to_bytes(body, usize::MAX).await.map_err(|e| worker::Error::RustError(e.to_string()))?;
    let body = (!bytes.is_empty()).then(|| js_sys::Uint8Array::from(&bytes[..]));
    adapters::js_response(parts.status, &parts.headers, body.as_deref())
}
