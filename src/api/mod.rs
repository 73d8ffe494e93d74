//! The API Worker (feature `api`, wrangler.toml): `fetch` gives every request
//! an id, forwards the account Worker's routes to it unread (`forwarded`),
//! and serves the rest through the request pipeline over the route table
//! (`app::table()`); `scheduled` hands the cron to the engine.

pub mod mcp;
pub mod openapi;
pub mod routes;
mod web;

use worker::{event, Context, Env, Result, ScheduleContext, ScheduledEvent};

use crate::{adapters, app, domain, http, log, pipeline};

#[event(fetch)]
async fn fetch(req: web_sys::Request, env: Env, ctx: Context) -> Result<web_sys::Response> {
    let started = http::now_ms();
    let request_id = format!("req_{}", domain::ids::ulid(started, adapters::crypto::random_bytes()));
    #[cfg(not(feature = "account"))]
    if forwarded(&req.method(), &req.url()) {
        return adapters::account::forward(&env, req, &request_id).await;
    }
    pipeline::serve::serve(app::table(), worker::request_from_wasm(req)?, env, ctx, request_id, started).await
}

/// Whether the request is for a route the account Worker serves: matched on
/// the method and path alone, before a byte of the body is read, so the body
/// streams to that Worker untouched.
#[cfg(not(feature = "account"))]
fn forwarded(method: &str, url: &str) -> bool {
    use crate::pipeline::router::{find, Found};
    let Ok(method) = axum::http::Method::from_bytes(method.as_bytes()) else { return false };
    let table = app::table();
    match find(table.iter().map(|r| (&r.method, r.path)), &method, http::url_path(url)) {
        Found::Route { index, .. } => table[index].home == pipeline::Home::Account,
        _ => false,
    }
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
