//! Leaked-key reports (GitHub secret-scanning partner shape): a trusted,
//! signed report revokes every matching live key at once and tells its owner.

use axum::http::StatusCode;
use axum::response::Response;
use serde::Deserialize;

use crate::account::routes::keys::revoke_hash;
use crate::adapters::crypto::{ecdsa_p256_verify, random_bytes};
use crate::adapters::notices;
use crate::adapters::{audit, d1};
use crate::auth::token::{self, TokenKind};
use crate::domain::audit::{Action, Event, TargetType};
use crate::domain::clock::rfc3339;
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
        let mut verdict = Verdict {
            token_hash: hash.clone(),
            token_type: if item.kind.is_empty() { TOKEN_TYPE.to_string() } else { item.kind.clone() },
            label: "false_positive",
            live: false,
        };
        let row = if token::well_formed(TokenKind::ApiKey, &item.token) {
            d1::stmt(&db, "SELECT id, user_id, revoked_at, expires_at FROM api_keys WHERE token_hash = ?1", &[(&hash).into()])?
                .first::<KeyRow>(None)
                .await?
        } else {
            None
        };
        if let Some(k) = row {
            verdict.label = "true_positive";
            verdict.live = k.revoked_at.is_none() && k.expires_at.is_none_or(|e| (e as i64) > now);
            if k.revoked_at.is_none() {
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
            let data = serde_json::json!({
                "keyId": k.id, "at": rfc3339(now), "url": item.url, "source": item.source, "wasLive": verdict.live,
            });
            notices::notify(&app, &k.user_id, Some(&k.id), crate::domain::event::EventType::KeyLeaked, data).await?;
        }
        let id = ids::ulid(now, random_bytes());
        d1::stmt(
            &db,
            "INSERT INTO leak_reports (id, token_hash, url, source, matched, live, created_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            &[
                (&id).into(),
                (&hash).into(),
                (&item.url).into(),
                (&item.source).into(),
                i64::from(verdict.label == "true_positive").into(),
                i64::from(verdict.live).into(),
                now.into(),
            ],
        )?
        .run()
        .await?;
        verdicts.push(verdict);
    }
    Ok(json(StatusCode::OK, &verdicts))
}
