//! Signing in without a pasted secret: the OAuth device authorization grant
//! (RFC 8628) against the API's own authorization server, the refresh that
//! renews a login (refresh tokens rotate), and revocation (RFC 7009).
//!
//! The endpoints come from the server's RFC 8414 metadata when it serves them,
//! else the contract's paths at the API's origin. The client registers itself
//! once per API (RFC 7591, a public client of the device and refresh grants)
//! unless `JESTHA_CLIENT_ID` names one.

use std::time::Duration;

use serde::Deserialize;
use serde_json::{json, Value};

use crate::api_url;
use crate::failure::Failure;
use crate::http::{Body, Http, Request};
use crate::store::Login;

pub const DEVICE_GRANT: &str = "urn:ietf:params:oauth:grant-type:device_code";
/// What the consent page and the `via` label of what the CLI creates show.
pub const CLIENT_NAME: &str = "Jestha CLI";
/// What a login asks for: everything the commands do. The person may untick any.
pub const DEFAULT_SCOPES: &str = "write:jes write:jesclip write:comment read:comment";
/// RFC 8628 §3.5: the polling interval when the server names none, and what `slow_down` adds.
const DEFAULT_INTERVAL: u64 = 5;
const SLOW_DOWN_STEP: u64 = 5;
/// When a token answer gives no lifetime: renewed after this, or at its first 401.
const ASSUMED_LIFETIME: u64 = 3600;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoints {
    pub device: String,
    pub token: String,
    pub revocation: String,
    pub registration: String,
}

impl Endpoints {
    /// The contract's paths at the API's origin.
    pub fn at(api: &str) -> Endpoints {
        Endpoints {
            device: format!("{api}/oauth/device"),
            token: format!("{api}/oauth/token"),
            revocation: format!("{api}/oauth/revoke"),
            registration: format!("{api}/oauth/register"),
        }
    }

    /// From the authorization server's metadata, each missing field from the
    /// contract's paths. An endpoint that would carry a credential in clear to
    /// another machine is refused.
    pub fn from_metadata(api: &str, meta: &Value) -> Result<Endpoints, Failure> {
        let defaults = Endpoints::at(api);
        let pick = |field: &str, default: String| -> Result<String, Failure> {
            match meta.get(field).and_then(Value::as_str) {
                None => Ok(default),
                Some(url) if api_url::may_carry_credentials(url) => Ok(url.to_string()),
                Some(url) => Err(Failure::new(
                    "bad_response",
                    format!("the authorization server names {url:?} as its {field}, which is not https"),
                )),
            }
        };
        Ok(Endpoints {
            device: pick("device_authorization_endpoint", defaults.device)?,
            token: pick("token_endpoint", defaults.token)?,
            revocation: pick("revocation_endpoint", defaults.revocation)?,
            registration: pick("registration_endpoint", defaults.registration)?,
        })
    }
}

/// The endpoints of the API's authorization server.
pub fn discover(http: &Http, api: &str) -> Result<Endpoints, Failure> {
    let url = format!("{api}/.well-known/oauth-authorization-server");
    let answer = http.send(&Request::get(&url))?;
    match answer.json() {
        Ok(meta) if meta.is_object() => Endpoints::from_metadata(api, &meta),
        _ => Ok(Endpoints::at(api)),
    }
}

/// Registers this client (RFC 7591): its client id.
pub fn register(http: &Http, endpoints: &Endpoints) -> Result<String, Failure> {
    let body = json!({
        "client_name": CLIENT_NAME,
        "grant_types": [DEVICE_GRANT, "refresh_token"],
        "response_types": [],
        "token_endpoint_auth_method": "none",
        "software_id": "jestha-cli",
        "software_version": env!("CARGO_PKG_VERSION"),
    });
    let answer = http.send(&Request::post(&endpoints.registration, Body::Json(&body)))?;
    let v = answer.json()?;
    v.get("client_id")
        .and_then(Value::as_str)
        .map(str::to_string)
        .ok_or_else(|| Failure::new("bad_response", "the client registration answered without a client_id"))
}

/// The answer of the device authorization endpoint (RFC 8628 §3.2).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct DeviceStart {
    pub device_code: String,
    pub user_code: String,
    pub verification_uri: String,
    #[serde(default)]
    pub verification_uri_complete: Option<String>,
    pub expires_in: u64,
    #[serde(default)]
    pub interval: Option<u64>,
}

pub fn start(http: &Http, endpoints: &Endpoints, client_id: &str, scope: &str) -> Result<DeviceStart, Failure> {
    let form = [("client_id", client_id), ("scope", scope)];
    let answer = http.send(&Request::post(&endpoints.device, Body::Form(&form)))?;
    if answer.status == 404 {
        return Err(Failure {
            code: "not_found".into(),
            message: format!(
                "{} has no device login ({} answered 404)",
                crate::client::origin_of(&endpoints.device),
                endpoints.device
            ),
            status: Some(404),
        });
    }
    serde_json::from_value(answer.json()?).map_err(|e| Failure::new("bad_response", format!("device authorization: {e}")))
}

/// A token endpoint's success (RFC 6749 §5.1).
#[derive(Clone, PartialEq, Eq, Deserialize)]
pub struct Tokens {
    pub access_token: String,
    #[serde(default)]
    pub expires_in: Option<u64>,
    #[serde(default)]
    pub refresh_token: Option<String>,
    #[serde(default)]
    pub scope: Option<String>,
}

impl Tokens {
    /// The login these tokens make, or renew (a refresh may omit what stays the same).
    pub fn into_login(self, previous: Option<&Login>, client_id: &str, endpoints: (&str, &str), now: u64) -> Login {
        Login {
            client_id: client_id.to_string(),
            access_token: self.access_token,
            refresh_token: self.refresh_token.or_else(|| previous.and_then(|p| p.refresh_token.clone())),
            expires_at: now + self.expires_in.unwrap_or(ASSUMED_LIFETIME),
            scope: self.scope.or_else(|| previous.and_then(|p| p.scope.clone())),
            token_endpoint: endpoints.0.to_string(),
            revocation_endpoint: Some(endpoints.1.to_string()),
        }
    }
}

fn tokens(answer: &crate::http::Answer) -> Result<Tokens, Failure> {
    serde_json::from_value(answer.json()?).map_err(|e| Failure::new("bad_response", format!("token answer: {e}")))
}

/// One poll of the token endpoint.
pub enum Poll {
    Pending,
    SlowDown,
    Granted(Tokens),
}

pub fn poll(http: &Http, endpoints: &Endpoints, client_id: &str, device_code: &str) -> Result<Poll, Failure> {
    let form = [("grant_type", DEVICE_GRANT), ("device_code", device_code), ("client_id", client_id)];
    let answer = http.send(&Request::post(&endpoints.token, Body::Form(&form)))?;
    if answer.ok() {
        return Ok(Poll::Granted(tokens(&answer)?));
    }
    let f = answer.failure();
    match f.code.as_str() {
        "authorization_pending" => Ok(Poll::Pending),
        "slow_down" => Ok(Poll::SlowDown),
        "access_denied" => Err(Failure { message: "the sign-in was denied in the browser".into(), ..f }),
        "expired_token" => Err(Failure { message: expired().message, ..f }),
        _ => Err(f),
    }
}

fn expired() -> Failure {
    Failure::new("expired_token", "the code expired before it was approved: run `jestha login` again")
}

/// Polls until the person approves or denies, or the code expires (RFC 8628
/// §3.5): `interval` seconds between polls (5 when the server names none),
/// 5 more after each `slow_down`, never past `expires_in`.
pub fn await_approval(
    start: &DeviceStart,
    mut poll: impl FnMut() -> Result<Poll, Failure>,
    mut sleep: impl FnMut(Duration),
) -> Result<Tokens, Failure> {
    let mut interval = start.interval.unwrap_or(DEFAULT_INTERVAL).max(1);
    let mut waited = 0;
    loop {
        if waited >= start.expires_in {
            return Err(expired());
        }
        sleep(Duration::from_secs(interval));
        waited += interval;
        match poll()? {
            Poll::Pending => {}
            Poll::SlowDown => interval += SLOW_DOWN_STEP,
            Poll::Granted(t) => return Ok(t),
        }
    }
}

/// New tokens for a login from its refresh token (which the server rotates).
pub fn refresh(http: &Http, login: &Login) -> Result<Tokens, Failure> {
    let Some(refresh_token) = login.refresh_token.as_deref() else {
        return Err(Failure::new("invalid_grant", "the login's access token expired and it has no refresh token"));
    };
    let form = [("grant_type", "refresh_token"), ("refresh_token", refresh_token), ("client_id", login.client_id.as_str())];
    let answer = http.send(&Request::post(&login.token_endpoint, Body::Form(&form)))?;
    tokens(&answer)
}

/// Revokes one token (RFC 7009; revoking the refresh token ends the grant).
pub fn revoke(http: &Http, endpoint: &str, client_id: &str, token: &str, hint: &str) -> Result<(), Failure> {
    let form = [("token", token), ("token_type_hint", hint), ("client_id", client_id)];
    let answer = http.send(&Request::post(endpoint, Body::Form(&form)))?;
    answer.json().map(|_| ())
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::fake::{Fake, Reply};
    use crate::ui::Ui;
    use std::cell::RefCell;
    use std::rc::Rc;

    pub fn quiet_http() -> Http {
        Http::with_sleep(Ui { json: false, colour: false, interactive: false }, 6, Box::new(|_| {}))
    }

    fn pending() -> Reply {
        Reply::json(400, r#"{"error":"authorization_pending"}"#)
    }

    fn granted() -> Reply {
        Reply::json(
            200,
            r#"{"access_token":"jes_oat_A","token_type":"Bearer","expires_in":900,"refresh_token":"jes_ort_R","scope":"write:jes read:comment"}"#,
        )
    }

    fn device_start(interval: Option<u64>, expires_in: u64) -> String {
        let mut v = json!({"device_code":"DC","user_code":"WDJB-MJHT","verification_uri":"http://127.0.0.1/device",
            "verification_uri_complete":"http://127.0.0.1/device?user_code=WDJB-MJHT","expires_in":expires_in});
        if let Some(i) = interval {
            v["interval"] = json!(i);
        }
        v.to_string()
    }

    /// Runs the whole login against `fake`: discovery, registration, device start, polls.
    fn login(fake: &Fake) -> (Result<Tokens, Failure>, Vec<u64>) {
        let http = quiet_http();
        let api = fake.url();
        let slept = Rc::new(RefCell::new(vec![]));
        let result = (|| {
            let ep = discover(&http, &api)?;
            let client_id = register(&http, &ep)?;
            let start = start(&http, &ep, &client_id, DEFAULT_SCOPES)?;
            let s = slept.clone();
            await_approval(&start, || poll(&http, &ep, &client_id, &start.device_code), move |d| s.borrow_mut().push(d.as_secs()))
        })();
        let slept = slept.borrow().clone();
        (result, slept)
    }

    #[test]
    fn pending_then_slow_down_then_granted_polls_at_the_interval_plus_five() {
        let fake = Fake::start(vec![
            Reply::json(404, r#"{"error":{"code":"not_found","message":"no"}}"#),
            Reply::json(201, r#"{"client_id":"cli-123","client_name":"Jestha CLI"}"#),
            Reply::json(200, &device_start(Some(2), 600)),
            pending(),
            Reply::json(400, r#"{"error":"slow_down"}"#),
            pending(),
            granted(),
        ]);
        let (tokens, slept) = login(&fake);
        let t = tokens.unwrap_or_else(|f| panic!("{f}"));
        assert_eq!((t.access_token.as_str(), t.refresh_token.as_deref()), ("jes_oat_A", Some("jes_ort_R")));
        assert_eq!(slept, [2, 2, 7, 7], "interval 2, then 7 after slow_down");
        let seen = fake.requests();
        assert_eq!(seen[0].line, "GET /.well-known/oauth-authorization-server");
        assert_eq!(seen[1].line, "POST /oauth/register");
        let reg: Value = serde_json::from_slice(&seen[1].body).unwrap();
        assert_eq!(reg["client_name"], "Jestha CLI");
        assert_eq!(reg["grant_types"], json!([DEVICE_GRANT, "refresh_token"]));
        assert_eq!(reg["token_endpoint_auth_method"], "none");
        assert_eq!(seen[2].line, "POST /oauth/device");
        assert_eq!(seen[2].header("content-type").unwrap(), "application/x-www-form-urlencoded");
        assert_eq!(seen[2].form(), [("client_id", "cli-123"), ("scope", DEFAULT_SCOPES)]);
        for poll in &seen[3..] {
            assert_eq!(poll.line, "POST /oauth/token");
            assert_eq!(poll.form(), [("grant_type", DEVICE_GRANT), ("device_code", "DC"), ("client_id", "cli-123")]);
        }
        assert_eq!(seen.len(), 7);
    }

    #[test]
    fn without_an_interval_polls_are_five_seconds_apart() {
        let fake = Fake::start(vec![
            Reply::json(404, "{}"),
            Reply::json(201, r#"{"client_id":"c"}"#),
            Reply::json(200, &device_start(None, 600)),
            pending(),
            granted(),
        ]);
        let (tokens, slept) = login(&fake);
        assert!(tokens.is_ok());
        assert_eq!(slept, [5, 5]);
    }

    #[test]
    fn a_denial_in_the_browser_fails_as_access_denied() {
        let fake = Fake::start(vec![
            Reply::json(404, "{}"),
            Reply::json(201, r#"{"client_id":"c"}"#),
            Reply::json(200, &device_start(Some(1), 600)),
            pending(),
            Reply::json(400, r#"{"error":"access_denied","error_description":"The user denied the request"}"#),
        ]);
        let f = login(&fake).0.err().unwrap();
        assert_eq!((f.code.as_str(), f.status), ("access_denied", Some(400)));
        assert_eq!(f.exit(), crate::failure::Exit::Auth);
        assert!(f.message.contains("denied"), "{}", f.message);
    }

    #[test]
    fn an_expired_code_fails_as_expired_token_whoever_notices_first() {
        let fake = Fake::start(vec![
            Reply::json(404, "{}"),
            Reply::json(201, r#"{"client_id":"c"}"#),
            Reply::json(200, &device_start(Some(1), 600)),
            Reply::json(400, r#"{"error":"expired_token"}"#),
        ]);
        let f = login(&fake).0.err().unwrap();
        assert_eq!(f.code, "expired_token");
        assert!(f.message.contains("jestha login"), "{}", f.message);

        // The server still says pending, but the code's lifetime has passed: stop asking.
        let fake = Fake::start(vec![
            Reply::json(404, "{}"),
            Reply::json(201, r#"{"client_id":"c"}"#),
            Reply::json(200, &device_start(Some(5), 12)),
            pending(),
            pending(),
            pending(),
        ]);
        let (result, slept) = login(&fake);
        assert_eq!(result.err().unwrap().code, "expired_token");
        assert_eq!(slept, [5, 5, 5], "three polls fit in 12 s, a fourth would not");
    }

    #[test]
    fn the_metadata_names_the_endpoints_and_a_cleartext_one_is_refused() {
        let api = "https://api.example";
        let meta = json!({"issuer": api, "token_endpoint": "https://auth.example/t", "device_authorization_endpoint": "https://auth.example/d"});
        let ep = Endpoints::from_metadata(api, &meta).unwrap();
        assert_eq!(ep.token, "https://auth.example/t");
        assert_eq!(ep.device, "https://auth.example/d");
        assert_eq!(ep.revocation, "https://api.example/oauth/revoke", "missing fields keep the contract's path");
        let bad = json!({"token_endpoint": "http://auth.example/t"});
        assert_eq!(Endpoints::from_metadata(api, &bad).unwrap_err().code, "bad_response");
    }

    #[test]
    fn an_api_without_the_device_grant_says_so() {
        let fake = Fake::start(vec![Reply::json(404, "{}"), Reply::json(201, r#"{"client_id":"c"}"#), Reply::json(404, "{}")]);
        let f = login(&fake).0.err().unwrap();
        assert_eq!(f.code, "not_found");
        assert!(f.message.contains("no device login"), "{}", f.message);
    }

    #[test]
    fn a_refresh_sends_the_refresh_token_and_keeps_what_the_answer_omits() {
        let fake = Fake::start(vec![Reply::json(200, r#"{"access_token":"jes_oat_B","expires_in":60}"#)]);
        let mut login = crate::store::tests::login("jes_oat_A");
        login.token_endpoint = format!("{}/oauth/token", fake.url());
        let t = refresh(&quiet_http(), &login).unwrap();
        let seen = fake.requests();
        assert_eq!(seen[0].form(), [("grant_type", "refresh_token"), ("refresh_token", "jes_ort_r"), ("client_id", "client")]);
        let renewed = t.into_login(Some(&login), "client", ("t", "r"), 5_000);
        assert_eq!(renewed.access_token, "jes_oat_B");
        assert_eq!(renewed.refresh_token.as_deref(), Some("jes_ort_r"));
        assert_eq!(renewed.scope.as_deref(), Some("write:jes"));
        assert_eq!(renewed.expires_at, 5_060);
    }

    #[test]
    fn a_refused_refresh_is_invalid_grant() {
        let fake = Fake::start(vec![Reply::json(400, r#"{"error":"invalid_grant","error_description":"refresh token reused"}"#)]);
        let mut login = crate::store::tests::login("jes_oat_A");
        login.token_endpoint = format!("{}/oauth/token", fake.url());
        let f = refresh(&quiet_http(), &login).err().unwrap();
        assert_eq!((f.code.as_str(), f.message.as_str()), ("invalid_grant", "refresh token reused"));
    }

    #[test]
    fn revoke_posts_the_token_with_its_hint() {
        let fake = Fake::start(vec![Reply::json(200, "")]);
        revoke(&quiet_http(), &format!("{}/oauth/revoke", fake.url()), "c", "jes_ort_R", "refresh_token").unwrap();
        assert_eq!(fake.requests()[0].form(), [("token", "jes_ort_R"), ("token_type_hint", "refresh_token"), ("client_id", "c")]);
    }
}
