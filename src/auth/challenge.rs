//! `WWW-Authenticate` (RFC 6750 §3, RFC 9728 §5.1): what a refused caller is
//! told about how to authenticate. Every 401 names the protected resource's
//! metadata, so an OAuth client (an MCP client) can discover where to get a
//! token; a refused credential adds `error="invalid_token"`; a key or token
//! lacking a scope is told which (`error="insufficient_scope"`). Pure: the
//! error sets what it knows (`Unauthorized`, or the whole 403 header), the
//! Worker's `serve` adds the origin of the request.

/// What a 401 says, set on the response by `ApiError` for `serve` to write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Unauthorized {
    /// A credential was presented and refused (unknown, revoked, expired).
    pub invalid_token: bool,
}

/// The protected resource metadata document of `origin`.
pub fn resource_metadata(origin: &str) -> String {
    format!("{origin}/.well-known/oauth-protected-resource")
}

/// The header of a 401.
pub fn unauthorized(origin: &str, u: Unauthorized) -> String {
    let mut h = format!("Bearer realm=\"jestha\", resource_metadata=\"{}\"", resource_metadata(origin));
    if u.invalid_token {
        h.push_str(", error=\"invalid_token\"");
    }
    h
}

/// The header of a 403 `insufficient_scope`: the scopes that would have
/// passed (the missing ones, or a route's alternatives), space separated.
pub fn insufficient_scope(scopes: &[&str]) -> String {
    format!("Bearer error=\"insufficient_scope\", scope=\"{}\"", scopes.join(" "))
}

/// `scheme://host[:port]` of a request URL, as the client addressed it: the
/// issuer and the metadata URLs are built from it. Lowercase, no default port.
pub fn origin(scheme: &str, authority: &str) -> String {
    let scheme = scheme.to_ascii_lowercase();
    let authority = authority.rsplit('@').next().unwrap_or(authority).to_ascii_lowercase();
    let default = if scheme == "https" {
        ":443"
    } else if scheme == "http" {
        ":80"
    } else {
        ""
    };
    let authority = match authority.strip_suffix(default) {
        Some(host) if !default.is_empty() => host.to_string(),
        _ => authority,
    };
    format!("{scheme}://{authority}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_401_names_the_resource_metadata_and_a_refused_token() {
        let base = "Bearer realm=\"jestha\", resource_metadata=\"https://api.example/.well-known/oauth-protected-resource\"";
        assert_eq!(unauthorized("https://api.example", Unauthorized { invalid_token: false }), base);
        assert_eq!(
            unauthorized("https://api.example", Unauthorized { invalid_token: true }),
            format!("{base}, error=\"invalid_token\"")
        );
    }

    #[test]
    fn a_403_lists_the_scopes_that_would_pass() {
        assert_eq!(insufficient_scope(&["write:jes"]), "Bearer error=\"insufficient_scope\", scope=\"write:jes\"");
        assert_eq!(
            insufficient_scope(&["write:jes", "write:jesclip"]),
            "Bearer error=\"insufficient_scope\", scope=\"write:jes write:jesclip\""
        );
    }

    #[test]
    fn the_origin_is_lowercase_without_a_default_port() {
        assert_eq!(origin("https", "API.Example"), "https://api.example");
        assert_eq!(origin("https", "api.example:443"), "https://api.example");
        assert_eq!(origin("http", "127.0.0.1:8787"), "http://127.0.0.1:8787");
        assert_eq!(origin("http", "127.0.0.1:80"), "http://127.0.0.1");
        assert_eq!(origin("https", "api.example:8443"), "https://api.example:8443");
    }
}
