//! Addresses that presented too many invented credentials, remembered by one
//! isolate so their next requests are answered before any Durable Object or
//! D1 read. The count itself lives in a throttle Durable Object (shared by
//! every isolate); this is only the isolate's memory of its verdict, until
//! the verdict's `Retry-After` runs out. Bounded: at most `cap` addresses,
//! expired ones dropped first, then the one blocked soonest to end.

use std::collections::HashMap;

#[derive(Debug)]
pub struct Blocklist {
    /// address -> blocked until (unix ms)
    until: HashMap<String, i64>,
    cap: usize,
}

impl Blocklist {
    pub fn new(cap: usize) -> Blocklist {
        Blocklist { until: HashMap::new(), cap: cap.max(1) }
    }

    /// Seconds the address must still wait (at least 1), or `None`.
    pub fn retry_after(&self, address: &str, now_ms: i64) -> Option<u64> {
        let until = *self.until.get(address)?;
        (until > now_ms).then(|| ((until - now_ms + 999) / 1000).max(1) as u64)
    }

    /// Remembers that `address` is refused for `retry_after` seconds.
    pub fn block(&mut self, address: &str, retry_after: u64, now_ms: i64) {
        let until = now_ms.saturating_add((retry_after.max(1) as i64).saturating_mul(1000));
        if !self.until.contains_key(address) && self.until.len() >= self.cap {
            self.until.retain(|_, u| *u > now_ms);
            if self.until.len() >= self.cap {
                if let Some(first) = self.until.iter().min_by_key(|(_, u)| **u).map(|(a, _)| a.clone()) {
                    self.until.remove(&first);
                }
            }
        }
        self.until.insert(address.to_string(), until);
    }

    pub fn len(&self) -> usize {
        self.until.len()
    }

    pub fn is_empty(&self) -> bool {
        self.until.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_blocked_address_waits_its_retry_after_and_then_passes() {
        let mut b = Blocklist::new(8);
        assert_eq!(b.retry_after("192.0.2.1", 0), None);
        b.block("192.0.2.1", 30, 1_000);
        assert_eq!(b.retry_after("192.0.2.1", 1_000), Some(30));
        assert_eq!(b.retry_after("192.0.2.1", 30_500), Some(1), "a part second rounds up");
        assert_eq!(b.retry_after("192.0.2.1", 31_000), None);
        assert_eq!(b.retry_after("192.0.2.2", 1_000), None, "other addresses pass");
    }

    #[test]
    fn it_never_holds_more_than_its_cap_and_drops_the_expired_first() {
        let mut b = Blocklist::new(3);
        b.block("a", 10, 0);
        b.block("b", 100, 0);
        b.block("c", 50, 0);
        // At 20 s "a" has expired: it goes, the live ones stay.
        b.block("d", 10, 20_000);
        assert_eq!(b.len(), 3);
        assert_eq!(b.retry_after("a", 20_000), None);
        assert!(b.retry_after("b", 20_000).is_some() && b.retry_after("c", 20_000).is_some());
        // All live: the one that ends soonest ("d", at 30 s) makes room.
        b.block("e", 10, 21_000);
        assert_eq!(b.len(), 3);
        assert_eq!(b.retry_after("d", 21_000), None);
        assert!(b.retry_after("e", 21_000).is_some());
        // Blocking a known address again only moves its end.
        b.block("e", 60, 22_000);
        assert_eq!((b.len(), b.retry_after("e", 22_000)), (3, Some(60)));
    }
}
