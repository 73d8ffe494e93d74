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
    let url = req.url();
    let path = http::url_path(&url).to_string();
    let headers = req.headers();
    let content_type = headers.get("content-type").ok().flatten().unwrap_or_default();
    let mime = content_type.split(';').next().unwrap_or("").trim().to_ascii_lowercase();
    if !pipeline::body::streams(&req.method(), &path, &mime) {
        let res = pipeline::serve::serve(app::table(), worker::request_from_wasm(req)?, env, ctx, request_id, started).await?;
        tus_resumable(&path, &res);
        return Ok(res);
    }
    // An upload: the pipeline gets the request without its body, which waits
    // unread (`RawBody`) for the handler to hand it to the engine.
    let length = headers.get("content-length").ok().flatten().and_then(|v| v.trim().parse().ok());
    let raw = adapters::stream::RawBody::new(req.body(), length);
    let init = web_sys::RequestInit::new();
    init.set_method(&req.method());
    init.set_headers(&headers);
    let mut bare = worker::request_from_wasm(web_sys::Request::new_with_str_and_init(&url, &init)?)?;
    bare.extensions_mut().insert(raw.clone());
    let res = pipeline::serve::serve(app::table(), bare, env, ctx, request_id, started).await?;
    if let Some(body) = raw.take() {
        // Answered without it (a 401, a 413 on its declared length…): read to
        // the end first, or the local runtime fails the next request.
        adapters::stream::Source::new(Some(&body)).drain().await;
    }
    tus_resumable(&path, &res);
    Ok(res)
}

/// tus: every answer under `/api/uploads` (the guard's too) says the version.
fn tus_resumable(path: &str, res: &web_sys::Response) {
    if path.starts_with("/api/uploads") {
        let _ = res.headers().set("tus-resumable", crate::domain::upload::TUS_VERSION);
    }
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
