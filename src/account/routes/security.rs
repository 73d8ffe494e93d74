//! Leaked-key reports (GitHub secret-scanning partner shape): a trusted,
//! signed report revokes every matching live key at once and tells its owner,
//! once per finding: a replayed report changes nothing and answers as the first.

use axum::http::StatusCode;
use axum::response::Response;
use serde::Deserialize;

use crate::account::routes::keys::revoke_hash;
use crate::adapters::crypto::{ecdsa_p256_verify, random_bytes};
use crate::adapters::{audit, d1, notices, outbox};
use crate::auth::token::{self, TokenKind};
use crate::domain::audit::{Action, Event, TargetType};
use crate::domain::clock::rfc3339;
use crate::domain::event::EventType;
use crate::domain::ids;
use crate::domain::leak::{self, Verdict};
use crate::error::{ApiError, ApiResult};
use crate::http::{json, now_ms, MAX_JSON_BYTES};
use crate::pipeline::ctx::Ctx;

pub const SIGNATURE_HEADER: &str = "github-public-key-signature";
pub const TOKEN_TYPE: &str = "jestha_api_key";

#[derive(Deserialize)]
struct KeyRow {
    id: String,
    user_id: String,
    revoked_at: Option<f64>,
    expires_at: Option<f64>,
}

/// POST /api/security/leaked-keys
pub async fn report(mut c: Ctx) -> ApiResult<Response> {
    let app = c.app.clone();
    let headers = std::mem::take(&mut c.headers);
    let body = c.bytes(crate::http::MAX_JSON_BYTES).await?;
    if body.len() > MAX_JSON_BYTES {
        return Err(ApiError::PayloadTooLarge(format!("body larger than {MAX_JSON_BYTES} bytes")));
    }
    let pems = &crate::config::Config::get(&app.env).leak_report_public_keys;
    let keys = leak::trusted_keys(&pems.replace("\\n", "\n"));
    let signature = headers.get(SIGNATURE_HEADER).and_then(|v| v.to_str().ok()).and_then(leak::signature);
    let Some(signature) = signature else { return Err(ApiError::Unauthenticated) };
    let mut trusted = false;
    for key in &keys {
        if ecdsa_p256_verify(key, &signature, &body).await? {
            trusted = true;
            break;
        }
    }
    if !trusted {
        return Err(ApiError::Unauthenticated);
    }
    let reported = leak::parse(&body).map_err(ApiError::invalid)?;
    let db = d1::db(&app.env)?;
    let now = now_ms();
    let mut verdicts = Vec::with_capacity(reported.len());
    for item in reported {
        let hash = token::hash(&item.token);
        let token_type = if item.kind.is_empty() { TOKEN_TYPE.to_string() } else { item.kind.clone() };
        let row = if token::well_formed(TokenKind::ApiKey, &item.token) {
            d1::stmt(&db, "SELECT id, user_id, revoked_at, expires_at FROM api_keys WHERE token_hash = ?1", &[(&hash).into()])?
                .first::<KeyRow>(None)
                .await?
        } else {
            None
        };
        let live = row.as_ref().is_some_and(|k| k.revoked_at.is_none() && k.expires_at.is_none_or(|e| (e as i64) > now));
        // Revoking comes first and is idempotent (the audit row goes with the
        // one UPDATE that revokes), so a report retried after a failure still
        // revokes; only what follows is once per finding.
        if let Some(k) = row.as_ref().filter(|k| k.revoked_at.is_none()) {
            revoke_hash(&app, hash.clone()).await?;
            let leaked = Event::by_system(&k.user_id, Action::KeyLeaked)
                .target(TargetType::Key, &k.id)
                .data(serde_json::json!({ "url": item.url, "source": item.source }));
            db.batch(vec![
                audit::stmt_if(
                    &db,
                    &leaked,
                    now,
                    Some("EXISTS (SELECT 1 FROM api_keys WHERE id = ?12 AND revoked_at IS NULL)"),
                    &[d1::V::T(&k.id)],
                )?,
                d1::stmt(
                    &db,
                    "UPDATE api_keys SET revoked_at = ?1 WHERE id = ?2 AND revoked_at IS NULL",
                    &[now.into(), (&k.id).into()],
                )?,
            ])
            .await?;
        }
        // A finding is (token, url, source). Its notice, the notice's webhook
        // event and its leak_reports row are written in one transaction, and
        // only if no report named the finding before: a replayed report (or
        // two at once: D1 runs one batch at a time) notifies no one twice.
        let unseen = |n: usize| {
            format!(
                "NOT EXISTS (SELECT 1 FROM leak_reports WHERE token_hash = ?{n} AND url = ?{} AND source = ?{})",
                n + 1,
                n + 2
            )
        };
        let finding = [d1::V::T(&hash), d1::V::T(&item.url), d1::V::T(&item.source)];
        let mut batch = vec![];
        let mut event = None;
        if let Some(k) = &row {
            let data = serde_json::json!({
                "keyId": k.id, "at": rfc3339(now), "url": item.url, "source": item.source, "wasLive": live,
            });
            let only_if: d1::OnlyIf = (&unseen, &finding);
            let (stmts, e) = notices::notice(&db, &k.user_id, Some(&k.id), EventType::KeyLeaked, data, now, Some(only_if))?;
            batch.extend(stmts);
            event = e;
        }
        let id = ids::ulid(now, random_bytes());
        batch.push(d1::insert_if(
            &db,
            "INSERT INTO leak_reports (id, token_hash, url, source, matched, live, created_at)",
            &[
                (&id).into(),
                (&hash).into(),
                (&item.url).into(),
                (&item.source).into(),
                i64::from(row.is_some()).into(),
                i64::from(live).into(),
                now.into(),
            ],
            Some((&unseen, &finding)),
        )?);
        let results = db.batch(batch).await?;
        let recorded = results.last().and_then(|r| r.meta().ok().flatten()).and_then(|m| m.changes).unwrap_or(0) > 0;
        let (matched, live) = if recorded {
            if let Some(e) = event {
                outbox::enqueue_event(&app.env, e).await?;
            }
            (row.is_some(), live)
        } else {
            // Seen before: the answer the first report got for this finding.
            let first: Option<d1::Row> = d1::stmt(
                &db,
                "SELECT matched, live FROM leak_reports WHERE token_hash = ?1 AND url = ?2 AND source = ?3 \
                 ORDER BY created_at, id LIMIT 1",
                &finding,
            )?
            .first(None)
            .await?;
            first.map_or((row.is_some(), false), |f| (f.flag("matched"), f.flag("live")))
        };
        verdicts.push(Verdict {
            token_hash: hash,
            token_type,
            label: if matched { "true_positive" } else { "false_positive" },
            live,
        });
    }
    Ok(json(StatusCode::OK, &verdicts))
}
