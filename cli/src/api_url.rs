//! Which API to talk to, and which addresses a credential may be sent to.
//!
//! `--api` wins, then `JESTHA_API_URL` (clap reads both), then the API of the
//! last `jestha login`, then the local development server. Plain `http://` is
//! allowed only to this machine: a token sent in clear over a network is a
//! token given away.

use crate::failure::Failure;

/// `make dev`'s address.
pub const DEFAULT_API: &str = "http://127.0.0.1:8787";

/// The API base to use: the flag or variable, else the last login's, else the default.
pub fn resolve(given: Option<&str>, last_login: Option<&str>) -> Result<String, Failure> {
    normalize(given.or(last_login).unwrap_or(DEFAULT_API))
}

/// `scheme://authority` with no trailing slash; refuses anything a credential
/// should not be sent to.
pub fn normalize(url: &str) -> Result<String, Failure> {
    let url = url.trim().trim_end_matches('/');
    let bad = |why: &str| Failure::new("bad_api_url", format!("{url:?}: {why}"));
    let (scheme, rest) = url.split_once("://").ok_or_else(|| bad("expected http(s)://host[:port]"))?;
    let scheme = scheme.to_ascii_lowercase();
    if scheme != "https" && scheme != "http" {
        return Err(bad("expected http(s)://host[:port]"));
    }
    if rest.contains(['?', '#', '@']) || rest.is_empty() {
        return Err(bad("expected http(s)://host[:port][/path], with no user, query or fragment"));
    }
    let authority = rest.split('/').next().unwrap_or_default();
    let host = host_of(authority).ok_or_else(|| bad("no host"))?;
    if scheme == "http" && !is_loopback(host) {
        return Err(bad("plain http is allowed only to this machine (127.0.0.1, localhost, [::1]): use https"));
    }
    Ok(format!("{scheme}://{rest}"))
}

/// Whether a credential may go to `url` (an OAuth endpoint a server named):
/// https anywhere, http to this machine only.
pub fn may_carry_credentials(url: &str) -> bool {
    normalize(url).is_ok()
}

fn host_of(authority: &str) -> Option<&str> {
    let host = if let Some(v6) = authority.strip_prefix('[') {
        &authority[..v6.find(']')? + 2]
    } else {
        authority.rsplit_once(':').map_or(authority, |(h, _)| h)
    };
    (!host.is_empty()).then_some(host)
}

fn is_loopback(host: &str) -> bool {
    let h = host.to_ascii_lowercase();
    h == "localhost" || h == "[::1]" || h.parse::<std::net::Ipv4Addr>().is_ok_and(|ip| ip.is_loopback())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_flag_or_variable_wins_then_the_last_login_then_the_local_server() {
        assert_eq!(resolve(Some("https://api.example/"), Some("https://other.example")).unwrap(), "https://api.example");
        assert_eq!(resolve(None, Some("https://other.example")).unwrap(), "https://other.example");
        assert_eq!(resolve(None, None).unwrap(), "http://127.0.0.1:8787");
    }

    #[test]
    fn https_anywhere_and_a_path_prefix_are_kept() {
        assert_eq!(normalize("HTTPS://api.example:8443/jestha/").unwrap(), "https://api.example:8443/jestha");
        assert_eq!(normalize(" https://api.example ").unwrap(), "https://api.example");
    }

    #[test]
    fn plain_http_only_to_this_machine() {
        for ok in ["http://127.0.0.1:8787", "http://localhost:1", "http://[::1]:9000", "http://127.1.2.3"] {
            assert!(normalize(ok).is_ok(), "{ok}");
        }
        for bad in ["http://api.example", "http://10.0.0.1:8787", "http://127.0.0.1.evil.example"] {
            assert_eq!(normalize(bad).unwrap_err().code, "bad_api_url", "{bad}");
        }
        assert!(!may_carry_credentials("http://evil.example/oauth/token"));
        assert!(may_carry_credentials("https://auth.example/oauth/token"));
    }

    #[test]
    fn not_a_url_or_one_with_credentials_or_a_query_is_refused() {
        for bad in [
            "api.example",
            "ftp://api.example",
            "https://",
            "https://user:pw@api.example",
            "https://api.example/?x=1",
            "https://api.example#f",
        ] {
            assert_eq!(normalize(bad).unwrap_err().code, "bad_api_url", "{bad}");
        }
    }
}
