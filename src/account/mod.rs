//! The account Worker (feature `account`, wrangler.account.toml): identity
//! and credential issuance (signup, login, logout, the account, key
//! management, leak reports), the routes whose home is `Account` in the one
//! route table (`app`). It has no public address: the API forwards these
//! routes to it over its `ACCOUNT` service binding, unread, and it runs them
//! through the same pipeline and guard (one Gate call, as in the API).

pub mod routes;

#[cfg(not(feature = "api"))]
#[worker::event(fetch)]
async fn fetch(req: web_sys::Request, env: worker::Env, ctx: worker::Context) -> worker::Result<web_sys::Response> {
    use crate::{adapters, app, domain, http, pipeline};
    let started = http::now_ms();
    // The API's id for the request, so one id names it in both Workers' logs:
    // the API's binding is this Worker's only caller.
    let request_id = req
        .headers()
        .get(adapters::account::REQUEST_ID)
        .ok()
        .flatten()
        .filter(|id| id.starts_with("req_") && id.len() <= 40)
        .unwrap_or_else(|| format!("req_{}", domain::ids::ulid(started, adapters::crypto::random_bytes())));
    pipeline::serve::serve(app::table(), worker::request_from_wasm(req)?, env, ctx, request_id, started).await
}
