//! The cron's sweeps (every minute, handed over by the API): expiry notices,
//! unattached and deleted accounts' uploads, undispatched outbox events,
//! delivery records past retention, and OAuth's spent secrets, abandoned
//! consents and unused registrations. Each is bounded per run.

use serde::Deserialize;
use worker::Env;

use crate::adapters::d1::{self, V};
use crate::adapters::media::{forget, purge, r2_keys};
use crate::adapters::notices::notify_env;
use crate::adapters::outbox::OutboxRow;
use crate::adapters::queue::{send_many, QUEUE_BINDING};
use crate::config::Config;
use crate::domain::clock::rfc3339;
use crate::domain::event::EventType;
use crate::domain::ids::ulid_floor;
use crate::domain::webhook::{Job, RETENTION_MS};
use crate::error::{ApiError, ApiResult};
use crate::http::now_ms;
use crate::log;

/// Cron: `key.expiring` once per threshold (default 7 days and 1 day before),
/// claimed with INSERT … RETURNING so a notice is sent exactly once.
pub async fn expiring(env: &Env) -> ApiResult<usize> {
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

/// Uploads nobody attached within `MEDIA_ORPHAN_SECONDS` (default a day),
/// and every upload of a deleted account, leave D1 and then R2. The rows go
/// first, in bounded batches, so an attach racing the sweep either keeps its
/// row or fails cleanly and never points at a deleted object; their objects
/// go with them. Last, whatever `media_trash` holds that is due (objects a
/// failed delete left, uploads whose request died) is purged, even when a
/// step before failed. Runs from the cron; returns how many uploads went.
pub async fn media(env: &Env) -> ApiResult<usize> {
    /// Rows per statement (R2 deletes up to 1000 keys at once) and statements
    /// per step and run: at most 24 D1 queries a run (the Free plan allows
    /// 50 per invocation), 600 uploads of each kind a minute.
    const BATCH: i64 = 200;
    const ROUNDS: usize = 3;
    let orphan_ms = crate::config::Config::get(env).media_orphan_seconds * 1000;
    let db = d1::db(env)?;
    let now = now_ms();
    // Each kind has its own batches, so a flood of one never starves the
    // other. Rows just deleted name nothing: their objects are forgotten at
    // once; the trash's keys are checked first (`purge`), and not counted.
    let steps: [(&str, &[V], bool); 3] = [
        (
            "DELETE FROM media WHERE id IN (SELECT id FROM media WHERE post_id IS NULL AND created_at <= ?2 LIMIT ?1) RETURNING r2_key",
            &[V::I(BATCH), V::I(now - orphan_ms)],
            true,
        ),
        (
            "DELETE FROM media WHERE id IN (SELECT m.id FROM users u JOIN media m ON m.owner_id = u.id WHERE u.deleted_at IS NOT NULL LIMIT ?1) RETURNING r2_key",
            &[V::I(BATCH)],
            true,
        ),
        ("SELECT r2_key FROM media_trash WHERE purge_after <= ?2 ORDER BY purge_after LIMIT ?1", &[V::I(BATCH), V::I(now)], false),
    ];
    let mut swept = 0;
    let mut first_error = None;
    for (sql, args, rows_deleted) in steps {
        for _ in 0..ROUNDS {
            let batch = async {
                let rows: Vec<d1::Row> = d1::stmt(&db, sql, args)?.all().await?.results()?;
                let keys = r2_keys(rows);
                if rows_deleted {
                    forget(env, &keys).await?
                } else {
                    purge(env, &keys).await?
                }
                Ok::<_, ApiError>(keys.len())
            };
            match batch.await {
                Ok(n) => {
                    swept += if rows_deleted { n } else { 0 };
                    if (n as i64) < BATCH {
                        break;
                    }
                }
                Err(e) => {
                    // The first is returned (and logged by the cron); later ones are logged here.
                    match first_error {
                        None => first_error = Some(e),
                        Some(_) => log::error("cron", "media sweep", &e.to_string()),
                    }
                    break;
                }
            }
        }
    }
    first_error.map_or(Ok(swept), Err)
}

/// tus uploads past their expiry (or of deleted accounts) leave D1: their
/// trigger lists each one's R2 multipart upload in `media_trash_mpu` and its
/// objects in `media_trash`. Then due multipart uploads (those, and those of
/// single requests that died) are aborted, at most `MPU_PER_RUN` a run (each
/// abort is a subrequest); the media sweep after this one purges the objects.
pub async fn uploads(env: &Env) -> ApiResult<usize> {
    const MPU_PER_RUN: i64 = 10;
    let db = d1::db(env)?;
    let now = now_ms();
    d1::stmt(
        &db,
        "DELETE FROM uploads WHERE id IN (SELECT id FROM uploads WHERE expires_at <= ?1 \
         OR account_id IN (SELECT id FROM users WHERE deleted_at IS NOT NULL) LIMIT 200)",
        &[now.into()],
    )?
    .run()
    .await?;
    let due: Vec<d1::Row> = d1::stmt(
        &db,
        "SELECT upload_id, r2_key FROM media_trash_mpu WHERE purge_after <= ?1 ORDER BY purge_after LIMIT ?2",
        &[now.into(), V::I(MPU_PER_RUN)],
    )?
    .all()
    .await?
    .results()?;
    let mut aborted = 0;
    for row in due {
        let (Some(id), Some(key)) = (row.text("upload_id"), row.text("r2_key")) else { continue };
        match crate::adapters::stream::abort(env, &key, &id).await {
            Ok(()) => aborted += 1,
            Err(e) => log::error("cron", "abort multipart upload", &e.to_string()),
        }
    }
    Ok(aborted)
}

/// Re-sends outbox events whose dispatch never happened, and drops delivery
/// records past retention.
pub async fn outbox(env: &Env) {
    match sweep_outbox(env).await {
        Ok(0) => {}
        Ok(n) => log::warn("sweep", "re-sent undispatched events", &n.to_string()),
        Err(e) => log::error("sweep", "outbox sweep failed", &e.to_string()),
    }
    if let Err(e) = prune(env).await {
        log::error("sweep", "delivery record pruning failed", &e.to_string());
    }
}

/// Outbox rows younger than this are left to their own dispatch.
pub const SWEEP_GRACE_MS: i64 = 30_000;

/// Rows each of the record's deletes takes per round, and rounds per run:
/// up to 4,000 attempts, deliveries and sent events a minute (4 D1 queries).
const PRUNE_BATCH: usize = 1000;
const PRUNE_ROUNDS: usize = 4;

/// Drops delivery records and sent outbox events past retention (30 days), a
/// bounded slice per run. Attempts and deliveries are found by a range on
/// their primary key (`att_`/`dlv_` + a ULID, which sorts by creation time),
/// so a run reads only the rows it deletes, not every young row as a scan of
/// `created_at` did; more rounds follow only while a round came back full.
/// Each endpoint's record is also capped by count as deliveries finish
/// (`delivery::trim_history`), so a busy account never outruns this.
/// Unsent events stay until the sweep sends them.
pub async fn prune(env: &Env) -> ApiResult<()> {
    let db = d1::db(env)?;
    let now = now_ms();
    let before = now - RETENTION_MS;
    let floor = ulid_floor(before);
    let (attempts_before, deliveries_before) = (format!("att_{floor}"), format!("dlv_{floor}"));
    let limit = PRUNE_BATCH as i64;
    for _ in 0..PRUNE_ROUNDS {
        let results = db
            .batch(vec![
                d1::stmt(
                    &db,
                    "DELETE FROM webhook_attempts WHERE id IN (SELECT id FROM webhook_attempts WHERE id < ?1 LIMIT ?2)",
                    &[V::T(&attempts_before), V::I(limit)],
                )?,
                d1::stmt(
                    &db,
                    "DELETE FROM webhook_deliveries WHERE id IN \
                     (SELECT id FROM webhook_deliveries WHERE id < ?1 AND status <> 'pending' LIMIT ?2)",
                    &[V::T(&deliveries_before), V::I(limit)],
                )?,
                d1::stmt(
                    &db,
                    "DELETE FROM event_outbox WHERE id IN \
                     (SELECT id FROM event_outbox WHERE sent_at IS NOT NULL AND sent_at < ?1 LIMIT ?2)",
                    &[V::I(before), V::I(limit)],
                )?,
            ])
            .await?;
        let full = results.iter().any(|r| r.meta().ok().flatten().and_then(|m| m.changes).unwrap_or(0) >= PRUNE_BATCH);
        if !full {
            break;
        }
    }
    db.batch(vec![
        // The audit log keeps 90 days; half-done logins expire after minutes.
        d1::stmt(
            &db,
            "DELETE FROM audit_log WHERE id IN (SELECT id FROM audit_log WHERE at < ?1 LIMIT ?2)",
            &[crate::domain::audit::cutoff(now).into(), crate::domain::audit::SWEEP_BATCH.into()],
        )?,
        d1::stmt(
            &db,
            "DELETE FROM login_challenges WHERE token_hash IN (SELECT token_hash FROM login_challenges WHERE expires_at < ?1 LIMIT 1000)",
            &[now.into()],
        )?,
    ])
    .await?;
    Ok(())
}

/// Re-sends outbox rows never marked sent (a dispatch that failed, or a
/// fan-out that was dead-lettered): nothing committed is lost.
pub async fn sweep_outbox(env: &Env) -> ApiResult<usize> {
    let db = d1::db(env)?;
    let now = now_ms();
    let rows: Vec<OutboxRow> = d1::stmt(
        &db,
        "SELECT id, account_id, type, payload, created_at FROM event_outbox \
         WHERE sent_at IS NULL AND created_at <= ?1 ORDER BY created_at LIMIT 100",
        &[(now - SWEEP_GRACE_MS).into()],
    )?
    .all()
    .await?
    .results()?;
    let mut jobs = Vec::new();
    let mut ids = Vec::new();
    for event in rows.into_iter().filter_map(|r| r.into_event("sweep")) {
        ids.push(event.id.clone());
        jobs.push(Job::FanOut { event });
    }
    if jobs.is_empty() {
        return Ok(0);
    }
    send_many(env, QUEUE_BINDING, &jobs).await?;
    let marks = ids
        .iter()
        .map(|id| {
            d1::stmt(&db, "UPDATE event_outbox SET sent_at = ?1 WHERE id = ?2 AND sent_at IS NULL", &[now.into(), id.into()])
        })
        .collect::<ApiResult<Vec<_>>>()?;
    db.batch(marks).await?;
    Ok(ids.len())
}

/// OAuth's rows that no request can use any more, a bounded slice of each
/// per run (one D1 batch): codes, device codes and tokens a day past their
/// expiry (a used code or rotated refresh token stays until then, so a
/// replay is still recognised and revokes its grant), consents never
/// exchanged after a day, grants revoked 90 days ago (their tokens go with
/// them), per-grant usage past 31 days, and clients registered a day ago
/// that never got a grant or a device code (registration is public, so this
/// keeps the table from growing without bound; a client that lost its
/// registration registers again). Each finds its rows by index, so a run
/// with nothing due reads next to nothing; clients are looked for among
/// those registered in the last 30 days only, so the clients in use are not
/// read again every minute for ever (an unused one is gone after a day,
/// unless the cron has been stopped for a month).
pub async fn oauth(env: &Env) -> ApiResult<()> {
    use crate::domain::clock::DAY_MS;
    let db = d1::db(env)?;
    let now = now_ms();
    let day_ago: V = (now - DAY_MS).into();
    let delete = |table: &str, key: &str, cond: &str, args: &[V]| {
        d1::stmt(&db, &format!("DELETE FROM {table} WHERE {key} IN (SELECT {key} FROM {table} WHERE {cond} LIMIT 1000)"), args)
    };
    let one = std::slice::from_ref(&day_ago);
    db.batch(vec![
        delete("oauth_codes", "code_hash", "expires_at < ?1", one)?,
        delete("oauth_device_codes", "device_code_hash", "expires_at < ?1", one)?,
        delete("oauth_access_tokens", "token_hash", "expires_at < ?1 OR revoked_at < ?1", one)?,
        delete("oauth_refresh_tokens", "token_hash", "expires_at < ?1", one)?,
        delete("grant_usage", "rowid", "day < ?1", &[(now / 1000 - 31 * 86_400).into()])?,
        delete(
            "oauth_grants",
            "id",
            "(activated_at IS NULL AND created_at < ?1) OR revoked_at < ?2",
            &[(now - DAY_MS).into(), (now - 90 * DAY_MS).into()],
        )?,
        delete(
            "oauth_clients",
            "id",
            "created_at < ?1 AND created_at >= ?2 \
             AND NOT EXISTS (SELECT 1 FROM oauth_grants g WHERE g.client_id = oauth_clients.id) \
             AND NOT EXISTS (SELECT 1 FROM oauth_device_codes d WHERE d.client_id = oauth_clients.id)",
            &[(now - DAY_MS).into(), (now - 30 * DAY_MS).into()],
        )?,
    ])
    .await?;
    Ok(())
}
