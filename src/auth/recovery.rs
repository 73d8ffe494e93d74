//! Two-factor recovery codes: ten per account, shown once, each usable once,
//! stored only as the SHA-256 of the normalized code. A code is 16 characters
//! of a 32-letter alphabet without look-alikes (no `0 1 l o`): 80 bits, so a
//! plain hash is enough. Shown as `xxxx-xxxx-xxxx-xxxx`; typed in any case,
//! with or without hyphens and spaces.

use sha2::{Digest, Sha256};

pub const COUNT: usize = 10;
const LEN: usize = 16;
const ALPHABET: &[u8; 32] = b"abcdefghijkmnpqrstuvwxyz23456789";

/// One code from 16 random bytes (each byte's low five bits: uniform over 32 letters).
pub fn generate(random: [u8; LEN]) -> String {
    let chars: Vec<char> = random.iter().map(|b| ALPHABET[(b & 31) as usize] as char).collect();
    chars.chunks(4).map(|c| c.iter().collect::<String>()).collect::<Vec<_>>().join("-")
}

/// The code as stored and compared: lower case, no separators. `None` when it
/// cannot be a recovery code at all.
pub fn normalize(typed: &str) -> Option<String> {
    let s: String = typed.chars().filter(|c| !matches!(c, '-' | ' ')).flat_map(char::to_lowercase).collect();
    (s.len() == LEN && s.bytes().all(|b| ALPHABET.contains(&b))).then_some(s)
}

/// What is stored: SHA-256 hex of the normalized code.
pub fn hash(normalized: &str) -> String {
    hex::encode(Sha256::digest(normalized.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_grouped_and_round_trip_through_normalize() {
        let code = generate([7; LEN]);
        assert_eq!(code.len(), 19);
        assert_eq!(code.matches('-').count(), 3);
        let n = normalize(&code).unwrap();
        assert_eq!(n.len(), 16);
        assert_eq!(normalize(&code.to_uppercase().replace('-', " ")), Some(n.clone()));
        assert_eq!(hash(&n).len(), 64);
        assert_ne!(hash(&n), n, "only the hash is stored");
    }

    #[test]
    fn every_letter_is_reachable_and_look_alikes_never_appear() {
        let all: String = (0u8..32).map(|i| generate([i; LEN])).collect();
        for c in ALPHABET {
            assert!(all.contains(*c as char));
        }
        for c in ['0', '1', 'l', 'o'] {
            assert!(!all.contains(c));
        }
    }

    #[test]
    fn anything_else_is_not_a_code() {
        for bad in ["", "abcd-efgh", "abcd-efgh-ijkm-npq0", "abcd-efgh-ijkm-npqrs", "123456"] {
            assert_eq!(normalize(bad), None, "{bad}");
        }
    }
}
