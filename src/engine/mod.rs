//! The engine Worker (feature `engine`, wrangler.engine.toml): the `Gate`
//! Durable Object (`gate`), the webhook queue consumer (`consumer`) and the
//! cron's sweeps, behind its one HTTP entry, which only the API reaches
//! (through its `ENGINE` service binding; the engine has no routes and no
//! workers.dev address).

pub mod consumer;
pub mod delivery;
pub mod fanout;
pub mod gate;
pub mod ingest;
pub mod record;
pub mod sweeps;
pub mod tus;

use worker::{event, Context, Env, MessageBatch, Result};

use crate::log;

/// Webhook queue and its dead-letter queue (see `consumer`).
#[event(queue)]
async fn queue(batch: MessageBatch<String>, env: Env, _ctx: Context) -> Result<()> {
    consumer::batch(batch, env).await;
    Ok(())
}

/// The engine's HTTP entry: the cron hand-off, and uploads handed over by
/// the API (`adapters::engine`). In a default (both) build the API's `fetch`
/// is the entry point.
#[cfg(not(feature = "api"))]
#[event(fetch)]
async fn fetch(req: web_sys::Request, env: Env, _ctx: Context) -> Result<web_sys::Response> {
    use crate::adapters::engine::{self as hand_off, INGEST_URL, TUS_URL};
    let url = req.url();
    let header = |name: &str| req.headers().get(name).ok().flatten();
    // The cron hand-off carries no caller: a request that does (a tus or
    // ingest hand-off whose URL resolved elsewhere) is never the cron.
    let reply = if hand_off::is_cron(&req.method(), &url) && header(hand_off::SPEC_HEADER).is_none() {
        cron(env).await;
        None
    } else if req.method() != "POST" {
        return respond(404, None);
    } else if url == INGEST_URL {
        let spec = header(hand_off::SPEC_HEADER).and_then(|h| hand_off::decode_header(&h));
        match spec {
            Some(spec) => Some(ingest::run(&env, spec, req.body()).await),
            None => return respond(400, None),
        }
    } else if let Some(id) = url.strip_prefix(TUS_URL).filter(|id| id.is_empty() || crate::domain::ids::is_ulid(id)) {
        let (Some(caller), Some(method)) =
            (header(hand_off::SPEC_HEADER).and_then(|h| hand_off::decode_header(&h)), header(hand_off::METHOD_HEADER))
        else {
            return respond(400, None);
        };
        let request_id = header(hand_off::REQUEST_HEADER).unwrap_or_default();
        let headers = req.headers();
        let t = tus::Request {
            method: &method,
            id,
            headers: &headers,
            caller,
            length: header(hand_off::LENGTH_HEADER).and_then(|v| v.trim().parse().ok()),
            request_id: &request_id,
        };
        Some(tus::run(&env, t, req.body()).await)
    } else {
        return respond(404, None);
    };
    match reply {
        None => respond(204, None),
        Some(r) => respond(200, Some(&crate::protocol::encode(&r)?)),
    }
}

/// A bare answer. No headers to copy: not `adapters::js_response`, whose
/// HeaderMap walk would bring the http crate's header code into the engine (1.8 KB).
#[cfg(not(feature = "api"))]
fn respond(status: u16, body: Option<&[u8]>) -> Result<web_sys::Response> {
    let init = web_sys::ResponseInit::new();
    init.set_status(status);
    let body = body.map(js_sys::Uint8Array::from);
    Ok(web_sys::Response::new_with_opt_buffer_source_and_init(body.as_ref().map(|b| b.as_ref()), &init)?)
}

/// The sweeps, run by the engine: first account-wide revocations whose
/// Gates were not all told (`adapters::revocation::redrive`), then expired
/// tus uploads and abandoned R2 multipart uploads, expiry notices,
/// unattached and deleted accounts' uploads, the outbox sweep, then OAuth's
/// leftovers.
pub async fn cron(env: Env) {
    // 3 rows of 3 subrequests each at most, plus the query that finds them.
    if let Err(e) = crate::adapters::revocation::redrive(&env, 3).await {
        log::error("cron", "revocation re-drive", &e.to_string());
    }
    if let Err(e) = sweeps::uploads(&env).await {
        log::error("cron", "uploads sweep", &e.to_string());
    }
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
