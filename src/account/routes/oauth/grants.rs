//! Grants: "Connected apps". The owner lists and revokes them (session
//! only); the token and revocation endpoints revoke a grant when a code or a
//! refresh token shows it was copied. Revocation tells the grant's Gate
//! first, so every token of the grant is refused from its answer on.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

use crate::adapters::audit;
use crate::adapters::d1::{self, V};
use crate::adapters::gate;
use crate::auth::decide::CredentialKind;
use crate::auth::scope::ScopeSet;
use crate::domain::audit::{Action, Event, Origin, TargetType};
use crate::domain::clock::rfc3339;
use crate::domain::page::finish;
use crate::error::{ApiError, ApiResult};
use crate::http::{now_ms, page, AppState};
use crate::pipeline::ctx::Ctx;
use crate::protocol::GateRequest;

/// Why a grant was revoked (`oauth_grants.revoked_reason`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reason {
    /// The owner, in Connected apps.
    Owner,
    /// Its refresh token was revoked (RFC 7009 §2.1).
    TokenRevoked,
    /// A rotated refresh token came back.
    RefreshReuse,
    /// A code was exchanged twice (RFC 6749 §4.1.2).
    CodeReplay,
}

impl Reason {
    pub fn as_str(self) -> &'static str {
        match self {
            Reason::Owner => "owner",
            Reason::TokenRevoked => "token_revoked",
            Reason::RefreshReuse => "refresh_reuse",
            Reason::CodeReplay => "code_replay",
        }
    }
}

/// Who revoked a grant, for its audit row: the owner from a request of
/// theirs, or the service (a reused secret, the client's own revocation).
pub enum By<'a> {
    Owner(&'a Origin),
    System,
}

/// Revokes the grant of `user_id` and every token of it: its Gate first
/// (from its answer on no token passes), then D1 in one batch with the audit
/// row `grant.revoked`, written only by the batch that revoked it.
pub async fn revoke(app: &AppState, user_id: &str, grant_id: &str, reason: Reason, by: By<'_>) -> ApiResult<()> {
    gate::revoke(&app.env, &GateRequest::Revoke { kind: CredentialKind::OAuth, hash: grant_id.to_string() }).await?;
    let db = d1::db(&app.env)?;
    let now = now_ms();
    let args = [now.into(), V::T(grant_id)];
    let event = match by {
        By::Owner(origin) => Event::by_owner(user_id, Action::GrantRevoked, origin),
        By::System => Event::by_system(user_id, Action::GrantRevoked),
    }
    .target(TargetType::Grant, grant_id)
    .data(serde_json::json!({ "reason": reason.as_str() }));
    db.batch(vec![
        audit::stmt_if(
            &db,
            &event,
            now,
            Some("EXISTS (SELECT 1 FROM oauth_grants WHERE id = ?12 AND revoked_at IS NULL)"),
            &[V::T(grant_id)],
        )?,
        d1::stmt(
            &db,
            "UPDATE oauth_grants SET revoked_at = ?1, revoked_reason = ?3 WHERE id = ?2 AND revoked_at IS NULL",
            &[now.into(), V::T(grant_id), reason.as_str().into()],
        )?,
        d1::stmt(&db, "UPDATE oauth_refresh_tokens SET revoked_at = ?1 WHERE grant_id = ?2 AND revoked_at IS NULL", &args)?,
        d1::stmt(&db, "UPDATE oauth_access_tokens SET revoked_at = ?1 WHERE grant_id = ?2 AND revoked_at IS NULL", &args)?,
    ])
    .await?;
    Ok(())
}

/// GET /api/auth/grants: the account's connected apps (grants that issued
/// tokens and are not revoked), newest first.
pub async fn list(c: Ctx) -> ApiResult<Response> {
    let who = c.who()?;
    let p = c.page()?;
    let db = d1::db(&c.app.env)?;
    let rows: Vec<d1::Row> = d1::stmt(
        &db,
        "SELECT id, client_id, client_name, scopes, created_at, last_used_at FROM oauth_grants \
         WHERE user_id = ?1 AND revoked_at IS NULL AND activated_at IS NOT NULL AND (?2 IS NULL OR id < ?2) \
         ORDER BY id DESC LIMIT ?3",
        &[(&who.user_id).into(), p.after.as_ref().into(), i64::from(p.limit + 1).into()],
    )?
    .all()
    .await?
    .results()?;
    let (rows, next) = finish(rows, p.limit, |r| r.text("id").unwrap_or_default());
    let items: Vec<serde_json::Value> = rows
        .iter()
        .map(|r| {
            let last = r.num("last_used_at");
            serde_json::json!({
                "id": r.text("id"),
                "clientId": r.text("client_id"),
                "clientName": r.text("client_name"),
                "scopes": ScopeSet::from_stored(&r.text("scopes").unwrap_or_default()).names(),
                "createdAt": rfc3339(r.num("created_at") as i64),
                "lastUsedAt": (last > 0.0).then(|| rfc3339(last as i64)),
            })
        })
        .collect();
    Ok(page(&items, next))
}

/// DELETE /api/auth/grants/{id}: every token of the grant dead on its next
/// request. Another account's grant is 404; an already revoked one 204.
pub async fn delete(c: Ctx) -> ApiResult<Response> {
    let who = c.who()?;
    let db = d1::db(&c.app.env)?;
    let row: Option<d1::Row> = d1::stmt(
        &db,
        "SELECT revoked_at FROM oauth_grants WHERE id = ?1 AND user_id = ?2",
        &[(&c.id).into(), (&who.user_id).into()],
    )?
    .first(None)
    .await?;
    let row = row.ok_or(ApiError::NotFound)?;
    if row.num("revoked_at") == 0.0 {
        revoke(&c.app, &who.user_id, &c.id, Reason::Owner, By::Owner(&audit::origin_of(&c.headers))).await?;
    }
    Ok(StatusCode::NO_CONTENT.into_response())
}
