//! Delivering a webhook: the retry schedule, how an attempt is judged, when a
//! failing endpoint is disabled, where a delivery stands, and the messages
//! on the webhook queue.

use serde::{Deserialize, Serialize};

use crate::domain::clock::DAY_MS;
use crate::domain::event::Event;

/// Seconds to wait after attempt 1, 2, …: Svix's schedule. The last attempt is
/// number `len + 1`.
pub const DEFAULT_DELAYS: [u32; 6] = [5, 300, 1800, 7200, 18000, 36000];
/// The queue consumer's `max_retries` (wrangler.engine.toml) must exceed this, so the
/// platform dead-letters only what the consumer itself could not handle.
pub const MAX_DELAYS: usize = 8;
/// Queues accept retry delays up to 12 hours.
pub const MAX_DELAY_SECS: u32 = 43_200;

/// `WEBHOOK_RETRY_DELAYS`: comma-separated seconds.
pub fn parse_delays(s: &str) -> Result<Vec<u32>, String> {
    let delays = s
        .split(',')
        .map(|p| p.trim().parse::<u32>().map_err(|_| format!("WEBHOOK_RETRY_DELAYS: '{}' is not a number of seconds", p.trim())))
        .collect::<Result<Vec<_>, _>>()?;
    if delays.len() > MAX_DELAYS {
        return Err(format!("WEBHOOK_RETRY_DELAYS: at most {MAX_DELAYS} delays"));
    }
    if delays.iter().any(|d| *d > MAX_DELAY_SECS) {
        return Err(format!("WEBHOOK_RETRY_DELAYS: each delay at most {MAX_DELAY_SECS} seconds"));
    }
    Ok(delays)
}

/// What one attempt came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The receiver answered with this status (redirects are not followed).
    Status(u16),
    /// No answer: connection error or timeout.
    NoAnswer(String),
    /// The URL no longer passes the checks (configuration changed): never sent.
    Refused(String),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Delivered,
    /// 410 Gone: disable the endpoint now, no retry.
    Gone,
    /// Try again after this many seconds.
    RetryIn(u32),
    /// The schedule is spent (or retrying cannot help): dead-letter it.
    GiveUp,
}

/// Judges attempt number `attempt` (1-based) under the schedule `delays`.
pub fn verdict(outcome: &Outcome, attempt: u32, delays: &[u32]) -> Verdict {
    match outcome {
        Outcome::Status(s) if (200..300).contains(s) => Verdict::Delivered,
        Outcome::Status(410) => Verdict::Gone,
        Outcome::Refused(_) => Verdict::GiveUp,
        _ => match delays.get(attempt.saturating_sub(1) as usize) {
            Some(d) if attempt >= 1 => Verdict::RetryIn(*d),
            _ => Verdict::GiveUp,
        },
    }
}

/// An endpoint failing without a success for this long is disabled (Svix: 5 days).
pub const DISABLE_AFTER_MS: i64 = 5 * DAY_MS;
/// … or once this many deliveries in a row were given up on.
pub const DISABLE_AFTER_DEAD: u32 = 10;

/// An endpoint's failure record: reset by any success and by re-enabling.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Health {
    /// First failed attempt since the last success.
    pub failing_since: Option<i64>,
    /// Deliveries dead-lettered since the last success.
    pub consecutive_dead: u32,
}

impl Health {
    /// The record after a failed attempt at `now`, and whether to disable.
    pub fn after_failure(self, now: i64) -> (Health, bool) {
        let h = Health { failing_since: Some(self.failing_since.unwrap_or(now)), ..self };
        (h, h.failing_too_long(now))
    }

    /// Whether an endpoint with this record is disabled. Called with the record
    /// as stored after a dead-lettered delivery was counted (read back from the
    /// same atomic update, so concurrent dead letters each see the true count).
    pub fn should_disable(&self, now: i64) -> bool {
        self.consecutive_dead >= DISABLE_AFTER_DEAD || self.failing_too_long(now)
    }

    fn failing_too_long(&self, now: i64) -> bool {
        self.failing_since.is_some_and(|t| now - t >= DISABLE_AFTER_MS)
    }
}

/// How long the delivery record (deliveries and attempts) is kept.
pub const RETENTION_MS: i64 = 30 * DAY_MS;

/// Endpoints one API key may hold.
pub const MAX_ENDPOINTS_PER_KEY: i64 = 10;
/// Endpoints one account may hold over all its keys, so one event fans out
/// to at most this many deliveries.
pub const MAX_ENDPOINTS_PER_ACCOUNT: i64 = 25;

/// `WEBHOOK_HISTORY_PER_ENDPOINT`'s default: the finished deliveries (with
/// their attempts) each endpoint keeps, whatever their age.
pub const DEFAULT_HISTORY_PER_ENDPOINT: u32 = 1000;

/// Whether finishing delivery `delivery_id` also trims its endpoint's record
/// to the newest `keep` finished deliveries. A trim walks about `keep` index
/// entries, so one finished delivery in `keep / 20` (at most 50) does it,
/// picked by its id's random tail: about 20 entries read per delivery, and an
/// endpoint runs about that period over `keep` between trims. Up to 20 kept,
/// every delivery trims.
pub fn trims_history(delivery_id: &str, keep: u32) -> bool {
    let period = (keep / 20).clamp(1, 50);
    // The last four characters: 20 of the ULID's random bits (Crockford base32).
    const CROCKFORD: &[u8; 32] = b"0123456789ABCDEFGHJKMNPQRSTVWXYZ";
    let digit = |b: u8| CROCKFORD.iter().position(|&c| c == b).unwrap_or(0) as u32;
    let tail = delivery_id.bytes().rev().take(4).fold(0u32, |h, b| h * 32 + digit(b));
    tail % period == 0
}

/// Where a delivery stands (`webhook_deliveries.status`), and how one
/// attempt ended (`webhook_attempts.status`: never `Pending`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeliveryStatus {
    /// Not delivered yet; more attempts may follow.
    Pending,
    Succeeded,
    /// An attempt that failed; its delivery stays pending.
    Failed,
    /// Given up on: gone, blocked, or the schedule spent.
    Dead,
}

impl DeliveryStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            DeliveryStatus::Pending => "pending",
            DeliveryStatus::Succeeded => "succeeded",
            DeliveryStatus::Failed => "failed",
            DeliveryStatus::Dead => "dead",
        }
    }
}

/// Why an endpoint is disabled, as the API shows it.
pub const DISABLED_GONE: &str = "gone";
pub const DISABLED_FAILING: &str = "failing";
pub const DISABLED_MANUAL: &str = "manual";

// ---------------------------------------------------------------- queue messages

/// A message on the webhook queue, sent as a JSON string (a structured
/// `serde_json::Value` does not survive the trip through the runtime).
/// Externally tagged (`{"fanout":{…}}`): an internally tagged enum would pull
/// serde's buffering machinery into the wasm.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum Job {
    /// An event to turn into one delivery per matching endpoint.
    #[serde(rename = "fanout")]
    FanOut { event: Event },
    /// One event to one endpoint, with its own retry schedule.
    #[serde(rename = "deliver")]
    Deliver(DeliveryJob),
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DeliveryJob {
    pub delivery_id: String,
    pub endpoint_id: String,
    /// The event id: the `webhook-id`, stable across retries.
    pub event_id: String,
    pub event_type: String,
    /// The exact bytes signed and sent, the same on every attempt.
    pub body: String,
}

impl Job {
    pub fn encode(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }

    pub fn decode(s: &str) -> Result<Job, String> {
        serde_json::from_str(s).map_err(|e| format!("job: {e}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::event::EventType;

    #[test]
    fn one_finished_delivery_in_fifty_trims_a_thousand_kept_and_every_one_trims_a_few() {
        let ids: Vec<String> = (0..20_000u32)
            .map(|i| {
                let seed = i.wrapping_mul(2_654_435_761);
                let mut random = [0u8; 10];
                random[6..].copy_from_slice(&seed.to_be_bytes());
                format!("dlv_{}", crate::domain::ids::ulid(1_700_000_000_000 + i64::from(i), random))
            })
            .collect();
        let trimming = ids.iter().filter(|id| trims_history(id, DEFAULT_HISTORY_PER_ENDPOINT)).count();
        assert!((200..=600).contains(&trimming), "about 1 in 50 of 20,000: {trimming}");
        assert!(ids.iter().all(|id| trims_history(id, 20) && trims_history(id, 3) && trims_history(id, 0)));
        let period_five = ids.iter().filter(|id| trims_history(id, 100)).count();
        assert!((3000..=5000).contains(&period_five), "about 1 in 5: {period_five}");
    }

    #[test]
    fn the_retry_schedule_parses_and_is_bounded() {
        assert_eq!(parse_delays("5,300,1800,7200,18000,36000").unwrap(), DEFAULT_DELAYS.to_vec());
        assert_eq!(parse_delays(" 1, 1 ,1").unwrap(), vec![1, 1, 1]);
        assert!(parse_delays("5,soon").unwrap_err().contains("soon"));
        assert!(parse_delays("").is_err());
        assert!(parse_delays("1,1,1,1,1,1,1,1,1").is_err());
        assert!(parse_delays("50000").is_err());
    }

    #[test]
    fn verdicts_follow_status_and_schedule() {
        let d = [1, 2, 3];
        assert_eq!(verdict(&Outcome::Status(200), 1, &d), Verdict::Delivered);
        assert_eq!(verdict(&Outcome::Status(204), 4, &d), Verdict::Delivered);
        assert_eq!(verdict(&Outcome::Status(410), 1, &d), Verdict::Gone);
        assert_eq!(verdict(&Outcome::Status(500), 1, &d), Verdict::RetryIn(1));
        assert_eq!(verdict(&Outcome::Status(301), 2, &d), Verdict::RetryIn(2));
        assert_eq!(verdict(&Outcome::NoAnswer("timeout".into()), 3, &d), Verdict::RetryIn(3));
        assert_eq!(verdict(&Outcome::Status(500), 4, &d), Verdict::GiveUp);
        assert_eq!(verdict(&Outcome::Refused("url".into()), 1, &d), Verdict::GiveUp);
        assert_eq!(verdict(&Outcome::Status(500), 1, &[]), Verdict::GiveUp);
    }

    #[test]
    fn endpoints_are_disabled_after_five_days_of_failure_or_ten_dead_deliveries() {
        let t0 = 1_700_000_000_000;
        let (h, off) = Health::default().after_failure(t0);
        assert_eq!((h.failing_since, off), (Some(t0), false));
        let (h, off) = h.after_failure(t0 + DISABLE_AFTER_MS - 1);
        assert_eq!((h.failing_since, off), (Some(t0), false), "the streak keeps its start");
        assert!(h.after_failure(t0 + DISABLE_AFTER_MS).1);
        let h = Health { failing_since: Some(t0), consecutive_dead: DISABLE_AFTER_DEAD - 1 };
        assert!(!h.should_disable(t0 + 1));
        assert!(Health { consecutive_dead: DISABLE_AFTER_DEAD, ..h }.should_disable(t0 + 1));
        assert!(Health { failing_since: Some(t0), consecutive_dead: 1 }.should_disable(t0 + DISABLE_AFTER_MS));
        assert!(!Health::default().should_disable(t0));
    }

    #[test]
    fn jobs_round_trip_as_json_strings() {
        let e = Event::new(EventType::WebhookTest, "acct", 1_700_000_000_000, [7; 10], serde_json::json!({"endpointId": "wh_1"}));
        let j = Job::FanOut { event: e.clone() };
        match Job::decode(&j.encode()).unwrap() {
            Job::FanOut { event } => assert_eq!((event.id, event.data), (e.id, e.data)),
            other => panic!("{other:?}"),
        }
        let d = DeliveryJob {
            delivery_id: "dlv_1".into(),
            endpoint_id: "wh_1".into(),
            event_id: "evt_1".into(),
            event_type: "webhook.test".into(),
            body: "{\"a\":1}".into(),
        };
        match Job::decode(&Job::Deliver(d.clone()).encode()).unwrap() {
            Job::Deliver(back) => assert_eq!(back, d),
            other => panic!("{other:?}"),
        }
        assert!(Job::decode("{\"explode\":{}}").is_err());
        assert!(j.encode().starts_with("{\"fanout\":{"));
        assert!(Job::decode("not json").is_err());
    }
}
