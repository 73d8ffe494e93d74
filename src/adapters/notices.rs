//! Owner notices about keys (quota thresholds, expiry, revocation, leaks,
//! canary use): a row the web UI lists, and in the same D1 batch an outbox
//! event delivered to the key's own webhook endpoints (signed, retried, like
//! every other event). Recorded by both Workers: the API's routes and guard,
//! the engine's expiry sweep.

use crate::adapters::crypto::random_bytes;
use crate::adapters::d1::{self, V};
use crate::adapters::outbox;
use crate::domain::clock::rfc3339;
use crate::domain::event::{Event, EventType};
use crate::domain::ids;
use crate::error::ApiResult;
use crate::http::{now_ms, AppState};
use crate::protocol::Notice;

/// Records one notice for `user_id` and, when it is about a key, the webhook
/// event for that key's endpoints, atomically.
pub async fn notify(
    app: &AppState,
    user_id: &str,
    key_id: Option<&str>,
    kind: EventType,
    data: serde_json::Value,
) -> ApiResult<()> {
    notify_env(&app.env, user_id, key_id, kind, data).await
}

/// `notify` for code without a request (the cron's sweeps).
pub async fn notify_env(
    env: &worker::Env,
    user_id: &str,
    key_id: Option<&str>,
    kind: EventType,
    data: serde_json::Value,
) -> ApiResult<()> {
    let db = d1::db(env)?;
    let (batch, event) = notice(&db, user_id, key_id, kind, data, now_ms(), None)?;
    db.batch(batch).await?;
    if let Some(e) = event {
        // Already off the request's path (callers defer notify); failures are swept.
        outbox::enqueue_event(env, e).await?;
    }
    Ok(())
}

/// A notice's rows for the caller's batch: the notification and, when it is
/// about a key, its webhook event, returned to hand to `outbox::enqueue_event`
/// once the batch committed. With `only_if`, both are written only when that
/// condition holds in the batch's transaction (a leak finding not seen before).
pub fn notice(
    db: &worker::D1Database,
    user_id: &str,
    key_id: Option<&str>,
    kind: EventType,
    data: serde_json::Value,
    now: i64,
    only_if: Option<d1::OnlyIf<'_>>,
) -> ApiResult<(Vec<worker::D1PreparedStatement>, Option<Event>)> {
    let id = ids::ulid(now, random_bytes());
    let mut batch = vec![d1::insert_if(
        db,
        "INSERT INTO notifications (id, user_id, key_id, type, data, created_at)",
        &[(&id).into(), user_id.into(), key_id.into(), kind.as_str().into(), d1::V::T(&data.to_string()), now.into()],
        only_if,
    )?];
    let event = (kind.is_key_event() && key_id.is_some()).then(|| Event::new(kind, user_id, now, random_bytes(), data));
    if let Some(e) = &event {
        batch.push(outbox::record_if(db, e, only_if)?);
    }
    Ok((batch, event))
}

/// Turns a Gate notice into a recorded notice, after the response is sent.
pub fn defer_notice(app: &AppState, notice: Notice, ip: Option<String>, user_agent: Option<String>) {
    let app2 = app.clone();
    app.defer("notify", async move {
        let now = rfc3339(now_ms());
        match notice {
            Notice::QuotaThreshold { key_id, user_id, percent, used, quota } => {
                let data = serde_json::json!({ "keyId": key_id, "percent": percent, "used": used, "quota": quota, "at": now });
                notify(&app2, &user_id, Some(&key_id), EventType::KeyQuotaThreshold, data).await
            }
            Notice::CanaryUsed { key_id, user_id } => {
                let data = serde_json::json!({ "keyId": key_id, "at": now, "ip": ip, "userAgent": user_agent });
                notify(&app2, &user_id, Some(&key_id), EventType::KeyCanaryUsed, data).await
            }
            // A connected app's quota: a web notice only (no key, so no webhook).
            Notice::GrantQuotaThreshold { grant_id, user_id, client_name, percent, used, quota } => {
                let data = serde_json::json!({ "grantId": grant_id, "clientName": client_name, "percent": percent,
                    "used": used, "quota": quota, "at": now });
                let db = d1::db(&app2.env)?;
                let at = now_ms();
                d1::stmt(
                    &db,
                    "INSERT INTO notifications (id, user_id, key_id, type, data, created_at) VALUES (?1, ?2, NULL, ?3, ?4, ?5)",
                    &[
                        V::T(&ids::ulid(at, random_bytes())),
                        (&user_id).into(),
                        "grant.quota_threshold".into(),
                        V::T(&data.to_string()),
                        at.into(),
                    ],
                )?
                .run()
                .await?;
                Ok(())
            }
        }
    });
}
