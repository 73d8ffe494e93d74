//! List pages of content: rows rendered by SQL, keyset or offset
//! paginated, answered as `{"items":[…],"nextCursor":…}`.

use axum::http::StatusCode;
use axum::response::Response;

use super::sql::{POST_JSON, VISIBLE};
use crate::adapters::d1::{self, V};
use crate::domain::page::{encode_cursor, finish, Page};
use crate::error::{ApiError, ApiResult};
use crate::http::raw_json;
use crate::pipeline::ctx::Ctx;

/// One item of a list query: `k` its sort key, `j` its JSON as rendered by
/// SQL. Every list query selects these two (short aliases, one convention).
pub struct ListItem {
    pub key: String,
    pub json: String,
}

impl From<&d1::Row> for ListItem {
    fn from(r: &d1::Row) -> Self {
        ListItem { key: r.text("k").unwrap_or_default(), json: r.text("j").unwrap_or_default() }
    }
}

/// The items of a list query's rows.
pub fn items(rows: Vec<d1::Row>) -> Vec<ListItem> {
    rows.iter().map(ListItem::from).collect()
}

/// `{"items":[…],"nextCursor":…}` from rows fetched with `limit + 1`.
pub fn list(rows: Vec<ListItem>, limit: u32) -> Response {
    let (rows, next) = finish(rows, limit, |r| r.key.clone());
    page_response(&rows, next)
}

fn page_response(rows: &[ListItem], next: Option<String>) -> Response {
    let mut out = String::with_capacity(rows.iter().map(|r| r.json.len() + 1).sum::<usize>() + 40);
    out.push_str("{\"items\":[");
    for (i, r) in rows.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str(&r.json);
    }
    out.push_str("],\"nextCursor\":");
    out.push_str(&serde_json::to_string(&next).unwrap_or_else(|_| "null".into()));
    out.push('}');
    raw_json(StatusCode::OK, out)
}

/// Runs a list query fetching `page.limit + 1` rows and answers the page.
pub async fn fetch_list(c: &Ctx, sql: &str, page: &Page, args: &[V<'_>]) -> ApiResult<Response> {
    let db = d1::db(&c.app.env)?;
    let rows: Vec<d1::Row> = d1::stmt(&db, sql, args)?.all().await?.results()?;
    Ok(list(items(rows), page.limit))
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
pub fn list_at(mut rows: Vec<ListItem>, page: &Page, at: u32) -> Response {
    let more = rows.len() > page.limit as usize && at + page.limit < MAX_OFFSET;
    rows.truncate(page.limit as usize);
    page_response(&rows, more.then(|| encode_cursor(&format!("o{}", at + page.limit))))
}
