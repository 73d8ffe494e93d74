//! The session-only surface: feeds, trending, discover, search, profiles,
//! follows, likes and saves. API keys never reach these (403 session_only
//! from the guard); everything listed obeys the visibility rule.

use axum::http::{Method, StatusCode};
use axum::response::Response;
use serde_json::json;

use crate::adapters::d1;
use crate::error::{ApiError, ApiResult};
use crate::http::{json, now_ms};
use crate::routes::shared::Ctx;

/// The live account named by the path, or 404.
async fn account_id(c: &Ctx) -> ApiResult<String> {
    let db = d1::db(&c.app.env)?;
    let id: Option<String> = d1::stmt(
        &db,
        "SELECT id FROM users WHERE username = ?1 AND deleted_at IS NULL",
        &[c.id.to_ascii_lowercase().as_str().into()],
    )?
    .first(Some("id"))
    .await?;
    id.ok_or(ApiError::NotFound)
}

/// POST /api/users/{username}/follow, DELETE /api/users/{username}/follow
pub async fn follow(c: Ctx) -> ApiResult<Response> {
    let me = &c.who()?.user_id;
    let them = account_id(&c).await?;
    if &them == me {
        return Err(ApiError::invalid("username: an account cannot follow itself"));
    }
    let db = d1::db(&c.app.env)?;
    let on = c.method == Method::POST;
    let sql = if on {
        "INSERT OR IGNORE INTO follows (follower_id, followee_id, created_at) VALUES (?1, ?2, ?3)"
    } else {
        "DELETE FROM follows WHERE follower_id = ?1 AND followee_id = ?2 AND ?3 IS NOT NULL"
    };
    d1::stmt(&db, sql, &[me.into(), (&them).into(), now_ms().into()])?.run().await?;
    Ok(json(StatusCode::OK, &json!({ "username": c.id.to_ascii_lowercase(), "following": on })))
}
