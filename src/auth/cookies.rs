//! The web UI's session transport: on signup and login the session token also
//! goes into an HttpOnly cookie, with a CSRF double-submit cookie beside it that
//! the page's script reads and echoes in `X-CSRF-Token` on unsafe requests.
//! Their names, writing them, and reading one back (`presented` checks them).
//! Pure: the CSRF value comes in as bytes.

use axum::http::{header, HeaderMap, HeaderValue};

/// The `__Host-` prefix makes a browser keep a cookie only when it is Secure,
/// has Path=/ and no Domain: a sibling subdomain can then neither plant nor
/// shadow the session (cookie tossing), which the bare names allowed.
pub const SESSION_COOKIE: &str = "__Host-jes_session";
pub const CSRF_COOKIE: &str = "__Host-jes_csrf";
/// The first release's names: never read (accepting them would reopen the hole
/// the prefix closes), only expired on signup, login and logout.
const LEGACY_COOKIES: [&str; 2] = ["jes_session", "jes_csrf"];
pub const CSRF_HEADER: &str = "x-csrf-token";

/// The value of cookie `name` in the request's `Cookie` headers.
pub fn read<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

/// A client that sends `X-Session-Transport: cookie` (the web UI) gets the
/// session only as a cookie: the token is left out of the JSON body, so the
/// page's script never holds it.
pub const TRANSPORT_HEADER: &str = "x-session-transport";

pub fn wants_cookie_only(headers: &HeaderMap) -> bool {
    headers.get(TRANSPORT_HEADER).and_then(|v| v.to_str().ok()).is_some_and(|v| v.trim().eq_ignore_ascii_case("cookie"))
}

/// `__Host-jes_session`: invisible to script, sent only to this site's own pages.
pub fn session_cookie(token: &str, max_age_secs: i64) -> String {
    format!("{SESSION_COOKIE}={token}; HttpOnly; Secure; SameSite=Strict; Path=/; Max-Age={max_age_secs}")
}

/// `__Host-jes_csrf`: readable by the page's script (that is the point), same lifetime.
pub fn csrf_cookie(value: &str, max_age_secs: i64) -> String {
    format!("{CSRF_COOKIE}={value}; Secure; SameSite=Strict; Path=/; Max-Age={max_age_secs}")
}

/// 32 random bytes as hex: the double-submit value.
pub fn csrf_value(random: [u8; 32]) -> String {
    hex::encode(random)
}

/// Adds both cookies to a signup or login response, and expires the legacy names.
pub fn set(headers: &mut HeaderMap, token: &str, csrf: &str, max_age_secs: i64) {
    append(headers, [session_cookie(token, max_age_secs), csrf_cookie(csrf, max_age_secs)]);
}

/// Expires both cookies (logout), and the legacy names.
pub fn clear(headers: &mut HeaderMap) {
    append(headers, [session_cookie("", 0), csrf_cookie("", 0)]);
}

fn append(headers: &mut HeaderMap, cookies: [String; 2]) {
    let legacy = LEGACY_COOKIES.map(|name| format!("{name}=; Secure; SameSite=Strict; Path=/; Max-Age=0"));
    for c in cookies.iter().chain(&legacy) {
        if let Ok(v) = HeaderValue::from_str(c) {
            headers.append(header::SET_COOKIE, v);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_session_cookie_is_http_only_secure_and_strict() {
        let c = session_cookie("jes_sess_abc", 1209600);
        assert!(c.starts_with("__Host-jes_session=jes_sess_abc;"));
        assert!(!c.to_ascii_lowercase().contains("domain"), "a __Host- cookie has no Domain");
        for attr in ["HttpOnly", "Secure", "SameSite=Strict", "Path=/", "Max-Age=1209600"] {
            assert!(c.split("; ").any(|a| a == attr), "{attr} missing in {c}");
        }
    }

    #[test]
    fn the_csrf_cookie_is_readable_by_script_but_otherwise_as_strict() {
        let c = csrf_cookie("ff00", 60);
        assert!(c.starts_with("__Host-jes_csrf=ff00;"));
        assert!(!c.to_ascii_lowercase().contains("domain"), "a __Host- cookie has no Domain");
        assert!(!c.contains("HttpOnly"));
        for attr in ["Secure", "SameSite=Strict", "Path=/", "Max-Age=60"] {
            assert!(c.split("; ").any(|a| a == attr), "{attr} missing in {c}");
        }
        assert_eq!(csrf_value([0xab; 32]).len(), 64);
    }

    #[test]
    fn set_adds_two_cookies_and_clear_expires_both() {
        let mut h = HeaderMap::new();
        set(&mut h, "jes_sess_x", "c0ffee", 10);
        let all: Vec<_> = h.get_all(header::SET_COOKIE).iter().map(|v| v.to_str().unwrap().to_string()).collect();
        assert_eq!(all.len(), 4);
        assert!(all[0].starts_with("__Host-jes_session=jes_sess_x;") && all[1].starts_with("__Host-jes_csrf=c0ffee;"));
        assert!(all[2].starts_with("jes_session=; ") && all[3].starts_with("jes_csrf=; "));
        assert!(all[2..].iter().all(|c| c.contains("Max-Age=0")));
        let mut h = HeaderMap::new();
        clear(&mut h);
        let all: Vec<_> = h.get_all(header::SET_COOKIE).iter().map(|v| v.to_str().unwrap().to_string()).collect();
        assert_eq!(all.len(), 4);
        assert!(all.iter().all(|c| c.contains("=; ") && c.contains("Max-Age=0")));
    }

    #[test]
    fn only_an_explicit_cookie_transport_hides_the_token_from_the_body() {
        let mut h = HeaderMap::new();
        assert!(!wants_cookie_only(&h));
        h.insert(TRANSPORT_HEADER, HeaderValue::from_static("Cookie"));
        assert!(wants_cookie_only(&h));
        h.insert(TRANSPORT_HEADER, HeaderValue::from_static("bearer"));
        assert!(!wants_cookie_only(&h));
    }
}
