//! The web UI's files (public/: plain HTML, one stylesheet, ES modules),
//! compiled into the Worker and served from the router's fallback, so any
//! path that is neither a route nor one of these files is still the API's 404
//! envelope. Every file carries the security headers below (a strict CSP: no
//! inline script or style anywhere in the UI) and an ETag for revalidation.
//!
//! Why not Workers static assets: with `[assets]` configured, `wrangler dev`
//! 4.86 puts an RPC proxy in front of the Worker that cannot forward scheduled
//! events (`/cdn-cgi/handler/scheduled` answers 500, so the cron's tests fail)
//! and makes unread request bodies break the next request more often. The
//! files are the same either way; moving them to assets later is a config
//! change plus deleting this module.

use axum::body::Body;
use axum::extract::Request;
use axum::http::{header, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};

use crate::error::ApiError;

pub struct File {
    pub path: &'static str,
    pub content_type: &'static str,
    pub body: &'static [u8],
}

macro_rules! file {
    ($path:literal, $ty:expr) => {
        File { path: $path, content_type: $ty, body: include_bytes!(concat!("../public", $path)) }
    };
}

const HTML: &str = "text/html; charset=utf-8";
const CSS: &str = "text/css; charset=utf-8";
const JS: &str = "text/javascript; charset=utf-8";
const SVG: &str = "image/svg+xml";

/// Every file of the UI. A module the page imports but this list lacks fails
/// the unit test below.
pub const FILES: &[File] = &[
    file!("/index.html", HTML),
    file!("/app.css", CSS),
    file!("/favicon.svg", SVG),
    file!("/js/api.js", JS),
    file!("/js/app.js", JS),
    file!("/js/ui.js", JS),
    file!("/js/pages/auth.js", JS),
    file!("/js/pages/key.js", JS),
    file!("/js/pages/keys.js", JS),
    file!("/js/pages/snippets.js", JS),
    file!("/js/pages/timeline.js", JS),
];

pub const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; \
    connect-src 'self'; font-src 'self'; media-src 'self'; manifest-src 'self'; frame-ancestors 'none'; \
    base-uri 'none'; form-action 'self'";

const HEADERS: [(&str, &str); 6] = [
    ("content-security-policy", CSP),
    ("x-frame-options", "DENY"),
    ("referrer-policy", "no-referrer"),
    ("permissions-policy", "camera=(), microphone=(), geolocation=(), payment=(), usb=()"),
    ("cross-origin-opener-policy", "same-origin"),
    ("cross-origin-resource-policy", "same-origin"),
];

/// The file a request path names; `/` is the page itself.
pub fn find(path: &str) -> Option<&'static File> {
    let path = if path == "/" { "/index.html" } else { path };
    FILES.iter().find(|f| f.path == path)
}

/// A strong validator from the bytes: CRC-32 and length, quoted.
pub fn etag(body: &[u8]) -> String {
    format!("\"{:08x}-{:x}\"", crc32fast::hash(body), body.len())
}

fn matches(if_none_match: Option<&str>, tag: &str) -> bool {
    if_none_match.is_some_and(|v| v.split(',').any(|t| {
        let t = t.trim();
        t == "*" || t == tag || t.strip_prefix("W/") == Some(tag)
    }))
}

/// The router's fallback: a UI file for GET/HEAD, else the 404 envelope.
pub async fn fallback(req: Request) -> Response {
    let Some(file) = (matches!(*req.method(), Method::GET | Method::HEAD)).then(|| find(req.uri().path())).flatten() else {
        return ApiError::NotFound.into_response();
    };
    let tag = etag(file.body);
    let fresh = matches(req.headers().get(header::IF_NONE_MATCH).and_then(|v| v.to_str().ok()), &tag);
    let mut res = if fresh {
        StatusCode::NOT_MODIFIED.into_response()
    } else if req.method() == Method::HEAD {
        let mut res = (StatusCode::OK, Body::empty()).into_response();
        res.headers_mut().insert(header::CONTENT_LENGTH, HeaderValue::from(file.body.len()));
        res
    } else {
        (StatusCode::OK, Body::from(file.body)).into_response()
    };
    let h = res.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(file.content_type));
    // Revalidate every time: a deploy changes the files under the same names.
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    if let Ok(v) = HeaderValue::from_str(&tag) {
        h.insert(header::ETAG, v);
    }
    for (name, value) in HEADERS {
        h.insert(name, HeaderValue::from_static(value));
    }
    res
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(f: &File) -> &str {
        std::str::from_utf8(f.body).unwrap()
    }

    /// `./x.js` / `../ui.js` relative to `from`.
    fn resolve(from: &str, rel: &str) -> String {
        let mut parts: Vec<&str> = from.split('/').collect();
        parts.pop();
        for seg in rel.split('/') {
            match seg {
                "." => {}
                ".." => {
                    parts.pop();
                }
                s => parts.push(s),
            }
        }
        parts.join("/")
    }

    #[test]
    fn every_module_the_page_loads_is_served() {
        let mut wanted = vec![];
        for f in FILES {
            let src = text(f);
            if f.path.ends_with(".js") {
                for line in src.lines() {
                    if let Some(rest) = line.split(" from '").nth(1) {
                        let rel = rest.split('\'').next().unwrap();
                        wanted.push(resolve(f.path, rel));
                    }
                }
            }
            if f.path.ends_with(".html") {
                for attr in ["src=\"", "href=\""] {
                    for piece in src.split(attr).skip(1) {
                        let url = piece.split('"').next().unwrap();
                        if url.starts_with('/') {
                            wanted.push(url.to_string());
                        }
                    }
                }
            }
        }
        assert!(wanted.len() > 10, "{wanted:?}");
        for w in wanted {
            assert!(find(&w).is_some(), "{w} is loaded by the UI but not in FILES");
        }
    }

    #[test]
    fn the_page_has_no_inline_script_or_style() {
        let html = text(find("/").unwrap());
        for tag in html.split("<script").skip(1) {
            let open = tag.split('>').next().unwrap();
            assert!(open.contains("src="), "inline script: {open}");
            assert!(tag.split_once('>').unwrap().1.trim_start().starts_with("</script>"));
        }
        assert!(!html.contains("<style") && !html.contains(" style=") && !html.contains(" onclick="));
    }

    #[test]
    fn the_policy_allows_only_this_origin() {
        for d in ["default-src 'none'", "script-src 'self'", "style-src 'self'", "frame-ancestors 'none'", "base-uri 'none'", "form-action 'self'"] {
            assert!(CSP.split("; ").any(|x| x == d), "{d}");
        }
        assert!(!CSP.contains("unsafe"));
    }

    #[test]
    fn paths_outside_the_list_are_not_files() {
        assert_eq!(find("/").unwrap().path, "/index.html");
        assert!(find("/api/auth/me").is_none());
        assert!(find("/js/../../Cargo.toml").is_none());
        assert!(find("/index.html/").is_none());
    }

    #[test]
    fn etags_match_exactly_weakly_or_by_star() {
        let tag = etag(b"abc");
        assert!(matches(Some(&tag), &tag));
        assert!(matches(Some(&format!("W/{tag}")), &tag));
        assert!(matches(Some(&format!("\"other\", {tag}")), &tag));
        assert!(matches(Some("*"), &tag));
        assert!(!matches(Some("\"nope\""), &tag));
        assert!(!matches(None, &tag));
    }
}
