//! The device authorization grant (RFC 8628), for the `jestha` CLI and
//! other clients without a browser: `POST /oauth/device` starts it; the
//! person opens `/device` (the web app's page, signed in), types or follows
//! the user code and allows or denies; the client polls `POST /oauth/token`.
//! Codes are stored as hashes; a user code is 8 consonants (about 34.6
//! bits), live 10 minutes, and wrong guesses are throttled per account.

use axum::http::StatusCode;
use axum::response::Response;
use serde::Deserialize;
use serde_json::json;

use super::token::{bad_request, client_of, form, issue, Claim};
use super::{oauth_error, oauth_json, throttled};
use crate::adapters::audit;
use crate::adapters::crypto::{fill_random, random_bytes};
use crate::adapters::d1::{self, V};
use crate::adapters::gate;
use crate::auth::scope::{Scope, ScopeSet};
use crate::auth::token::{self, TokenKind};
use crate::domain::audit::{Action, Event, TargetType};
use crate::domain::clock::rfc3339;
use crate::domain::ids;
use crate::domain::oauth::authorize::param;
use crate::domain::oauth::client::DEVICE_CODE;
use crate::domain::oauth::{
    device_poll, grantable, normalize_user_code, requested_scopes, resource_matches, user_code, DeviceState,
};
use crate::error::{ApiError, ApiResult};
use crate::http::{json, now_ms};
use crate::pipeline::ctx::Ctx;
use crate::protocol::ThrottleAction;

/// How long a device code lives (RFC 8628 §3.2 `expires_in`).
pub const DEVICE_TTL_MS: i64 = 600_000;
/// The polling interval first asked for, in seconds.
pub const INTERVAL_SECS: i64 = 5;
/// Wrong user codes one account may type per 15 minutes.
const WRONG_CODES: u32 = 10;

/// POST /oauth/device (form: `client_id`, `scope`?, `resource`?)
pub async fn start(mut c: Ctx) -> ApiResult<Response> {
    if let Some(res) = throttled(&c, "device authorizations", 30, 60).await? {
        return Ok(res);
    }
    let p = match form(&mut c).await? {
        Ok(p) => p,
        Err(res) => return Ok(res),
    };
    let (client_id, grant_types) = match client_of(&c, &p).await? {
        Ok(x) => x,
        Err(res) => return Ok(res),
    };
    if !grant_types.split(' ').any(|g| g == DEVICE_CODE) {
        return bad_request("unauthorized_client", "this client is not registered for the device_code grant");
    }
    let resource = param(&p, "resource");
    if !resource_matches(resource, &c.origin) {
        return bad_request("invalid_target", "resource must be this API or its /mcp endpoint");
    }
    let scopes = requested_scopes(param(&p, "scope")).names().join(" ");
    let device_code = token::generate(TokenKind::DeviceCode, fill_random);
    let now = now_ms();
    let db = d1::db(&c.app.env)?;
    // A user code taken by a live request is drawn again (20^8 codes: rare).
    for _ in 0..3 {
        let mut r = [0u8; 8];
        fill_random(&mut r);
        let code = user_code(u64::from_le_bytes(r));
        let inserted = d1::stmt(
            &db,
            "INSERT INTO oauth_device_codes (device_code_hash, user_code_hash, client_id, scopes, resource, created_at, expires_at, interval_secs) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
            &[
                V::T(&token::hash(&device_code)),
                V::T(&token::hash(&normalize_user_code(&code).unwrap_or_default())),
                (&client_id).into(),
                V::T(&scopes),
                resource.into(),
                now.into(),
                (now + DEVICE_TTL_MS).into(),
                INTERVAL_SECS.into(),
            ],
        )?
        .run()
        .await;
        match inserted.map_err(ApiError::from) {
            Ok(_) => {
                let o = &c.origin;
                return Ok(oauth_json(
                    StatusCode::OK,
                    &json!({
                        "device_code": device_code,
                        "user_code": code,
                        "verification_uri": format!("{o}/device"),
                        "verification_uri_complete": format!("{o}/device?user_code={code}"),
                        "expires_in": DEVICE_TTL_MS / 1000,
                        "interval": INTERVAL_SECS,
                    }),
                ));
            }
            Err(e) if d1::is_unique_violation(&e) => {
                // Expired codes give their user codes back.
                d1::stmt(&db, "DELETE FROM oauth_device_codes WHERE expires_at < ?1", &[now.into()])?.run().await?;
            }
            Err(e) => return Err(e),
        }
    }
    Err(ApiError::internal("no free user code"))
}

/// GET /device[?user_code=…]: the web app's device page, the code carried over.
pub async fn page(c: Ctx) -> ApiResult<Response> {
    let code: String =
        c.q("user_code").unwrap_or_default().chars().filter(|ch| ch.is_ascii_alphabetic() || *ch == '-').take(12).collect();
    let target = if code.is_empty() { "/#/device".to_string() } else { format!("/#/device?code={code}") };
    let mut res = axum::response::IntoResponse::into_response(StatusCode::FOUND);
    if let Ok(v) = axum::http::HeaderValue::from_str(&target) {
        res.headers_mut().insert(axum::http::header::LOCATION, v);
    }
    Ok(res)
}

/// The pending request a user code names, for the signed-in person; a
/// wrong code counts against the account's budget (10 per 15 minutes).
async fn pending(c: &Ctx, typed: &str) -> ApiResult<d1::Row> {
    let who = c.who()?;
    let subject = format!("oauth:usercode:user:{}", who.user_id);
    let t = gate::throttle(&c.app.env, &subject, ThrottleAction::Attempt, WRONG_CODES, 900).await?;
    if !t.allowed {
        return Err(ApiError::TooManyAttempts { retry_after: t.retry_after });
    }
    let Some(code) = normalize_user_code(typed) else { return Err(ApiError::NotFound) };
    let db = d1::db(&c.app.env)?;
    let row: Option<d1::Row> = d1::stmt(
        &db,
        "SELECT d.client_id, d.scopes, d.expires_at, c.client_name FROM oauth_device_codes d \
         JOIN oauth_clients c ON c.id = d.client_id \
         WHERE d.user_code_hash = ?1 AND d.status = 'pending' AND d.expires_at > ?2",
        &[V::T(&token::hash(&code)), now_ms().into()],
    )?
    .first(None)
    .await?;
    let row = row.ok_or(ApiError::NotFound)?;
    gate::throttle(&c.app.env, &subject, ThrottleAction::Refund, WRONG_CODES, 900).await?;
    Ok(row)
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

/// GET /api/oauth/device?userCode=…: what the device page asks the person to allow.
pub async fn lookup(c: Ctx) -> ApiResult<Response> {
    let row = pending(&c, &c.q("userCode").unwrap_or_default()).await?;
    Ok(json(
        StatusCode::OK,
        &json!({
            "client": { "id": row.text("client_id"), "name": row.text("client_name"), "verified": false },
            "scopes": scope_list(ScopeSet::from_stored(&row.text("scopes").unwrap_or_default())),
            "expiresAt": rfc3339(row.num("expires_at") as i64),
        }),
    ))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Decision {
    user_code: String,
    decision: String,
    #[serde(default)]
    scopes: Vec<String>,
}

/// POST /api/oauth/device `{userCode, decision, scopes}`: allow (a grant
/// with the scopes left ticked) or deny; the device's next poll hears it.
pub async fn decide(mut c: Ctx) -> ApiResult<Response> {
    let body: Decision = c.body().await?;
    let row = pending(&c, &body.user_code).await?;
    let code_hash = token::hash(&normalize_user_code(&body.user_code).unwrap_or_default());
    let who = c.who()?.clone();
    let now = now_ms();
    let db = d1::db(&c.app.env)?;
    if body.decision == "deny" {
        d1::stmt(
            &db,
            "UPDATE oauth_device_codes SET status = 'denied', user_id = ?2, decided_at = ?3 \
             WHERE user_code_hash = ?1 AND status = 'pending'",
            &[V::T(&code_hash), (&who.user_id).into(), now.into()],
        )?
        .run()
        .await?;
        return Ok(json(StatusCode::OK, &json!({ "status": "denied" })));
    }
    if body.decision != "allow" {
        return Err(ApiError::invalid("decision: must be allow or deny"));
    }
    let requested = ScopeSet::from_stored(&row.text("scopes").unwrap_or_default());
    let mut allowed = Vec::new();
    for (i, name) in body.scopes.iter().enumerate() {
        match Scope::parse(name) {
            Some(s) if requested.contains(s) && grantable().contains(s) => allowed.push(s),
            _ => return Err(ApiError::invalid(format!("scopes[{i}]: '{name:.40}' was not requested"))),
        }
    }
    let live: f64 = d1::stmt(
        &db,
        "SELECT COUNT(*) AS n FROM oauth_grants WHERE user_id = ?1 AND revoked_at IS NULL \
         AND (activated_at IS NOT NULL OR created_at > ?2 - 3600000)",
        &[(&who.user_id).into(), now.into()],
    )?
    .first(Some("n"))
    .await?
    .unwrap_or(0.0);
    if live as i64 >= super::authorize::MAX_LIVE_GRANTS {
        return Err(ApiError::Conflict("grants: at most 50 connected apps; revoke one in Settings, Connected apps".into()));
    }
    let grant_id = ids::ulid(now, random_bytes());
    let client_id = row.text("client_id").unwrap_or_default();
    let scopes = ScopeSet::of(&allowed).names().join(" ");
    // The batch is one transaction: a lost race (the guard) takes the audit row with it.
    let event = Event::by_owner(&who.user_id, Action::GrantCreated, &audit::origin_of(&c.headers))
        .target(TargetType::Grant, &grant_id)
        .data(json!({ "clientId": client_id, "clientName": row.text("client_name"), "scopes": scopes, "flow": "device" }));
    let result = db
        .batch(vec![
            d1::stmt(
                &db,
                "INSERT INTO oauth_grants (id, user_id, client_id, client_name, scopes, flow, created_at) \
                 VALUES (?1, ?2, ?3, ?4, ?5, 'device', ?6)",
                &[
                    (&grant_id).into(),
                    (&who.user_id).into(),
                    (&client_id).into(),
                    V::T(&row.text("client_name").unwrap_or_default()),
                    V::T(&scopes),
                    now.into(),
                ],
            )?,
            d1::stmt(
                &db,
                "UPDATE oauth_device_codes SET status = 'approved', user_id = ?3, grant_id = ?2, decided_at = ?4 \
                 WHERE user_code_hash = ?1 AND status = 'pending' AND expires_at > ?4",
                &[V::T(&code_hash), (&grant_id).into(), (&who.user_id).into(), now.into()],
            )?,
            d1::stmt(
                &db,
                &d1::guard_sql("(SELECT grant_id FROM oauth_device_codes WHERE user_code_hash = ?1) = ?2"),
                &[V::T(&code_hash), (&grant_id).into()],
            )?,
            audit::stmt(&db, &event, now)?,
        ])
        .await
        .map_err(ApiError::from);
    match result {
        Ok(_) => Ok(json(StatusCode::OK, &json!({ "status": "approved" }))),
        // Decided or expired meanwhile.
        Err(e) if d1::is_guard_failure(&e) => Err(ApiError::NotFound),
        Err(e) => Err(e),
    }
}

/// The token endpoint's `urn:ietf:params:oauth:grant-type:device_code` poll.
pub async fn poll(c: &Ctx, p: &[(String, String)], client_id: &str) -> ApiResult<Response> {
    let Some(device_code) = param(p, "device_code") else { return bad_request("invalid_request", "device_code is required") };
    let hash = token::hash(device_code);
    let db = d1::db(&c.app.env)?;
    let row: Option<d1::Row> = d1::stmt(
        &db,
        "SELECT d.client_id, d.status, d.expires_at, d.last_polled_at, d.interval_secs, d.grant_id, g.scopes AS grant_scopes \
         FROM oauth_device_codes d LEFT JOIN oauth_grants g ON g.id = d.grant_id WHERE d.device_code_hash = ?1",
        &[V::T(&hash)],
    )?
    .first(None)
    .await?;
    let Some(row) = row else { return bad_request("invalid_grant", "unknown device_code") };
    if row.text("client_id").as_deref() != Some(client_id) {
        return bad_request("invalid_grant", "the device_code was issued to another client");
    }
    let now = now_ms();
    let state = match row.text("status").as_deref() {
        Some("approved") => DeviceState::Approved,
        Some("denied") => DeviceState::Denied,
        Some("exchanged") => DeviceState::Used,
        _ => DeviceState::Pending,
    };
    let last = (row.num("last_polled_at") > 0.0).then(|| row.num("last_polled_at") as i64);
    let verdict = device_poll(state, now, row.num("expires_at") as i64, last, row.num("interval_secs") as i64);
    if let Err(error) = verdict {
        // Every poll is recorded; polling too fast lengthens the interval by 5 s.
        let grow = if error == "slow_down" { 5 } else { 0 };
        d1::stmt(
            &db,
            "UPDATE oauth_device_codes SET last_polled_at = ?2, interval_secs = interval_secs + ?3 WHERE device_code_hash = ?1",
            &[V::T(&hash), now.into(), grow.into()],
        )?
        .run()
        .await?;
        let description = match error {
            "authorization_pending" => "the person has not answered yet",
            "slow_down" => "polling too fast: wait 5 more seconds between polls",
            "access_denied" => "the person denied access",
            "expired_token" => "the device_code expired; start again",
            _ => "the device_code was already exchanged",
        };
        return bad_request(error, description);
    }
    let grant_id = row.text("grant_id").unwrap_or_default();
    let scopes = ScopeSet::from_stored(&row.text("grant_scopes").unwrap_or_default());
    let claim = Claim {
        sql: "UPDATE oauth_device_codes SET status = 'exchanged', claim = ?2, last_polled_at = ?3 \
              WHERE device_code_hash = ?1 AND status = 'approved'",
        hash,
        nonce: hex::encode(random_bytes::<16>()),
        won_if: "(SELECT claim FROM oauth_device_codes WHERE device_code_hash = ?1) = ?2",
    };
    let refresh_id = ids::ulid(now, random_bytes());
    match issue(c, &grant_id, scopes, claim, &refresh_id).await? {
        Some(res) => Ok(res),
        None => Ok(oauth_error(StatusCode::BAD_REQUEST, "invalid_grant", "the device_code was already exchanged")),
    }
}
