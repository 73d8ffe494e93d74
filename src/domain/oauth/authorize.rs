//! The authorization request (RFC 6749 §4.1.1 with PKCE and RFC 8707), its
//! checks in the order that keeps every error safe: until the client and its
//! redirect URI are known, nothing is sent anywhere but our own error page
//! (no open redirect); after that, errors go back to the client with `state`
//! and `iss` (RFC 9207). Pure: the client is looked up by the caller.

use super::{challenge_well_formed, redirect_uri_matches, requested_scopes, resource_matches};
use crate::auth::scope::ScopeSet;

/// The longest `state` carried back.
pub const MAX_STATE: usize = 512;

/// What the authorize endpoint needs of a registered client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Client {
    pub id: String,
    pub name: String,
    pub redirect_uris: Vec<String>,
    pub authorization_code: bool,
}

/// A valid authorization request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    pub client_id: String,
    /// As sent (a loopback one with its actual port): the token request must repeat it.
    pub redirect_uri: String,
    pub state: Option<String>,
    pub code_challenge: String,
    pub scopes: ScopeSet,
    pub resource: Option<String>,
}

/// Why a request was refused, and where that may be said.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// Before the redirect URI is trusted: only our own page may say it.
    Page { error: &'static str, description: &'static str },
    /// Back to the client's (registered) redirect URI.
    Client { redirect_uri: String, state: Option<String>, error: &'static str, description: &'static str },
}

/// The query's parameters; a repeated one is refused (RFC 6749 §3.1).
pub fn params(query: &str) -> Result<Vec<(String, String)>, Refusal> {
    let mut out: Vec<(String, String)> = Vec::new();
    for (k, v) in form_urlencoded::parse(query.as_bytes()) {
        if out.iter().any(|(seen, _)| *seen == k) {
            return Err(Refusal::Page { error: "invalid_request", description: "a parameter is repeated" });
        }
        out.push((k.into_owned(), v.into_owned()));
    }
    Ok(out)
}

/// One parameter's value (empty counts as absent).
pub fn param<'a>(params: &'a [(String, String)], name: &str) -> Option<&'a str> {
    params.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str()).filter(|v| !v.is_empty())
}

/// Checks a request of `client` (`None`: unknown `client_id`) at `origin`.
pub fn check(params: &[(String, String)], client: Option<&Client>, origin: &str) -> Result<Request, Refusal> {
    let page = |error, description| Err(Refusal::Page { error, description });
    let Some(client) = client else { return page("invalid_client", "unknown client_id") };
    let Some(redirect_uri) = param(params, "redirect_uri") else { return page("invalid_request", "redirect_uri is required") };
    if !redirect_uri_matches(&client.redirect_uris, redirect_uri) {
        return page("invalid_request", "redirect_uri is not registered for this client");
    }
    let state = param(params, "state").map(str::to_string);
    let to_client = |error, description| {
        Err(Refusal::Client { redirect_uri: redirect_uri.to_string(), state: state.clone(), error, description })
    };
    if param(params, "response_type") != Some("code") {
        return to_client("unsupported_response_type", "response_type must be code");
    }
    if !client.authorization_code {
        return to_client("unauthorized_client", "this client is not registered for authorization_code");
    }
    let challenge = param(params, "code_challenge").unwrap_or("");
    if !challenge_well_formed(challenge) {
        return to_client("invalid_request", "code_challenge (PKCE S256) is required");
    }
    if param(params, "code_challenge_method") != Some("S256") {
        return to_client("invalid_request", "PKCE S256 required: code_challenge_method must be S256");
    }
    let resource = param(params, "resource");
    if !resource_matches(resource, origin) {
        return to_client("invalid_target", "resource must be this API or its /mcp endpoint");
    }
    if state.as_ref().is_some_and(|s| s.len() > MAX_STATE) {
        return Err(Refusal::Client {
            redirect_uri: redirect_uri.to_string(),
            state: None,
            error: "invalid_request",
            description: "state is longer than 512 characters",
        });
    }
    Ok(Request {
        client_id: client.id.clone(),
        redirect_uri: redirect_uri.to_string(),
        state,
        code_challenge: challenge.to_string(),
        scopes: requested_scopes(param(params, "scope")),
        resource: resource.map(str::to_string),
    })
}

/// `redirect_uri` with `pairs` added to its query (RFC 6749 §4.1.2: the
/// URI's own query is kept), `state` and `iss` last.
pub fn redirect(redirect_uri: &str, pairs: &[(&str, &str)], state: Option<&str>, iss: &str) -> String {
    let mut q = form_urlencoded::Serializer::new(String::new());
    for (k, v) in pairs {
        q.append_pair(k, v);
    }
    if let Some(s) = state {
        q.append_pair("state", s);
    }
    q.append_pair("iss", iss);
    let sep = if redirect_uri.contains('?') { '&' } else { '?' };
    format!("{redirect_uri}{sep}{}", q.finish())
}

#[cfg(test)]
mod tests {
    use super::*;

    const O: &str = "https://api.example";

    fn client() -> Client {
        Client {
            id: "cli_1".into(),
            name: "Agent".into(),
            redirect_uris: vec!["http://127.0.0.1/callback".into(), "https://agent.example/cb?x=1".into()],
            authorization_code: true,
        }
    }

    fn q(extra: &str) -> Vec<(String, String)> {
        let base = "response_type=code&client_id=cli_1&redirect_uri=http%3A%2F%2F127.0.0.1%3A5000%2Fcallback\
                    &code_challenge=E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM&code_challenge_method=S256&state=xyz";
        params(&format!("{base}{extra}")).unwrap()
    }

    fn without(name: &str) -> Vec<(String, String)> {
        q("").into_iter().filter(|(k, _)| k != name).collect()
    }

    fn with(name: &str, value: &str) -> Vec<(String, String)> {
        q("").into_iter().map(|(k, v)| if k == name { (k, value.to_string()) } else { (k, v) }).collect()
    }

    fn client_error(r: Result<Request, Refusal>) -> &'static str {
        match r {
            Err(Refusal::Client { error, state, redirect_uri, .. }) => {
                assert_eq!(redirect_uri, "http://127.0.0.1:5000/callback");
                assert!(state.is_none() || state.as_deref() == Some("xyz"));
                error
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_valid_request_keeps_the_actual_loopback_port_and_the_scopes_asked() {
        let r = check(&q("&scope=read%3Acomment+bogus&resource=https%3A%2F%2Fapi.example%2Fmcp"), Some(&client()), O).unwrap();
        assert_eq!(r.redirect_uri, "http://127.0.0.1:5000/callback");
        assert_eq!(r.scopes.names(), ["read:comment"]);
        assert_eq!(r.resource.as_deref(), Some("https://api.example/mcp"));
        assert_eq!(r.state.as_deref(), Some("xyz"));
    }

    #[test]
    fn until_the_redirect_is_trusted_errors_stay_on_our_page() {
        assert!(matches!(check(&q(""), None, O), Err(Refusal::Page { error: "invalid_client", .. })));
        assert!(matches!(check(&without("redirect_uri"), Some(&client()), O), Err(Refusal::Page { .. })));
        let evil = params("redirect_uri=https%3A%2F%2Fevil.example%2Fcb&response_type=token").unwrap();
        assert!(matches!(check(&evil, Some(&client()), O), Err(Refusal::Page { error: "invalid_request", .. })));
        assert!(matches!(params("a=1&a=2"), Err(Refusal::Page { .. })));
    }

    #[test]
    fn later_errors_go_back_to_the_client_with_state() {
        assert_eq!(client_error(check(&with("response_type", "token"), Some(&client()), O)), "unsupported_response_type");
        assert_eq!(client_error(check(&without("code_challenge"), Some(&client()), O)), "invalid_request");
        assert_eq!(client_error(check(&without("code_challenge_method"), Some(&client()), O)), "invalid_request");
        assert_eq!(client_error(check(&with("code_challenge_method", "plain"), Some(&client()), O)), "invalid_request");
        assert_eq!(client_error(check(&q("&resource=https%3A%2F%2Fother.example"), Some(&client()), O)), "invalid_target");
        let mut device_only = client();
        device_only.authorization_code = false;
        assert_eq!(client_error(check(&q(""), Some(&device_only), O)), "unauthorized_client");
        assert_eq!(client_error(check(&with("state", &"s".repeat(513)), Some(&client()), O)), "invalid_request");
    }

    #[test]
    fn redirects_keep_the_clients_query_and_end_with_state_and_iss() {
        assert_eq!(
            redirect("https://agent.example/cb?x=1", &[("code", "c 1")], Some("s&t"), O),
            "https://agent.example/cb?x=1&code=c+1&state=s%26t&iss=https%3A%2F%2Fapi.example"
        );
        assert_eq!(
            redirect("http://127.0.0.1:5/cb", &[("error", "access_denied")], None, O),
            "http://127.0.0.1:5/cb?error=access_denied&iss=https%3A%2F%2Fapi.example"
        );
    }
}
