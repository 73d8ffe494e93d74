//! Timestamps: the API speaks RFC 3339 UTC strings, storage keeps unix
//! milliseconds. Pure conversions; the current time comes from the runtime.
//!
//! Written out here (Howard Hinnant's days-from-civil arithmetic) rather than
//! with the `time` crate: its general formatter and parser were 6.8 KB of the
//! gzipped wasm for three fixed formats. The native tests hold these functions
//! to `time`'s answers, over random instants and strings.

/// Days since 1970-01-01 as a proleptic Gregorian (year, month, day).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

/// The inverse of `civil_from_days`.
fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let mp = i64::from(if m > 2 { m - 3 } else { m + 9 });
    let doy = (153 * mp + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn days_in_month(y: i64, m: u32) -> u32 {
    match m {
        2 if y % 4 == 0 && (y % 100 != 0 || y % 400 == 0) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// `YYYY-MM-DDTHH:MM:SS` of unix milliseconds, and the milliseconds past the
/// second; None outside years 0..=9999 (RFC 3339's range).
fn fields(ms: i64) -> Option<(String, i64)> {
    let secs = ms.div_euclid(1000);
    let (y, mo, d) = civil_from_days(secs.div_euclid(86_400));
    let s = secs.rem_euclid(86_400);
    if !(0..=9999).contains(&y) {
        return None;
    }
    let text = format!("{y:04}-{mo:02}-{d:02}T{:02}:{:02}:{:02}", s / 3600, s / 60 % 60, s % 60);
    Some((text, ms.rem_euclid(1000)))
}

/// Unix milliseconds as `2026-11-26T15:47:31.123Z` (fraction without trailing
/// zeros, none when whole); empty outside years 0..=9999.
pub fn rfc3339(ms: i64) -> String {
    let Some((mut text, frac)) = fields(ms) else { return String::new() };
    if frac != 0 {
        let digits = format!(".{frac:03}");
        text.push_str(digits.trim_end_matches('0'));
    }
    text.push('Z');
    text
}

/// Unix milliseconds as `2026-11-26T15:47:31.120Z`, always three fraction
/// digits: exactly what the SQL renderers produce with
/// `strftime('%Y-%m-%dT%H:%M:%fZ')`. Empty outside years 0..=9999.
pub fn rfc3339_millis(ms: i64) -> String {
    fields(ms).map(|(text, frac)| format!("{text}.{frac:03}Z")).unwrap_or_default()
}

/// Unix milliseconds as an RFC 9110 HTTP-date (IMF-fixdate), e.g. tus's
/// `Upload-Expires`: `Sun, 06 Nov 1994 08:49:37 GMT`.
pub fn http_date(ms: i64) -> String {
    const DAYS: [&str; 7] = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"];
    const MONTHS: [&str; 12] = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];
    let secs = ms.div_euclid(1000);
    let days = secs.div_euclid(86_400);
    let (y, m, d) = civil_from_days(days);
    let s = secs.rem_euclid(86_400);
    format!(
        "{}, {d:02} {} {y:04} {:02}:{:02}:{:02} GMT",
        DAYS[(days + 4).rem_euclid(7) as usize],
        MONTHS[m as usize - 1],
        s / 3600,
        s / 60 % 60,
        s % 60
    )
}

/// Parses an RFC 3339 timestamp (any offset; `T`, `t` or a space; `Z`/`z`; no leap
/// seconds) into unix milliseconds, truncating finer fractions toward zero.
pub fn parse_rfc3339(s: &str) -> Option<i64> {
    let b = s.as_bytes();
    let num = |from: usize, len: usize| -> Option<u32> {
        let digits = b.get(from..from + len)?;
        digits.iter().try_fold(0u32, |n, c| c.is_ascii_digit().then(|| n * 10 + u32::from(c - b'0')))
    };
    let sep = |at: usize, ok: &[u8]| b.get(at).is_some_and(|c| ok.contains(c));
    if !(sep(4, b"-") && sep(7, b"-") && sep(10, b"Tt ") && sep(13, b":") && sep(16, b":")) {
        return None;
    }
    let (y, mo, d) = (i64::from(num(0, 4)?), num(5, 2)?, num(8, 2)?);
    let (h, mi, sec) = (num(11, 2)?, num(14, 2)?, num(17, 2)?);
    if !(1..=12).contains(&mo) || d == 0 || d > days_in_month(y, mo) || h > 23 || mi > 59 || sec > 59 {
        return None;
    }
    let mut at = 19;
    let mut nanos: i64 = 0;
    if sep(at, b".") {
        at += 1;
        let start = at;
        while b.get(at).is_some_and(u8::is_ascii_digit) {
            if at - start < 9 {
                nanos = nanos * 10 + i64::from(b[at] - b'0');
            }
            at += 1;
        }
        if at == start {
            return None;
        }
        nanos *= 10_i64.pow(9u32.saturating_sub((at - start) as u32));
    }
    let offset_secs = match b.get(at..)? {
        [b'Z' | b'z'] => 0,
        [sign @ (b'+' | b'-'), _, _, b':', _, _] => {
            let (oh, om) = (num(at + 1, 2)?, num(at + 4, 2)?);
            if oh > 23 || om > 59 {
                return None;
            }
            let o = i64::from(oh * 3600 + om * 60);
            if *sign == b'-' {
                -o
            } else {
                o
            }
        }
        _ => return None,
    };
    let secs = days_from_civil(y, mo, d) * 86_400 + i64::from(h * 3600 + mi * 60 + sec) - offset_secs;
    let total = i128::from(secs) * 1_000_000_000 + i128::from(nanos);
    i64::try_from(total / 1_000_000).ok()
}

pub const MINUTE_MS: i64 = 60_000;
pub const DAY_MS: i64 = 86_400_000;

#[cfg(test)]
mod tests {
    use super::*;
    use time::format_description::well_known::Rfc3339;
    use time::OffsetDateTime;

    #[test]
    fn http_dates_are_rfc_9110_imf_fixdates() {
        use time::format_description::well_known::Rfc2822;
        assert_eq!(http_date(784_111_777_000), "Sun, 06 Nov 1994 08:49:37 GMT");
        assert_eq!(http_date(0), "Thu, 01 Jan 1970 00:00:00 GMT");
        for ms in [1_700_000_000_123_i64, 951_782_400_000, 4_102_444_799_999] {
            let t = OffsetDateTime::from_unix_timestamp(ms.div_euclid(1000)).unwrap();
            let want = t.format(&Rfc2822).unwrap().replace("+0000", "GMT");
            assert_eq!(http_date(ms), want, "{ms}");
        }
    }

    #[test]
    fn formats_utc_with_z() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(1_700_000_000_123), "2023-11-14T22:13:20.123Z");
        assert_eq!(rfc3339(1_700_000_000_120), "2023-11-14T22:13:20.12Z");
        assert_eq!(rfc3339_millis(1_700_000_000_120), "2023-11-14T22:13:20.120Z");
        assert_eq!(rfc3339_millis(-1), "1969-12-31T23:59:59.999Z");
        assert_eq!(rfc3339(253_402_300_800_000), "", "year 10000");
    }

    #[test]
    fn parses_offsets_and_round_trips() {
        assert_eq!(parse_rfc3339("2023-11-14T23:13:20.123+01:00"), Some(1_700_000_000_123));
        assert_eq!(parse_rfc3339(&rfc3339(1_700_000_000_000)), Some(1_700_000_000_000));
        assert_eq!(parse_rfc3339("2023-11-14 22:13:20"), None);
        assert_eq!(parse_rfc3339("tomorrow"), None);
        assert_eq!(parse_rfc3339("2024-02-29T00:00:00Z"), Some(1_709_164_800_000));
        assert_eq!(parse_rfc3339("2023-02-29T00:00:00Z"), None);
    }

    /// A small deterministic generator (no rand crate needed for tests).
    struct Lcg(u64);
    impl Lcg {
        fn next(&mut self, n: u64) -> u64 {
            self.0 = self.0.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
            (self.0 >> 33) % n
        }
    }

    const MIN_MS: i64 = -62_167_219_200_000; // 0000-01-01
    const MAX_MS: i64 = 253_402_300_799_999; // 9999-12-31T23:59:59.999

    #[test]
    fn formatting_agrees_with_the_time_crate() {
        let mut r = Lcg(7);
        let span = (MAX_MS - MIN_MS) as u64;
        let mut cases: Vec<i64> = (0..200_000).map(|_| MIN_MS + r.next(span) as i64).collect();
        cases.extend([MIN_MS, MAX_MS, 0, -1, 951_782_400_000, 4_107_542_400_000, MIN_MS - 1, MAX_MS + 1]);
        for ms in cases {
            let t = OffsetDateTime::from_unix_timestamp_nanos(ms as i128 * 1_000_000).ok();
            let want = t.and_then(|t| t.format(&Rfc3339).ok()).unwrap_or_default();
            assert_eq!(rfc3339(ms), want, "{ms}");
            if !want.is_empty() {
                assert_eq!(parse_rfc3339(&want), Some(ms), "{want}");
                let t = t.unwrap();
                let fixed = format!(
                    "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z",
                    t.year(),
                    t.month() as u8,
                    t.day(),
                    t.hour(),
                    t.minute(),
                    t.second(),
                    ms.rem_euclid(1000)
                );
                assert_eq!(rfc3339_millis(ms), fixed);
            }
        }
    }

    #[test]
    fn parsing_agrees_with_the_time_crate() {
        let oracle = |s: &str| {
            OffsetDateTime::parse(s, &Rfc3339).ok().and_then(|t| i64::try_from(t.unix_timestamp_nanos() / 1_000_000).ok())
        };
        let mut r = Lcg(11);
        let pick = |r: &mut Lcg, opts: &[&str]| opts[r.next(opts.len() as u64) as usize].to_string();
        for _ in 0..200_000 {
            // Mostly valid fields, with edges and junk mixed in.
            let s = format!(
                "{:04}-{:02}-{:02}{}{:02}:{:02}:{:02}{}{}",
                r.next(10_000),
                r.next(14),
                r.next(33),
                pick(&mut r, &["T", "t", " ", "x"]),
                r.next(25),
                r.next(61),
                r.next(61),
                pick(&mut r, &["", ".5", ".123", ".1234567891", ".", ".0009", ".999999999"]),
                pick(&mut r, &["Z", "z", "+01:00", "-23:59", "+24:00", "-00:00", "+05:60", "+0100", "", "Z "]),
            );
            // time reads :60 as a leap second, and takes any character between
            // date and time; we refuse both (RFC 3339 allows T, t or a space).
            if s.get(17..19) == Some("60") || s.get(10..11) == Some("x") {
                assert_eq!(parse_rfc3339(&s), None, "{s}");
                continue;
            }
            assert_eq!(parse_rfc3339(&s), oracle(&s), "{s}");
        }
        for s in ["", "2023", "2023-11-14T22:13:20", "+2023-11-14T22:13:20Z", "2023-11-14T22:13:20.Z", "２023-11-14T22:13:20Z"] {
            assert_eq!(parse_rfc3339(s), None, "{s}");
            assert_eq!(oracle(s), None, "{s}");
        }
    }

    #[test]
    fn days_round_trip() {
        for z in -800_000..800_000 {
            let (y, m, d) = civil_from_days(z);
            assert!((1..=12).contains(&m) && d >= 1 && d <= days_in_month(y, m));
            assert_eq!(days_from_civil(y, m, d), z);
        }
    }
}
