//! `Gate`: one Durable Object per credential (named by its token hash) and per
//! login-throttle subject. It holds the credential's live state and counters so
//! an authenticated request costs exactly one round trip and no D1 read:
//! the first request loads the record from D1 (an unknown hash stores nothing),
//! revocation is written here first, and an alarm clears idle state.
//!
//! Exactness: state lives in memory and is changed synchronously between awaits;
//! the runtime's input gate keeps other requests out while storage is written.

use std::cell::RefCell;
use std::net::IpAddr;

use serde::Deserialize;
use worker::{durable_object, DurableObject, Env, Request, Response, Result, State};

use super::protocol::{AuthorizeReply, GateRequest, Identity, ThrottleAction, ThrottleReply};
use crate::auth::decide::{decide, Credential, CredentialKind};
use crate::domain::clock::MINUTE_MS;
use crate::domain::limits::{idle, Counters, Policy, Window, DAY_SECS};

const CRED: &str = "cred";
const COUNTERS: &str = "ctr";
const WINDOW: &str = "win";

struct Live {
    cred: Credential,
    counters: Counters,
    touched_ms: i64,
}

#[durable_object]
pub struct Gate {
    state: State,
    env: Env,
    live: RefCell<Option<Live>>,
    throttle: RefCell<Option<Window>>,
    alarm_at: RefCell<i64>,
}

fn now_ms() -> i64 {
    worker::Date::now().as_millis() as i64
}

/// Reads a numeric Worker variable, falling back to `default`.
pub fn var_u32(env: &Env, name: &str, default: u32) -> u32 {
    env.var(name).ok().and_then(|v| v.to_string().trim().parse().ok()).unwrap_or(default)
}

pub fn policy(env: &Env, kind: CredentialKind) -> Policy {
    let window_secs = var_u32(env, "RATE_LIMIT_WINDOW_SECONDS", 60).max(1) as i64;
    match kind {
        CredentialKind::Key => Policy {
            per_window: var_u32(env, "RATE_LIMIT_PER_MINUTE", 60),
            window_secs,
            per_day: Some(var_u32(env, "DAILY_QUOTA", 10_000)),
        },
        CredentialKind::Session => Policy {
            per_window: var_u32(env, "SESSION_RATE_LIMIT_PER_MINUTE", 120),
            window_secs,
            per_day: None,
        },
    }
}

#[derive(Deserialize)]
struct KeyRow {
    id: String,
    user_id: String,
    label: String,
    scopes: String,
    expires_at: Option<f64>,
    ip_allowlist: String,
    revoked_at: Option<f64>,
    canary: f64,
}

#[derive(Deserialize)]
struct SessionRow {
    id: String,
    user_id: String,
    expires_at: f64,
    revoked_at: Option<f64>,
}

impl Gate {
    /// The credential's record from D1, or `None` for an unknown hash.
    async fn load_record(&self, kind: CredentialKind, hash: &str) -> Result<Option<Credential>> {
        let db = self.env.d1(crate::adapters::d1::BINDING)?;
        let arg = [wasm_bindgen::JsValue::from_str(hash)];
        Ok(match kind {
            CredentialKind::Key => db
                .prepare(
                    "SELECT id, user_id, label, scopes, expires_at, ip_allowlist, revoked_at, canary \
                     FROM api_keys WHERE token_hash = ?1",
                )
                .bind(&arg)?
                .first::<KeyRow>(None)
                .await?
                .map(|r| Credential {
                    kind,
                    id: r.id,
                    user_id: r.user_id,
                    label: r.label,
                    scopes: crate::auth::scope::ScopeSet::of(
                        &r.scopes.split(' ').filter_map(crate::auth::scope::Scope::parse).collect::<Vec<_>>(),
                    )
                    .bits(),
                    expires_at: r.expires_at.map(|v| v as i64),
                    allowlist: serde_json::from_str(&r.ip_allowlist).unwrap_or_default(),
                    revoked: r.revoked_at.is_some(),
                    canary: r.canary != 0.0,
                }),
            CredentialKind::Session => db
                .prepare("SELECT id, user_id, expires_at, revoked_at FROM sessions WHERE token_hash = ?1")
                .bind(&arg)?
                .first::<SessionRow>(None)
                .await?
                .map(|r| Credential {
                    kind,
                    id: r.id,
                    user_id: r.user_id,
                    label: String::new(),
                    scopes: 0,
                    expires_at: Some(r.expires_at as i64),
                    allowlist: vec![],
                    revoked: r.revoked_at.is_some(),
                    canary: false,
                }),
        })
    }

    /// Makes sure `live` holds the credential: from memory, from storage, or
    /// from D1 (then stored). Returns false for an unknown credential.
    async fn ensure_loaded(&self, kind: CredentialKind, hash: &str) -> Result<bool> {
        if self.live.borrow().is_some() {
            return Ok(true);
        }
        let storage = self.state.storage();
        if let Some(cred) = storage.get::<Credential>(CRED).await? {
            let counters = storage.get::<Counters>(COUNTERS).await?.unwrap_or_default();
            let mut live = self.live.borrow_mut();
            if live.is_none() {
                *live = Some(Live { cred, counters, touched_ms: 0 });
            }
            return Ok(true);
        }
        let Some(cred) = self.load_record(kind, hash).await? else { return Ok(false) };
        // Another request may have loaded it while D1 answered.
        if self.live.borrow().is_some() {
            return Ok(true);
        }
        storage.put(CRED, &cred).await?;
        let mut live = self.live.borrow_mut();
        if live.is_none() {
            *live = Some(Live { cred, counters: Counters::default(), touched_ms: 0 });
        }
        Ok(true)
    }

    /// Schedules the idle clean-up at the end of the current UTC day.
    async fn ensure_alarm(&self, now_ms: i64) -> Result<()> {
        let day_end = (now_ms / 1000 / DAY_SECS + 1) * DAY_SECS * 1000 + 60_000;
        if *self.alarm_at.borrow() >= day_end {
            return Ok(());
        }
        *self.alarm_at.borrow_mut() = day_end;
        self.state.storage().set_alarm(day_end - now_ms).await
    }

    async fn authorize(&self, kind: CredentialKind, hash: &str, ip: Option<String>, need: crate::auth::decide::Need) -> Result<AuthorizeReply> {
        if !self.ensure_loaded(kind, hash).await? {
            return Ok(AuthorizeReply {
                denial: Some(crate::auth::decide::Denial::Unknown),
                identity: None,
                standings: None,
                touch: false,
            });
        }
        let now = now_ms();
        let policy = policy(&self.env, kind);
        let ip: Option<IpAddr> = ip.and_then(|s| s.parse().ok());
        let (reply, counters) = {
            let mut guard = self.live.borrow_mut();
            let live = guard.as_mut().expect("loaded above");
            let before = live.counters;
            let decision = decide(&live.cred, need, ip, now, &policy, &mut live.counters);
            let allowed = decision.denial.is_none();
            let touch = allowed && live.cred.kind == CredentialKind::Key && now - live.touched_ms >= MINUTE_MS;
            if touch {
                live.touched_ms = now;
            }
            let identity = decision.standings.map(|_| Identity {
                kind: live.cred.kind,
                id: live.cred.id.clone(),
                user_id: live.cred.user_id.clone(),
                label: live.cred.label.clone(),
                scopes: live.cred.scopes,
            });
            let changed = (live.counters != before).then_some(live.counters);
            (AuthorizeReply { denial: decision.denial, identity, standings: decision.standings, touch }, changed)
        };
        if let Some(c) = counters {
            self.state.storage().put(COUNTERS, c).await?;
            self.ensure_alarm(now).await?;
        }
        Ok(reply)
    }

    async fn revoke(&self, kind: CredentialKind, hash: &str) -> Result<()> {
        if !self.ensure_loaded(kind, hash).await? {
            // Nothing in D1 either: keep a tombstone so no later load can revive it.
            let mut live = self.live.borrow_mut();
            *live = Some(Live {
                cred: Credential {
                    kind,
                    id: String::new(),
                    user_id: String::new(),
                    label: String::new(),
                    scopes: 0,
                    expires_at: None,
                    allowlist: vec![],
                    revoked: true,
                    canary: false,
                },
                counters: Counters::default(),
                touched_ms: 0,
            });
        }
        let cred = {
            let mut guard = self.live.borrow_mut();
            let live = guard.as_mut().expect("loaded above");
            live.cred.revoked = true;
            live.cred.clone()
        };
        self.state.storage().put(CRED, &cred).await
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
            match action {
                ThrottleAction::Fail => w.count = w.count.saturating_add(1),
                ThrottleAction::Clear => w.count = 0,
                ThrottleAction::Check => {}
            }
            let allowed = w.count < limit;
            let retry_after = if allowed { 0 } else { (w.reset_at(window_secs) - now_s).max(1) as u64 };
            (ThrottleReply { allowed, retry_after }, (*w != before).then_some(*w))
        };
        if let Some(w) = changed {
            storage.put(WINDOW, w).await?;
            self.ensure_alarm(now).await?;
        }
        Ok(reply)
    }
}

impl DurableObject for Gate {
    fn new(state: State, env: Env) -> Self {
        Gate { state, env, live: RefCell::new(None), throttle: RefCell::new(None), alarm_at: RefCell::new(0) }
    }

    async fn fetch(&self, mut req: Request) -> Result<Response> {
        let msg: GateRequest = req.json().await?;
        match msg {
            GateRequest::Authorize { kind, hash, ip, need } => {
                Response::from_json(&self.authorize(kind, &hash, ip, need).await?)
            }
            GateRequest::Revoke { kind, hash } => {
                self.revoke(kind, &hash).await?;
                Response::from_json(&serde_json::json!({"revoked": true}))
            }
            GateRequest::Throttle { action, limit, window_secs } => {
                Response::from_json(&self.throttle(action, limit, window_secs).await?)
            }
        }
    }

    /// End of a UTC day with no newer activity: drop counters and the cached
    /// record (D1 stays the record), keeping only a revocation tombstone.
    async fn alarm(&self) -> Result<Response> {
        let storage = self.state.storage();
        let now = now_ms();
        let counters = storage.get::<Counters>(COUNTERS).await?.unwrap_or_default();
        if !idle(&counters, now / 1000) {
            // Still in use today: look again at the end of it.
            *self.alarm_at.borrow_mut() = 0;
            self.ensure_alarm(now).await?;
            return Response::ok("kept");
        }
        let cred = storage.get::<Credential>(CRED).await?;
        storage.delete_all().await?;
        if let Some(c) = cred.filter(|c| c.revoked) {
            storage.put(CRED, &c).await?;
        }
        *self.live.borrow_mut() = None;
        *self.throttle.borrow_mut() = None;
        *self.alarm_at.borrow_mut() = 0;
        Response::ok("cleared")
    }
}
