//! The one place that decides who may call a route. Every route in
//! `app::routes()` declares an `Access`; this middleware resolves the bearer
//! credential (API key, session or OAuth access token, told apart by
//! prefix), asks the credential's (a token's: its grant's)
//! Durable Object to run the checks in API.md's order and count the request,
//! then hands the handler a `Principal`. Handlers never re-check.

use axum::extract::Request;
use axum::http::{header, HeaderName, HeaderValue};
use axum::response::{IntoResponse, Response};

use crate::adapters::{d1, gate};
use crate::auth::decide::{route_denial, CredentialKind};
use crate::auth::presented::presented;
use crate::auth::principal::{Access, Delegated, Principal};
use crate::auth::scope::ScopeSet;
use crate::auth::token;
use crate::domain::address::bound_key;
use crate::domain::blocklist::Blocklist;
use crate::domain::limits::{header_fields, Standings};
use crate::error::ApiError;
use crate::http::{client_ip, now_ms, AppState};
use crate::pipeline::Next;
use crate::protocol::GateRequest;

fn with_standings(mut res: Response, standings: Option<&Standings>) -> Response {
    if let Some(s) = standings {
        let now = now_ms() / 1000;
        let h = res.headers_mut();
        for (name, value) in header_fields(s, now) {
            if let Ok(v) = HeaderValue::from_str(&value) {
                h.insert(HeaderName::from_static(name), v);
            }
        }
    }
    res
}

#[cfg(feature = "account")]
fn is_operator(app: &AppState, profile: Option<&crate::auth::decide::Profile>) -> bool {
    crate::config::Config::get(&app.env).is_operator(profile.map(|p| p.username.as_str()).unwrap_or(""))
}

#[cfg(not(feature = "account"))]
fn is_operator(_: &AppState, _: Option<&crate::auth::decide::Profile>) -> bool {
    false
}

thread_local! {
    /// This isolate's memory of the addresses refused for presenting too
    /// many unknown credentials (`domain::blocklist`).
    static BLOCKED: std::cell::RefCell<Blocklist> = std::cell::RefCell::new(Blocklist::new(4096));
}

/// `Some(429)` when this isolate already knows `ip` is refused: answered
/// before any Durable Object or D1 read, whatever the credential.
fn refused_address(ip: Option<&str>) -> Option<Response> {
    let bucket = bound_key(ip?);
    let retry_after = BLOCKED.with(|b| b.borrow().retry_after(&bucket, now_ms()))?;
    Some(ApiError::RateLimited { retry_after }.into_response())
}

/// An unknown credential (invented, with a valid checksum, or a canary) is
/// counted against its address; past `CREDENTIAL_MISS_MAX` per window the
/// answer is 429 and the isolate remembers the address until the window
/// lets it go. One throttle call, on the refusal path only.
async fn count_miss(app: &AppState, ip: Option<&str>, refusal: Response) -> Response {
    let Some(ip) = ip else { return refusal };
    let config = crate::config::Config::get(&app.env);
    let (limit, window) = (config.credential_miss_max, config.credential_miss_window_seconds);
    match gate::address_over(&app.env, "miss", ip, limit, window).await {
        Ok(Some(retry_after)) => {
            BLOCKED.with(|b| b.borrow_mut().block(&bound_key(ip), retry_after, now_ms()));
            ApiError::RateLimited { retry_after }.into_response()
        }
        _ => refusal,
    }
}

/// The middleware every non-public route runs behind.
pub async fn guard(access: Access, mut req: Request, next: Next) -> Response {
    let Some(need) = access.need() else { return next.run(req).await };
    if let Some(Delegated(principal)) = req.extensions().get::<Delegated>().cloned() {
        if let Some(denial) = route_denial(principal.kind, principal.scopes.bits(), need) {
            return denial.into_error(principal.kind).into_response();
        }
        req.extensions_mut().insert(principal);
        return next.run(req).await;
    }
    let Some(app) = req.extensions().get::<AppState>().cloned() else {
        return ApiError::internal("no AppState").into_response();
    };
    let p = match presented(req.method(), req.headers()) {
        Ok(p) => p,
        Err(ApiError::Unauthenticated) if access == Access::Optional => return next.run(req).await,
        Err(e) => return e.into_response(),
    };
    let ip = client_ip(req.headers());
    if let Some(refused) = refused_address(ip.as_deref()) {
        return refused;
    }
    let hash = token::hash(&p.token);
    // An OAuth token names its grant: the grant's Gate holds its live tokens.
    let msg = match token::grant_of(&p.token) {
        Some(grant_id) if p.kind == CredentialKind::OAuth => {
            GateRequest::AuthorizeToken { grant_id: grant_id.to_string(), hash, ip: ip.clone(), need }
        }
        _ => GateRequest::Authorize { kind: p.kind, hash, ip: ip.clone(), need },
    };
    let mut reply = match gate::authorize(&app.env, &msg).await {
        Ok(r) => r,
        Err(e) => return e.into_response(),
    };
    for notice in reply.notices.drain(..) {
        let ua = req.headers().get(header::USER_AGENT).and_then(|v| v.to_str().ok()).map(|s| s.chars().take(256).collect());
        crate::adapters::notices::defer_notice(&app, notice, ip.clone(), ua);
    }
    if let Some(denial) = reply.denial {
        let miss = denial == crate::auth::decide::Denial::Unknown;
        let refusal = with_standings(denial.into_error(p.kind).into_response(), reply.standings.as_ref());
        if miss {
            return count_miss(&app, ip.as_deref(), refusal).await;
        }
        return refusal;
    }
    let (Some(identity), Some(standings)) = (reply.identity, reply.standings) else {
        return ApiError::internal("gate allowed without identity").into_response();
    };
    // Operators are decided here, from the profile the Gate cached with the
    // session: no D1 read. Only the account Worker serves operator routes.
    if access == Access::Operator && !is_operator(&app, identity.profile.as_ref()) {
        let denied = ApiError::Forbidden("This endpoint is for operators".into()).into_response();
        return with_standings(denied, Some(&standings));
    }
    if reply.touch {
        let env = app.env.clone();
        let id = identity.id.clone();
        let sql = match identity.kind {
            CredentialKind::OAuth => "UPDATE oauth_grants SET last_used_at = ?1 WHERE id = ?2",
            CredentialKind::Session => "UPDATE sessions SET last_used_at = ?1 WHERE id = ?2",
            CredentialKind::Key => "UPDATE api_keys SET last_used_at = ?1 WHERE id = ?2",
        };
        app.defer("touch last_used_at", async move {
            let db = d1::db(&env)?;
            d1::stmt(&db, sql, &[now_ms().into(), (&id).into()])?.run().await?;
            Ok(())
        });
    }
    req.extensions_mut().insert(Principal {
        kind: identity.kind,
        id: identity.id,
        user_id: identity.user_id,
        label: identity.label,
        scopes: ScopeSet::from_bits(identity.scopes),
        standings,
        profile: identity.profile,
    });
    let res = next.run(req).await;
    with_standings(res, Some(&standings))
}
