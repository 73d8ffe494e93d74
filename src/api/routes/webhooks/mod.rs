//! Webhook endpoints attached to an API key: create (the `whsec_…` secret shown
//! once), list, enable/disable, delete, send a test event, and read the record
//! of delivery attempts. Open to the owning session, or to that same key when
//! it holds webhooks:manage (the route table requires the scope; `managed_key`
//! below is the one rule for which key a caller may reach). Test events,
//! redelivery and the delivery record are in `deliveries`.

pub mod deliveries;

use crate::adapters::audit::{self, origin_of};
use crate::domain::audit::{Action, Event, TargetType};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};

use crate::adapters::crypto::random_bytes;
use crate::adapters::d1::{self, V};
use crate::adapters::webhook_secrets::seal_secret;
use crate::auth::principal::Principal;
use crate::auth::scope::ScopeSet;
use crate::config::Config;
use crate::domain::clock::rfc3339;
use crate::domain::event::EventType;
use crate::domain::ids::ulid;
use crate::domain::webhook::{self as wh, DISABLED_MANUAL, MAX_ENDPOINTS_PER_ACCOUNT, MAX_ENDPOINTS_PER_KEY, SECRET_BYTES};
use crate::error::{ApiError, ApiResult};
use crate::http::{json, now_ms, AppState};
use crate::pipeline::ctx::Ctx;

/// The key whose webhooks are managed.
pub(super) struct ManagedKey {
    id: String,
    user_id: String,
    scopes: ScopeSet,
    /// Revoked or expired: its endpoints receive nothing.
    inactive: bool,
}

/// Whether `principal` may even ask about key `key_id`: a session about any
/// (its account's), a key only about itself, an OAuth token about none.
/// Decided before any lookup, so a key learns nothing of other keys.
pub fn may_reach(principal: &Principal, key_id: &str) -> bool {
    principal.is_session() || (principal.is_key() && principal.id == key_id)
}

/// The one access rule of every webhook route: a key manages only its own
/// webhooks, a session only those of its account's keys; anything else is 404.
async fn managed_key(app: &AppState, principal: &Principal, key_id: &str) -> ApiResult<ManagedKey> {
    if !may_reach(principal, key_id) {
        return Err(ApiError::NotFound);
    }
    if principal.is_key() {
        // The guard just authorized this very key: it is live, and its scopes are known.
        return Ok(ManagedKey {
            id: principal.id.clone(),
            user_id: principal.user_id.clone(),
            scopes: principal.scopes,
            inactive: false,
        });
    }
    #[derive(Deserialize)]
    struct Row {
        id: String,
        user_id: String,
        scopes: String,
        revoked_at: Option<f64>,
        expires_at: Option<f64>,
    }
    let db = d1::db(&app.env)?;
    let row: Row = d1::stmt(
        &db,
        "SELECT id, user_id, scopes, revoked_at, expires_at FROM api_keys WHERE id = ?1 AND user_id = ?2",
        &[key_id.into(), (&principal.user_id).into()],
    )?
    .first(None)
    .await?
    .ok_or(ApiError::NotFound)?;
    let now = now_ms();
    Ok(ManagedKey {
        inactive: row.revoked_at.is_some() || row.expires_at.is_some_and(|t| t as i64 <= now),
        id: row.id,
        user_id: row.user_id,
        scopes: crate::auth::scope::ScopeSet::from_stored(&row.scopes),
    })
}

pub(super) fn require_active(key: &ManagedKey) -> ApiResult<()> {
    if key.inactive {
        return Err(ApiError::Conflict("api key is revoked or expired: its webhooks receive nothing".into()));
    }
    Ok(())
}

#[derive(Deserialize)]
pub(super) struct EndpointRow {
    id: String,
    url: String,
    events: String,
    enabled: f64,
    disabled_reason: Option<String>,
    disabled_at: Option<f64>,
    failing_since: Option<f64>,
    created_at: f64,
}

impl d1::HasId for EndpointRow {
    fn id(&self) -> &str {
        &self.id
    }
}

const ENDPOINT_COLUMNS: &str = "id, url, events, enabled, disabled_reason, disabled_at, failing_since, created_at";

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct EndpointResponse {
    id: String,
    url: String,
    events: Vec<&'static str>,
    enabled: bool,
    disabled_reason: Option<String>,
    disabled_at: Option<String>,
    failing_since: Option<String>,
    created_at: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    secret: Option<String>,
    /// After a rotation: until when the previous secret still signs.
    #[serde(skip_serializing_if = "Option::is_none")]
    previous_secret_expires_at: Option<String>,
}

impl EndpointRow {
    fn response(self) -> EndpointResponse {
        EndpointResponse {
            id: self.id,
            url: self.url,
            events: wh::stored_events(&self.events).into_iter().map(EventType::as_str).collect(),
            enabled: self.enabled != 0.0,
            disabled_reason: self.disabled_reason,
            disabled_at: self.disabled_at.map(|t| rfc3339(t as i64)),
            failing_since: self.failing_since.map(|t| rfc3339(t as i64)),
            created_at: rfc3339(self.created_at as i64),
            secret: None,
            previous_secret_expires_at: None,
        }
    }
}

/// The route's `{id}` key, as `managed_key` allows it, and its `{webhookId}` endpoint.
pub(super) async fn managed_endpoint(c: &Ctx) -> ApiResult<(ManagedKey, EndpointRow)> {
    let key = managed_key(&c.app, c.who()?, &c.id).await?;
    let ep = endpoint(&c.app, &key, &c.sub_id).await?;
    Ok((key, ep))
}

async fn endpoint(app: &AppState, key: &ManagedKey, webhook_id: &str) -> ApiResult<EndpointRow> {
    let db = d1::db(&app.env)?;
    d1::stmt(
        &db,
        &format!("SELECT {ENDPOINT_COLUMNS} FROM webhook_endpoints WHERE id = ?1 AND key_id = ?2"),
        &[webhook_id.into(), (&key.id).into()],
    )?
    .first(None)
    .await?
    .ok_or(ApiError::NotFound)
}

#[derive(Deserialize)]
pub struct CreateWebhookRequest {
    url: String,
    events: Vec<String>,
}

/// POST /api/auth/api-keys/{id}/webhooks
pub async fn create(mut c: Ctx) -> ApiResult<Response> {
    let app = c.app.clone();
    let principal = c.who()?.clone();
    let key_id = std::mem::take(&mut c.id);
    let req: CreateWebhookRequest = c.body().await?;
    let key = managed_key(&app, &principal, &key_id).await?;
    let url = wh::validate_url(&req.url, Config::get(&app.env).webhook_allow_loopback).map_err(ApiError::invalid)?;
    let events = wh::parse_events(&req.events, key.scopes).map_err(ApiError::invalid)?;
    require_active(&key)?;
    let now = now_ms();
    let id = format!("wh_{}", ulid(now, random_bytes()));
    let secret = wh::encode_secret(&random_bytes::<SECRET_BYTES>());
    let sealed = seal_secret(&app.env, &id, &secret).await?;
    let db = d1::db(&app.env)?;
    let added = Event::by_owner(&principal.user_id, Action::WebhookCreated, &origin_of(&c.headers))
        .target(TargetType::Webhook, &id)
        .data(serde_json::json!({ "keyId": key.id, "url": url.0 }));
    // The bounds are checked inside the insert, so racing requests cannot
    // both pass them (D1 runs one statement at a time); the audit row exists
    // only if the endpoint does.
    let insert = d1::stmt(
        &db,
        "INSERT INTO webhook_endpoints (id, key_id, user_id, url, events, secret, created_at) \
         SELECT ?1, ?2, ?3, ?4, ?5, ?6, ?7 \
         WHERE (SELECT COUNT(*) FROM webhook_endpoints WHERE key_id = ?2) < ?8 \
         AND (SELECT COUNT(*) FROM webhook_endpoints WHERE user_id = ?3) < ?9 \
         AND NOT EXISTS (SELECT 1 FROM webhook_endpoints WHERE user_id = ?3 AND url = ?4)",
        &[
            (&id).into(),
            (&key.id).into(),
            (&key.user_id).into(),
            (&url.0).into(),
            V::T(&wh::events_to_stored(&events)),
            (&sealed).into(),
            now.into(),
            MAX_ENDPOINTS_PER_KEY.into(),
            MAX_ENDPOINTS_PER_ACCOUNT.into(),
        ],
    )?;
    let audit_row =
        audit::stmt_if(&db, &added, now, Some("EXISTS (SELECT 1 FROM webhook_endpoints WHERE id = ?12)"), &[V::T(&id)])?;
    let results = db.batch(vec![insert, audit_row]).await?;
    let written = results.first().and_then(|r| r.meta().ok().flatten()).and_then(|m| m.changes).unwrap_or(0);
    if written == 0 {
        return Err(refusal(&db, &key, &principal, &url.0).await?);
    }
    let body = EndpointResponse {
        id,
        url: url.0,
        events: events.into_iter().map(EventType::as_str).collect(),
        enabled: true,
        disabled_reason: None,
        disabled_at: None,
        failing_since: None,
        created_at: rfc3339(now),
        secret: Some(secret),
        previous_secret_expires_at: None,
    };
    Ok(json(StatusCode::CREATED, &body))
}

/// Why the insert above wrote nothing: the first bound that no longer holds,
/// read after the fact (only a refused create pays for this read).
async fn refusal(db: &worker::D1Database, key: &ManagedKey, principal: &Principal, url: &str) -> ApiResult<ApiError> {
    let row: Option<d1::Row> = d1::stmt(
        db,
        "SELECT (SELECT id FROM webhook_endpoints WHERE user_id = ?2 AND url = ?3 LIMIT 1) AS same_url, \
                (SELECT key_id FROM webhook_endpoints WHERE user_id = ?2 AND url = ?3 LIMIT 1) AS same_url_key, \
                (SELECT COUNT(*) FROM webhook_endpoints WHERE user_id = ?2) AS of_account, \
                (SELECT COUNT(*) FROM webhook_endpoints WHERE key_id = ?1) AS of_key",
        &[(&key.id).into(), (&key.user_id).into(), url.into()],
    )?
    .first(None)
    .await?;
    let Some(row) = row else { return Err(ApiError::Internal("webhooks: the bounds could not be read".into())) };
    Ok(ApiError::Conflict(match row.text("same_url") {
        // A key learns the id only of its own endpoint; a session sees all of its account's.
        Some(id) if principal.is_session() || row.text("same_url_key").as_deref() == Some(key.id.as_str()) => {
            format!("url: this account already has an endpoint with this URL ({id})")
        }
        Some(_) => "url: this account already has an endpoint with this URL (on another of its keys)".into(),
        None if row.num("of_account") as i64 >= MAX_ENDPOINTS_PER_ACCOUNT => {
            format!("webhooks: at most {MAX_ENDPOINTS_PER_ACCOUNT} endpoints per account; delete one first")
        }
        None if row.num("of_key") as i64 >= MAX_ENDPOINTS_PER_KEY => {
            format!("webhooks: at most {MAX_ENDPOINTS_PER_KEY} endpoints per key; delete one first")
        }
        // A concurrent delete freed room after the insert was refused.
        None => "webhooks: a concurrent change refused this endpoint; try again".into(),
    }))
}

/// GET /api/auth/api-keys/{id}/webhooks (newest first)
pub async fn list(mut c: Ctx) -> ApiResult<Response> {
    let app = c.app.clone();
    let principal = c.who()?.clone();
    let key_id = std::mem::take(&mut c.id);
    let page = c.page()?;
    let key = managed_key(&app, &principal, &key_id).await?;
    let db = d1::db(&app.env)?;
    let select = format!("SELECT {ENDPOINT_COLUMNS} FROM webhook_endpoints WHERE key_id = ?1");
    let (rows, next) = d1::newest_first::<EndpointRow>(&db, &select, &key.id, &page).await?;
    let items: Vec<EndpointResponse> = rows.into_iter().map(EndpointRow::response).collect();
    Ok(crate::http::page(&items, next))
}

#[derive(Deserialize)]
pub struct UpdateWebhookRequest {
    enabled: Option<bool>,
}

/// PATCH /api/auth/api-keys/{id}/webhooks/{webhookId}: `{"enabled": true}`
/// re-enables a disabled endpoint and clears its failure record;
/// `{"enabled": false}` pauses it.
pub async fn update(mut c: Ctx) -> ApiResult<Response> {
    let app = c.app.clone();
    let principal = c.who()?.clone();
    let (key_id, webhook_id) = (std::mem::take(&mut c.id), std::mem::take(&mut c.sub_id));
    let req: UpdateWebhookRequest = c.body().await?;
    let enabled = req.enabled.ok_or_else(|| ApiError::invalid("enabled: required (true or false)"))?;
    let key = managed_key(&app, &principal, &key_id).await?;
    let db = d1::db(&app.env)?;
    let sql = if enabled {
        format!(
            "UPDATE webhook_endpoints SET enabled = 1, disabled_reason = NULL, disabled_at = NULL, \
             failing_since = NULL, consecutive_dead = 0 WHERE id = ?1 AND key_id = ?2 RETURNING {ENDPOINT_COLUMNS}"
        )
    } else {
        format!(
            "UPDATE webhook_endpoints SET disabled_reason = CASE WHEN enabled = 1 THEN ?3 ELSE disabled_reason END, \
             disabled_at = CASE WHEN enabled = 1 THEN ?4 ELSE disabled_at END, enabled = 0 \
             WHERE id = ?1 AND key_id = ?2 RETURNING {ENDPOINT_COLUMNS}"
        )
    };
    let mut args: Vec<V> = vec![(&webhook_id).into(), (&key.id).into()];
    if !enabled {
        args.extend::<[V; 2]>([DISABLED_MANUAL.into(), now_ms().into()]);
    }
    let row: EndpointRow = d1::stmt(&db, &sql, &args)?.first(None).await?.ok_or(ApiError::NotFound)?;
    Ok(json(StatusCode::OK, &row.response()))
}

/// DELETE /api/auth/api-keys/{id}/webhooks/{webhookId}: the endpoint and its
/// delivery record go together.
pub async fn delete(mut c: Ctx) -> ApiResult<Response> {
    let app = c.app.clone();
    let principal = c.who()?.clone();
    let (key_id, webhook_id) = (std::mem::take(&mut c.id), std::mem::take(&mut c.sub_id));
    let key = managed_key(&app, &principal, &key_id).await?;
    let db = d1::db(&app.env)?;
    let owned = "EXISTS (SELECT 1 FROM webhook_endpoints WHERE id = ?1 AND key_id = ?2)";
    let args: [V; 2] = [(&webhook_id).into(), (&key.id).into()];
    let removed = Event::by_owner(&principal.user_id, Action::WebhookDeleted, &origin_of(&c.headers))
        .target(TargetType::Webhook, &webhook_id)
        .data(serde_json::json!({ "keyId": key.id }));
    let results = db
        .batch(vec![
            audit::stmt_if(
                &db,
                &removed,
                now_ms(),
                Some(&owned.replace("?1", "?12").replace("?2", "?13")),
                &[V::T(&webhook_id), V::T(&key.id)],
            )?,
            d1::stmt(&db, &format!("DELETE FROM webhook_attempts WHERE endpoint_id = ?1 AND {owned}"), &args)?,
            d1::stmt(&db, &format!("DELETE FROM webhook_deliveries WHERE endpoint_id = ?1 AND {owned}"), &args)?,
            d1::stmt(&db, &format!("DELETE FROM webhook_previous_secrets WHERE endpoint_id = ?1 AND {owned}"), &args)?,
            d1::stmt(&db, "DELETE FROM webhook_endpoints WHERE id = ?1 AND key_id = ?2", &args)?,
        ])
        .await?;
    let deleted = results.last().and_then(|r| r.meta().ok().flatten()).and_then(|m| m.changes).unwrap_or(0);
    if deleted == 0 {
        return Err(ApiError::NotFound);
    }
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// POST /api/auth/api-keys/{id}/webhooks/{webhookId}/rotate-secret: a new
/// `whsec_…` secret, shown once. The old one keeps signing beside it (two
/// signatures in `webhook-signature`) for `WEBHOOK_SECRET_GRACE_SECONDS`
/// (default a day), so a receiver can switch without missing a delivery;
/// rotating again drops the older one at once.
pub async fn rotate_secret(c: Ctx) -> ApiResult<Response> {
    let (key, ep) = managed_endpoint(&c).await?;
    let app = &c.app;
    let now = now_ms();
    let grace_ms = Config::get(&app.env).webhook_secret_grace_seconds * 1000;
    let secret = wh::encode_secret(&random_bytes::<SECRET_BYTES>());
    let sealed = seal_secret(&app.env, &ep.id, &secret).await?;
    let db = d1::db(&app.env)?;
    let args: [V; 4] = [(&ep.id).into(), (&key.id).into(), (now + grace_ms).into(), (&sealed).into()];
    // One transaction: the current secret becomes the previous one, then the new one replaces it.
    let results = db
        .batch(vec![
            d1::stmt(
                &db,
                "INSERT INTO webhook_previous_secrets (endpoint_id, secret, expires_at) \
                 SELECT id, secret, ?3 FROM webhook_endpoints WHERE id = ?1 AND key_id = ?2 \
                 ON CONFLICT (endpoint_id) DO UPDATE SET secret = excluded.secret, expires_at = excluded.expires_at",
                &args[..3],
            )?,
            d1::stmt(&db, "UPDATE webhook_endpoints SET secret = ?4 WHERE id = ?1 AND key_id = ?2", &args)?,
        ])
        .await?;
    let rotated = results.last().and_then(|r| r.meta().ok().flatten()).and_then(|m| m.changes).unwrap_or(0);
    if rotated == 0 {
        return Err(ApiError::NotFound);
    }
    let mut body = ep.response();
    body.secret = Some(secret);
    body.previous_secret_expires_at = Some(rfc3339(now + grace_ms));
    Ok(json(StatusCode::OK, &body))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::decide::CredentialKind;
    use crate::domain::limits::{Standing, Standings};

    fn principal(kind: CredentialKind, id: &str) -> Principal {
        let s = Standing { limit: 1, remaining: 1, reset: 0, window: 60 };
        Principal {
            kind,
            id: id.into(),
            user_id: "user_1".into(),
            label: String::new(),
            scopes: ScopeSet::all(),
            standings: Standings { minute: s, day: None },
            profile: None,
        }
    }

    #[test]
    fn every_webhook_route_needs_exactly_webhooks_manage() {
        use crate::auth::principal::Access;
        use crate::auth::scope::Scope;
        let routes: Vec<_> = crate::app::routes().into_iter().filter(|r| r.path.contains("/webhooks")).collect();
        assert_eq!(routes.len(), 8);
        for r in routes {
            assert!(r.path.starts_with("/api/auth/api-keys/{id}/webhooks"), "{}", r.path);
            assert_eq!(r.access, Access::Scopes(&[Scope::WebhooksManage]), "{} {}", r.method, r.path);
        }
    }

    #[test]
    fn a_key_reaches_only_its_own_webhooks_and_a_session_asks_storage() {
        let key = principal(CredentialKind::Key, "key_a");
        assert!(may_reach(&key, "key_a"));
        assert!(!may_reach(&key, "key_b"), "another key, even of the same account, is not reachable");
        let session = principal(CredentialKind::Session, "sess_1");
        assert!(may_reach(&session, "key_b"), "ownership is then checked against the key's account");
        // An OAuth token is neither: it reaches no key's webhooks, not even by its grant's id.
        let token = principal(CredentialKind::OAuth, "key_a");
        assert!(!may_reach(&token, "key_a") && !may_reach(&token, "key_b"));
    }
}
