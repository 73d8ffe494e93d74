//! Client registration (RFC 7591) for public clients: what a registration
//! request may ask for and what is kept of it. Pure; the endpoint is
//! `account::routes::oauth::register`.

use serde_json::Value;

use super::{redirect_uri_allowed, requested_scopes};

pub const AUTHORIZATION_CODE: &str = "authorization_code";
pub const REFRESH_TOKEN: &str = "refresh_token";
pub const DEVICE_CODE: &str = "urn:ietf:params:oauth:grant-type:device_code";
/// Every grant type this server implements (RFC 8414 `grant_types_supported`).
pub const GRANT_TYPES: [&str; 3] = [AUTHORIZATION_CODE, REFRESH_TOKEN, DEVICE_CODE];
pub const MAX_REDIRECT_URIS: usize = 10;
pub const MAX_CLIENT_NAME: usize = 64;

/// What is kept of a registration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientMetadata {
    pub client_name: String,
    pub redirect_uris: Vec<String>,
    /// In `GRANT_TYPES` order.
    pub grant_types: Vec<&'static str>,
    /// The registered scope, narrowed to what OAuth may grant ("" if none given).
    pub scope: String,
    pub client_uri: Option<String>,
    pub software_id: Option<String>,
    pub software_version: Option<String>,
}

/// A refused registration: the RFC 7591 §3.2.2 error code and its description.
pub type Refusal = (&'static str, String);

fn meta(msg: impl Into<String>) -> Refusal {
    ("invalid_client_metadata", msg.into())
}

/// A display name made safe to show: no control or bidirectional-override
/// characters (which could make "evil.example" read as something else),
/// trimmed, at most 64 characters.
pub fn sanitize_name(name: &str) -> String {
    let bidi = |c: char| matches!(c, '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}');
    let clean: String = name.chars().filter(|c| !c.is_control() && !bidi(*c)).collect();
    clean.trim().chars().take(MAX_CLIENT_NAME).collect::<String>().trim_end().to_string()
}

fn optional_text(v: &Value, field: &str, max: usize) -> Result<Option<String>, Refusal> {
    match &v[field] {
        Value::Null => Ok(None),
        Value::String(s) => {
            let text: String = sanitize_name(s).chars().take(max).collect();
            Ok((!text.is_empty()).then_some(text))
        }
        _ => Err(meta(format!("{field} must be a string"))),
    }
}

/// Validates a registration request's JSON object. Unknown members are
/// ignored (RFC 7591 §2); `token_endpoint_auth_method` is answered `none`
/// whatever was asked (§3.2.1: the server may replace it), so there is no
/// secret; `logo_uri` and the like are never fetched.
pub fn client_metadata(v: &Value) -> Result<ClientMetadata, Refusal> {
    if !v.is_object() {
        return Err(meta("the body must be a JSON object"));
    }
    let grant_types: Vec<&'static str> = match &v["grant_types"] {
        Value::Null => vec![AUTHORIZATION_CODE, REFRESH_TOKEN],
        Value::Array(items) => {
            let mut asked = Vec::with_capacity(items.len());
            for item in items {
                let name = item.as_str().ok_or_else(|| meta("grant_types must be strings"))?;
                let known = GRANT_TYPES
                    .iter()
                    .find(|g| **g == name)
                    .ok_or_else(|| meta(format!("grant type {name:.80} is not supported")))?;
                asked.push(*known);
            }
            let kept: Vec<&'static str> = GRANT_TYPES.into_iter().filter(|g| asked.contains(g)).collect();
            if kept.is_empty() || kept == [REFRESH_TOKEN] {
                return Err(meta("grant_types must include authorization_code or the device_code grant"));
            }
            kept
        }
        _ => return Err(meta("grant_types must be an array")),
    };
    let redirect_based = grant_types.contains(&AUTHORIZATION_CODE);
    match &v["response_types"] {
        Value::Null => {}
        Value::Array(items) if items.iter().all(|i| i == "code") && (redirect_based || items.is_empty()) => {}
        _ => return Err(meta("response_types must be [\"code\"]")),
    }
    let redirect_uris: Vec<String> = match &v["redirect_uris"] {
        Value::Null | Value::Array(_) if !redirect_based => vec![],
        Value::Array(items) if !items.is_empty() => {
            if items.len() > MAX_REDIRECT_URIS {
                return Err(("invalid_redirect_uri", format!("at most {MAX_REDIRECT_URIS} redirect_uris")));
            }
            let mut uris = Vec::with_capacity(items.len());
            for (i, item) in items.iter().enumerate() {
                let uri =
                    item.as_str().ok_or_else(|| ("invalid_redirect_uri", format!("redirect_uris[{i}] must be a string")))?;
                redirect_uri_allowed(uri).map_err(|why| ("invalid_redirect_uri", format!("redirect_uris[{i}]: {why}")))?;
                uris.push(uri.to_string());
            }
            uris
        }
        Value::Null | Value::Array(_) => return Err(("invalid_redirect_uri", "redirect_uris: at least one is required".into())),
        _ => return Err(("invalid_redirect_uri", "redirect_uris must be an array".into())),
    };
    let scope = match &v["scope"] {
        Value::Null => String::new(),
        Value::String(s) => requested_scopes(Some(s)).names().join(" "),
        _ => return Err(meta("scope must be a string")),
    };
    let client_uri = match &v["client_uri"] {
        Value::String(u) if u.starts_with("https://") && u.len() <= 2000 && !u.bytes().any(|b| b <= b' ') => Some(u.clone()),
        _ => None,
    };
    let host = redirect_uris.first().and_then(|u| u.split("://").nth(1)).map(|r| r.split(['/', '?']).next().unwrap_or(r));
    let client_name = optional_text(v, "client_name", MAX_CLIENT_NAME)?
        .or_else(|| host.map(str::to_string))
        .unwrap_or_else(|| "Unnamed app".into());
    Ok(ClientMetadata {
        client_name,
        redirect_uris,
        grant_types,
        scope,
        client_uri,
        software_id: optional_text(v, "software_id", 64)?,
        software_version: optional_text(v, "software_version", 32)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_mcp_sdk_registration_is_accepted_as_a_public_client() {
        let m = client_metadata(&json!({
            "redirect_uris": ["http://127.0.0.1:33418/callback"],
            "grant_types": ["authorization_code", "refresh_token"],
            "response_types": ["code"],
            "scope": "write:jes read:comment claudeai",
            "client_name": "SDK agent",
            "application_type": "native",
            "token_endpoint_auth_method": "client_secret_post",
        }))
        .unwrap();
        assert_eq!(m.client_name, "SDK agent");
        assert_eq!(m.grant_types, [AUTHORIZATION_CODE, REFRESH_TOKEN]);
        assert_eq!(m.scope, "write:jes read:comment");
    }

    #[test]
    fn the_cli_registers_for_the_device_grant_without_redirect_uris() {
        let m = client_metadata(&json!({
            "client_name": "Jestha CLI",
            "grant_types": [DEVICE_CODE, "refresh_token"],
            "response_types": [],
            "token_endpoint_auth_method": "none",
            "software_id": "jestha-cli",
            "software_version": "0.1.0",
        }))
        .unwrap();
        assert!(m.redirect_uris.is_empty());
        assert_eq!(m.grant_types, [REFRESH_TOKEN, DEVICE_CODE]);
        assert_eq!(m.software_id.as_deref(), Some("jestha-cli"));
    }

    #[test]
    fn bad_redirects_and_grant_types_are_refused_with_their_rfc_codes() {
        let code = |v: Value| client_metadata(&v).unwrap_err().0;
        assert_eq!(code(json!({})), "invalid_redirect_uri");
        assert_eq!(code(json!({"redirect_uris": []})), "invalid_redirect_uri");
        assert_eq!(code(json!({"redirect_uris": ["http://app.example/cb"]})), "invalid_redirect_uri");
        assert_eq!(code(json!({"redirect_uris": ["com.example:/cb"]})), "invalid_redirect_uri");
        let eleven: Vec<String> = (0..11).map(|i| format!("https://a.example/{i}")).collect();
        assert_eq!(code(json!({ "redirect_uris": eleven })), "invalid_redirect_uri");
        let e = client_metadata(&json!({"redirect_uris": ["https://a.example/cb", "javascript:x"]})).unwrap_err();
        assert!(e.1.starts_with("redirect_uris[1]"), "{e:?}");
        let ok = ["https://a.example/cb"];
        assert_eq!(code(json!({"redirect_uris": ok, "grant_types": ["implicit"]})), "invalid_client_metadata");
        assert_eq!(code(json!({"redirect_uris": ok, "grant_types": ["refresh_token"]})), "invalid_client_metadata");
        assert_eq!(code(json!({"redirect_uris": ok, "response_types": ["token"]})), "invalid_client_metadata");
        assert_eq!(code(json!([1])), "invalid_client_metadata");
        assert_eq!(code(json!({"redirect_uris": ok, "client_name": 7})), "invalid_client_metadata");
    }

    #[test]
    fn names_lose_control_and_bidi_characters_and_default_to_the_redirect_host() {
        assert_eq!(sanitize_name("  Good\u{202e}lee\u{7}b app "), "Goodleeb app");
        assert_eq!(sanitize_name(&"x".repeat(100)).len(), MAX_CLIENT_NAME);
        let m = client_metadata(&json!({"redirect_uris": ["https://agent.example:8443/cb?x=1"]})).unwrap();
        assert_eq!(m.client_name, "agent.example:8443");
        let m = client_metadata(&json!({"redirect_uris": ["https://a.example/cb"], "client_name": "\u{202e}"})).unwrap();
        assert_eq!(m.client_name, "a.example");
        let m = client_metadata(&json!({"redirect_uris": ["https://a.example/cb"], "client_uri": "http://a.example"})).unwrap();
        assert_eq!(m.client_uri, None);
    }
}
