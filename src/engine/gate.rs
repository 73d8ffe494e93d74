//! `Gate`: one Durable Object per credential (named by its token hash) and per
//! login-throttle subject. It holds the credential's live state and counters so
//! an authenticated request costs exactly one round trip and no D1 read:
//! the first request loads the record from D1 (an unknown hash stores nothing),
//! revocation is written here first, usage is aggregated here and flushed to D1
//! by an alarm, and the same alarm clears state once the credential is idle.
//!
//! Exactness: state lives in memory and is changed synchronously between awaits;
//! the runtime's input gate keeps other requests out while storage is written.

use std::cell::RefCell;
use std::net::IpAddr;

use serde::{Deserialize, Serialize};
use worker::{durable_object, DurableObject, Env, Request, Response, Result, State};

use crate::auth::decide::{decide, Credential, CredentialKind, Denial, Need, Profile};
use crate::config::Config;
use crate::domain::clock::MINUTE_MS;
use crate::domain::limits::{idle, Counters, Policy, Window, DAY_SECS};
use crate::domain::usage::{Marks, Outcome, Usage};
use crate::protocol::{decode, encode, AuthorizeReply, GateRequest, Identity, Notice, ThrottleAction, ThrottleReply, UsageReply};

const CRED: &str = "cred";
/// Counters, usage and marks: written together, once per counted request.
const STATE: &str = "state";
const WINDOW: &str = "win";

/// The part of a credential's state that changes per request.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
struct Tally {
    counters: Counters,
    #[serde(default)]
    usage: Usage,
    #[serde(default)]
    marks: Marks,
}

struct Live {
    cred: Credential,
    tally: Tally,
    touched_ms: i64,
}

#[durable_object]
pub struct Gate {
    state: State,
    env: Env,
    live: RefCell<Option<Live>>,
    throttle: RefCell<Option<Window>>,
    /// When the alarm is set for (ms), 0 when unknown.
    alarm_at: RefCell<i64>,
}

fn now_ms() -> i64 {
    worker::Date::now().as_millis() as i64
}

pub fn policy(config: &Config, kind: CredentialKind) -> Policy {
    let window_secs = config.rate_limit_window_seconds;
    match kind {
        CredentialKind::Key => {
            Policy { per_window: config.rate_limit_per_minute, window_secs, per_day: Some(config.daily_quota) }
        }
        CredentialKind::Session => Policy { per_window: config.session_rate_limit_per_minute, window_secs, per_day: None },
    }
}

/// A credential's record joined with its account: one row type for keys and
/// sessions (a session's row has no label, scopes, allowlist or canary).
#[derive(Deserialize)]
struct CredentialRow {
    id: String,
    user_id: String,
    label: Option<String>,
    scopes: Option<String>,
    expires_at: Option<f64>,
    ip_allowlist: Option<String>,
    revoked_at: Option<f64>,
    canary: Option<f64>,
    username: String,
    email: String,
    display_name: String,
    user_created_at: f64,
    deleted_at: Option<f64>,
}

impl CredentialRow {
    fn credential(self, kind: CredentialKind) -> Credential {
        Credential {
            kind,
            scopes: self.scopes.as_deref().map_or(0, |s| crate::auth::scope::ScopeSet::from_stored(s).bits()),
            expires_at: self.expires_at.map(|v| v as i64),
            allowlist: self.ip_allowlist.as_deref().and_then(|a| serde_json::from_str(a).ok()).unwrap_or_default(),
            // A deleted account's credentials are dead.
            revoked: self.revoked_at.is_some() || self.deleted_at.is_some(),
            canary: self.canary.is_some_and(|c| c != 0.0),
            profile: Some(Profile {
                username: self.username,
                email: self.email,
                display_name: self.display_name,
                created_at: self.user_created_at as i64,
            }),
            id: self.id,
            user_id: self.user_id,
            label: self.label.unwrap_or_default(),
        }
    }
}

const USER_COLS: &str = "u.username, u.email, u.display_name, u.created_at AS user_created_at, u.deleted_at";

fn tombstone(kind: CredentialKind) -> Credential {
    Credential {
        kind,
        id: String::new(),
        user_id: String::new(),
        label: String::new(),
        scopes: 0,
        expires_at: None,
        allowlist: vec![],
        revoked: true,
        canary: false,
        profile: None,
    }
}

impl Gate {
    /// The credential's record from D1, or `None` for an unknown hash.
    async fn load_record(&self, kind: CredentialKind, hash: &str) -> Result<Option<Credential>> {
        let db = self.env.d1(crate::adapters::d1::BINDING)?;
        let arg = [wasm_bindgen::JsValue::from_str(hash)];
        let sql = match kind {
            CredentialKind::Key => format!(
                "SELECT k.id, k.user_id, k.label, k.scopes, k.expires_at, k.ip_allowlist, k.revoked_at, k.canary, \
                 {USER_COLS} FROM api_keys k JOIN users u ON u.id = k.user_id WHERE k.token_hash = ?1"
            ),
            CredentialKind::Session => format!(
                "SELECT s.id, s.user_id, s.expires_at, s.revoked_at, {USER_COLS} \
                 FROM sessions s JOIN users u ON u.id = s.user_id WHERE s.token_hash = ?1"
            ),
        };
        let row = db.prepare(&sql).bind(&arg)?.first::<CredentialRow>(None).await?;
        Ok(row.map(|r| r.credential(kind)))
    }

    fn install(&self, cred: Credential, tally: Tally) {
        let mut live = self.live.borrow_mut();
        if live.is_none() {
            *live = Some(Live { cred, tally, touched_ms: 0 });
        }
    }

    /// Loads state from storage into memory. True when a credential is stored.
    async fn load_stored(&self) -> Result<bool> {
        if self.live.borrow().is_some() {
            return Ok(true);
        }
        let storage = self.state.storage();
        let Some(cred) = storage.get::<Credential>(CRED).await? else { return Ok(false) };
        let tally = storage.get::<Tally>(STATE).await?.unwrap_or_default();
        self.install(cred, tally);
        Ok(true)
    }

    /// Makes sure `live` holds the credential: from memory, from storage, or
    /// from D1 (then stored). Returns false for an unknown credential.
    async fn ensure_loaded(&self, kind: CredentialKind, hash: &str) -> Result<bool> {
        if self.load_stored().await? {
            return Ok(true);
        }
        let Some(cred) = self.load_record(kind, hash).await? else { return Ok(false) };
        // Another request may have loaded it while D1 answered.
        if self.live.borrow().is_some() {
            return Ok(true);
        }
        self.state.storage().put(CRED, &cred).await?;
        self.install(cred, Tally::default());
        Ok(true)
    }

    /// Keeps one alarm: soon when usage waits to be flushed, else at the end of
    /// the UTC day for the idle clean-up.
    async fn schedule(&self, now: i64, flush_due: bool) -> Result<()> {
        let want = if flush_due {
            now + Config::get(&self.env).usage_flush_seconds * 1000
        } else {
            (now / 1000 / DAY_SECS + 1) * DAY_SECS * 1000 + MINUTE_MS
        };
        let current = *self.alarm_at.borrow();
        if current > now && current <= want {
            return Ok(());
        }
        *self.alarm_at.borrow_mut() = want;
        self.state.storage().set_alarm(want - now).await
    }

    async fn authorize(&self, kind: CredentialKind, hash: &str, ip: Option<String>, need: Need) -> Result<AuthorizeReply> {
        if !self.ensure_loaded(kind, hash).await? {
            return Ok(AuthorizeReply { denial: Some(Denial::Unknown), ..empty_reply() });
        }
        let now = now_ms();
        let secs = now / 1000;
        let policy = policy(Config::get(&self.env), kind);
        let ip: Option<IpAddr> = ip.and_then(|s| s.parse().ok());
        let (reply, changed) = {
            let mut guard = self.live.borrow_mut();
            let live = guard.as_mut().expect("loaded above");
            let before = live.tally.clone();
            let decision = decide(&live.cred, need, ip, now, &policy, &mut live.tally.counters);
            let is_key = live.cred.kind == CredentialKind::Key;
            let mut notices = vec![];
            if is_key {
                let outcome = match &decision.denial {
                    None => Some(Outcome::Allowed),
                    Some(d) => d.outcome(),
                };
                if let Some(o) = outcome {
                    live.tally.usage.record(secs, o);
                }
                if live.cred.canary && live.tally.marks.canary_due(secs) {
                    notices.push(Notice::CanaryUsed { key_id: live.cred.id.clone(), user_id: live.cred.user_id.clone() });
                }
                if decision.denial.is_none() {
                    if let Some(quota) = policy.per_day {
                        let used = live.tally.counters.day.count;
                        for percent in live.tally.marks.quota_crossings(secs, used, quota) {
                            notices.push(Notice::QuotaThreshold {
                                key_id: live.cred.id.clone(),
                                user_id: live.cred.user_id.clone(),
                                percent,
                                used,
                                quota,
                            });
                        }
                    }
                }
            }
            let touch = decision.denial.is_none() && is_key && now - live.touched_ms >= MINUTE_MS;
            if touch {
                live.touched_ms = now;
            }
            let identity = decision.standings.map(|_| Identity {
                kind: live.cred.kind,
                id: live.cred.id.clone(),
                user_id: live.cred.user_id.clone(),
                label: live.cred.label.clone(),
                scopes: live.cred.scopes,
                profile: live.cred.profile.clone(),
            });
            let changed = (live.tally != before).then(|| live.tally.clone());
            (AuthorizeReply { denial: decision.denial, identity, standings: decision.standings, touch, notices }, changed)
        };
        if let Some(tally) = changed {
            let flush_due = !tally.usage.dirty.is_empty();
            self.state.storage().put(STATE, &tally).await?;
            self.schedule(now, flush_due).await?;
        }
        Ok(reply)
    }

    async fn revoke(&self, kind: CredentialKind, hash: &str) -> Result<()> {
        if !self.ensure_loaded(kind, hash).await? {
            // Nothing in D1 either: keep a tombstone so no later load can revive it.
            self.install(tombstone(kind), Tally::default());
        }
        let cred = {
            let mut guard = self.live.borrow_mut();
            let live = guard.as_mut().expect("loaded above");
            live.cred.revoked = true;
            live.cred.clone()
        };
        self.state.storage().put(CRED, &cred).await
    }

    async fn refresh(&self, kind: CredentialKind, hash: &str) -> Result<()> {
        let Some(mut fresh) = self.load_record(kind, hash).await? else { return Ok(()) };
        if !self.load_stored().await? {
            // Not cached here: the next request loads the fresh record anyway.
            return Ok(());
        }
        let cred = {
            let mut guard = self.live.borrow_mut();
            let live = guard.as_mut().expect("loaded above");
            fresh.revoked |= live.cred.revoked;
            live.cred = fresh;
            live.cred.clone()
        };
        self.state.storage().put(CRED, &cred).await
    }

    async fn usage(&self) -> Result<UsageReply> {
        if !self.load_stored().await? {
            return Ok(UsageReply::default());
        }
        let live = self.live.borrow();
        Ok(UsageReply { days: live.as_ref().map(|l| l.tally.usage.days.clone()).unwrap_or_default() })
    }

    async fn throttle(&self, action: ThrottleAction, limit: u32, window_secs: i64) -> Result<ThrottleReply> {
        let storage = self.state.storage();
        if self.throttle.borrow().is_none() {
            let w = storage.get::<Window>(WINDOW).await?.unwrap_or_default();
            self.throttle.borrow_mut().get_or_insert(w);
        }
        let now = now_ms();
        let now_s = now / 1000;
        let (reply, changed) = {
            let mut guard = self.throttle.borrow_mut();
            let w = guard.as_mut().expect("loaded above");
            let before = *w;
            w.roll(now_s, window_secs);
            let allowed = crate::domain::limits::throttle_step(w, action, limit);
            let retry_after = if allowed { 0 } else { (w.reset_at(window_secs) - now_s).max(1) as u64 };
            (ThrottleReply { allowed, retry_after }, (*w != before).then_some(*w))
        };
        if let Some(w) = changed {
            storage.put(WINDOW, w).await?;
            self.schedule(now, false).await?;
        }
        Ok(reply)
    }

    /// Writes the usage days changed since the last flush to D1 (absolute
    /// counts, so a repeated flush is harmless).
    async fn flush_usage(&self) -> Result<()> {
        let (key_id, days) = {
            let mut guard = self.live.borrow_mut();
            let Some(live) = guard.as_mut() else { return Ok(()) };
            if live.cred.kind != CredentialKind::Key || live.cred.id.is_empty() {
                return Ok(());
            }
            (live.cred.id.clone(), live.tally.usage.take_dirty())
        };
        if days.is_empty() {
            return Ok(());
        }
        let db = self.env.d1(crate::adapters::d1::BINDING)?;
        let mut stmts = Vec::with_capacity(days.len());
        for (day, o) in &days {
            let v = |n: i64| wasm_bindgen::JsValue::from_f64(n as f64);
            stmts.push(
                db.prepare(
                    "INSERT INTO key_usage (key_id, day, allowed, rate_limited, quota_exceeded, insufficient_scope, ip_not_allowed, session_only) \
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8) \
                     ON CONFLICT (key_id, day) DO UPDATE SET allowed = excluded.allowed, rate_limited = excluded.rate_limited, \
                     quota_exceeded = excluded.quota_exceeded, insufficient_scope = excluded.insufficient_scope, \
                     ip_not_allowed = excluded.ip_not_allowed, session_only = excluded.session_only",
                )
                .bind(&[
                    wasm_bindgen::JsValue::from_str(&key_id),
                    v(*day),
                    v(o.allowed as i64),
                    v(o.rate_limited as i64),
                    v(o.quota_exceeded as i64),
                    v(o.insufficient_scope as i64),
                    v(o.ip_not_allowed as i64),
                    v(o.session_only as i64),
                ])?,
            );
        }
        if let Err(e) = db.batch(stmts).await {
            // Put the marks back: the next alarm tries again.
            if let Some(live) = self.live.borrow_mut().as_mut() {
                for (day, _) in days {
                    if !live.tally.usage.dirty.contains(&day) {
                        live.tally.usage.dirty.push(day);
                    }
                }
            }
            return Err(e);
        }
        let tally = self.live.borrow().as_ref().map(|l| l.tally.clone());
        if let Some(t) = tally {
            self.state.storage().put(STATE, &t).await?;
        }
        Ok(())
    }
}

fn empty_reply() -> AuthorizeReply {
    AuthorizeReply { denial: None, identity: None, standings: None, touch: false, notices: vec![] }
}

impl DurableObject for Gate {
    fn new(state: State, env: Env) -> Self {
        Gate { state, env, live: RefCell::new(None), throttle: RefCell::new(None), alarm_at: RefCell::new(0) }
    }

    async fn fetch(&self, mut req: Request) -> Result<Response> {
        let msg: GateRequest = decode(&req.bytes().await?)?;
        let body = match msg {
            GateRequest::Authorize { kind, hash, ip, need } => encode(&self.authorize(kind, &hash, ip, need).await?),
            GateRequest::Revoke { kind, hash } => {
                self.revoke(kind, &hash).await?;
                encode(&())
            }
            GateRequest::Usage { .. } => encode(&self.usage().await?),
            GateRequest::Refresh { kind, hash } => {
                self.refresh(kind, &hash).await?;
                encode(&())
            }
            GateRequest::BenchIncrement => {
                let storage = self.state.storage();
                let n = storage.get::<u64>("bench").await?.unwrap_or(0) + 1;
                storage.put("bench", n).await?;
                encode(&n)
            }
            GateRequest::Throttle { action, limit, window_secs } => encode(&self.throttle(action, limit, window_secs).await?),
        };
        Response::from_bytes(body?)
    }

    /// Flushes usage; then, once the credential has been idle for a UTC day,
    /// drops counters and the cached record (D1 stays the record), keeping only
    /// a revocation tombstone. Otherwise looks again at the end of the day.
    async fn alarm(&self) -> Result<Response> {
        *self.alarm_at.borrow_mut() = 0;
        let now = now_ms();
        self.load_stored().await?;
        self.flush_usage().await?;
        let storage = self.state.storage();
        let tally = self.live.borrow().as_ref().map(|l| l.tally.clone()).unwrap_or_default();
        let throttle_idle = self.throttle.borrow().is_none_or(|w| w.count == 0 || w.start < now / 1000 - DAY_SECS);
        if !idle(&tally.counters, now / 1000) || !tally.usage.dirty.is_empty() || !throttle_idle {
            self.schedule(now, !tally.usage.dirty.is_empty()).await?;
            return Response::ok("kept");
        }
        let cred = storage.get::<Credential>(CRED).await?;
        storage.delete_all().await?;
        if let Some(c) = cred.filter(|c| c.revoked) {
            storage.put(CRED, &c).await?;
        }
        *self.live.borrow_mut() = None;
        *self.throttle.borrow_mut() = None;
        Response::ok("cleared")
    }
}
