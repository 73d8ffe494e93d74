//! Two-factor sign-in (TOTP, RFC 6238), sessions only: set up (a sealed
//! secret, pending), enable (a code proves the app has it; ten recovery codes
//! shown once), disable (password and a code); and the second login step,
//! which turns a login challenge and a code into a session. A code is taken
//! once per time step (`auth::totp`), wrong codes are throttled like
//! passwords, and five wrong codes burn a challenge.

use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use worker::{D1Database, D1PreparedStatement};

use crate::account::routes::accounts::{login_limits, new_session, session_reply, AuthResponse};
use crate::adapters::audit::{self, origin_of};
use crate::adapters::crypto::{hmac_sha1, random_bytes};
use crate::adapters::d1::{self, V};
use crate::adapters::gate;
use crate::adapters::webhook_secrets::{open_text, seal_text};
use crate::auth::{recovery, token, totp};
use crate::domain::audit::{Action, Event, Origin, TargetType};
use crate::domain::clock::rfc3339;
use crate::error::{ApiError, ApiResult};
use crate::http::{json, now_ms, AppState};
use crate::pipeline::body::str_field;
use crate::pipeline::ctx::Ctx;
use crate::protocol::ThrottleAction;
use crate::records::UserResponse;

const CHALLENGE_PREFIX: &str = "jes_chal_";
const CHALLENGE_TTL_MS: i64 = 300_000;
/// Wrong codes that burn a challenge.
const CHALLENGE_ATTEMPTS: i64 = 5;

fn no_store(mut res: Response) -> Response {
    res.headers_mut().insert(axum::http::header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    res
}

fn aad(user_id: &str) -> String {
    format!("totp:{user_id}")
}

/// An account's TOTP secret (sealed) and its state.
struct TotpRow {
    secret: String,
    enabled: bool,
    last_step: i64,
}

async fn totp_row(db: &D1Database, user_id: &str) -> ApiResult<Option<TotpRow>> {
    let row: Option<d1::Row> =
        d1::stmt(db, "SELECT secret, enabled_at, last_step FROM user_totp WHERE user_id = ?1", &[user_id.into()])?
            .first(None)
            .await?;
    Ok(row.map(|r| TotpRow {
        secret: r.text("secret").unwrap_or_default(),
        enabled: r.num("enabled_at") != 0.0,
        last_step: r.num("last_step") as i64,
    }))
}

/// The step `code` is the TOTP of, if it is one of a step after `last_step`
/// (HMACs in WebCrypto, the decision in `auth::totp`).
async fn matching_step(app: &AppState, user_id: &str, row: &TotpRow, code: &str) -> ApiResult<Option<i64>> {
    if totp::parse_code(code).is_none() {
        return Ok(None);
    }
    let b32 = open_text(&app.env, &aad(user_id), &row.secret).await?;
    let key = totp::base32_decode(&b32).ok_or_else(|| ApiError::internal("stored TOTP secret is not base32"))?;
    let steps = totp::candidates(now_ms() / 1000, row.last_step);
    let messages: Vec<[u8; 8]> = steps.iter().map(|s| totp::message(*s)).collect();
    let macs = hmac_sha1(&key, &messages).await?;
    let pairs: Vec<(i64, [u8; 20])> = steps.into_iter().zip(macs).collect();
    Ok(totp::verify(code, &pairs))
}

/// Counts one code try against the account's 2FA throttle (429 past the limit).
async fn throttle_try(app: &AppState, user_id: &str) -> ApiResult<()> {
    let (max, window) = login_limits(app);
    let t = gate::throttle(&app.env, &format!("2fa:user:{user_id}"), ThrottleAction::Attempt, max, window).await?;
    if !t.allowed {
        return Err(ApiError::TooManyAttempts { retry_after: t.retry_after });
    }
    Ok(())
}

async fn throttle_clear(app: &AppState, user_id: &str) -> ApiResult<()> {
    let (max, window) = login_limits(app);
    gate::throttle(&app.env, &format!("2fa:user:{user_id}"), ThrottleAction::Clear, max, window).await.map(drop)
}

/// Rows changed by each statement of a batch.
fn changes(results: &[worker::D1Result]) -> Vec<usize> {
    results.iter().map(|r| r.meta().ok().flatten().and_then(|m| m.changes).unwrap_or(0)).collect()
}

/// GET /api/account/2fa: whether two-factor is on, and recovery codes left.
pub async fn status(c: Ctx) -> ApiResult<Response> {
    let me = c.who()?;
    let db = d1::db(&c.app.env)?;
    let row = totp_row(&db, &me.user_id).await?;
    let left: Option<f64> = d1::stmt(
        &db,
        "SELECT count(*) AS n FROM recovery_codes WHERE user_id = ?1 AND used_at IS NULL",
        &[(&me.user_id).into()],
    )?
    .first(Some("n"))
    .await?;
    let enabled = row.as_ref().is_some_and(|r| r.enabled);
    Ok(json(
        StatusCode::OK,
        &serde_json::json!({
            "enabled": enabled,
            "pending": row.is_some() && !enabled,
            "recoveryCodesLeft": if enabled { left.unwrap_or(0.0) as i64 } else { 0 },
        }),
    ))
}

/// POST /api/account/2fa/setup: a new pending secret (replacing any pending one).
pub async fn setup(c: Ctx) -> ApiResult<Response> {
    let me = c.who()?.clone();
    let db = d1::db(&c.app.env)?;
    if totp_row(&db, &me.user_id).await?.is_some_and(|r| r.enabled) {
        return Err(ApiError::Conflict("2fa: already enabled; disable it first".into()));
    }
    let secret = totp::base32_encode(&random_bytes::<{ totp::SECRET_LEN }>());
    let sealed = seal_text(&c.app.env, &aad(&me.user_id), &secret).await?;
    let now = now_ms();
    let written = d1::stmt(
        &db,
        "INSERT INTO user_totp (user_id, secret, enabled_at, last_step, created_at) VALUES (?1, ?2, NULL, 0, ?3) \
         ON CONFLICT (user_id) DO UPDATE SET secret = excluded.secret, last_step = 0, created_at = excluded.created_at \
         WHERE user_totp.enabled_at IS NULL",
        &[(&me.user_id).into(), (&sealed).into(), now.into()],
    )?
    .run()
    .await?;
    if written.meta()?.and_then(|m| m.changes).unwrap_or(0) == 0 {
        return Err(ApiError::Conflict("2fa: already enabled; disable it first".into()));
    }
    let username = me.profile.as_ref().map(|p| p.username.clone()).unwrap_or_default();
    let uri = totp::otpauth_uri("Jestha", &username, &secret);
    Ok(no_store(json(StatusCode::OK, &serde_json::json!({ "secret": secret, "otpauthUri": uri }))))
}

/// POST /api/account/2fa/enable `{code}`: turns the pending secret on; the
/// answer holds ten recovery codes, shown this once.
pub async fn enable(mut c: Ctx) -> ApiResult<Response> {
    let body = c.json(false).await?;
    let code = str_field(&body, "code")?.ok_or_else(|| ApiError::invalid("code: is required"))?.to_string();
    let me = c.who()?.clone();
    let db = d1::db(&c.app.env)?;
    let row = totp_row(&db, &me.user_id).await?.ok_or_else(|| ApiError::invalid("2fa: call setup first"))?;
    if row.enabled {
        return Err(ApiError::Conflict("2fa: already enabled".into()));
    }
    throttle_try(&c.app, &me.user_id).await?;
    let step = matching_step(&c.app, &me.user_id, &row, &code).await?.ok_or_else(|| ApiError::invalid("code: does not match"))?;
    throttle_clear(&c.app, &me.user_id).await?;
    let now = now_ms();
    let codes: Vec<String> = (0..recovery::COUNT).map(|_| recovery::generate(random_bytes())).collect();
    let origin = origin_of(&c.headers);
    let mut stmts = vec![
        d1::stmt(
            &db,
            "UPDATE user_totp SET enabled_at = ?2, last_step = ?3 WHERE user_id = ?1 AND enabled_at IS NULL AND last_step < ?3",
            &[(&me.user_id).into(), now.into(), step.into()],
        )?,
        // The whole batch (codes and audit row included) stands only if this request turned it on.
        d1::stmt(
            &db,
            &d1::guard_sql("(SELECT enabled_at FROM user_totp WHERE user_id = ?1) = ?2"),
            &[(&me.user_id).into(), now.into()],
        )?,
        d1::stmt(&db, "DELETE FROM recovery_codes WHERE user_id = ?1", &[(&me.user_id).into()])?,
    ];
    for code in &codes {
        let hash = recovery::hash(&recovery::normalize(code).unwrap_or_default());
        stmts.push(d1::stmt(
            &db,
            "INSERT INTO recovery_codes (user_id, code_hash) VALUES (?1, ?2)",
            &[(&me.user_id).into(), (&hash).into()],
        )?);
    }
    let ev = Event::by_owner(&me.user_id, Action::TwoFactorEnabled, &origin).target(TargetType::TwoFactor, &me.user_id);
    stmts.push(audit::stmt(&db, &ev, now)?);
    if let Err(e) = db.batch(stmts).await.map_err(ApiError::from) {
        if d1::is_guard_failure(&e) {
            return Err(ApiError::Conflict("2fa: already enabled".into()));
        }
        return Err(e);
    }
    Ok(no_store(json(StatusCode::OK, &serde_json::json!({ "recoveryCodes": codes }))))
}

/// DELETE /api/account/2fa `{currentPassword, code | recoveryCode}`
pub async fn disable(mut c: Ctx) -> ApiResult<Response> {
    let body = c.json(false).await?;
    let me = c.who()?.clone();
    let db = d1::db(&c.app.env)?;
    let row = totp_row(&db, &me.user_id).await?.filter(|r| r.enabled);
    let row = row.ok_or_else(|| ApiError::Conflict("2fa: not enabled".into()))?;
    let password = str_field(&body, "currentPassword")?.ok_or_else(|| ApiError::invalid("currentPassword: is required"))?;
    let (code, recovery_code) = (str_field(&body, "code")?, str_field(&body, "recoveryCode")?);
    if code.is_none() == recovery_code.is_none() {
        return Err(ApiError::invalid("code: give either code or recoveryCode"));
    }
    crate::account::routes::account::check_password(&c, Some(password)).await?;
    throttle_try(&c.app, &me.user_id).await?;
    let ok = match (code, recovery_code) {
        (Some(code), _) => matching_step(&c.app, &me.user_id, &row, code).await?.is_some(),
        (_, Some(rc)) => {
            let hash = recovery::hash(&recovery::normalize(rc).unwrap_or_default());
            let found: Option<String> = d1::stmt(
                &db,
                "SELECT code_hash FROM recovery_codes WHERE user_id = ?1 AND code_hash = ?2 AND used_at IS NULL",
                &[(&me.user_id).into(), (&hash).into()],
            )?
            .first(Some("code_hash"))
            .await?;
            found.is_some()
        }
        _ => false,
    };
    if !ok {
        let field = if code.is_some() { "code" } else { "recoveryCode" };
        return Err(ApiError::invalid(format!("{field}: does not match")));
    }
    throttle_clear(&c.app, &me.user_id).await?;
    let now = now_ms();
    let ev = Event::by_owner(&me.user_id, Action::TwoFactorDisabled, &origin_of(&c.headers))
        .target(TargetType::TwoFactor, &me.user_id);
    db.batch(vec![
        audit::stmt_if(&db, &ev, now, Some("EXISTS (SELECT 1 FROM user_totp WHERE user_id = ?12)"), &[V::T(&me.user_id)])?,
        d1::stmt(&db, "DELETE FROM user_totp WHERE user_id = ?1", &[(&me.user_id).into()])?,
        d1::stmt(&db, "DELETE FROM recovery_codes WHERE user_id = ?1", &[(&me.user_id).into()])?,
    ])
    .await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// The first login step's answer for a two-factor account: a challenge, no session.
pub async fn challenge(db: &D1Database, user_id: &str, now: i64, origin: &Origin) -> ApiResult<Response> {
    let challenge = format!("{CHALLENGE_PREFIX}{}", hex::encode(random_bytes::<32>()));
    let expires = now + CHALLENGE_TTL_MS;
    d1::stmt(
        db,
        "INSERT INTO login_challenges (token_hash, user_id, ip, user_agent, created_at, expires_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        &[
            (&token::hash(&challenge)).into(),
            user_id.into(),
            origin.ip.as_ref().into(),
            origin.user_agent.as_ref().into(),
            now.into(),
            expires.into(),
        ],
    )?
    .run()
    .await?;
    let body = serde_json::json!({ "twoFactor": { "challenge": challenge, "expiresAt": rfc3339(expires) } });
    Ok(no_store(json(StatusCode::OK, &body)))
}

/// POST /api/auth/login/2fa `{challenge, code | recoveryCode}`
pub async fn login(mut c: Ctx) -> ApiResult<Response> {
    let body = c.json(false).await?;
    let challenge = str_field(&body, "challenge")?.ok_or_else(|| ApiError::invalid("challenge: is required"))?;
    let (code, recovery_code) = (str_field(&body, "code")?, str_field(&body, "recoveryCode")?);
    if code.is_none() == recovery_code.is_none() {
        return Err(ApiError::invalid("code: give either code or recoveryCode"));
    }
    let app = c.app.clone();
    let db = d1::db(&app.env)?;
    let hash = token::hash(challenge);
    let now = now_ms();
    // The challenge, live, with its account (a challenge outlives nothing it names).
    let ch: d1::Row = d1::stmt(
        &db,
        "SELECT c.user_id, u.username, u.email, u.display_name, u.created_at, u.suspended_at FROM login_challenges c \
         JOIN users u ON u.id = c.user_id \
         WHERE c.token_hash = ?1 AND c.used_at IS NULL AND c.expires_at > ?2 AND c.attempts < ?3 AND u.deleted_at IS NULL",
        &[(&hash).into(), now.into(), CHALLENGE_ATTEMPTS.into()],
    )?
    .first(None)
    .await?
    .ok_or(ApiError::InvalidCode)?;
    if ch.num("suspended_at") != 0.0 {
        return Err(ApiError::AccountSuspended);
    }
    let user_id = ch.text("user_id").unwrap_or_default();
    let user = UserResponse {
        id: user_id.clone(),
        username: ch.text("username").unwrap_or_default(),
        email: ch.text("email").unwrap_or_default(),
        display_name: ch.text("display_name").unwrap_or_default(),
        created_at: rfc3339(ch.num("created_at") as i64),
    };
    throttle_try(&app, &user_id).await?;
    let origin = origin_of(&c.headers);
    let claim_challenge = d1::stmt(
        &db,
        "UPDATE login_challenges SET used_at = ?2 WHERE token_hash = ?1 AND used_at IS NULL",
        &[(&hash).into(), now.into()],
    )?;
    // The code is claimed with the challenge in one batch; both must change a row.
    let (claim, method) = match (code, recovery_code) {
        (Some(code), _) => {
            let row = totp_row(&db, &user_id).await?.filter(|r| r.enabled).ok_or(ApiError::InvalidCode)?;
            match matching_step(&app, &user_id, &row, code).await? {
                Some(step) => (
                    Some(d1::stmt(
                        &db,
                        "UPDATE user_totp SET last_step = ?2 WHERE user_id = ?1 AND last_step < ?2",
                        &[(&user_id).into(), step.into()],
                    )?),
                    "totp",
                ),
                None => (None, "totp"),
            }
        }
        (_, Some(rc)) => match recovery::normalize(rc) {
            Some(n) => (
                Some(d1::stmt(
                    &db,
                    "UPDATE recovery_codes SET used_at = ?3 WHERE user_id = ?1 AND code_hash = ?2 AND used_at IS NULL",
                    &[(&user_id).into(), (&recovery::hash(&n)).into(), now.into()],
                )?),
                "recovery_code",
            ),
            None => (None, "recovery_code"),
        },
        _ => (None, "totp"),
    };
    let claimed = match claim {
        Some(claim) => changes(&db.batch(vec![claim, claim_challenge]).await?) == [1, 1],
        None => false,
    };
    if !claimed {
        wrong_code(&db, &hash, &user_id, &origin, method, now).await?;
        return Err(ApiError::InvalidCode);
    }
    throttle_clear(&app, &user_id).await?;
    let (session, insert) = new_session(&db, &user_id, now, &origin)?;
    let mut stmts: Vec<D1PreparedStatement> = vec![insert];
    let login = Event::by_owner(&user_id, Action::Login, &origin).data(serde_json::json!({ "method": method }));
    stmts.push(audit::stmt(&db, &login, now)?);
    if method == "recovery_code" {
        let used = Event::by_owner(&user_id, Action::RecoveryCodeUsed, &origin).target(TargetType::TwoFactor, &user_id);
        stmts.push(audit::stmt(&db, &used, now)?);
    }
    db.batch(stmts).await?;
    Ok(session_reply(StatusCode::OK, &c.headers, AuthResponse { user, session }))
}

/// A wrong code: one more attempt on the challenge (five burn it) and a
/// `auth.login_failed` row, together.
async fn wrong_code(db: &D1Database, hash: &str, user_id: &str, origin: &Origin, method: &str, now: i64) -> ApiResult<()> {
    let failed = Event::by_owner(user_id, Action::LoginFailed, origin).data(serde_json::json!({ "method": method }));
    db.batch(vec![
        d1::stmt(db, "UPDATE login_challenges SET attempts = attempts + 1 WHERE token_hash = ?1", &[hash.into()])?,
        audit::stmt(db, &failed, now)?,
    ])
    .await?;
    Ok(())
}
