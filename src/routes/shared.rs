//! Content plumbing shared by the routes: the SQL that renders a Jes as
//! JSON, the visibility rule as SQL, and loading one Jes the caller may see.
//! Content renders in SQL (`json_object`) for the wasm's sake: no row or
//! response structs to (de)serialize per route (see pipeline/ctx.rs).

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::Value;

use crate::adapters::d1::{self, V};
use crate::domain::content::{may_see, Viewer, Visibility};
use crate::domain::page::{encode_cursor, finish, Page};
use crate::error::{ApiError, ApiResult};
use crate::pipeline::ctx::Ctx;

/// A string field of a JSON object body: absent or null is `None`.
pub fn str_field<'a>(body: &'a Value, name: &str) -> ApiResult<Option<&'a str>> {
    match body.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(_) => Err(ApiError::invalid(format!("{name}: must be a string"))),
    }
}

/// A response whose body is JSON text rendered by SQL.
pub fn raw_json(status: StatusCode, body: String) -> Response {
    let mut res = (status, body).into_response();
    res.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    res
}

/// One row of a content query: a sort key and the rendered JSON, plus what
/// single-item loads need to decide visibility.
#[derive(Deserialize, Default)]
pub struct Row {
    /// Sort key / id.
    pub k: String,
    /// Rendered JSON (or another text column).
    #[serde(default)]
    pub j: String,
    /// Visibility.
    #[serde(default)]
    pub v: Option<String>,
    /// 1 when the caller is the author / owner.
    #[serde(default)]
    pub o: f64,
    /// 1 when the caller follows the author.
    #[serde(default)]
    pub f: f64,
    /// 1 when deleted (the Jes or its author's account).
    #[serde(default)]
    pub d: f64,
    /// A second text column (bounce_of, r2 key, ...).
    #[serde(default)]
    pub x: Option<String>,
    /// A number (media count, size, ...).
    #[serde(default)]
    pub n: f64,
}

impl Row {
    /// The visibility decision for this row (`domain::content::may_see`).
    pub fn visible(&self) -> bool {
        let Some(vis) = self.v.as_deref().and_then(|v| Visibility::parse(v).ok()) else { return false };
        may_see(vis, self.d != 0.0, Viewer { is_author: self.o != 0.0, follows_author: self.f != 0.0 })
    }
}

/// `{"items":[…],"nextCursor":…}` from rows fetched with `limit + 1`.
pub fn list(rows: Vec<Row>, limit: u32) -> Response {
    let (rows, next) = finish(rows, limit, |r| r.k.clone());
    page_response(&rows, next)
}

fn page_response(rows: &[Row], next: Option<String>) -> Response {
    let mut out = String::with_capacity(rows.iter().map(|r| r.j.len() + 1).sum::<usize>() + 40);
    out.push_str("{\"items\":[");
    for (i, r) in rows.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str(&r.j);
    }
    out.push_str("],\"nextCursor\":");
    out.push_str(&serde_json::to_string(&next).unwrap_or_else(|_| "null".into()));
    out.push('}');
    raw_json(StatusCode::OK, out)
}

/// Runs a list query fetching `page.limit + 1` rows and answers the page.
pub async fn fetch_list(c: &Ctx, sql: &str, page: &Page, args: &[V<'_>]) -> ApiResult<Response> {
    let db = d1::db(&c.app.env)?;
    let rows: Vec<Row> = d1::stmt(&db, sql, args)?.all().await?.results()?;
    Ok(list(rows, page.limit))
}

/// The binds of a post list: `?1..?3` the viewer (`viewer_binds`), `?4` the
/// cursor key, `?5` the limit + 1, then `extra` from `?6`.
pub fn post_list_binds<'a>(c: &'a Ctx, page: &'a Page, extra: Vec<V<'a>>) -> Vec<V<'a>> {
    let mut args = viewer_binds(c);
    args.push(page.after.as_ref().into());
    args.push(i64::from(page.limit + 1).into());
    args.extend(extra);
    args
}

/// `?1` the caller's account (or NULL), `?2` whether counts show, `?3`
/// whether the caller's own like/save state shows (sessions).
pub fn viewer_binds(c: &Ctx) -> Vec<V<'_>> {
    vec![c.viewer().into(), i64::from(c.sees_counts()).into(), i64::from(c.is_session()).into()]
}

/// An RFC 3339 timestamp with milliseconds from a unix-ms column
/// (the same text as `domain::content::ts`).
#[macro_export]
macro_rules! ts_sql {
    ($col:literal) => {
        concat!("strftime('%Y-%m-%dT%H:%M:%fZ', ", $col, " / 1000.0, 'unixepoch')")
    };
}

/// The author's public snippet (`u` = users).
#[macro_export]
macro_rules! author_sql {
    () => {
        "json_object('id', u.id, 'username', u.username, 'displayName', u.display_name)"
    };
}

/// One media item (`m` = media).
#[macro_export]
macro_rules! media_sql {
    () => {
        "json_object('id', m.id, 'url', '/api/media/' || m.id, 'contentType', m.content_type, 'size', m.size)"
    };
}

/// A Jes or JesClip as the API returns it (`p` = posts, `u` = its author).
/// Binds: ?1 viewer, ?2 counts shown, ?3 viewer state shown. Keep in step
/// with `routes::posts::render_new` (tests compare the two).
#[macro_export]
macro_rules! post_sql {
    () => {
        concat!(
            "json_patch(json_patch(json_patch(CASE p.kind WHEN 'jes' THEN json_object(",
            "'id', p.id, 'type', 'jes', 'content', p.content, 'visibility', p.visibility, ",
            "'author', ", $crate::author_sql!(), ", ",
            "'media', json((SELECT json_group_array(", $crate::media_sql!(), ") ",
            "FROM (SELECT * FROM media WHERE post_id = p.id ORDER BY position) m)), ",
            "'hashtags', json((SELECT json_group_array(tag) FROM (SELECT tag FROM hashtags WHERE post_id = p.id ORDER BY rowid))), ",
            "'hub', p.hub, 'bounceOf', p.bounce_of, ",
            "'createdAt', ", $crate::ts_sql!("p.created_at"), ", 'updatedAt', ", $crate::ts_sql!("p.updated_at"), ") ",
            "ELSE json_object(",
            "'id', p.id, 'type', 'jesclip', 'caption', p.content, 'visibility', p.visibility, ",
            "'author', ", $crate::author_sql!(), ", ",
            "'video', json((SELECT ", $crate::media_sql!(), " FROM media m WHERE m.post_id = p.id LIMIT 1)), ",
            "'hashtags', json((SELECT json_group_array(tag) FROM (SELECT tag FROM hashtags WHERE post_id = p.id ORDER BY rowid))), ",
            "'createdAt', ", $crate::ts_sql!("p.created_at"), ", 'updatedAt', ", $crate::ts_sql!("p.updated_at"), ") END, ",
            "CASE WHEN p.via_label IS NULL THEN '{}' ELSE json_object('via', json_object('label', p.via_label)) END), ",
            "CASE WHEN ?2 THEN json_object('counts', json_object('likes', p.like_count, 'comments', p.comment_count, ",
            "'bounces', p.bounce_count, 'saves', p.save_count)) ELSE '{}' END), ",
            "CASE WHEN ?3 THEN json_object('viewer', json_object(",
            "'liked', json(CASE WHEN EXISTS (SELECT 1 FROM likes WHERE post_id = p.id AND user_id = ?1) THEN 'true' ELSE 'false' END), ",
            "'saved', json(CASE WHEN EXISTS (SELECT 1 FROM saves WHERE post_id = p.id AND user_id = ?1) THEN 'true' ELSE 'false' END))) ",
            "ELSE '{}' END)"
        )
    };
}

/// The visibility rule of `domain::content::may_see` for list queries
/// (`p` = posts, `u` = author, ?1 = the caller's account or NULL).
#[macro_export]
macro_rules! visible_sql {
    () => {
        concat!(
            "p.deleted_at IS NULL AND u.deleted_at IS NULL AND (p.visibility = 'PUBLIC' OR p.author_id = ?1 ",
            "OR (p.visibility = 'FOLLOWERS' AND EXISTS (SELECT 1 FROM follows fv WHERE fv.follower_id = ?1 AND fv.followee_id = p.author_id)))"
        )
    };
}

/// `post_sql!` and `visible_sql!` as values, for queries built at run time
/// (one copy of the text in the binary however many lists use it).
pub const POST_JSON: &str = post_sql!();
pub const VISIBLE: &str = visible_sql!();

/// A newest-first list of Jes/JesClips the caller may see, narrowed by
/// `filter` (SQL over `p` = posts, `u` = author; its own binds from `?6`).
pub async fn post_feed(c: &Ctx, filter: &str, extra: Vec<V<'_>>) -> ApiResult<Response> {
    let page = c.page()?;
    let sql = format!(
        "SELECT p.id AS k, {POST_JSON} AS j FROM posts p JOIN users u ON u.id = p.author_id \
         WHERE {VISIBLE} AND ({filter}) AND (?4 IS NULL OR p.id < ?4) ORDER BY p.id DESC LIMIT ?5"
    );
    fetch_list(c, &sql, &page, &post_list_binds(c, &page, extra)).await
}

/// Offset pagination for ranked lists (trending, hashtags): the cursor
/// encodes `o<offset>`; at most `MAX_OFFSET` deep.
pub const MAX_OFFSET: u32 = 1000;

pub fn offset(page: &Page) -> ApiResult<u32> {
    match page.after.as_deref() {
        None => Ok(0),
        Some(k) => k
            .strip_prefix('o')
            .and_then(|n| n.parse::<u32>().ok())
            .filter(|n| *n <= MAX_OFFSET)
            .ok_or_else(|| ApiError::invalid("cursor: invalid cursor")),
    }
}

/// `{"items","nextCursor"}` for an offset-paginated list fetched with `limit + 1`.
pub fn list_at(mut rows: Vec<Row>, page: &Page, at: u32) -> Response {
    let more = rows.len() > page.limit as usize && at + page.limit < MAX_OFFSET;
    rows.truncate(page.limit as usize);
    page_response(&rows, more.then(|| encode_cursor(&format!("o{}", at + page.limit))))
}

/// What a single-Jes load selects (?1..?3 viewer binds, ?4 id, ?5 kind).
const LOAD_SQL: &str = concat!(
    "SELECT p.id AS k, ",
    post_sql!(),
    " AS j, p.visibility AS v, (p.author_id IS ?1) AS o, ",
    "EXISTS (SELECT 1 FROM follows WHERE follower_id = ?1 AND followee_id = p.author_id) AS f, ",
    "(p.deleted_at IS NOT NULL OR u.deleted_at IS NOT NULL) AS d, p.bounce_of AS x, ",
    "(SELECT COUNT(*) FROM media WHERE post_id = p.id) AS n ",
    "FROM posts p JOIN users u ON u.id = p.author_id WHERE p.id = ?4 AND p.kind = ?5"
);

/// Loads the Jes (or JesClip) `id` as the caller may see it, rendered; 404
/// when it does not exist, is deleted, or the caller may not see it.
/// `render`: false leaves counts and viewer state out (for write responses).
pub async fn load_visible(c: &Ctx, id: &str, kind: &str, render: bool) -> ApiResult<Row> {
    let db = d1::db(&c.app.env)?;
    let mut args = if render { viewer_binds(c) } else { vec![c.viewer().into(), V::I(0), V::I(0)] };
    args.push(id.into());
    args.push(kind.into());
    let row: Option<Row> = d1::stmt(&db, LOAD_SQL, &args)?.first(None).await?;
    row.filter(Row::visible).ok_or(ApiError::NotFound)
}

/// Like `load_visible`, and the caller's account must own it (403 otherwise).
pub async fn load_own(c: &Ctx, id: &str, kind: &str) -> ApiResult<Row> {
    let row = load_visible(c, id, kind, false).await?;
    if row.o == 0.0 {
        return Err(ApiError::Forbidden(format!(
            "this {} belongs to another account",
            if kind == "jes" { "Jes" } else { "JesClip" }
        )));
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
        concat!("SELECT ", author_sql!(), " AS j FROM users u WHERE u.id = ?1 AND u.deleted_at IS NULL"),
        &[user_id.into()],
    )?
    .first(Some("j"))
    .await?;
    let j = j.ok_or(ApiError::NotFound)?;
    Ok(serde_json::from_str(&j)?)
}

/// `SELECT json('') WHERE NOT (cond)`: a batch statement that aborts the whole
/// batch (malformed JSON is a runtime error) unless `cond` holds. D1 batches
/// are transactions, so a guard makes a multi-statement write all-or-nothing
/// on a condition that only the database can check race-free.
pub fn guard_sql(cond: &str) -> String {
    format!("SELECT json('') WHERE NOT ({cond})")
}

/// True when a batch failed on a `guard_sql` statement.
pub fn is_guard_failure(e: &ApiError) -> bool {
    matches!(e, ApiError::Internal(m) if m.contains("malformed JSON"))
}
