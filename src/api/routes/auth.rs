//! What a credential learns about itself: `me` (any key or session) and
//! key introspection (the calling key's own record and standing).

use axum::http::StatusCode;
use axum::response::Response;

use crate::adapters::d1;
use crate::domain::clock::rfc3339;
use crate::error::{ApiError, ApiResult};
use crate::http::{json, now_ms};
use crate::pipeline::ctx::Ctx;
use crate::records::{load_user, KeyRow, UserResponse, KEY_COLUMNS};

/// GET /api/auth/me: answered from the profile cached with the credential.
pub async fn me(c: Ctx) -> ApiResult<Response> {
    let app = &c.app;
    let principal = c.who()?;
    if let Some(p) = &principal.profile {
        let user = UserResponse {
            id: principal.user_id.clone(),
            username: p.username.clone(),
            email: p.email.clone(),
            display_name: p.display_name.clone(),
            created_at: rfc3339(p.created_at),
        };
        return Ok(json(StatusCode::OK, &user));
    }
    let db = d1::db(&app.env)?;
    Ok(json(StatusCode::OK, &load_user(&db, &principal.user_id).await?))
}

/// GET /api/auth/key: the calling key's own metadata and limit standing.
pub async fn introspect(c: Ctx) -> ApiResult<Response> {
    let app = &c.app;
    let principal = c.who()?;
    let db = d1::db(&app.env)?;
    let row: KeyRow = d1::stmt(&db, &format!("SELECT {KEY_COLUMNS} FROM api_keys WHERE id = ?1"), &[(&principal.id).into()])?
        .first(None)
        .await?
        .ok_or(ApiError::InvalidApiKey)?;
    let mut body = serde_json::to_value(row.response(now_ms()))?;
    let s = principal.standings;
    let mut limits = serde_json::json!({ "minute": s.minute });
    if let Some(day) = s.day {
        limits["day"] = serde_json::to_value(day)?;
    }
    body["limits"] = limits;
    body["userId"] = serde_json::Value::String(principal.user_id.clone());
    Ok(json(StatusCode::OK, &body))
}
