//! Jestha Edge: the public API of Jestha, deployed as two Workers built from
//! this one crate (features `api` and `engine`; the default builds both, which
//! native tests and checks compile):
//!
//! - `api` (wrangler.toml): `fetch` gives every request an id and the runtime
//!   context, runs it through the router built from `app::routes()`, stamps
//!   `X-Request-Id` and logs one line; `scheduled` hands the cron to the engine.
//! - `engine` (wrangler.engine.toml): the `Gate` Durable Object, which holds
//!   each credential's live state and counters, the webhook queue consumer,
//!   and the cron's sweeps behind its one HTTP entry.
//!
//! Each Worker's module carries only the code its entry points reach, so the
//! API's isolates load no Durable Object or delivery code and the Gate's
//! isolates no routes (README, "Wasm size").

// A one-sided build exports half the entry points, so code only the other half
// reaches is dead there; the default (both) build still reports dead code.
#![cfg_attr(not(all(feature = "api", feature = "engine")), allow(dead_code, unused_imports))]

pub mod adapters;
pub mod app;
pub mod auth;
pub mod config;
pub mod consumer;
pub mod domain;
pub mod durable;
pub mod error;

pub mod http;
mod layers;
pub mod log;
pub mod mcp;
pub mod notify;
pub mod openapi;
pub mod pipeline;
pub mod routes;
pub mod web;

use std::sync::Arc;

use axum::http::HeaderValue;
use worker::{event, Context, Env, HttpRequest, MessageBatch, Result, ScheduleContext, ScheduledEvent};

#[cfg(feature = "engine")]
pub use durable::gate::Gate;

#[cfg(feature = "api")]
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

/// Webhook queue and its dead-letter queue (see `consumer`).
#[cfg(feature = "engine")]
#[event(queue)]
async fn queue(batch: MessageBatch<String>, env: Env, _ctx: Context) -> Result<()> {
    consumer::batch(batch, env).await;
    Ok(())
}

/// Cron (wrangler.toml `[triggers]`, every minute): the API hands it to the
/// engine, which runs the sweeps. One path everywhere: locally only the API's
/// cron can be triggered (`GET /__scheduled` on its port), and in production
/// the same call carries it.
#[cfg(feature = "api")]
#[event(scheduled)]
async fn scheduled(_event: ScheduledEvent, env: Env, _ctx: ScheduleContext) {
    if let Err(e) = adapters::engine::run_cron(&env).await {
        log::error("cron", "the engine did not run the sweeps", &e.to_string());
    }
}

/// The engine's one HTTP entry, reachable only through the API's `ENGINE`
/// service binding (the engine has no routes and no workers.dev address).
/// In a default (both) build the API's `fetch` is the entry point.
#[cfg(all(feature = "engine", not(feature = "api")))]
#[event(fetch)]
async fn fetch(req: web_sys::Request, env: Env, _ctx: Context) -> Result<web_sys::Response> {
    let status = if adapters::engine::is_cron(&req.method(), &req.url()) {
        cron(env).await;
        204
    } else {
        404
    };
    // No headers to copy: not `adapters::js_response`, whose HeaderMap walk
    // would bring the http crate's header code into the engine (1.8 KB).
    let init = web_sys::ResponseInit::new();
    init.set_status(status);
    Ok(web_sys::Response::new_with_opt_buffer_source_and_init(None, &init)?)
}

/// The sweeps, run by the engine: expiry notices, unattached and deleted
/// accounts' uploads, then the outbox sweep.
pub async fn cron(env: Env) {
    if let Err(e) = notify::expiring_sweep(&env).await {
        log::error("cron", "expiring sweep", &e.to_string());
    }
    if let Err(e) = routes::media::sweep(&env).await {
        log::error("cron", "media sweep", &e.to_string());
    }
    consumer::sweep(env).await;
}
