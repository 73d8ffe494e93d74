//! The credential a request presents: `Authorization: Bearer …`, or for the
//! web UI the session cookie with its CSRF double-submit header. Pure: a
//! malformed token is refused here and never reaches storage.

use axum::http::{header, HeaderMap, Method};

use super::cookies::{self, CSRF_COOKIE, CSRF_HEADER, SESSION_COOKIE};
use super::decide::CredentialKind;
use super::password::constant_time_eq;
use super::token::{self, TokenKind};
use crate::error::ApiError;

/// A presented credential before any lookup.
#[derive(Debug, PartialEq, Eq)]
pub struct Presented {
    pub kind: CredentialKind,
    pub token: String,
}

/// Reads the credential from `Authorization: Bearer …` or, for the web UI, the
/// session cookie (unsafe methods then need the CSRF double-submit header).
/// Everything here is arithmetic: a malformed token never reaches storage.
pub fn presented(method: &Method, headers: &HeaderMap) -> Result<Presented, ApiError> {
    let mut auths = headers.get_all(header::AUTHORIZATION).iter();
    let token = match (auths.next(), auths.next()) {
        (Some(_), Some(_)) => return Err(ApiError::invalid("Authorization: send exactly one header")),
        (Some(v), None) => {
            let v = v.to_str().map_err(|_| ApiError::InvalidApiKey)?;
            let (scheme, rest) = v.split_once(' ').ok_or(ApiError::Unauthenticated)?;
            if !scheme.eq_ignore_ascii_case("bearer") {
                return Err(ApiError::Unauthenticated);
            }
            rest.trim_matches(' ').to_string()
        }
        (None, None) => {
            let Some(tok) = cookies::read(headers, SESSION_COOKIE) else { return Err(ApiError::Unauthenticated) };
            let safe = matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS);
            if !safe {
                let sent = headers.get(CSRF_HEADER).and_then(|v| v.to_str().ok());
                let expected = cookies::read(headers, CSRF_COOKIE);
                let ok = matches!((sent, expected), (Some(a), Some(b)) if !b.is_empty()
                    && constant_time_eq(a.as_bytes(), b.as_bytes()));
                if !ok {
                    return Err(ApiError::Forbidden("CSRF token missing or invalid".into()));
                }
            }
            if !token::well_formed(TokenKind::Session, tok) {
                return Err(ApiError::InvalidSession);
            }
            return Ok(Presented { kind: CredentialKind::Session, token: tok.to_string() });
        }
        (None, Some(_)) => unreachable!(),
    };
    match TokenKind::of(&token) {
        Some(TokenKind::Session) if token::well_formed(TokenKind::Session, &token) => {
            Ok(Presented { kind: CredentialKind::Session, token })
        }
        Some(TokenKind::Session) => Err(ApiError::InvalidSession),
        Some(TokenKind::ApiKey) if token::well_formed(TokenKind::ApiKey, &token) => {
            Ok(Presented { kind: CredentialKind::Key, token })
        }
        Some(TokenKind::OAuthAccess) if token::well_formed(TokenKind::OAuthAccess, &token) => {
            Ok(Presented { kind: CredentialKind::OAuth, token })
        }
        // A refresh token, a code or a device code is never a bearer credential.
        Some(TokenKind::OAuthAccess | TokenKind::OAuthRefresh | TokenKind::AuthCode | TokenKind::DeviceCode) => {
            Err(ApiError::InvalidToken)
        }
        _ => Err(ApiError::InvalidApiKey),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::{HeaderName, HeaderValue};

    fn key() -> String {
        token::generate(TokenKind::ApiKey, |b: &mut [u8]| b.fill(7))
    }

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(HeaderName::from_bytes(k.as_bytes()).unwrap(), HeaderValue::from_str(v).unwrap());
        }
        h
    }

    #[test]
    fn bearer_scheme_is_case_insensitive_and_padding_is_trimmed() {
        let k = key();
        for v in [format!("Bearer {k}"), format!("bearer {k}"), format!("BEARER   {k} ")] {
            let p = presented(&Method::GET, &headers(&[("authorization", &v)])).unwrap();
            assert_eq!(p.kind, CredentialKind::Key);
        }
    }

    #[test]
    fn missing_foreign_and_multiple_credentials_are_refused() {
        assert_eq!(presented(&Method::GET, &HeaderMap::new()), Err(ApiError::Unauthenticated));
        let k = key();
        let basic = headers(&[("authorization", "Basic dXNlcjpwYXNz")]);
        assert_eq!(presented(&Method::GET, &basic), Err(ApiError::Unauthenticated));
        let two = headers(&[("authorization", &format!("Bearer {k}")), ("authorization", &format!("Bearer {k}"))]);
        assert_eq!(presented(&Method::GET, &two).unwrap_err().code(), "invalid_request");
        let two_tokens = headers(&[("authorization", &format!("Bearer {k} {k}"))]);
        assert_eq!(presented(&Method::GET, &two_tokens), Err(ApiError::InvalidApiKey));
        let junk = headers(&[("authorization", "Bearer sk_live_abc")]);
        assert_eq!(presented(&Method::GET, &junk), Err(ApiError::InvalidApiKey));
        let mut typo = k.clone();
        typo.replace_range(12..13, if &k[12..13] == "A" { "B" } else { "A" });
        let bad_sum = headers(&[("authorization", &format!("Bearer {typo}"))]);
        assert_eq!(presented(&Method::GET, &bad_sum), Err(ApiError::InvalidApiKey));
    }

    #[test]
    fn oauth_access_tokens_are_a_third_kind_and_other_oauth_secrets_no_bearer() {
        let t = token::generate_access("01KBZ7Q2M3N4P5R6S7T8V9W0XA", |b: &mut [u8]| b.fill(5));
        let p = presented(&Method::GET, &headers(&[("authorization", &format!("Bearer {t}"))])).unwrap();
        assert_eq!(p.kind, CredentialKind::OAuth);
        let mut typo = t.clone();
        typo.replace_range(40..41, if &t[40..41] == "A" { "B" } else { "A" });
        for bad in [typo, token::generate(TokenKind::OAuthRefresh, |b: &mut [u8]| b.fill(5))] {
            let h = headers(&[("authorization", &format!("Bearer {bad}"))]);
            assert_eq!(presented(&Method::GET, &h), Err(ApiError::InvalidToken));
        }
    }

    #[test]
    fn cookie_sessions_need_the_csrf_header_on_unsafe_methods() {
        let s = token::generate(TokenKind::Session, |b: &mut [u8]| b.fill(9));
        let c = format!("{SESSION_COOKIE}={s}; {CSRF_COOKIE}=abc123");
        assert!(presented(&Method::GET, &headers(&[("cookie", &c)])).is_ok());
        assert_eq!(presented(&Method::POST, &headers(&[("cookie", &c)])).unwrap_err().code(), "forbidden");
        assert!(presented(&Method::POST, &headers(&[("cookie", &c), (CSRF_HEADER, "abc123")])).is_ok());
        assert!(presented(&Method::POST, &headers(&[("cookie", &c), (CSRF_HEADER, "abc124")])).is_err());
    }

    #[test]
    fn the_unprefixed_cookie_names_are_no_session() {
        let s = token::generate(TokenKind::Session, |b: &mut [u8]| b.fill(9));
        let c = format!("jes_session={s}; jes_csrf=abc123");
        assert_eq!(presented(&Method::GET, &headers(&[("cookie", &c)])), Err(ApiError::Unauthenticated));
    }
}
