//! Owner notices about keys (quota thresholds, expiry, revocation, leaks,
//! canary use): a row the web UI lists, and in the same D1 batch an outbox
//! event delivered to the key's own webhook endpoints (signed, retried, like
//! every other event).

use axum::http::StatusCode;
use axum::response::Response;
use serde::{Deserialize, Serialize};

use crate::adapters::crypto::random_bytes;
use crate::adapters::d1;
use crate::adapters::outbox;
use crate::config::Config;
use crate::domain::clock::rfc3339;
use crate::domain::event::{Event, EventType};
use crate::domain::ids;
use crate::durable::protocol::Notice;
use crate::error::{ApiError, ApiResult};
use crate::http::{json, now_ms, AppState};
use crate::pipeline::ctx::Ctx;

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

/// `notify` for code without a request (the cron sweep).
pub async fn notify_env(
    env: &worker::Env,
    user_id: &str,
    key_id: Option<&str>,
    kind: EventType,
    data: serde_json::Value,
) -> ApiResult<()> {
    let db = d1::db(env)?;
    let now = now_ms();
    let id = ids::ulid(now, random_bytes());
    let mut batch = vec![d1::stmt(
        &db,
        "INSERT INTO notifications (id, user_id, key_id, type, data, created_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        &[(&id).into(), user_id.into(), key_id.into(), kind.as_str().into(), d1::V::T(&data.to_string()), now.into()],
    )?];
    let event = (kind.is_key_event() && key_id.is_some()).then(|| Event::new(kind, user_id, now, random_bytes(), data));
    if let Some(e) = &event {
        batch.push(outbox::record(&db, e)?);
    }
    db.batch(batch).await?;
    if let Some(e) = event {
        // Already off the request's path (callers defer notify); failures are swept.
        crate::adapters::webhooks::enqueue_event(env, e).await?;
    }
    Ok(())
}

/// Cron: `key.expiring` once per threshold (default 7 days and 1 day before),
/// claimed with INSERT … RETURNING so a notice is sent exactly once.
pub async fn expiring_sweep(env: &worker::Env) -> ApiResult<usize> {
    let db = d1::db(env)?;
    let now = now_ms();
    #[derive(Deserialize)]
    struct Claimed {
        key_id: String,
        user_id: String,
        expires_at: f64,
        threshold: f64,
    }
    let mut sent = 0;
    for &t in &Config::get(env).expiry_notice_seconds {
        let claimed: Vec<Claimed> = d1::stmt(
            &db,
            "INSERT INTO key_expiry_notices (key_id, threshold, sent_at) \
             SELECT id, ?2, ?1 FROM api_keys WHERE revoked_at IS NULL AND canary = 0 AND expires_at IS NOT NULL \
             AND expires_at > ?1 AND expires_at <= ?1 + ?2 * 1000 \
             AND NOT EXISTS (SELECT 1 FROM key_expiry_notices n WHERE n.key_id = api_keys.id AND n.threshold = ?2) \
             LIMIT 200 \
             RETURNING key_id, threshold, \
               (SELECT user_id FROM api_keys k WHERE k.id = key_id) AS user_id, \
               (SELECT expires_at FROM api_keys k WHERE k.id = key_id) AS expires_at",
            &[now.into(), t.into()],
        )?
        .all()
        .await?
        .results()?;
        for c in claimed {
            let data = serde_json::json!({
                "keyId": c.key_id,
                "expiresAt": rfc3339(c.expires_at as i64),
                "secondsLeft": ((c.expires_at as i64 - now) / 1000).max(0),
                "noticeSeconds": c.threshold as i64,
            });
            notify_env(env, &c.user_id, Some(&c.key_id), EventType::KeyExpiring, data).await?;
            sent += 1;
        }
    }
    Ok(sent)
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
        }
    });
}

#[derive(Deserialize)]
struct Row {
    id: String,
    key_id: Option<String>,
    #[serde(rename = "type")]
    kind: String,
    data: String,
    created_at: f64,
    read_at: Option<f64>,
}

impl d1::HasId for Row {
    fn id(&self) -> &str {
        &self.id
    }
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Item {
    id: String,
    key_id: Option<String>,
    #[serde(rename = "type")]
    kind: String,
    data: serde_json::Value,
    created_at: String,
    read_at: Option<String>,
}

/// Notices one call marks at most.
pub const MAX_MARK: usize = 100;

/// POST /api/notifications/read: `{"ids": [...]}` (at most 100) or
/// `{"all": true}` marks the account's unread notices read; 200 with how many
/// changed. Another account's ids change nothing.
pub async fn mark_read(mut c: Ctx) -> ApiResult<Response> {
    let body = c.json(false).await?;
    let ids = match (body.get("ids"), body.get("all")) {
        (Some(ids), None) => {
            let valid = ids.as_array().is_some_and(|l| !l.is_empty() && l.len() <= MAX_MARK && l.iter().all(|v| v.is_string()));
            if !valid {
                return Err(ApiError::invalid(format!("ids: 1 to {MAX_MARK} notification ids")));
            }
            Some(ids.to_string())
        }
        (None, Some(serde_json::Value::Bool(true))) => None,
        _ => return Err(ApiError::invalid("body: give either ids (a list) or all: true")),
    };
    let db = d1::db(&c.app.env)?;
    let marked = d1::stmt(
        &db,
        "UPDATE notifications SET read_at = ?2 WHERE user_id = ?1 AND read_at IS NULL \
         AND (?3 IS NULL OR id IN (SELECT value FROM json_each(?3)))",
        &[(&c.who()?.user_id).into(), now_ms().into(), ids.as_deref().into()],
    )?
    .run()
    .await?
    .meta()?
    .and_then(|m| m.changes)
    .unwrap_or(0);
    Ok(json(StatusCode::OK, &serde_json::json!({ "marked": marked })))
}

/// GET /api/notifications (newest first)
pub async fn list(c: Ctx) -> ApiResult<Response> {
    let app = &c.app;
    let principal = c.who()?;
    let page = c.page()?;
    let db = d1::db(&app.env)?;
    let select = "SELECT id, key_id, type, data, created_at, read_at FROM notifications WHERE user_id = ?1";
    let (rows, next) = d1::newest_first::<Row>(&db, select, &principal.user_id, &page).await?;
    let items: Vec<Item> = rows
        .into_iter()
        .map(|r| Item {
            id: r.id,
            key_id: r.key_id,
            kind: r.kind,
            data: serde_json::from_str(&r.data).unwrap_or_default(),
            created_at: rfc3339(r.created_at as i64),
            read_at: r.read_at.map(|v| rfc3339(v as i64)),
        })
        .collect();
    Ok(crate::http::page(&items, next))
}
