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

/// True when a D1 error is a UNIQUE constraint violation.
pub fn is_unique_violation(e: &ApiError) -> bool {
    matches!(e, ApiError::Internal(m) if m.contains("UNIQUE constraint failed"))
}
