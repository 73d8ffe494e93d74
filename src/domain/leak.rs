//! Leaked-key reports in the shape of GitHub's secret-scanning partner program:
//! a JSON array of `{token, type, url, source}`, signed with ECDSA P-256 over the
//! raw body (`Github-Public-Key-Signature`: base64 of a DER signature) by a key
//! we trust (`LEAK_REPORT_PUBLIC_KEYS`: PEM public keys).
//!
//! This module reads keys and signatures into the forms WebCrypto takes (SPKI
//! DER, raw `r || s`); the runtime's ECDSA verifies them
//! (`adapters::crypto::ecdsa_p256_verify`), so no curve arithmetic is compiled
//! into the wasm (RustCrypto's p256 cost 8.7 KB of it gzipped).

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use serde::{Deserialize, Serialize};

pub const MAX_TOKENS: usize = 100;

#[derive(Debug, Clone, Deserialize)]
pub struct Reported {
    pub token: String,
    #[serde(rename = "type", default)]
    pub kind: String,
    #[serde(default)]
    pub url: String,
    #[serde(default)]
    pub source: String,
}

/// One token's verdict, GitHub's response shape plus `live`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Verdict {
    pub token_hash: String,
    pub token_type: String,
    /// `true_positive` when the token is (or was) a real Jestha key.
    pub label: &'static str,
    /// It was a live key and is now revoked.
    pub live: bool,
}

/// The DER prefix of every P-256 SubjectPublicKeyInfo with an uncompressed
/// point: SEQUENCE { SEQUENCE { id-ecPublicKey, prime256v1 }, BIT STRING (0x04…) }.
/// Matching it exactly (rather than pulling a general DER/PKCS#8 parser into the
/// wasm) accepts precisely the keys this endpoint is documented to take.
const P256_SPKI_PREFIX: [u8; 26] = [
    0x30, 0x59, 0x30, 0x13, 0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01, 0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03,
    0x01, 0x07, 0x03, 0x42, 0x00,
];

const BEGIN: &str = "-----BEGIN PUBLIC KEY-----";
const END: &str = "-----END PUBLIC KEY-----";

/// Every P-256 PEM public key in `pems` (concatenated blocks), as SPKI DER.
/// Blocks that are not P-256 SPKI keys with an uncompressed point are skipped;
/// WebCrypto's import then checks the point is on the curve.
pub fn trusted_keys(pems: &str) -> Vec<Vec<u8>> {
    let mut keys = vec![];
    let mut rest = pems;
    while let Some(start) = rest.find(BEGIN) {
        let Some(end_rel) = rest[start..].find(END) else { break };
        let b64: String = rest[start + BEGIN.len()..start + end_rel].chars().filter(|c| !c.is_whitespace()).collect();
        if let Ok(der) = B64.decode(b64) {
            if der.len() == P256_SPKI_PREFIX.len() + 65
                && der.starts_with(&P256_SPKI_PREFIX)
                && der[P256_SPKI_PREFIX.len()] == 0x04
            {
                keys.push(der);
            }
        }
        rest = &rest[start + end_rel + END.len()..];
    }
    keys
}

/// Reads one DER INTEGER as a 32-byte big-endian scalar.
fn der_scalar(input: &[u8]) -> Option<([u8; 32], &[u8])> {
    let (&tag, rest) = input.split_first()?;
    let (&len, rest) = rest.split_first()?;
    let len = len as usize;
    if tag != 0x02 || len == 0 || len > 33 || rest.len() < len {
        return None;
    }
    let (int, rest) = rest.split_at(len);
    let int = if int.len() == 33 {
        if int[0] != 0 {
            return None;
        }
        &int[1..]
    } else {
        int
    };
    let mut out = [0u8; 32];
    out[32 - int.len()..].copy_from_slice(int);
    Some((out, rest))
}

/// An ECDSA signature from its DER form `SEQUENCE { INTEGER r, INTEGER s }`
/// to the raw `r || s` WebCrypto verifies. Zero scalars are refused here
/// (WebCrypto refuses them too; this keeps the answer the same everywhere).
pub fn signature_from_der(der: &[u8]) -> Option<[u8; 64]> {
    let (&tag, rest) = der.split_first()?;
    let (&len, body) = rest.split_first()?;
    if tag != 0x30 || len as usize != body.len() {
        return None;
    }
    let (r, rest) = der_scalar(body)?;
    let (s, rest) = der_scalar(rest)?;
    if !rest.is_empty() {
        return None;
    }
    if r == [0; 32] || s == [0; 32] {
        return None;
    }
    let mut raw = [0u8; 64];
    raw[..32].copy_from_slice(&r);
    raw[32..].copy_from_slice(&s);
    Some(raw)
}

/// The `Github-Public-Key-Signature` header (base64 of DER) as raw `r || s`.
pub fn signature(header_b64: &str) -> Option<[u8; 64]> {
    signature_from_der(&B64.decode(header_b64.trim()).ok()?)
}

/// Parses the report body: a non-empty array of at most `MAX_TOKENS` entries.
pub fn parse(body: &[u8]) -> Result<Vec<Reported>, String> {
    let list: Vec<Reported> = serde_json::from_slice(body).map_err(|e| format!("body: {e}"))?;
    if list.is_empty() {
        return Err("body: at least one token is required".into());
    }
    if list.len() > MAX_TOKENS {
        return Err(format!("body: at most {MAX_TOKENS} tokens per report"));
    }
    Ok(list)
}

#[cfg(test)]
mod tests {
    use super::*;
    use p256::ecdsa::signature::{Signer, Verifier};
    use p256::ecdsa::{Signature, SigningKey, VerifyingKey};

    /// What the runtime's ECDSA does with our outputs, done natively by RustCrypto.
    fn verify(keys: &[Vec<u8>], body: &[u8], header: &str) -> bool {
        let Some(raw) = signature(header) else { return false };
        let sig = Signature::from_slice(&raw).unwrap();
        keys.iter().any(|spki| VerifyingKey::from_sec1_bytes(&spki[P256_SPKI_PREFIX.len()..]).unwrap().verify(body, &sig).is_ok())
    }

    fn pair(seed: u8) -> (SigningKey, String) {
        let sk = SigningKey::from_slice(&[seed; 32]).unwrap();
        let point = sk.verifying_key().to_encoded_point(false);
        let der = [&P256_SPKI_PREFIX[..], point.as_bytes()].concat();
        (sk, format!("{BEGIN}\n{}\n{END}\n", B64.encode(der)))
    }

    /// DER-encodes (r, s) the way OpenSSL and GitHub do: minimal, with a 0x00
    /// pad when the high bit is set.
    fn der(sig: &Signature) -> Vec<u8> {
        let int = |b: &[u8]| {
            let mut v: Vec<u8> = b.iter().copied().skip_while(|x| *x == 0).collect();
            if v.first().is_none_or(|x| x & 0x80 != 0) {
                v.insert(0, 0);
            }
            [vec![0x02, v.len() as u8], v].concat()
        };
        let (r, s) = sig.split_bytes();
        let body = [int(&r), int(&s)].concat();
        [vec![0x30, body.len() as u8], body].concat()
    }

    fn sign(sk: &SigningKey, body: &[u8]) -> String {
        let sig: Signature = sk.sign(body);
        B64.encode(der(&sig))
    }

    #[test]
    fn der_signatures_with_and_without_padding_parse() {
        let (sk, _) = pair(3);
        for i in 0..20u8 {
            let sig: Signature = sk.sign(&[i]);
            assert_eq!(signature_from_der(&der(&sig)), Some(<[u8; 64]>::from(sig.to_bytes())));
        }
        assert_eq!(signature_from_der(&[0x30, 0x00]), None);
        assert_eq!(signature_from_der(&[0x30, 0x06, 0x02, 0x01, 0x00, 0x02, 0x01, 0x01]), None, "r = 0");
        let mut long = der(&sk.sign(b"x"));
        long.push(0);
        assert_eq!(signature_from_der(&long), None, "trailing bytes");
        assert_eq!(signature_from_der(&[0x31, 0x02, 0x02, 0x00]), None);
    }

    #[test]
    fn a_report_signed_by_a_trusted_key_verifies() {
        let (sk, pem) = pair(7);
        let (_, other) = pair(9);
        let keys = trusted_keys(&format!("{other}\n{pem}"));
        assert_eq!(keys.len(), 2);
        let body = br#"[{"token":"jes_live_x","type":"jestha_api_key","url":"https://example.com","source":"content"}]"#;
        assert!(verify(&keys, body, &sign(&sk, body)));
    }

    #[test]
    fn forged_tampered_and_malformed_signatures_fail() {
        let (sk, pem) = pair(7);
        let (stranger, _) = pair(8);
        let keys = trusted_keys(&pem);
        let body = b"[]";
        assert!(!verify(&keys, body, &sign(&stranger, body)));
        assert!(!verify(&keys, b"[ ]", &sign(&sk, body)));
        assert!(!verify(&keys, body, "not base64!"));
        assert!(!verify(&keys, body, &B64.encode(b"not der")));
        assert!(!verify(&[], body, &sign(&sk, body)));
        assert!(trusted_keys("garbage").is_empty());
        let compressed = format!("{BEGIN}\n{}\n{END}\n", B64.encode([&P256_SPKI_PREFIX[..], &[0x02; 65]].concat()));
        assert!(trusted_keys(&compressed).is_empty(), "only uncompressed points");
    }

    #[test]
    fn reports_are_bounded() {
        assert!(parse(b"[]").is_err());
        assert!(parse(b"{}").is_err());
        let many = format!("[{}]", vec![r#"{"token":"t"}"#; MAX_TOKENS + 1].join(","));
        assert!(parse(many.as_bytes()).is_err());
        assert_eq!(parse(br#"[{"token":"t","type":"x"}]"#).unwrap()[0].kind, "x");
    }
}
