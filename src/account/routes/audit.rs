//! The account's audit log (sessions only): what happened to its
//! credentials, newest first, 90 days (`domain::audit`; rows are written by
//! the routes that make each change, in the same batch).

use axum::response::Response;

use crate::adapters::{audit, d1};
use crate::domain::audit::cutoff;
use crate::error::ApiResult;
use crate::http::now_ms;
use crate::pipeline::ctx::Ctx;

/// GET /api/account/audit
pub async fn list(c: Ctx) -> ApiResult<Response> {
    let me = c.who()?;
    let page = c.page()?;
    let db = d1::db(&c.app.env)?;
    let select = format!("SELECT {} FROM audit_log WHERE user_id = ?1 AND at >= {}", audit::COLUMNS, cutoff(now_ms()));
    let (rows, next) = d1::newest_first_rows(&db, &select, &me.user_id, &page).await?;
    let items: Vec<_> = rows.iter().map(|r| audit::row(r).item()).collect();
    Ok(crate::http::page(&items, next))
}
