//! The session-only surface: feeds, trending, discover, search, profiles,
//! follows, likes and saves. API keys never reach these (403 session_only
//! from the guard); everything listed obeys the visibility rule.

use axum::http::{Method, StatusCode};
use axum::response::Response;
use serde_json::json;

use crate::adapters::crypto::random_bytes;
use crate::adapters::d1::{self, V};
use crate::api::routes::content::list::items;
use crate::api::routes::content::list::{fetch_list, list_at, offset, post_feed, post_list_binds, viewer_binds};
use crate::api::routes::content::load::load_visible;
use crate::api::routes::content::sql::{POST_JSON, VISIBLE};
use crate::domain::clock::DAY_MS;
use crate::domain::{content, ids};
use crate::error::{ApiError, ApiResult};
use crate::http::raw_json;
use crate::http::{json, now_ms};
use crate::pipeline::ctx::Ctx;

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
        if save {
            vec![(&post.id).into(), me.into(), now.into(), (&sid).into()]
        } else {
            vec![(&post.id).into(), me.into(), now.into()]
        }
    } else {
        vec![(&post.id).into(), me.into()]
    };
    let db = d1::db(&c.app.env)?;
    let out = db
        .batch(vec![
            d1::stmt(&db, write, &args)?,
            d1::stmt(
                &db,
                &format!("UPDATE posts SET {column} = (SELECT COUNT(*) FROM {table} WHERE post_id = ?1) WHERE id = ?1"),
                &[(&post.id).into()],
            )?,
            d1::stmt(&db, &format!("SELECT {column} AS count FROM posts WHERE id = ?1"), &[(&post.id).into()])?,
        ])
        .await?;
    let n = out
        .last()
        .map(|r| r.results::<d1::Row>())
        .transpose()?
        .and_then(|rows| rows.into_iter().next())
        .map(|r| r.num("count"))
        .unwrap_or(0.0);
    let body = if save { json!({ "saved": on, "saves": n as i64 }) } else { json!({ "liked": on, "likes": n as i64 }) };
    Ok(json(StatusCode::OK, &body))
}

/// GET /api/feed/home: the caller's own and followed accounts' Jes and
/// JesClips, newest first.
pub async fn home(c: Ctx) -> ApiResult<Response> {
    post_feed(&c, "p.author_id = ?1 OR p.author_id IN (SELECT followee_id FROM follows WHERE follower_id = ?1)", vec![]).await
}

/// GET /api/feed/jehub/{hub}: Jes posted to a JeHub.
pub async fn jehub(c: Ctx) -> ApiResult<Response> {
    let hub = content::hub(&c.id).map_err(ApiError::invalid)?;
    post_feed(&c, "p.kind = 'jes' AND p.hub = ?6", vec![V::T(&hub)]).await
}

/// GET /api/feed/jesclips: JesClips, newest first.
pub async fn jesclips(c: Ctx) -> ApiResult<Response> {
    post_feed(&c, "p.kind = 'jesclip'", vec![]).await
}

/// GET /api/discover: public Jes from accounts the caller does not follow yet.
pub async fn discover(c: Ctx) -> ApiResult<Response> {
    post_feed(
        &c,
        "p.visibility = 'PUBLIC' AND p.author_id IS NOT ?1 \
         AND p.author_id NOT IN (SELECT followee_id FROM follows WHERE follower_id = ?1)",
        vec![],
    )
    .await
}

/// GET /api/trending: public Jes of the last 7 days ranked by engagement in
/// the last 24 hours (likes 1, comments 2, bounces 3); offset cursor.
pub async fn trending(c: Ctx) -> ApiResult<Response> {
    let page = c.page()?;
    let at = offset(&page)?;
    let now = now_ms();
    let sql = format!(
        "SELECT p.id AS k, {POST_JSON} AS j, \
         (SELECT COUNT(*) FROM likes l WHERE l.post_id = p.id AND l.created_at > ?6) \
         + 2 * (SELECT COUNT(*) FROM comments cm WHERE cm.post_id = p.id AND cm.created_at > ?6) \
         + 3 * (SELECT COUNT(*) FROM posts b WHERE b.bounce_of = p.id AND b.deleted_at IS NULL AND b.created_at > ?6) AS n \
         FROM posts p JOIN users u ON u.id = p.author_id \
         WHERE p.visibility = 'PUBLIC' AND {VISIBLE} AND p.created_at > ?7 AND n > 0 \
         ORDER BY n DESC, p.id DESC LIMIT ?5 OFFSET ?4"
    );
    let mut args = viewer_binds(&c);
    args.extend([V::I(at.into()), V::I(i64::from(page.limit + 1)), V::I(now - DAY_MS), V::I(now - 7 * DAY_MS)]);
    let db = d1::db(&c.app.env)?;
    let rows: Vec<d1::Row> = d1::stmt(&db, &sql, &args)?.all().await?.results()?;
    Ok(list_at(items(rows), &page, at))
}

/// GET /api/search?q=&type=jes|users|hashtags (default jes). Jes: full text
/// (FTS5), or one hashtag when q is `#tag`; users: username or display name
/// prefix; hashtags: tag prefix with the number of Jes the caller may see.
pub async fn search(c: Ctx) -> ApiResult<Response> {
    let q = c.q("q").map(|q| q.trim().to_string()).filter(|q| !q.is_empty() && q.chars().count() <= 100);
    let q = q.ok_or_else(|| ApiError::invalid("q: give 1 to 100 characters to search for"))?;
    match c.q("type").as_deref().unwrap_or("jes") {
        "jes" => {
            if q.starts_with('#') {
                let tag = content::tag_query(&q).ok_or_else(|| ApiError::invalid("q: not a hashtag"))?;
                return post_feed(&c, "p.id IN (SELECT post_id FROM hashtags WHERE tag = ?6)", vec![V::T(&tag)]).await;
            }
            let fts = content::fts_query(&q).ok_or_else(|| ApiError::invalid("q: must contain a word"))?;
            post_feed(&c, "p.rid IN (SELECT rowid FROM posts_fts WHERE posts_fts MATCH ?6)", vec![V::T(&fts)]).await
        }
        "users" => {
            let page = c.page()?;
            let pattern = content::like_prefix(q.trim_start_matches('@'));
            const SQL: &str = concat!(
                "SELECT u.username AS k, ",
                crate::author_sql!(),
                " AS j FROM users u WHERE u.deleted_at IS NULL ",
                "AND (u.username LIKE ?6 ESCAPE '\\' OR u.display_name LIKE ?6 ESCAPE '\\') ",
                "AND (?4 IS NULL OR u.username > ?4) ORDER BY u.username LIMIT ?5"
            );
            fetch_list(&c, SQL, &page, &post_list_binds(&c, &page, vec![V::T(&pattern)])).await
        }
        "hashtags" => {
            let page = c.page()?;
            let at = offset(&page)?;
            let tag = content::tag_query(&q).ok_or_else(|| ApiError::invalid("q: not a hashtag"))?;
            let sql = format!(
                "SELECT h.tag AS k, json_object('tag', h.tag, 'count', COUNT(*)) AS j FROM hashtags h \
                 JOIN posts p ON p.id = h.post_id JOIN users u ON u.id = p.author_id \
                 WHERE h.tag LIKE ?6 ESCAPE '\\' AND {VISIBLE} GROUP BY h.tag ORDER BY COUNT(*) DESC, h.tag LIMIT ?5 OFFSET ?4"
            );
            let mut args = viewer_binds(&c);
            args.extend([V::I(at.into()), V::I(i64::from(page.limit + 1))]);
            let pattern = content::like_prefix(&tag);
            args.push(V::T(&pattern));
            let db = d1::db(&c.app.env)?;
            let rows: Vec<d1::Row> = d1::stmt(&db, &sql, &args)?.all().await?.results()?;
            Ok(list_at(items(rows), &page, at))
        }
        _ => Err(ApiError::invalid("type: must be one of jes, users, hashtags")),
    }
}

/// GET /api/users/{username}: a profile with follower counts, the Jes count
/// the caller may see, and how the caller and the account follow each other.
pub async fn profile(c: Ctx) -> ApiResult<Response> {
    let sql = format!(
        "SELECT u.id AS k, json_object('id', u.id, 'username', u.username, 'displayName', u.display_name, \
         'createdAt', {created}, \
         'followers', (SELECT COUNT(*) FROM follows f JOIN users x ON x.id = f.follower_id WHERE f.followee_id = u.id AND x.deleted_at IS NULL), \
         'following', (SELECT COUNT(*) FROM follows f JOIN users x ON x.id = f.followee_id WHERE f.follower_id = u.id AND x.deleted_at IS NULL), \
         'posts', (SELECT COUNT(*) FROM posts p WHERE p.author_id = u.id AND {VISIBLE}), \
         'isFollowing', json(CASE WHEN EXISTS (SELECT 1 FROM follows WHERE follower_id = ?1 AND followee_id = u.id) THEN 'true' ELSE 'false' END), \
         'followsYou', json(CASE WHEN EXISTS (SELECT 1 FROM follows WHERE follower_id = u.id AND followee_id = ?1) THEN 'true' ELSE 'false' END)) AS j \
         FROM users u WHERE u.username = ?2 AND u.deleted_at IS NULL",
        created = crate::ts_sql!("u.created_at"),
    );
    let db = d1::db(&c.app.env)?;
    let name = c.id.to_ascii_lowercase();
    let j: Option<String> = d1::stmt(&db, &sql, &[c.viewer().into(), V::T(&name)])?.first(Some("j")).await?;
    Ok(raw_json(StatusCode::OK, j.ok_or(ApiError::NotFound)?))
}

/// GET /api/users/{username}/posts: an account's Jes and JesClips the caller may see.
pub async fn user_posts(c: Ctx) -> ApiResult<Response> {
    let id = account_id(&c).await?;
    post_feed(&c, "p.author_id = ?6", vec![V::T(&id)]).await
}

/// GET /api/saves: what the caller saved and may still see, last saved first.
pub async fn saves(c: Ctx) -> ApiResult<Response> {
    let page = c.page()?;
    let sql = format!(
        "SELECT s.id AS k, {POST_JSON} AS j FROM saves s JOIN posts p ON p.id = s.post_id \
         JOIN users u ON u.id = p.author_id WHERE s.user_id = ?1 AND {VISIBLE} \
         AND (?4 IS NULL OR s.id < ?4) ORDER BY s.id DESC LIMIT ?5"
    );
    fetch_list(&c, &sql, &page, &post_list_binds(&c, &page, vec![])).await
}
