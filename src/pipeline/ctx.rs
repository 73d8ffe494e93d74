//! What a handler gets and how it is called: every route is a plain
//! `async fn(Ctx) -> ApiResult<Response>` wrapped by `h!` into an `H`.
//!
//! Why one adapter: a framework's extractors compile a separate handler
//! implementation per signature, about 1 KB of gzipped wasm per route; the
//! Worker has sixty routes and a 300 KB budget (moving the last twenty-five
//! axum handlers onto `H` saved 17.6 KB gzipped; dropping axum's router for
//! `router::find` saved more, see `pipeline::dispatch`).

use std::future::Future;
use std::pin::Pin;

use axum::body::{Body, Bytes};
use axum::extract::Request;
use axum::http::{HeaderMap, Method};
use axum::response::{IntoResponse, Response};
use serde::de::DeserializeOwned;
use serde_json::Value;

use super::body::{is_json, read_body};
use super::Route;
use crate::auth::decide::CredentialKind;
use crate::auth::principal::Principal;
use crate::auth::scope::Scope;
use crate::domain::content::PostKind;
use crate::domain::page::{Page, PageQuery};
use crate::error::{ApiError, ApiResult};
use crate::http::{parse_json, AppState, MAX_JSON_BYTES};

pub type Fut = Pin<Box<dyn Future<Output = ApiResult<Response>>>>;

/// A route's handler: `h!(posts::create)`.
#[derive(Clone, Copy)]
pub struct H(pub fn(Ctx) -> Fut);

impl H {
    /// Runs the handler on a routed request (see `pipeline::dispatch`).
    pub async fn call(self, req: Request) -> Response {
        let out = match Ctx::new(req) {
            Ok(ctx) => (self.0)(ctx).await,
            Err(e) => Err(e),
        };
        out.unwrap_or_else(IntoResponse::into_response)
    }
}

/// The handler a build lists for another Worker's route (see `app`): never
/// called, as `dispatch` answers 404 first.
pub const ELSEWHERE: H = H(|_| Box::pin(async { Err(ApiError::NotFound) }));

/// The matched route's path parameters, in order (set by `pipeline::dispatch`).
#[derive(Clone, Debug)]
pub struct PathParams(pub Vec<String>);

/// Wraps `async fn(Ctx) -> ApiResult<Response>` as a route handler.
#[macro_export]
macro_rules! h {
    ($f:path) => {
        $crate::pipeline::ctx::H(|c| Box::pin($f(c)))
    };
}

/// What a route gets: the runtime, the caller, the path parameters, the
/// headers and the (unread) body.
pub struct Ctx {
    pub app: AppState,
    /// The caller; `None` only on `Access::Optional` routes.
    pub who: Option<Principal>,
    /// The route's first path parameter (`{id}`, `{hub}`, `{username}`), or "".
    pub id: String,
    /// The second one (`{webhookId}`), or "".
    pub sub_id: String,
    pub method: Method,
    pub path: String,
    /// `scheme://host[:port]` as the client addressed the API (the forward to
    /// the account Worker keeps the URL): OAuth's issuer and metadata URLs.
    pub origin: String,
    query: String,
    pub headers: HeaderMap,
    /// The route table this request was dispatched through.
    pub table: &'static [Route],
    body: Option<Body>,
    /// An upload's body, unread (see `pipeline::body::streams`).
    pub raw: Option<crate::adapters::stream::RawBody>,
    /// Where an upload's streamed Idempotency-Key fingerprint goes, when the
    /// layer wants it (see `pipeline::idempotency`).
    pub fingerprint: Option<super::idempotency::FpCell>,
}

impl Ctx {
    fn new(req: Request) -> ApiResult<Ctx> {
        let (mut parts, body) = req.into_parts();
        let app = parts.extensions.get::<AppState>().cloned().ok_or_else(|| ApiError::internal("no AppState"))?;
        let who = parts.extensions.get::<Principal>().cloned();
        let table = super::table();
        let raw = parts.extensions.get::<crate::adapters::stream::RawBody>().cloned();
        let fingerprint = parts.extensions.get::<super::idempotency::FpCell>().cloned();
        let mut params = parts.extensions.remove::<PathParams>().map(|p| p.0).unwrap_or_default().into_iter();
        let (id, sub_id) = (params.next().unwrap_or_default(), params.next().unwrap_or_default());
        Ok(Ctx {
            app,
            who,
            id,
            sub_id,
            method: parts.method,
            path: parts.uri.path().to_string(),
            origin: crate::auth::challenge::origin(
                parts.uri.scheme_str().unwrap_or("https"),
                parts.uri.authority().map_or("", |a| a.as_str()),
            ),
            query: parts.uri.query().unwrap_or("").to_string(),
            headers: parts.headers,
            table,
            body: Some(body),
            raw,
            fingerprint,
        })
    }
    /// The caller, on routes that always have one.
    pub fn who(&self) -> ApiResult<&Principal> {
        self.who.as_ref().ok_or(ApiError::Unauthenticated)
    }

    /// The caller's account id, if any.
    pub fn viewer(&self) -> Option<&str> {
        self.who.as_ref().map(|p| p.user_id.as_str())
    }

    pub fn is_session(&self) -> bool {
        self.who.as_ref().is_some_and(|p| p.kind == CredentialKind::Session)
    }

    /// Engagement counts are shown to sessions and to keys with read:engagement.
    pub fn sees_counts(&self) -> bool {
        self.who.as_ref().is_some_and(|p| p.can(Scope::ReadEngagement))
    }

    /// Routes under `/api/jesclips` act on JesClips, the rest on Jes.
    pub fn kind(&self) -> PostKind {
        PostKind::of_path(&self.path)
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// The raw query string (without `?`), as the client sent it.
    pub fn query(&self) -> &str {
        &self.query
    }

    /// Path and query, as the request named them.
    pub fn target(&self) -> String {
        if self.query.is_empty() {
            self.path.clone()
        } else {
            format!("{}?{}", self.path, self.query)
        }
    }

    /// One query-string parameter, percent-decoded.
    pub fn q(&self, name: &str) -> Option<String> {
        form_urlencoded::parse(self.query.as_bytes()).find(|(k, _)| k == name).map(|(_, v)| v.into_owned())
    }

    pub fn page(&self) -> ApiResult<Page> {
        PageQuery { limit: self.q("limit"), cursor: self.q("cursor") }.parse().map_err(ApiError::invalid)
    }

    pub fn content_type(&self) -> String {
        self.header("content-type").unwrap_or("").split(';').next().unwrap_or("").trim().to_ascii_lowercase()
    }

    pub fn is_multipart(&self) -> bool {
        self.content_type() == "multipart/form-data"
    }

    /// Reads and drops the body (see `read_body`).
    pub async fn drain(&mut self) {
        if let Some(body) = self.body.take() {
            let _ = read_body(body, 0).await;
        }
    }

    /// The raw body, at most `limit` bytes (413 beyond).
    pub async fn bytes(&mut self, limit: usize) -> ApiResult<Bytes> {
        let body = self.body.take().ok_or_else(|| ApiError::internal("body read twice"))?;
        read_body(body, limit).await
    }

    /// A typed JSON body: 415 for another content type, 413 over 64 KiB, 400
    /// naming the field serde could not read.
    pub async fn body<T: DeserializeOwned>(&mut self) -> ApiResult<T> {
        let ct = self.content_type();
        let bytes = self.bytes(MAX_JSON_BYTES).await?;
        if !is_json(&ct) {
            return Err(ApiError::UnsupportedMediaType("Content-Type must be application/json".into()));
        }
        parse_json(&bytes)
    }

    /// A JSON object body (415 for another type, 413 over 64 KiB, 400 when it
    /// is not an object). `allow_empty`: an absent body reads as `{}`.
    pub async fn json(&mut self, allow_empty: bool) -> ApiResult<Value> {
        let ct = self.content_type();
        let declared = self.header("content-length").is_some_and(|l| l != "0") || self.header("transfer-encoding").is_some();
        if allow_empty && ct.is_empty() && !declared {
            return Ok(Value::Object(Default::default()));
        }
        if !is_json(&ct) {
            return Err(ApiError::UnsupportedMediaType("Content-Type must be application/json".into()));
        }
        let bytes = self.bytes(MAX_JSON_BYTES).await?;
        if allow_empty && bytes.is_empty() {
            return Ok(Value::Object(Default::default()));
        }
        let v: Value = parse_json(&bytes)?;
        if !v.is_object() {
            return Err(ApiError::invalid("body: must be a JSON object"));
        }
        Ok(v)
    }
}
