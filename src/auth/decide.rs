//! The authorization decision, in the order API.md fixes: (format and hash lookup
//! happen before this) revoked → expired → IP allowlist → session-only route →
//! scope → rate limit → daily quota. Pure; run inside the credential's Durable
//! Object so a request costs one round trip.

use std::net::IpAddr;

use ipnet::IpNet;
use serde::{Deserialize, Serialize};

use super::scope::ScopeSet;
use crate::domain::limits::{Counters, LimitOutcome, Policy, Standings};
use crate::domain::usage::Outcome;
use crate::error::ApiError;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CredentialKind {
    Key,
    Session,
    /// An OAuth grant (its access tokens `jes_oat_…`): checked, scoped,
    /// limited and counted as an API key is; never a session.
    #[serde(rename = "oauth")]
    OAuth,
}

/// A live OAuth access token of a grant, as the grant's Gate holds it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LiveToken {
    /// SHA-256 hex of the token.
    pub hash: String,
    /// Unix milliseconds.
    pub expires_at: i64,
    /// What this token may do (a refresh may narrow it below the grant's).
    pub scopes: u8,
}

/// The account a credential acts for, cached with it so `GET /api/auth/me`
/// needs no D1 read. Account changes refresh every credential's copy.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Profile {
    pub username: String,
    pub email: String,
    pub display_name: String,
    /// Unix milliseconds.
    pub created_at: i64,
}

/// What the Durable Object knows of a live credential (loaded once from D1).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Credential {
    pub kind: CredentialKind,
    /// Key id or session id.
    pub id: String,
    pub user_id: String,
    /// Key label (empty for sessions): the `via` chip on what the key creates.
    #[serde(default)]
    pub label: String,
    #[serde(default)]
    pub scopes: u8,
    /// Unix milliseconds; `None` = never.
    #[serde(default)]
    pub expires_at: Option<i64>,
    #[serde(default)]
    pub allowlist: Vec<IpNet>,
    #[serde(default)]
    pub revoked: bool,
    #[serde(default)]
    pub canary: bool,
    #[serde(default)]
    pub profile: Option<Profile>,
    /// OAuth: every live access token of the grant (a hash outside is unknown).
    #[serde(default)]
    pub tokens: Vec<LiveToken>,
    /// An operator suspended the account: keys are refused until it is
    /// unsuspended (sessions and grants are revoked for good when it happens).
    #[serde(default)]
    pub suspended: bool,
}

impl Credential {
    /// The grant as one of its access tokens presents it: that token's scopes
    /// and expiry, the grant's revocation and account. `None`: not a live
    /// token of this grant (unknown, or revoked on its own).
    pub fn as_token(&self, hash: &str) -> Option<Credential> {
        let t = self.tokens.iter().find(|t| t.hash == hash)?;
        Some(Credential { scopes: t.scopes, expires_at: Some(t.expires_at), tokens: vec![], ..self.clone() })
    }
}

/// What a route asks of its caller (see `app::routes()`). Every request that
/// passes these checks is counted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Need {
    /// API keys are refused whatever their scopes.
    pub session_only: bool,
    /// Scopes an API key must hold (sessions hold every scope).
    pub scopes: u8,
    /// Sessions are refused (key introspection, MCP).
    #[serde(default)]
    pub key_only: bool,
    /// One of `scopes` is enough (e.g. media upload: write:jes or write:jesclip).
    #[serde(default)]
    pub any: bool,
    /// OAuth tokens are refused too (key introspection: a key's own route).
    #[serde(default)]
    pub no_oauth: bool,
}

impl Default for Need {
    /// Any valid credential, counted.
    fn default() -> Self {
        Need { session_only: false, scopes: 0, key_only: false, any: false, no_oauth: false }
    }
}

/// Why a credential was refused. Serialized in the Durable Object protocol.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Denial {
    /// Unknown hash, or a canary key (answered identically).
    Unknown,
    Revoked,
    Expired,
    IpNotAllowed,
    SessionOnly,
    KeyOnly,
    InsufficientScope {
        missing: u8,
    },
    /// The key holds none of a route's alternative scopes.
    NoneOfScopes {
        any: u8,
    },
    RateLimited {
        retry_after: u64,
    },
    QuotaExceeded {
        retry_after: u64,
    },
    /// The account is suspended (appended: the protocol is positional).
    Suspended,
}

impl Denial {
    pub fn into_error(self, kind: CredentialKind) -> ApiError {
        match (self, kind) {
            (Denial::Unknown | Denial::Revoked | Denial::Expired, CredentialKind::Session) => ApiError::InvalidSession,
            (Denial::Unknown, CredentialKind::Key) => ApiError::InvalidApiKey,
            (Denial::Revoked, CredentialKind::Key) => ApiError::ApiKeyRevoked,
            (Denial::Expired, CredentialKind::Key) => ApiError::ApiKeyExpired,
            (Denial::Unknown | Denial::Revoked | Denial::Expired, CredentialKind::OAuth) => ApiError::InvalidToken,
            (Denial::Suspended, CredentialKind::Key) => ApiError::AccountSuspended,
            (Denial::Suspended, CredentialKind::Session) => ApiError::InvalidSession,
            (Denial::Suspended, CredentialKind::OAuth) => ApiError::InvalidToken,
            (Denial::IpNotAllowed, _) => ApiError::IpNotAllowed,
            (Denial::SessionOnly, _) => ApiError::SessionOnly,
            (Denial::KeyOnly, CredentialKind::OAuth) => ApiError::Forbidden("This endpoint is for API keys only".into()),
            (Denial::KeyOnly, _) => ApiError::Forbidden("This endpoint is for API keys, not sessions".into()),
            (Denial::InsufficientScope { missing }, _) => ApiError::InsufficientScope(ScopeSet::from_bits(missing).names()),
            (Denial::NoneOfScopes { any }, _) => ApiError::InsufficientAnyScope(ScopeSet::from_bits(any).names()),
            (Denial::RateLimited { retry_after }, _) => ApiError::RateLimited { retry_after },
            (Denial::QuotaExceeded { retry_after }, _) => ApiError::QuotaExceeded { retry_after },
        }
    }

    /// How this refusal shows in a key's usage, if it counts there at all.
    pub fn outcome(&self) -> Option<Outcome> {
        match self {
            Denial::IpNotAllowed => Some(Outcome::IpNotAllowed),
            Denial::SessionOnly => Some(Outcome::SessionOnly),
            Denial::InsufficientScope { .. } | Denial::NoneOfScopes { .. } => Some(Outcome::InsufficientScope),
            Denial::RateLimited { .. } => Some(Outcome::RateLimited),
            Denial::QuotaExceeded { .. } => Some(Outcome::QuotaExceeded),
            Denial::Unknown | Denial::Revoked | Denial::Expired | Denial::KeyOnly | Denial::Suspended => None,
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Decision {
    pub denial: Option<Denial>,
    /// Present once the credential is known valid (after the IP check).
    pub standings: Option<Standings>,
}

/// Decides one request. Mutates `counters` only when the request is allowed.
pub fn decide(
    cred: &Credential,
    need: Need,
    ip: Option<IpAddr>,
    now_ms: i64,
    policy: &Policy,
    counters: &mut Counters,
) -> Decision {
    let deny = |d: Denial| Decision { denial: Some(d), standings: None };
    if cred.canary {
        return deny(Denial::Unknown);
    }
    if cred.revoked {
        return deny(Denial::Revoked);
    }
    if matches!(cred.expires_at, Some(exp) if now_ms >= exp) {
        return deny(Denial::Expired);
    }
    if cred.suspended {
        return deny(Denial::Suspended);
    }
    if !cred.allowlist.is_empty() {
        let allowed = ip.is_some_and(|ip| cred.allowlist.iter().any(|net| net.contains(&canonical(ip))));
        if !allowed {
            return deny(Denial::IpNotAllowed);
        }
    }
    let now = now_ms.div_euclid(1000);
    if let Some(denial) = route_denial(cred.kind, cred.scopes, need) {
        return Decision { denial: Some(denial), standings: Some(counters.standings(policy, now)) };
    }
    let (outcome, standings) = counters.take(policy, now);
    let denial = match outcome {
        LimitOutcome::Allowed => None,
        LimitOutcome::RateLimited { retry_after } => Some(Denial::RateLimited { retry_after }),
        LimitOutcome::QuotaExceeded { retry_after } => Some(Denial::QuotaExceeded { retry_after }),
    };
    Decision { denial, standings: Some(standings) }
}

/// The checks that depend only on who the credential is and what the route
/// needs: key-only, session-only, then scopes (API.md's order).
/// An OAuth token goes through the key's checks (API.md: "the same scopes,
/// limits and session-only surface as an API key"): every kind has its own
/// arm, so a new kind can never fall into a session's powers.
pub fn route_denial(kind: CredentialKind, scopes: u8, need: Need) -> Option<Denial> {
    match kind {
        CredentialKind::Session if need.key_only => Some(Denial::KeyOnly),
        CredentialKind::Session => None,
        CredentialKind::Key | CredentialKind::OAuth if need.session_only => Some(Denial::SessionOnly),
        CredentialKind::OAuth if need.no_oauth => Some(Denial::KeyOnly),
        CredentialKind::Key | CredentialKind::OAuth if need.any => {
            let any = ScopeSet::from_bits(need.scopes).bits();
            (any != 0 && any & scopes == 0).then_some(Denial::NoneOfScopes { any })
        }
        CredentialKind::Key | CredentialKind::OAuth => {
            let missing = ScopeSet::from_bits(need.scopes).bits() & !scopes;
            (missing != 0).then_some(Denial::InsufficientScope { missing })
        }
    }
}

/// IPv4-mapped IPv6 addresses (`::ffff:203.0.113.7`) are matched as IPv4.
pub fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(IpAddr::V6(v6)),
        v4 => v4,
    }
}

/// Parses an allowlist: at most `max` CIDR entries, IPv4 or IPv6. A bare address
/// is taken as a single-host network. Errors name the offending entry.
pub fn parse_allowlist(entries: &[String], max: usize) -> Result<Vec<IpNet>, String> {
    if entries.len() > max {
        return Err(format!("ipAllowlist: at most {max} entries"));
    }
    entries
        .iter()
        .enumerate()
        .map(|(i, raw)| {
            let s = raw.trim();
            s.parse::<IpNet>().or_else(|_| s.parse::<IpAddr>().map(IpNet::from)).map(|n| n.trunc()).map_err(|_| {
                let shown: String = raw.chars().filter(|c| !c.is_control()).take(64).collect();
                format!("ipAllowlist[{i}]: '{shown}' is not a valid CIDR")
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::scope::{Scope, ScopeSet};

    const POLICY: Policy = Policy { per_window: 2, window_secs: 60, per_day: Some(100) };
    const NOW: i64 = 1_700_000_000_000;

    fn key(scopes: &[Scope]) -> Credential {
        Credential {
            kind: CredentialKind::Key,
            id: "k1".into(),
            user_id: "u1".into(),
            label: "bot".into(),
            scopes: ScopeSet::of(scopes).bits(),
            expires_at: None,
            allowlist: vec![],
            revoked: false,
            canary: false,
            profile: None,
            tokens: vec![],
            suspended: false,
        }
    }

    fn need(scopes: &[Scope]) -> Need {
        Need { scopes: ScopeSet::of(scopes).bits(), ..Need::default() }
    }

    fn run(c: &Credential, n: Need, ip: Option<&str>) -> (Option<Denial>, Counters) {
        let mut ctr = Counters::default();
        let d = decide(c, n, ip.map(|s| s.parse().unwrap()), NOW, &POLICY, &mut ctr);
        (d.denial, ctr)
    }

    #[test]
    fn checks_run_in_the_documented_order() {
        let mut c = key(&[]);
        c.revoked = true;
        c.expires_at = Some(NOW - 1);
        c.allowlist = parse_allowlist(&["10.0.0.0/8".into()], 10).unwrap();
        assert_eq!(run(&c, need(&[Scope::WriteJes]), Some("1.2.3.4")).0, Some(Denial::Revoked));
        c.revoked = false;
        assert_eq!(run(&c, need(&[Scope::WriteJes]), Some("1.2.3.4")).0, Some(Denial::Expired));
        c.expires_at = Some(NOW + 1);
        assert_eq!(run(&c, need(&[Scope::WriteJes]), Some("1.2.3.4")).0, Some(Denial::IpNotAllowed));
        let sess_only = Need { session_only: true, ..need(&[Scope::WriteJes]) };
        assert_eq!(run(&c, sess_only, Some("10.1.2.3")).0, Some(Denial::SessionOnly));
        let missing = ScopeSet::of(&[Scope::WriteJes]).bits();
        assert_eq!(run(&c, need(&[Scope::WriteJes]), Some("10.1.2.3")).0, Some(Denial::InsufficientScope { missing }));
    }

    #[test]
    fn one_of_alternative_scopes_is_enough() {
        let either = Need { any: true, ..need(&[Scope::WriteJes, Scope::WriteJesclip]) };
        let bits = |s: &[Scope]| ScopeSet::of(s).bits();
        assert_eq!(route_denial(CredentialKind::Key, bits(&[Scope::WriteJesclip]), either), None);
        assert_eq!(route_denial(CredentialKind::Key, bits(&[Scope::WriteJes]), either), None);
        assert_eq!(
            route_denial(CredentialKind::Key, bits(&[Scope::ReadComment]), either),
            Some(Denial::NoneOfScopes { any: either.scopes })
        );
        assert_eq!(route_denial(CredentialKind::Session, 0, either), None);
        let e = Denial::NoneOfScopes { any: either.scopes }.into_error(CredentialKind::Key);
        assert_eq!(e.code(), "insufficient_scope");
        assert_eq!(e.message(), "Token missing scope(s): write:jes or write:jesclip");
    }

    #[test]
    fn refused_requests_are_not_counted() {
        let c = key(&[]);
        let (d, ctr) = run(&c, need(&[Scope::ReadComment]), None);
        assert!(matches!(d, Some(Denial::InsufficientScope { .. })));
        assert_eq!(ctr.minute.count, 0);
    }

    #[test]
    fn sessions_pass_every_scope_check_but_are_limited() {
        let mut s = key(&[]);
        s.kind = CredentialKind::Session;
        let mut ctr = Counters::default();
        let n = need(&[Scope::WebhooksManage, Scope::WriteJes]);
        assert_eq!(decide(&s, n, None, NOW, &POLICY, &mut ctr).denial, None);
        assert_eq!(decide(&s, n, None, NOW, &POLICY, &mut ctr).denial, None);
        assert!(matches!(decide(&s, n, None, NOW, &POLICY, &mut ctr).denial, Some(Denial::RateLimited { .. })));
    }

    #[test]
    fn expiry_is_exclusive_at_the_instant() {
        let mut c = key(&[]);
        c.expires_at = Some(NOW);
        assert_eq!(run(&c, need(&[]), None).0, Some(Denial::Expired));
        c.expires_at = Some(NOW + 1);
        assert_eq!(run(&c, need(&[]), None).0, None);
    }

    #[test]
    fn allowlists_match_v4_v6_and_mapped_addresses() {
        let mut c = key(&[]);
        c.allowlist = parse_allowlist(&["203.0.113.0/24".into(), "2001:db8::/32".into()], 10).unwrap();
        assert_eq!(run(&c, need(&[]), Some("203.0.113.9")).0, None);
        assert_eq!(run(&c, need(&[]), Some("::ffff:203.0.113.9")).0, None);
        assert_eq!(run(&c, need(&[]), Some("2001:db8:1::5")).0, None);
        assert_eq!(run(&c, need(&[]), Some("203.0.114.1")).0, Some(Denial::IpNotAllowed));
        assert_eq!(run(&c, need(&[]), Some("2001:db9::1")).0, Some(Denial::IpNotAllowed));
        assert_eq!(run(&c, need(&[]), None).0, Some(Denial::IpNotAllowed));
    }

    #[test]
    fn key_only_routes_refuse_sessions_but_not_keys() {
        let n = Need { key_only: true, ..need(&[]) };
        assert_eq!(run(&key(&[]), n, None).0, None);
        let mut s = key(&[]);
        s.kind = CredentialKind::Session;
        assert_eq!(run(&s, n, None).0, Some(Denial::KeyOnly));
        assert_eq!(Denial::KeyOnly.outcome(), None);
        assert_eq!(Denial::SessionOnly.outcome(), Some(Outcome::SessionOnly));
    }

    #[test]
    fn an_oauth_token_is_checked_as_a_key_with_its_own_scopes_and_expiry() {
        let mut grant = key(&[Scope::WriteJes, Scope::ReadComment]);
        grant.kind = CredentialKind::OAuth;
        let narrow = ScopeSet::of(&[Scope::ReadComment]).bits();
        grant.tokens = vec![
            LiveToken { hash: "live".into(), expires_at: NOW + 1000, scopes: narrow },
            LiveToken { hash: "old".into(), expires_at: NOW, scopes: narrow },
        ];
        assert_eq!(grant.as_token("unknown"), None);
        let t = grant.as_token("live").unwrap();
        assert_eq!(run(&t, need(&[Scope::ReadComment]), None).0, None);
        let missing = ScopeSet::of(&[Scope::WriteJes]).bits();
        assert_eq!(run(&t, need(&[Scope::WriteJes]), None).0, Some(Denial::InsufficientScope { missing }));
        assert_eq!(run(&grant.as_token("old").unwrap(), need(&[]), None).0, Some(Denial::Expired));
        let mut revoked = grant.clone();
        revoked.revoked = true;
        assert_eq!(run(&revoked.as_token("live").unwrap(), need(&[]), None).0, Some(Denial::Revoked));
        // The session-only surface and a key's own route are refused; MCP (key_only) is not.
        let session_only = Need { session_only: true, ..need(&[]) };
        assert_eq!(run(&t, session_only, None).0, Some(Denial::SessionOnly));
        assert_eq!(run(&t, Need { key_only: true, no_oauth: true, ..need(&[]) }, None).0, Some(Denial::KeyOnly));
        assert_eq!(run(&t, Need { key_only: true, ..need(&[]) }, None).0, None);
        for d in [Denial::Unknown, Denial::Revoked, Denial::Expired] {
            assert_eq!(d.into_error(CredentialKind::OAuth), ApiError::InvalidToken);
        }
        assert_eq!(Denial::KeyOnly.into_error(CredentialKind::OAuth).code(), "forbidden");
    }

    #[test]
    fn canary_keys_are_answered_as_unknown() {
        let mut c = key(&[Scope::WriteJes]);
        c.canary = true;
        assert_eq!(run(&c, need(&[]), None).0, Some(Denial::Unknown));
        assert_eq!(Denial::Unknown.into_error(CredentialKind::Key), ApiError::InvalidApiKey);
    }

    #[test]
    fn a_suspended_accounts_key_is_refused_after_expiry_and_before_the_allowlist() {
        let mut c = key(&[Scope::WriteJes]);
        c.suspended = true;
        c.allowlist = parse_allowlist(&["10.0.0.0/8".into()], 10).unwrap();
        assert_eq!(run(&c, need(&[]), Some("1.2.3.4")).0, Some(Denial::Suspended));
        c.expires_at = Some(NOW - 1);
        assert_eq!(run(&c, need(&[]), Some("1.2.3.4")).0, Some(Denial::Expired));
        assert_eq!(Denial::Suspended.into_error(CredentialKind::Key), ApiError::AccountSuspended);
        assert_eq!(Denial::Suspended.into_error(CredentialKind::Session), ApiError::InvalidSession);
        assert_eq!(ApiError::AccountSuspended.status().as_u16(), 403);
    }

    #[test]
    fn bad_cidr_entries_are_named() {
        let e = parse_allowlist(&["10.0.0.0/8".into(), "10.0.0.0/33".into()], 10).unwrap_err();
        assert!(e.starts_with("ipAllowlist[1]"), "{e}");
        assert!(parse_allowlist(&vec!["10.0.0.1".to_string(); 3], 2).is_err());
        assert_eq!(parse_allowlist(&["10.1.2.3/8".into()], 2).unwrap()[0].to_string(), "10.0.0.0/8");
        assert_eq!(parse_allowlist(&["192.0.2.1".into()], 2).unwrap()[0].to_string(), "192.0.2.1/32");
    }
}
