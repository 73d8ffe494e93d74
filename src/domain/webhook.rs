//! Webhook rules, pure: Standard Webhooks signing, endpoint URL checks against
//! SSRF, which key scopes may see which event types, the retry schedule, how
//! an attempt's outcome is judged, when a failing endpoint is disabled, the
//! stored form of signing secrets, and the queue messages. No bindings here:
//! time, randomness and configuration come in as arguments.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use hmac::{Hmac, Mac};
use ipnet::IpNet;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::auth::scope::{Scope, ScopeSet};
use crate::domain::clock::{rfc3339, DAY_MS};
use crate::domain::event::{Event, EventType};

// ---------------------------------------------------------------- events and scopes

/// The scopes that let a key see an event type; any one of them is enough.
/// Empty means every key (the test event carries nothing about the account).
pub fn readers(kind: EventType) -> &'static [Scope] {
    use EventType::*;
    match kind {
        PostCreated | PostUpdated | PostDeleted | PostBounced => &[Scope::WriteJes, Scope::ReadEngagement],
        JesclipCreated => &[Scope::WriteJesclip, Scope::ReadEngagement],
        CommentCreated => &[Scope::ReadComment],
        // The test event carries nothing; key notices concern the key itself.
        WebhookTest | KeyQuotaThreshold | KeyExpiring | KeyRevoked | KeyLeaked | KeyCanaryUsed => &[],
    }
}

/// True when a key with `scopes` may receive events of `kind`: a webhook never
/// tells more than its key could read.
pub fn visible_to(kind: EventType, scopes: ScopeSet) -> bool {
    let r = readers(kind);
    r.is_empty() || r.iter().any(|s| scopes.contains(*s))
}

/// A request's `events` list: non-empty, known names, each visible to the key.
/// Duplicates collapse; the result is in catalog order.
pub fn parse_events(list: &[String], scopes: ScopeSet) -> Result<Vec<EventType>, String> {
    if list.is_empty() {
        return Err("events: at least one event type is required".into());
    }
    if list.len() > EventType::ALL.len() * 2 {
        return Err("events: too many entries".into());
    }
    let mut wanted = Vec::new();
    for name in list {
        let kind = EventType::parse(name).ok_or_else(|| {
            let shown: String = name.chars().filter(|c| !c.is_control()).take(64).collect();
            format!("events: unknown event type '{shown}'")
        })?;
        if !visible_to(kind, scopes) {
            let need: Vec<&str> = readers(kind).iter().map(|s| s.as_str()).collect();
            return Err(format!(
                "events: '{}' needs the key to hold {}{}",
                kind.as_str(),
                if need.len() > 1 { "one of " } else { "" },
                need.join(", ")
            ));
        }
        wanted.push(kind);
    }
    Ok(EventType::ALL.into_iter().filter(|k| wanted.contains(k)).collect())
}

pub fn events_to_stored(events: &[EventType]) -> String {
    events.iter().map(|e| e.as_str()).collect::<Vec<_>>().join(" ")
}

pub fn stored_events(s: &str) -> Vec<EventType> {
    s.split(' ').filter_map(EventType::parse).collect()
}

/// Fan-out filter: the endpoint subscribed to `kind` and its key may see it.
pub fn wants(endpoint_events: &str, key_scopes: &str, kind: EventType) -> bool {
    stored_events(endpoint_events).contains(&kind) && visible_to(kind, ScopeSet::from_stored(key_scopes))
}

// ---------------------------------------------------------------- URLs and SSRF

pub const MAX_URL: usize = 2048;
pub const ALLOWED_PORTS: [u16; 3] = [443, 80, 8443];

/// IP ranges a webhook may never target, with the reason a 400 names. Order
/// matters only for the message (the metadata address before link-local).
const BLOCKED: &[(&str, &str)] = &[
    ("0.0.0.0/8", "unspecified"),
    ("10.0.0.0/8", "private"),
    ("100.64.0.0/10", "carrier-grade NAT"),
    ("127.0.0.0/8", "loopback"),
    ("169.254.169.254/32", "cloud metadata"),
    ("169.254.0.0/16", "link-local"),
    ("172.16.0.0/12", "private"),
    ("192.0.0.0/24", "reserved"),
    ("192.0.2.0/24", "documentation"),
    ("192.88.99.0/24", "reserved"),
    ("192.168.0.0/16", "private"),
    ("198.18.0.0/15", "reserved"),
    ("198.51.100.0/24", "documentation"),
    ("203.0.113.0/24", "documentation"),
    ("224.0.0.0/4", "multicast"),
    ("240.0.0.0/4", "reserved"),
    ("::/128", "unspecified"),
    ("::1/128", "loopback"),
    // IPv4 embedded in IPv6 (mapped, compatible, NAT64, 6to4, Teredo): refused
    // whatever the embedded address, so no IPv4 rule can be side-stepped.
    ("::ffff:0:0/96", "IPv4-mapped"),
    ("::/96", "IPv4-compatible"),
    ("64:ff9b::/96", "NAT64"),
    ("64:ff9b:1::/48", "NAT64"),
    ("100::/64", "reserved"),
    ("2001:db8::/32", "documentation"),
    ("2001::/23", "reserved"),
    ("2002::/16", "6to4"),
    ("fd00:ec2::254/128", "cloud metadata"),
    ("fc00::/7", "unique-local"),
    ("fe80::/10", "link-local"),
    ("fec0::/10", "site-local"),
    ("ff00::/8", "multicast"),
];

/// Why an address may not be a webhook target, if it may not.
pub fn blocked_ip(ip: IpAddr) -> Option<&'static str> {
    BLOCKED.iter().find(|(net, _)| net.parse::<IpNet>().map(|n| n.contains(&ip)).unwrap_or(false)).map(|(_, why)| *why)
}

/// Names that resolve inside a network rather than on the internet.
fn local_name(host: &str) -> bool {
    host == "localhost"
        || [".localhost", ".local", ".internal", ".localdomain", ".home.arpa"].iter().any(|suffix| host.ends_with(suffix))
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Host {
    Ip(IpAddr),
    Name(String),
}

/// A webhook URL that passed the checks, normalized (lowercase scheme and host,
/// no default port, `/` for an empty path).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebhookUrl(pub String);

/// Checks an endpoint URL. The grammar is deliberately narrower than WHATWG's
/// (printable ASCII only, no backslash, no `@` in the authority, IPv4 only as
/// a canonical dotted quad), so the host checked here is the host `fetch`
/// connects to: no parser differential can smuggle another one in.
/// `allow_loopback` (development) admits http and https to 127.0.0.1,
/// localhost and [::1] on any port; nothing else changes.
pub fn validate_url(raw: &str, allow_loopback: bool) -> Result<WebhookUrl, String> {
    let raw = raw.trim();
    if raw.is_empty() {
        return Err("url: must not be empty".into());
    }
    if raw.len() > MAX_URL {
        return Err(format!("url: must be at most {MAX_URL} characters"));
    }
    if !raw.bytes().all(|b| (0x21..=0x7e).contains(&b)) {
        return Err(
            "url: must be printable ASCII without spaces (percent-encode, and use punycode for international names)".into()
        );
    }
    if raw.contains('\\') {
        return Err("url: must not contain backslashes".into());
    }
    let (scheme, rest) = raw.split_once("://").ok_or("url: must be an absolute https:// URL")?;
    let scheme = scheme.to_ascii_lowercase();
    if scheme != "https" && scheme != "http" {
        return Err("url: must use https".into());
    }
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(end);
    if authority.contains('@') {
        return Err("url: must not contain credentials".into());
    }
    let (host_part, port_part) = if let Some(inner) = authority.strip_prefix('[') {
        let close = inner.find(']').ok_or("url: unterminated IPv6 address")?;
        let after = &inner[close + 1..];
        let port = match after {
            "" => None,
            p => Some(p.strip_prefix(':').ok_or("url: invalid characters after the IPv6 address")?),
        };
        (&authority[..close + 2], port)
    } else {
        match authority.split_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (authority, None),
        }
    };
    let port = match port_part {
        None => None,
        Some(p) if !p.is_empty() && p.len() <= 5 && p.bytes().all(|b| b.is_ascii_digit()) => match p.parse::<u16>() {
            Ok(n) if n > 0 => Some(n),
            _ => return Err("url: invalid port".into()),
        },
        Some(_) => return Err("url: invalid port".into()),
    };
    let host = parse_host(host_part)?;
    let loopback = match &host {
        Host::Ip(IpAddr::V4(v4)) => *v4 == Ipv4Addr::LOCALHOST,
        Host::Ip(IpAddr::V6(v6)) => *v6 == Ipv6Addr::LOCALHOST,
        Host::Name(n) => n == "localhost",
    };
    if !(allow_loopback && loopback) {
        if scheme != "https" {
            return Err("url: must use https".into());
        }
        match &host {
            Host::Ip(ip) => {
                if let Some(why) = blocked_ip(*ip) {
                    return Err(format!("url: host {ip} is in a {why} range"));
                }
            }
            Host::Name(name) => {
                if local_name(name) {
                    return Err(format!("url: host {name} is a local or internal name"));
                }
                if !name.contains('.') {
                    return Err("url: host must be a fully qualified public domain name".into());
                }
            }
        }
        if let Some(p) = port {
            if !ALLOWED_PORTS.contains(&p) {
                return Err(format!("url: port {p} is not allowed (use 443, 80 or 8443)"));
            }
        }
    }
    let host_text = match &host {
        Host::Ip(IpAddr::V6(v6)) => format!("[{v6}]"),
        Host::Ip(IpAddr::V4(v4)) => v4.to_string(),
        Host::Name(n) => n.clone(),
    };
    let default_port = if scheme == "https" { 443 } else { 80 };
    let port_text = match port {
        Some(p) if p != default_port => format!(":{p}"),
        _ => String::new(),
    };
    let path = if tail.starts_with('/') { tail.to_string() } else { format!("/{tail}") };
    Ok(WebhookUrl(format!("{scheme}://{host_text}{port_text}{path}")))
}

fn parse_host(h: &str) -> Result<Host, String> {
    if let Some(inner) = h.strip_prefix('[') {
        let inner = inner.strip_suffix(']').ok_or("url: unterminated IPv6 address")?;
        return inner.parse::<Ipv6Addr>().map(|a| Host::Ip(IpAddr::V6(a))).map_err(|_| "url: invalid IPv6 address".into());
    }
    let h = h.to_ascii_lowercase();
    let h = h.strip_suffix('.').unwrap_or(&h);
    if h.is_empty() {
        return Err("url: host is missing".into());
    }
    if !h.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.' || b == b'_') {
        return Err("url: host has characters a domain name cannot have".into());
    }
    if h.len() > 253 || h.split('.').any(|l| l.is_empty() || l.len() > 63) {
        return Err("url: host is not a valid domain name".into());
    }
    // WHATWG reads a host whose last label is numeric (`2130706433`, `0x7f.1`,
    // `127.1`) as an IPv4 address; accept only the canonical dotted quad.
    let last = h.rsplit('.').next().unwrap_or("");
    if last.starts_with(|c: char| c.is_ascii_digit()) {
        return h
            .parse::<Ipv4Addr>()
            .map(|a| Host::Ip(IpAddr::V4(a)))
            .map_err(|_| "url: host looks numeric but is not a dotted-quad IPv4 address".into());
    }
    Ok(Host::Name(h.to_string()))
}

// ---------------------------------------------------------------- signing

pub const SECRET_PREFIX: &str = "whsec_";
/// Signing key length: the spec asks for 24 to 64 bytes.
pub const SECRET_BYTES: usize = 32;

/// `whsec_` + base64 of the key bytes, as Standard Webhooks libraries expect.
pub fn encode_secret(key: &[u8]) -> String {
    format!("{SECRET_PREFIX}{}", B64.encode(key))
}

pub fn decode_secret(s: &str) -> Result<Vec<u8>, String> {
    let b = s.strip_prefix(SECRET_PREFIX).ok_or("secret: missing whsec_ prefix")?;
    B64.decode(b).map_err(|_| "secret: not base64".to_string())
}

/// The `webhook-signature` value for every signing key (the current secret,
/// then a rotated-out one still in its grace period), space-separated as the
/// Standard Webhooks spec allows: a receiver accepts any one that verifies.
pub fn signatures(keys: &[Vec<u8>], msg_id: &str, timestamp_secs: i64, body: &str) -> String {
    keys.iter().map(|k| sign(k, msg_id, timestamp_secs, body)).collect::<Vec<_>>().join(" ")
}

/// The `webhook-signature` value: `v1,` + base64 HMAC-SHA256 of `id.timestamp.body`.
pub fn sign(key: &[u8], msg_id: &str, timestamp_secs: i64, body: &str) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(key).expect("HMAC takes keys of any length");
    mac.update(msg_id.as_bytes());
    mac.update(b".");
    mac.update(timestamp_secs.to_string().as_bytes());
    mac.update(b".");
    mac.update(body.as_bytes());
    format!("v1,{}", B64.encode(mac.finalize().into_bytes()))
}

/// The JSON body delivered for an event: `{id, type, createdAt, data}`.
pub fn payload(event: &Event) -> String {
    #[derive(Serialize)]
    #[serde(rename_all = "camelCase")]
    struct Payload<'a> {
        id: &'a str,
        #[serde(rename = "type")]
        kind: &'a str,
        created_at: String,
        data: &'a serde_json::Value,
    }
    serde_json::to_string(&Payload {
        id: &event.id,
        kind: event.kind.as_str(),
        created_at: rfc3339(event.created_at),
        data: &event.data,
    })
    .unwrap_or_default()
}

// ---------------------------------------------------------------- secrets at rest

/// How a signing secret is kept in D1. With a configured encryption key it is
/// sealed with AES-256-GCM (`aesgcm.<kid>.<nonce>.<ciphertext>`, base64url;
/// the endpoint id is the associated data, so a sealed value copied onto
/// another row does not open). Without one it is kept as `plain.whsec_…`.
#[derive(Debug, PartialEq, Eq)]
pub enum Sealed {
    Plain(String),
    AesGcm { kid: String, nonce: Vec<u8>, ciphertext: Vec<u8> },
}

const URL_B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::URL_SAFE_NO_PAD;

impl Sealed {
    pub fn to_stored(&self) -> String {
        match self {
            Sealed::Plain(s) => format!("plain.{s}"),
            Sealed::AesGcm { kid, nonce, ciphertext } => {
                format!("aesgcm.{kid}.{}.{}", URL_B64.encode(nonce), URL_B64.encode(ciphertext))
            }
        }
    }

    pub fn parse(stored: &str) -> Result<Sealed, String> {
        if let Some(s) = stored.strip_prefix("plain.") {
            return Ok(Sealed::Plain(s.to_string()));
        }
        let mut parts = stored.split('.');
        match (parts.next(), parts.next(), parts.next(), parts.next(), parts.next()) {
            (Some("aesgcm"), Some(kid), Some(n), Some(c), None) => Ok(Sealed::AesGcm {
                kid: kid.to_string(),
                nonce: URL_B64.decode(n).map_err(|_| "sealed secret: bad nonce")?,
                ciphertext: URL_B64.decode(c).map_err(|_| "sealed secret: bad ciphertext")?,
            }),
            _ => Err("sealed secret: unknown format".into()),
        }
    }
}

/// A short, non-secret name for an encryption key (which key sealed a row).
pub fn key_id(key: &[u8]) -> String {
    hex::encode(&Sha256::digest(key)[..4])
}

/// The Worker secret holding the encryption key: base64 of 32 bytes.
pub fn parse_encryption_key(s: &str) -> Result<[u8; 32], String> {
    let bytes = B64.decode(s.trim()).map_err(|_| "WEBHOOK_SECRET_KEY: not base64")?;
    bytes.try_into().map_err(|_| "WEBHOOK_SECRET_KEY: must be 32 bytes".to_string())
}

// ---------------------------------------------------------------- retries and health

/// Seconds to wait after attempt 1, 2, …: Svix's schedule. The last attempt is
/// number `len + 1`.
pub const DEFAULT_DELAYS: [u32; 6] = [5, 300, 1800, 7200, 18000, 36000];
/// The queue consumer's `max_retries` (wrangler.engine.toml) must exceed this, so the
/// platform dead-letters only what the consumer itself could not handle.
pub const MAX_DELAYS: usize = 8;
/// Queues accept retry delays up to 12 hours.
pub const MAX_DELAY_SECS: u32 = 43_200;

/// `WEBHOOK_RETRY_DELAYS`: comma-separated seconds.
pub fn parse_delays(s: &str) -> Result<Vec<u32>, String> {
    let delays = s
        .split(',')
        .map(|p| p.trim().parse::<u32>().map_err(|_| format!("WEBHOOK_RETRY_DELAYS: '{}' is not a number of seconds", p.trim())))
        .collect::<Result<Vec<_>, _>>()?;
    if delays.len() > MAX_DELAYS {
        return Err(format!("WEBHOOK_RETRY_DELAYS: at most {MAX_DELAYS} delays"));
    }
    if delays.iter().any(|d| *d > MAX_DELAY_SECS) {
        return Err(format!("WEBHOOK_RETRY_DELAYS: each delay at most {MAX_DELAY_SECS} seconds"));
    }
    Ok(delays)
}

/// What one attempt came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The receiver answered with this status (redirects are not followed).
    Status(u16),
    /// No answer: connection error or timeout.
    NoAnswer(String),
    /// The URL no longer passes the checks (configuration changed): never sent.
    Refused(String),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Delivered,
    /// 410 Gone: disable the endpoint now, no retry.
    Gone,
    /// Try again after this many seconds.
    RetryIn(u32),
    /// The schedule is spent (or retrying cannot help): dead-letter it.
    GiveUp,
}

/// Judges attempt number `attempt` (1-based) under the schedule `delays`.
pub fn verdict(outcome: &Outcome, attempt: u32, delays: &[u32]) -> Verdict {
    match outcome {
        Outcome::Status(s) if (200..300).contains(s) => Verdict::Delivered,
        Outcome::Status(410) => Verdict::Gone,
        Outcome::Refused(_) => Verdict::GiveUp,
        _ => match delays.get(attempt.saturating_sub(1) as usize) {
            Some(d) if attempt >= 1 => Verdict::RetryIn(*d),
            _ => Verdict::GiveUp,
        },
    }
}

/// An endpoint failing without a success for this long is disabled (Svix: 5 days).
pub const DISABLE_AFTER_MS: i64 = 5 * DAY_MS;
/// … or once this many deliveries in a row were given up on.
pub const DISABLE_AFTER_DEAD: u32 = 10;

/// An endpoint's failure record: reset by any success and by re-enabling.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Health {
    /// First failed attempt since the last success.
    pub failing_since: Option<i64>,
    /// Deliveries dead-lettered since the last success.
    pub consecutive_dead: u32,
}

impl Health {
    /// The record after a failed attempt at `now`, and whether to disable.
    pub fn after_failure(self, now: i64) -> (Health, bool) {
        let h = Health { failing_since: Some(self.failing_since.unwrap_or(now)), ..self };
        (h, h.failing_too_long(now))
    }

    /// Whether an endpoint with this record is disabled. Called with the record
    /// as stored after a dead-lettered delivery was counted (read back from the
    /// same atomic update, so concurrent dead letters each see the true count).
    pub fn should_disable(&self, now: i64) -> bool {
        self.consecutive_dead >= DISABLE_AFTER_DEAD || self.failing_too_long(now)
    }

    fn failing_too_long(&self, now: i64) -> bool {
        self.failing_since.is_some_and(|t| now - t >= DISABLE_AFTER_MS)
    }
}

/// How long the delivery record (deliveries and attempts) is kept.
pub const RETENTION_MS: i64 = 30 * DAY_MS;

/// Where a delivery stands (`webhook_deliveries.status`), and how one
/// attempt ended (`webhook_attempts.status`: never `Pending`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeliveryStatus {
    /// Not delivered yet; more attempts may follow.
    Pending,
    Succeeded,
    /// An attempt that failed; its delivery stays pending.
    Failed,
    /// Given up on: gone, blocked, or the schedule spent.
    Dead,
}

impl DeliveryStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            DeliveryStatus::Pending => "pending",
            DeliveryStatus::Succeeded => "succeeded",
            DeliveryStatus::Failed => "failed",
            DeliveryStatus::Dead => "dead",
        }
    }
}

/// Why an endpoint is disabled, as the API shows it.
pub const DISABLED_GONE: &str = "gone";
pub const DISABLED_FAILING: &str = "failing";
pub const DISABLED_MANUAL: &str = "manual";

// ---------------------------------------------------------------- queue messages

/// A message on the webhook queue, sent as a JSON string (a structured
/// `serde_json::Value` does not survive the trip through the runtime).
/// Externally tagged (`{"fanout":{…}}`): an internally tagged enum would pull
/// serde's buffering machinery into the wasm.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum Job {
    /// An event to turn into one delivery per matching endpoint.
    #[serde(rename = "fanout")]
    FanOut { event: Event },
    /// One event to one endpoint, with its own retry schedule.
    #[serde(rename = "deliver")]
    Deliver(DeliveryJob),
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DeliveryJob {
    pub delivery_id: String,
    pub endpoint_id: String,
    /// The event id: the `webhook-id`, stable across retries.
    pub event_id: String,
    pub event_type: String,
    /// The exact bytes signed and sent, the same on every attempt.
    pub body: String,
}

impl Job {
    pub fn encode(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }

    pub fn decode(s: &str) -> Result<Job, String> {
        serde_json::from_str(s).map_err(|e| format!("job: {e}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(scopes: &[Scope]) -> ScopeSet {
        ScopeSet::of(scopes)
    }

    // -------- signing

    #[test]
    fn rotation_signs_with_every_key_space_separated() {
        let (new, old) = (vec![1u8; 24], vec![2u8; 24]);
        let both = signatures(&[new.clone(), old.clone()], "msg_1", 1_700_000_000, "{}");
        let parts: Vec<&str> = both.split(' ').collect();
        assert_eq!(parts, [sign(&new, "msg_1", 1_700_000_000, "{}"), sign(&old, "msg_1", 1_700_000_000, "{}")]);
        assert_eq!(signatures(std::slice::from_ref(&new), "msg_1", 1, "x"), sign(&new, "msg_1", 1, "x"));
    }

    #[test]
    fn signature_matches_the_standard_webhooks_known_answer() {
        // The example of the Standard Webhooks reference libraries, checked
        // against the PyPI `standardwebhooks` package.
        let key = decode_secret("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap();
        let sig = sign(&key, "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, r#"{"test": 2432232314}"#);
        assert_eq!(sig, "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
    }

    #[test]
    fn any_change_to_id_time_or_body_changes_the_signature() {
        let key = [7u8; SECRET_BYTES];
        let base = sign(&key, "evt_1", 100, "{}");
        assert_ne!(base, sign(&key, "evt_2", 100, "{}"));
        assert_ne!(base, sign(&key, "evt_1", 101, "{}"));
        assert_ne!(base, sign(&key, "evt_1", 100, "{ }"));
        assert_ne!(base, sign(&[8u8; SECRET_BYTES], "evt_1", 100, "{}"));
    }

    #[test]
    fn secrets_round_trip_through_the_whsec_form() {
        let key = [0xabu8; SECRET_BYTES];
        let s = encode_secret(&key);
        assert!(s.starts_with("whsec_"));
        assert_eq!(decode_secret(&s).unwrap(), key.to_vec());
        assert!(decode_secret("sk_abc").is_err());
        assert!(decode_secret("whsec_***").is_err());
    }

    #[test]
    fn payload_has_exactly_id_type_created_at_and_data() {
        let e = Event {
            id: "evt_1".into(),
            kind: EventType::PostCreated,
            account_id: "acct".into(),
            created_at: 1_700_000_000_123,
            data: serde_json::json!({"post": {"id": "p1"}}),
        };
        let v: serde_json::Value = serde_json::from_str(&payload(&e)).unwrap();
        assert_eq!(
            v,
            serde_json::json!({"id": "evt_1", "type": "post.created", "createdAt": "2023-11-14T22:13:20.123Z",
                               "data": {"post": {"id": "p1"}}})
        );
    }

    #[test]
    fn sealed_secrets_round_trip_and_bad_forms_are_refused() {
        let a = Sealed::AesGcm { kid: "0a1b2c3d".into(), nonce: vec![1; 12], ciphertext: vec![2; 48] };
        assert_eq!(Sealed::parse(&a.to_stored()).unwrap(), a);
        let p = Sealed::Plain("whsec_abc".into());
        assert_eq!(p.to_stored(), "plain.whsec_abc");
        assert_eq!(Sealed::parse("plain.whsec_abc").unwrap(), p);
        assert!(Sealed::parse("whsec_abc").is_err());
        assert!(Sealed::parse("aesgcm.k.!!.xx").is_err());
        assert!(Sealed::parse("aesgcm.k.AA.AA.extra").is_err());
        assert_eq!(key_id(&[0u8; 32]).len(), 8);
        assert!(parse_encryption_key(&B64.encode([1u8; 32])).is_ok());
        assert!(parse_encryption_key(&B64.encode([1u8; 16])).is_err());
        assert!(parse_encryption_key("not base64!").is_err());
    }

    // -------- scopes

    #[test]
    fn each_event_type_is_visible_only_to_keys_that_could_read_it() {
        use EventType::*;
        assert!(visible_to(CommentCreated, set(&[Scope::ReadComment])));
        assert!(!visible_to(CommentCreated, set(&[Scope::WriteComment, Scope::ReadEngagement, Scope::WriteJes])));
        for post in [PostCreated, PostUpdated, PostDeleted, PostBounced] {
            assert!(visible_to(post, set(&[Scope::WriteJes])));
            assert!(visible_to(post, set(&[Scope::ReadEngagement])));
            assert!(!visible_to(post, set(&[Scope::WriteJesclip, Scope::ReadComment, Scope::WebhooksManage])));
        }
        assert!(visible_to(JesclipCreated, set(&[Scope::WriteJesclip])));
        assert!(visible_to(JesclipCreated, set(&[Scope::ReadEngagement])));
        assert!(!visible_to(JesclipCreated, set(&[Scope::WriteJes])));
        assert!(visible_to(WebhookTest, ScopeSet::EMPTY));
    }

    #[test]
    fn event_lists_are_checked_against_the_keys_scopes_naming_the_event() {
        let moderation = set(&[Scope::ReadComment, Scope::ReadEngagement, Scope::WebhooksManage]);
        let l = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let got = parse_events(&l(&["webhook.test", "comment.created", "post.created", "comment.created"]), moderation).unwrap();
        assert_eq!(got, vec![EventType::PostCreated, EventType::CommentCreated, EventType::WebhookTest]);
        let e = parse_events(&l(&["comment.created"]), set(&[Scope::WriteJes])).unwrap_err();
        assert!(e.starts_with("events:") && e.contains("comment.created") && e.contains("read:comment"), "{e}");
        let e = parse_events(&l(&["post.deleted"]), set(&[Scope::ReadComment])).unwrap_err();
        assert!(e.contains("one of write:jes, read:engagement"), "{e}");
        assert!(parse_events(&l(&["post.exploded"]), moderation).unwrap_err().contains("unknown event type 'post.exploded'"));
        assert!(parse_events(&[], moderation).unwrap_err().starts_with("events:"));
    }

    #[test]
    fn fan_out_needs_both_the_subscription_and_the_scope() {
        assert!(wants("post.created comment.created", "read:comment write:jes", EventType::CommentCreated));
        assert!(!wants("post.created", "read:comment write:jes", EventType::CommentCreated));
        // A subscription stored before a rule tightened still cannot leak.
        assert!(!wants("comment.created", "write:jes", EventType::CommentCreated));
        assert_eq!(stored_events(&events_to_stored(&EventType::ALL)), EventType::ALL.to_vec());
    }

    // -------- URLs

    fn ok(u: &str) -> String {
        validate_url(u, false).unwrap_or_else(|e| panic!("{u}: {e}")).0
    }

    fn why(u: &str) -> String {
        let e = validate_url(u, false).unwrap_err();
        assert!(e.starts_with("url: "), "{e}");
        e
    }

    #[test]
    fn public_https_urls_are_accepted_and_normalized() {
        assert_eq!(ok("https://hooks.example.com/jestha"), "https://hooks.example.com/jestha");
        assert_eq!(ok("HTTPS://Hooks.Example.COM./x?a=1#f"), "https://hooks.example.com/x?a=1#f");
        assert_eq!(ok("https://hooks.example.com:443"), "https://hooks.example.com/");
        assert_eq!(ok("https://hooks.example.com:8443/a"), "https://hooks.example.com:8443/a");
        assert_eq!(ok("https://93.184.216.34/in"), "https://93.184.216.34/in");
        assert_eq!(ok("https://[2606:4700::1111]/in"), "https://[2606:4700::1111]/in");
        assert_eq!(ok("https://xn--bcher-kva.example/?q"), "https://xn--bcher-kva.example/?q");
    }

    #[test]
    fn non_https_and_credentials_are_refused() {
        assert_eq!(why("http://hooks.example.com/"), "url: must use https");
        assert_eq!(why("ftp://hooks.example.com/"), "url: must use https");
        assert!(why("hooks.example.com/x").contains("absolute"));
        assert_eq!(why("https://user:pw@hooks.example.com/"), "url: must not contain credentials");
        assert_eq!(why("https://user@hooks.example.com/"), "url: must not contain credentials");
        assert!(why("https://hooks.example.com\\@127.0.0.1/").contains("backslash"));
        assert!(why("https://hooks.exa mple.com/").contains("ASCII"));
        assert!(why("https://127.0.\n0.1/").contains("ASCII"), "WHATWG would drop the newline");
        assert!(why("https://127.0.\t0.1/").contains("ASCII"));
        assert!(why("https://bücher.example/").contains("ASCII"));
        assert!(why(&format!("https://a.example/{}", "x".repeat(MAX_URL))).contains("at most"));
    }

    #[test]
    fn private_loopback_link_local_cgnat_and_metadata_addresses_are_refused() {
        for (u, range) in [
            ("https://127.0.0.1/", "loopback"),
            ("https://127.9.9.9/", "loopback"),
            ("https://10.1.2.3/", "private"),
            ("https://172.16.0.1/", "private"),
            ("https://172.31.255.255/", "private"),
            ("https://192.168.1.1/", "private"),
            ("https://100.64.0.1/", "carrier-grade NAT"),
            ("https://169.254.169.254/latest/meta-data", "cloud metadata"),
            ("https://169.254.10.10/", "link-local"),
            ("https://0.0.0.0/", "unspecified"),
            ("https://224.0.0.1/", "multicast"),
            ("https://255.255.255.255/", "reserved"),
            ("https://198.51.100.7/", "documentation"),
            ("https://[::1]/", "loopback"),
            ("https://[::]/", "unspecified"),
            ("https://[fd00::1]/", "unique-local"),
            ("https://[fd00:ec2::254]/", "cloud metadata"),
            ("https://[fe80::1]/", "link-local"),
            ("https://[ff02::1]/", "multicast"),
            ("https://[::ffff:127.0.0.1]/", "IPv4-mapped"),
            ("https://[::ffff:8.8.8.8]/", "IPv4-mapped"),
            ("https://[64:ff9b::a00:1]/", "NAT64"),
            ("https://[2002:a00:1::]/", "6to4"),
            ("https://[2001:db8::1]/", "documentation"),
        ] {
            let e = why(u);
            assert!(e.contains(range), "{u}: {e}");
        }
        assert!(ok("https://172.32.0.1/").contains("172.32.0.1"));
        assert!(ok("https://100.128.0.1/").contains("100.128.0.1"));
    }

    #[test]
    fn obfuscated_ipv4_forms_are_refused_rather_than_reinterpreted() {
        for u in [
            "https://2130706433/",
            "https://0x7f000001/",
            "https://0x7f.0.0.1/",
            "https://0177.0.0.1/",
            "https://127.1/",
            "https://127.0.0.1.1/",
            "https://010.0.0.1/",
            "https://a.b.1/",
        ] {
            assert!(why(u).contains("dotted-quad"), "{u}");
        }
        assert!(why("https://127.0.0.1%2e/").contains("characters"));
        assert!(why("https://[fe80::1%25eth0]/").contains("IPv6"));
    }

    #[test]
    fn local_internal_and_single_label_names_are_refused() {
        for u in [
            "https://localhost/",
            "https://LOCALHOST./",
            "https://api.localhost/",
            "https://printer.local/",
            "https://metadata.google.internal/computeMetadata/v1/",
            "https://router.home.arpa/",
            "https://box.localdomain/",
        ] {
            assert!(why(u).contains("local or internal name"), "{u}: {}", why(u));
        }
        assert!(why("https://intranet/").contains("fully qualified"));
        assert!(why("https://a..b.com/").contains("valid domain"));
        assert!(why("https:///path").contains("host is missing"));
    }

    #[test]
    fn only_standard_ports_unless_loopback_is_allowed() {
        assert!(why("https://hooks.example.com:22/").contains("port 22"));
        assert!(why("https://hooks.example.com:0/").contains("invalid port"));
        assert!(why("https://hooks.example.com:99999/").contains("invalid port"));
        assert!(why("https://hooks.example.com:/").contains("invalid port"));
        assert!(why("https://hooks.example.com:44x/").contains("invalid port"));
        assert!(why("https://[2606:4700::1111]x/").contains("after the IPv6"));
    }

    #[test]
    fn the_loopback_setting_admits_only_loopback_hosts_over_http() {
        let dev = |u: &str| validate_url(u, true);
        assert_eq!(dev("http://127.0.0.1:9999/hook").unwrap().0, "http://127.0.0.1:9999/hook");
        assert_eq!(dev("http://localhost:8080").unwrap().0, "http://localhost:8080/");
        assert_eq!(dev("http://[::1]:81/").unwrap().0, "http://[::1]:81/");
        assert!(dev("http://127.0.0.2/").unwrap_err().contains("https"));
        assert!(dev("https://127.0.0.2/").unwrap_err().contains("loopback"));
        assert!(dev("http://10.0.0.1/").is_err());
        assert!(dev("http://hooks.example.com/").is_err());
        assert!(dev("https://169.254.169.254/").is_err());
        assert!(dev("http://user:pw@127.0.0.1/").unwrap_err().contains("credentials"));
        assert!(validate_url("http://127.0.0.1:9999/", false).is_err());
    }

    #[test]
    fn accepted_urls_name_the_same_host_for_the_whatwg_parser() {
        // A parser differential is how SSRF checks are bypassed: whatever we
        // accept, the standard parser must read the same host and port.
        for u in [
            "https://hooks.example.com/jestha?x=1",
            "HTTPS://Hooks.Example.COM./x",
            "https://93.184.216.34:8443/in",
            "https://[2606:4700::1111]/in",
            "https://a-b_c.example.org/%2e%2e/",
            "https://hooks.example.com/a@b",
            "https://hooks.example.com?q=@127.0.0.1",
            "https://hooks.example.com#@127.0.0.1",
        ] {
            let ours = ok(u);
            let theirs = url::Url::parse(u).unwrap();
            let again = url::Url::parse(&ours).unwrap();
            assert_eq!(again.host_str(), theirs.host_str().map(|h| h.trim_end_matches('.')), "{u}");
            assert_eq!(again.port_or_known_default(), theirs.port_or_known_default(), "{u}");
            assert_eq!(again.username(), "");
        }
    }

    // -------- retries and health

    #[test]
    fn the_retry_schedule_parses_and_is_bounded() {
        assert_eq!(parse_delays("5,300,1800,7200,18000,36000").unwrap(), DEFAULT_DELAYS.to_vec());
        assert_eq!(parse_delays(" 1, 1 ,1").unwrap(), vec![1, 1, 1]);
        assert!(parse_delays("5,soon").unwrap_err().contains("soon"));
        assert!(parse_delays("").is_err());
        assert!(parse_delays("1,1,1,1,1,1,1,1,1").is_err());
        assert!(parse_delays("50000").is_err());
    }

    #[test]
    fn verdicts_follow_status_and_schedule() {
        let d = [1, 2, 3];
        assert_eq!(verdict(&Outcome::Status(200), 1, &d), Verdict::Delivered);
        assert_eq!(verdict(&Outcome::Status(204), 4, &d), Verdict::Delivered);
        assert_eq!(verdict(&Outcome::Status(410), 1, &d), Verdict::Gone);
        assert_eq!(verdict(&Outcome::Status(500), 1, &d), Verdict::RetryIn(1));
        assert_eq!(verdict(&Outcome::Status(301), 2, &d), Verdict::RetryIn(2));
        assert_eq!(verdict(&Outcome::NoAnswer("timeout".into()), 3, &d), Verdict::RetryIn(3));
        assert_eq!(verdict(&Outcome::Status(500), 4, &d), Verdict::GiveUp);
        assert_eq!(verdict(&Outcome::Refused("url".into()), 1, &d), Verdict::GiveUp);
        assert_eq!(verdict(&Outcome::Status(500), 1, &[]), Verdict::GiveUp);
    }

    #[test]
    fn endpoints_are_disabled_after_five_days_of_failure_or_ten_dead_deliveries() {
        let t0 = 1_700_000_000_000;
        let (h, off) = Health::default().after_failure(t0);
        assert_eq!((h.failing_since, off), (Some(t0), false));
        let (h, off) = h.after_failure(t0 + DISABLE_AFTER_MS - 1);
        assert_eq!((h.failing_since, off), (Some(t0), false), "the streak keeps its start");
        assert!(h.after_failure(t0 + DISABLE_AFTER_MS).1);
        let h = Health { failing_since: Some(t0), consecutive_dead: DISABLE_AFTER_DEAD - 1 };
        assert!(!h.should_disable(t0 + 1));
        assert!(Health { consecutive_dead: DISABLE_AFTER_DEAD, ..h }.should_disable(t0 + 1));
        assert!(Health { failing_since: Some(t0), consecutive_dead: 1 }.should_disable(t0 + DISABLE_AFTER_MS));
        assert!(!Health::default().should_disable(t0));
    }

    #[test]
    fn jobs_round_trip_as_json_strings() {
        let e = Event::new(EventType::WebhookTest, "acct", 1_700_000_000_000, [7; 10], serde_json::json!({"endpointId": "wh_1"}));
        let j = Job::FanOut { event: e.clone() };
        match Job::decode(&j.encode()).unwrap() {
            Job::FanOut { event } => assert_eq!((event.id, event.data), (e.id, e.data)),
            other => panic!("{other:?}"),
        }
        let d = DeliveryJob {
            delivery_id: "dlv_1".into(),
            endpoint_id: "wh_1".into(),
            event_id: "evt_1".into(),
            event_type: "webhook.test".into(),
            body: "{\"a\":1}".into(),
        };
        match Job::decode(&Job::Deliver(d.clone()).encode()).unwrap() {
            Job::Deliver(back) => assert_eq!(back, d),
            other => panic!("{other:?}"),
        }
        assert!(Job::decode("{\"explode\":{}}").is_err());
        assert!(j.encode().starts_with("{\"fanout\":{"));
        assert!(Job::decode("not json").is_err());
    }
}
