//! `POST /oauth/token` (form-encoded): the authorization code (with its PKCE
//! verifier), a refresh token (rotated on every use; a rotated one presented
//! again revokes the grant) or an approved device code, for an access token
//! `jes_oat_…` and a refresh token `jes_ort_…`. Single use is enforced by D1:
//! the claim and the new tokens are one batch, which a guard statement aborts
//! unless this request's claim won, so of two racing exchanges one issues.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::Response;
use serde_json::json;

use super::grants::{self, By, Reason};
use super::{oauth_error, oauth_json};
use crate::adapters::crypto::{fill_random, random_bytes};
use crate::adapters::d1::{self, V};
use crate::adapters::gate;
use crate::auth::challenge::Unauthorized;
use crate::auth::decide::LiveToken;
use crate::auth::scope::ScopeSet;
use crate::auth::token::{self, TokenKind};
use crate::config::Config;
use crate::domain::ids;
use crate::domain::oauth::authorize::{param, params};
use crate::domain::oauth::client::{AUTHORIZATION_CODE, DEVICE_CODE, REFRESH_TOKEN};
use crate::domain::oauth::{pkce_s256_matches, refresh, refresh_scopes, resource_matches, verifier_well_formed};
use crate::domain::oauth::{RefreshOutcome, RefreshState};
use crate::error::{ApiError, ApiResult};
use crate::http::now_ms;
use crate::pipeline::ctx::Ctx;

const MAX_FORM_BYTES: usize = 16 * 1024;

pub fn bad_request(error: &str, description: &str) -> ApiResult<Response> {
    Ok(oauth_error(StatusCode::BAD_REQUEST, error, description))
}

/// 401 `invalid_client`, with the base challenge (RFC 6749 §5.2).
pub fn invalid_client(description: &str) -> Response {
    let mut res = oauth_error(StatusCode::UNAUTHORIZED, "invalid_client", description);
    res.extensions_mut().insert(Unauthorized { invalid_token: false });
    res
}

/// A form body's parameters; `Err` is the answer (not a form, too large, a
/// parameter repeated).
pub async fn form(c: &mut Ctx) -> ApiResult<Result<Vec<(String, String)>, Response>> {
    let refuse = |d: &str| Ok(Err(oauth_error(StatusCode::BAD_REQUEST, "invalid_request", d)));
    if c.content_type() != "application/x-www-form-urlencoded" {
        return refuse("the body must be application/x-www-form-urlencoded");
    }
    let bytes = match c.bytes(MAX_FORM_BYTES).await {
        Ok(b) => b,
        Err(ApiError::PayloadTooLarge(_)) => return refuse("the body is larger than 16 KiB"),
        Err(e) => return Err(e),
    };
    let Ok(text) = std::str::from_utf8(&bytes) else { return refuse("the body is not UTF-8") };
    Ok(params(text).map_err(|_| oauth_error(StatusCode::BAD_REQUEST, "invalid_request", "a parameter is repeated")))
}

/// The client `client_id` names, with its grant types; `Err`: the answer.
pub async fn client_of(c: &Ctx, p: &[(String, String)]) -> ApiResult<Result<(String, String), Response>> {
    let Some(id) = param(p, "client_id") else {
        return Ok(Err(oauth_error(StatusCode::BAD_REQUEST, "invalid_request", "client_id is required")));
    };
    Ok(match super::authorize::load_client(c, Some(id)).await? {
        Some(r) => Ok((r.client.id, r.grant_types)),
        None => Err(invalid_client("unknown client_id (or its metadata document could not be fetched)")),
    })
}

/// POST /oauth/token
pub async fn token(mut c: Ctx) -> ApiResult<Response> {
    let p = match form(&mut c).await? {
        Ok(p) => p,
        Err(res) => return Ok(res),
    };
    let (client_id, grant_types) = match client_of(&c, &p).await? {
        Ok(x) => x,
        Err(res) => return Ok(res),
    };
    let grant_type = param(&p, "grant_type");
    if grant_type
        .is_some_and(|g| !grant_types.split(' ').any(|t| t == g) && [AUTHORIZATION_CODE, REFRESH_TOKEN, DEVICE_CODE].contains(&g))
    {
        return bad_request("unauthorized_client", "this client is not registered for this grant type");
    }
    if let Some(r) = param(&p, "resource") {
        if !resource_matches(Some(r), &c.origin) {
            return bad_request("invalid_target", "resource must be this API or its /mcp endpoint");
        }
    }
    match grant_type {
        Some(AUTHORIZATION_CODE) => code(&c, &p, &client_id).await,
        Some(REFRESH_TOKEN) => refresh_token(&c, &p, &client_id).await,
        Some(DEVICE_CODE) => super::device::poll(&c, &p, &client_id).await,
        Some(_) => {
            bad_request("unsupported_grant_type", "grant_type must be authorization_code, refresh_token or the device_code grant")
        }
        None => bad_request("invalid_request", "grant_type is required"),
    }
}

/// Who won a single-use secret: `sql` claims the secret `hash` with this
/// request's `nonce` (bound as ?1, ?2, and the time as ?3); `won_if` (over
/// ?1 and ?2) aborts the batch unless that claim is this request's.
pub struct Claim {
    pub sql: &'static str,
    pub hash: String,
    pub nonce: String,
    pub won_if: &'static str,
}

/// Issues a new access and refresh token of `grant_id` with `scopes`, if
/// `claim` wins; `Ok(None)` when it lost (the secret was used meanwhile).
pub async fn issue(c: &Ctx, grant_id: &str, scopes: ScopeSet, claim: Claim, refresh_id: &str) -> ApiResult<Option<Response>> {
    let config = Config::get(&c.app.env);
    let now = now_ms();
    let access = token::generate_access(grant_id, fill_random);
    let refresh = token::generate(TokenKind::OAuthRefresh, fill_random);
    let access_expires = now + config.oauth_access_token_ttl_seconds * 1000;
    let stored = scopes.names().join(" ");
    // The grant's Gate first: if D1 then fails it holds a hash nobody has.
    let live = LiveToken { hash: token::hash(&access), expires_at: access_expires, scopes: scopes.bits() };
    gate::grant_token(&c.app.env, grant_id, live).await?;
    let db = d1::db(&c.app.env)?;
    let batch = vec![
        d1::stmt(&db, claim.sql, &[V::T(&claim.hash), V::T(&claim.nonce), now.into()])?,
        d1::stmt(&db, &d1::guard_sql(claim.won_if), &[V::T(&claim.hash), V::T(&claim.nonce)])?,
        d1::stmt(
            &db,
            "INSERT INTO oauth_access_tokens (token_hash, grant_id, scopes, created_at, expires_at) VALUES (?1, ?2, ?3, ?4, ?5)",
            &[V::T(&token::hash(&access)), V::T(grant_id), V::T(&stored), now.into(), access_expires.into()],
        )?,
        d1::stmt(
            &db,
            "INSERT INTO oauth_refresh_tokens (token_hash, id, grant_id, scopes, created_at, expires_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            &[
                V::T(&token::hash(&refresh)),
                V::T(refresh_id),
                V::T(grant_id),
                V::T(&stored),
                now.into(),
                (now + config.oauth_refresh_token_ttl_seconds * 1000).into(),
            ],
        )?,
        d1::stmt(
            &db,
            "UPDATE oauth_grants SET activated_at = COALESCE(activated_at, ?1), last_used_at = ?1 WHERE id = ?2",
            &[now.into(), V::T(grant_id)],
        )?,
    ];
    match db.batch(batch).await.map_err(ApiError::from) {
        Ok(_) => {}
        Err(e) if d1::is_guard_failure(&e) => return Ok(None),
        Err(e) => return Err(e),
    }
    let mut res = oauth_json(
        StatusCode::OK,
        &json!({
            "access_token": access,
            "token_type": "Bearer",
            "expires_in": config.oauth_access_token_ttl_seconds,
            "refresh_token": refresh,
            "scope": stored,
        }),
    );
    res.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(Some(res))
}

/// `grant_type=authorization_code`
async fn code(c: &Ctx, p: &[(String, String)], client_id: &str) -> ApiResult<Response> {
    let (Some(code), Some(redirect_uri), Some(verifier)) =
        (param(p, "code"), param(p, "redirect_uri"), param(p, "code_verifier"))
    else {
        return bad_request("invalid_request", "code, redirect_uri and code_verifier are required");
    };
    if !verifier_well_formed(verifier) {
        return bad_request("invalid_request", "code_verifier must be 43 to 128 characters of [A-Za-z0-9-._~]");
    }
    let hash = token::hash(code);
    let db = d1::db(&c.app.env)?;
    let row: Option<d1::Row> = d1::stmt(
        &db,
        "SELECT c.grant_id, c.client_id, c.redirect_uri, c.code_challenge, c.resource, c.scopes, c.expires_at, c.used_at, \
         g.revoked_at, g.user_id FROM oauth_codes c JOIN oauth_grants g ON g.id = c.grant_id WHERE c.code_hash = ?1",
        &[V::T(&hash)],
    )?
    .first(None)
    .await?;
    let Some(row) = row else { return bad_request("invalid_grant", "unknown or expired code") };
    let grant_id = row.text("grant_id").unwrap_or_default();
    let user_id = row.text("user_id").unwrap_or_default();
    if row.num("used_at") > 0.0 {
        // Someone holds a copy of the code: whatever it issued dies too.
        grants::revoke(&c.app, &user_id, &grant_id, Reason::CodeReplay, By::System).await?;
        return bad_request("invalid_grant", "the code was already used; its grant is revoked");
    }
    if row.num("expires_at") as i64 <= now_ms() || row.num("revoked_at") > 0.0 {
        return bad_request("invalid_grant", "unknown or expired code");
    }
    if row.text("client_id").as_deref() != Some(client_id) {
        return bad_request("invalid_grant", "the code was issued to another client");
    }
    if row.text("redirect_uri").as_deref() != Some(redirect_uri) {
        return bad_request("invalid_grant", "redirect_uri differs from the authorization request's");
    }
    if !pkce_s256_matches(verifier, &row.text("code_challenge").unwrap_or_default()) {
        return bad_request("invalid_grant", "code_verifier does not match the code_challenge");
    }
    let canonical = |r: &str| r.trim_end_matches('/').to_string();
    if let (Some(asked), Some(r)) = (row.text("resource"), param(p, "resource")) {
        if canonical(&asked) != canonical(r) {
            return bad_request("invalid_target", "resource differs from the authorization request's");
        }
    }
    let scopes = ScopeSet::from_stored(&row.text("scopes").unwrap_or_default());
    let nonce = hex::encode(random_bytes::<16>());
    let claim = Claim {
        sql: "UPDATE oauth_codes SET used_at = ?3, claim = ?2 WHERE code_hash = ?1 AND used_at IS NULL",
        hash: hash.clone(),
        nonce,
        won_if: "(SELECT claim FROM oauth_codes WHERE code_hash = ?1) = ?2",
    };
    let refresh_id = ids::ulid(now_ms(), random_bytes());
    match issue(c, &grant_id, scopes, claim, &refresh_id).await? {
        Some(res) => Ok(res),
        None => {
            grants::revoke(&c.app, &user_id, &grant_id, Reason::CodeReplay, By::System).await?;
            bad_request("invalid_grant", "the code was already used; its grant is revoked")
        }
    }
}

/// `grant_type=refresh_token`: rotation, and reuse detection.
async fn refresh_token(c: &Ctx, p: &[(String, String)], client_id: &str) -> ApiResult<Response> {
    let Some(presented) = param(p, "refresh_token") else { return bad_request("invalid_request", "refresh_token is required") };
    let hash = token::hash(presented);
    let db = d1::db(&c.app.env)?;
    let row: Option<d1::Row> = d1::stmt(
        &db,
        "SELECT r.grant_id, r.scopes, r.expires_at, r.used_at, r.revoked_at, g.client_id, g.user_id, g.revoked_at AS grant_revoked_at \
         FROM oauth_refresh_tokens r JOIN oauth_grants g ON g.id = r.grant_id WHERE r.token_hash = ?1",
        &[V::T(&hash)],
    )?
    .first(None)
    .await?;
    let Some(row) = row else { return bad_request("invalid_grant", "unknown refresh token") };
    let grant_id = row.text("grant_id").unwrap_or_default();
    let user_id = row.text("user_id").unwrap_or_default();
    let state = if row.num("revoked_at") > 0.0 || row.num("grant_revoked_at") > 0.0 {
        RefreshState::Revoked
    } else if row.num("used_at") > 0.0 {
        RefreshState::Rotated
    } else if row.num("expires_at") as i64 <= now_ms() {
        RefreshState::Expired
    } else {
        RefreshState::Current
    };
    let same_client = row.text("client_id").as_deref() == Some(client_id);
    match refresh(state, same_client) {
        RefreshOutcome::Refuse => {
            return bad_request("invalid_grant", "the refresh token is expired, revoked or another client's")
        }
        RefreshOutcome::RevokeGrant => {
            grants::revoke(&c.app, &user_id, &grant_id, Reason::RefreshReuse, By::System).await?;
            return bad_request("invalid_grant", "the refresh token was already used; its grant is revoked");
        }
        RefreshOutcome::Rotate => {}
    }
    let held = ScopeSet::from_stored(&row.text("scopes").unwrap_or_default());
    // A refresh may narrow the scopes, never widen them.
    let Some(scopes) = refresh_scopes(held, param(p, "scope")) else {
        return bad_request("invalid_scope", "a refresh cannot add scopes the token does not hold");
    };
    let refresh_id = ids::ulid(now_ms(), random_bytes());
    let claim = Claim {
        sql: "UPDATE oauth_refresh_tokens SET used_at = ?3, replaced_by = ?2 \
              WHERE token_hash = ?1 AND used_at IS NULL AND revoked_at IS NULL",
        hash,
        nonce: refresh_id.clone(),
        won_if: "(SELECT replaced_by FROM oauth_refresh_tokens WHERE token_hash = ?1) = ?2",
    };
    match issue(c, &grant_id, scopes, claim, &refresh_id).await? {
        Some(res) => Ok(res),
        None => {
            // Another request rotated it first: this presentation is a reuse.
            grants::revoke(&c.app, &user_id, &grant_id, Reason::RefreshReuse, By::System).await?;
            bad_request("invalid_grant", "the refresh token was already used; its grant is revoked")
        }
    }
}
