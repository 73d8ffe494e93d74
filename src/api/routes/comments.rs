//! Comments and replies on Jes and JesClips, and the thread read (oldest
//! first, cursor-paginated). Commenting and reading need sight of the Jes; the
//! Jes's comment count is set from COUNT(*) in the same batch as the insert.

use axum::http::StatusCode;
use axum::response::Response;
use serde_json::{json, Value};

use crate::adapters::crypto::random_bytes;
use crate::adapters::d1::{self, V};
use crate::adapters::outbox;
use crate::api::routes::content::list::fetch_list;
use crate::api::routes::content::load::{author_of, load_visible};
use crate::api::routes::posts::text_field;
use crate::domain::content::{ts, MAX_COMMENT_CHARS};
use crate::domain::event::{Event, EventType};
use crate::domain::ids;
use crate::error::{ApiError, ApiResult};
use crate::http::{json, now_ms};
use crate::pipeline::body::str_field;
use crate::pipeline::ctx::Ctx;

/// A comment as the API returns it (`c` = comments, `u` = its author). Keep
/// in step with `render_new` below (tests compare the two).
macro_rules! comment_sql {
    () => {
        concat!(
            "json_patch(json_object('id', c.id, 'postId', c.post_id, 'parentId', c.parent_id, 'content', c.content, ",
            "'author', ",
            crate::author_sql!(),
            ", 'createdAt', ",
            crate::ts_sql!("c.created_at"),
            "), ",
            "CASE WHEN c.via_label IS NULL THEN '{}' ELSE json_object('via', json_object('label', c.via_label)) END)"
        )
    };
}

/// POST /api/posts/{id}/comments, POST /api/jesclips/{id}/comments:
/// `{content, parentId?}`.
pub async fn create(mut c: Ctx) -> ApiResult<Response> {
    let body = c.json(false).await?;
    let content = text_field(&body, "content", MAX_COMMENT_CHARS)?;
    if content.is_empty() {
        return Err(ApiError::invalid("content: must not be empty"));
    }
    let parent = str_field(&body, "parentId")?.map(str::to_string);
    let post = load_visible(&c, &c.id, c.kind(), false).await?;
    let db = d1::db(&c.app.env)?;
    if let Some(pid) = &parent {
        let found: Option<String> =
            d1::stmt(&db, "SELECT id FROM comments WHERE id = ?1 AND post_id = ?2", &[pid.into(), (&post.id).into()])?
                .first(Some("id"))
                .await?;
        if found.is_none() {
            return Err(ApiError::invalid("parentId: no such comment on this Jes"));
        }
    }
    let p = c.who()?;
    let author = author_of(&c, &p.user_id).await?;
    let now = now_ms();
    let id = ids::ulid(now, random_bytes());
    let via = p.via();
    let mut data = json!({
        "id": id, "postId": post.id, "parentId": parent, "content": content,
        "author": author, "createdAt": ts(now),
    });
    if let Some(label) = via {
        data["via"] = json!({ "label": label });
    }
    // The event goes to the account whose Jes was commented on: it may see
    // every comment there, and a moderation key watches exactly this.
    let post_author = serde_json::from_str::<Value>(&post.json)?["author"]["id"].as_str().unwrap_or_default().to_string();
    let ev = Event::new(EventType::CommentCreated, &post_author, now, random_bytes(), data.clone());
    db.batch(vec![
        d1::stmt(
            &db,
            "INSERT INTO comments (id, post_id, parent_id, author_id, content, via_key_id, via_label, created_at) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
            &[
                (&id).into(),
                (&post.id).into(),
                parent.as_ref().into(),
                (&p.user_id).into(),
                (&content).into(),
                via.map(|_| p.id.as_str()).into(),
                via.into(),
                now.into(),
            ],
        )?,
        d1::stmt(
            &db,
            "UPDATE posts SET comment_count = (SELECT COUNT(*) FROM comments WHERE post_id = ?1) WHERE id = ?1",
            &[(&post.id).into()],
        )?,
        outbox::record(&db, &ev)?,
    ])
    .await?;
    outbox::dispatch(&c.app, ev);
    Ok(json(StatusCode::CREATED, &data))
}

/// GET /api/posts/{id}/comments, GET /api/jesclips/{id}/comments: the
/// thread, oldest first; `?parentId=` narrows it to one comment's replies.
pub async fn list(c: Ctx) -> ApiResult<Response> {
    let page = c.page()?;
    let post = load_visible(&c, &c.id, c.kind(), false).await?;
    let parent = c.q("parentId");
    const SQL: &str = concat!(
        "SELECT c.id AS k, ",
        comment_sql!(),
        " AS j FROM comments c JOIN users u ON u.id = c.author_id ",
        "WHERE c.post_id = ?3 AND u.deleted_at IS NULL AND (?1 IS NULL OR c.id > ?1) ",
        "AND (?4 IS NULL OR c.parent_id = ?4) ORDER BY c.id LIMIT ?2"
    );
    let args = [page.after.as_ref().into(), i64::from(page.limit + 1).into(), V::T(&post.id), parent.as_deref().into()];
    fetch_list(&c, SQL, &page, &args).await
}
