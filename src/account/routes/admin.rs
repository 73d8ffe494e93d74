//! Operators' tools (`ADMIN_USERNAMES`; the guard lets only their sessions
//! in): find accounts, suspend one (every session and OAuth grant revoked
//! for good, every key refused until it is lifted, its login refused),
//! lift a suspension, revoke any key. Every action is written to the audit
//! log of the account it touched, with the operator as actor, in the batch
//! of the change; suspension and its lifting reach the account's Gates
//! through `adapters::revocation` (one batch, one bounded fan-out).

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use crate::account::routes::keys::revoke_hash;
use crate::adapters::audit::{self, origin_of};
use crate::adapters::d1::{self, V};
use crate::adapters::revocation::{self, Kinds, Reload, Sweep};
use crate::domain::audit::{Action, Event, TargetType};
use crate::domain::clock::rfc3339;
use crate::error::{ApiError, ApiResult};
use crate::http::{json, now_ms};
use crate::pipeline::ctx::Ctx;

const ACCOUNT_COLUMNS: &str = "id, username, email, display_name, created_at, suspended_at, deleted_at";

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct AccountItem {
    id: String,
    username: String,
    email: String,
    display_name: String,
    created_at: String,
    suspended_at: Option<String>,
    deleted_at: Option<String>,
}

fn item(r: &d1::Row) -> AccountItem {
    let time = |c: &str| Some(r.num(c) as i64).filter(|t| *t != 0).map(rfc3339);
    AccountItem {
        id: r.text("id").unwrap_or_default(),
        username: r.text("username").unwrap_or_default(),
        email: r.text("email").unwrap_or_default(),
        display_name: r.text("display_name").unwrap_or_default(),
        created_at: rfc3339(r.num("created_at") as i64),
        suspended_at: time("suspended_at"),
        deleted_at: time("deleted_at"),
    }
}

/// GET /api/admin/accounts?q=: username prefix or exact email; no `q`, newest first.
pub async fn search(c: Ctx) -> ApiResult<Response> {
    let page = c.page()?;
    let q = c.q("q").unwrap_or_default().trim().to_ascii_lowercase();
    let db = d1::db(&c.app.env)?;
    // ?1 is the query; LIKE's wildcards in it are escaped, so it matches as typed.
    let select = format!(
        "SELECT {ACCOUNT_COLUMNS} FROM users WHERE (?1 = '' OR email = ?1 OR username LIKE \
         replace(replace(replace(?1, '\\', '\\\\'), '%', '\\%'), '_', '\\_') || '%' ESCAPE '\\')"
    );
    let (rows, next) = d1::newest_first_rows(&db, &select, &q, &page).await?;
    let items: Vec<AccountItem> = rows.iter().map(item).collect();
    Ok(crate::http::page(&items, next))
}

async fn account(db: &worker::D1Database, id: &str) -> ApiResult<d1::Row> {
    d1::stmt(db, &format!("SELECT {ACCOUNT_COLUMNS} FROM users WHERE id = ?1 AND deleted_at IS NULL"), &[id.into()])?
        .first(None)
        .await?
        .ok_or(ApiError::NotFound)
}

/// The longest suspension reason kept (characters).
const MAX_REASON: usize = 200;

/// POST /api/admin/accounts/{id}/suspend `{reason?}`: in one D1 batch, the
/// suspension, its audit row (only when it begins: a repeat logs nothing and
/// keeps the first time and operator), every session and OAuth grant of the
/// account revoked; then their Gates revoke them and the keys' Gates reload
/// the account (403 `account_suspended` from then on). An operator's
/// account is not suspended (403): take it out of `ADMIN_USERNAMES` first.
pub async fn suspend(mut c: Ctx) -> ApiResult<Response> {
    let body = c.json(true).await?;
    let reason = crate::pipeline::body::str_field(&body, "reason")?
        .map(|r| r.trim().chars().take(MAX_REASON).collect::<String>())
        .filter(|r| !r.is_empty());
    let op = c.who()?.clone();
    let db = d1::db(&c.app.env)?;
    let target = account(&db, &c.id).await?;
    if crate::config::Config::get(&c.app.env).is_operator(&target.text("username").unwrap_or_default()) {
        return Err(ApiError::Forbidden("an operator's account cannot be suspended".into()));
    }
    let now = now_ms();
    let ev = Event::by_operator(&op.user_id, &c.id, Action::AccountSuspended, &origin_of(&c.headers))
        .target(TargetType::Account, &c.id)
        .data(serde_json::json!({ "reason": reason }));
    let change = vec![
        audit::stmt_if(
            &db,
            &ev,
            now,
            Some("EXISTS (SELECT 1 FROM users WHERE id = ?12 AND suspended_at IS NULL)"),
            &[V::T(&c.id)],
        )?,
        d1::stmt(
            &db,
            "UPDATE users SET suspended_at = coalesce(suspended_at, ?2), suspended_by = coalesce(suspended_by, ?3) WHERE id = ?1",
            &[(&c.id).into(), now.into(), (&op.user_id).into()],
        )?,
        d1::stmt(&db, &format!("SELECT {ACCOUNT_COLUMNS} FROM users WHERE id = ?1"), &[(&c.id).into()])?,
    ];
    let sweep = Sweep { user_id: &c.id, ends: Kinds::SUSPENSION, keep: None, reload: Reload::Keys };
    after(revocation::apply(&c.app.env, &c.app.request_id, &db, sweep, change).await?)
}

/// POST /api/admin/accounts/{id}/unsuspend: its keys work again (their Gates
/// reload the account); sessions and grants revoked by the suspension stay dead.
pub async fn unsuspend(c: Ctx) -> ApiResult<Response> {
    let op = c.who()?.clone();
    let db = d1::db(&c.app.env)?;
    account(&db, &c.id).await?;
    let ev = Event::by_operator(&op.user_id, &c.id, Action::AccountUnsuspended, &origin_of(&c.headers))
        .target(TargetType::Account, &c.id);
    let change = vec![
        audit::stmt_if(
            &db,
            &ev,
            now_ms(),
            Some("EXISTS (SELECT 1 FROM users WHERE id = ?12 AND suspended_at IS NOT NULL)"),
            &[V::T(&c.id)],
        )?,
        d1::stmt(&db, "UPDATE users SET suspended_at = NULL, suspended_by = NULL WHERE id = ?1", &[(&c.id).into()])?,
        d1::stmt(&db, &format!("SELECT {ACCOUNT_COLUMNS} FROM users WHERE id = ?1"), &[(&c.id).into()])?,
    ];
    let sweep = Sweep { user_id: &c.id, ends: Kinds::NONE, keep: None, reload: Reload::Keys };
    after(revocation::apply(&c.app.env, &c.app.request_id, &db, sweep, change).await?)
}

/// The account as the change's last statement read it, after the change.
fn after(results: Vec<worker::D1Result>) -> ApiResult<Response> {
    let rows: Vec<d1::Row> = results.last().ok_or(ApiError::NotFound)?.results()?;
    Ok(json(StatusCode::OK, &item(rows.first().ok_or(ApiError::NotFound)?)))
}

/// DELETE /api/admin/api-keys/{id}: as the owner's revoke, logged in the
/// owner's audit log with the operator as actor; the owner is notified.
pub async fn revoke_key(c: Ctx) -> ApiResult<Response> {
    let op = c.who()?.clone();
    let db = d1::db(&c.app.env)?;
    let row: d1::Row = d1::stmt(&db, "SELECT user_id, token_hash, revoked_at FROM api_keys WHERE id = ?1", &[(&c.id).into()])?
        .first(None)
        .await?
        .ok_or(ApiError::NotFound)?;
    if row.num("revoked_at") != 0.0 {
        return Ok(StatusCode::NO_CONTENT.into_response());
    }
    let owner = row.text("user_id").unwrap_or_default();
    revoke_hash(&c.app, row.text("token_hash").unwrap_or_default()).await?;
    let now = now_ms();
    let ev = Event::by_operator(&op.user_id, &owner, Action::KeyRevoked, &origin_of(&c.headers))
        .target(TargetType::Key, &c.id)
        .data(serde_json::json!({ "reason": "operator" }));
    db.batch(vec![
        audit::stmt_if(
            &db,
            &ev,
            now,
            Some("EXISTS (SELECT 1 FROM api_keys WHERE id = ?12 AND revoked_at IS NULL)"),
            &[V::T(&c.id)],
        )?,
        d1::stmt(&db, "UPDATE api_keys SET revoked_at = ?1 WHERE id = ?2 AND revoked_at IS NULL", &[now.into(), (&c.id).into()])?,
    ])
    .await?;
    let data = serde_json::json!({ "keyId": c.id, "at": rfc3339(now), "reason": "revoked by an operator" });
    let (app, key_id) = (c.app.clone(), c.id.clone());
    c.app.defer("notify revoked", async move {
        crate::adapters::notices::notify(&app, &owner, Some(&key_id), crate::domain::event::EventType::KeyRevoked, data).await
    });
    Ok(StatusCode::NO_CONTENT.into_response())
}
