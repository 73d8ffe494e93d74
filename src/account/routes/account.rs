//! The caller's own account (sessions only): update profile fields, email
//! and password, and delete the account. A new password ends every other
//! session; deletion every session, API key and OAuth grant; a profile edit
//! reaches every live credential's cached profile. Each goes through
//! `adapters::revocation`: one D1 batch with the change, then one bounded
//! fan-out to the Gates, however many credentials the account holds.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

use crate::adapters::crypto::{pbkdf2_sha256, random_bytes};
use crate::adapters::d1;
use crate::adapters::gate;
use crate::adapters::revocation::{self, Kinds, Reload, Sweep};
use crate::auth::password::{Stored, ITERATIONS};

use crate::domain::audit::{Action, Event, TargetType};
use crate::domain::validate;
use crate::error::{ApiError, ApiResult};
use crate::http::{json, now_ms};
use crate::pipeline::body::str_field;
use crate::pipeline::ctx::Ctx;
use crate::protocol::ThrottleAction;
use crate::records::load_user;

/// Checks `currentPassword` against the account's stored hash (403 when
/// wrong). Throttled per session like logins (429 once `LOGIN_MAX_FAILURES`
/// tries fall in the window, each counted before it is checked), so a stolen
/// session cannot be used to guess the password; per session, so it cannot
/// lock the owner's own sessions out of changing it either.
pub(crate) async fn check_password(c: &Ctx, given: Option<&str>) -> ApiResult<()> {
    let given = given.ok_or_else(|| ApiError::invalid("currentPassword: required to change email or password"))?;
    let (max, window) = crate::account::routes::accounts::login_limits(&c.app);
    let subject = format!("password:session:{}", c.who()?.id);
    let t = gate::throttle(&c.app.env, &subject, ThrottleAction::Attempt, max, window).await?;
    if !t.allowed {
        return Err(ApiError::TooManyAttempts { retry_after: t.retry_after });
    }
    let db = d1::db(&c.app.env)?;
    let hash: Option<String> =
        d1::stmt(&db, "SELECT password_hash FROM users WHERE id = ?1 AND deleted_at IS NULL", &[(&c.who()?.user_id).into()])?
            .first(Some("password_hash"))
            .await?;
    let stored = hash.as_deref().and_then(Stored::parse).ok_or(ApiError::NotFound)?;
    let derived = pbkdf2_sha256(given.as_bytes(), &stored.salt, stored.iterations).await?;
    if !stored.matches(&derived) {
        return Err(ApiError::Forbidden("currentPassword: does not match".into()));
    }
    gate::throttle(&c.app.env, &subject, ThrottleAction::Clear, max, window).await?;
    Ok(())
}

/// PATCH /api/account: `{displayName?, username?, email?, password?,
/// currentPassword?}`; email and password changes need `currentPassword`. A
/// new password ends every other session of the account.
pub async fn update(mut c: Ctx) -> ApiResult<Response> {
    let body = c.json(false).await?;
    let display =
        str_field(&body, "displayName")?.map(|d| validate::text("displayName", d, 50)).transpose().map_err(ApiError::invalid)?;
    let username = str_field(&body, "username")?.map(validate::username).transpose().map_err(ApiError::invalid)?;
    let email = str_field(&body, "email")?.map(validate::email).transpose().map_err(ApiError::invalid)?;
    let password = str_field(&body, "password")?.map(validate::password).transpose().map_err(ApiError::invalid)?;
    if display.is_none() && username.is_none() && email.is_none() && password.is_none() {
        return Err(ApiError::invalid("body: give at least one of displayName, username, email, password"));
    }
    if email.is_some() || password.is_some() {
        check_password(&c, str_field(&body, "currentPassword")?).await?;
    }
    let hash = match password {
        Some(pw) => {
            let salt = random_bytes::<16>();
            let hash = pbkdf2_sha256(pw.as_bytes(), &salt, ITERATIONS).await?;
            Some(Stored { iterations: ITERATIONS, salt: salt.to_vec(), hash }.encode())
        }
        None => None,
    };
    let me = c.who()?.clone();
    if let Some(u) = &username {
        // An operator's name is a role: taking it would take their power.
        let current = me.profile.as_ref().map(|p| p.username.as_str());
        if Some(u.as_str()) != current && crate::config::Config::get(&c.app.env).is_operator(u) {
            return Err(ApiError::Conflict("username: reserved".into()));
        }
    }
    let db = d1::db(&c.app.env)?;
    let mut stmts = vec![d1::stmt(
        &db,
        "UPDATE users SET display_name = coalesce(?1, display_name), username = coalesce(?2, username), \
         email = coalesce(?3, email), password_hash = coalesce(?4, password_hash) WHERE id = ?5 AND deleted_at IS NULL",
        &[display.as_ref().into(), username.as_ref().into(), email.as_ref().into(), hash.as_ref().into(), (&me.user_id).into()],
    )?];
    let origin = crate::adapters::audit::origin_of(&c.headers);
    let now = now_ms();
    for (changed, action) in [(hash.is_some(), Action::PasswordChanged), (email.is_some(), Action::EmailChanged)] {
        if changed {
            let ev = Event::by_owner(&me.user_id, action, &origin).target(TargetType::Account, &me.user_id);
            stmts.push(crate::adapters::audit::stmt(&db, &ev, now)?);
        }
    }
    // A new password ends every other session; a new name or email reaches
    // every cached profile (`/me` answers from it; the operator check reads it).
    let sweep = Sweep {
        user_id: &me.user_id,
        ends: if hash.is_some() { Kinds::SESSIONS } else { Kinds::NONE },
        keep: Some(&me.id),
        reload: if display.is_some() || username.is_some() || email.is_some() { Reload::All } else { Reload::Nothing },
    };
    let written = revocation::apply(&c.app.env, &c.app.request_id, &db, sweep, stmts).await;
    if let Err(e) = written {
        if d1::is_unique_violation(&e) {
            let field = if e.to_string().contains("users.email") { "email" } else { "username" };
            return Err(ApiError::Conflict(format!("{field}: already taken")));
        }
        return Err(e);
    }
    let user = load_user(&db, &me.user_id).await?;
    Ok(json(StatusCode::OK, &user))
}

/// DELETE /api/account: soft-deletes the account (its content disappears
/// from every read), ends its follows, and revokes all its keys, sessions
/// and OAuth grants.
pub async fn delete(c: Ctx) -> ApiResult<Response> {
    let db = d1::db(&c.app.env)?;
    let me = &c.who()?.user_id;
    let change = vec![
        d1::stmt(&db, "UPDATE users SET deleted_at = ?1 WHERE id = ?2 AND deleted_at IS NULL", &[now_ms().into(), me.into()])?,
        d1::stmt(&db, "DELETE FROM follows WHERE follower_id = ?1 OR followee_id = ?1", &[me.into()])?,
    ];
    let sweep = Sweep { user_id: me, ends: Kinds::ALL, keep: None, reload: Reload::Nothing };
    revocation::apply(&c.app.env, &c.app.request_id, &db, sweep, change).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}
