//! The request pipeline of the HTTP Workers (API and account): `serve` is
//! their `fetch` body; a request is read (small bodies in full, `body`),
//! matched against the route table (`router::find`),
//! passed through the route's guard (`guard`), Idempotency-Key for
//! authenticated POSTs (`idempotency`, inside the guard, so the account is
//! known), and handed to its handler as a `Ctx` (`ctx`). The route table
//! itself is the Worker's (`app::routes()`); nothing here knows its routes.

pub mod body;
pub mod ctx;
pub mod guard;
pub mod idempotency;
pub mod router;
pub mod serve;

use std::cell::Cell;
use std::future::Future;
use std::pin::Pin;

use axum::extract::Request;
use axum::http::{HeaderValue, Method};
use axum::response::{IntoResponse, Response};

use crate::auth::principal::Access;
use crate::error::ApiError;
use crate::pipeline::guard::guard;
use ctx::{PathParams, H};
use router::{find, Found};

/// The Worker a route lives in (see `app`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Home {
    /// The API Worker (wrangler.toml): what keys and tokens call.
    Api,
    /// The account Worker (wrangler.account.toml): identity and credential issuance.
    Account,
}

impl Home {
    /// Whether this build runs the route's handler (both do in a default build).
    pub const fn here(self) -> bool {
        match self {
            Home::Api => cfg!(feature = "api"),
            Home::Account => cfg!(feature = "account"),
        }
    }
}

/// One row of a route table: method, path, what the caller needs, handler.
pub struct Route {
    pub method: Method,
    /// `{name}` marks a parameter: `/api/posts/{id}`.
    pub path: &'static str,
    pub access: Access,
    /// The Worker whose build carries the handler.
    pub home: Home,
    /// `ctx::ELSEWHERE` in a build without `home`.
    pub handler: H,
    /// Whether the route honours Idempotency-Key (see `app::idempotent`).
    pub idempotent: bool,
}

thread_local! {
    /// The table this isolate's Worker dispatches through (one per Worker).
    static TABLE: Cell<&'static [Route]> = const { Cell::new(&[]) };
}

/// The route table requests are dispatched through, for handlers that read
/// it (MCP's tools, `GET /api/routes`): the one `dispatch` was given.
pub fn table() -> &'static [Route] {
    TABLE.with(Cell::get)
}

/// The rest of a request's way after a step (body, guard, idempotency): the
/// steps are plain async functions chained by `dispatch`.
pub struct Next(Step);

type Step = Box<dyn FnOnce(Request) -> Pin<Box<dyn Future<Output = Response>>>>;

impl Next {
    pub fn new<F: Future<Output = Response> + 'static>(step: impl FnOnce(Request) -> F + 'static) -> Next {
        Next(Box::new(move |req| Box::pin(step(req))))
    }

    pub async fn run(self, req: Request) -> Response {
        (self.0)(req).await
    }
}

/// Runs one request through `table` (the Worker's entry and MCP's tools):
/// small bodies are read first (`body`), then the route's guard,
/// Idempotency-Key where the route honours it, and the handler. The web
/// app's files never reach the Worker: they are static assets (`[assets]` in
/// wrangler.toml), answered before it runs.
pub async fn dispatch(table: &'static [Route], req: Request) -> Response {
    TABLE.with(|t| t.set(table));
    let head = req.method() == Method::HEAD;
    let mut res = body::read_small(req, Next::new(move |req| route(table, req))).await;
    if head {
        // The GET answer's headers, its length included, without its body.
        // (A 304 or 204 has no length to state: the body it lacks is not the 200's.)
        use axum::body::HttpBody;
        let len = res.body().size_hint().exact();
        let bodiless = matches!(res.status().as_u16(), 204 | 304);
        if let (Some(n), false, false) = (len, bodiless, res.headers().contains_key(axum::http::header::CONTENT_LENGTH)) {
            res.headers_mut().insert(axum::http::header::CONTENT_LENGTH, HeaderValue::from(n));
        }
        *res.body_mut() = axum::body::Body::empty();
    }
    envelope_rejections(res).await
}

async fn route(table: &'static [Route], mut req: Request) -> Response {
    let r = match find(table.iter().map(|r| (&r.method, r.path)), req.method(), req.uri().path()) {
        Found::Route { index, params } => {
            req.extensions_mut().insert(PathParams(params));
            &table[index]
        }
        Found::MethodNotAllowed { .. } if req.method() == Method::OPTIONS && cors_open(req.uri().path()) => {
            return preflight();
        }
        Found::MethodNotAllowed { allow } => {
            let mut res = ApiError::MethodNotAllowed.into_response();
            if let Ok(v) = HeaderValue::from_str(&allow) {
                res.headers_mut().insert(axum::http::header::ALLOW, v);
            }
            return res;
        }
        Found::NotFound => return ApiError::NotFound.into_response(),
    };
    if !r.home.here() {
        // Another Worker's route: the API forwards account routes before
        // dispatch, so only a request the account Worker should never see gets here.
        return ApiError::NotFound.into_response();
    }
    let handler = r.handler;
    let inner = if r.idempotent {
        Next::new(move |req| crate::pipeline::idempotency::layer(req, Next::new(move |req| handler.call(req))))
    } else {
        Next::new(move |req| handler.call(req))
    };
    guard(r.access, req, inner).await
}

/// OAuth's discovery documents and its endpoints a client calls directly
/// (registration, token, revocation, device): readable from any origin, so
/// an MCP client running in a browser can use them. No cookie is read there
/// (the consent runs in our own page), so `*` exposes nothing.
pub fn cors_open(path: &str) -> bool {
    path.starts_with("/.well-known/oauth-")
        || matches!(path, "/oauth/register" | "/oauth/token" | "/oauth/revoke" | "/oauth/device")
}

/// The answer to a CORS preflight of a `cors_open` path.
fn preflight() -> Response {
    let mut res = axum::http::StatusCode::NO_CONTENT.into_response();
    let h = res.headers_mut();
    h.insert("access-control-allow-origin", HeaderValue::from_static("*"));
    h.insert("access-control-allow-methods", HeaderValue::from_static("GET, POST, OPTIONS"));
    h.insert("access-control-allow-headers", HeaderValue::from_static("content-type, authorization, mcp-protocol-version"));
    h.insert("access-control-max-age", HeaderValue::from_static("86400"));
    res
}

/// Errors the platform or a body reader answers as plain text: the contract
/// says every error is the JSON envelope.
async fn envelope_rejections(res: Response) -> Response {
    let status = res.status();
    let is_json = res
        .headers()
        .get(axum::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    if !status.is_client_error() || is_json {
        return res;
    }
    let text = axum::body::to_bytes(res.into_body(), 4096).await.unwrap_or_default();
    let detail: String = String::from_utf8_lossy(&text).chars().filter(|c| !c.is_control()).take(200).collect();
    ApiError::from_status(status, detail).into_response()
}
