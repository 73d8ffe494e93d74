//! Credential formats: API keys `jes_live_…`, session tokens `jes_sess_…`,
//! and OAuth's: access tokens `jes_oat_…` (which carry their grant's id, so
//! the guard reaches the grant's Gate with no lookup), refresh tokens
//! `jes_ort_…`, authorization codes `jes_oac_…` and device codes `jes_odc_…`.
//!
//! A token is `prefix + 30 base62 characters of randomness (178 bits) + 6 base62
//! characters of CRC32 over everything before them`, as GitHub's tokens are built,
//! so a mistyped or invented token is refused by arithmetic before any lookup.
//! Tokens are stored only as their SHA-256 hex digest.

use sha2::{Digest, Sha256};

pub const KEY_PREFIX: &str = "jes_live_";
pub const SESSION_PREFIX: &str = "jes_sess_";
pub const ACCESS_PREFIX: &str = "jes_oat_";
pub const REFRESH_PREFIX: &str = "jes_ort_";
pub const CODE_PREFIX: &str = "jes_oac_";
pub const DEVICE_PREFIX: &str = "jes_odc_";
/// An access token's grant id: a ULID, 26 characters of Crockford base32.
pub const GRANT_ID_LEN: usize = 26;
const RANDOM_LEN: usize = 30;
const CHECKSUM_LEN: usize = 6;
const BODY_LEN: usize = RANDOM_LEN + CHECKSUM_LEN;
/// How many characters after the prefix the masked form keeps.
const MASK_KEEP: usize = 4;

const BASE62: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

/// Which kind of credential a bearer token is, told by prefix alone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenKind {
    ApiKey,
    Session,
    /// `jes_oat_` + the grant id + 30 random + checksum (use `generate_access`).
    OAuthAccess,
    OAuthRefresh,
    AuthCode,
    DeviceCode,
}

impl TokenKind {
    const ALL: [TokenKind; 6] = [
        TokenKind::ApiKey,
        TokenKind::Session,
        TokenKind::OAuthAccess,
        TokenKind::OAuthRefresh,
        TokenKind::AuthCode,
        TokenKind::DeviceCode,
    ];

    pub fn prefix(self) -> &'static str {
        match self {
            TokenKind::ApiKey => KEY_PREFIX,
            TokenKind::Session => SESSION_PREFIX,
            TokenKind::OAuthAccess => ACCESS_PREFIX,
            TokenKind::OAuthRefresh => REFRESH_PREFIX,
            TokenKind::AuthCode => CODE_PREFIX,
            TokenKind::DeviceCode => DEVICE_PREFIX,
        }
    }

    /// The kind a token claims by its prefix, before any other check.
    pub fn of(token: &str) -> Option<TokenKind> {
        Self::ALL.into_iter().find(|k| token.starts_with(k.prefix()))
    }

    /// Characters between the prefix and the random part.
    fn lead(self) -> usize {
        if self == TokenKind::OAuthAccess {
            GRANT_ID_LEN
        } else {
            0
        }
    }
}

/// CRC-32 (ISO-HDLC, as zlib and crc32fast compute it) from the `crc` crate's
/// 256-entry table: crc32fast's slice-by-16 tables were 16 KB of incompressible
/// wasm data, for a checksum over 45 bytes.
const CRC32: crc::Crc<u32> = crc::Crc::<u32>::new(&crc::CRC_32_ISO_HDLC);

fn checksum(s: &str) -> String {
    let mut n = CRC32.checksum(s.as_bytes()) as u64;
    let mut out = [b'0'; CHECKSUM_LEN];
    for slot in out.iter_mut().rev() {
        *slot = BASE62[(n % 62) as usize];
        n /= 62;
    }
    String::from_utf8(out.to_vec()).expect("base62 is ascii")
}

/// Builds a token of `kind` from 30 random bytes' worth of entropy source.
/// `random` must come from a CSPRNG; bytes >= 248 are skipped so every
/// character is uniform over the 62-letter alphabet.
pub fn generate(kind: TokenKind, random: impl FnMut(&mut [u8])) -> String {
    build(kind.prefix(), random)
}

/// An access token of `grant_id` (a ULID): the guard reads the grant from
/// the token itself and asks that grant's Gate, with no lookup.
pub fn generate_access(grant_id: &str, random: impl FnMut(&mut [u8])) -> String {
    build(&format!("{ACCESS_PREFIX}{grant_id}"), random)
}

/// The grant id an access token names (not checked: see `well_formed`).
pub fn grant_of(token: &str) -> Option<&str> {
    token.strip_prefix(ACCESS_PREFIX).and_then(|r| r.get(..GRANT_ID_LEN))
}

fn build(head: &str, mut random: impl FnMut(&mut [u8])) -> String {
    let mut body = String::with_capacity(head.len() + BODY_LEN);
    body.push_str(head);
    let mut buf = [0u8; 64];
    let mut have = 0;
    while have < RANDOM_LEN {
        random(&mut buf);
        for &b in buf.iter() {
            if b < 248 && have < RANDOM_LEN {
                body.push(BASE62[(b % 62) as usize] as char);
                have += 1;
            }
        }
    }
    let sum = checksum(&body);
    body.push_str(&sum);
    body
}

/// True when `token` has a known prefix, the right length and alphabet, and a
/// valid checksum. Costs no I/O.
pub fn well_formed(kind: TokenKind, token: &str) -> bool {
    let Some(rest) = token.strip_prefix(kind.prefix()) else { return false };
    let lead = kind.lead();
    if rest.len() != lead + BODY_LEN || !rest.bytes().all(|b| b.is_ascii_alphanumeric()) {
        return false;
    }
    // A grant id is Crockford base32 (upper case, no I, L, O or U).
    if !rest.as_bytes()[..lead].iter().all(|b| b.is_ascii_digit() || (b.is_ascii_uppercase() && !b"ILOU".contains(b))) {
        return false;
    }
    let (head, sum) = token.split_at(token.len() - CHECKSUM_LEN);
    checksum(head) == sum
}

/// SHA-256 of the whole token, lowercase hex: the only form ever stored.
pub fn hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// `jes_live_a1b2****`: enough to recognise a key, useless to an attacker.
pub fn mask(token: &str) -> String {
    let kind = TokenKind::of(token).unwrap_or(TokenKind::ApiKey);
    let keep: String = token[kind.prefix().len().min(token.len())..].chars().take(MASK_KEEP).collect();
    format!("{}{}****", kind.prefix(), keep)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn counter_rng() -> impl FnMut(&mut [u8]) {
        let mut n: u8 = 0;
        move |buf: &mut [u8]| {
            for b in buf.iter_mut() {
                n = n.wrapping_mul(31).wrapping_add(17);
                *b = n;
            }
        }
    }

    #[test]
    fn generated_keys_have_prefix_length_and_valid_checksum() {
        let k = generate(TokenKind::ApiKey, counter_rng());
        assert!(k.starts_with("jes_live_"));
        assert_eq!(k.len(), KEY_PREFIX.len() + 36);
        assert!(well_formed(TokenKind::ApiKey, &k));
        assert!(!well_formed(TokenKind::Session, &k));
        assert_eq!(TokenKind::of(&k), Some(TokenKind::ApiKey));
    }

    #[test]
    fn the_checksum_crc_is_crc32_iso_hdlc() {
        assert_eq!(CRC32.checksum(b"123456789"), 0xCBF4_3926, "the standard check value");
        let mut x = 1u64;
        for len in 0..200 {
            let bytes: Vec<u8> = (0..len)
                .map(|_| {
                    x = x.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
                    (x >> 56) as u8
                })
                .collect();
            assert_eq!(CRC32.checksum(&bytes), crc32fast::hash(&bytes), "keys issued before keep verifying");
        }
    }

    #[test]
    fn one_changed_character_breaks_the_checksum() {
        let k = generate(TokenKind::ApiKey, counter_rng());
        let mut bytes = k.clone().into_bytes();
        let i = KEY_PREFIX.len() + 3;
        bytes[i] = if bytes[i] == b'a' { b'b' } else { b'a' };
        let typo = String::from_utf8(bytes).unwrap();
        assert!(!well_formed(TokenKind::ApiKey, &typo));
    }

    #[test]
    fn wrong_length_or_alphabet_is_not_well_formed() {
        let k = generate(TokenKind::ApiKey, counter_rng());
        assert!(!well_formed(TokenKind::ApiKey, &k[..k.len() - 1]));
        assert!(!well_formed(TokenKind::ApiKey, &format!("{k}x")));
        assert!(!well_formed(TokenKind::ApiKey, &k.replace('_', "-")));
        assert!(!well_formed(TokenKind::ApiKey, "jes_live_"));
        assert!(!well_formed(TokenKind::ApiKey, &format!("{}{}", KEY_PREFIX, "é".repeat(18))));
    }

    #[test]
    fn session_tokens_are_told_apart_by_prefix() {
        let s = generate(TokenKind::Session, counter_rng());
        assert_eq!(TokenKind::of(&s), Some(TokenKind::Session));
        assert!(well_formed(TokenKind::Session, &s));
        assert_eq!(TokenKind::of("Bearer x"), None);
    }

    #[test]
    fn access_tokens_carry_their_grant_id_and_each_oauth_kind_its_prefix() {
        let grant = "01KBZ7Q2M3N4P5R6S7T8V9W0XA";
        let t = generate_access(grant, counter_rng());
        assert!(t.starts_with("jes_oat_01KBZ7Q2M3N4P5R6S7T8V9W0XA"));
        assert_eq!(t.len(), ACCESS_PREFIX.len() + 26 + 36);
        assert_eq!(TokenKind::of(&t), Some(TokenKind::OAuthAccess));
        assert!(well_formed(TokenKind::OAuthAccess, &t));
        assert_eq!(grant_of(&t), Some(grant));
        // Another grant id breaks the checksum; a lower-case one is not a ULID.
        assert!(!well_formed(TokenKind::OAuthAccess, &t.replacen("01KBZ", "01KBY", 1)));
        let lower = generate_access(&grant.to_lowercase(), counter_rng());
        assert!(!well_formed(TokenKind::OAuthAccess, &lower));
        // An access token without a grant id is not one.
        assert!(!well_formed(TokenKind::OAuthAccess, &generate(TokenKind::OAuthAccess, counter_rng())));
        for (kind, prefix) in
            [(TokenKind::OAuthRefresh, "jes_ort_"), (TokenKind::AuthCode, "jes_oac_"), (TokenKind::DeviceCode, "jes_odc_")]
        {
            let t = generate(kind, counter_rng());
            assert!(t.starts_with(prefix) && well_formed(kind, &t) && TokenKind::of(&t) == Some(kind));
            assert!(!well_formed(TokenKind::OAuthAccess, &t) && !well_formed(TokenKind::ApiKey, &t));
        }
    }

    #[test]
    fn hash_is_sha256_hex_and_mask_keeps_four_characters() {
        assert_eq!(hash("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
        let k = format!("{KEY_PREFIX}a1b2c3{}", "0".repeat(30));
        assert_eq!(mask(&k), "jes_live_a1b2****");
    }

    #[test]
    fn every_character_of_the_alphabet_is_reachable_and_bytes_over_247_are_skipped() {
        let mut all = [0u8; 256];
        for (i, b) in all.iter_mut().enumerate() {
            *b = i as u8;
        }
        let mut calls = 0;
        let k = generate(TokenKind::ApiKey, |buf: &mut [u8]| {
            calls += 1;
            for b in buf.iter_mut() {
                *b = 250; // always rejected until the second call
            }
            if calls > 1 {
                buf.copy_from_slice(&all[..buf.len()]);
            }
        });
        assert!(well_formed(TokenKind::ApiKey, &k));
        assert!(k[KEY_PREFIX.len()..].starts_with("0123456789ABCDEF"));
    }
}
