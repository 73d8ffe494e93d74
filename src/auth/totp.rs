//! Time-based one-time passwords (RFC 6238: HMAC-SHA1, 6 digits, 30 s steps)
//! and the base32 (RFC 4648, no padding) their secrets are shown in. Pure:
//! the HMAC itself runs in WebCrypto (`adapters::crypto::hmac_sha1`), so this
//! module takes the MACs of the steps it asks about.
//!
//! A code is accepted for the step before, the current one, or the next (a
//! phone's clock may be off by one step), and only for a step later than the
//! last one accepted: a code, once used, never works again, and nor does any
//! older one.

/// Seconds per step.
pub const PERIOD: i64 = 30;
/// Secret length in bytes (RFC 4226 recommends 160 bits).
pub const SECRET_LEN: usize = 20;

const ALPHABET: &[u8; 32] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";

/// RFC 4648 base32, upper case, without padding.
pub fn base32_encode(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len().div_ceil(5) * 8);
    let (mut buf, mut bits) = (0u32, 0u32);
    for &b in bytes {
        buf = (buf << 8) | u32::from(b);
        bits += 8;
        while bits >= 5 {
            bits -= 5;
            out.push(ALPHABET[((buf >> bits) & 31) as usize] as char);
        }
    }
    if bits > 0 {
        out.push(ALPHABET[((buf << (5 - bits)) & 31) as usize] as char);
    }
    out
}

/// Decodes base32 in either case, ignoring spaces, hyphens and `=` padding.
/// `None` for any other character or leftover bits that are not zero.
pub fn base32_decode(text: &str) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(text.len() * 5 / 8);
    let (mut buf, mut bits) = (0u32, 0u32);
    for c in text.bytes().filter(|c| !matches!(c, b' ' | b'-' | b'=')) {
        let v = ALPHABET.iter().position(|&a| a == c.to_ascii_uppercase())? as u32;
        buf = (buf << 5) | v;
        bits += 5;
        if bits >= 8 {
            bits -= 8;
            out.push((buf >> bits) as u8);
        }
    }
    (buf & ((1 << bits) - 1) == 0).then_some(out)
}

/// The step a unix time (seconds) falls in.
pub fn step(now_secs: i64) -> i64 {
    now_secs.div_euclid(PERIOD)
}

/// The HMAC message of a step: its big-endian 8 bytes.
pub fn message(step: i64) -> [u8; 8] {
    (step as u64).to_be_bytes()
}

/// RFC 4226 dynamic truncation of an HMAC-SHA1 to a 6-digit code.
pub fn code_of(mac: &[u8; 20]) -> u32 {
    let o = (mac[19] & 0xf) as usize;
    (u32::from_be_bytes([mac[o], mac[o + 1], mac[o + 2], mac[o + 3]]) & 0x7fff_ffff) % 1_000_000
}

/// The steps a code may be checked against at `now_secs`: the previous, the
/// current and the next, those after `last_step` only.
pub fn candidates(now_secs: i64, last_step: i64) -> Vec<i64> {
    let t = step(now_secs);
    [t - 1, t, t + 1].into_iter().filter(|s| *s > last_step).collect()
}

/// A typed code as a number: exactly six digits, spaces ignored.
pub fn parse_code(typed: &str) -> Option<u32> {
    let digits: String = typed.chars().filter(|c| !c.is_whitespace()).collect();
    (digits.len() == 6 && digits.bytes().all(|b| b.is_ascii_digit())).then(|| digits.parse().ok()).flatten()
}

/// The step `typed` is the code of, among `macs` (each candidate step with its
/// HMAC), if any: that step becomes the new `last_step`.
pub fn verify(typed: &str, macs: &[(i64, [u8; 20])]) -> Option<i64> {
    let code = parse_code(typed)?;
    // Every candidate is compared, so the time taken does not say which matched.
    macs.iter().fold(None, |found, (s, mac)| if code_of(mac) == code && found.is_none() { Some(*s) } else { found })
}

/// The provisioning URI authenticator apps read from the QR code.
pub fn otpauth_uri(issuer: &str, account: &str, secret_b32: &str) -> String {
    const LABEL: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC.remove(b'_').remove(b'-').remove(b'.');
    let enc = |s: &str| percent_encoding::utf8_percent_encode(s, LABEL).to_string();
    format!(
        "otpauth://totp/{}:{}?secret={secret_b32}&issuer={}&algorithm=SHA1&digits=6&period={PERIOD}",
        enc(issuer),
        enc(account),
        enc(issuer)
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use hmac::{Hmac, Mac};

    fn hmac_sha1(key: &[u8], msg: &[u8]) -> [u8; 20] {
        let mut m = Hmac::<sha1::Sha1>::new_from_slice(key).unwrap();
        m.update(msg);
        m.finalize().into_bytes().into()
    }

    fn macs(key: &[u8], steps: &[i64]) -> Vec<(i64, [u8; 20])> {
        steps.iter().map(|s| (*s, hmac_sha1(key, &message(*s)))).collect()
    }

    /// RFC 6238 Appendix B, the SHA-1 rows (8 digits there; the last 6 here).
    #[test]
    fn rfc_6238_test_vectors() {
        let key = b"12345678901234567890";
        for (t, eight) in [
            (59, "94287082"),
            (1_111_111_109, "07081804"),
            (1_111_111_111, "14050471"),
            (1_234_567_890, "89005924"),
            (2_000_000_000, "69279037"),
            (20_000_000_000, "65353130"),
        ] {
            let mac = hmac_sha1(key, &message(step(t)));
            let full = (u32::from_be_bytes({
                let o = (mac[19] & 0xf) as usize;
                [mac[o], mac[o + 1], mac[o + 2], mac[o + 3]]
            }) & 0x7fff_ffff)
                % 100_000_000;
            assert_eq!(format!("{full:08}"), eight, "t={t}");
            assert_eq!(format!("{:06}", code_of(&mac)), &eight[2..], "t={t}");
        }
    }

    /// RFC 4226 Appendix D: HOTP values for counters 0..9.
    #[test]
    fn rfc_4226_hotp_values() {
        let expected = [755224, 287082, 359152, 969429, 338314, 254676, 287922, 162583, 399871, 520489];
        for (counter, want) in expected.into_iter().enumerate() {
            assert_eq!(code_of(&hmac_sha1(b"12345678901234567890", &message(counter as i64))), want);
        }
    }

    /// RFC 4648 section 10.
    #[test]
    fn base32_rfc_4648_vectors() {
        for (plain, enc) in [
            ("", ""),
            ("f", "MY"),
            ("fo", "MZXQ"),
            ("foo", "MZXW6"),
            ("foob", "MZXW6YQ"),
            ("fooba", "MZXW6YTB"),
            ("foobar", "MZXW6YTBOI"),
        ] {
            assert_eq!(base32_encode(plain.as_bytes()), enc);
            assert_eq!(base32_decode(enc).unwrap(), plain.as_bytes());
        }
        assert_eq!(base32_decode("mzxw 6ytb-oi======").unwrap(), b"foobar");
        assert_eq!(base32_decode("MZXW1"), None, "1 is not base32");
        assert_eq!(base32_decode("MZ"), None, "leftover bits that are not zero");
        let secret: Vec<u8> = (0..20).collect();
        assert_eq!(base32_encode(&secret).len(), 32);
        assert_eq!(base32_decode(&base32_encode(&secret)).unwrap(), secret);
    }

    #[test]
    fn a_code_is_accepted_once_per_step_and_never_for_an_older_one() {
        let key = b"12345678901234567890";
        let now = 1_700_000_015;
        let t = step(now);
        let code_at = |s: i64| format!("{:06}", code_of(&hmac_sha1(key, &message(s))));
        // First use: the current step matches and becomes last_step.
        let accepted = verify(&code_at(t), &macs(key, &candidates(now, 0))).unwrap();
        assert_eq!(accepted, t);
        // The same code again within the window: its step is no longer a candidate.
        assert_eq!(verify(&code_at(t), &macs(key, &candidates(now, accepted))), None);
        // The next step's code (a fast phone) is accepted; then the current one is older.
        let next = verify(&code_at(t + 1), &macs(key, &candidates(now, accepted))).unwrap();
        assert_eq!(next, t + 1);
        assert_eq!(verify(&code_at(t), &macs(key, &candidates(now, next))), None);
        // Two steps back is outside the window.
        assert_eq!(verify(&code_at(t - 2), &macs(key, &candidates(now, 0))), None);
        assert_eq!(verify(&code_at(t - 1), &macs(key, &candidates(now, 0))), Some(t - 1));
    }

    #[test]
    fn typed_codes_are_six_digits_with_spaces_ignored() {
        assert_eq!(parse_code("123 456"), Some(123_456));
        assert_eq!(parse_code("012345"), Some(12_345));
        for bad in ["12345", "1234567", "12a456", "", "１２３４５６"] {
            assert_eq!(parse_code(bad), None, "{bad}");
        }
    }

    #[test]
    fn the_provisioning_uri_names_issuer_account_and_parameters() {
        assert_eq!(
            otpauth_uri("Jestha", "ada_l", "JBSWY3DPEHPK3PXP"),
            "otpauth://totp/Jestha:ada_l?secret=JBSWY3DPEHPK3PXP&issuer=Jestha&algorithm=SHA1&digits=6&period=30"
        );
        assert!(otpauth_uri("Jestha", "a b:c", "X").starts_with("otpauth://totp/Jestha:a%20b%3Ac?"));
    }
}
