//! The engine Worker (feature `engine`, wrangler.engine.toml): the `Gate`
//! Durable Object (`gate`), the webhook queue consumer (`consumer`) and the
//! cron's sweeps, behind its one HTTP entry, which only the API reaches
//! (through its `ENGINE` service binding; the engine has no routes and no
//! workers.dev address).

pub mod consumer;
pub mod delivery;
pub mod gate;
pub mod record;
pub mod sweeps;

use worker::{event, Context, Env, MessageBatch, Result};

use crate::log;

/// Webhook queue and its dead-letter queue (see `consumer`).
#[event(queue)]
async fn queue(batch: MessageBatch<String>, env: Env, _ctx: Context) -> Result<()> {
    consumer::batch(batch, env).await;
    Ok(())
}

/// The engine's one HTTP entry: the cron hand-off. In a default (both)
/// build the API's `fetch` is the entry point.
#[cfg(not(feature = "api"))]
#[event(fetch)]
async fn fetch(req: web_sys::Request, env: Env, _ctx: Context) -> Result<web_sys::Response> {
    let status = if crate::adapters::engine::is_cron(&req.method(), &req.url()) {
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
/// accounts' uploads, the outbox sweep, then OAuth's leftovers.
pub async fn cron(env: Env) {
    if let Err(e) = sweeps::expiring(&env).await {
        log::error("cron", "expiring sweep", &e.to_string());
    }
    if let Err(e) = sweeps::media(&env).await {
        log::error("cron", "media sweep", &e.to_string());
    }
    sweeps::outbox(&env).await;
    if let Err(e) = sweeps::oauth(&env).await {
        log::error("cron", "oauth sweep", &e.to_string());
    }
}
