//! Audit rows as D1 statements, to join the batch of the change they record
//! (`domain::audit` has the rules), and read back as named rows. Shared by
//! every Worker that changes credentials: a writer adds
//! `audit::stmt(&db, &Event::by_owner(..), now)?` to its batch.

use axum::http::HeaderMap;
use worker::{D1Database, D1PreparedStatement};

use crate::adapters::crypto::random_bytes;
use crate::adapters::d1::{self, V};
use crate::domain::audit::{insert_sql, Event, Origin, Row};
use crate::domain::ids;
use crate::error::ApiError;

/// Where a request came from (address and user agent), for audit rows and
/// the sessions list.
pub fn origin_of(headers: &HeaderMap) -> Origin {
    Origin::new(crate::http::client_ip(headers), headers.get(axum::http::header::USER_AGENT).and_then(|v| v.to_str().ok()))
}

/// The insert of `ev`'s row, written unconditionally with its batch.
pub fn stmt(db: &D1Database, ev: &Event, now: i64) -> Result<D1PreparedStatement, ApiError> {
    stmt_if(db, ev, now, None, &[])
}

/// The insert of `ev`'s row, written only when `condition` (SQL over ?12 and
/// on, bound from `args`) holds in the batch's transaction: a refused change
/// leaves no row.
pub fn stmt_if(
    db: &D1Database,
    ev: &Event,
    now: i64,
    condition: Option<&str>,
    args: &[V<'_>],
) -> Result<D1PreparedStatement, ApiError> {
    let id = format!("aud_{}", ids::ulid(now, random_bytes()));
    let r = ev.values(&id, now);
    let mut all: Vec<V<'_>> = vec![
        V::T(&r.id),
        V::T(&r.user_id),
        V::T(&r.action),
        V::T(&r.actor_type),
        r.actor_id.as_ref().into(),
        r.target_type.as_ref().into(),
        r.target_id.as_ref().into(),
        r.ip.as_ref().into(),
        r.user_agent.as_ref().into(),
        V::T(&r.data),
        V::I(now),
    ];
    all.extend(args.iter().map(|a| match a {
        V::T(s) => V::T(s),
        V::I(n) => V::I(*n),
        V::N => V::N,
    }));
    d1::stmt(db, &insert_sql(condition), &all)
}

/// The columns `row` reads.
pub const COLUMNS: &str = "id, user_id, action, actor_type, actor_id, target_type, target_id, ip, user_agent, data, at";

/// A stored row, read by column name.
pub fn row(r: &d1::Row) -> Row {
    Row {
        id: r.text("id").unwrap_or_default(),
        user_id: r.text("user_id").unwrap_or_default(),
        action: r.text("action").unwrap_or_default(),
        actor_type: r.text("actor_type").unwrap_or_default(),
        actor_id: r.text("actor_id"),
        target_type: r.text("target_type"),
        target_id: r.text("target_id"),
        ip: r.text("ip"),
        user_agent: r.text("user_agent"),
        data: r.text("data").unwrap_or_else(|| "{}".into()),
        at: r.num("at"),
    }
}
