//! The one route table: method, path, what the caller needs, handler (every
//! handler an `async fn(Ctx)` wrapped by `h!`: see routes/shared.rs). Requests
//! are matched against it (`router::find`), the auth guard reads each route's
//! `Access` from it, and tests iterate over it (natively, and over HTTP via
//! `GET /api/routes`).

use std::future::Future;
use std::pin::Pin;

use axum::extract::Request;
use axum::http::{HeaderValue, Method};
use axum::response::{IntoResponse, Response};

use crate::auth::guard::{guard, Access};
use crate::error::ApiError;
use crate::h;
use crate::router::{find, Found};
use crate::routes::shared::{PathParams, H};
use crate::routes::{account, accounts, bench, clips, comments, feeds, keys, media, meta, posts, security, webhooks};

pub struct Route {
    pub method: Method,
    /// `{name}` marks a parameter: `/api/posts/{id}`.
    pub path: &'static str,
    pub access: Access,
    pub handler: H,
}

macro_rules! route {
    ($method:ident $path:literal, $access:expr, $handler:expr) => {
        Route {
            method: Method::$method,
            path: $path,
            access: $access,
            handler: $handler,
        }
    };
}

pub fn routes() -> Vec<Route> {
    use crate::auth::scope::Scope::*;
    use Access::*;
    vec![
        route!(GET "/health", Public, h!(meta::health)),
        route!(GET "/api/routes", Public, h!(meta::table)),
        route!(GET "/openapi.json", Public, h!(meta::openapi)),
        route!(GET "/__bench/baseline", Public, h!(bench::baseline)),
        route!(GET "/__bench/floor", Public, h!(bench::floor)),
        // Accounts and sessions
        route!(POST "/api/auth/signup", Public, h!(accounts::signup)),
        route!(POST "/api/auth/login", Public, h!(accounts::login)),
        route!(POST "/api/auth/logout", SessionOnly, h!(accounts::logout)),
        route!(GET "/api/auth/me", Authenticated, h!(accounts::me)),
        // API keys (sessions only)
        route!(GET "/api/auth/scopes", SessionOnly, h!(keys::scopes)),
        route!(POST "/api/auth/api-keys", SessionOnly, h!(keys::create)),
        route!(GET "/api/auth/api-keys", SessionOnly, h!(keys::list)),
        route!(DELETE "/api/auth/api-keys/{id}", SessionOnly, h!(keys::revoke)),
        route!(GET "/api/auth/api-keys/{id}/usage", SessionOnly, h!(keys::usage)),
        // Key safety
        route!(GET "/api/auth/key", KeyOnly, h!(keys::introspect)),
        route!(GET "/api/notifications", SessionOnly, h!(crate::notify::list)),
        route!(POST "/api/notifications/read", SessionOnly, h!(crate::notify::mark_read)),
        route!(POST "/api/security/leaked-keys", Public, h!(security::report)),
        // MCP (API keys only; tools dispatch back through this table)
        route!(POST "/mcp", KeyOnly, h!(crate::mcp::post)),
        // Webhooks: the owning session, or that same key with webhooks:manage
        // (sessions pass scope checks; the handlers refuse any other key with 404).
        route!(POST "/api/auth/api-keys/{id}/webhooks", Scopes(&[WebhooksManage]), h!(webhooks::create)),
        route!(GET "/api/auth/api-keys/{id}/webhooks", Scopes(&[WebhooksManage]), h!(webhooks::list)),
        route!(PATCH "/api/auth/api-keys/{id}/webhooks/{webhookId}", Scopes(&[WebhooksManage]), h!(webhooks::update)),
        route!(DELETE "/api/auth/api-keys/{id}/webhooks/{webhookId}", Scopes(&[WebhooksManage]), h!(webhooks::delete)),
        route!(POST "/api/auth/api-keys/{id}/webhooks/{webhookId}/test", Scopes(&[WebhooksManage]), h!(webhooks::test)),
        route!(POST "/api/auth/api-keys/{id}/webhooks/{webhookId}/rotate-secret", Scopes(&[WebhooksManage]), h!(webhooks::rotate_secret)),
        route!(POST "/api/auth/api-keys/{id}/webhooks/{webhookId}/redeliver", Scopes(&[WebhooksManage]), h!(webhooks::redeliver)),
        route!(GET "/api/auth/api-keys/{id}/webhooks/{webhookId}/deliveries", Scopes(&[WebhooksManage]), h!(webhooks::deliveries)),
        // (end Webhooks)
        // ---- Content (issue 6)
        route!(POST "/api/posts", Scopes(&[WriteJes]), h!(posts::create)),
        route!(GET "/api/posts/{id}", Authenticated, h!(posts::get)),
        route!(PATCH "/api/posts/{id}", Scopes(&[WriteJes]), h!(posts::update)),
        route!(DELETE "/api/posts/{id}", Scopes(&[WriteJes]), h!(posts::delete)),
        route!(POST "/api/posts/{id}/bounce", Scopes(&[WriteJes]), h!(posts::bounce)),
        route!(POST "/api/posts/{id}/comments", Scopes(&[WriteComment]), h!(comments::create)),
        route!(GET "/api/posts/{id}/comments", Scopes(&[ReadComment]), h!(comments::list)),
        route!(POST "/api/jesclips", Scopes(&[WriteJesclip]), h!(clips::create)),
        route!(GET "/api/jesclips/{id}", Authenticated, h!(posts::get)),
        route!(PATCH "/api/jesclips/{id}", Scopes(&[WriteJesclip]), h!(posts::update)),
        route!(DELETE "/api/jesclips/{id}", Scopes(&[WriteJesclip]), h!(posts::delete)),
        route!(POST "/api/jesclips/{id}/comments", Scopes(&[WriteComment]), h!(comments::create)),
        route!(GET "/api/jesclips/{id}/comments", Scopes(&[ReadComment]), h!(comments::list)),
        route!(POST "/api/media", AnyScope(&[WriteJes, WriteJesclip]), h!(media::create)),
        route!(GET "/api/media/{id}", Optional, h!(media::get)),
        // Session-only surface
        route!(GET "/api/feed/home", SessionOnly, h!(feeds::home)),
        route!(GET "/api/feed/jehub/{hub}", SessionOnly, h!(feeds::jehub)),
        route!(GET "/api/feed/jesclips", SessionOnly, h!(feeds::jesclips)),
        route!(GET "/api/trending", SessionOnly, h!(feeds::trending)),
        route!(GET "/api/discover", SessionOnly, h!(feeds::discover)),
        route!(GET "/api/search", SessionOnly, h!(feeds::search)),
        route!(GET "/api/users/{username}", SessionOnly, h!(feeds::profile)),
        route!(GET "/api/users/{username}/posts", SessionOnly, h!(feeds::user_posts)),
        route!(GET "/api/saves", SessionOnly, h!(feeds::saves)),
        route!(PATCH "/api/account", SessionOnly, h!(account::update)),
        route!(DELETE "/api/account", SessionOnly, h!(account::delete)),
        route!(POST "/api/users/{username}/follow", SessionOnly, h!(feeds::follow)),
        route!(DELETE "/api/users/{username}/follow", SessionOnly, h!(feeds::follow)),
        route!(POST "/api/posts/{id}/like", SessionOnly, h!(feeds::engage)),
        route!(DELETE "/api/posts/{id}/like", SessionOnly, h!(feeds::engage)),
        route!(POST "/api/posts/{id}/save", SessionOnly, h!(feeds::engage)),
        route!(DELETE "/api/posts/{id}/save", SessionOnly, h!(feeds::engage)),
        route!(POST "/api/jesclips/{id}/like", SessionOnly, h!(feeds::engage)),
        route!(DELETE "/api/jesclips/{id}/like", SessionOnly, h!(feeds::engage)),
        route!(POST "/api/jesclips/{id}/save", SessionOnly, h!(feeds::engage)),
        route!(DELETE "/api/jesclips/{id}/save", SessionOnly, h!(feeds::engage)),
        // ---- end Content
    ]
}

thread_local! {
    /// Built once per isolate: the table does not change between requests.
    static TABLE: Vec<Route> = routes();
}

/// The route table this isolate built (see `TABLE`), for code that reads it
/// per request (MCP's tool list, `GET /api/routes`).
pub fn with_table<R>(f: impl FnOnce(&[Route]) -> R) -> R {
    TABLE.with(|t| f(t))
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

/// Runs one request (the Worker's entry and MCP's tools): small bodies are
/// read first (src/body.rs), then the route's guard, Idempotency-Key for
/// authenticated POSTs (inside the guard, so the account is known), and the
/// handler. The web app's files never reach the Worker: they are static
/// assets (`[assets]` in wrangler.toml), answered before it runs.
pub async fn dispatch(req: Request) -> Response {
    let head = req.method() == Method::HEAD;
    let mut res = crate::body::read_small(req, Next::new(route)).await;
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

async fn route(mut req: Request) -> Response {
    let found = TABLE.with(|t| find(t.iter().map(|r| (&r.method, r.path)), req.method(), req.uri().path()));
    let index = match found {
        Found::Route { index, params } => {
            req.extensions_mut().insert(PathParams(params));
            index
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
    let (access, handler, idem) = TABLE.with(|t| {
        let r = &t[index];
        (r.access, r.handler, idempotent(&r.method, r.path, r.access))
    });
    let inner = if idem {
        Next::new(move |req| crate::idempotency::layer(req, Next::new(move |req| handler.call(req))))
    } else {
        Next::new(move |req| handler.call(req))
    };
    guard(access, req, inner).await
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

/// Routes whose responses carry a secret shown once: never stored for
/// Idempotency-Key replay (D1 would hold the plaintext).
pub const SECRET_MINTING: [&str; 3] =
    ["/api/auth/api-keys", "/api/auth/api-keys/{id}/webhooks", "/api/auth/api-keys/{id}/webhooks/{webhookId}/rotate-secret"];

/// Every authenticated POST honours Idempotency-Key, except the secret-minting
/// ones and `/mcp` (a JSON-RPC transport: its tools take `idempotencyKey` and
/// pass it to the route they call, which would otherwise find it claimed).
pub fn idempotent(method: &Method, path: &str, access: Access) -> bool {
    *method == Method::POST && access != Access::Public && !SECRET_MINTING.contains(&path) && path != "/mcp"
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn every_route_is_declared_once() {
        let mut seen = HashSet::new();
        for r in routes() {
            assert!(seen.insert((r.method.clone(), r.path)), "{} {} twice", r.method, r.path);
        }
    }

    #[test]
    fn every_route_is_reached_by_its_own_path_and_no_other_route_shadows_it() {
        let table = routes();
        for (i, r) in table.iter().enumerate() {
            let concrete: String = r.path.split('/').map(|s| if s.starts_with('{') { "x1" } else { s }).collect::<Vec<_>>().join("/");
            let found = find(table.iter().map(|r| (&r.method, r.path)), &r.method, &concrete);
            assert!(matches!(found, Found::Route { index, .. } if index == i), "{} {} -> {found:?}", r.method, r.path);
        }
    }

    #[test]
    fn key_management_and_account_routes_are_never_open_to_keys() {
        for r in routes() {
            let managed = r.path.starts_with("/api/auth/api-keys") && !r.path.contains("/webhooks");
            if managed || r.path == "/api/auth/logout" || r.path == "/api/auth/scopes" || r.path.starts_with("/api/account") {
                assert_eq!(r.access, Access::SessionOnly, "{} {}", r.method, r.path);
            }
        }
    }

    /// Public writes that authenticate by other means than a credential.
    const SIGNED_PUBLIC_WRITES: &[&str] = &["/api/security/leaked-keys"];

    #[test]
    fn the_listing_engagement_and_account_surface_is_session_only() {
        let surface = ["/api/feed/", "/api/trending", "/api/discover", "/api/search", "/api/users/", "/api/saves", "/api/account"];
        for r in routes() {
            let engagement = r.path.ends_with("/like") || r.path.ends_with("/save");
            if engagement || surface.iter().any(|p| r.path.starts_with(p)) {
                assert_eq!(r.access, Access::SessionOnly, "{} {}", r.method, r.path);
            }
        }
    }

    #[test]
    fn every_authenticated_post_but_the_secret_minting_ones_is_idempotent() {
        let idem: Vec<&str> = routes().iter().filter(|r| idempotent(&r.method, r.path, r.access)).map(|r| r.path).collect();
        assert!(idem.contains(&"/api/posts") && idem.contains(&"/api/posts/{id}/comments"));
        assert!(!idem.contains(&"/api/auth/api-keys"), "a replay would store the plaintext key");
        assert!(!idem.contains(&"/api/auth/signup") && !idem.contains(&"/mcp"));
        assert!(!idempotent(&Method::GET, "/api/posts/{id}", Access::Authenticated));
    }

    #[test]
    fn api_keys_never_reach_write_routes_without_a_scope() {
        for r in routes() {
            let writes = matches!(r.method, Method::POST | Method::PATCH | Method::DELETE);
            if writes
                && r.path.starts_with("/api/")
                && !r.path.starts_with("/api/auth/")
                && !SIGNED_PUBLIC_WRITES.contains(&r.path)
            {
                assert!(
                    !matches!(r.access, Access::Authenticated | Access::Public),
                    "{} {} writes without a scope",
                    r.method,
                    r.path
                );
            }
        }
    }
}
