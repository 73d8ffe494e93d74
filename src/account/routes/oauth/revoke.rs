//! `POST /oauth/revoke` (RFC 7009): a refresh token revokes its whole grant
//! (§2.1), an access token only itself. An unknown, malformed or already
//! revoked token is answered 200 like a revoked one (§2.2), so the answer
//! tells an attacker nothing; another client's token is refused.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

use super::grants::{self, By, Reason};
use super::token::{bad_request, client_of, form};
use crate::adapters::d1::{self, V};
use crate::adapters::gate;
use crate::auth::token::{self, TokenKind};
use crate::domain::oauth::authorize::param;
use crate::error::ApiResult;
use crate::http::now_ms;
use crate::pipeline::ctx::Ctx;

/// RFC 7009 §2.2: 200 with no body, whether there was anything to revoke.
fn revoked() -> Response {
    let mut res = StatusCode::OK.into_response();
    res.headers_mut().insert(axum::http::header::ACCESS_CONTROL_ALLOW_ORIGIN, axum::http::HeaderValue::from_static("*"));
    res
}

/// POST /oauth/revoke (form: `token`, `token_type_hint`?, `client_id`)
pub async fn revoke(mut c: Ctx) -> ApiResult<Response> {
    let p = match form(&mut c).await? {
        Ok(p) => p,
        Err(res) => return Ok(res),
    };
    let Some(presented) = param(&p, "token").map(str::to_string) else {
        return bad_request("invalid_request", "token is required");
    };
    let (client_id, _) = match client_of(&c, &p).await? {
        Ok(x) => x,
        Err(res) => return Ok(res),
    };
    // The prefix tells the kind; token_type_hint is not needed.
    let (sql, kind) = match TokenKind::of(&presented) {
        Some(TokenKind::OAuthRefresh) if token::well_formed(TokenKind::OAuthRefresh, &presented) => (
            "SELECT r.grant_id, r.revoked_at, g.client_id, g.user_id FROM oauth_refresh_tokens r \
             JOIN oauth_grants g ON g.id = r.grant_id WHERE r.token_hash = ?1",
            TokenKind::OAuthRefresh,
        ),
        Some(TokenKind::OAuthAccess) if token::well_formed(TokenKind::OAuthAccess, &presented) => (
            "SELECT a.grant_id, a.revoked_at, g.client_id FROM oauth_access_tokens a \
             JOIN oauth_grants g ON g.id = a.grant_id WHERE a.token_hash = ?1",
            TokenKind::OAuthAccess,
        ),
        _ => return Ok(revoked()),
    };
    let hash = token::hash(&presented);
    let db = d1::db(&c.app.env)?;
    let row: Option<d1::Row> = d1::stmt(&db, sql, &[V::T(&hash)])?.first(None).await?;
    let Some(row) = row else { return Ok(revoked()) };
    if row.text("client_id").as_deref() != Some(client_id.as_str()) {
        // §2.1: a client revokes only its own tokens.
        return bad_request("invalid_client", "the token was issued to another client");
    }
    if row.num("revoked_at") > 0.0 {
        return Ok(revoked());
    }
    let grant_id = row.text("grant_id").unwrap_or_default();
    if kind == TokenKind::OAuthRefresh {
        // The client gave its grant up: no person acted in this request.
        let user_id = row.text("user_id").unwrap_or_default();
        grants::revoke(&c.app, &user_id, &grant_id, Reason::TokenRevoked, By::System).await?;
    } else {
        gate::revoke_token(&c.app.env, &grant_id, hash.clone()).await?;
        d1::stmt(
            &db,
            "UPDATE oauth_access_tokens SET revoked_at = ?2 WHERE token_hash = ?1 AND revoked_at IS NULL",
            &[V::T(&hash), now_ms().into()],
        )?
        .run()
        .await?;
    }
    Ok(revoked())
}
