//! Per-key usage: requests per UTC day split by outcome, kept in the key's
//! Durable Object (no D1 write per request) and flushed to D1 in batches.
//! Also the once-a-day quota threshold marks and the canary's hourly notice.

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::domain::limits::DAY_SECS;

pub const KEEP_DAYS: i64 = 30;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Allowed,
    RateLimited,
    QuotaExceeded,
    InsufficientScope,
    IpNotAllowed,
    SessionOnly,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Outcomes {
    pub allowed: u32,
    pub rate_limited: u32,
    pub quota_exceeded: u32,
    pub insufficient_scope: u32,
    pub ip_not_allowed: u32,
    pub session_only: u32,
}

impl Outcomes {
    fn slot(&mut self, o: Outcome) -> &mut u32 {
        match o {
            Outcome::Allowed => &mut self.allowed,
            Outcome::RateLimited => &mut self.rate_limited,
            Outcome::QuotaExceeded => &mut self.quota_exceeded,
            Outcome::InsufficientScope => &mut self.insufficient_scope,
            Outcome::IpNotAllowed => &mut self.ip_not_allowed,
            Outcome::SessionOnly => &mut self.session_only,
        }
    }

    /// Field-wise maximum: merges a live count with a flushed copy of itself.
    pub fn max(self, o: Outcomes) -> Outcomes {
        Outcomes {
            allowed: self.allowed.max(o.allowed),
            rate_limited: self.rate_limited.max(o.rate_limited),
            quota_exceeded: self.quota_exceeded.max(o.quota_exceeded),
            insufficient_scope: self.insufficient_scope.max(o.insufficient_scope),
            ip_not_allowed: self.ip_not_allowed.max(o.ip_not_allowed),
            session_only: self.session_only.max(o.session_only),
        }
    }

    pub fn total(&self) -> u32 {
        self.allowed + self.rate_limited + self.quota_exceeded + self.insufficient_scope + self.ip_not_allowed + self.session_only
    }
}

/// Counts by UTC day (key: the day's start in unix seconds), oldest first.
/// At most `KEEP_DAYS` entries, so a sorted Vec rather than a BTreeMap (whose
/// node code was 3 KB of the gzipped wasm); serialized as the same map, so
/// state stored by the BTreeMap version reads back unchanged.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Days(Vec<(i64, Outcomes)>);

impl Days {
    pub fn get(&self, day: i64) -> Option<Outcomes> {
        self.0.binary_search_by_key(&day, |e| e.0).ok().map(|i| self.0[i].1)
    }

    /// The day's counts, inserted as zeros when absent.
    pub fn entry(&mut self, day: i64) -> &mut Outcomes {
        let i = match self.0.binary_search_by_key(&day, |e| e.0) {
            Ok(i) => i,
            Err(i) => {
                self.0.insert(i, (day, Outcomes::default()));
                i
            }
        };
        &mut self.0[i].1
    }

    /// Drops the days before `oldest`.
    pub fn keep_from(&mut self, oldest: i64) {
        self.0.retain(|e| e.0 >= oldest);
    }

    pub fn iter(&self) -> impl Iterator<Item = (i64, Outcomes)> + '_ {
        self.0.iter().copied()
    }
}

impl FromIterator<(i64, Outcomes)> for Days {
    fn from_iter<I: IntoIterator<Item = (i64, Outcomes)>>(iter: I) -> Self {
        let mut days = Days::default();
        for (d, o) in iter {
            *days.entry(d) = o;
        }
        days
    }
}

impl Serialize for Days {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_map(self.0.iter().map(|(d, o)| (d, o)))
    }
}

impl<'de> Deserialize<'de> for Days {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Visit;
        impl<'de> serde::de::Visitor<'de> for Visit {
            type Value = Days;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a map of days to counts")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Days, A::Error> {
                let mut days = Days::default();
                while let Some((day, o)) = map.next_entry::<i64, Outcomes>()? {
                    *days.entry(day) = o;
                }
                Ok(days)
            }
        }
        d.deserialize_map(Visit)
    }
}

/// Usage by UTC day.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Usage {
    pub days: Days,
    /// Days changed since the last flush to D1.
    #[serde(default)]
    pub dirty: Vec<i64>,
}

pub fn day_of(now: i64) -> i64 {
    now - now.rem_euclid(DAY_SECS)
}

impl Usage {
    pub fn record(&mut self, now: i64, o: Outcome) {
        let day = day_of(now);
        *self.days.entry(day).slot(o) += 1;
        if !self.dirty.contains(&day) {
            self.dirty.push(day);
        }
        let oldest = day - (KEEP_DAYS - 1) * DAY_SECS;
        self.days.keep_from(oldest);
        self.dirty.retain(|d| *d >= oldest);
    }

    /// The dirty days with their counts, clearing the dirty marks.
    pub fn take_dirty(&mut self) -> Vec<(i64, Outcomes)> {
        let days = std::mem::take(&mut self.dirty);
        days.into_iter().filter_map(|d| self.days.get(d).map(|o| (d, o))).collect()
    }
}

/// Marks of what has been notified, so a notice goes out once per period.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Marks {
    /// UTC day the quota marks belong to.
    pub day: i64,
    pub quota80: bool,
    pub quota100: bool,
    /// Start (unix seconds) of the hour in which the canary last notified.
    pub canary_hour: i64,
}

impl Marks {
    /// Thresholds (80, 100 percent) of the daily quota first reached by `used`
    /// today. Each fires once per UTC day, however usage hovers at the line.
    pub fn quota_crossings(&mut self, now: i64, used: u32, quota: u32) -> Vec<u8> {
        let day = day_of(now);
        if self.day != day {
            self.day = day;
            self.quota80 = false;
            self.quota100 = false;
        }
        let mut out = vec![];
        if quota == 0 {
            return out;
        }
        if !self.quota80 && used as u64 * 100 >= quota as u64 * 80 {
            self.quota80 = true;
            out.push(80);
        }
        if !self.quota100 && used >= quota {
            self.quota100 = true;
            out.push(100);
        }
        out
    }

    /// True for the first canary use in each clock hour.
    pub fn canary_due(&mut self, now: i64) -> bool {
        let hour = now - now.rem_euclid(3600);
        if self.canary_hour == hour {
            return false;
        }
        self.canary_hour = hour;
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const T: i64 = 1_700_006_400 - 1_700_006_400 % DAY_SECS + 3600;

    #[test]
    fn usage_counts_by_day_and_outcome_and_keeps_thirty_days() {
        let mut u = Usage::default();
        u.record(T, Outcome::Allowed);
        u.record(T + 5, Outcome::Allowed);
        u.record(T + 6, Outcome::InsufficientScope);
        u.record(T + DAY_SECS, Outcome::RateLimited);
        let today = u.days.get(day_of(T)).unwrap();
        assert_eq!((today.allowed, today.insufficient_scope, today.total()), (2, 1, 3));
        assert_eq!(u.take_dirty().len(), 2);
        assert!(u.take_dirty().is_empty());
        u.record(T + 40 * DAY_SECS, Outcome::Allowed);
        assert_eq!(u.days.iter().count(), 1, "days older than 30 are dropped");
    }

    #[test]
    fn quota_thresholds_fire_once_per_day_each() {
        let mut m = Marks::default();
        assert!(m.quota_crossings(T, 7, 10).is_empty());
        assert_eq!(m.quota_crossings(T, 8, 10), vec![80]);
        assert!(m.quota_crossings(T, 9, 10).is_empty());
        assert_eq!(m.quota_crossings(T, 10, 10), vec![100]);
        assert!(m.quota_crossings(T, 10, 10).is_empty());
        assert_eq!(m.quota_crossings(T + DAY_SECS, 10, 10), vec![80, 100]);
    }

    #[test]
    fn canary_notifies_once_per_hour() {
        let mut m = Marks::default();
        assert!(m.canary_due(T));
        assert!(!m.canary_due(T + 100));
        assert!(m.canary_due(T + 3600));
    }

    #[test]
    fn max_merges_live_and_flushed_counts() {
        let a = Outcomes { allowed: 3, rate_limited: 1, ..Default::default() };
        let b = Outcomes { allowed: 2, session_only: 4, ..Default::default() };
        let m = a.max(b);
        assert_eq!((m.allowed, m.rate_limited, m.session_only), (3, 1, 4));
    }

    #[test]
    fn days_serialize_as_the_btreemap_they_replace() {
        use std::collections::BTreeMap;
        let o = |n| Outcomes { allowed: n, ..Outcomes::default() };
        let map: BTreeMap<i64, Outcomes> = [(172_800, o(2)), (86_400, o(1)), (259_200, o(3))].into_iter().collect();
        let days: Days = [(259_200, o(3)), (86_400, o(1)), (172_800, o(2))].into_iter().collect();
        assert_eq!(days.iter().map(|e| e.0).collect::<Vec<_>>(), [86_400, 172_800, 259_200], "sorted");
        let old = serde_json::to_string(&map).unwrap();
        assert_eq!(serde_json::to_string(&days).unwrap(), old);
        assert_eq!(serde_json::from_str::<Days>(&old).unwrap(), days);
        let mut d = days.clone();
        d.keep_from(172_800);
        assert_eq!((d.iter().count(), d.get(86_400), d.get(172_800)), (2, None, Some(o(2))));
    }
}
