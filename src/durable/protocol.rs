//! The JSON protocol between the Worker and the `Gate` Durable Object. Pure
//! types, shared by both sides.
//!
//! Enums use serde's default, external tagging (`{"authorize": {…}}`), never
//! `#[serde(tag = …)]`: internally tagged enums deserialize through serde's
//! buffering `Content` machinery, which cost 13.5 KB of the gzipped wasm. The
//! protocol is private to one deployment, so its shape is ours to choose.

use serde::{Deserialize, Serialize};

use crate::auth::decide::{CredentialKind, Denial, Need};
use crate::domain::limits::Standings;

#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum GateRequest {
    /// Check one request of a credential and count it if allowed.
    #[serde(rename_all = "camelCase")]
    Authorize { kind: CredentialKind, hash: String, ip: Option<String>, need: Need },
    /// Reload the credential's record (and account profile) from D1, keeping
    /// counters; a revocation already seen is kept.
    #[serde(rename_all = "camelCase")]
    Refresh { kind: CredentialKind, hash: String },
    /// Mark the credential revoked, permanently, before D1 records it.
    #[serde(rename_all = "camelCase")]
    Revoke { kind: CredentialKind, hash: String },
    /// The key's live usage by day (what has not reached D1 yet included).
    #[serde(rename_all = "camelCase")]
    Usage { kind: CredentialKind, hash: String },
    /// Benchmark floor: increment one stored counter (BENCH_ROUTES only).
    BenchIncrement,
    /// Failure throttle of logins and `currentPassword` checks (see `ThrottleAction`).
    #[serde(rename_all = "camelCase")]
    Throttle { action: ThrottleAction, limit: u32, window_secs: i64 },
}

pub use crate::domain::limits::ThrottleAction;

/// Who the credential is, once it is known valid.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Identity {
    pub kind: CredentialKind,
    pub id: String,
    pub user_id: String,
    pub label: String,
    pub scopes: u8,
    #[serde(default)]
    pub profile: Option<crate::auth::decide::Profile>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AuthorizeReply {
    #[serde(default)]
    pub denial: Option<Denial>,
    #[serde(default)]
    pub identity: Option<Identity>,
    #[serde(default)]
    pub standings: Option<Standings>,
    /// The key's `last_used_at` is over a minute old: refresh it (off the hot path).
    #[serde(default)]
    pub touch: bool,
    /// Owner notices this request triggered (each at most once per period).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub notices: Vec<Notice>,
}

/// Something the key's owner should hear about, raised by the Gate.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Notice {
    /// The daily quota reached `percent` (80 or 100) today.
    #[serde(rename_all = "camelCase")]
    QuotaThreshold { key_id: String, user_id: String, percent: u8, used: u32, quota: u32 },
    /// A canary key was presented (first time this hour).
    #[serde(rename_all = "camelCase")]
    CanaryUsed { key_id: String, user_id: String },
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct UsageReply {
    pub days: std::collections::BTreeMap<i64, crate::domain::usage::Outcomes>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ThrottleReply {
    pub allowed: bool,
    pub retry_after: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_round_trip_through_json() {
        let r = GateRequest::Authorize {
            kind: CredentialKind::Key,
            hash: "ab".into(),
            ip: Some("203.0.113.1".into()),
            need: Need { scopes: 3, ..Need::default() },
        };
        let s = serde_json::to_string(&r).unwrap();
        assert!(s.starts_with("{\"authorize\":{"), "{s}");
        let back: GateRequest = serde_json::from_str(&s).unwrap();
        assert!(matches!(back, GateRequest::Authorize { ref hash, .. } if hash == "ab"));
    }

    #[test]
    fn denials_and_notices_keep_their_payload() {
        let reply = AuthorizeReply {
            denial: Some(Denial::RateLimited { retry_after: 9 }),
            identity: None,
            standings: None,
            touch: false,
            notices: vec![
                Notice::CanaryUsed { key_id: "k".into(), user_id: "u".into() },
                Notice::QuotaThreshold { key_id: "k".into(), user_id: "u".into(), percent: 80, used: 8, quota: 10 },
            ],
        };
        let s = serde_json::to_string(&reply).unwrap();
        let back: AuthorizeReply = serde_json::from_str(&s).unwrap();
        assert_eq!(back, reply);
        for d in [Denial::Unknown, Denial::NoneOfScopes { any: 3 }, Denial::InsufficientScope { missing: 1 }] {
            let back: Denial = serde_json::from_str(&serde_json::to_string(&d).unwrap()).unwrap();
            assert_eq!(back, d);
        }
    }
}
