//! The caller's sessions (sessions only): listed with where they were opened
//! and when last used, and revoked one by one: the session's Gate first, so
//! its next request is refused, then D1 with the audit row.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use crate::adapters::audit::{self, origin_of};
use crate::adapters::d1::{self, V};
use crate::adapters::gate;
use crate::auth::cookies;
use crate::auth::decide::CredentialKind;
use crate::domain::audit::{Action, Event, TargetType};
use crate::domain::clock::rfc3339;
use crate::error::{ApiError, ApiResult};
use crate::http::now_ms;
use crate::pipeline::ctx::Ctx;
use crate::protocol::GateRequest;

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct SessionItem {
    id: String,
    created_at: String,
    last_used_at: Option<String>,
    expires_at: String,
    user_agent: Option<String>,
    current: bool,
}

/// A time column that may be NULL, as RFC 3339.
fn time(r: &d1::Row, column: &str) -> Option<String> {
    Some(r.num(column) as i64).filter(|t| *t != 0).map(rfc3339)
}

/// GET /api/auth/sessions: live sessions, newest first; `current` is the caller's.
pub async fn list(c: Ctx) -> ApiResult<Response> {
    let me = c.who()?;
    let page = c.page()?;
    let db = d1::db(&c.app.env)?;
    let select = format!(
        "SELECT id, created_at, last_used_at, expires_at, user_agent FROM sessions \
         WHERE user_id = ?1 AND revoked_at IS NULL AND expires_at > {}",
        now_ms()
    );
    let (rows, next) = d1::newest_first_rows(&db, &select, &me.user_id, &page).await?;
    let items: Vec<SessionItem> = rows
        .iter()
        .map(|r| {
            let id = r.text("id").unwrap_or_default();
            SessionItem {
                current: id == me.id,
                created_at: rfc3339(r.num("created_at") as i64),
                last_used_at: time(r, "last_used_at"),
                expires_at: rfc3339(r.num("expires_at") as i64),
                user_agent: r.text("user_agent"),
                id,
            }
        })
        .collect();
    Ok(crate::http::page(&items, next))
}

/// DELETE /api/auth/sessions/{id}: dead on its next request. Revoking the
/// current session logs out (its cookies are cleared).
pub async fn revoke(c: Ctx) -> ApiResult<Response> {
    let me = c.who()?;
    let db = d1::db(&c.app.env)?;
    let row: d1::Row = d1::stmt(
        &db,
        "SELECT token_hash, revoked_at FROM sessions WHERE id = ?1 AND user_id = ?2",
        &[(&c.id).into(), (&me.user_id).into()],
    )?
    .first(None)
    .await?
    .ok_or(ApiError::NotFound)?;
    if row.num("revoked_at") == 0.0 {
        let hash = row.text("token_hash").unwrap_or_default();
        gate::revoke(&c.app.env, &GateRequest::Revoke { kind: CredentialKind::Session, hash }).await?;
        let now = now_ms();
        let ev = Event::by_owner(&me.user_id, Action::SessionRevoked, &origin_of(&c.headers)).target(TargetType::Session, &c.id);
        db.batch(vec![
            audit::stmt_if(
                &db,
                &ev,
                now,
                Some("EXISTS (SELECT 1 FROM sessions WHERE id = ?12 AND revoked_at IS NULL)"),
                &[V::T(&c.id)],
            )?,
            d1::stmt(
                &db,
                "UPDATE sessions SET revoked_at = ?1 WHERE id = ?2 AND revoked_at IS NULL",
                &[now.into(), (&c.id).into()],
            )?,
        ])
        .await?;
    }
    let mut res = StatusCode::NO_CONTENT.into_response();
    if c.id == me.id {
        cookies::clear(res.headers_mut());
    }
    Ok(res)
}
