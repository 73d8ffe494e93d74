//! Example credentials for the document, made by the token module.

use super::*;

/// The example credentials the document shows, made by the token module
/// itself from fixed bytes (so the committed document does not drift): well
/// formed, checksum included, and obviously an example (`jes_live_0123…`).
/// No source file holds a credential literal that a secret scanner matches.
pub(super) fn example_credential(kind: TokenKind, first_byte: u8) -> String {
    let mut next = first_byte;
    token::generate(kind, |buf| {
        for b in buf.iter_mut() {
            *b = next % 62;
            next = next.wrapping_add(1);
        }
    })
}

/// Replaces operations.json's `{example api key}`, `{example masked key}` and
/// `{example session token}` placeholders, wherever they stand.
pub(super) fn fill_example_credentials(value: &mut Value) {
    let key = example_credential(TokenKind::ApiKey, 0);
    let session = example_credential(TokenKind::Session, 30);
    let fixed = |first: u8| {
        let mut next = first;
        move |buf: &mut [u8]| {
            for b in buf.iter_mut() {
                *b = next % 62;
                next = next.wrapping_add(1);
            }
        }
    };
    let access = token::generate_access("01KBZ7Q2M3N4P5R6S7T8V9W0XA", fixed(5));
    let refresh = example_credential(TokenKind::OAuthRefresh, 10);
    let code = example_credential(TokenKind::AuthCode, 15);
    let device = example_credential(TokenKind::DeviceCode, 20);
    let mut fill = |v: &mut Value| match v.as_str() {
        Some("{example api key}") => *v = json!(key),
        Some("{example masked key}") => *v = json!(token::mask(&key)),
        Some("{example session token}") => *v = json!(session),
        Some("{example access token}") => *v = json!(access),
        Some("{example refresh token}") => *v = json!(refresh),
        Some("{example device code}") => *v = json!(device),
        Some(s) if s.contains("{example authorization code}") => *v = json!(s.replace("{example authorization code}", &code)),
        _ => {}
    };
    fn walk(v: &mut Value, fill: &mut impl FnMut(&mut Value)) {
        match v {
            Value::Array(items) => items.iter_mut().for_each(|i| walk(i, fill)),
            Value::Object(map) => map.values_mut().for_each(|i| walk(i, fill)),
            _ => fill(v),
        }
    }
    walk(value, &mut fill);
}
