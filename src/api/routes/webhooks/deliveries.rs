//! An endpoint's deliveries: a test event through the real pipeline, queueing
//! again what was given up on, and the record of every attempt. Access as in
//! the parent module (`managed_endpoint`).

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use worker::Env;

use super::{managed_endpoint, require_active};
use crate::adapters::crypto::random_bytes;
use crate::adapters::d1;
use crate::adapters::outbox::{self, OutboxRow};
use crate::adapters::queue::{send_many, QUEUE_BINDING};
use crate::domain::clock::{parse_rfc3339, rfc3339, DAY_MS};
use crate::domain::event::{Event, EventType};
use crate::domain::webhook::{self as wh, DeliveryJob, Job, RETENTION_MS};
use crate::error::{ApiError, ApiResult};
use crate::http::{json, now_ms};
use crate::pipeline::body::str_field;
use crate::pipeline::ctx::Ctx;

/// POST /api/auth/api-keys/{id}/webhooks/{webhookId}/redeliver:
/// `{"since": RFC 3339}` (default a day ago, at most the 30 days deliveries
/// are kept): queues again every delivery to this endpoint given up on since
/// then, say while the receiver was down or the endpoint disabled, each with
/// its original `webhook-id` and body; 202 with how many.
pub async fn redeliver(mut c: Ctx) -> ApiResult<Response> {
    let body = c.json(true).await?;
    let now = now_ms();
    let since = match str_field(&body, "since")? {
        None => now - DAY_MS,
        Some(s) => parse_rfc3339(s).ok_or_else(|| ApiError::invalid("since: must be an RFC 3339 time"))?,
    };
    let (key, ep) = managed_endpoint(&c).await?;
    require_active(&key)?;
    if ep.enabled == 0.0 {
        return Err(ApiError::Conflict("endpoint is disabled: re-enable it with PATCH {\"enabled\": true}".into()));
    }
    let since = since.max(now - RETENTION_MS);
    let n = queue_again(&c.app.env, &ep.id, since).await?;
    Ok(json(StatusCode::ACCEPTED, &serde_json::json!({ "redelivered": n, "since": rfc3339(since) })))
}

/// POST /api/auth/api-keys/{id}/webhooks/{webhookId}/test: a `webhook.test`
/// event through the real pipeline to this one endpoint; 202 with the event.
pub async fn test(c: Ctx) -> ApiResult<Response> {
    let (key, ep) = managed_endpoint(&c).await?;
    let app = &c.app;
    require_active(&key)?;
    if ep.enabled == 0.0 {
        return Err(ApiError::Conflict("endpoint is disabled: re-enable it with PATCH {\"enabled\": true}".into()));
    }
    let event = Event::new(
        EventType::WebhookTest,
        &key.user_id,
        now_ms(),
        random_bytes(),
        serde_json::json!({ "endpointId": ep.id, "keyId": key.id, "message": "A test event from Jestha." }),
    );
    let db = d1::db(&app.env)?;
    outbox::record(&db, &event)?.run().await?;
    let body = wh::payload(&event);
    outbox::dispatch(app, event);
    let mut res = (StatusCode::ACCEPTED, body).into_response();
    res.headers_mut().insert(axum::http::header::CONTENT_TYPE, axum::http::HeaderValue::from_static("application/json"));
    Ok(res)
}

#[derive(Deserialize)]
struct AttemptRow {
    id: String,
    delivery_id: String,
    event_id: String,
    event_type: String,
    attempt: f64,
    status: String,
    response_code: Option<f64>,
    duration_ms: Option<f64>,
    error: Option<String>,
    created_at: f64,
}

impl d1::HasId for AttemptRow {
    fn id(&self) -> &str {
        &self.id
    }
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct AttemptResponse {
    id: String,
    delivery_id: String,
    event_id: String,
    event_type: String,
    attempt: u32,
    status: String,
    response_code: Option<u16>,
    duration_ms: Option<i64>,
    error: Option<String>,
    created_at: String,
}

/// GET /api/auth/api-keys/{id}/webhooks/{webhookId}/deliveries: every
/// attempt, newest first.
pub async fn list(c: Ctx) -> ApiResult<Response> {
    let page = c.page()?;
    let (_, ep) = managed_endpoint(&c).await?;
    let app = &c.app;
    let db = d1::db(&app.env)?;
    let select = "SELECT id, delivery_id, event_id, event_type, attempt, status, response_code, duration_ms, error, created_at \
                  FROM webhook_attempts WHERE endpoint_id = ?1";
    let (rows, next) = d1::newest_first::<AttemptRow>(&db, select, &ep.id, &page).await?;
    let items: Vec<AttemptResponse> = rows
        .into_iter()
        .map(|r| AttemptResponse {
            id: r.id,
            delivery_id: r.delivery_id,
            event_id: r.event_id,
            event_type: r.event_type,
            attempt: r.attempt as u32,
            status: r.status,
            response_code: r.response_code.map(|c| c as u16),
            duration_ms: r.duration_ms.map(|d| d as i64),
            error: r.error,
            created_at: rfc3339(r.created_at as i64),
        })
        .collect();
    Ok(crate::http::page(&items, next))
}

/// Queues again an endpoint's deliveries given up on since `since` (unix ms;
/// oldest first, at most `REDELIVER_BATCH`), each with its event as it was
/// first sent (same `webhook-id`, same body) and a fresh retry schedule.
/// Deliveries claimed here but not queued (a failed send) are picked up by
/// the next call. Returns how many were queued.
async fn queue_again(env: &Env, endpoint_id: &str, since: i64) -> ApiResult<usize> {
    let db = d1::db(env)?;
    let now = now_ms();
    let rows: Vec<OutboxRow> = d1::stmt(
        &db,
        "SELECT d.id AS delivery_id, o.id, o.account_id, o.type, o.payload, o.created_at \
         FROM webhook_deliveries d JOIN event_outbox o ON o.id = d.event_id \
         WHERE d.endpoint_id = ?1 AND d.created_at >= ?2 \
         AND (d.status = 'dead' OR (d.status = 'pending' AND d.queued_at IS NULL)) \
         ORDER BY d.created_at LIMIT ?3",
        &[endpoint_id.into(), since.into(), REDELIVER_BATCH.into()],
    )?
    .all()
    .await?
    .results()?;
    if rows.is_empty() {
        return Ok(0);
    }
    // Claim them (a fresh schedule, not yet queued) before anything is sent.
    let claims = rows
        .iter()
        .map(|r| {
            d1::stmt(
                &db,
                "UPDATE webhook_deliveries SET status = 'pending', attempts = 0, queued_at = NULL, updated_at = ?1 WHERE id = ?2",
                &[now.into(), r.delivery_id.as_ref().into()],
            )
        })
        .collect::<ApiResult<Vec<_>>>()?;
    db.batch(claims).await?;
    let mut jobs = Vec::with_capacity(rows.len());
    let mut queued = Vec::with_capacity(rows.len());
    for mut r in rows {
        let delivery_id = r.delivery_id.take().unwrap_or_default();
        let Some(event) = r.into_event("redeliver") else { continue };
        queued.push(d1::stmt(
            &db,
            "UPDATE webhook_deliveries SET queued_at = ?1 WHERE id = ?2",
            &[now.into(), (&delivery_id).into()],
        )?);
        jobs.push(Job::Deliver(DeliveryJob {
            delivery_id,
            endpoint_id: endpoint_id.to_string(),
            body: wh::payload(&event),
            event_type: event.kind.as_str().to_string(),
            event_id: event.id,
        }));
    }
    send_many(env, QUEUE_BINDING, &jobs).await?;
    if !queued.is_empty() {
        db.batch(queued).await?;
    }
    Ok(jobs.len())
}

/// Deliveries one redeliver call queues at most.
pub const REDELIVER_BATCH: i64 = 100;
