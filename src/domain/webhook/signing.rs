//! Standard Webhooks signing, the delivered payload, and how signing secrets
//! are kept at rest.

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use hmac::{Hmac, Mac};
use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::domain::clock::rfc3339;
use crate::domain::event::Event;

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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::event::EventType;

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
}
