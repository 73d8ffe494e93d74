//! Cursor pagination: `?limit=` (default 20, max 100) and an opaque `?cursor=`
//! that encodes the last id seen. A cursor that does not decode is a 400, and
//! every list query stays scoped to the caller, so a forged cursor reveals nothing.

use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use base64::Engine;
use serde::Deserialize;

pub const DEFAULT_LIMIT: u32 = 20;
pub const MAX_LIMIT: u32 = 100;

#[derive(Debug, Default, Deserialize)]
pub struct PageQuery {
    pub limit: Option<String>,
    pub cursor: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Page {
    pub limit: u32,
    /// Return items strictly after this sort key.
    pub after: Option<String>,
}

impl PageQuery {
    pub fn parse(&self) -> Result<Page, String> {
        let limit = match self.limit.as_deref() {
            None | Some("") => DEFAULT_LIMIT,
            Some(s) => match s.parse::<u32>() {
                Ok(n) if (1..=MAX_LIMIT).contains(&n) => n,
                _ => return Err(format!("limit: must be an integer from 1 to {MAX_LIMIT}")),
            },
        };
        let after = match self.cursor.as_deref() {
            None | Some("") => None,
            Some(c) => Some(decode_cursor(c).ok_or_else(|| "cursor: invalid cursor".to_string())?),
        };
        Ok(Page { limit, after })
    }
}

pub fn encode_cursor(key: &str) -> String {
    B64.encode(format!("v1:{key}"))
}

fn decode_cursor(c: &str) -> Option<String> {
    let raw = B64.decode(c).ok()?;
    let s = String::from_utf8(raw).ok()?;
    let key = s.strip_prefix("v1:")?;
    (!key.is_empty() && key.len() <= 64 && key.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-'))
        .then(|| key.to_string())
}

/// Cuts a page fetched with `limit + 1` rows into items and the next cursor.
pub fn finish<T>(mut rows: Vec<T>, limit: u32, key: impl Fn(&T) -> String) -> (Vec<T>, Option<String>) {
    if rows.len() > limit as usize {
        rows.truncate(limit as usize);
        let next = rows.last().map(|r| encode_cursor(&key(r)));
        (rows, next)
    } else {
        (rows, None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q(limit: Option<&str>, cursor: Option<&str>) -> PageQuery {
        PageQuery { limit: limit.map(String::from), cursor: cursor.map(String::from) }
    }

    #[test]
    fn limits_default_and_are_bounded() {
        assert_eq!(q(None, None).parse().unwrap().limit, 20);
        assert_eq!(q(Some("100"), None).parse().unwrap().limit, 100);
        for bad in ["0", "101", "-1", "ten"] {
            assert!(q(Some(bad), None).parse().unwrap_err().starts_with("limit:"));
        }
    }

    #[test]
    fn cursors_round_trip_and_tampering_is_refused() {
        let c = encode_cursor("01HW0000000000000000000000");
        assert_eq!(q(None, Some(&c)).parse().unwrap().after.as_deref(), Some("01HW0000000000000000000000"));
        assert!(q(None, Some("not base64!")).parse().is_err());
        assert!(q(None, Some(&B64.encode("v2:x"))).parse().is_err());
        assert!(q(None, Some(&B64.encode("v1:' OR 1=1 --"))).parse().is_err());
    }

    #[test]
    fn finish_emits_a_cursor_only_when_more_rows_exist() {
        let (items, next) = finish(vec!["a", "b", "c"], 2, |s| s.to_string());
        assert_eq!(items, vec!["a", "b"]);
        assert_eq!(next, Some(encode_cursor("b")));
        let (items, next) = finish(vec!["a"], 2, |s| s.to_string());
        assert_eq!((items.len(), next), (1, None));
    }
}
