//! Webhook delivery, the queue consumer's steps: an event fans out into one
//! delivery per matching endpoint, each delivery is one signed POST per
//! attempt, retried on the configured schedule, and a delivery whose schedule
//! is spent is recorded dead (the dead-letter queue). Each step loads what it
//! needs, asks `domain::webhook` what to do, writes the result in one D1
//! batch and tells the consumer whether to ack or retry the message.

use serde::Deserialize;
use wasm_bindgen::JsValue;
use worker::{AbortSignal, Env, Fetch, Headers, Request};

use crate::adapters::crypto::random_bytes;
use crate::adapters::d1::{self, V};
use crate::adapters::queue::{send, send_many, DLQ_BINDING, QUEUE_BINDING};
use crate::adapters::webhook_secrets::open_secret;
use crate::config::Config;
use crate::domain::event::{Event, EventType};
use crate::domain::ids::ulid;
use crate::domain::webhook::{
    self as wh, DeliveryJob, DeliveryStatus, Health, Job, Outcome, Verdict, DISABLED_FAILING, DISABLED_GONE,
};
use crate::error::ApiResult;
use crate::http::now_ms;

/// How long a receiver has to answer (Svix uses 15 s too).
pub const TIMEOUT_MS: u32 = 15_000;
/// Delay before retrying a message that failed for our own reasons (D1, queue).
pub const INTERNAL_RETRY_SECS: u32 = 10;

/// What the consumer does with a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Ack,
    RetryIn(u32),
}

/// The configured schedule; a malformed value falls back to the default (and says so).
pub fn retry_delays(env: &Env) -> Vec<u32> {
    let config = Config::get(env);
    if let Some(e) = &config.webhook_retry_delays_error {
        crate::log::error("config", "webhook retry delays", e);
    }
    config.webhook_retry_delays.clone()
}

#[derive(Deserialize)]
struct Candidate {
    id: String,
    events: String,
    scopes: String,
}

#[derive(Deserialize)]
struct Unqueued {
    id: String,
    endpoint_id: String,
}

/// One event becomes one delivery per matching endpoint: the account's
/// enabled endpoints whose key is live and may see the event type, and which
/// subscribed to it (a test event goes to the one endpoint it names).
/// Idempotent: a repeated fan-out queues only deliveries not yet queued.
pub async fn fan_out(env: &Env, event: &Event) -> ApiResult<usize> {
    let db = d1::db(env)?;
    let now = now_ms();
    let target = match event.kind {
        EventType::WebhookTest => Some(event.data.get("endpointId").and_then(|v| v.as_str()).unwrap_or("").to_string()),
        _ => None,
    };
    // A key notice goes to that key's endpoints even when the key is revoked,
    // expired or a canary: it is about the key itself.
    let about_key = event.kind.is_key_event().then(|| event.data.get("keyId").and_then(|v| v.as_str()).unwrap_or("").to_string());
    let candidates: Vec<Candidate> = d1::stmt(
        &db,
        "SELECT e.id, e.events, k.scopes FROM webhook_endpoints e JOIN api_keys k ON k.id = e.key_id \
         WHERE e.user_id = ?1 AND e.enabled = 1 AND (?3 IS NULL OR e.id = ?3) AND (?4 IS NULL OR e.key_id = ?4) \
         AND (?4 IS NOT NULL OR (k.revoked_at IS NULL AND k.canary = 0 AND (k.expires_at IS NULL OR k.expires_at > ?2)))",
        &[(&event.account_id).into(), now.into(), target.as_ref().into(), about_key.as_ref().into()],
    )?
    .all()
    .await?
    .results()?;
    let matching: Vec<Candidate> =
        candidates.into_iter().filter(|c| target.is_some() || wh::wants(&c.events, &c.scopes, event.kind)).collect();
    if matching.is_empty() {
        return Ok(0);
    }
    let mut stmts = Vec::new();
    for c in &matching {
        stmts.push(d1::stmt(
            &db,
            "INSERT OR IGNORE INTO webhook_deliveries (id, event_id, endpoint_id, event_type, created_at, updated_at) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?5)",
            &[
                V::T(&format!("dlv_{}", ulid(now, random_bytes()))),
                (&event.id).into(),
                (&c.id).into(),
                event.kind.as_str().into(),
                now.into(),
            ],
        )?);
    }
    stmts.push(d1::stmt(
        &db,
        "SELECT id, endpoint_id FROM webhook_deliveries WHERE event_id = ?1 AND queued_at IS NULL",
        &[(&event.id).into()],
    )?);
    let results = db.batch(stmts).await?;
    let unqueued: Vec<Unqueued> = results.last().map(|r| r.results()).transpose()?.unwrap_or_default();
    if unqueued.is_empty() {
        return Ok(0);
    }
    let body = wh::payload(event);
    let jobs: Vec<Job> = unqueued
        .iter()
        .map(|u| {
            Job::Deliver(DeliveryJob {
                delivery_id: u.id.clone(),
                endpoint_id: u.endpoint_id.clone(),
                event_id: event.id.clone(),
                event_type: event.kind.as_str().to_string(),
                body: body.clone(),
            })
        })
        .collect();
    send_many(env, QUEUE_BINDING, &jobs).await?;
    d1::stmt(
        &db,
        "UPDATE webhook_deliveries SET queued_at = ?1 WHERE event_id = ?2 AND queued_at IS NULL",
        &[now.into(), (&event.id).into()],
    )?
    .run()
    .await?;
    Ok(jobs.len())
}

#[derive(Deserialize)]
struct Target {
    status: String,
    attempts: f64,
    url: String,
    secret: String,
    /// The rotated-out secret while its grace period lasts.
    previous_secret: Option<String>,
    enabled: f64,
    failing_since: Option<f64>,
    consecutive_dead: f64,
    revoked_at: Option<f64>,
    expires_at: Option<f64>,
    scopes: String,
}

impl Target {
    fn health(&self) -> Health {
        Health { failing_since: self.failing_since.map(|v| v as i64), consecutive_dead: self.consecutive_dead as u32 }
    }

    /// Why this delivery can no longer be made, if it cannot.
    fn blocked(&self, kind: Option<EventType>, now: i64) -> Option<&'static str> {
        if self.enabled == 0.0 {
            Some("endpoint disabled")
        } else if kind.is_some_and(EventType::is_key_event) {
            None
        } else if self.revoked_at.is_some() || self.expires_at.is_some_and(|t| t as i64 <= now) {
            Some("api key no longer active")
        } else if !kind.is_some_and(|k| wh::visible_to(k, crate::auth::scope::ScopeSet::from_stored(&self.scopes))) {
            Some("api key may not see this event type")
        } else {
            None
        }
    }
}

async fn load_target(db: &worker::D1Database, delivery_id: &str, now: i64) -> ApiResult<Option<Target>> {
    Ok(d1::stmt(
        db,
        "SELECT d.status, d.attempts, e.url, e.secret, p.secret AS previous_secret, e.enabled, e.failing_since, \
                e.consecutive_dead, k.revoked_at, k.expires_at, k.scopes \
         FROM webhook_deliveries d JOIN webhook_endpoints e ON e.id = d.endpoint_id JOIN api_keys k ON k.id = e.key_id \
         LEFT JOIN webhook_previous_secrets p ON p.endpoint_id = e.id AND p.expires_at > ?2 \
         WHERE d.id = ?1",
        &[delivery_id.into(), now.into()],
    )?
    .first(None)
    .await?)
}

/// One attempt row.
struct AttemptRecord<'a> {
    job: &'a DeliveryJob,
    attempt: u32,
    status: DeliveryStatus,
    code: Option<u16>,
    duration_ms: Option<i64>,
    error: Option<String>,
    now: i64,
}

fn attempt_insert(db: &worker::D1Database, r: &AttemptRecord<'_>) -> ApiResult<worker::D1PreparedStatement> {
    d1::stmt(
        db,
        "INSERT INTO webhook_attempts (id, delivery_id, endpoint_id, event_id, event_type, attempt, status, \
         response_code, duration_ms, error, created_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
        &[
            V::T(&format!("att_{}", ulid(r.now, random_bytes()))),
            (&r.job.delivery_id).into(),
            (&r.job.endpoint_id).into(),
            (&r.job.event_id).into(),
            (&r.job.event_type).into(),
            i64::from(r.attempt).into(),
            r.status.as_str().into(),
            r.code.map(i64::from).into(),
            r.duration_ms.into(),
            r.error.as_deref().into(),
            r.now.into(),
        ],
    )
}

/// The signed POST. Redirects are not followed (a 3xx is a failure), and a
/// receiver that does not answer within `TIMEOUT_MS` is a failure too.
async fn post(url: &str, keys: &[Vec<u8>], job: &DeliveryJob, now: i64) -> ApiResult<Outcome> {
    let timestamp = now / 1000;
    let headers = Headers::new();
    headers.set("content-type", "application/json")?;
    headers.set("user-agent", "Jestha-Webhooks/1.0")?;
    headers.set("webhook-id", &job.event_id)?;
    headers.set("webhook-timestamp", &timestamp.to_string())?;
    headers.set("webhook-signature", &wh::signatures(keys, &job.event_id, timestamp, &job.body))?;
    let req: Request = crate::adapters::post_request(url, Some(&headers.0), &JsValue::from_str(&job.body), true)?.into();
    let signal = AbortSignal::from(web_sys::AbortSignal::timeout_with_u32(TIMEOUT_MS));
    Ok(match Fetch::Request(req).send_with_signal(&signal).await {
        Ok(res) => Outcome::Status(res.status_code()),
        Err(_) if signal.aborted() => Outcome::NoAnswer(format!("no answer within {} s", TIMEOUT_MS / 1000)),
        Err(e) => Outcome::NoAnswer(format!("connection failed: {}", e.to_string().chars().take(160).collect::<String>())),
    })
}

/// One attempt of one delivery.
pub async fn deliver(env: &Env, job: &DeliveryJob, delays: &[u32]) -> ApiResult<Action> {
    let db = d1::db(env)?;
    let now = now_ms();
    let Some(t) = load_target(&db, &job.delivery_id, now).await? else {
        return Ok(Action::Ack); // the endpoint was deleted
    };
    if t.status != DeliveryStatus::Pending.as_str() {
        return Ok(Action::Ack); // a duplicate message of a finished delivery
    }
    let attempt = t.attempts as u32 + 1;
    if let Some(why) = t.blocked(EventType::parse(&job.event_type), now) {
        let rec = AttemptRecord {
            job,
            attempt: attempt.max(1),
            status: DeliveryStatus::Dead,
            code: None,
            duration_ms: None,
            error: Some(why.into()),
            now,
        };
        let mut batch =
            vec![attempt_insert(&db, &rec)?, delivery_update(&db, &job.delivery_id, DeliveryStatus::Dead, attempt, now)?];
        batch.extend(trim_history(env, &db, &job.endpoint_id, &job.delivery_id)?);
        db.batch(batch).await?;
        return Ok(Action::Ack);
    }
    let (outcome, duration) = match wh::validate_url(&t.url, Config::get(env).webhook_allow_loopback) {
        Err(e) => (Outcome::Refused(e), None),
        Ok(_) => {
            let mut keys = vec![open_secret(env, &job.endpoint_id, &t.secret).await?];
            if let Some(previous) = &t.previous_secret {
                keys.push(open_secret(env, &job.endpoint_id, previous).await?);
            }
            let started = now_ms();
            let o = post(&t.url, &keys, job, now).await?;
            (o, Some(now_ms() - started))
        }
    };
    let verdict = wh::verdict(&outcome, attempt, delays);
    let (code, error) = match &outcome {
        Outcome::Status(c) if (200..300).contains(c) => (Some(*c), None),
        Outcome::Status(410) => (Some(410), Some("receiver answered 410 Gone: endpoint disabled".to_string())),
        Outcome::Status(c) => (Some(*c), Some(format!("receiver answered {c}"))),
        Outcome::NoAnswer(e) => (None, Some(e.clone())),
        Outcome::Refused(e) => (None, Some(format!("not sent: {e}"))),
    };
    let now = now_ms();
    let (attempt_status, delivery_status) = match verdict {
        Verdict::Delivered => (DeliveryStatus::Succeeded, DeliveryStatus::Succeeded),
        Verdict::Gone => (DeliveryStatus::Dead, DeliveryStatus::Dead),
        Verdict::RetryIn(_) | Verdict::GiveUp => (DeliveryStatus::Failed, DeliveryStatus::Pending),
    };
    let rec = AttemptRecord { job, attempt, status: attempt_status, code, duration_ms: duration, error, now };
    let endpoint = match verdict {
        Verdict::Delivered => d1::stmt(
            &db,
            "UPDATE webhook_endpoints SET failing_since = NULL, consecutive_dead = 0 WHERE id = ?1",
            &[(&job.endpoint_id).into()],
        )?,
        Verdict::Gone => disable(&db, &job.endpoint_id, DISABLED_GONE, t.health().after_failure(now).0, now)?,
        Verdict::RetryIn(_) | Verdict::GiveUp => {
            let (h, off) = t.health().after_failure(now);
            if off {
                disable(&db, &job.endpoint_id, DISABLED_FAILING, h, now)?
            } else {
                d1::stmt(
                    &db,
                    "UPDATE webhook_endpoints SET failing_since = COALESCE(failing_since, ?1) WHERE id = ?2",
                    &[now.into(), (&job.endpoint_id).into()],
                )?
            }
        }
    };
    let mut batch =
        vec![attempt_insert(&db, &rec)?, delivery_update(&db, &job.delivery_id, delivery_status, attempt, now)?, endpoint];
    if delivery_status != DeliveryStatus::Pending {
        batch.extend(trim_history(env, &db, &job.endpoint_id, &job.delivery_id)?);
    }
    db.batch(batch).await?;
    Ok(match verdict {
        Verdict::Delivered | Verdict::Gone => Action::Ack,
        Verdict::RetryIn(d) => Action::RetryIn(d),
        Verdict::GiveUp => {
            // The schedule is spent: the dead-letter queue records the final failure.
            send(env, DLQ_BINDING, &Job::Deliver(job.clone())).await?;
            Action::Ack
        }
    })
}

/// Finished deliveries an endpoint's trim drops at most at once (a trim runs
/// about every 50th finished delivery, so it is rarely more than that over).
const TRIM_BATCH: i64 = 500;

/// For a delivery that just finished (in the same batch, after its status is
/// written): when `trims_history` picks it, the statements that drop its
/// endpoint's finished deliveries beyond the newest
/// `WEBHOOK_HISTORY_PER_ENDPOINT`, attempts first. So the record of a busy
/// endpoint stays bounded whatever its traffic, and the cron's age-based
/// prune only has the quiet ones' old rows left to do. Pending deliveries are
/// never dropped: their messages are still on the queue.
fn trim_history(
    env: &Env,
    db: &worker::D1Database,
    endpoint_id: &str,
    delivery_id: &str,
) -> ApiResult<Vec<worker::D1PreparedStatement>> {
    let keep = Config::get(env).webhook_history_per_endpoint;
    if !wh::trims_history(delivery_id, keep) {
        return Ok(vec![]);
    }
    let beyond = "SELECT id FROM webhook_deliveries WHERE endpoint_id = ?1 AND status <> 'pending' \
                  ORDER BY id DESC LIMIT ?3 OFFSET ?2";
    let args: [V; 3] = [endpoint_id.into(), i64::from(keep).into(), TRIM_BATCH.into()];
    Ok(vec![
        d1::stmt(db, &format!("DELETE FROM webhook_attempts WHERE delivery_id IN ({beyond})"), &args)?,
        d1::stmt(db, &format!("DELETE FROM webhook_deliveries WHERE id IN ({beyond})"), &args)?,
    ])
}

fn delivery_update(
    db: &worker::D1Database,
    id: &str,
    status: DeliveryStatus,
    attempts: u32,
    now: i64,
) -> ApiResult<worker::D1PreparedStatement> {
    d1::stmt(
        db,
        "UPDATE webhook_deliveries SET status = ?1, attempts = MAX(attempts, ?2), updated_at = ?3 WHERE id = ?4",
        &[status.as_str().into(), i64::from(attempts).into(), now.into(), id.into()],
    )
}

fn disable(
    db: &worker::D1Database,
    endpoint_id: &str,
    reason: &str,
    h: Health,
    now: i64,
) -> ApiResult<worker::D1PreparedStatement> {
    d1::stmt(
        db,
        "UPDATE webhook_endpoints SET enabled = 0, disabled_reason = ?1, disabled_at = ?2, failing_since = ?3, \
         consecutive_dead = ?4 WHERE id = ?5 AND enabled = 1",
        &[reason.into(), now.into(), h.failing_since.into(), i64::from(h.consecutive_dead).into(), endpoint_id.into()],
    )
}

// ---------------------------------------------------------------- dead letters

/// The dead-letter queue's consumer: a delivery whose schedule is spent is
/// recorded as dead (its last attempt too) and counts towards disabling its
/// endpoint; a fan-out that could not be done is put back for the sweep.
pub async fn dead_letter(env: &Env, job: &Job) -> ApiResult<Action> {
    let db = d1::db(env)?;
    let now = now_ms();
    match job {
        Job::FanOut { event } => {
            d1::stmt(&db, "UPDATE event_outbox SET sent_at = NULL WHERE id = ?1", &[(&event.id).into()])?.run().await?;
            crate::log::warn("webhooks", "fan-out dead-lettered; left to the sweep", &event.id);
        }
        Job::Deliver(d) => {
            let Some(t) = load_target(&db, &d.delivery_id, now).await? else { return Ok(Action::Ack) };
            if t.status != DeliveryStatus::Pending.as_str() {
                return Ok(Action::Ack);
            }
            let last = if t.attempts > 0.0 {
                d1::stmt(
                    &db,
                    "UPDATE webhook_attempts SET status = 'dead' WHERE id = \
                     (SELECT id FROM webhook_attempts WHERE delivery_id = ?1 ORDER BY attempt DESC, id DESC LIMIT 1)",
                    &[(&d.delivery_id).into()],
                )?
            } else {
                let rec = AttemptRecord {
                    job: d,
                    attempt: 1,
                    status: DeliveryStatus::Dead,
                    code: None,
                    duration_ms: None,
                    error: Some("not delivered: the queue gave up on it".into()),
                    now,
                };
                attempt_insert(&db, &rec)?
            };
            let counted = d1::stmt(
                &db,
                "UPDATE webhook_endpoints SET failing_since = COALESCE(failing_since, ?1), \
                 consecutive_dead = consecutive_dead + 1 WHERE id = ?2 RETURNING failing_since, consecutive_dead",
                &[now.into(), (&d.endpoint_id).into()],
            )?;
            let mut batch =
                vec![last, delivery_update(&db, &d.delivery_id, DeliveryStatus::Dead, t.attempts as u32, now)?, counted];
            // `counted` is read back below as the batch's third result.
            batch.extend(trim_history(env, &db, &d.endpoint_id, &d.delivery_id)?);
            let results = db.batch(batch).await?;
            #[derive(Deserialize)]
            struct Counted {
                failing_since: Option<f64>,
                consecutive_dead: f64,
            }
            let counted: Vec<Counted> = results.get(2).map(|r| r.results()).transpose()?.unwrap_or_default();
            if let Some(c) = counted.first() {
                let h = Health { failing_since: c.failing_since.map(|v| v as i64), consecutive_dead: c.consecutive_dead as u32 };
                if h.should_disable(now) {
                    disable(&db, &d.endpoint_id, DISABLED_FAILING, h, now)?.run().await?;
                }
            }
        }
    }
    Ok(Action::Ack)
}
