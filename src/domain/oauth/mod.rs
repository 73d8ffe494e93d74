//! OAuth 2.1 rules (issue 22), pure: PKCE S256 (RFC 7636), which redirect
//! URIs a client may register and when a requested one matches (RFC 8252
//! loopback, https, exact otherwise), the scopes a grant may carry, the
//! resource a token is for (RFC 8707), the device flow's user codes
//! (RFC 8628 §6.1), and the token endpoint's decisions for a refresh token
//! and a device-code poll. The endpoints that apply them are the account
//! Worker's (docs/design/oauth.md).

pub mod authorize;
pub mod cimd;
pub mod client;

use base64::Engine;
use sha2::{Digest, Sha256};

use crate::auth::scope::{Scope, ScopeSet};

/// RFC 7636 §4.1: 43 to 128 characters of `[A-Za-z0-9-._~]`.
pub fn verifier_well_formed(verifier: &str) -> bool {
    (43..=128).contains(&verifier.len()) && verifier.bytes().all(unreserved)
}

/// An S256 challenge is BASE64URL(SHA-256) without padding: 43 characters.
pub fn challenge_well_formed(challenge: &str) -> bool {
    challenge.len() == 43 && challenge.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// RFC 7636 §4.6, S256 only: `BASE64URL(SHA256(verifier)) == challenge`.
pub fn pkce_s256_matches(verifier: &str, challenge: &str) -> bool {
    verifier_well_formed(verifier)
        && base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes())) == challenge
}

fn unreserved(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~')
}

/// The longest redirect URI a client may register.
pub const MAX_REDIRECT_URI: usize = 2000;

/// A redirect URI split where matching needs it: the scheme, the host, the
/// port (as written), and the path with its query.
#[derive(Debug, PartialEq, Eq)]
struct Parts<'a> {
    https: bool,
    host: &'a str,
    port: &'a str,
    rest: &'a str,
}

fn parts(uri: &str) -> Option<Parts<'_>> {
    let (https, after) = match (uri.strip_prefix("https://"), uri.strip_prefix("http://")) {
        (Some(a), _) => (true, a),
        (None, Some(a)) => (false, a),
        _ => return None,
    };
    let end = after.find(['/', '?']).unwrap_or(after.len());
    let (authority, rest) = after.split_at(end);
    // An IPv6 literal keeps its colons inside the brackets.
    let (host, port) = match authority.rfind(':') {
        Some(i) if !authority[i..].contains(']') => (&authority[..i], &authority[i + 1..]),
        _ => (authority, ""),
    };
    Some(Parts { https, host, port, rest })
}

/// RFC 8252 §7.3 and §8.3: loopback redirects are plain http on an IP
/// literal; `localhost` is accepted as the MCP clients send it.
fn loopback(host: &str) -> bool {
    matches!(host, "127.0.0.1" | "[::1]" | "localhost")
}

/// Whether a client may register `uri` (API.md: https, or loopback http on
/// any port; RFC 8252 private-use schemes are refused). `Err` says why, for
/// `invalid_redirect_uri`'s description.
pub fn redirect_uri_allowed(uri: &str) -> Result<(), &'static str> {
    if uri.len() > MAX_REDIRECT_URI {
        return Err("redirect_uri is too long");
    }
    if uri.contains('#') {
        return Err("redirect_uri must not have a fragment");
    }
    if uri.bytes().any(|b| b <= b' ' || b == 0x7f) {
        return Err("redirect_uri must not contain spaces or control characters");
    }
    let p = parts(uri).ok_or("redirect_uri must be https, or http on a loopback address")?;
    if p.host.is_empty() || p.host.contains('@') {
        return Err("redirect_uri must name a host (and no user information)");
    }
    if !p.port.is_empty() && (p.port.len() > 5 || !p.port.bytes().all(|b| b.is_ascii_digit())) {
        return Err("redirect_uri has an invalid port");
    }
    if !p.https && !loopback(p.host) {
        return Err("redirect_uri must be https, or http on a loopback address");
    }
    Ok(())
}

/// Whether `requested` is one of `registered`: byte for byte, except that a
/// loopback redirect may name any port (RFC 8252 §7.3: native apps listen on
/// an ephemeral port). Nothing else is normalised, so no open redirect
/// hides behind a case or an encoding.
pub fn redirect_uri_matches<S: AsRef<str>>(registered: &[S], requested: &str) -> bool {
    registered.iter().any(|r| {
        let r = r.as_ref();
        if r == requested {
            return true;
        }
        match (parts(r), parts(requested)) {
            (Some(a), Some(b)) => {
                !a.https
                    && !b.https
                    && loopback(a.host)
                    && a.host == b.host
                    && a.rest == b.rest
                    && redirect_uri_allowed(requested).is_ok()
            }
            _ => false,
        }
    })
}

/// The scopes OAuth may grant: the catalog without `webhooks:manage`
/// (webhooks belong to keys).
pub fn grantable() -> ScopeSet {
    ScopeSet::of(&Scope::ALL.into_iter().filter(|s| *s != Scope::WebhooksManage).collect::<Vec<_>>())
}

/// What a `scope` parameter asks for: unknown names (and `webhooks:manage`)
/// are dropped (RFC 6749 §3.3; real connectors send names of their own);
/// absent, blank, or nothing left after dropping asks for every grantable
/// scope, which the person may then untick at consent.
pub fn requested_scopes(scope: Option<&str>) -> ScopeSet {
    let asked = ScopeSet::of(&scope.unwrap_or("").split_ascii_whitespace().filter_map(Scope::parse).collect::<Vec<_>>());
    let granted = ScopeSet::from_bits(asked.bits() & grantable().bits());
    if granted.is_empty() {
        grantable()
    } else {
        granted
    }
}

/// The scopes a refresh may carry (RFC 6749 §6): `None` (blank included)
/// keeps `held`; otherwise every name asked for must be held (`None` back:
/// `invalid_scope`) and the result is what was asked, never more than held.
/// Unlike [`requested_scopes`], nothing asked for ever widens to a default.
pub fn refresh_scopes(held: ScopeSet, scope: Option<&str>) -> Option<ScopeSet> {
    let asked: Vec<&str> = scope.unwrap_or("").split_ascii_whitespace().collect();
    if asked.is_empty() {
        return Some(held);
    }
    let names = held.names();
    if asked.iter().any(|n| !names.contains(n)) {
        return None;
    }
    let parsed = ScopeSet::of(&asked.iter().filter_map(|n| Scope::parse(n)).collect::<Vec<_>>());
    Some(ScopeSet::from_bits(parsed.bits() & held.bits()))
}

/// RFC 8707: a `resource` names this API: its origin or its MCP endpoint
/// (a trailing `/` tolerated). Absent is fine (the token is for the API).
pub fn resource_matches(resource: Option<&str>, origin: &str) -> bool {
    match resource {
        None => true,
        Some(r) => {
            let r = r.strip_suffix('/').unwrap_or(r);
            r == origin || r.strip_prefix(origin) == Some("/mcp")
        }
    }
}

/// RFC 8628 §6.1: user codes use consonants only, so no word is spelled and
/// no letter is mistaken for a digit.
pub const USER_CODE_ALPHABET: &[u8; 20] = b"BCDFGHJKLMNPQRSTVWXZ";
const USER_CODE_LEN: usize = 8;

/// A user code from 64 random bits, shown as `WDJB-MJHT` (20^8, about
/// 34.6 bits; the bias of taking digits of a u64 is below 2^-30).
pub fn user_code(random: u64) -> String {
    let mut n = random;
    let mut out = String::with_capacity(USER_CODE_LEN + 1);
    for i in 0..USER_CODE_LEN {
        if i == USER_CODE_LEN / 2 {
            out.push('-');
        }
        out.push(USER_CODE_ALPHABET[(n % 20) as usize] as char);
        n /= 20;
    }
    out
}

/// What a person typed, as the stored form (`WDJBMJHT`): case-insensitive,
/// dashes and spaces ignored. `None` when it cannot be a user code.
pub fn normalize_user_code(typed: &str) -> Option<String> {
    let code: String = typed.chars().filter(|c| *c != '-' && !c.is_whitespace()).map(|c| c.to_ascii_uppercase()).collect();
    (code.len() == USER_CODE_LEN && code.bytes().all(|b| USER_CODE_ALPHABET.contains(&b))).then_some(code)
}

/// Where a presented refresh token stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RefreshState {
    /// The newest of its grant, unexpired.
    Current,
    /// Already exchanged for a newer one.
    Rotated,
    Expired,
    /// Its grant was revoked.
    Revoked,
}

/// What the token endpoint does with a refresh token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RefreshOutcome {
    /// Issue a new access token and a new refresh token; retire this one.
    Rotate,
    /// A rotated token came back: someone holds a copy. Revoke the whole
    /// grant (OAuth 2.1 §4.3.1, refresh token reuse detection).
    RevokeGrant,
    /// `invalid_grant`, nothing else changes.
    Refuse,
}

/// The refresh decision; `same_client` is whether the caller's `client_id`
/// is the one the token was issued to (a token is bound to its client).
pub fn refresh(state: RefreshState, same_client: bool) -> RefreshOutcome {
    match (state, same_client) {
        (_, false) => RefreshOutcome::Refuse,
        (RefreshState::Current, true) => RefreshOutcome::Rotate,
        (RefreshState::Rotated, true) => RefreshOutcome::RevokeGrant,
        (RefreshState::Expired | RefreshState::Revoked, true) => RefreshOutcome::Refuse,
    }
}

/// Where a device authorization stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeviceState {
    Pending,
    Approved,
    Denied,
    /// Tokens were already issued for it.
    Used,
}

/// RFC 8628 §3.5: what a poll of the token endpoint answers. `Ok` issues
/// tokens; `Err` is the `error` code. `last_poll_ms` is the previous poll's
/// time; polling faster than `interval_s` is `slow_down` (the client then
/// adds 5 s to its interval).
pub fn device_poll(
    state: DeviceState,
    now_ms: i64,
    expires_at_ms: i64,
    last_poll_ms: Option<i64>,
    interval_s: i64,
) -> Result<(), &'static str> {
    if now_ms >= expires_at_ms {
        return Err("expired_token");
    }
    match state {
        DeviceState::Denied => Err("access_denied"),
        DeviceState::Used => Err("invalid_grant"),
        DeviceState::Approved => Ok(()),
        DeviceState::Pending if last_poll_ms.is_some_and(|t| now_ms - t < interval_s * 1000) => Err("slow_down"),
        DeviceState::Pending => Err("authorization_pending"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pkce_s256_takes_rfc_7636_appendix_b() {
        let verifier = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
        let challenge = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";
        assert!(challenge_well_formed(challenge));
        assert!(pkce_s256_matches(verifier, challenge));
        assert!(!pkce_s256_matches(verifier, "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cN"));
        // The plain method (verifier == challenge) is not S256.
        assert!(!pkce_s256_matches(challenge, challenge));
        // A verifier outside the grammar never matches, even if its hash would.
        assert!(!verifier_well_formed("short"));
        assert!(!verifier_well_formed(&"a".repeat(129)));
        assert!(!verifier_well_formed(&format!("{}+", "a".repeat(43))));
        assert!(verifier_well_formed(&"a-._~".repeat(9)));
        assert!(!challenge_well_formed("E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM="));
    }

    #[test]
    fn a_refresh_narrows_or_keeps_its_scopes_and_never_widens_them() {
        let held = ScopeSet::of(&[Scope::ReadComment]);
        // Blank is absent: the held scopes, not every grantable one.
        for blank in [None, Some(""), Some(" "), Some("\t \n")] {
            assert_eq!(refresh_scopes(held, blank), Some(held), "{blank:?}");
        }
        assert_eq!(refresh_scopes(ScopeSet::of(&[]), Some(" ")), Some(ScopeSet::of(&[])));
        assert_eq!(refresh_scopes(held, Some("read:comment")), Some(held));
        assert_eq!(refresh_scopes(held, Some("read:comment write:jes")), None);
        assert_eq!(refresh_scopes(held, Some("nonsense")), None, "unknown names are not held");
        let two = ScopeSet::of(&[Scope::WriteJes, Scope::ReadComment]);
        assert_eq!(refresh_scopes(two, Some(" read:comment ")), Some(held));
    }

    #[test]
    fn clients_register_https_or_loopback_redirects_only() {
        for ok in [
            "https://claude.ai/api/mcp/auth_callback",
            "https://app.example/cb?x=1",
            "http://127.0.0.1:33418/callback",
            "http://[::1]:8080/cb",
            "http://localhost/cb",
        ] {
            assert_eq!(redirect_uri_allowed(ok), Ok(()), "{ok}");
        }
        for bad in [
            "http://app.example/cb",
            "com.example.app:/cb",
            "javascript:alert(1)",
            "https://app.example/cb#frag",
            "https:///cb",
            "https://user@app.example/cb",
            "https://app.example:99999x/cb",
            "https://app.example/c b",
            "http://127.0.0.1.evil.example/cb",
            "http://localhost.evil.example/cb",
            "",
        ] {
            assert!(redirect_uri_allowed(bad).is_err(), "{bad}");
        }
        assert!(redirect_uri_allowed(&format!("https://a.example/{}", "x".repeat(2000))).is_err());
    }

    #[test]
    fn redirects_match_exactly_but_loopback_ports_vary() {
        let reg = ["https://app.example/cb", "http://127.0.0.1/callback", "http://[::1]:9000/cb"];
        assert!(redirect_uri_matches(&reg, "https://app.example/cb"));
        assert!(!redirect_uri_matches(&reg, "https://app.example/cb/"));
        assert!(!redirect_uri_matches(&reg, "https://APP.example/cb"));
        assert!(!redirect_uri_matches(&reg, "https://app.example:443/cb"));
        assert!(!redirect_uri_matches(&reg, "https://app.example/cb?next=https://evil.example"));
        assert!(redirect_uri_matches(&reg, "http://127.0.0.1:51234/callback"));
        assert!(redirect_uri_matches(&reg, "http://127.0.0.1/callback"));
        assert!(redirect_uri_matches(&reg, "http://[::1]:1234/cb"));
        assert!(!redirect_uri_matches(&reg, "http://127.0.0.1:51234/other"));
        assert!(!redirect_uri_matches(&reg, "http://localhost:51234/callback"));
        assert!(!redirect_uri_matches(&reg, "http://127.0.0.1:5x/callback"));
        // A port is the only thing a loopback redirect may change; an https one never.
        assert!(!redirect_uri_matches(&["https://app.example:8443/cb"], "https://app.example:9443/cb"));
        assert!(!redirect_uri_matches::<&str>(&[], "https://app.example/cb"));
    }

    #[test]
    fn scopes_drop_unknown_names_and_webhooks() {
        let all = requested_scopes(None);
        assert_eq!(all, grantable());
        assert_eq!(all.names().len(), 5);
        assert!(!all.contains(Scope::WebhooksManage));
        assert_eq!(requested_scopes(Some("  ")), grantable());
        let some = requested_scopes(Some("read:comment bogus webhooks:manage write:jes"));
        assert_eq!(some.names(), ["write:jes", "read:comment"]);
        // Nothing grantable left: the whole catalog, for the person to narrow.
        assert_eq!(requested_scopes(Some("webhooks:manage")), grantable());
        assert_eq!(requested_scopes(Some("claudeai")), grantable());
    }

    #[test]
    fn resources_name_this_api_or_its_mcp_endpoint() {
        let o = "https://api.example";
        for ok in [None, Some("https://api.example"), Some("https://api.example/"), Some("https://api.example/mcp")] {
            assert!(resource_matches(ok, o), "{ok:?}");
        }
        for bad in ["https://api.example.evil", "https://other.example/mcp", "https://api.example/mcpx", ""] {
            assert!(!resource_matches(Some(bad), o), "{bad}");
        }
    }

    #[test]
    fn user_codes_are_typed_back_forgivingly() {
        let code = user_code(0x0123_4567_89ab_cdef);
        assert_eq!(code.len(), 9);
        assert_eq!(&code[4..5], "-");
        let stored = normalize_user_code(&code).unwrap();
        assert_eq!(stored, code.replace('-', ""));
        assert_eq!(normalize_user_code(&format!(" {} ", code.to_lowercase().replace('-', " "))), Some(stored));
        assert_eq!(user_code(0), "BBBB-BBBB");
        assert_ne!(user_code(1), user_code(2));
        for bad in ["", "BCDF-GHJ", "BCDF-GHJKL", "ABCD-EFGH", "BCDF-GHJ1"] {
            assert_eq!(normalize_user_code(bad), None, "{bad}");
        }
    }

    #[test]
    fn a_reused_refresh_token_revokes_its_grant() {
        use RefreshOutcome::*;
        use RefreshState::*;
        assert_eq!(refresh(Current, true), Rotate);
        assert_eq!(refresh(Rotated, true), RevokeGrant);
        assert_eq!(refresh(Expired, true), Refuse);
        assert_eq!(refresh(Revoked, true), Refuse);
        // Another client holding the token learns nothing and revokes nothing.
        for s in [Current, Rotated, Expired, Revoked] {
            assert_eq!(refresh(s, false), Refuse);
        }
    }

    #[test]
    fn device_polls_follow_rfc_8628() {
        use DeviceState::*;
        let (now, exp) = (100_000, 200_000);
        assert_eq!(device_poll(Pending, now, exp, None, 5), Err("authorization_pending"));
        assert_eq!(device_poll(Pending, now, exp, Some(now - 5_000), 5), Err("authorization_pending"));
        assert_eq!(device_poll(Pending, now, exp, Some(now - 4_999), 5), Err("slow_down"));
        assert_eq!(device_poll(Approved, now, exp, Some(now - 1), 5), Ok(()));
        assert_eq!(device_poll(Denied, now, exp, None, 5), Err("access_denied"));
        assert_eq!(device_poll(Used, now, exp, None, 5), Err("invalid_grant"));
        for s in [Pending, Approved, Denied, Used] {
            assert_eq!(device_poll(s, exp, exp, None, 5), Err("expired_token"));
        }
    }
}
