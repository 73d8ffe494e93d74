//! The example credentials `/openapi.json` shows. The committed document
//! (`public/openapi.json`) holds placeholders such as `{example api key}`, so
//! no file in the repository carries a whole credential that a secret scanner
//! would report; `GET /openapi.json` fills them as it serves the document,
//! with credentials the token module makes from fixed bytes: well formed,
//! checksum included, obviously examples (`jes_live_0123…`), the same on
//! every request (the asset's ETag still names what is served).

use crate::auth::token::{self, TokenKind};

/// Bytes `first`, `first + 1`, … (mod 62): the token module's "randomness"
/// for an example.
fn counting(first: u8) -> impl FnMut(&mut [u8]) {
    let mut next = first;
    move |buf: &mut [u8]| {
        for b in buf.iter_mut() {
            *b = next % 62;
            next = next.wrapping_add(1);
        }
    }
}

/// An example credential of `kind`, made from bytes counting from `first_byte`.
pub fn example_credential(kind: TokenKind, first_byte: u8) -> String {
    token::generate(kind, counting(first_byte))
}

/// Each placeholder with what it stands for.
fn credentials() -> [(&'static str, String); 7] {
    let key = example_credential(TokenKind::ApiKey, 0);
    [
        ("{example masked key}", token::mask(&key)),
        ("{example api key}", key),
        ("{example session token}", example_credential(TokenKind::Session, 30)),
        ("{example access token}", token::generate_access("01KBZ7Q2M3N4P5R6S7T8V9W0XA", counting(5))),
        ("{example refresh token}", example_credential(TokenKind::OAuthRefresh, 10)),
        ("{example authorization code}", example_credential(TokenKind::AuthCode, 15)),
        ("{example device code}", example_credential(TokenKind::DeviceCode, 20)),
    ]
}

/// `doc` with every credential placeholder replaced, in one pass.
pub fn fill(doc: &str) -> String {
    const MARK: &str = "{example ";
    let pairs = credentials();
    let mut out = String::with_capacity(doc.len() + 1024);
    let mut rest = doc;
    while let Some(at) = rest.find(MARK) {
        out.push_str(&rest[..at]);
        let tail = &rest[at..];
        let (taken, with) = match pairs.iter().find(|(p, _)| tail.starts_with(p)) {
            Some((p, v)) => (p.len(), v.as_str()),
            None => (MARK.len(), MARK),
        };
        out.push_str(with);
        rest = &tail[taken..];
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_become_well_formed_credentials_and_other_text_stays() {
        let doc = r#"{"key":"{example api key}","masked":"{example masked key}","url":"https://a.example/cb?code={example authorization code}&state=x","note":"{example nothing}"}"#;
        let filled = fill(doc);
        let v: serde_json::Value = serde_json::from_str(&filled).unwrap();
        let key = v["key"].as_str().unwrap();
        assert!(token::well_formed(TokenKind::ApiKey, key), "{key}");
        assert_eq!(v["masked"], token::mask(key));
        let code = v["url"].as_str().unwrap().split("code=").nth(1).unwrap().split('&').next().unwrap();
        assert!(token::well_formed(TokenKind::AuthCode, code), "{code}");
        assert_eq!(v["note"], "{example nothing}", "an unknown placeholder is left as it is");
        assert_eq!(fill(doc), filled, "the same on every request");
        assert_eq!(fill("no placeholder"), "no placeholder");
    }
}
