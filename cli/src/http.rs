//! One HTTP exchange with the API or its authorization server, and the one
//! place that answers `429`: it waits (`retry::wait`), says so on stderr, and
//! sends the same request again — the same `Idempotency-Key`, the upload
//! reopened from the file (a tus chunk too: a `429` is answered before any of
//! its bytes are taken, so its offset still holds).
//!
//! Error bodies come in two shapes: the API's envelope
//! `{"error":{"code","message"}}` and OAuth's `{"error","error_description"}`
//! (RFC 6749 §5.2); both become a `Failure` with the code and message.

use std::time::Duration;

use serde_json::Value;
use ureq::{Agent, RequestBuilder, SendBody};

use crate::failure::Failure;
use crate::retry;
use crate::tus::Chunk;
use crate::ui::Ui;
use crate::upload::Form;

pub const USER_AGENT: &str = concat!("jestha/", env!("CARGO_PKG_VERSION"));

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    Get,
    Post,
    /// tus: where an upload stands.
    Head,
    /// tus: a chunk of an upload.
    Patch,
}

#[derive(Clone, Copy)]
pub enum Body<'a> {
    None,
    Json(&'a Value),
    /// `application/x-www-form-urlencoded`, as OAuth's endpoints take.
    Form(&'a [(&'a str, &'a str)]),
    Upload(&'a Form),
    /// A tus PATCH's bytes, read from the file afresh at every attempt.
    Chunk(&'a Chunk<'a>),
}

#[derive(Clone, Copy)]
pub struct Request<'a> {
    pub method: Method,
    pub url: &'a str,
    pub bearer: Option<&'a str>,
    pub idempotency_key: Option<&'a str>,
    /// Headers of the protocol spoken (tus's), beside those every request has.
    pub headers: &'a [(&'a str, String)],
    pub body: Body<'a>,
}

impl<'a> Request<'a> {
    pub fn get(url: &'a str) -> Request<'a> {
        Request { method: Method::Get, url, bearer: None, idempotency_key: None, headers: &[], body: Body::None }
    }

    pub fn post(url: &'a str, body: Body<'a>) -> Request<'a> {
        Request { method: Method::Post, url, bearer: None, idempotency_key: None, headers: &[], body }
    }
}

/// What the server answered, whatever the status.
#[derive(Debug, Clone)]
pub struct Answer {
    pub status: u16,
    pub body: Vec<u8>,
    pub retry_after: Option<u64>,
    /// The IETF `RateLimit` and `RateLimit-Policy` fields, when present.
    pub ratelimit: Option<String>,
    pub ratelimit_policy: Option<String>,
    /// Every response header, names in lower case (tus answers in headers).
    pub headers: Vec<(String, String)>,
}

impl Answer {
    /// A canned answer for the native tests.
    #[cfg(test)]
    pub(crate) fn canned(status: u16, body: &str, headers: &[(&str, &str)]) -> Answer {
        Answer {
            status,
            body: body.as_bytes().to_vec(),
            retry_after: None,
            ratelimit: None,
            ratelimit_policy: None,
            headers: headers.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
        }
    }

    pub fn ok(&self) -> bool {
        (200..300).contains(&self.status)
    }

    /// A response header's value, by its name in any case.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }

    /// The body as JSON (`null` when empty), or the failure it reports.
    pub fn json(&self) -> Result<Value, Failure> {
        if !self.ok() {
            return Err(self.failure());
        }
        if self.body.is_empty() {
            return Ok(Value::Null);
        }
        serde_json::from_slice(&self.body).map_err(|_| Failure {
            code: "bad_response".into(),
            message: format!("the server answered {} with a body that is not JSON: {}", self.status, snippet(&self.body)),
            status: Some(self.status),
        })
    }

    /// The error this answer carries, in either shape.
    pub fn failure(&self) -> Failure {
        let (code, message) = error_of(&self.body).unwrap_or_else(|| {
            let text = snippet(&self.body);
            (
                format!("http_{}", self.status),
                if text.is_empty() { format!("the server answered HTTP {}", self.status) } else { text },
            )
        });
        Failure { code, message, status: Some(self.status) }
    }
}

/// `(code, message)` from the API's envelope or an OAuth error body.
pub fn error_of(body: &[u8]) -> Option<(String, String)> {
    let v: Value = serde_json::from_slice(body).ok()?;
    let e = v.get("error")?;
    if let Some(code) = e.get("code").and_then(Value::as_str) {
        let message = e.get("message").and_then(Value::as_str).unwrap_or_default();
        return Some((code.to_string(), message.to_string()));
    }
    let code = e.as_str()?;
    let message = v.get("error_description").and_then(Value::as_str).unwrap_or(code);
    Some((code.to_string(), message.to_string()))
}

fn snippet(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    let text = text.trim();
    match text.char_indices().nth(200) {
        Some((i, _)) => format!("{}…", &text[..i]),
        None => text.to_string(),
    }
}

pub type Sleep = Box<dyn Fn(Duration)>;

pub struct Http {
    agent: Agent,
    pub ui: Ui,
    pub max_retries: u32,
    sleep: Sleep,
}

impl Http {
    pub fn new(ui: Ui, max_retries: u32) -> Http {
        Http::with_sleep(ui, max_retries, Box::new(std::thread::sleep))
    }

    /// `sleep` is how waiting is done: tests pass one that records and returns.
    pub fn with_sleep(ui: Ui, max_retries: u32, sleep: Sleep) -> Http {
        let agent: Agent = Agent::config_builder()
            .http_status_as_error(false)
            .user_agent(USER_AGENT)
            .timeout_connect(Some(Duration::from_secs(15)))
            // An upload's answer comes after the server has stored the file.
            .timeout_recv_response(Some(Duration::from_secs(300)))
            .max_redirects(0)
            // A pooled connection idle for seconds may already be closed by
            // the server (wrangler dev closes them within the device grant's
            // 5 s poll interval), and a POST is never resent on a new one:
            // reuse only a connection that was just used.
            .max_idle_age(Duration::from_secs(1))
            .build()
            .into();
        Http { agent, ui, max_retries, sleep }
    }

    /// Sends `req`, waiting out `429 rate_limited` answers; returns the last answer.
    pub fn send(&self, req: &Request) -> Result<Answer, Failure> {
        let mut retry = 0;
        loop {
            let answer = self.once(req)?;
            if answer.status != 429 {
                return Ok(answer);
            }
            let f = answer.failure();
            let Some(wait) = retry::wait(&f.code, retry, self.max_retries, answer.retry_after) else {
                return Ok(answer);
            };
            self.ui.note(&format!(
                "{}: {}: waiting {} s before retry {} of {} (Retry-After: {})",
                f.code,
                f.message,
                wait.as_secs(),
                retry + 1,
                self.max_retries,
                answer.retry_after.map_or("none".to_string(), |s| format!("{s} s")),
            ));
            (self.sleep)(wait);
            retry += 1;
        }
    }

    /// Waits as `send` does between retries (tests record instead).
    pub fn pause(&self, wait: Duration) {
        (self.sleep)(wait);
    }

    fn once(&self, req: &Request) -> Result<Answer, Failure> {
        let sent = match (&req.body, req.method) {
            (Body::None, Method::Get) => decorate(self.agent.get(req.url), req).call(),
            (Body::None, Method::Head) => decorate(self.agent.head(req.url), req).call(),
            (Body::None, Method::Post) => decorate(self.agent.post(req.url), req).send_empty(),
            (Body::None, Method::Patch) => decorate(self.agent.patch(req.url), req).send_empty(),
            (Body::Json(v), _) => decorate(self.agent.post(req.url), req).send_json(v),
            (Body::Form(pairs), _) => decorate(self.agent.post(req.url), req).send_form(pairs.iter().copied()),
            (Body::Upload(form), _) => {
                let (len, reader) = form.open().map_err(|e| Failure::new("bad_file", e.to_string()))?;
                let bar = self.ui.progress(len, form.label());
                let reader = bar.wrap_read(reader);
                let r = decorate(self.agent.post(req.url), req)
                    .header("content-type", form.content_type())
                    .header("content-length", len.to_string())
                    .send(SendBody::from_owned_reader(reader));
                bar.finish_and_clear();
                r
            }
            (Body::Chunk(chunk), _) => {
                let reader = chunk.open().map_err(|e| Failure::new("bad_file", e.to_string()))?;
                // The bar is the whole file's: a retried chunk counts from its offset again.
                chunk.bar.set_position(chunk.offset);
                decorate(self.agent.patch(req.url), req)
                    .header("content-type", crate::tus::OFFSET_TYPE)
                    .header("content-length", chunk.len.to_string())
                    .send(SendBody::from_owned_reader(chunk.bar.wrap_read(reader)))
            }
        };
        let mut res = sent.map_err(|e| Failure::new("network", format!("{}: {e}", origin(req.url))))?;
        let header = |name: &str| res.headers().get(name).and_then(|v| v.to_str().ok()).map(str::to_string);
        let retry_after = header("retry-after").and_then(|v| retry::parse_retry_after(&v));
        let ratelimit = header("ratelimit");
        let ratelimit_policy = header("ratelimit-policy");
        let headers = res
            .headers()
            .iter()
            .filter_map(|(k, v)| Some((k.as_str().to_ascii_lowercase(), v.to_str().ok()?.to_string())))
            .collect();
        let status = res.status().as_u16();
        // A HEAD's, a 204's and a 304's answer have no content (RFC 9110), whatever
        // their headers say: a `Content-Encoding: gzip` on one (as the API under
        // wrangler dev sends on tus's 204s and HEADs) is not a gzip stream to decode.
        let body = if req.method == Method::Head || matches!(status, 204 | 304) {
            vec![]
        } else {
            res.body_mut()
                .with_config()
                .limit(16 * 1024 * 1024)
                .read_to_vec()
                .map_err(|e| Failure::new("network", format!("{}: reading the answer: {e}", origin(req.url))))?
        };
        Ok(Answer { status, body, retry_after, ratelimit, ratelimit_policy, headers })
    }
}

fn decorate<B>(mut rb: RequestBuilder<B>, req: &Request) -> RequestBuilder<B> {
    rb = rb.header("accept", "application/json");
    if let Some(t) = req.bearer {
        rb = rb.header("authorization", format!("Bearer {t}"));
    }
    if let Some(k) = req.idempotency_key {
        rb = rb.header("idempotency-key", k);
    }
    for (name, value) in req.headers {
        rb = rb.header(*name, value);
    }
    rb
}

/// `scheme://host[:port]` of a URL, for messages (never a query string).
fn origin(url: &str) -> &str {
    let after_scheme = url.find("://").map_or(0, |i| i + 3);
    match url[after_scheme..].find('/') {
        Some(i) => &url[..after_scheme + i],
        None => url,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answer(status: u16, body: &str) -> Answer {
        Answer::canned(status, body, &[])
    }

    #[test]
    fn the_api_envelope_gives_its_code_and_message() {
        let f = answer(403, r#"{"error":{"code":"insufficient_scope","message":"Token missing scope(s): write:jes"}}"#).failure();
        assert_eq!(
            f,
            Failure { code: "insufficient_scope".into(), message: "Token missing scope(s): write:jes".into(), status: Some(403) }
        );
    }

    #[test]
    fn an_oauth_error_gives_its_error_and_description() {
        let f = answer(400, r#"{"error":"slow_down","error_description":"poll less often"}"#).failure();
        assert_eq!((f.code.as_str(), f.message.as_str()), ("slow_down", "poll less often"));
        let bare = answer(400, r#"{"error":"authorization_pending"}"#).failure();
        assert_eq!((bare.code.as_str(), bare.message.as_str()), ("authorization_pending", "authorization_pending"));
    }

    #[test]
    fn a_body_that_is_no_error_shape_still_fails_with_the_status() {
        let f = answer(502, "<html>Bad gateway</html>").failure();
        assert_eq!(f.code, "http_502");
        assert_eq!(f.message, "<html>Bad gateway</html>");
        assert_eq!(answer(500, "").failure().message, "the server answered HTTP 500");
    }

    #[test]
    fn success_is_the_json_body_and_an_empty_body_is_null() {
        assert_eq!(answer(201, r#"{"id":"x"}"#).json().unwrap()["id"], "x");
        assert_eq!(answer(204, "").json().unwrap(), Value::Null);
        assert_eq!(answer(200, "not json").json().unwrap_err().code, "bad_response");
    }

    #[test]
    fn a_header_is_found_by_its_name_in_any_case() {
        let a = Answer { headers: vec![("upload-offset".into(), "5242880".into())], ..answer(204, "") };
        assert_eq!(a.header("Upload-Offset"), Some("5242880"));
        assert_eq!(a.header("jestha-media-id"), None);
    }

    #[test]
    fn messages_name_the_origin_only() {
        assert_eq!(origin("http://127.0.0.1:8787/api/posts?cursor=abc"), "http://127.0.0.1:8787");
        assert_eq!(origin("https://api.example"), "https://api.example");
    }
}
