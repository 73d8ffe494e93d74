//! The protocol between the Worker and the `Gate` Durable Object. Pure types,
//! shared by both sides.
//!
//! Messages travel as postcard bytes, not JSON: the protocol is private to one
//! deployment, and a positional binary format needs no field-name matching, so
//! serde's code for it is a fraction of serde_json's (14 KB less gzipped wasm,
//! measured) and the hot path parses no JSON. Being positional, fields and
//! variants are only ever appended; `skip_serializing_if` must not be used on
//! these types (postcard cannot skip a field the reader expects).

use serde::{Deserialize, Serialize};

use crate::auth::decide::{CredentialKind, Denial, LiveToken, Need};
use crate::domain::limits::Standings;

/// Messages travel as postcard bytes, not JSON.
pub fn encode<T: Serialize>(v: &T) -> worker::Result<Vec<u8>> {
    postcard::to_allocvec(v).map_err(|e| worker::Error::RustError(format!("gate encode: {e}")))
}

pub fn decode<T: serde::de::DeserializeOwned>(b: &[u8]) -> worker::Result<T> {
    postcard::from_bytes(b).map_err(|e| worker::Error::RustError(format!("gate decode: {e}")))
}

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
    /// Check one request made with an OAuth access token (`hash`) against
    /// its grant's object (`grant:<grant_id>`), and count it if allowed.
    /// (For OAuth, `Revoke`, `Refresh` and `Usage` name the grant id as `hash`.)
    #[serde(rename_all = "camelCase")]
    AuthorizeToken { grant_id: String, hash: String, ip: Option<String>, need: Need },
    /// A new access token of the grant, told before D1 records it, so the
    /// grant's object always holds every live token.
    #[serde(rename_all = "camelCase")]
    GrantToken { grant_id: String, token: LiveToken },
    /// One access token of the grant revoked (RFC 7009), the grant left live.
    #[serde(rename_all = "camelCase")]
    RevokeToken { grant_id: String, hash: String },
    /// Sent to a fan-out object (`fanout:…`, holding no credential): make
    /// every call, itself or through children (`domain::fanout`), at once.
    /// Answers once all are done with how many Gates were told (a `u32`),
    /// or fails if any call did. Appended last: postcard is positional.
    #[serde(rename_all = "camelCase")]
    FanOut { name: String, calls: Vec<FanOutCall> },
}

/// One credential's Gate to tell something, in a `FanOut`: `subject` is
/// the token hash of a key or session, a grant's id for OAuth.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FanOutCall {
    pub kind: CredentialKind,
    pub subject: String,
    pub op: FanOutOp,
}

/// What a `FanOutCall` tells a Gate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum FanOutOp {
    /// `Revoke`: permanently.
    Revoke,
    /// `Refresh`: reload the record and profile, if cached.
    Refresh,
}

impl FanOutCall {
    /// The object to call and what to send it.
    pub fn message(&self) -> (String, GateRequest) {
        let (kind, hash) = (self.kind, self.subject.clone());
        let msg = match self.op {
            FanOutOp::Revoke => GateRequest::Revoke { kind, hash },
            FanOutOp::Refresh => GateRequest::Refresh { kind, hash },
        };
        (object_name(kind, &self.subject), msg)
    }
}

/// The Durable Object a credential's messages go to: a key's or a
/// session's is named by its token hash, a grant's by its id.
pub fn object_name(kind: CredentialKind, subject: &str) -> String {
    match kind {
        CredentialKind::Key | CredentialKind::Session => subject.to_string(),
        CredentialKind::OAuth => format!("grant:{subject}"),
    }
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
    #[serde(default)]
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
    /// A connected app's (grant's) daily quota reached `percent` today: a
    /// web notice `grant.quota_threshold`, not a webhook event.
    #[serde(rename_all = "camelCase")]
    GrantQuotaThreshold { grant_id: String, user_id: String, client_name: String, percent: u8, used: u32, quota: u32 },
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct UsageReply {
    pub days: crate::domain::usage::Days,
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
    fn requests_round_trip() {
        let r = GateRequest::Authorize {
            kind: CredentialKind::Key,
            hash: "ab".into(),
            ip: Some("203.0.113.1".into()),
            need: Need { scopes: 3, ..Need::default() },
        };
        let bytes = encode(&r).unwrap();
        assert_eq!(bytes[0], 0, "Authorize is variant 0");
        let back: GateRequest = decode(&bytes).unwrap();
        assert!(matches!(back, GateRequest::Authorize { ref hash, ref ip, need, .. }
            if hash == "ab" && ip.as_deref() == Some("203.0.113.1") && need.scopes == 3));
        let t: GateRequest =
            decode(&encode(&GateRequest::Throttle { action: ThrottleAction::Refund, limit: 5, window_secs: 900 }).unwrap())
                .unwrap();
        assert!(matches!(t, GateRequest::Throttle { action: ThrottleAction::Refund, limit: 5, window_secs: 900 }));
    }

    #[test]
    fn oauth_messages_are_appended_and_go_to_the_grants_object() {
        let token = LiveToken { hash: "h".into(), expires_at: 5, scopes: 9 };
        let m = GateRequest::GrantToken { grant_id: "g".into(), token: token.clone() };
        let bytes = encode(&m).unwrap();
        assert_eq!(bytes[0], 7, "appended after Throttle: no variant renumbered");
        assert!(matches!(decode(&bytes).unwrap(), GateRequest::GrantToken { token: t, .. } if t == token));
        assert_eq!(object_name(CredentialKind::OAuth, "01ABC"), "grant:01ABC");
        assert_eq!(object_name(CredentialKind::Key, "ab12"), "ab12");
        let kind: CredentialKind = decode(&encode(&CredentialKind::OAuth).unwrap()).unwrap();
        assert_eq!(kind, CredentialKind::OAuth);
        assert_eq!(encode(&CredentialKind::OAuth).unwrap(), [2]);
    }

    #[test]
    fn fan_outs_round_trip_and_name_their_calls() {
        let call = FanOutCall { kind: CredentialKind::Session, subject: "h1".into(), op: FanOutOp::Revoke };
        let msg = GateRequest::FanOut { name: "fanout:r1".into(), calls: vec![call.clone()] };
        let bytes = encode(&msg).unwrap();
        assert_eq!(bytes[0], 9, "appended after RevokeToken: no variant renumbered");
        let back: GateRequest = decode(&bytes).unwrap();
        assert!(
            matches!(back, GateRequest::FanOut { ref name, ref calls } if name == "fanout:r1" && calls == &vec![call.clone()])
        );
        let (name, m) = call.message();
        assert_eq!(name, "h1");
        assert!(matches!(m, GateRequest::Revoke { kind: CredentialKind::Session, ref hash } if hash == "h1"));
        let grant = FanOutCall { kind: CredentialKind::OAuth, subject: "g1".into(), op: FanOutOp::Refresh };
        let (name, m) = grant.message();
        assert_eq!(name, "grant:g1");
        assert!(matches!(m, GateRequest::Refresh { kind: CredentialKind::OAuth, ref hash } if hash == "g1"));
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        assert!(decode::<GateRequest>(&[]).is_err());
        assert!(decode::<GateRequest>(&[99]).is_err());
        assert!(decode::<AuthorizeReply>(b"{\"touch\":true}").is_err());
    }

    #[test]
    fn denials_and_notices_keep_their_payload() {
        let reply = AuthorizeReply {
            denial: Some(Denial::RateLimited { retry_after: 9 }),
            identity: None,
            standings: Some(Standings {
                minute: crate::domain::limits::Standing { limit: 60, remaining: 0, reset: 1_800_000_060, window: 60 },
                day: None,
            }),
            touch: true,
            notices: vec![
                Notice::CanaryUsed { key_id: "k".into(), user_id: "u".into() },
                Notice::QuotaThreshold { key_id: "k".into(), user_id: "u".into(), percent: 80, used: 8, quota: 10 },
            ],
        };
        let back: AuthorizeReply = decode(&encode(&reply).unwrap()).unwrap();
        assert_eq!(back, reply);
        for d in [Denial::Unknown, Denial::NoneOfScopes { any: 3 }, Denial::InsufficientScope { missing: 1 }] {
            let back: Denial = decode(&encode(&d).unwrap()).unwrap();
            assert_eq!(back, d);
        }
        let days = [(20_000, crate::domain::usage::Outcomes { allowed: 7, rate_limited: 1, ..Default::default() })]
            .into_iter()
            .collect();
        let usage = UsageReply { days };
        assert_eq!(decode::<UsageReply>(&encode(&usage).unwrap()).unwrap(), usage);
    }
}
