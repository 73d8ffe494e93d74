//! Account-wide credential changes (a password change, an account deletion,
//! an operator's suspension and its lifting, a profile edit), bounded
//! whatever the account's size: ONE D1 batch and ONE Durable Object call.
//!
//! 1. D1 first, in one batch (a transaction): the caller's change (the new
//!    password, the deletion, the suspension and its audit row), one
//!    `UPDATE … RETURNING` per kind of credential it ends, the list of live
//!    credentials whose Gates must reload the account, and an intent row
//!    (`revocations`). So the change and every revocation it implies land
//!    together or not at all: nothing is half-done in the record.
//! 2. Then the Gates, through one fan-out call (`domain::fanout`: a tree of
//!    fan-out objects, no invocation making more than 40 subrequests), which
//!    answers once every Gate has been told. Revoking and reloading are
//!    idempotent: a failed fan-out is sent once more at once.
//! 3. Then the intent row is deleted. If the Gates could not all be told,
//!    the row stays and the cron sends the same calls again (`redrive`), so
//!    the Gates converge on D1 within about a minute; the caller still
//!    answers success, since its change is committed (a client retrying a
//!    password change would fail its own `currentPassword` check).
//!
//! The order matters: the Gates told first (the previous design) could be
//! left revoked, permanently, for a change that then failed in D1.

use worker::{D1Database, D1PreparedStatement, D1Result, Env};

use crate::adapters::d1::{self, V};
use crate::adapters::gate;
use crate::auth::decide::CredentialKind;
use crate::error::ApiError;
use crate::protocol::{FanOutCall, FanOutOp};

/// Which kinds of credential a change ends for good.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Kinds {
    pub sessions: bool,
    pub keys: bool,
    pub grants: bool,
}

impl Kinds {
    /// Nothing ends (a profile edit, the end of a suspension).
    pub const NONE: Kinds = Kinds { sessions: false, keys: false, grants: false };
    /// Everything the account holds (deletion).
    pub const ALL: Kinds = Kinds { sessions: true, keys: true, grants: true };
    /// Sessions only (a new password ends the other sessions).
    pub const SESSIONS: Kinds = Kinds { sessions: true, keys: false, grants: false };
    /// A suspension: sessions and OAuth grants for good; keys are refused
    /// while it lasts (they reload the account, `Reload::Keys`).
    pub const SUSPENSION: Kinds = Kinds { sessions: true, keys: false, grants: true };
}

/// Which of the credentials still live after the change reload the account
/// in their Gate (each caches the profile and the suspension).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reload {
    Nothing,
    /// The keys (a suspension and its lifting).
    Keys,
    /// Every live credential (a new username, email or display name).
    All,
}

impl Reload {
    fn as_str(self) -> &'static str {
        match self {
            Reload::Nothing => "",
            Reload::Keys => "keys",
            Reload::All => "all",
        }
    }

    fn parse(s: &str) -> Reload {
        match s {
            "keys" => Reload::Keys,
            "all" => Reload::All,
            _ => Reload::Nothing,
        }
    }
}

/// A suspension's reloads: the live keys of `?1`, as (subject, kind) rows.
const KEYS_SQL: &str = "SELECT token_hash AS subject, 'key' AS kind FROM api_keys WHERE user_id = ?1 AND revoked_at IS NULL";
/// A profile edit's reloads: every live credential of `?1` at `?2`.
const ALL_SQL: &str = "SELECT token_hash AS subject, 'session' AS kind FROM sessions WHERE user_id = ?1 AND revoked_at IS NULL AND expires_at > ?2 \
     UNION ALL SELECT token_hash AS subject, 'key' AS kind FROM api_keys WHERE user_id = ?1 AND revoked_at IS NULL \
     UNION ALL SELECT id AS subject, 'grant' AS kind FROM oauth_grants WHERE user_id = ?1 AND revoked_at IS NULL";

/// An account-wide change's reach: whose credentials, which end, which
/// session stays (the one changing its password), which reload.
#[derive(Debug, Clone, Copy)]
pub struct Sweep<'a> {
    pub user_id: &'a str,
    pub ends: Kinds,
    pub keep: Option<&'a str>,
    pub reload: Reload,
}

/// A credential's Gate to tell, as D1 lists it (columns `subject`, a token
/// hash or a grant's id, and `kind`: `session`, `key` or `grant`).
fn call(row: &d1::Row, op: FanOutOp) -> FanOutCall {
    let kind = match row.text("kind").as_deref() {
        Some("key") => CredentialKind::Key,
        Some("grant") => CredentialKind::OAuth,
        _ => CredentialKind::Session,
    };
    FanOutCall { kind, subject: row.text("subject").unwrap_or_default(), op }
}

/// The fan-out's calls: `Revoke` to every credential just ended, `Refresh`
/// to every one that reloads (none is both: only live ones reload).
fn calls(ended: &[d1::Row], reloads: &[d1::Row]) -> Vec<FanOutCall> {
    let revoke = ended.iter().map(|r| call(r, FanOutOp::Revoke));
    revoke.chain(reloads.iter().map(|r| call(r, FanOutOp::Refresh))).collect()
}

/// The statements that end `kinds` of `user_id`'s credentials at `now`
/// (but `keep`): first one `UPDATE … RETURNING` per kind, each answering the
/// Gates to tell, then a grant's access and refresh tokens (so no refresh
/// can mint a new token), which answer nothing.
fn ending(
    db: &D1Database,
    user_id: &str,
    kinds: Kinds,
    keep: Option<&str>,
    now: i64,
) -> Result<(Vec<D1PreparedStatement>, Vec<D1PreparedStatement>), ApiError> {
    let (mut listing, mut tokens) = (Vec::new(), Vec::new());
    if kinds.sessions {
        listing.push(d1::stmt(
            db,
            "UPDATE sessions SET revoked_at = ?1 WHERE user_id = ?2 AND revoked_at IS NULL AND expires_at > ?1 AND id IS NOT ?3 \
             RETURNING token_hash AS subject, 'session' AS kind",
            &[now.into(), user_id.into(), keep.into()],
        )?);
    }
    if kinds.keys {
        listing.push(d1::stmt(
            db,
            "UPDATE api_keys SET revoked_at = ?1 WHERE user_id = ?2 AND revoked_at IS NULL RETURNING token_hash AS subject, 'key' AS kind",
            &[now.into(), user_id.into()],
        )?);
    }
    if kinds.grants {
        listing.push(d1::stmt(
            db,
            "UPDATE oauth_grants SET revoked_at = ?1, revoked_reason = 'account' WHERE user_id = ?2 AND revoked_at IS NULL \
             RETURNING id AS subject, 'grant' AS kind",
            &[now.into(), user_id.into()],
        )?);
        for table in ["oauth_access_tokens", "oauth_refresh_tokens"] {
            tokens.push(d1::stmt(
                db,
                &format!(
                    "UPDATE {table} SET revoked_at = ?1 WHERE revoked_at IS NULL \
                     AND grant_id IN (SELECT id FROM oauth_grants WHERE user_id = ?2 AND revoked_at = ?1)"
                ),
                &[now.into(), user_id.into()],
            )?);
        }
    }
    Ok((listing, tokens))
}

/// Commits `change` with everything `sweep` implies in ONE D1 batch, then
/// tells the Gates (see the module's doc). Answers the results of `change`'s
/// own statements, in order (a trailing SELECT reads the state after).
/// `request_id` names the fan-out objects and the log lines.
pub async fn apply(
    env: &Env,
    request_id: &str,
    db: &D1Database,
    sweep: Sweep<'_>,
    change: Vec<D1PreparedStatement>,
) -> Result<Vec<D1Result>, ApiError> {
    let now = crate::http::now_ms();
    let own = change.len();
    let mut batch = change;
    let (listing, tokens) = ending(db, sweep.user_id, sweep.ends, sweep.keep, now)?;
    let ended = own..own + listing.len();
    batch.extend(listing);
    batch.extend(tokens);
    let reload_at = batch.len();
    match sweep.reload {
        Reload::Nothing => {}
        Reload::Keys => batch.push(d1::stmt(db, KEYS_SQL, &[sweep.user_id.into()])?),
        Reload::All => batch.push(d1::stmt(db, ALL_SQL, &[sweep.user_id.into(), now.into()])?),
    }
    let id = format!("rvk_{}", crate::domain::ids::ulid(now, crate::adapters::crypto::random_bytes()));
    batch.push(d1::stmt(
        db,
        "INSERT INTO revocations (id, user_id, stamp, reload, created_at) VALUES (?1, ?2, ?3, ?4, ?3)",
        &[V::T(&id), sweep.user_id.into(), now.into(), sweep.reload.as_str().into()],
    )?);
    let mut results = db.batch(batch).await?;
    let mut revoked: Vec<d1::Row> = Vec::new();
    for r in &results[ended] {
        revoked.extend(r.results::<d1::Row>()?);
    }
    let reloads: Vec<d1::Row> = match sweep.reload {
        Reload::Nothing => vec![],
        _ => results[reload_at].results()?,
    };
    results.truncate(own);
    tell_and_close(env, db, request_id, &id, calls(&revoked, &reloads)).await;
    Ok(results)
}

/// Tells the Gates (a second time if the first fan-out failed), then deletes
/// the intent row `id`. A failure is logged and the row kept for the cron.
async fn tell_and_close(env: &Env, db: &D1Database, request_id: &str, id: &str, calls: Vec<FanOutCall>) {
    let mut told = gate::fan_out(env, &format!("fanout:{id}"), calls.clone()).await;
    if told.is_err() {
        told = gate::fan_out(env, &format!("fanout:{id}:again"), calls).await;
    }
    let closed = match told {
        Ok(()) => close(db, id).await,
        Err(e) => Err(e),
    };
    if let Err(e) = closed {
        crate::log::error(request_id, "revocation: Gates not all told, the cron tells them again", &e.to_string());
    }
}

async fn close(db: &D1Database, id: &str) -> Result<(), ApiError> {
    d1::stmt(db, "DELETE FROM revocations WHERE id = ?1", &[V::T(id)])?.run().await?;
    Ok(())
}

/// How old an intent row must be before the cron sends its calls again: a
/// request's own fan-out has long finished by then.
pub const REDRIVE_AFTER_MS: i64 = 30_000;

/// Cron: sends the calls of up to `limit` intent rows older than
/// `REDRIVE_AFTER_MS` again (the credentials D1 revoked at the row's stamp,
/// and those that reload), then deletes each row. Each row costs 3
/// subrequests (list, fan-out, delete). Answers how many rows it closed.
pub async fn redrive(env: &Env, limit: u32) -> Result<usize, ApiError> {
    let db = d1::db(env)?;
    let now = crate::http::now_ms();
    let due: Vec<d1::Row> = d1::stmt(
        &db,
        "SELECT id, user_id, stamp, reload FROM revocations WHERE created_at <= ?1 ORDER BY created_at LIMIT ?2",
        &[(now - REDRIVE_AFTER_MS).into(), i64::from(limit).into()],
    )?
    .all()
    .await?
    .results()?;
    let mut closed = 0;
    for intent in due {
        let (id, user_id) = (intent.text("id").unwrap_or_default(), intent.text("user_id").unwrap_or_default());
        let reload = Reload::parse(&intent.text("reload").unwrap_or_default());
        let (sql, params) = redrive_sql(reload);
        let args = [V::T(&user_id), (intent.num("stamp") as i64).into(), now.into()];
        let rows: Vec<d1::Row> = d1::stmt(&db, &sql, &args[..params])?.all().await?.results()?;
        let (reloads, ended): (Vec<d1::Row>, Vec<d1::Row>) = rows.into_iter().partition(|r| r.flag("reload"));
        gate::fan_out(env, &format!("fanout:{id}:cron:{now}"), calls(&ended, &reloads)).await?;
        close(&db, &id).await?;
        closed += 1;
    }
    Ok(closed)
}

/// An intent row's Gates and their binding, in one query: the credentials
/// of `?1` revoked at its stamp `?2` (another revocation in the same
/// millisecond only adds a harmless call), then, flagged `reload`, those
/// to reload as of `?3`.
fn redrive_sql(reload: Reload) -> (String, usize) {
    let ended =
        "SELECT token_hash AS subject, 'session' AS kind, 0 AS reload FROM sessions WHERE user_id = ?1 AND revoked_at = ?2 \
         UNION ALL SELECT token_hash AS subject, 'key' AS kind, 0 AS reload FROM api_keys WHERE user_id = ?1 AND revoked_at = ?2 \
         UNION ALL SELECT id AS subject, 'grant' AS kind, 0 AS reload FROM oauth_grants WHERE user_id = ?1 AND revoked_at = ?2";
    match reload {
        Reload::Nothing => (ended.to_string(), 2),
        Reload::Keys => (format!("{ended} UNION ALL SELECT subject, kind, 1 AS reload FROM ({KEYS_SQL})"), 2),
        Reload::All => (format!("{ended} UNION ALL SELECT subject, kind, 1 AS reload FROM ({})", ALL_SQL.replace("?2", "?3")), 3),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reload_round_trips_through_the_intent_row() {
        for r in [Reload::Nothing, Reload::Keys, Reload::All] {
            assert_eq!(Reload::parse(r.as_str()), r);
        }
        assert!(!KEYS_SQL.contains("sessions"), "a suspension's sessions are ended, not reloaded");
    }

    #[test]
    fn a_suspension_ends_sessions_and_grants_but_not_keys() {
        assert_eq!(Kinds::SUSPENSION, Kinds { sessions: true, keys: false, grants: true });
        assert_eq!(Kinds::ALL, Kinds { sessions: true, keys: true, grants: true });
    }

    /// The SQL itself runs in tests/test_revocation.py (the cron's re-drive);
    /// here, that it binds exactly the parameters it uses (D1 refuses others).
    #[test]
    fn the_redrive_query_binds_what_it_uses() {
        for r in [Reload::Nothing, Reload::Keys, Reload::All] {
            let (sql, params) = redrive_sql(r);
            for n in 1..=3 {
                assert_eq!(sql.contains(&format!("?{n}")), n <= params, "{r:?} ?{n}: {sql}");
            }
        }
        assert!(redrive_sql(Reload::All).0.contains("expires_at > ?3"));
    }
}
