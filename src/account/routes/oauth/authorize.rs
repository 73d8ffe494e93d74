//! The authorization code flow's front half: `GET /oauth/authorize` checks
//! the request and hands it to the web app's consent screen (sign-in first
//! when needed: the session cookie is SameSite=Strict, so it is absent on a
//! redirect from another site, and the consent's own calls are same-site);
//! the consent reads `GET /api/oauth/authorize` and answers with `POST`,
//! which records the grant and a single-use code.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::json;

use crate::adapters::audit;
use crate::adapters::cimd;
use crate::adapters::crypto::{fill_random, random_bytes};
use crate::adapters::d1::{self, V};
use crate::auth::scope::{Scope, ScopeSet};
use crate::auth::token::{self, TokenKind};
use crate::config::Config;
use crate::domain::audit::{Action, Event, TargetType};
use crate::domain::ids;
use crate::domain::oauth::authorize::{check, param, params, redirect, Client, Refusal, Request};
use crate::domain::oauth::cimd::is_url;
use crate::domain::oauth::client::AUTHORIZATION_CODE;
use crate::domain::oauth::grantable;
use crate::error::{ApiError, ApiResult};
use crate::http::{client_ip, json, now_ms};
use crate::log;
use crate::pipeline::ctx::Ctx;

/// How long a code may wait for its exchange.
pub const CODE_TTL_MS: i64 = 60_000;
/// Connected apps one account may have (a consent beyond is 409).
pub const MAX_LIVE_GRANTS: i64 = 50;

/// A registered client, as the OAuth endpoints need it.
pub struct Registered {
    pub client: Client,
    pub grant_types: String,
    pub client_uri: Option<String>,
    /// A Client ID Metadata Document (`client.id` is its URL).
    pub cimd: bool,
}

/// The client `id`, or `None` when unknown. A URL is a Client ID Metadata
/// Document: its cached copy while fresh, else fetched again (`None` when
/// that fails or the caller's address has made too many fetches; the reason
/// is logged).
pub async fn load_client(c: &Ctx, id: Option<&str>) -> ApiResult<Option<Registered>> {
    let Some(id) = id else { return Ok(None) };
    let db = d1::db(&c.app.env)?;
    let row: Option<d1::Row> = d1::stmt(
        &db,
        "SELECT client_name, client_uri, redirect_uris, grant_types, metadata_expires_at FROM oauth_clients WHERE id = ?1",
        &[id.into()],
    )?
    .first(None)
    .await?;
    let now = now_ms();
    let cimd = is_url(id);
    let client = |name: String, redirect_uris: Vec<String>, grant_types: String, client_uri: Option<String>| Registered {
        client: Client {
            id: id.to_string(),
            name,
            redirect_uris,
            authorization_code: grant_types.split(' ').any(|g| g == AUTHORIZATION_CODE),
        },
        grant_types,
        client_uri,
        cimd,
    };
    if cimd && !row.as_ref().is_some_and(|r| r.num("metadata_expires_at") > now as f64) {
        let allow_loopback = Config::get(&c.app.env).cimd_allow_loopback;
        let ip = client_ip(&c.headers).unwrap_or_default();
        return Ok(match cimd::refresh(&c.app.env, id, allow_loopback, now, &ip).await? {
            Ok(m) => Some(client(m.client_name, m.redirect_uris, m.grant_types.join(" "), m.client_uri)),
            Err(why) => {
                log::warn(&c.app.request_id, "oauth client refused", &why);
                None
            }
        });
    }
    Ok(row.map(|r| {
        client(
            r.text("client_name").unwrap_or_default(),
            serde_json::from_str(&r.text("redirect_uris").unwrap_or_default()).unwrap_or_default(),
            r.text("grant_types").unwrap_or_default(),
            r.text("client_uri"),
        )
    }))
}

/// A checked request and its client, or why not.
async fn checked(c: &Ctx, query: &str) -> ApiResult<Result<(Request, Registered), Refusal>> {
    let p = match params(query) {
        Ok(p) => p,
        Err(r) => return Ok(Err(r)),
    };
    let id = param(&p, "client_id");
    let client = load_client(c, id).await?;
    Ok(match check(&p, client.as_ref().map(|r| &r.client), &c.origin) {
        Ok(req) => Ok((req, client.expect("checked"))),
        Err(Refusal::Page { error: "invalid_client", .. }) if id.is_some_and(is_url) => Err(Refusal::Page {
            error: "invalid_client",
            description: "the client metadata document at client_id could not be fetched or is not valid",
        }),
        Err(r) => Err(r),
    })
}

fn found(location: &str) -> Response {
    let mut res = StatusCode::FOUND.into_response();
    let h = res.headers_mut();
    if let Ok(v) = HeaderValue::from_str(location) {
        h.insert(header::LOCATION, v);
    }
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    res
}

/// Where a refusal is shown: our own page until the redirect URI is trusted.
fn refused(r: Refusal, origin: &str) -> Response {
    match r {
        Refusal::Page { error, description } => {
            let q = form_urlencoded::Serializer::new(String::new())
                .append_pair("error", error)
                .append_pair("error_description", description)
                .finish();
            found(&format!("/#/oauth/error?{q}"))
        }
        Refusal::Client { redirect_uri, state, error, description } => {
            found(&redirect(&redirect_uri, &[("error", error), ("error_description", description)], state.as_deref(), origin))
        }
    }
}

/// GET /oauth/authorize: a valid request goes on to the consent screen with
/// its query unchanged; an invalid one to the client (or our error page).
pub async fn start(c: Ctx) -> ApiResult<Response> {
    Ok(match checked(&c, c.query()).await? {
        Ok(_) => found(&format!("/#/oauth/authorize?{}", c.query())),
        Err(r) => refused(r, &c.origin),
    })
}

/// A refusal as the consent screen's API says it (the page shows it).
fn invalid(r: Refusal) -> ApiError {
    match r {
        Refusal::Page { error, description } | Refusal::Client { error, description, .. } => {
            ApiError::invalid(format!("request: {error}: {description}"))
        }
    }
}

/// The redirect's host, as the consent screen names it.
fn host(uri: &str) -> &str {
    let rest = uri.split_once("://").map_or(uri, |(_, r)| r);
    rest.split(['/', '?']).next().unwrap_or(rest)
}

fn scope_list(scopes: ScopeSet) -> Vec<serde_json::Value> {
    Scope::ALL
        .into_iter()
        .filter(|s| scopes.contains(*s))
        .map(|s| {
            let i = s.info();
            json!({ "scope": i.scope, "name": i.name, "description": i.description })
        })
        .collect()
}

/// GET /api/oauth/authorize?<the authorization request>: what the consent
/// screen shows (session only).
pub async fn consent(c: Ctx) -> ApiResult<Response> {
    let (req, reg) = checked(&c, c.query()).await?.map_err(invalid)?;
    let who = c.who()?;
    let loopback = req.redirect_uri.starts_with("http://");
    Ok(json(
        StatusCode::OK,
        &json!({
            "client": {
                "id": reg.client.id, "name": reg.client.name, "uri": reg.client_uri, "verified": false,
                "kind": if reg.cimd { "cimd" } else { "registered" },
                // A metadata document's client is identified by where it is published.
                "host": reg.cimd.then(|| host(&reg.client.id)),
            },
            "redirect": { "uri": req.redirect_uri, "host": host(&req.redirect_uri), "loopback": loopback },
            "scopes": scope_list(req.scopes),
            "resource": req.resource,
            "account": { "username": who.profile.as_ref().map(|p| p.username.clone()) },
        }),
    ))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Decision {
    request: String,
    decision: String,
    #[serde(default)]
    scopes: Vec<String>,
}

/// POST /api/oauth/authorize `{request, decision, scopes}`: the person's
/// answer (session only, CSRF-checked). Allow records the grant with the
/// scopes left ticked and a code good for 60 s; both answer where the
/// browser goes next (`redirectTo`). Never replayed (its answer holds a code).
pub async fn decide(mut c: Ctx) -> ApiResult<Response> {
    let body: Decision = c.body().await?;
    let (req, reg) = checked(&c, &body.request).await?.map_err(invalid)?;
    let origin = c.origin.clone();
    let state = req.state.as_deref();
    let to = |pairs: &[(&str, &str)]| {
        json(StatusCode::OK, &json!({ "redirectTo": redirect(&req.redirect_uri, pairs, state, &origin) }))
    };
    match body.decision.as_str() {
        "deny" => return Ok(to(&[("error", "access_denied"), ("error_description", "the person denied access")])),
        "allow" => {}
        _ => return Err(ApiError::invalid("decision: must be allow or deny")),
    }
    let mut allowed = Vec::with_capacity(body.scopes.len());
    for (i, name) in body.scopes.iter().enumerate() {
        match Scope::parse(name) {
            Some(s) if req.scopes.contains(s) && grantable().contains(s) => allowed.push(s),
            _ => return Err(ApiError::invalid(format!("scopes[{i}]: '{name:.40}' was not requested"))),
        }
    }
    let scopes = ScopeSet::of(&allowed).names().join(" ");
    let who = c.who()?.clone();
    let now = now_ms();
    let grant_id = ids::ulid(now, random_bytes());
    let code = token::generate(TokenKind::AuthCode, fill_random);
    let db = d1::db(&c.app.env)?;
    let event = Event::by_owner(&who.user_id, Action::GrantCreated, &audit::origin_of(&c.headers))
        .target(TargetType::Grant, &grant_id)
        .data(json!({ "clientId": reg.client.id, "clientName": reg.client.name, "scopes": scopes, "flow": "code" }));
    // The bound is checked inside the insert; a consent never exchanged stops
    // counting after an hour. The audit row is written only with the grant.
    let results = db
        .batch(vec![
            d1::stmt(
                &db,
                "INSERT INTO oauth_grants (id, user_id, client_id, client_name, scopes, resource, redirect_uri, flow, created_at) \
                 SELECT ?1, ?2, ?3, ?4, ?5, ?6, ?7, 'code', ?8 \
                 WHERE (SELECT COUNT(*) FROM oauth_grants WHERE user_id = ?2 AND revoked_at IS NULL \
                        AND (activated_at IS NOT NULL OR created_at > ?8 - 3600000)) < ?9",
                &[
                    (&grant_id).into(),
                    (&who.user_id).into(),
                    (&reg.client.id).into(),
                    (&reg.client.name).into(),
                    V::T(&scopes),
                    req.resource.as_ref().into(),
                    (&req.redirect_uri).into(),
                    now.into(),
                    MAX_LIVE_GRANTS.into(),
                ],
            )?,
            d1::stmt(
                &db,
                "INSERT INTO oauth_codes (code_hash, grant_id, client_id, redirect_uri, code_challenge, resource, scopes, expires_at) \
                 SELECT ?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8 WHERE EXISTS (SELECT 1 FROM oauth_grants WHERE id = ?2)",
                &[
                    V::T(&token::hash(&code)),
                    (&grant_id).into(),
                    (&reg.client.id).into(),
                    (&req.redirect_uri).into(),
                    (&req.code_challenge).into(),
                    req.resource.as_ref().into(),
                    V::T(&scopes),
                    (now + CODE_TTL_MS).into(),
                ],
            )?,
            audit::stmt_if(&db, &event, now, Some("EXISTS (SELECT 1 FROM oauth_grants WHERE id = ?12)"), &[V::T(&grant_id)])?,
        ])
        .await?;
    let written = results.first().and_then(|r| r.meta().ok().flatten()).and_then(|m| m.changes).unwrap_or(0);
    if written == 0 {
        return Err(ApiError::Conflict(format!(
            "grants: at most {MAX_LIVE_GRANTS} connected apps; revoke one in Settings, Connected apps"
        )));
    }
    let mut res = to(&[("code", &code)]);
    res.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(res)
}
