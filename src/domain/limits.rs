//! Window arithmetic for per-minute rate limits, UTC-day quotas and login
//! throttles. Pure: time comes in as arguments.

use serde::{Deserialize, Serialize};

pub const DAY_SECS: i64 = 86_400;

/// A fixed window counter: `count` requests since `start` (unix seconds).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Window {
    pub start: i64,
    pub count: u32,
}

impl Window {
    /// Moves the window forward if `now` is past its end; windows are aligned to
    /// multiples of `len` since the epoch, so a UTC day is `len = 86400`.
    pub fn roll(&mut self, now: i64, len: i64) {
        let start = now - now.rem_euclid(len);
        if start != self.start {
            self.start = start;
            self.count = 0;
        }
    }

    pub fn reset_at(&self, len: i64) -> i64 {
        self.start + len
    }
}

/// One policy's standing after a request: what the headers report.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Standing {
    pub limit: u32,
    pub remaining: u32,
    /// Unix seconds when the window resets.
    pub reset: i64,
    /// Window length in seconds.
    pub window: i64,
}

impl Standing {
    pub fn seconds_left(&self, now: i64) -> u64 {
        (self.reset - now).max(1) as u64
    }
}

/// The configured policies of a credential: per-minute always, daily for keys.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Policy {
    pub per_window: u32,
    pub window_secs: i64,
    pub per_day: Option<u32>,
}

/// The counters a credential's Durable Object keeps.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Counters {
    pub minute: Window,
    pub day: Window,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LimitOutcome {
    Allowed,
    RateLimited { retry_after: u64 },
    QuotaExceeded { retry_after: u64 },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Standings {
    pub minute: Standing,
    #[serde(default)]
    pub day: Option<Standing>,
}

impl Counters {
    /// The standing without counting anything (for refused requests and introspection).
    pub fn standings(&mut self, policy: &Policy, now: i64) -> Standings {
        self.minute.roll(now, policy.window_secs);
        self.day.roll(now, DAY_SECS);
        let minute = Standing {
            limit: policy.per_window,
            remaining: policy.per_window.saturating_sub(self.minute.count),
            reset: self.minute.reset_at(policy.window_secs),
            window: policy.window_secs,
        };
        let day = policy.per_day.map(|limit| Standing {
            limit,
            remaining: limit.saturating_sub(self.day.count),
            reset: self.day.reset_at(DAY_SECS),
            window: DAY_SECS,
        });
        Standings { minute, day }
    }

    /// Counts one request if both policies allow it. A refused request counts
    /// against neither window.
    pub fn take(&mut self, policy: &Policy, now: i64) -> (LimitOutcome, Standings) {
        let before = self.standings(policy, now);
        if before.minute.remaining == 0 {
            let retry_after = before.minute.seconds_left(now);
            return (LimitOutcome::RateLimited { retry_after }, before);
        }
        if let Some(day) = before.day {
            if day.remaining == 0 {
                let retry_after = day.seconds_left(now);
                return (LimitOutcome::QuotaExceeded { retry_after }, before);
            }
        }
        self.minute.count += 1;
        self.day.count += 1;
        (LimitOutcome::Allowed, self.standings(policy, now))
    }
}

/// True once a credential has made no request in the current UTC day: its
/// Durable Object may then drop counters and cached state (D1 is the record).
pub fn idle(counters: &Counters, now: i64) -> bool {
    let today = now - now.rem_euclid(DAY_SECS);
    counters.day.start < today || counters.day.count == 0
}

impl Standings {
    /// The policy the `X-RateLimit-*` headers describe: the one with fewer
    /// requests left (the per-minute one on a tie).
    pub fn tightest(&self) -> Standing {
        match self.day {
            Some(d) if d.remaining < self.minute.remaining => d,
            _ => self.minute,
        }
    }
}

/// What a failure throttle (logins, `currentPassword` checks) is asked to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum ThrottleAction {
    /// Forgets the failures (a right answer).
    Clear,
    /// Counts a try before it is made, if one is allowed: parallel tries then
    /// cannot all pass one check while their answers are still being worked out.
    Attempt,
    /// Gives back one `Attempt` that turned out not to be a failure.
    Refund,
}

/// Applies `action` to the window (already rolled to now); true when the try
/// is allowed (for `Attempt`: counted and allowed).
pub fn throttle_step(w: &mut Window, action: ThrottleAction, limit: u32) -> bool {
    match action {
        ThrottleAction::Clear => w.count = 0,
        ThrottleAction::Refund => w.count = w.count.saturating_sub(1),
        ThrottleAction::Attempt if w.count < limit => {
            w.count += 1;
            return true;
        }
        ThrottleAction::Attempt => return false,
    }
    w.count < limit
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attempts_are_counted_before_they_are_made_and_refused_past_the_limit() {
        let mut w = Window::default();
        let allowed: Vec<bool> = (0..5).map(|_| throttle_step(&mut w, ThrottleAction::Attempt, 3)).collect();
        assert_eq!(allowed, [true, true, true, false, false], "parallel tries: only `limit` get through");
        assert_eq!(w.count, 3, "refused attempts are not counted");
        assert!(throttle_step(&mut w, ThrottleAction::Refund, 3), "a success gives its attempt back");
        assert_eq!(w.count, 2);
        assert!(throttle_step(&mut w, ThrottleAction::Clear, 3) && w.count == 0);
        w.count = 0;
        assert!(throttle_step(&mut w, ThrottleAction::Refund, 3) && w.count == 0, "never below zero");
    }

    const P: Policy = Policy { per_window: 3, window_secs: 60, per_day: Some(5) };

    #[test]
    fn exactly_the_limit_is_allowed_in_one_window() {
        let mut c = Counters::default();
        let now = 1_700_000_010;
        for i in 0..3 {
            let (o, s) = c.take(&P, now);
            assert_eq!(o, LimitOutcome::Allowed);
            assert_eq!(s.minute.remaining, 2 - i);
        }
        let (o, s) = c.take(&P, now + 5);
        // 1_700_000_010 lies 30 s into the minute that ends at 1_700_000_040.
        assert_eq!(o, LimitOutcome::RateLimited { retry_after: 25 });
        assert_eq!(s.minute.remaining, 0);
        assert_eq!(s.minute.reset, 1_700_000_040);
        assert_eq!(c.day.count, 3, "a refused request is not counted");
    }

    #[test]
    fn the_window_resets_at_its_boundary() {
        let mut c = Counters::default();
        let t0 = 1_700_000_080; // 20 s before a minute boundary
        for _ in 0..3 {
            c.take(&P, t0);
        }
        assert!(matches!(c.take(&P, t0 + 19).0, LimitOutcome::RateLimited { retry_after: 1 }));
        assert_eq!(c.take(&P, t0 + 20).0, LimitOutcome::Allowed);
    }

    #[test]
    fn daily_quota_is_independent_of_the_minute_window() {
        let mut c = Counters::default();
        let t0: i64 = 1_700_006_400; // a UTC midnight is at a multiple of 86400
        let day_start = t0 - t0.rem_euclid(DAY_SECS);
        for i in 0..5 {
            assert_eq!(c.take(&P, t0 + i * 60).0, LimitOutcome::Allowed);
        }
        let (o, s) = c.take(&P, t0 + 600);
        let left = (day_start + DAY_SECS - (t0 + 600)) as u64;
        assert_eq!(o, LimitOutcome::QuotaExceeded { retry_after: left });
        assert_eq!(s.tightest().remaining, 0);
        assert_eq!(s.tightest().window, DAY_SECS);
        assert_eq!(c.take(&P, day_start + DAY_SECS).0, LimitOutcome::Allowed);
    }

    #[test]
    fn a_credential_is_idle_once_its_day_has_passed() {
        let mut c = Counters::default();
        let t: i64 = 1_700_006_400;
        assert!(idle(&c, t));
        c.take(&P, t);
        assert!(!idle(&c, t + 10));
        assert!(idle(&c, t - t.rem_euclid(DAY_SECS) + DAY_SECS + 60));
    }

    #[test]
    fn sessions_have_no_daily_policy() {
        let p = Policy { per_window: 2, window_secs: 60, per_day: None };
        let mut c = Counters::default();
        for _ in 0..2 {
            assert_eq!(c.take(&p, 100).0, LimitOutcome::Allowed);
        }
        assert!(matches!(c.take(&p, 100).0, LimitOutcome::RateLimited { .. }));
        assert!(c.standings(&p, 100).day.is_none());
    }

    #[test]
    fn tightest_prefers_the_policy_with_fewer_requests_left() {
        let mut c = Counters::default();
        let p = Policy { per_window: 60, window_secs: 60, per_day: Some(10) };
        let (_, s) = c.take(&p, 0);
        assert_eq!(s.tightest().limit, 10);
        let p = Policy { per_window: 5, window_secs: 60, per_day: Some(10_000) };
        let (_, s) = c.take(&p, 0);
        assert_eq!(s.tightest().limit, 5);
    }
}

/// The response fields describing a credential's standing: the classic
/// `X-RateLimit-*` trio (for the tightest policy) and the IETF draft
/// `RateLimit-Policy` / `RateLimit` structured fields listing both policies.
pub fn header_fields(s: &Standings, now: i64) -> Vec<(&'static str, String)> {
    let t = s.tightest();
    let mut policy = format!("\"minute\";q={};w={}", s.minute.limit, s.minute.window);
    let mut state = format!("\"minute\";r={};t={}", s.minute.remaining, (s.minute.reset - now).max(0));
    if let Some(d) = s.day {
        policy.push_str(&format!(", \"day\";q={};w={}", d.limit, d.window));
        state.push_str(&format!(", \"day\";r={};t={}", d.remaining, (d.reset - now).max(0)));
    }
    vec![
        ("x-ratelimit-limit", t.limit.to_string()),
        ("x-ratelimit-remaining", t.remaining.to_string()),
        ("x-ratelimit-reset", t.reset.to_string()),
        ("ratelimit-policy", policy),
        ("ratelimit", state),
    ]
}

#[cfg(test)]
mod header_tests {
    use super::*;

    #[test]
    fn headers_describe_both_policies() {
        let s = Standings {
            minute: Standing { limit: 60, remaining: 59, reset: 1060, window: 60 },
            day: Some(Standing { limit: 10_000, remaining: 9_990, reset: 86_400, window: 86_400 }),
        };
        let h = header_fields(&s, 1030);
        let get = |n: &str| h.iter().find(|(k, _)| *k == n).unwrap().1.clone();
        assert_eq!(get("x-ratelimit-limit"), "60");
        assert_eq!(get("x-ratelimit-remaining"), "59");
        assert_eq!(get("x-ratelimit-reset"), "1060");
        assert_eq!(get("ratelimit-policy"), "\"minute\";q=60;w=60, \"day\";q=10000;w=86400");
        assert_eq!(get("ratelimit"), "\"minute\";r=59;t=30, \"day\";r=9990;t=85370");
    }
}
