//! The stored form of a password hash: `pbkdf2-sha256$<iterations>$<salt>$<hash>`
//! (base64, no padding). Deriving is WebCrypto's job (`adapters::crypto`); this
//! module only encodes, parses and compares in constant time.

use base64::engine::general_purpose::STANDARD_NO_PAD as B64;
use base64::Engine;

/// Workers' WebCrypto caps PBKDF2 at 100,000 iterations; we use all of them.
pub const ITERATIONS: u32 = 100_000;
const SCHEME: &str = "pbkdf2-sha256";

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stored {
    pub iterations: u32,
    pub salt: Vec<u8>,
    pub hash: Vec<u8>,
}

impl Stored {
    pub fn encode(&self) -> String {
        format!("{SCHEME}${}${}${}", self.iterations, B64.encode(&self.salt), B64.encode(&self.hash))
    }

    pub fn parse(s: &str) -> Option<Stored> {
        let mut parts = s.split('$');
        if parts.next()? != SCHEME {
            return None;
        }
        let iterations = parts.next()?.parse().ok()?;
        let salt = B64.decode(parts.next()?).ok()?;
        let hash = B64.decode(parts.next()?).ok()?;
        parts.next().is_none().then_some(Stored { iterations, salt, hash })
    }

    /// Compares a freshly derived hash without an early exit.
    pub fn matches(&self, derived: &[u8]) -> bool {
        constant_time_eq(&self.hash, derived)
    }
}

pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stored_hash_round_trips() {
        let s = Stored { iterations: ITERATIONS, salt: vec![1; 16], hash: vec![2; 32] };
        let enc = s.encode();
        assert!(enc.starts_with("pbkdf2-sha256$100000$"));
        assert_eq!(Stored::parse(&enc), Some(s.clone()));
        assert!(s.matches(&[2; 32]));
        assert!(!s.matches(&[2; 31]));
        assert!(!s.matches(&[3; 32]));
    }

    #[test]
    fn malformed_stored_hashes_are_rejected() {
        assert_eq!(Stored::parse("md5$1$AA$AA"), None);
        assert_eq!(Stored::parse("pbkdf2-sha256$x$AA$AA"), None);
        assert_eq!(Stored::parse("pbkdf2-sha256$1$AA$AA$extra"), None);
    }
}
