//! Accounts and sessions: signup, login, logout, me. No API key can call the
//! first three; `me` answers any valid key (no scope) and sessions.

use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};

use crate::adapters::audit::{self, origin_of};
use crate::adapters::crypto::{fill_random, pbkdf2_sha256, random_bytes};
use crate::adapters::d1::{self, V};
use crate::adapters::gate;
use crate::auth::cookies;
use crate::auth::decide::CredentialKind;
use crate::auth::password::{Stored, ITERATIONS};
use crate::auth::token::{self, TokenKind};
use crate::domain::audit::{Action, Event, Origin};
use crate::domain::clock::{rfc3339, DAY_MS};
use crate::domain::{ids, validate};
use crate::error::{ApiError, ApiResult};
use crate::http::{client_ip, json, now_ms, AppState};
use crate::pipeline::ctx::Ctx;
use crate::protocol::{GateRequest, ThrottleAction};
use crate::records::{UserResponse, UserRow};

const SESSION_TTL_MS: i64 = 14 * DAY_MS;

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct SessionResponse {
    token: String,
    expires_at: String,
}

#[derive(Serialize)]
pub(crate) struct AuthResponse {
    pub(crate) user: UserResponse,
    pub(crate) session: SessionResponse,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SignupRequest {
    username: String,
    email: String,
    password: String,
    display_name: Option<String>,
}

#[derive(Deserialize)]
pub struct LoginRequest {
    login: String,
    password: String,
}

async fn hash_password(password: &str) -> ApiResult<String> {
    let salt = random_bytes::<16>();
    let hash = pbkdf2_sha256(password.as_bytes(), &salt, ITERATIONS).await?;
    Ok(Stored { iterations: ITERATIONS, salt: salt.to_vec(), hash }.encode())
}

/// A new session token and the statement that stores its hash, with where it
/// was opened from (the sessions list shows it).
pub(crate) fn new_session(
    db: &worker::D1Database,
    user_id: &str,
    now: i64,
    origin: &Origin,
) -> ApiResult<(SessionResponse, worker::D1PreparedStatement)> {
    let tok = token::generate(TokenKind::Session, fill_random);
    let id = ids::ulid(now, random_bytes());
    let expires = now + SESSION_TTL_MS;
    let stmt = d1::stmt(
        db,
        "INSERT INTO sessions (id, user_id, token_hash, created_at, expires_at, user_agent, ip) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
        &[
            (&id).into(),
            user_id.into(),
            (&token::hash(&tok)).into(),
            now.into(),
            expires.into(),
            origin.user_agent.as_ref().into(),
            origin.ip.as_ref().into(),
        ],
    )?;
    Ok((SessionResponse { token: tok, expires_at: rfc3339(expires) }, stmt))
}

/// POST /api/auth/signup
pub async fn signup(mut c: Ctx) -> ApiResult<Response> {
    let app = c.app.clone();
    let req: SignupRequest = c.body().await?;
    let headers = std::mem::take(&mut c.headers);
    let username = validate::username(&req.username).map_err(ApiError::invalid)?;
    let email = validate::email(&req.email).map_err(ApiError::invalid)?;
    let password = validate::password(&req.password).map_err(ApiError::invalid)?;
    let display_name = match req.display_name.as_deref() {
        Some(d) => validate::text("displayName", d, 50).map_err(ApiError::invalid)?,
        None => username.clone(),
    };
    let config = crate::config::Config::get(&app.env);
    // An operator's name is a role: nobody signs up into it (an operator signs
    // up first and is then named in ADMIN_USERNAMES), as nobody renames into it.
    if config.is_operator(&username) {
        return Err(ApiError::Conflict("username: reserved".into()));
    }
    // Sign-ups per address: each try counts, taken or not, before any D1 work.
    if let Some(ip) = client_ip(&headers) {
        let (limit, window) = (config.signup_max_per_address, config.signup_window_seconds);
        if let Some(retry_after) = gate::address_over(&app.env, "signup", &ip, limit, window).await? {
            return Err(ApiError::RateLimited { retry_after });
        }
    }
    let db = d1::db(&app.env)?;
    let now = now_ms();
    let id = ids::ulid(now, random_bytes());
    let password_hash = hash_password(password).await?;
    let insert = d1::stmt(
        &db,
        "INSERT INTO users (id, username, email, display_name, password_hash, created_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        &[(&id).into(), (&username).into(), (&email).into(), (&display_name).into(), (&password_hash).into(), now.into()],
    )?;
    let (session, session_insert) = new_session(&db, &id, now, &origin_of(&headers))?;
    // One batch: the account and its first session exist together or not at all.
    if let Err(e) = db.batch(vec![insert, session_insert]).await.map_err(ApiError::from) {
        if d1::is_unique_violation(&e) {
            let field = if e.to_string().contains("users.email") { "email" } else { "username" };
            return Err(ApiError::Conflict(format!("{field}: already taken")));
        }
        return Err(e);
    }
    let user = UserResponse { id, username, email, display_name, created_at: rfc3339(now) };
    Ok(session_reply(StatusCode::CREATED, &headers, AuthResponse { user, session }))
}

/// Failed password checks allowed per window: `LOGIN_MAX_FAILURES`, `LOGIN_WINDOW_SECONDS`.
pub(crate) fn login_limits(app: &AppState) -> (u32, i64) {
    let config = crate::config::Config::get(&app.env);
    (config.login_max_failures, config.login_window_seconds)
}

/// Per account at an address, and per address: `(subject, limit)`. A
/// stranger's failures count against the account only at the stranger's
/// address, so they never lock the owner out from another; an address gets
/// five accounts' worth, so one office behind a NAT is not locked out.
fn throttle_subjects(login: &str, ip: Option<&str>, max: u32) -> Vec<(String, u32)> {
    match ip.map(crate::domain::address::bound_key) {
        Some(ip) => vec![(format!("login:acct:{login}:ip:{ip}"), max), (format!("login:ip:{ip}"), max.saturating_mul(5))],
        None => vec![(format!("login:acct:{login}"), max)],
    }
}

/// POST /api/auth/login
pub async fn login(mut c: Ctx) -> ApiResult<Response> {
    let app = c.app.clone();
    let req: LoginRequest = c.body().await?;
    let headers = std::mem::take(&mut c.headers);
    let login = req.login.trim().to_ascii_lowercase();
    if login.is_empty() || login.len() > 254 {
        return Err(ApiError::invalid("login: username or email is required"));
    }
    if req.password.is_empty() || req.password.len() > 200 {
        return Err(ApiError::invalid("password: is required"));
    }
    let (max, window) = login_limits(&app);
    let ip = client_ip(&headers);
    let subjects = throttle_subjects(&login, ip.as_deref(), max);
    // Each try is counted before the password is derived, so parallel guesses
    // cannot all pass one check; a right answer gives its count back.
    for (i, (subject, limit)) in subjects.iter().enumerate() {
        let t = gate::throttle(&app.env, subject, ThrottleAction::Attempt, *limit, window).await?;
        if !t.allowed {
            for (taken, limit) in &subjects[..i] {
                gate::throttle(&app.env, taken, ThrottleAction::Refund, *limit, window).await?;
            }
            return Err(ApiError::TooManyAttempts { retry_after: t.retry_after });
        }
    }
    let db = d1::db(&app.env)?;
    let column = if login.contains('@') { "email" } else { "username" };
    let row = d1::stmt(
        &db,
        &format!(
            "SELECT id, username, email, display_name, password_hash, created_at, suspended_at, \
             (SELECT enabled_at FROM user_totp t WHERE t.user_id = users.id) AS totp_enabled_at FROM users \
             WHERE {column} = ?1 AND deleted_at IS NULL"
        ),
        &[V::T(&login)],
    )?
    .first::<d1::Row>(None)
    .await?;
    let row = row.map(|r| {
        let user = UserRow {
            id: r.text("id").unwrap_or_default(),
            username: r.text("username").unwrap_or_default(),
            email: r.text("email").unwrap_or_default(),
            display_name: r.text("display_name").unwrap_or_default(),
            password_hash: r.text("password_hash").unwrap_or_default(),
            created_at: r.num("created_at"),
        };
        (user, r.num("suspended_at") != 0.0, r.num("totp_enabled_at") != 0.0)
    });
    // An unknown login costs the same derivation as a wrong password.
    let stored = row.as_ref().and_then(|(r, ..)| Stored::parse(&r.password_hash)).unwrap_or(Stored {
        iterations: ITERATIONS,
        salt: vec![0; 16],
        hash: vec![0; 32],
    });
    let derived = pbkdf2_sha256(req.password.as_bytes(), &stored.salt, stored.iterations).await?;
    let origin = origin_of(&headers);
    let now = now_ms();
    let (user, suspended, two_factor) = match row {
        Some(r) if stored.matches(&derived) => r,
        Some((r, ..)) => {
            // A wrong password for a real account is in its owner's log.
            let failed = Event::by_owner(&r.id, Action::LoginFailed, &origin).data(serde_json::json!({"method": "password"}));
            audit::stmt(&db, &failed, now)?.run().await?;
            return Err(ApiError::InvalidCredentials);
        }
        None => return Err(ApiError::InvalidCredentials),
    };
    gate::throttle(&app.env, &subjects[0].0, ThrottleAction::Clear, max, window).await?;
    for (subject, limit) in &subjects[1..] {
        gate::throttle(&app.env, subject, ThrottleAction::Refund, *limit, window).await?;
    }
    // Asked only once the password is right: a suspension is no secret from the owner.
    if suspended {
        return Err(ApiError::AccountSuspended);
    }
    if two_factor {
        return crate::account::routes::twofactor::challenge(&db, &user.id, now, &origin).await;
    }
    let (session, insert) = new_session(&db, &user.id, now, &origin)?;
    let login = Event::by_owner(&user.id, Action::Login, &origin).data(serde_json::json!({"method": "password"}));
    db.batch(vec![insert, audit::stmt(&db, &login, now)?]).await?;
    Ok(session_reply(StatusCode::OK, &headers, AuthResponse { user: user.public(), session }))
}

/// POST /api/auth/logout
pub async fn logout(c: Ctx) -> ApiResult<Response> {
    let app = &c.app;
    let principal = c.who()?;
    let db = d1::db(&app.env)?;
    let hash: Option<String> = d1::stmt(&db, "SELECT token_hash FROM sessions WHERE id = ?1", &[(&principal.id).into()])?
        .first(Some("token_hash"))
        .await?;
    let hash = hash.ok_or(ApiError::InvalidSession)?;
    // The Durable Object is told first, so no request can slip through after this answer.
    gate::revoke(&app.env, &GateRequest::Revoke { kind: CredentialKind::Session, hash }).await?;
    d1::stmt(&db, "UPDATE sessions SET revoked_at = ?1 WHERE id = ?2", &[now_ms().into(), (&principal.id).into()])?.run().await?;
    let mut res = StatusCode::NO_CONTENT.into_response();
    cookies::clear(res.headers_mut());
    Ok(res)
}

// --- Web UI session cookies -----------------------------------------------
// Signup and login also set the HttpOnly session cookie and the CSRF
// double-submit cookie (src/auth/cookies.rs); logout clears them. A client
// that asks for the cookie transport does not get the token in the body.

pub(crate) fn session_reply(status: StatusCode, headers: &HeaderMap, body: AuthResponse) -> Response {
    #[derive(Serialize)]
    #[serde(rename_all = "camelCase")]
    struct CookieSession<'a> {
        expires_at: &'a str,
    }
    #[derive(Serialize)]
    struct CookieAuth<'a> {
        user: &'a UserResponse,
        session: CookieSession<'a>,
    }
    let mut res = if cookies::wants_cookie_only(headers) {
        json(status, &CookieAuth { user: &body.user, session: CookieSession { expires_at: &body.session.expires_at } })
    } else {
        json(status, &body)
    };
    let csrf = cookies::csrf_value(random_bytes());
    cookies::set(res.headers_mut(), &body.session.token, &csrf, SESSION_TTL_MS / 1000);
    res
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn throttles_cover_the_account_and_the_address() {
        let s = throttle_subjects("ada", Some("203.0.113.9"), 10);
        assert_eq!(s, vec![("login:acct:ada:ip:203.0.113.9".to_string(), 10), ("login:ip:203.0.113.9".to_string(), 50)]);
        let elsewhere = throttle_subjects("ada", Some("198.51.100.7"), 10);
        assert!(elsewhere.iter().all(|t| !s.contains(t)), "another address counts apart");
        assert_eq!(throttle_subjects("ada", None, 10), vec![("login:acct:ada".to_string(), 10)]);
        // An IPv6 address counts by its /64 (domain::address).
        let v6 = throttle_subjects("ada", Some("2001:db8:7:8::42"), 10);
        assert_eq!(v6[1].0, "login:ip:2001:db8:7:8::/64");
        assert_eq!(v6, throttle_subjects("ada", Some("2001:db8:7:8:ffff::1"), 10));
    }
}
