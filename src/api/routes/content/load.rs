//! Loading one Jes or JesClip as the caller may see it, and the author
//! snippet of what the caller writes.

use serde_json::Value;

use crate::adapters::d1::{self, V};
use crate::domain::content::{may_see, PostKind, Viewer, Visibility};
use crate::error::{ApiError, ApiResult};
use crate::pipeline::ctx::Ctx;

use super::list::viewer_binds;

/// One Jes or JesClip as `load_visible` reads it: rendered, with what the
/// visibility decision needs.
pub struct PostRow {
    pub id: String,
    /// As the API returns it (`post_sql!`).
    pub json: String,
    pub visibility: Option<String>,
    pub is_owner: bool,
    pub follows_author: bool,
    /// The Jes or its author's account is deleted.
    pub deleted: bool,
    /// The Jes this one bounces.
    pub bounce_of: Option<String>,
    pub media_count: f64,
}

impl From<&d1::Row> for PostRow {
    fn from(r: &d1::Row) -> Self {
        PostRow {
            id: r.text("id").unwrap_or_default(),
            json: r.text("json").unwrap_or_default(),
            visibility: r.text("visibility"),
            is_owner: r.flag("is_owner"),
            follows_author: r.flag("follows_author"),
            deleted: r.flag("deleted"),
            bounce_of: r.text("bounce_of"),
            media_count: r.num("media_count"),
        }
    }
}

impl PostRow {
    /// The visibility decision for this row (`domain::content::may_see`).
    pub fn visible(&self) -> bool {
        seen(self.visibility.as_deref(), self.deleted, self.is_owner, self.follows_author)
    }
}

/// `may_see` over a row's stored visibility (an unknown value is never seen).
pub fn seen(visibility: Option<&str>, deleted: bool, is_owner: bool, follows_author: bool) -> bool {
    let Some(vis) = visibility.and_then(|v| Visibility::parse(v).ok()) else { return false };
    may_see(vis, deleted, Viewer { is_author: is_owner, follows_author })
}

/// What a single-Jes load selects (?1..?3 viewer binds, ?4 id, ?5 kind).
const LOAD_SQL: &str = concat!(
    "SELECT p.id, ",
    crate::post_sql!(),
    " AS json, p.visibility, (p.author_id IS ?1) AS is_owner, ",
    "EXISTS (SELECT 1 FROM follows WHERE follower_id = ?1 AND followee_id = p.author_id) AS follows_author, ",
    "(p.deleted_at IS NOT NULL OR u.deleted_at IS NOT NULL) AS deleted, p.bounce_of, ",
    "(SELECT COUNT(*) FROM media WHERE post_id = p.id) AS media_count ",
    "FROM posts p JOIN users u ON u.id = p.author_id WHERE p.id = ?4 AND p.kind = ?5"
);

/// Loads the Jes (or JesClip) `id` as the caller may see it, rendered; 404
/// when it does not exist, is deleted, or the caller may not see it.
/// `render`: false leaves counts and viewer state out (for write responses).
pub async fn load_visible(c: &Ctx, id: &str, kind: PostKind, render: bool) -> ApiResult<PostRow> {
    let db = d1::db(&c.app.env)?;
    let mut args = if render { viewer_binds(c) } else { vec![c.viewer().into(), V::I(0), V::I(0)] };
    args.push(id.into());
    args.push(kind.as_str().into());
    let row: Option<d1::Row> = d1::stmt(&db, LOAD_SQL, &args)?.first(None).await?;
    let row = row.as_ref().map(PostRow::from);
    row.filter(PostRow::visible).ok_or(ApiError::NotFound)
}

/// Like `load_visible`, and the caller's account must own it (403 otherwise).
pub async fn load_own(c: &Ctx, id: &str, kind: PostKind) -> ApiResult<PostRow> {
    let row = load_visible(c, id, kind, false).await?;
    if !row.is_owner {
        return Err(ApiError::Forbidden(format!("this {} belongs to another account", kind.name())));
    }
    Ok(row)
}

/// The author snippet of the caller's own account (what `author_sql!` renders),
/// from the profile cached with the credential when the guard has it.
pub async fn author_of(c: &Ctx, user_id: &str) -> ApiResult<Value> {
    if let Some(p) = c.who.as_ref().filter(|p| p.user_id == user_id).and_then(|p| p.profile.as_ref()) {
        return Ok(serde_json::json!({ "id": user_id, "username": p.username, "displayName": p.display_name }));
    }
    let db = d1::db(&c.app.env)?;
    let j: Option<String> = d1::stmt(
        &db,
        concat!("SELECT ", crate::author_sql!(), " AS j FROM users u WHERE u.id = ?1 AND u.deleted_at IS NULL"),
        &[user_id.into()],
    )?
    .first(Some("j"))
    .await?;
    let j = j.ok_or(ApiError::NotFound)?;
    Ok(serde_json::from_str(&j)?)
}
