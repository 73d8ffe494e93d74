//! The session-only surface: feeds, trending, discover, search, profiles,
//! follows, likes and saves. API keys never reach these (403 session_only
//! from the guard); everything listed obeys the visibility rule.

use axum::http::{Method, StatusCode};
use axum::response::Response;
use serde_json::json;

use crate::adapters::crypto::random_bytes;
use crate::adapters::d1::{self, V};
use crate::domain::ids;
use crate::error::{ApiError, ApiResult};
use crate::http::{json, now_ms};
use crate::routes::shared::{load_visible, Ctx, Row};

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

/// POST|DELETE /api/posts/{id}/like and /save (and the JesClip twins): sets
/// the caller's like or save on a Jes it may see and answers the new state
/// with the exact count (recounted in the same batch).
pub async fn engage(c: Ctx) -> ApiResult<Response> {
    let save = c.path.ends_with("/save");
    let kind = c.kind();
    let post = load_visible(&c, &c.id, kind, false).await?;
    let me = &c.who()?.user_id;
    let on = c.method == Method::POST;
    let now = now_ms();
    let sid = ids::ulid(now, random_bytes());
    let (table, column) = if save { ("saves", "save_count") } else { ("likes", "like_count") };
    let write = match (save, on) {
        (false, true) => "INSERT OR IGNORE INTO likes (post_id, user_id, created_at) VALUES (?1, ?2, ?3)",
        (true, true) => "INSERT OR IGNORE INTO saves (id, post_id, user_id, created_at) VALUES (?4, ?1, ?2, ?3)",
        (false, false) => "DELETE FROM likes WHERE post_id = ?1 AND user_id = ?2",
        (true, false) => "DELETE FROM saves WHERE post_id = ?1 AND user_id = ?2",
    };
    let args: Vec<V> = if on {
        if save { vec![(&post.k).into(), me.into(), now.into(), (&sid).into()] } else { vec![(&post.k).into(), me.into(), now.into()] }
    } else {
        vec![(&post.k).into(), me.into()]
    };
    let db = d1::db(&c.app.env)?;
    let out = db
        .batch(vec![
            d1::stmt(&db, write, &args)?,
            d1::stmt(
                &db,
                &format!("UPDATE posts SET {column} = (SELECT COUNT(*) FROM {table} WHERE post_id = ?1) WHERE id = ?1"),
                &[(&post.k).into()],
            )?,
            d1::stmt(&db, &format!("SELECT id AS k, {column} AS n FROM posts WHERE id = ?1"), &[(&post.k).into()])?,
        ])
        .await?;
    let n = out.last().map(|r| r.results::<Row>()).transpose()?.and_then(|rows| rows.into_iter().next()).map(|r| r.n).unwrap_or(0.0);
    let body = if save { json!({ "saved": on, "saves": n as i64 }) } else { json!({ "liked": on, "likes": n as i64 }) };
    Ok(json(StatusCode::OK, &body))
}
