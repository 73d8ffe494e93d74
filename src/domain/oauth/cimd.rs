//! OAuth Client ID Metadata Documents (draft-ietf-oauth-client-id-metadata-document;
//! docs/design/oauth.md 3.3): a `client_id` that is an https URL names a JSON
//! document its client publishes there. Pure: which URLs may be fetched,
//! which answers are accepted, what a valid document keeps (the registration
//! rules of `client`) and how long it may be used. The fetch and the cache
//! are `adapters::cimd`.

use serde_json::Value;

use super::client::{client_metadata, ClientMetadata};

/// The longest client_id URL.
pub const MAX_URL: usize = 512;
/// The largest document read (Content-Length and the bytes actually read).
pub const MAX_DOCUMENT: usize = 8 * 1024;
/// How long a document may be used: `max-age` clamped to these (seconds).
pub const MIN_LIFETIME: i64 = 300;
pub const MAX_LIFETIME: i64 = 86_400;
/// Without a `Cache-Control` max-age.
pub const DEFAULT_LIFETIME: i64 = 3600;

/// Whether `client_id` claims to be a metadata document (any other one is a
/// registered client's id).
pub fn is_url(client_id: &str) -> bool {
    client_id.starts_with("https://") || client_id.starts_with("http://")
}

/// Checks a client_id URL before anything is fetched: `https://`, a
/// lowercase domain name (no IP literal, no local or internal name) with no
/// port but 8443, a path, no query, fragment, credentials, backslash or dot
/// segments (`%2e` included), printable ASCII, at most 512 characters. These
/// are the webhook rules made narrower, so the URL is already in its one
/// normal form: the string compared with the document's `client_id` is the
/// one fetched. The account Worker's `global_fetch_strictly_public` keeps a
/// name that resolves to a private address off the internal network.
/// `allow_loopback` (development and tests only) admits
/// `http://127.0.0.1:<port>/…`.
pub fn check_url(url: &str, allow_loopback: bool) -> Result<(), &'static str> {
    if url.len() > MAX_URL || !url.bytes().all(|b| (0x21..=0x7e).contains(&b)) || url.contains(['?', '#', '@', '\\']) {
        return Err("a URL must be printable ASCII of at most 512 characters, without query, fragment or credentials");
    }
    let path = if let Some(rest) = url.strip_prefix("http://127.0.0.1:").filter(|_| allow_loopback) {
        let (port, path) = rest.split_once('/').unwrap_or((rest, ""));
        if port.is_empty() || port.len() > 5 || !port.bytes().all(|b| b.is_ascii_digit()) {
            return Err("invalid port");
        }
        path
    } else {
        let rest = url.strip_prefix("https://").ok_or("a URL must use https")?;
        let (authority, path) = rest.split_once('/').unwrap_or((rest, ""));
        let host = authority.strip_suffix(":8443").unwrap_or(authority);
        let label_ok =
            |l: &str| !l.is_empty() && l.len() <= 63 && l.bytes().all(|b| matches!(b, b'a'..=b'z' | b'0'..=b'9' | b'-'));
        let last = host.rsplit('.').next().unwrap_or("");
        if !host.contains('.') || !host.split('.').all(label_ok) || !last.starts_with(|c: char| c.is_ascii_lowercase()) {
            return Err("the host must be a lowercase public domain name (no IP address; no port but 8443)");
        }
        if [".localhost", ".local", ".internal", ".localdomain", ".home.arpa"].iter().any(|s| host.ends_with(s)) {
            return Err("the host is a local or internal name");
        }
        path
    };
    if path.is_empty() {
        return Err("a URL must have a path");
    }
    let lower = path.to_ascii_lowercase();
    if lower.contains("%2e") || path.split('/').any(|s| s == "." || s == "..") {
        return Err("a URL must have no . or .. segments");
    }
    Ok(())
}

/// Whether a `Content-Type` is JSON (`application/json` or `…+json`).
pub fn is_json_type(content_type: &str) -> bool {
    let t = content_type.split(';').next().unwrap_or("").trim().to_ascii_lowercase();
    t == "application/json" || (t.starts_with("application/") && t.ends_with("+json"))
}

/// Seconds a document may be used, from its `Cache-Control`: `max-age`
/// within 5 minutes and a day; `no-store` or `no-cache` the least; an hour
/// when it says nothing.
pub fn lifetime(cache_control: Option<&str>) -> i64 {
    let mut secs = DEFAULT_LIFETIME;
    for d in cache_control.unwrap_or("").split(',').map(|d| d.trim().to_ascii_lowercase()) {
        if d == "no-store" || d == "no-cache" {
            return MIN_LIFETIME;
        }
        if let Some(v) = d.strip_prefix("max-age=") {
            secs = v.trim_matches('"').parse().unwrap_or(MIN_LIFETIME);
        }
    }
    secs.clamp(MIN_LIFETIME, MAX_LIFETIME)
}

/// Validates the document fetched from `url`: a JSON object whose
/// `client_id` is exactly `url`, with a `client_name`, no client
/// authentication (`token_endpoint_auth_method` absent or `none`: there is
/// no `private_key_jwt`), and redirect URIs and grant types a registration
/// could have.
pub fn document(url: &str, v: &Value) -> Result<ClientMetadata, String> {
    if !v.is_object() {
        return Err("the document is not a JSON object".into());
    }
    if v["client_id"].as_str() != Some(url) {
        return Err("the document's client_id is not its URL".into());
    }
    if v["client_name"].as_str().is_none_or(|n| n.trim().is_empty()) {
        return Err("the document has no client_name".into());
    }
    match &v["token_endpoint_auth_method"] {
        Value::Null => {}
        Value::String(m) if m == "none" => {}
        _ => return Err("token_endpoint_auth_method must be none".into()),
    }
    client_metadata(v).map_err(|(_, why)| why)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const URL: &str = "https://agent.example/oauth/client.json";

    #[test]
    fn only_public_https_urls_with_a_plain_path_are_fetched() {
        assert_eq!(check_url(URL, false), Ok(()));
        assert_eq!(check_url("https://agent.example:8443/c", false), Ok(()));
        for bad in [
            "http://agent.example/c",
            "https://agent.example",
            "https://agent.example/",
            "https://agent.example/c?x=1",
            "https://agent.example/c#f",
            "https://agent.example/a/../c",
            "https://agent.example/./c",
            "https://agent.example/a/%2E%2e/c",
            "https://Agent.example/c",
            "https://agent.example:443/c",
            "https://user@agent.example/c",
            "https://10.0.0.1/c",
            "https://169.254.169.254/latest",
            "https://localhost/c",
            "https://agent.example:22/c",
            "https://agent.example\\c/x",
        ] {
            assert!(check_url(bad, false).is_err(), "{bad}");
        }
        let long = format!("https://agent.example/{}", "a".repeat(MAX_URL));
        assert!(check_url(&long, false).unwrap_err().contains("512"));
        for bad in [
            "https://agent.local/c",
            "https://127.0.0.1/c",
            "https://[::1]/c",
            "https://agent.example:8080/c",
            "https://agent.example/a b",
            "https://agent/c",
            "https://a..example/c",
            "https://agent.example/%2e%2E/c",
        ] {
            assert!(check_url(bad, false).is_err(), "{bad}");
        }
    }

    #[test]
    fn loopback_http_is_admitted_only_when_allowed() {
        let local = "http://127.0.0.1:8123/client.json";
        assert!(check_url(local, false).is_err());
        assert_eq!(check_url(local, true), Ok(()));
        assert!(check_url("http://10.0.0.1:8123/c", true).is_err());
        assert!(check_url("http://127.0.0.1:8123/", true).is_err());
        assert!(check_url("http://127.0.0.1:/c", true).is_err());
        assert!(check_url("http://localhost:8123/c", true).is_err());
    }

    #[test]
    fn json_content_types() {
        assert!(is_json_type("application/json"));
        assert!(is_json_type("Application/JSON; charset=utf-8"));
        assert!(is_json_type("application/oauth-client+json"));
        assert!(!is_json_type("text/html"));
        assert!(!is_json_type("text/json+html"));
        assert!(!is_json_type(""));
    }

    #[test]
    fn the_lifetime_is_max_age_clamped_to_five_minutes_and_a_day() {
        assert_eq!(lifetime(None), 3600);
        assert_eq!(lifetime(Some("public, max-age=7200")), 7200);
        assert_eq!(lifetime(Some("max-age=10")), MIN_LIFETIME);
        assert_eq!(lifetime(Some("max-age=999999999")), MAX_LIFETIME);
        assert_eq!(lifetime(Some("max-age=x")), MIN_LIFETIME);
        assert_eq!(lifetime(Some("no-store")), MIN_LIFETIME);
        assert_eq!(lifetime(Some("max-age=7200, No-Cache")), MIN_LIFETIME);
        assert_eq!(lifetime(Some("private")), 3600);
    }

    fn doc() -> Value {
        json!({
            "client_id": URL,
            "client_name": "Agent",
            "client_uri": "https://agent.example",
            "redirect_uris": ["https://agent.example/cb", "http://127.0.0.1/cb"],
            "grant_types": ["authorization_code", "refresh_token"],
            "response_types": ["code"],
            "token_endpoint_auth_method": "none",
        })
    }

    #[test]
    fn a_valid_document_is_kept_as_a_registration_would_be() {
        let m = document(URL, &doc()).unwrap();
        assert_eq!(m.client_name, "Agent");
        assert_eq!(m.redirect_uris, ["https://agent.example/cb", "http://127.0.0.1/cb"]);
        assert_eq!(m.client_uri.as_deref(), Some("https://agent.example"));
        let mut v = doc();
        v.as_object_mut().unwrap().remove("token_endpoint_auth_method");
        assert!(document(URL, &v).is_ok());
    }

    #[test]
    fn a_document_is_refused_unless_it_names_itself_and_needs_no_secret() {
        let with = |k: &str, val: Value| {
            let mut v = doc();
            v[k] = val;
            document(URL, &v)
        };
        assert!(document(URL, &json!([doc()])).is_err());
        assert!(document("https://agent.example/other", &doc()).unwrap_err().contains("client_id"));
        assert!(with("client_id", json!("https://agent.example/oauth/client.json/")).is_err());
        assert!(with("client_id", json!(7)).is_err());
        assert!(with("client_name", json!(" ")).unwrap_err().contains("client_name"));
        assert!(with("client_name", Value::Null).is_err());
        assert!(with("token_endpoint_auth_method", json!("private_key_jwt")).unwrap_err().contains("none"));
        assert!(with("token_endpoint_auth_method", json!("client_secret_basic")).is_err());
        assert!(with("redirect_uris", json!(["http://agent.example/cb"])).unwrap_err().contains("redirect_uris[0]"));
        assert!(with("redirect_uris", json!([])).is_err());
        assert!(with("grant_types", json!(["implicit"])).is_err());
    }
}
