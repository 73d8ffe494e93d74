//! Thin D1 helpers. Integers are bound as f64 (a JS BigInt from i64 is refused
//! by D1) and every id and time we store stays far below 2^53.

use wasm_bindgen::JsValue;
use worker::{D1Database, D1PreparedStatement, Env};

use crate::error::ApiError;

pub const BINDING: &str = "DB";

pub fn db(env: &Env) -> Result<D1Database, ApiError> {
    env.d1(BINDING).map_err(ApiError::from)
}

/// A bound value.
#[derive(Clone, Copy)]
pub enum V<'a> {
    T(&'a str),
    I(i64),
    N,
}

impl<'a> From<&'a str> for V<'a> {
    fn from(s: &'a str) -> Self {
        V::T(s)
    }
}
impl<'a> From<&'a String> for V<'a> {
    fn from(s: &'a String) -> Self {
        V::T(s)
    }
}
impl From<i64> for V<'_> {
    fn from(n: i64) -> Self {
        V::I(n)
    }
}
impl<'a, T: Into<V<'a>>> From<Option<T>> for V<'a> {
    fn from(o: Option<T>) -> Self {
        o.map(Into::into).unwrap_or(V::N)
    }
}

impl V<'_> {
    fn js(&self) -> JsValue {
        match self {
            V::T(s) => JsValue::from_str(s),
            V::I(n) => JsValue::from_f64(*n as f64),
            V::N => JsValue::NULL,
        }
    }
}

pub fn stmt(db: &D1Database, sql: &str, args: &[V<'_>]) -> Result<D1PreparedStatement, ApiError> {
    let vals: Vec<JsValue> = args.iter().map(V::js).collect();
    db.prepare(sql).bind(&vals).map_err(ApiError::from)
}

/// A condition on a conditional insert (`INSERT … SELECT … WHERE <cond>`):
/// its SQL, given the number of its first parameter (those before it are the
/// insert's own), and the values of its parameters in order.
pub type OnlyIf<'a> = (&'a dyn Fn(usize) -> String, &'a [V<'a>]);

/// `insert` (`INSERT INTO t (cols)`) of `values`, bound as `?1…?n`: written
/// always without `only_if`, else only when it holds in the batch's transaction.
pub fn insert_if(
    db: &D1Database,
    insert: &str,
    values: &[V<'_>],
    only_if: Option<OnlyIf<'_>>,
) -> Result<D1PreparedStatement, ApiError> {
    let placeholders: Vec<String> = (1..=values.len()).map(|i| format!("?{i}")).collect();
    let placeholders = placeholders.join(", ");
    match only_if {
        None => stmt(db, &format!("{insert} VALUES ({placeholders})"), values),
        Some((cond, args)) => {
            let all: Vec<V<'_>> = values.iter().chain(args).copied().collect();
            stmt(db, &format!("{insert} SELECT {placeholders} WHERE {}", cond(values.len() + 1)), &all)
        }
    }
}

/// True when a D1 error is a UNIQUE constraint violation.
pub fn is_unique_violation(e: &ApiError) -> bool {
    matches!(e, ApiError::Internal(m) if m.contains("UNIQUE constraint failed"))
}

/// A row as D1 returns it, a JS object read by column name. Named rows
/// (`PostRow`, `ListItem`, …) are built from it next to the SQL that selects
/// their columns, instead of each deriving serde's `Deserialize`: every
/// serde row type read through workers-rs compiles its own decoder (about
/// 1 KB of gzipped wasm each, measured), this one type shares one.
#[derive(serde::Deserialize)]
#[serde(transparent)]
pub struct Row(#[serde(with = "serde_wasm_bindgen::preserve")] js_sys::Object);

impl Row {
    fn get(&self, column: &str) -> JsValue {
        js_sys::Reflect::get(&self.0, &JsValue::from_str(column)).unwrap_or(JsValue::UNDEFINED)
    }

    /// A text column; `None` when NULL.
    pub fn text(&self, column: &str) -> Option<String> {
        self.get(column).as_string()
    }

    /// A number column; 0 when NULL.
    pub fn num(&self, column: &str) -> f64 {
        self.get(column).as_f64().unwrap_or(0.0)
    }

    /// A 0/1 column (SQLite has no booleans) as a `bool`.
    pub fn flag(&self, column: &str) -> bool {
        self.num(column) != 0.0
    }
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

/// One page of `select` (which ends in a `WHERE` on its owner, bound as ?1),
/// newest first, keyset-paginated by `id`: the rows and the next cursor.
pub async fn newest_first<T: serde::de::DeserializeOwned + HasId>(
    db: &D1Database,
    select: &str,
    owner: &str,
    page: &crate::domain::page::Page,
) -> Result<(Vec<T>, Option<String>), ApiError> {
    let sql = format!("{select} AND (?2 IS NULL OR id < ?2) ORDER BY id DESC LIMIT ?3");
    let rows: Vec<T> =
        stmt(db, &sql, &[V::T(owner), page.after.as_ref().into(), i64::from(page.limit + 1).into()])?.all().await?.results()?;
    Ok(crate::domain::page::finish(rows, page.limit, |r| r.id().to_string()))
}

/// `newest_first` for rows read by column name (`Row`), paged by their `id`.
pub async fn newest_first_rows(
    db: &D1Database,
    select: &str,
    owner: &str,
    page: &crate::domain::page::Page,
) -> Result<(Vec<Row>, Option<String>), ApiError> {
    let sql = format!("{select} AND (?2 IS NULL OR id < ?2) ORDER BY id DESC LIMIT ?3");
    let rows: Vec<Row> =
        stmt(db, &sql, &[V::T(owner), page.after.as_ref().into(), i64::from(page.limit + 1).into()])?.all().await?.results()?;
    Ok(crate::domain::page::finish(rows, page.limit, |r| r.text("id").unwrap_or_default()))
}

/// Rows that page by their `id`.
pub trait HasId {
    fn id(&self) -> &str;
}
