//! When to try again after a `429`: the backoff the API's documentation
//! recommends (1 s, doubling, at most 60 s), never sooner than the server's
//! `Retry-After`.
//!
//! A spent daily quota is not waited out (its `Retry-After` runs to the end of
//! the UTC day), nor is any `Retry-After` longer than `MAX_WAIT`: a script is
//! better told at once than left hanging.

use std::time::Duration;

/// The backoff's first step and its cap, in seconds.
pub const FIRST: u64 = 1;
pub const CAP: u64 = 60;
/// The longest single wait a `Retry-After` may ask for before we give up instead.
pub const MAX_WAIT: u64 = 300;
/// Retries after a `429` unless `--max-retries` says otherwise.
pub const DEFAULT_RETRIES: u32 = 6;

/// The backoff before retry number `retry` (0 for the first): 1, 2, 4 … 60 s.
pub fn backoff(retry: u32) -> u64 {
    FIRST.saturating_mul(1u64.checked_shl(retry).unwrap_or(u64::MAX)).min(CAP)
}

/// How long to wait before retry `retry` after a 429 with error `code`, or
/// `None` to give up and report it.
pub fn wait(code: &str, retry: u32, max_retries: u32, retry_after: Option<u64>) -> Option<Duration> {
    if code == "quota_exceeded" || retry >= max_retries {
        return None;
    }
    let asked = retry_after.unwrap_or(0);
    if asked > MAX_WAIT {
        return None;
    }
    Some(Duration::from_secs(backoff(retry).max(asked)))
}

/// `Retry-After` as delay-seconds (the API never sends an HTTP date).
pub fn parse_retry_after(value: &str) -> Option<u64> {
    value.trim().parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_backoff_starts_at_one_second_doubles_and_stops_at_sixty() {
        let steps: Vec<u64> = (0..9).map(backoff).collect();
        assert_eq!(steps, [1, 2, 4, 8, 16, 32, 60, 60, 60]);
        assert_eq!(backoff(200), 60, "no overflow however long it goes on");
    }

    #[test]
    fn retry_after_is_honoured_when_longer_than_the_backoff() {
        assert_eq!(wait("rate_limited", 0, 6, Some(42)), Some(Duration::from_secs(42)));
        assert_eq!(wait("rate_limited", 5, 6, Some(3)), Some(Duration::from_secs(32)));
        assert_eq!(wait("rate_limited", 0, 6, None), Some(Duration::from_secs(1)));
        assert_eq!(wait("rate_limited", 1, 6, Some(0)), Some(Duration::from_secs(2)));
    }

    #[test]
    fn a_spent_quota_a_long_retry_after_or_the_last_retry_gives_up() {
        assert_eq!(wait("quota_exceeded", 0, 6, Some(5)), None);
        assert_eq!(wait("rate_limited", 0, 6, Some(MAX_WAIT + 1)), None);
        assert_eq!(wait("rate_limited", 0, 6, Some(MAX_WAIT)), Some(Duration::from_secs(MAX_WAIT)));
        assert_eq!(wait("rate_limited", 6, 6, Some(1)), None);
        assert_eq!(wait("rate_limited", 0, 0, Some(1)), None, "--max-retries 0 fails at once");
    }

    #[test]
    fn retry_after_is_read_as_seconds() {
        assert_eq!(parse_retry_after("7"), Some(7));
        assert_eq!(parse_retry_after(" 60 "), Some(60));
        assert_eq!(parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT"), None);
    }
}
