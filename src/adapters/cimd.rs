//! Client ID Metadata Documents: the fetch and the cache (docs/design/oauth.md
//! 3.3). The rules are `domain::oauth::cimd`. A document is fetched with no
//! redirects followed, within 5 s and 8 KiB, validated, and cached in
//! `oauth_clients` (kind `cimd`) until its lifetime ends; a copy past it is
//! never used: the document is fetched again, and a failure refuses.

use serde_json::Value;
use wasm_bindgen::JsCast;
use wasm_bindgen_futures::JsFuture;
use worker::Env;

use crate::adapters::d1::{self, V};
use crate::adapters::gate;
use crate::adapters::stream::Source;
use crate::domain::oauth::cimd::{check_url, document, is_json_type, lifetime, MAX_DOCUMENT};
use crate::domain::oauth::client::ClientMetadata;
use crate::error::ApiResult;
use crate::protocol::ThrottleAction;

/// How long the document's host has to answer.
const TIMEOUT_MS: u32 = 5000;
/// Failed fetches of one URL per minute: a broken document cannot make us
/// fetch it on every request (a success clears the count).
const FAILURES_PER_MINUTE: u32 = 1;
/// Tries to fetch a document one address may make an hour (each would be an
/// outbound request and a row, so they are bounded like registrations; a
/// fresh cached copy costs nothing). Counted before the URL's own failure
/// throttle, so an address over it cannot hold back anyone else's URL.
pub const FETCHES_PER_HOUR: u32 = 30;

/// GET `url` as JSON: the document and its lifetime in seconds, or why not.
async fn get(url: &str) -> Result<(Value, i64), &'static str> {
    const FAILED: &str = "the fetch failed or timed out";
    let headers = web_sys::Headers::new().map_err(|_| FAILED)?;
    headers.set("accept", "application/json").map_err(|_| FAILED)?;
    let init = web_sys::RequestInit::new();
    init.set_headers(&headers);
    init.set_redirect(web_sys::RequestRedirect::Manual);
    init.set_signal(Some(&web_sys::AbortSignal::timeout_with_u32(TIMEOUT_MS)));
    let req = web_sys::Request::new_with_str_and_init(url, &init).map_err(|_| FAILED)?;
    let scope: web_sys::WorkerGlobalScope = js_sys::global().unchecked_into();
    let res: web_sys::Response = JsFuture::from(scope.fetch_with_request(&req)).await.map_err(|_| FAILED)?.unchecked_into();
    if res.status() != 200 {
        return Err("it did not answer 200 (redirects are not followed)");
    }
    let h = res.headers();
    let header = |name: &str| h.get(name).ok().flatten();
    if !is_json_type(&header("content-type").unwrap_or_default()) {
        return Err("its Content-Type is not JSON");
    }
    const TOO_BIG: &str = "it is larger than 8 KiB";
    if header("content-length").and_then(|l| l.trim().parse::<usize>().ok()).is_some_and(|l| l > MAX_DOCUMENT) {
        return Err(TOO_BIG);
    }
    let mut body = Source::new(res.body().as_ref());
    let mut bytes = Vec::new();
    while let Some(chunk) = body.next().await.map_err(|_| FAILED)? {
        if body.seen > MAX_DOCUMENT as u64 {
            return Err(TOO_BIG);
        }
        bytes.extend(chunk.to_vec());
    }
    let v = serde_json::from_slice(&bytes).map_err(|_| "it is not JSON")?;
    Ok((v, lifetime(header("cache-control").as_deref())))
}

/// Fetches, validates and caches the document `url` names (the caller, at
/// address `ip`, found no fresh copy). `Ok(Err(why))`: the client is refused.
pub async fn refresh(
    env: &Env,
    url: &str,
    allow_loopback: bool,
    now: i64,
    ip: &str,
) -> ApiResult<Result<ClientMetadata, String>> {
    if let Err(why) = check_url(url, allow_loopback) {
        return Ok(Err(format!("client_id: {why}")));
    }
    if gate::address_over(env, "oauth:documents", ip, FETCHES_PER_HOUR, 3600).await?.is_some() {
        return Ok(Err("too many documents fetched for this address; try again later".into()));
    }
    let subject = format!("oauth:cimd:{url}");
    if !gate::throttle(env, &subject, ThrottleAction::Attempt, FAILURES_PER_MINUTE, 60).await?.allowed {
        return Ok(Err("the document failed moments ago; try again in a minute".into()));
    }
    let fetched = get(url).await.map_err(str::to_string);
    let (m, secs) = match fetched.and_then(|(v, secs)| Ok((document(url, &v)?, secs))) {
        Ok(x) => x,
        Err(why) => return Ok(Err(format!("client metadata document: {why}"))),
    };
    save(env, url, &m, now, Some(now + secs * 1000)).await?;
    gate::throttle(env, &subject, ThrottleAction::Clear, FAILURES_PER_MINUTE, 60).await?;
    Ok(Ok(m))
}

/// Writes the `oauth_clients` row of a registration (`expires_at` none) or of
/// a metadata document, which replaces its cached copy in place (grants
/// refer to the row).
pub async fn save(env: &Env, id: &str, m: &ClientMetadata, now: i64, expires_at: Option<i64>) -> ApiResult<()> {
    let db = d1::db(env)?;
    d1::stmt(
        &db,
        "INSERT INTO oauth_clients (id, kind, client_name, client_uri, redirect_uris, grant_types, scope, software_id, \
         software_version, created_at, metadata_fetched_at, metadata_expires_at) \
         VALUES (?1, iif(?10 IS NULL, 'registered', 'cimd'), ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, iif(?10 IS NULL, NULL, ?9), ?10) \
         ON CONFLICT (id) DO UPDATE SET client_name = ?2, client_uri = ?3, redirect_uris = ?4, grant_types = ?5, \
         scope = ?6, software_id = ?7, software_version = ?8, metadata_fetched_at = ?9, metadata_expires_at = ?10 \
         WHERE kind = 'cimd'",
        &[
            V::T(id),
            (&m.client_name).into(),
            m.client_uri.as_ref().into(),
            V::T(&serde_json::to_string(&m.redirect_uris)?),
            V::T(&m.grant_types.join(" ")),
            (&m.scope).into(),
            m.software_id.as_ref().into(),
            m.software_version.as_ref().into(),
            now.into(),
            expires_at.into(),
        ],
    )?
    .run()
    .await?;
    Ok(())
}
