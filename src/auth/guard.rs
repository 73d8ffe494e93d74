//! The one place that decides who may call a route. Every route in
//! `app::routes()` declares an `Access`; this middleware resolves the bearer
//! credential (API key or session, told apart by prefix), asks the credential's
//! Durable Object to run the checks in API.md's order and count the request,
//! then hands the handler a `Principal`. Handlers never re-check.

use axum::extract::Request;
use axum::http::{header, HeaderMap, HeaderName, HeaderValue, Method};
use axum::response::{IntoResponse, Response};

use super::decide::{CredentialKind, Need};
use super::scope::{Scope, ScopeSet};
use super::token::{self, TokenKind};
use crate::adapters::{d1, gate};
use crate::domain::limits::{header_fields, Standings};
use crate::durable::protocol::GateRequest;
use crate::error::ApiError;
use crate::http::{client_ip, now_ms, AppState};
use crate::pipeline::Next;

/// What a route asks of its caller.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// No credential (signup, login, health, documents).
    Public,
    /// Any valid API key (no scope needed) or session.
    Authenticated,
    /// API keys need every listed scope; sessions hold them all.
    Scopes(&'static [Scope]),
    /// API keys need at least one of the listed scopes; the handler decides
    /// what each allows (media upload: images for write:jes, videos for write:jesclip).
    AnyScope(&'static [Scope]),
    /// Sessions only: API keys get 403 session_only whatever their scopes.
    SessionOnly,
    /// Anyone; a presented credential is still checked and counted, and the
    /// handler sees `Option<Principal>` (e.g. media of a public Jes).
    Optional,
    /// API keys only, no scope needed (key introspection, MCP); sessions get 403.
    KeyOnly,
}

impl Access {
    pub fn need(self) -> Option<Need> {
        match self {
            Access::Public => None,
            Access::Authenticated | Access::Optional => Some(Need::default()),
            Access::Scopes(s) => Some(Need { scopes: ScopeSet::of(s).bits(), ..Need::default() }),
            Access::AnyScope(s) => Some(Need { scopes: ScopeSet::of(s).bits(), any: true, ..Need::default() }),
            Access::SessionOnly => Some(Need { session_only: true, ..Need::default() }),
            Access::KeyOnly => Some(Need { key_only: true, ..Need::default() }),
        }
    }
}

/// The authenticated caller, available to handlers as `Ctx::who`.
#[derive(Debug, Clone)]
pub struct Principal {
    pub kind: CredentialKind,
    /// Key id or session id.
    pub id: String,
    pub user_id: String,
    /// The key's label (empty for sessions).
    pub label: String,
    pub scopes: ScopeSet,
    pub standings: Standings,
    /// The account, as cached with the credential.
    pub profile: Option<super::decide::Profile>,
}

impl Principal {
    /// Sessions act with every scope; keys with what they were created with.
    pub fn can(&self, scope: Scope) -> bool {
        self.kind == CredentialKind::Session || self.scopes.contains(scope)
    }

    pub fn is_key(&self) -> bool {
        self.kind == CredentialKind::Key
    }

    /// `via: {label}` for what a key creates.
    pub fn via(&self) -> Option<&str> {
        self.is_key().then_some(self.label.as_str())
    }
}

pub const SESSION_COOKIE: &str = "jes_session";
pub const CSRF_COOKIE: &str = "jes_csrf";
pub const CSRF_HEADER: &str = "x-csrf-token";

/// A presented credential before any lookup.
#[derive(Debug, PartialEq, Eq)]
pub struct Presented {
    pub kind: CredentialKind,
    pub token: String,
}

fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

/// Reads the credential from `Authorization: Bearer …` or, for the web UI, the
/// session cookie (unsafe methods then need the CSRF double-submit header).
/// Everything here is arithmetic: a malformed token never reaches storage.
pub fn presented(method: &Method, headers: &HeaderMap) -> Result<Presented, ApiError> {
    let mut auths = headers.get_all(header::AUTHORIZATION).iter();
    let token = match (auths.next(), auths.next()) {
        (Some(_), Some(_)) => return Err(ApiError::invalid("Authorization: send exactly one header")),
        (Some(v), None) => {
            let v = v.to_str().map_err(|_| ApiError::InvalidApiKey)?;
            let (scheme, rest) = v.split_once(' ').ok_or(ApiError::Unauthenticated)?;
            if !scheme.eq_ignore_ascii_case("bearer") {
                return Err(ApiError::Unauthenticated);
            }
            rest.trim_matches(' ').to_string()
        }
        (None, None) => {
            let Some(tok) = cookie(headers, SESSION_COOKIE) else { return Err(ApiError::Unauthenticated) };
            let safe = matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS);
            if !safe {
                let sent = headers.get(CSRF_HEADER).and_then(|v| v.to_str().ok());
                let expected = cookie(headers, CSRF_COOKIE);
                let ok = matches!((sent, expected), (Some(a), Some(b)) if !b.is_empty()
                    && super::password::constant_time_eq(a.as_bytes(), b.as_bytes()));
                if !ok {
                    return Err(ApiError::Forbidden("CSRF token missing or invalid".into()));
                }
            }
            if !token::well_formed(TokenKind::Session, tok) {
                return Err(ApiError::InvalidSession);
            }
            return Ok(Presented { kind: CredentialKind::Session, token: tok.to_string() });
        }
        (None, Some(_)) => unreachable!(),
    };
    match TokenKind::of(&token) {
        Some(TokenKind::Session) if token::well_formed(TokenKind::Session, &token) => {
            Ok(Presented { kind: CredentialKind::Session, token })
        }
        Some(TokenKind::Session) => Err(ApiError::InvalidSession),
        Some(TokenKind::ApiKey) if token::well_formed(TokenKind::ApiKey, &token) => {
            Ok(Presented { kind: CredentialKind::Key, token })
        }
        _ => Err(ApiError::InvalidApiKey),
    }
}

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

/// A request the MCP server makes on behalf of a key it has already
/// authenticated and counted (one `tools/call` is one request). Only code in
/// this crate can attach it: clients cannot set request extensions.
#[derive(Debug, Clone)]
pub struct Delegated(pub Principal);

/// The middleware every non-public route runs behind.
pub async fn guard(access: Access, mut req: Request, next: Next) -> Response {
    let Some(need) = access.need() else { return next.run(req).await };
    if let Some(Delegated(principal)) = req.extensions().get::<Delegated>().cloned() {
        if let Some(denial) = super::decide::route_denial(principal.kind, principal.scopes.bits(), need) {
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
    let hash = token::hash(&p.token);
    let ip = client_ip(req.headers());
    let msg = GateRequest::Authorize { kind: p.kind, hash, ip: ip.clone(), need };
    let mut reply = match gate::authorize(&app.env, &msg).await {
        Ok(r) => r,
        Err(e) => return e.into_response(),
    };
    for notice in reply.notices.drain(..) {
        let ua = req.headers().get(header::USER_AGENT).and_then(|v| v.to_str().ok()).map(|s| s.chars().take(256).collect());
        crate::notify::defer_notice(&app, notice, ip.clone(), ua);
    }
    if let Some(denial) = reply.denial {
        return with_standings(denial.into_error(p.kind).into_response(), reply.standings.as_ref());
    }
    let (Some(identity), Some(standings)) = (reply.identity, reply.standings) else {
        return ApiError::internal("gate allowed without identity").into_response();
    };
    if reply.touch {
        let env = app.env.clone();
        let key_id = identity.id.clone();
        app.defer("touch last_used_at", async move {
            let db = d1::db(&env)?;
            d1::stmt(&db, "UPDATE api_keys SET last_used_at = ?1 WHERE id = ?2", &[now_ms().into(), (&key_id).into()])?
                .run()
                .await?;
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

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> String {
        token::generate(TokenKind::ApiKey, |b: &mut [u8]| b.fill(7))
    }

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(HeaderName::from_bytes(k.as_bytes()).unwrap(), HeaderValue::from_str(v).unwrap());
        }
        h
    }

    #[test]
    fn bearer_scheme_is_case_insensitive_and_padding_is_trimmed() {
        let k = key();
        for v in [format!("Bearer {k}"), format!("bearer {k}"), format!("BEARER   {k} ")] {
            let p = presented(&Method::GET, &headers(&[("authorization", &v)])).unwrap();
            assert_eq!(p.kind, CredentialKind::Key);
        }
    }

    #[test]
    fn missing_foreign_and_multiple_credentials_are_refused() {
        assert_eq!(presented(&Method::GET, &HeaderMap::new()), Err(ApiError::Unauthenticated));
        let k = key();
        let basic = headers(&[("authorization", "Basic dXNlcjpwYXNz")]);
        assert_eq!(presented(&Method::GET, &basic), Err(ApiError::Unauthenticated));
        let two = headers(&[("authorization", &format!("Bearer {k}")), ("authorization", &format!("Bearer {k}"))]);
        assert_eq!(presented(&Method::GET, &two).unwrap_err().code(), "invalid_request");
        let two_tokens = headers(&[("authorization", &format!("Bearer {k} {k}"))]);
        assert_eq!(presented(&Method::GET, &two_tokens), Err(ApiError::InvalidApiKey));
        let junk = headers(&[("authorization", "Bearer sk_live_abc")]);
        assert_eq!(presented(&Method::GET, &junk), Err(ApiError::InvalidApiKey));
        let mut typo = k.clone();
        typo.replace_range(12..13, if &k[12..13] == "A" { "B" } else { "A" });
        let bad_sum = headers(&[("authorization", &format!("Bearer {typo}"))]);
        assert_eq!(presented(&Method::GET, &bad_sum), Err(ApiError::InvalidApiKey));
    }

    #[test]
    fn cookie_sessions_need_the_csrf_header_on_unsafe_methods() {
        let s = token::generate(TokenKind::Session, |b: &mut [u8]| b.fill(9));
        let c = format!("{SESSION_COOKIE}={s}; {CSRF_COOKIE}=abc123");
        assert!(presented(&Method::GET, &headers(&[("cookie", &c)])).is_ok());
        assert_eq!(presented(&Method::POST, &headers(&[("cookie", &c)])).unwrap_err().code(), "forbidden");
        assert!(presented(&Method::POST, &headers(&[("cookie", &c), (CSRF_HEADER, "abc123")])).is_ok());
        assert!(presented(&Method::POST, &headers(&[("cookie", &c), (CSRF_HEADER, "abc124")])).is_err());
    }

    #[test]
    fn every_access_maps_to_the_need_the_gate_checks() {
        assert_eq!(Access::Public.need(), None);
        assert!(Access::SessionOnly.need().unwrap().session_only);
        let n = Access::Scopes(&[Scope::WriteJes, Scope::ReadComment]).need().unwrap();
        assert_eq!(ScopeSet::from_bits(n.scopes).names(), vec!["write:jes", "read:comment"]);
    }
}
