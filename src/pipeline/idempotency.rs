//! `Idempotency-Key` on authenticated POSTs (IETF draft
//! `draft-ietf-httpapi-idempotency-key-header`, Stripe semantics), as one
//! step that runs after the auth guard:
//!
//! - the first request with a key claims it atomically (INSERT … ON CONFLICT
//!   DO UPDATE only over an expired or abandoned row; `changes` says who won),
//!   runs, and stores its status and body for 24 hours, per credential (key,
//!   session or OAuth grant: a replay never answers for another credential
//!   of the account, so it never skips the handler's own authorization);
//! - the same key and the same request (method, path, body: the linear-time
//!   `domain::idempotency::StreamFp`, boundary left out) replays
//!   the stored response with `Idempotent-Replayed: true` and creates nothing;
//! - the same key with a different request is 422 `idempotency_key_reused`;
//! - a multipart boundary RFC 2046 does not allow (over 70 characters) is
//!   400 before the body is read;
//! - the same key while the first is still running is 409
//!   `idempotency_in_flight`;
//! - a 5xx answer releases the claim so a retry can run; a claim older than
//!   `ABANDONED_MS` that never finished (the isolate died) is taken over;
//!   a streamed upload's claim only after `STREAM_ABANDONED_MS`, as its body
//!   may take that long to arrive.
//!
//! The decisions are pure functions, tested natively; the layer is plumbing.
//! Routes that answer with a secret shown once (new API keys, webhook
//! secrets) are left out in `app::idempotent`: storing their bodies would keep
//! the plaintext secret in D1.

use axum::body::Body;
use axum::extract::Request;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};

use crate::adapters::d1::{self, V};
use crate::adapters::stream::RawBody;
use crate::auth::principal::Principal;
use crate::config::Config;
use crate::domain::clock::DAY_MS;
use crate::domain::idempotency::{boundary, StreamFp};
use crate::domain::upload::{Caller, Spec, Want};
use crate::error::{ApiError, ApiResult};
use crate::http::{now_ms, AppState, MAX_JSON_BYTES};
use crate::pipeline::body::read_body;
use crate::pipeline::Next;

pub const HEADER: &str = "idempotency-key";
pub const REPLAYED: &str = "idempotent-replayed";
/// How long a finished key replays.
pub const TTL_MS: i64 = DAY_MS;
/// A claim this old that never finished is treated as abandoned.
pub const ABANDONED_MS: i64 = 60_000;
/// A streamed upload's claim (taken before its body is read, so its stored
/// fingerprint is still empty) may run as long as its body takes to arrive:
/// it is abandoned only after the upload grace an unfinished R2 object gets.
/// Taking it over sooner would run the upload twice under one key.
pub const STREAM_ABANDONED_MS: i64 = crate::adapters::stream::GRACE_MS;
// At least an hour, and within a key's life: checked when compiling.
const _: () = assert!(STREAM_ABANDONED_MS >= 3_600_000 && STREAM_ABANDONED_MS < TTL_MS);

/// How long a running claim with this stored fingerprint may run.
pub fn abandoned_after(fingerprint: &str) -> i64 {
    if fingerprint.is_empty() {
        STREAM_ABANDONED_MS
    } else {
        ABANDONED_MS
    }
}
pub const MAX_KEY_LEN: usize = 255;
/// Largest response body stored for replay (content responses are small).
const MAX_STORED_BODY: usize = 256 * 1024;

/// The header's value, checked: 1 to 255 visible ASCII characters.
pub fn parse_key(raw: &[u8]) -> Result<&str, String> {
    if raw.is_empty() || raw.len() > MAX_KEY_LEN {
        return Err(format!("Idempotency-Key: must be 1 to {MAX_KEY_LEN} characters"));
    }
    if !raw.iter().all(|b| b.is_ascii_graphic() || *b == b' ') {
        return Err("Idempotency-Key: only visible ASCII characters are allowed".into());
    }
    std::str::from_utf8(raw).map_err(|_| "Idempotency-Key: only visible ASCII characters are allowed".into())
}

/// Where a streamed upload's fingerprint is put by the handler that hands
/// its body over (the engine hashes it while streaming, `StreamFp`): the
/// layer claims the key before any byte is read, and stores the response
/// with the fingerprint once the handler is done.
#[derive(Clone, Default)]
pub struct FpCell(std::rc::Rc<std::cell::RefCell<Option<String>>>);

// SAFETY: one thread per isolate (see `adapters::media::JsBody`).
unsafe impl Send for FpCell {}
unsafe impl Sync for FpCell {}

impl FpCell {
    pub fn set(&self, fp: Option<String>) {
        *self.0.borrow_mut() = fp;
    }

    fn get(&self) -> Option<String> {
        self.0.borrow().clone()
    }
}

/// The `state` of a claimed key whose request has not finished.
const RUNNING: &str = "running";

/// A stored key, as read after a lost claim.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stored {
    pub fingerprint: String,
    pub running: bool,
    pub status: u16,
    pub body: String,
    pub created_at: i64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Replay the stored response.
    Replay { status: u16, body: String },
    /// 409: the first request still runs.
    InFlight,
    /// 422: the key belongs to a different request.
    Reused,
    /// The row is expired or abandoned (the claim raced with its release or
    /// takeover): try to claim again.
    Retry,
}

/// What to answer when the claim was lost to an existing row.
pub fn decide(stored: &Stored, fingerprint: &str, now: i64) -> Decision {
    if stored.created_at <= now - TTL_MS || (stored.running && stored.created_at <= now - abandoned_after(&stored.fingerprint)) {
        return Decision::Retry;
    }
    if stored.running {
        // Whatever its body, a concurrent retry waits for the first to finish.
        return Decision::InFlight;
    }
    if stored.fingerprint != fingerprint {
        return Decision::Reused;
    }
    Decision::Replay { status: stored.status, body: stored.body.clone() }
}

/// Whether a finished response is kept for replay (5xx releases the claim).
pub fn keeps(status: u16) -> bool {
    status < 500
}

/// How large a body the layer reads to fingerprint it.
pub fn body_limit(content_type: &str, max_upload: usize) -> usize {
    let mime = content_type.split(';').next().unwrap_or("").trim();
    if mime.eq_ignore_ascii_case("multipart/form-data") {
        max_upload + 64 * 1024
    } else {
        MAX_JSON_BYTES
    }
}

fn replay(status: u16, body: String) -> Response {
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::OK);
    let mut res = (status, body.clone()).into_response();
    let h = res.headers_mut();
    if !body.is_empty() {
        h.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    }
    h.insert(REPLAYED, HeaderValue::from_static("true"));
    res
}

/// The layer (see the module doc).
pub async fn layer(req: Request, next: Next) -> Response {
    match run(req, next).await {
        Ok(res) => res,
        Err(e) => e.into_response(),
    }
}

async fn run(req: Request, next: Next) -> ApiResult<Response> {
    let Some(raw) = req.headers().get(HEADER) else { return Ok(next.run(req).await) };
    let key = parse_key(raw.as_bytes()).map_err(ApiError::invalid)?.to_string();
    let (Some(app), Some(who)) = (req.extensions().get::<AppState>().cloned(), req.extensions().get::<Principal>().cloned())
    else {
        return Ok(next.run(req).await);
    };
    let ct = req.headers().get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("").to_string();
    let raw = req.extensions().get::<RawBody>().cloned().filter(|r| !r.is_taken());
    let streamed = raw.is_some();
    let (mut parts, body) = req.into_parts();
    let bound = match boundary(&ct) {
        Ok(b) => b.map(str::to_string),
        Err(msg) => {
            // Read and drop the body, so the local runtime serves the next request.
            if !streamed {
                let _ = read_body(body, 0).await;
            }
            return Err(ApiError::invalid(msg));
        }
    };
    let target = parts.uri.path_and_query().map(|p| p.as_str()).unwrap_or("/").to_string();
    // An upload's body streams on unread: its fingerprint comes later (see `FpCell`).
    let (bytes, fp) = if streamed {
        (Default::default(), String::new())
    } else {
        let max_upload = Config::get(&app.env).max_upload_bytes as usize;
        let bytes = read_body(body, body_limit(&ct, max_upload)).await?;
        let mut fp = StreamFp::new(parts.method.as_str(), &target, bound.as_deref());
        fp.push(&bytes);
        (bytes, fp.finish())
    };
    let db = d1::db(&app.env)?;
    let account = who.user_id.as_str();
    let credential = who.scope_id();
    let credential = credential.as_str();
    let mut claimed_at = None;
    for _ in 0..2 {
        let now = now_ms();
        let won = d1::stmt(
            &db,
            "INSERT INTO idempotency_requests (credential, key, account_id, fingerprint, state, created_at) \
             VALUES (?1, ?2, ?7, ?3, 'running', ?4) \
             ON CONFLICT (credential, key) DO UPDATE SET fingerprint = excluded.fingerprint, state = 'running', \
             status = NULL, body = NULL, created_at = excluded.created_at \
             WHERE idempotency_requests.created_at <= ?5 \
             OR (idempotency_requests.state = 'running' AND idempotency_requests.created_at <= \
                 CASE idempotency_requests.fingerprint WHEN '' THEN ?8 ELSE ?6 END)",
            &[
                credential.into(),
                V::T(&key),
                V::T(&fp),
                now.into(),
                (now - TTL_MS).into(),
                (now - ABANDONED_MS).into(),
                account.into(),
                (now - STREAM_ABANDONED_MS).into(),
            ],
        )?
        .run()
        .await?
        .meta()?
        .and_then(|m| m.changes)
        .unwrap_or(0);
        if won == 1 {
            claimed_at = Some(now);
            break;
        }
        let row: Option<d1::Row> = d1::stmt(
            &db,
            "SELECT fingerprint, state, coalesce(status, 0) AS status, coalesce(body, '') AS body, created_at \
             FROM idempotency_requests WHERE credential = ?1 AND key = ?2",
            &[credential.into(), V::T(&key)],
        )?
        .first(None)
        .await?;
        let Some(row) = row else { continue };
        let stored = Stored {
            fingerprint: row.text("fingerprint").unwrap_or_default(),
            running: row.text("state").as_deref() == Some(RUNNING),
            status: row.num("status") as u16,
            body: row.text("body").unwrap_or_default(),
            created_at: row.num("created_at") as i64,
        };
        let mut decision = decide(&stored, &fp, now);
        if streamed && matches!(decision, Decision::Reused) {
            // A finished key: this upload's own fingerprint decides, so its body is hashed (and dropped).
            let spec = Spec {
                caller: Caller { account: account.to_string(), images: false, videos: false },
                want: Want::Any,
                content_type: ct.clone(),
                raw: bound.is_none(),
                file_field: String::new(),
                max_files: 0,
                max_bytes: 0,
                length: raw.as_ref().and_then(|r| r.length),
                fingerprint: Some((parts.method.to_string(), target.clone())),
                hash_only: true,
            };
            let body = raw.as_ref().and_then(RawBody::take);
            let reply = crate::adapters::engine::ingest(&app.env, &spec, body.as_ref()).await?;
            decision = decide(&stored, &reply.fingerprint.unwrap_or_default(), now);
        }
        match decision {
            Decision::Replay { status, body } => return Ok(replay(status, body)),
            Decision::InFlight => return Err(ApiError::IdempotencyInFlight),
            Decision::Reused => return Err(ApiError::IdempotencyKeyReused),
            Decision::Retry => continue,
        }
    }
    let Some(claimed_at) = claimed_at else { return Err(ApiError::IdempotencyInFlight) };
    if claimed_at % 8 == 0 {
        // Now and then, forget this credential's expired keys (off the response path).
        let env = app.env.clone();
        let credential = credential.to_string();
        app.defer("purge idempotency keys", async move {
            let db = d1::db(&env)?;
            d1::stmt(
                &db,
                "DELETE FROM idempotency_requests WHERE credential = ?1 AND created_at <= ?2",
                &[V::T(&credential), (claimed_at - TTL_MS).into()],
            )?
            .run()
            .await?;
            Ok(())
        });
    }

    let cell = FpCell::default();
    if streamed {
        parts.extensions.insert(cell.clone());
    }
    let res = next.run(Request::from_parts(parts, Body::from(bytes))).await;
    let ours = [credential.into(), V::T(&key), claimed_at.into()];
    let status = res.status().as_u16();
    // A streamed upload answered without a fingerprint (refused before or
    // while streaming) stored nothing: its key is released, so a retry runs again.
    let fp: String = if streamed { cell.get().unwrap_or_default() } else { fp };
    if !keeps(status) || fp.is_empty() {
        release(&db, &ours).await;
        return Ok(res);
    }
    let (rparts, rbody) = res.into_parts();
    let rbytes = match axum::body::to_bytes(rbody, MAX_STORED_BODY).await {
        Ok(b) => b,
        Err(_) => {
            release(&db, &ours).await;
            return Err(ApiError::internal("idempotency: response body unreadable or too large"));
        }
    };
    match std::str::from_utf8(&rbytes) {
        Ok(text) => {
            d1::stmt(
                &db,
                "UPDATE idempotency_requests SET state = 'done', status = ?4, body = ?5, fingerprint = ?6 \
                 WHERE credential = ?1 AND key = ?2 AND created_at = ?3",
                &[credential.into(), V::T(&key), claimed_at.into(), (status as i64).into(), V::T(text), V::T(&fp)],
            )?
            .run()
            .await?;
        }
        Err(_) => release(&db, &ours).await,
    }
    Ok(Response::from_parts(rparts, Body::from(rbytes)))
}

/// Drops our claim (only ours: a takeover has another `created_at`).
async fn release(db: &worker::D1Database, ours: &[V<'_>; 3]) {
    if let Ok(s) = d1::stmt(
        db,
        "DELETE FROM idempotency_requests WHERE credential = ?1 AND key = ?2 AND created_at = ?3 AND state = 'running'",
        ours,
    ) {
        let _ = s.run().await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_700_000_000_000;

    fn stored(running: bool, fp: &str, age: i64) -> Stored {
        Stored { fingerprint: fp.into(), running, status: 201, body: "{\"id\":\"x\"}".into(), created_at: NOW - age }
    }

    #[test]
    fn keys_are_1_to_255_visible_ascii_characters() {
        assert_eq!(parse_key(b"order-42"), Ok("order-42"));
        assert!(parse_key(b"").is_err());
        assert!(parse_key(&[b'a'; 256]).unwrap_err().starts_with("Idempotency-Key:"));
        assert!(parse_key(&[b'a'; 255]).is_ok());
        assert!(parse_key(b"tab\there").is_err());
        assert!(parse_key("caf\u{e9}".as_bytes()).is_err());
    }

    #[test]
    fn a_finished_key_replays_the_same_request_and_refuses_another() {
        let s = stored(false, "fp1", 1000);
        assert_eq!(decide(&s, "fp1", NOW), Decision::Replay { status: 201, body: "{\"id\":\"x\"}".into() });
        assert_eq!(decide(&s, "fp2", NOW), Decision::Reused);
    }

    #[test]
    fn a_running_key_is_in_flight_until_abandoned() {
        assert_eq!(decide(&stored(true, "fp1", 1000), "fp1", NOW), Decision::InFlight);
        assert_eq!(decide(&stored(true, "fp1", 1000), "other", NOW), Decision::InFlight);
        assert_eq!(decide(&stored(true, "fp1", ABANDONED_MS - 1), "fp1", NOW), Decision::InFlight);
        assert_eq!(decide(&stored(true, "fp1", ABANDONED_MS), "fp1", NOW), Decision::Retry);
    }

    #[test]
    fn a_streamed_uploads_claim_runs_as_long_as_its_body_may_take() {
        // Claimed before the body is read: no fingerprint stored yet.
        assert_eq!(decide(&stored(true, "", ABANDONED_MS * 10), "", NOW), Decision::InFlight);
        assert_eq!(decide(&stored(true, "", STREAM_ABANDONED_MS - 1), "", NOW), Decision::InFlight);
        assert_eq!(decide(&stored(true, "", STREAM_ABANDONED_MS), "", NOW), Decision::Retry);
    }

    #[test]
    fn keys_expire_after_24_hours() {
        assert_eq!(decide(&stored(false, "fp1", TTL_MS - 1), "other", NOW), Decision::Reused);
        assert_eq!(decide(&stored(false, "fp1", TTL_MS), "other", NOW), Decision::Retry);
    }

    #[test]
    fn server_errors_are_not_kept_and_uploads_get_a_larger_body_limit() {
        assert!(keeps(201) && keeps(400) && keeps(404) && keeps(409) && keeps(422));
        assert!(!keeps(500) && !keeps(503));
        assert_eq!(body_limit("application/json", 1000), MAX_JSON_BYTES);
        assert_eq!(body_limit("multipart/form-data; boundary=x", 1000), 1000 + 64 * 1024);
    }
}
