//! API keys, managed by sessions only: the scope catalog, create (plaintext
//! shown once), list (masked), revoke (the key's Durable Object first, then D1).

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use ipnet::IpNet;
use serde::{Deserialize, Serialize};

use crate::adapters::audit::{self, origin_of};
use crate::adapters::crypto::{fill_random, random_bytes};
use crate::adapters::d1::{self, V};
use crate::adapters::gate;
use crate::auth::decide::{parse_allowlist, CredentialKind};
use crate::auth::scope::{Scope, ScopeSet, PRESETS};
use crate::auth::token::{self, TokenKind};
use crate::domain::audit::{Action, Event, TargetType};
use crate::domain::clock::{parse_rfc3339, rfc3339, DAY_MS};
use crate::domain::{ids, validate};
use crate::error::{ApiError, ApiResult};
use crate::http::{json, now_ms, AppState};
use crate::pipeline::ctx::Ctx;
use crate::protocol::GateRequest;
use crate::records::{KeyResponse, KeyRow, KEY_COLUMNS};

pub const MAX_ACTIVE_KEYS: i64 = 50;
pub const MAX_ALLOWLIST: usize = 20;
pub const MAX_LABEL: usize = 64;

/// GET /api/auth/scopes
pub async fn scopes(_c: Ctx) -> ApiResult<Response> {
    let catalog: Vec<_> = Scope::ALL.into_iter().map(Scope::info).collect();
    Ok(json(StatusCode::OK, &serde_json::json!({ "scopes": catalog, "presets": PRESETS })))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CreateKeyRequest {
    label: String,
    scopes: Option<Vec<String>>,
    preset: Option<String>,
    expires_in: Option<String>,
    expires_at: Option<String>,
    #[serde(default)]
    ip_allowlist: Vec<String>,
    #[serde(default)]
    canary: bool,
}

/// When a key expires, from `expiresIn` or `expiresAt` (never both).
pub fn expiry(expires_in: Option<&str>, expires_at: Option<&str>, now: i64) -> Result<Option<i64>, String> {
    match (expires_in, expires_at) {
        (Some(_), Some(_)) => Err("expiresIn: give either expiresIn or expiresAt, not both".into()),
        (None, None) | (Some("never"), None) => Ok(None),
        (Some(v), None) => {
            let days = match v {
                "30d" => 30,
                "90d" => 90,
                "1y" => 365,
                _ => return Err("expiresIn: must be one of never, 30d, 90d, 1y".into()),
            };
            Ok(Some(now + days * DAY_MS))
        }
        (None, Some(at)) => {
            let t = parse_rfc3339(at).ok_or("expiresAt: must be an RFC 3339 timestamp")?;
            if t <= now {
                return Err("expiresAt: must be in the future".into());
            }
            if t > now + 5 * 366 * DAY_MS {
                return Err("expiresAt: must be within 5 years".into());
            }
            Ok(Some(t))
        }
    }
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct CreatedKey {
    id: String,
    key: String,
    masked_key: String,
    label: String,
    scopes: Vec<&'static str>,
    expires_at: Option<String>,
    ip_allowlist: Vec<IpNet>,
    created_at: String,
    canary: bool,
}

/// POST /api/auth/api-keys
pub async fn create(mut c: Ctx) -> ApiResult<Response> {
    let app = c.app.clone();
    let principal = c.who()?.clone();
    let req: CreateKeyRequest = c.body().await?;
    let label = validate::text("label", &req.label, MAX_LABEL).map_err(ApiError::invalid)?;
    let scopes = ScopeSet::parse_request(req.scopes.as_deref(), req.preset.as_deref()).map_err(ApiError::invalid)?;
    let now = now_ms();
    let expires_at = expiry(req.expires_in.as_deref(), req.expires_at.as_deref(), now).map_err(ApiError::invalid)?;
    let allowlist = parse_allowlist(&req.ip_allowlist, MAX_ALLOWLIST).map_err(ApiError::invalid)?;

    let key = token::generate(TokenKind::ApiKey, fill_random);
    let id = ids::ulid(now, random_bytes());
    let masked = token::mask(&key);
    let scope_names = scopes.names();
    let db = d1::db(&app.env)?;
    let created = Event::by_owner(&principal.user_id, Action::KeyCreated, &origin_of(&c.headers))
        .target(TargetType::Key, &id)
        .data(serde_json::json!({ "label": label, "scopes": scope_names }));
    // The bound on live keys is checked inside the insert, so two racing
    // requests cannot both pass it; the audit row exists only if the key does.
    let insert = d1::stmt(
        &db,
        "INSERT INTO api_keys (id, user_id, token_hash, masked_key, label, scopes, expires_at, ip_allowlist, canary, created_at) \
         SELECT ?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10 \
         WHERE (SELECT COUNT(*) FROM api_keys WHERE user_id = ?2 AND revoked_at IS NULL \
                AND (expires_at IS NULL OR expires_at > ?10)) < ?11",
        &[
            (&id).into(),
            (&principal.user_id).into(),
            (&token::hash(&key)).into(),
            (&masked).into(),
            (&label).into(),
            V::T(&scope_names.join(" ")),
            expires_at.into(),
            V::T(&serde_json::to_string(&allowlist)?),
            i64::from(req.canary).into(),
            now.into(),
            MAX_ACTIVE_KEYS.into(),
        ],
    )?;
    let audit_row = audit::stmt_if(&db, &created, now, Some("EXISTS (SELECT 1 FROM api_keys WHERE id = ?12)"), &[V::T(&id)])?;
    let results = db.batch(vec![insert, audit_row]).await?;
    let written = results.first().and_then(|r| r.meta().ok().flatten()).and_then(|m| m.changes).unwrap_or(0);
    if written == 0 {
        return Err(ApiError::Conflict(format!("api-keys: at most {MAX_ACTIVE_KEYS} active keys per account; revoke one first")));
    }
    let body = CreatedKey {
        id,
        key,
        masked_key: masked,
        label,
        scopes: scope_names,
        expires_at: expires_at.map(rfc3339),
        ip_allowlist: allowlist,
        created_at: rfc3339(now),
        canary: req.canary,
    };
    let mut res = json(StatusCode::CREATED, &body);
    res.headers_mut().insert(axum::http::header::CACHE_CONTROL, axum::http::HeaderValue::from_static("no-store"));
    Ok(res)
}

/// GET /api/auth/api-keys (newest first)
pub async fn list(c: Ctx) -> ApiResult<Response> {
    let app = &c.app;
    let principal = c.who()?;
    let page = c.page()?;
    let db = d1::db(&app.env)?;
    let select = format!("SELECT {KEY_COLUMNS} FROM api_keys WHERE user_id = ?1");
    let (rows, next) = d1::newest_first::<KeyRow>(&db, &select, &principal.user_id, &page).await?;
    let now = now_ms();
    let items: Vec<KeyResponse> = rows.into_iter().map(|r| r.response(now)).collect();
    Ok(crate::http::page(&items, next))
}

/// DELETE /api/auth/api-keys/{id}: immediate and permanent.
pub async fn revoke(mut c: Ctx) -> ApiResult<Response> {
    let app = c.app.clone();
    let principal = c.who()?.clone();
    let id = std::mem::take(&mut c.id);
    let db = d1::db(&app.env)?;
    #[derive(Deserialize)]
    struct Row {
        token_hash: String,
        revoked_at: Option<f64>,
    }
    let row: Row = d1::stmt(
        &db,
        "SELECT token_hash, revoked_at FROM api_keys WHERE id = ?1 AND user_id = ?2",
        &[(&id).into(), (&principal.user_id).into()],
    )?
    .first(None)
    .await?
    .ok_or(ApiError::NotFound)?;
    if row.revoked_at.is_none() {
        revoke_hash(&app, row.token_hash).await?;
        let ev = Event::by_owner(&principal.user_id, Action::KeyRevoked, &origin_of(&c.headers))
            .target(TargetType::Key, &id)
            .data(serde_json::json!({ "reason": "owner" }));
        let now = now_ms();
        db.batch(vec![
            audit::stmt_if(
                &db,
                &ev,
                now,
                Some("EXISTS (SELECT 1 FROM api_keys WHERE id = ?12 AND revoked_at IS NULL)"),
                &[V::T(&id)],
            )?,
            d1::stmt(
                &db,
                "UPDATE api_keys SET revoked_at = ?1 WHERE id = ?2 AND revoked_at IS NULL",
                &[now.into(), (&id).into()],
            )?,
        ])
        .await?;
        let data = serde_json::json!({ "keyId": id, "at": rfc3339(now_ms()), "reason": "revoked by owner" });
        let (app2, user) = (app.clone(), principal.user_id.clone());
        app.defer("notify revoked", async move {
            crate::adapters::notices::notify(&app2, &user, Some(&id), crate::domain::event::EventType::KeyRevoked, data).await
        });
    }
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// Tells the key's Durable Object first: from its answer on, no request passes.
pub async fn revoke_hash(app: &AppState, hash: String) -> ApiResult<()> {
    gate::revoke(&app.env, &GateRequest::Revoke { kind: CredentialKind::Key, hash }).await
}

/// GET /api/auth/api-keys/{id}/usage: requests per UTC day by outcome, 30 days.
pub async fn usage(mut c: Ctx) -> ApiResult<Response> {
    let app = c.app.clone();
    let principal = c.who()?.clone();
    let id = std::mem::take(&mut c.id);
    use crate::domain::usage::{day_of, Days, Outcomes, KEEP_DAYS};
    use crate::protocol::UsageReply;

    let db = d1::db(&app.env)?;
    let hash: String = d1::stmt(
        &db,
        "SELECT token_hash FROM api_keys WHERE id = ?1 AND user_id = ?2",
        &[(&id).into(), (&principal.user_id).into()],
    )?
    .first(Some("token_hash"))
    .await?
    .ok_or(ApiError::NotFound)?;
    let today = day_of(now_ms() / 1000);
    let oldest = today - (KEEP_DAYS - 1) * crate::domain::limits::DAY_SECS;
    #[derive(Deserialize)]
    struct Row {
        day: f64,
        allowed: f64,
        rate_limited: f64,
        quota_exceeded: f64,
        insufficient_scope: f64,
        ip_not_allowed: f64,
        session_only: f64,
    }
    let rows: Vec<Row> = d1::stmt(
        &db,
        "SELECT day, allowed, rate_limited, quota_exceeded, insufficient_scope, ip_not_allowed, session_only \
         FROM key_usage WHERE key_id = ?1 AND day >= ?2",
        &[(&id).into(), oldest.into()],
    )?
    .all()
    .await?
    .results()?;
    let mut days: Days = rows
        .into_iter()
        .map(|r| {
            (
                r.day as i64,
                Outcomes {
                    allowed: r.allowed as u32,
                    rate_limited: r.rate_limited as u32,
                    quota_exceeded: r.quota_exceeded as u32,
                    insufficient_scope: r.insufficient_scope as u32,
                    ip_not_allowed: r.ip_not_allowed as u32,
                    session_only: r.session_only as u32,
                },
            )
        })
        .collect();
    // The key's Durable Object holds what has not been flushed yet.
    let live: UsageReply = gate::usage(&app.env, &GateRequest::Usage { kind: CredentialKind::Key, hash }).await?;
    for (day, o) in live.days.iter() {
        let merged = days.entry(day);
        *merged = merged.max(o);
    }
    let series: Vec<serde_json::Value> = (0..KEEP_DAYS)
        .map(|i| {
            let day = oldest + i * crate::domain::limits::DAY_SECS;
            let o = days.get(day).unwrap_or_default();
            let mut v = serde_json::to_value(o).unwrap_or_default();
            v["date"] = serde_json::Value::String(rfc3339(day * 1000)[..10].to_string());
            v["total"] = o.total().into();
            v
        })
        .collect();
    Ok(json(StatusCode::OK, &serde_json::json!({ "keyId": id, "days": series })))
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_700_000_000_000;

    #[test]
    fn expiry_presets_and_custom_timestamps() {
        assert_eq!(expiry(None, None, NOW), Ok(None));
        assert_eq!(expiry(Some("never"), None, NOW), Ok(None));
        assert_eq!(expiry(Some("30d"), None, NOW), Ok(Some(NOW + 30 * DAY_MS)));
        assert_eq!(expiry(Some("1y"), None, NOW), Ok(Some(NOW + 365 * DAY_MS)));
        assert!(expiry(Some("2w"), None, NOW).unwrap_err().starts_with("expiresIn"));
        assert_eq!(expiry(None, Some(&rfc3339(NOW + 5000)), NOW), Ok(Some(NOW + 5000)));
        assert!(expiry(None, Some(&rfc3339(NOW - 1)), NOW).unwrap_err().contains("future"));
        assert!(expiry(None, Some("soon"), NOW).unwrap_err().starts_with("expiresAt"));
        assert!(expiry(Some("30d"), Some(&rfc3339(NOW + 1)), NOW).is_err());
    }
}
