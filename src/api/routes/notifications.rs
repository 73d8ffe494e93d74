//! The account's notices (see `adapters::notices`): listed newest first,
//! and marked read.

use axum::http::StatusCode;
use axum::response::Response;
use serde::{Deserialize, Serialize};

use crate::adapters::d1;
use crate::domain::clock::rfc3339;
use crate::error::{ApiError, ApiResult};
use crate::http::{json, now_ms};
use crate::pipeline::ctx::Ctx;

#[derive(Deserialize)]
struct Row {
    id: String,
    key_id: Option<String>,
    #[serde(rename = "type")]
    kind: String,
    data: String,
    created_at: f64,
    read_at: Option<f64>,
}

impl d1::HasId for Row {
    fn id(&self) -> &str {
        &self.id
    }
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Item {
    id: String,
    key_id: Option<String>,
    #[serde(rename = "type")]
    kind: String,
    data: serde_json::Value,
    created_at: String,
    read_at: Option<String>,
}

/// Notices one call marks at most.
pub const MAX_MARK: usize = 100;

/// POST /api/notifications/read: `{"ids": [...]}` (at most 100) or
/// `{"all": true}` marks the account's unread notices read; 200 with how many
/// changed. Another account's ids change nothing.
pub async fn mark_read(mut c: Ctx) -> ApiResult<Response> {
    let body = c.json(false).await?;
    let ids = match (body.get("ids"), body.get("all")) {
        (Some(ids), None) => {
            let valid = ids.as_array().is_some_and(|l| !l.is_empty() && l.len() <= MAX_MARK && l.iter().all(|v| v.is_string()));
            if !valid {
                return Err(ApiError::invalid(format!("ids: 1 to {MAX_MARK} notification ids")));
            }
            Some(ids.to_string())
        }
        (None, Some(serde_json::Value::Bool(true))) => None,
        _ => return Err(ApiError::invalid("body: give either ids (a list) or all: true")),
    };
    let db = d1::db(&c.app.env)?;
    let marked = d1::stmt(
        &db,
        "UPDATE notifications SET read_at = ?2 WHERE user_id = ?1 AND read_at IS NULL \
         AND (?3 IS NULL OR id IN (SELECT value FROM json_each(?3)))",
        &[(&c.who()?.user_id).into(), now_ms().into(), ids.as_deref().into()],
    )?
    .run()
    .await?
    .meta()?
    .and_then(|m| m.changes)
    .unwrap_or(0);
    Ok(json(StatusCode::OK, &serde_json::json!({ "marked": marked })))
}

/// GET /api/notifications (newest first)
pub async fn list(c: Ctx) -> ApiResult<Response> {
    let app = &c.app;
    let principal = c.who()?;
    let page = c.page()?;
    let db = d1::db(&app.env)?;
    let select = "SELECT id, key_id, type, data, created_at, read_at FROM notifications WHERE user_id = ?1";
    let (rows, next) = d1::newest_first::<Row>(&db, select, &principal.user_id, &page).await?;
    let items: Vec<Item> = rows
        .into_iter()
        .map(|r| Item {
            id: r.id,
            key_id: r.key_id,
            kind: r.kind,
            data: serde_json::from_str(&r.data).unwrap_or_default(),
            created_at: rfc3339(r.created_at as i64),
            read_at: r.read_at.map(|v| rfc3339(v as i64)),
        })
        .collect();
    Ok(crate::http::page(&items, next))
}
