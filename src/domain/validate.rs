//! Input rules for accounts and keys: parse, don't validate. Each error names
//! the field it is about, as the contract asks of every 400.

/// A username: 3 to 30 of `a-z 0-9 _`, stored lowercase. Keeping it ASCII
/// rules out Unicode confusables (`pаypal` with a Cyrillic а) by construction.
pub fn username(raw: &str) -> Result<String, String> {
    let u = raw.trim().to_ascii_lowercase();
    if !(3..=30).contains(&u.len()) {
        return Err("username: must be 3 to 30 characters".into());
    }
    if !u.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_') {
        return Err("username: only letters a-z, digits and _ are allowed".into());
    }
    Ok(u)
}

/// An email address, lowercased for uniqueness. Deliberately simple: one `@`,
/// a dotted domain, printable ASCII, at most 254 characters.
pub fn email(raw: &str) -> Result<String, String> {
    let e = raw.trim().to_ascii_lowercase();
    let bad = || Err("email: not a valid email address".to_string());
    if e.len() > 254 || !e.bytes().all(|b| b.is_ascii_graphic()) {
        return bad();
    }
    let Some((local, domain)) = e.split_once('@') else { return bad() };
    if local.is_empty()
        || local.len() > 64
        || domain.contains('@')
        || !domain.contains('.')
        || domain.starts_with('.')
        || domain.ends_with('.')
        || domain.contains("..")
    {
        return bad();
    }
    Ok(e)
}

/// Passwords: 10 to 200 characters (bytes are hashed as given).
pub fn password(raw: &str) -> Result<&str, String> {
    let n = raw.chars().count();
    if n < 10 {
        return Err("password: must be at least 10 characters".into());
    }
    if raw.len() > 200 {
        return Err("password: must be at most 200 bytes".into());
    }
    Ok(raw)
}

/// Free text shown to people (display names, key labels): trimmed, 1 to `max`
/// characters, no control characters (so no header or log injection).
pub fn text(field: &str, raw: &str, max: usize) -> Result<String, String> {
    let t = raw.trim();
    if t.is_empty() {
        return Err(format!("{field}: must not be empty"));
    }
    if t.chars().count() > max {
        return Err(format!("{field}: must be at most {max} characters"));
    }
    if t.chars().any(|c| c.is_control() || matches!(c, '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')) {
        return Err(format!("{field}: must not contain control characters"));
    }
    Ok(t.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usernames_are_lowercased_ascii() {
        assert_eq!(username("  Poscos_1 ").unwrap(), "poscos_1");
        assert!(username("ab").is_err());
        assert!(username("pаypal").is_err(), "Cyrillic а is refused");
        assert!(username("has space").is_err());
        assert!(username(&"a".repeat(31)).is_err());
    }

    #[test]
    fn emails_are_lowercased_and_checked() {
        assert_eq!(email(" Ada@Example.COM ").unwrap(), "ada@example.com");
        for bad in ["ada", "ada@", "@example.com", "ada@example", "a b@example.com", "a@b@c.com", "a@.com", "a@x..com"] {
            assert!(email(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn text_refuses_control_and_bidi_characters() {
        assert_eq!(text("label", " deploy bot ", 10).unwrap(), "deploy bot");
        assert!(text("label", "a\r\nSet-Cookie: x", 100).unwrap_err().starts_with("label:"));
        assert!(text("label", "evil\u{202e}txt", 100).is_err());
        assert!(text("label", "   ", 100).is_err());
        assert!(text("label", &"é".repeat(11), 10).is_err());
    }

    #[test]
    fn passwords_have_bounds() {
        assert!(password("short").is_err());
        assert!(password("long enough pw").is_ok());
        assert!(password(&"x".repeat(201)).is_err());
    }
}
