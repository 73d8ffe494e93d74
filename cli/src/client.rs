//! Authenticated calls to the API with whichever credential applies:
//! `JESTHA_API_KEY` when set (checked locally by the Worker's own token code
//! before it is ever sent), else the stored login of this API, renewed before
//! it expires and once more if the API answers 401.

use std::time::{SystemTime, UNIX_EPOCH};

use jestha_edge::auth::token::{self, TokenKind};
use serde_json::Value;

use crate::failure::Failure;
use crate::http::{Answer, Body, Http, Method, Request};
use crate::oauth;
use crate::store::{Login, Store};
use crate::upload::Form;

pub fn now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

/// `scheme://host[:port]` of a URL.
pub fn origin_of(url: &str) -> &str {
    let after = url.find("://").map_or(0, |i| i + 3);
    url[after..].find('/').map_or(url, |i| &url[..after + i])
}

pub enum Credential {
    ApiKey(String),
    Login(Login),
}

impl Credential {
    /// `JESTHA_API_KEY`, refused here when it is not a well-formed key
    /// (prefix, length, alphabet, checksum): a typo never reaches the network.
    pub fn api_key(value: &str) -> Result<Credential, Failure> {
        let key = value.trim();
        if token::well_formed(TokenKind::ApiKey, key) {
            return Ok(Credential::ApiKey(key.to_string()));
        }
        let why = if !key.starts_with(token::KEY_PREFIX) {
            format!("it does not start with {}", token::KEY_PREFIX)
        } else {
            "its length, characters or checksum are wrong (a character mistyped or missing?)".to_string()
        };
        Err(Failure::new(
            "bad_api_key",
            format!(
                "JESTHA_API_KEY is not a Jestha API key: {why}. It was not sent. Keys look like {}<36 letters and digits>",
                token::KEY_PREFIX
            ),
        ))
    }

    /// How `whoami` names it: a key masked, a login by its API.
    pub fn describe(&self, api: &str) -> String {
        match self {
            Credential::ApiKey(k) => format!("API key {} (JESTHA_API_KEY)", token::mask(k)),
            Credential::Login(l) => {
                format!("login to {api}{}", l.scope.as_deref().map_or(String::new(), |s| format!(" (scopes: {s})")))
            }
        }
    }
}

fn not_logged_in(api: &str) -> Failure {
    Failure::new("not_logged_in", format!("not logged in to {api}: run `jestha login`, or set JESTHA_API_KEY"))
}

pub struct Client {
    pub http: Http,
    pub api: String,
    pub credential: Credential,
    store: Store,
}

impl Client {
    /// A client for `api` with `JESTHA_API_KEY` (`api_key`) or the stored login.
    pub fn connect(http: Http, api: String, api_key: Option<&str>, store: Store) -> Result<Client, Failure> {
        let credential = match api_key.filter(|k| !k.trim().is_empty()) {
            Some(k) => Credential::api_key(k)?,
            None => Credential::Login(store.load()?.logins.get(&api).cloned().ok_or_else(|| not_logged_in(&api))?),
        };
        Ok(Client { http, api, credential, store })
    }

    pub fn get(&mut self, path: &str) -> Result<Value, Failure> {
        self.call(Method::Get, path, Body::None, None, &[])?.json()
    }

    /// The whole answer of a GET, headers included (for the limit standing).
    pub fn get_answer(&mut self, path: &str) -> Result<Answer, Failure> {
        let a = self.call(Method::Get, path, Body::None, None, &[])?;
        a.json()?;
        Ok(a)
    }

    pub fn post(&mut self, path: &str, body: &Value, idempotency_key: Option<&str>) -> Result<Value, Failure> {
        self.call(Method::Post, path, Body::Json(body), idempotency_key, &[])?.json()
    }

    pub fn upload(&mut self, path: &str, form: &Form, idempotency_key: Option<&str>) -> Result<Value, Failure> {
        self.call(Method::Post, path, Body::Upload(form), idempotency_key, &[])?.json()
    }

    /// A tus exchange: the whole answer, whatever its status, for its headers.
    pub fn tus(&mut self, method: Method, path: &str, headers: &[(&str, String)], body: Body) -> Result<Answer, Failure> {
        self.call(method, path, body, None, headers)
    }

    fn call(
        &mut self,
        method: Method,
        path: &str,
        body: Body,
        idempotency_key: Option<&str>,
        headers: &[(&str, String)],
    ) -> Result<Answer, Failure> {
        let url = format!("{}{}", self.api, path);
        if matches!(&self.credential, Credential::Login(l) if l.expiring(now())) {
            self.renew(false)?;
        }
        let req = Request { method, url: &url, bearer: None, idempotency_key, headers, body };
        let answer = self.send(req)?;
        if answer.status == 401 && matches!(self.credential, Credential::Login(_)) {
            // Expired by the server's clock, or renewed by another process meanwhile.
            self.renew(true)?;
            return self.send(req);
        }
        Ok(answer)
    }

    /// Sends `req` with this client's credential.
    fn send(&self, req: Request) -> Result<Answer, Failure> {
        let bearer = match &self.credential {
            Credential::ApiKey(k) => k.as_str(),
            Credential::Login(l) => l.access_token.as_str(),
        };
        self.http.send(&Request { bearer: Some(bearer), ..req })
    }

    /// Where this client keeps its files (the journal of uploads begun).
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// Renews the login from its refresh token, under the store's lock: if
    /// another `jestha` renewed it meanwhile, its fresh token is used as it is
    /// (refreshing again would present a rotated-out refresh token, and the
    /// server would revoke the grant). A refused refresh forgets the login.
    fn renew(&mut self, after_401: bool) -> Result<(), Failure> {
        let Credential::Login(used) = &self.credential else {
            return Ok(());
        };
        let used = used.access_token.clone();
        let (api, http, now) = (self.api.clone(), &self.http, now());
        let fresh = self.store.update(|creds| {
            let stored = creds.logins.get(&api).cloned().ok_or_else(|| not_logged_in(&api))?;
            let renewed_elsewhere = stored.access_token != used;
            if !stored.expiring(now) && (renewed_elsewhere || !after_401) {
                return Ok(stored);
            }
            match oauth::refresh(http, &stored) {
                Ok(t) => {
                    let revocation = stored.revocation_endpoint.clone().unwrap_or_else(|| oauth::Endpoints::at(&api).revocation);
                    let login = t.into_login(Some(&stored), &stored.client_id, (&stored.token_endpoint, &revocation), now);
                    creds.logins.insert(api.clone(), login.clone());
                    Ok(login)
                }
                Err(f) if matches!(f.status, Some(400 | 401)) => {
                    creds.logins.remove(&api);
                    Err(Failure {
                        code: "invalid_grant".into(),
                        message: format!("the login to {api} has expired or was revoked ({}): run `jestha login`", f.message),
                        status: f.status,
                    })
                }
                Err(f) => Err(f),
            }
        })?;
        self.credential = Credential::Login(fresh);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fake::{Fake, Reply};
    use crate::oauth::tests::quiet_http;
    use crate::store::tests::{login, TempDir};

    fn key() -> String {
        token::generate(TokenKind::ApiKey, |b| b.iter_mut().enumerate().for_each(|(i, x)| *x = (i * 7) as u8))
    }

    #[test]
    fn a_well_formed_key_is_accepted_and_described_masked() {
        let k = key();
        let c = Credential::api_key(&format!(" {k}\n")).unwrap();
        let d = c.describe("http://127.0.0.1:8787");
        assert!(d.starts_with("API key jes_live_") && d.contains("****"), "{d}");
        assert!(!d.contains(&k), "never the whole key");
    }

    #[test]
    fn a_mistyped_key_is_refused_before_it_is_sent() {
        let k = key();
        let mut typo = k.clone().into_bytes();
        let last = typo.len() - 1;
        typo[last] = if typo[last] == b'a' { b'b' } else { b'a' };
        let f = Credential::api_key(std::str::from_utf8(&typo).unwrap()).err().unwrap();
        assert_eq!(f.code, "bad_api_key");
        assert!(f.message.contains("checksum") && f.message.contains("not sent"), "{}", f.message);
        let f = Credential::api_key("jes_sess_abc").err().unwrap();
        assert!(f.message.contains("does not start with jes_live_"), "{}", f.message);
        assert_eq!(f.exit(), crate::failure::Exit::Usage);
    }

    #[test]
    fn no_key_and_no_login_is_not_logged_in() {
        let t = TempDir::new("nologin");
        let f = Client::connect(quiet_http(), "http://127.0.0.1:1".into(), None, Store::new(t.0.clone())).err().unwrap();
        assert_eq!(f.code, "not_logged_in");
        assert!(f.message.contains("jestha login") && f.message.contains("JESTHA_API_KEY"));
        let f = Client::connect(quiet_http(), "http://127.0.0.1:1".into(), Some("  "), Store::new(t.0.clone())).err().unwrap();
        assert_eq!(f.code, "not_logged_in", "an empty JESTHA_API_KEY counts as unset");
    }

    fn logged_in(fake: &Fake, dir: &TempDir, expires_at: u64) -> Client {
        let store = Store::new(dir.0.clone());
        let mut l = login("jes_oat_old");
        l.expires_at = expires_at;
        l.token_endpoint = format!("{}/oauth/token", fake.url());
        store
            .update(|c| {
                c.logins.insert(fake.url(), l);
                Ok(())
            })
            .unwrap();
        Client::connect(quiet_http(), fake.url(), None, Store::new(dir.0.clone())).unwrap()
    }

    #[test]
    fn an_expired_login_is_renewed_before_the_call_and_the_rotation_is_stored() {
        let fake = Fake::start(vec![
            Reply::json(200, r#"{"access_token":"jes_oat_new","refresh_token":"jes_ort_new","expires_in":900}"#),
            Reply::json(200, r#"{"id":"u1"}"#),
        ]);
        let dir = TempDir::new("renew");
        let mut c = logged_in(&fake, &dir, 0);
        assert_eq!(c.get("/api/auth/me").unwrap()["id"], "u1");
        let seen = fake.requests();
        assert_eq!(seen[0].line, "POST /oauth/token");
        assert_eq!(seen[1].header("authorization"), Some("Bearer jes_oat_new"));
        let stored = &Store::new(dir.0.clone()).load().unwrap().logins[&fake.url()];
        assert_eq!((stored.access_token.as_str(), stored.refresh_token.as_deref()), ("jes_oat_new", Some("jes_ort_new")));
        assert!(stored.expires_at >= now() + 899);
    }

    #[test]
    fn a_401_renews_once_and_retries() {
        let fake = Fake::start(vec![
            Reply::json(401, r#"{"error":{"code":"invalid_token","message":"expired"}}"#),
            Reply::json(200, r#"{"access_token":"jes_oat_new","refresh_token":"jes_ort_new","expires_in":900}"#),
            Reply::json(200, r#"{"id":"u1"}"#),
        ]);
        let dir = TempDir::new("retry401");
        let mut c = logged_in(&fake, &dir, now() + 3600);
        assert_eq!(c.get("/api/auth/me").unwrap()["id"], "u1");
        let lines: Vec<String> = fake.requests().into_iter().map(|s| s.line).collect();
        assert_eq!(lines, ["GET /api/auth/me", "POST /oauth/token", "GET /api/auth/me"]);
    }

    #[test]
    fn a_refused_refresh_forgets_the_login_and_says_to_log_in_again() {
        let fake = Fake::start(vec![Reply::json(400, r#"{"error":"invalid_grant","error_description":"grant revoked"}"#)]);
        let dir = TempDir::new("refused");
        let mut c = logged_in(&fake, &dir, 0);
        let f = c.get("/api/auth/me").err().unwrap();
        assert_eq!(f.code, "invalid_grant");
        assert!(f.message.contains("grant revoked") && f.message.contains("jestha login"), "{}", f.message);
        assert_eq!(f.exit(), crate::failure::Exit::Auth);
        assert!(Store::new(dir.0.clone()).load().unwrap().logins.is_empty());
    }

    #[test]
    fn a_login_renewed_by_another_process_is_used_without_a_second_refresh() {
        let fake = Fake::start(vec![
            Reply::json(401, r#"{"error":{"code":"invalid_token","message":"expired"}}"#),
            Reply::json(200, r#"{"id":"u1"}"#),
        ]);
        let dir = TempDir::new("elsewhere");
        let mut c = logged_in(&fake, &dir, now() + 3600);
        // Another process renews while this one's request is on its way.
        Store::new(dir.0.clone())
            .update(|creds| {
                let l = creds.logins.get_mut(&fake.url()).unwrap();
                l.access_token = "jes_oat_other".into();
                Ok(())
            })
            .unwrap();
        assert_eq!(c.get("/api/auth/me").unwrap()["id"], "u1");
        let seen = fake.requests();
        assert_eq!(seen.len(), 2, "no refresh: {:?}", seen.iter().map(|s| &s.line).collect::<Vec<_>>());
        assert_eq!(seen[1].header("authorization"), Some("Bearer jes_oat_other"));
    }

    #[test]
    fn a_429_is_waited_out_with_the_same_idempotency_key() {
        let fake = Fake::start(vec![
            Reply::json(429, r#"{"error":{"code":"rate_limited","message":"slow down"},"retryAfter":3}"#)
                .header("retry-after", "3"),
            Reply::json(429, r#"{"error":{"code":"rate_limited","message":"slow down"},"retryAfter":1}"#)
                .header("retry-after", "1"),
            Reply::json(201, r#"{"id":"p1"}"#),
        ]);
        let waits = std::rc::Rc::new(std::cell::RefCell::new(vec![]));
        let w = waits.clone();
        let http = Http::with_sleep(
            crate::ui::Ui { json: false, colour: false, interactive: false },
            6,
            Box::new(move |d| w.borrow_mut().push(d.as_secs())),
        );
        let t = TempDir::new("429");
        let mut c = Client::connect(http, fake.url(), Some(&key()), Store::new(t.0.clone())).unwrap();
        let made = c.post("/api/posts", &serde_json::json!({"content": "hi"}), Some("idem-1")).unwrap();
        assert_eq!(made["id"], "p1");
        assert_eq!(*waits.borrow(), [3, 2], "Retry-After 3 beats the 1 s step; then the 2 s step beats Retry-After 1");
        let keys: Vec<_> = fake.requests().iter().map(|s| s.header("idempotency-key").unwrap().to_string()).collect();
        assert_eq!(keys, ["idem-1", "idem-1", "idem-1"]);
    }

    #[test]
    fn a_spent_quota_is_reported_at_once() {
        let fake = Fake::start(vec![Reply::json(
            429,
            r#"{"error":{"code":"quota_exceeded","message":"Daily quota exceeded"},"retryAfter":30000}"#,
        )
        .header("retry-after", "30000")]);
        let t = TempDir::new("quota");
        let mut c = Client::connect(quiet_http(), fake.url(), Some(&key()), Store::new(t.0.clone())).unwrap();
        let f = c.get("/api/auth/me").err().unwrap();
        assert_eq!((f.code.as_str(), f.status), ("quota_exceeded", Some(429)));
        assert_eq!(f.exit(), crate::failure::Exit::RateLimited);
        assert_eq!(fake.requests().len(), 1);
    }
}
