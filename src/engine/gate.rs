//! `Gate`: one Durable Object per credential (a key or session named by its
//! token hash, an OAuth grant by `grant:<id>`, holding every live access
//! token of the grant) and per login-throttle subject. It holds the credential's live state and counters so
//! an authenticated request costs exactly one round trip and no D1 read:
//! the first request loads the record from D1 (an unknown hash stores nothing),
//! a revocation is told here (before D1 records one credential's, after D1 an
//! account-wide one: `adapters::revocation`), usage is aggregated here and
//! flushed to D1 by an alarm, and the same alarm clears state once the
//! credential is idle. The same class serves the fan-out objects that tell
//! many Gates at once (`super::fanout`).
//!
//! Exactness: state lives in memory and is changed synchronously between awaits;
//! the runtime's input gate keeps other requests out while storage is written.

use std::cell::{Cell, RefCell};
use std::net::IpAddr;

use serde::{Deserialize, Serialize};
use worker::{durable_object, DurableObject, Env, Request, Response, Result, State};

use crate::auth::decide::{decide, Credential, CredentialKind, Denial, LiveToken, Need};
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
    /// Counts `Refresh`es that found nothing cached: a D1 load in flight
    /// when one arrived may have read the record before the change that
    /// caused it (a suspension), so it reads again.
    refreshes: Cell<u32>,
}

fn now_ms() -> i64 {
    worker::Date::now().as_millis() as i64
}

pub fn policy(config: &Config, kind: CredentialKind) -> Policy {
    let window_secs = config.rate_limit_window_seconds;
    match kind {
        // A grant (one connected app) is limited as a key is, across all its tokens.
        CredentialKind::Key | CredentialKind::OAuth => {
            Policy { per_window: config.rate_limit_per_minute, window_secs, per_day: Some(config.daily_quota) }
        }
        CredentialKind::Session => Policy { per_window: config.session_rate_limit_per_minute, window_secs, per_day: None },
    }
}

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
        tokens: vec![],
        suspended: false,
    }
}

/// How long an expired access token stays in its grant's set (answered
/// `Expired` rather than unknown) before a new token prunes it.
const EXPIRED_KEPT_MS: i64 = 3_600_000;

impl Gate {
    async fn load_record(&self, kind: CredentialKind, subject: &str) -> Result<Option<Credential>> {
        super::record::load(&self.env, kind, subject, now_ms() - EXPIRED_KEPT_MS).await
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
        let mut cred = None;
        for _ in 0..3 {
            let seen = self.refreshes.get();
            cred = self.load_record(kind, hash).await?;
            // Another request may have loaded it (or a revocation left a
            // tombstone) while D1 answered.
            if self.live.borrow().is_some() {
                return Ok(true);
            }
            if self.refreshes.get() == seen {
                break;
            }
        }
        let Some(cred) = cred else { return Ok(false) };
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

    /// `subject` is the credential's hash, or for OAuth its grant id with
    /// `token` the presented access token's hash.
    async fn authorize(
        &self,
        kind: CredentialKind,
        subject: &str,
        token: Option<&str>,
        ip: Option<String>,
        need: Need,
    ) -> Result<AuthorizeReply> {
        if !self.ensure_loaded(kind, subject).await? {
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
            // A token's request is decided on the grant as that token presents it.
            let view = match token {
                Some(hash) => match live.cred.as_token(hash) {
                    Some(v) => Some(v),
                    None => return Ok(AuthorizeReply { denial: Some(Denial::Unknown), ..empty_reply() }),
                },
                None => None,
            };
            let cred = view.as_ref().unwrap_or(&live.cred);
            let decision = decide(cred, need, ip, now, &policy, &mut live.tally.counters);
            let counted = live.cred.kind != CredentialKind::Session;
            let mut notices = vec![];
            if counted {
                let outcome = match &decision.denial {
                    None => Some(Outcome::Allowed),
                    Some(d) => d.outcome(),
                };
                if let Some(o) = outcome {
                    live.tally.usage.record(secs, o);
                }
                let grant = live.cred.kind == CredentialKind::OAuth;
                if live.cred.canary && live.tally.marks.canary_due(secs) {
                    notices.push(Notice::CanaryUsed { key_id: live.cred.id.clone(), user_id: live.cred.user_id.clone() });
                }
                if decision.denial.is_none() {
                    if let Some(quota) = policy.per_day {
                        let used = live.tally.counters.day.count;
                        for percent in live.tally.marks.quota_crossings(secs, used, quota) {
                            let (id, user_id) = (live.cred.id.clone(), live.cred.user_id.clone());
                            notices.push(if grant {
                                let client_name = live.cred.label.clone();
                                Notice::GrantQuotaThreshold { grant_id: id, user_id, client_name, percent, used, quota }
                            } else {
                                Notice::QuotaThreshold { key_id: id, user_id, percent, used, quota }
                            });
                        }
                    }
                }
            }
            // Sessions are touched too: the sessions list shows their last use.
            let touch = decision.denial.is_none() && now - live.touched_ms >= MINUTE_MS;
            if touch {
                live.touched_ms = now;
            }
            let identity = decision.standings.map(|_| Identity {
                kind: cred.kind,
                id: cred.id.clone(),
                user_id: cred.user_id.clone(),
                label: cred.label.clone(),
                scopes: cred.scopes,
                profile: cred.profile.clone(),
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

    async fn revoke(&self, kind: CredentialKind) -> Result<()> {
        if !self.load_stored().await? {
            // Nothing cached: no D1 read and no write here (a bulk revocation
            // tells hundreds of idle Gates). D1 records the revocation (a bulk
            // one already has, a single one does next), so every later load
            // reads it; a tombstone in memory covers a load already reading
            // D1, which keeps what it finds installed (`ensure_loaded`).
            self.install(tombstone(kind), Tally::default());
            return Ok(());
        }
        let cred = {
            let mut guard = self.live.borrow_mut();
            let live = guard.as_mut().expect("loaded above");
            live.cred.revoked = true;
            live.cred.clone()
        };
        self.state.storage().put(CRED, &cred).await
    }

    /// A new access token of this grant: from now on it is live here.
    async fn grant_token(&self, grant_id: &str, token: LiveToken) -> Result<()> {
        if !self.ensure_loaded(CredentialKind::OAuth, grant_id).await? {
            return Ok(()); // no such grant: the token endpoint finds out from D1
        }
        let now = now_ms();
        let cred = {
            let mut guard = self.live.borrow_mut();
            let live = guard.as_mut().expect("loaded above");
            live.cred.tokens.retain(|t| t.expires_at > now - EXPIRED_KEPT_MS && t.hash != token.hash);
            live.cred.tokens.push(token);
            live.cred.clone()
        };
        self.state.storage().put(CRED, &cred).await
    }

    /// One access token revoked: gone from the grant's set, for good (D1
    /// records it next, so no later load brings it back).
    async fn revoke_token(&self, grant_id: &str, hash: &str) -> Result<()> {
        if !self.ensure_loaded(CredentialKind::OAuth, grant_id).await? {
            return Ok(());
        }
        let cred = {
            let mut guard = self.live.borrow_mut();
            let live = guard.as_mut().expect("loaded above");
            live.cred.tokens.retain(|t| t.hash != hash);
            live.cred.clone()
        };
        self.state.storage().put(CRED, &cred).await
    }

    async fn refresh(&self, kind: CredentialKind, hash: &str) -> Result<()> {
        if !self.load_stored().await? {
            // Not cached here: the next request loads the fresh record anyway,
            // and an idle Gate told in a fan-out reads no D1. A load already
            // reading D1 reads again (`ensure_loaded`).
            self.refreshes.set(self.refreshes.get().wrapping_add(1));
            return Ok(());
        }
        let Some(mut fresh) = self.load_record(kind, hash).await? else { return Ok(()) };
        let cred = {
            let mut guard = self.live.borrow_mut();
            let live = guard.as_mut().expect("loaded above");
            fresh.revoked |= live.cred.revoked;
            if kind == CredentialKind::OAuth {
                // Tokens told to this object but not yet in D1 stay live.
                for t in std::mem::take(&mut live.cred.tokens) {
                    if !fresh.tokens.iter().any(|f| f.hash == t.hash) {
                        fresh.tokens.push(t);
                    }
                }
            }
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
            if live.cred.kind == CredentialKind::Session || live.cred.id.is_empty() {
                return Ok(());
            }
            (live.cred.id.clone(), live.tally.usage.take_dirty())
        };
        // A grant's usage goes to grant_usage, a key's to key_usage (same columns).
        let (table, column) = if self.live.borrow().as_ref().is_some_and(|l| l.cred.kind == CredentialKind::OAuth) {
            ("grant_usage", "grant_id")
        } else {
            ("key_usage", "key_id")
        };
        if days.is_empty() {
            return Ok(());
        }
        let db = self.env.d1(crate::adapters::d1::BINDING)?;
        let mut stmts = Vec::with_capacity(days.len());
        for (day, o) in &days {
            let v = |n: i64| wasm_bindgen::JsValue::from_f64(n as f64);
            stmts.push(
                db.prepare(format!(
                    "INSERT INTO {table} ({column}, day, allowed, rate_limited, quota_exceeded, insufficient_scope, ip_not_allowed, session_only) \
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8) \
                     ON CONFLICT ({column}, day) DO UPDATE SET allowed = excluded.allowed, rate_limited = excluded.rate_limited, \
                     quota_exceeded = excluded.quota_exceeded, insufficient_scope = excluded.insufficient_scope, \
                     ip_not_allowed = excluded.ip_not_allowed, session_only = excluded.session_only"
                ))
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
        Gate {
            state,
            env,
            live: RefCell::new(None),
            throttle: RefCell::new(None),
            alarm_at: RefCell::new(0),
            refreshes: Cell::new(0),
        }
    }

    async fn fetch(&self, mut req: Request) -> Result<Response> {
        let msg: GateRequest = decode(&req.bytes().await?)?;
        let body = match msg {
            GateRequest::Authorize { kind, hash, ip, need } => encode(&self.authorize(kind, &hash, None, ip, need).await?),
            GateRequest::AuthorizeToken { grant_id, hash, ip, need } => {
                encode(&self.authorize(CredentialKind::OAuth, &grant_id, Some(&hash), ip, need).await?)
            }
            GateRequest::GrantToken { grant_id, token } => {
                self.grant_token(&grant_id, token).await?;
                encode(&())
            }
            GateRequest::RevokeToken { grant_id, hash } => {
                self.revoke_token(&grant_id, &hash).await?;
                encode(&())
            }
            GateRequest::Revoke { kind, .. } => {
                self.revoke(kind).await?;
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
            GateRequest::FanOut { name, calls } => encode(&super::fanout::run(&self.env, &name, calls).await?),
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
