//! The API Worker (feature `api`, wrangler.toml): `fetch` gives every request
//! an id and the runtime context, runs it through the request pipeline over
//! the route table (`app::routes()`), stamps `X-Request-Id` and logs one
//! line; `scheduled` hands the cron to the engine.

pub mod app;
pub mod mcp;
pub mod openapi;
pub mod routes;
mod web;

use std::sync::Arc;

use axum::http::HeaderValue;
use worker::{event, Context, Env, HttpRequest, Result, ScheduleContext, ScheduledEvent};

use crate::{adapters, domain, error, http, log, pipeline};

#[event(fetch)]
async fn fetch(req: HttpRequest, env: Env, ctx: Context) -> Result<web_sys::Response> {
    let started = http::now_ms();
    let request_id = format!("req_{}", domain::ids::ulid(started, adapters::crypto::random_bytes()));
    let method = req.method().to_string();
    let path = req.uri().path().to_string();
    let mut req = req;
    req.extensions_mut().insert(http::AppState { env, ctx: Arc::new(ctx), request_id: request_id.clone() });
    let mut res = pipeline::dispatch(app::table(), req.map(axum::body::Body::new)).await;
    let headers = res.headers_mut();
    if let Ok(v) = HeaderValue::from_str(&request_id) {
        headers.insert("x-request-id", v);
    }
    headers.insert("x-content-type-options", HeaderValue::from_static("nosniff"));
    if path.starts_with("/api/") && !headers.contains_key("cache-control") {
        headers.insert("cache-control", HeaderValue::from_static("no-store"));
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

/// Cron (wrangler.toml `[triggers]`, every minute): the API hands it to the
/// engine, which runs the sweeps. One path everywhere: locally only the API's
/// cron can be triggered (`GET /__scheduled` on its port), and in production
/// the same call carries it.
#[event(scheduled)]
async fn scheduled(_event: ScheduledEvent, env: Env, _ctx: ScheduleContext) {
    if let Err(e) = adapters::engine::run_cron(&env).await {
        log::error("cron", "the engine did not run the sweeps", &e.to_string());
    }
}
