//! The one route table of both HTTP Workers: method, path, what the caller
//! needs, the Worker it lives in, handler (every handler an `async fn(Ctx)`
//! wrapped by `h!`: see pipeline/ctx.rs). Requests are matched against it
//! (`pipeline::dispatch`), the auth guard reads each route's `Access` from
//! it, MCP's tools and the OpenAPI document are checked against it, and tests
//! iterate over it (natively, and over HTTP via `GET /api/routes`).
//!
//! Each route has a home (`Home`): the API Worker (what keys and tokens call,
//! and the hot reads) or the account Worker (identity and credential
//! issuance: signup, login, key management). Every build lists every route;
//! a handler is compiled only into its home's build (`api_handler!`,
//! `account_handler!`), so each module carries its own routes' code alone.
//! The API forwards an account route over its `ACCOUNT` service binding
//! before reading the body (`api::fetch`); the account Worker answers 404 to
//! API routes. A default (native) build has both homes and runs every route.

use axum::http::Method;

use crate::auth::principal::Access;
use crate::pipeline::{Home, Route};

#[cfg(feature = "api")]
macro_rules! api_handler {
    ($($h:ident)::+) => {
        $crate::h!(crate::api::routes::$($h)::+)
    };
}
#[cfg(not(feature = "api"))]
macro_rules! api_handler {
    ($($h:ident)::+) => {
        crate::pipeline::ctx::ELSEWHERE
    };
}
#[cfg(feature = "account")]
macro_rules! account_handler {
    ($($h:ident)::+) => {
        $crate::h!(crate::account::routes::$($h)::+)
    };
}
#[cfg(not(feature = "account"))]
macro_rules! account_handler {
    ($($h:ident)::+) => {
        crate::pipeline::ctx::ELSEWHERE
    };
}

macro_rules! route {
    (@route $home:ident $method:ident $path:literal, $access:expr, $handler:expr) => {
        Route {
            method: Method::$method,
            path: $path,
            access: $access,
            home: Home::$home,
            handler: $handler,
            idempotent: false,
        }
    };
    (Api $method:ident $path:literal, $access:expr, $($h:ident)::+) => {
        route!(@route Api $method $path, $access, api_handler!($($h)::+))
    };
    (Account $method:ident $path:literal, $access:expr, $($h:ident)::+) => {
        route!(@route Account $method $path, $access, account_handler!($($h)::+))
    };
}

pub fn routes() -> Vec<Route> {
    use crate::auth::scope::Scope::*;
    use Access::*;
    let mut table = vec![
        route!(Api GET "/health", Public, meta::health),
        route!(Api GET "/api/routes", Public, meta::table),
        route!(Api GET "/openapi.json", Public, meta::openapi),
        route!(Api GET "/__bench/baseline", Public, bench::baseline),
        route!(Api GET "/__bench/floor", Public, bench::floor),
        // Accounts and sessions
        route!(Account POST "/api/auth/signup", Public, accounts::signup),
        route!(Account POST "/api/auth/login", Public, accounts::login),
        route!(Account POST "/api/auth/logout", SessionOnly, accounts::logout),
        route!(Account POST "/api/auth/login/2fa", Public, twofactor::login),
        route!(Api GET "/api/auth/me", Authenticated, auth::me),
        // API keys (sessions only)
        route!(Account GET "/api/auth/scopes", SessionOnly, keys::scopes),
        route!(Account POST "/api/auth/api-keys", SessionOnly, keys::create),
        route!(Account GET "/api/auth/api-keys", SessionOnly, keys::list),
        route!(Account DELETE "/api/auth/api-keys/{id}", SessionOnly, keys::revoke),
        route!(Account GET "/api/auth/api-keys/{id}/usage", SessionOnly, keys::usage),
        route!(Account GET "/api/auth/api-keys/{id}", SessionOnly, key_edit::get),
        route!(Account PATCH "/api/auth/api-keys/{id}", SessionOnly, key_edit::patch),
        // Account security: sessions and the audit log
        route!(Account GET "/api/auth/sessions", SessionOnly, sessions::list),
        route!(Account DELETE "/api/auth/sessions/{id}", SessionOnly, sessions::revoke),
        route!(Account GET "/api/account/audit", SessionOnly, audit::list),
        // Operators (ADMIN_USERNAMES)
        route!(Account GET "/api/admin/accounts", Operator, admin::search),
        route!(Account POST "/api/admin/accounts/{id}/suspend", Operator, admin::suspend),
        route!(Account POST "/api/admin/accounts/{id}/unsuspend", Operator, admin::unsuspend),
        route!(Account DELETE "/api/admin/api-keys/{id}", Operator, admin::revoke_key),
        // Key safety
        route!(Api GET "/api/auth/key", KeyOnly, auth::introspect),
        route!(Api GET "/api/notifications", SessionOnly, notifications::list),
        route!(Api POST "/api/notifications/read", SessionOnly, notifications::mark_read),
        route!(Account POST "/api/security/leaked-keys", Public, security::report),
        // OAuth 2.1: the authorization server (answers in the RFCs' shapes)
        route!(Account GET "/.well-known/oauth-protected-resource", Public, oauth::metadata::resource),
        route!(Account GET "/.well-known/oauth-protected-resource/mcp", Public, oauth::metadata::resource_mcp),
        route!(Account GET "/.well-known/oauth-authorization-server", Public, oauth::metadata::server),
        route!(Account POST "/oauth/register", Public, oauth::register),
        route!(Account GET "/oauth/authorize", Public, oauth::authorize::start),
        route!(Account POST "/oauth/token", Public, oauth::token::token),
        route!(Account POST "/oauth/revoke", Public, oauth::revoke::revoke),
        route!(Account POST "/oauth/device", Public, oauth::device::start),
        route!(Account GET "/device", Public, oauth::device::page),
        // The consent and device screens of the web app (sessions only), and Connected apps
        route!(Account GET "/api/oauth/authorize", SessionOnly, oauth::authorize::consent),
        route!(Account POST "/api/oauth/authorize", SessionOnly, oauth::authorize::decide),
        route!(Account GET "/api/oauth/device", SessionOnly, oauth::device::lookup),
        route!(Account POST "/api/oauth/device", SessionOnly, oauth::device::decide),
        route!(Account GET "/api/auth/grants", SessionOnly, oauth::grants::list),
        route!(Account DELETE "/api/auth/grants/{id}", SessionOnly, oauth::grants::delete),
        // MCP (API keys and OAuth tokens; tools dispatch back through this table, to API routes only)
        route!(Api POST "/mcp", KeyOrToken, mcp::post),
        // Webhooks: the owning session, or that same key with webhooks:manage
        // (sessions pass scope checks; the handlers refuse any other key with 404).
        route!(Api POST "/api/auth/api-keys/{id}/webhooks", Scopes(&[WebhooksManage]), webhooks::create),
        route!(Api GET "/api/auth/api-keys/{id}/webhooks", Scopes(&[WebhooksManage]), webhooks::list),
        route!(Api PATCH "/api/auth/api-keys/{id}/webhooks/{webhookId}", Scopes(&[WebhooksManage]), webhooks::update),
        route!(Api DELETE "/api/auth/api-keys/{id}/webhooks/{webhookId}", Scopes(&[WebhooksManage]), webhooks::delete),
        route!(Api POST "/api/auth/api-keys/{id}/webhooks/{webhookId}/test", Scopes(&[WebhooksManage]), webhooks::deliveries::test),
        route!(Api POST "/api/auth/api-keys/{id}/webhooks/{webhookId}/rotate-secret", Scopes(&[WebhooksManage]), webhooks::rotate_secret),
        route!(Api POST "/api/auth/api-keys/{id}/webhooks/{webhookId}/redeliver", Scopes(&[WebhooksManage]), webhooks::deliveries::redeliver),
        route!(Api GET "/api/auth/api-keys/{id}/webhooks/{webhookId}/deliveries", Scopes(&[WebhooksManage]), webhooks::deliveries::list),
        // Content: Jes, JesClips, comments, media
        route!(Api POST "/api/posts", Scopes(&[WriteJes]), posts::create),
        route!(Api GET "/api/posts/{id}", Authenticated, posts::get),
        route!(Api PATCH "/api/posts/{id}", Scopes(&[WriteJes]), posts::update),
        route!(Api DELETE "/api/posts/{id}", Scopes(&[WriteJes]), posts::delete),
        route!(Api POST "/api/posts/{id}/bounce", Scopes(&[WriteJes]), posts::bounce),
        route!(Api POST "/api/posts/{id}/comments", Scopes(&[WriteComment]), comments::create),
        route!(Api GET "/api/posts/{id}/comments", Scopes(&[ReadComment]), comments::list),
        route!(Api POST "/api/jesclips", Scopes(&[WriteJesclip]), clips::create),
        route!(Api GET "/api/jesclips/{id}", Authenticated, posts::get),
        route!(Api PATCH "/api/jesclips/{id}", Scopes(&[WriteJesclip]), posts::update),
        route!(Api DELETE "/api/jesclips/{id}", Scopes(&[WriteJesclip]), posts::delete),
        route!(Api POST "/api/jesclips/{id}/comments", Scopes(&[WriteComment]), comments::create),
        route!(Api GET "/api/jesclips/{id}/comments", Scopes(&[ReadComment]), comments::list),
        route!(Api POST "/api/media", AnyScope(&[WriteJes, WriteJesclip]), media::create),
        route!(Api GET "/api/media/{id}", Optional, media::get),
        // Resumable uploads (tus 1.0.0), answered by the engine
        route!(Api OPTIONS "/api/uploads", Public, uploads::relay),
        route!(Api POST "/api/uploads", AnyScope(&[WriteJes, WriteJesclip]), uploads::relay),
        route!(Api GET "/api/uploads/{id}", AnyScope(&[WriteJes, WriteJesclip]), uploads::relay),
        route!(Api PATCH "/api/uploads/{id}", AnyScope(&[WriteJes, WriteJesclip]), uploads::relay),
        route!(Api DELETE "/api/uploads/{id}", AnyScope(&[WriteJes, WriteJesclip]), uploads::relay),
        // Session-only surface
        route!(Api GET "/api/feed/home", SessionOnly, feeds::home),
        route!(Api GET "/api/feed/jehub/{hub}", SessionOnly, feeds::jehub),
        route!(Api GET "/api/feed/jesclips", SessionOnly, feeds::jesclips),
        route!(Api GET "/api/trending", SessionOnly, feeds::trending),
        route!(Api GET "/api/discover", SessionOnly, feeds::discover),
        route!(Api GET "/api/search", SessionOnly, feeds::search),
        route!(Api GET "/api/users/{username}", SessionOnly, feeds::profile),
        route!(Api GET "/api/users/{username}/posts", SessionOnly, feeds::user_posts),
        route!(Api GET "/api/saves", SessionOnly, feeds::saves),
        route!(Account PATCH "/api/account", SessionOnly, account::update),
        route!(Account DELETE "/api/account", SessionOnly, account::delete),
        // Account security: two-factor sign-in
        route!(Account GET "/api/account/2fa", SessionOnly, twofactor::status),
        route!(Account POST "/api/account/2fa/setup", SessionOnly, twofactor::setup),
        route!(Account POST "/api/account/2fa/enable", SessionOnly, twofactor::enable),
        route!(Account DELETE "/api/account/2fa", SessionOnly, twofactor::disable),
        route!(Api POST "/api/users/{username}/follow", SessionOnly, feeds::follow),
        route!(Api DELETE "/api/users/{username}/follow", SessionOnly, feeds::follow),
        route!(Api POST "/api/posts/{id}/like", SessionOnly, feeds::engage),
        route!(Api DELETE "/api/posts/{id}/like", SessionOnly, feeds::engage),
        route!(Api POST "/api/posts/{id}/save", SessionOnly, feeds::engage),
        route!(Api DELETE "/api/posts/{id}/save", SessionOnly, feeds::engage),
        route!(Api POST "/api/jesclips/{id}/like", SessionOnly, feeds::engage),
        route!(Api DELETE "/api/jesclips/{id}/like", SessionOnly, feeds::engage),
        route!(Api POST "/api/jesclips/{id}/save", SessionOnly, feeds::engage),
        route!(Api DELETE "/api/jesclips/{id}/save", SessionOnly, feeds::engage),
    ];
    // Decided once per table, not per row: sixty calls written out cost wasm.
    for r in &mut table {
        r.idempotent = idempotent(&r.method, r.path, r.access);
    }
    table
}

thread_local! {
    /// Built once per isolate: the table does not change between requests.
    static TABLE: &'static [Route] = Box::leak(routes().into_boxed_slice());
}

/// The route table this isolate built (see `TABLE`).
pub fn table() -> &'static [Route] {
    TABLE.with(|t| *t)
}

/// Routes whose responses carry a secret shown once: never stored for
/// Idempotency-Key replay (D1 would hold the plaintext).
pub const SECRET_MINTING: [&str; 6] = [
    "/api/auth/api-keys",
    "/api/auth/api-keys/{id}/webhooks",
    "/api/auth/api-keys/{id}/webhooks/{webhookId}/rotate-secret",
    // Its answer's redirect holds an authorization code.
    "/api/oauth/authorize",
    "/api/account/2fa/setup",
    "/api/account/2fa/enable",
];

/// Every authenticated POST honours Idempotency-Key, except the secret-minting
/// ones, `/mcp` (a JSON-RPC transport: its tools take `idempotencyKey` and
/// pass it to the route they call, which would otherwise find it claimed)
/// and tus creation (a replay keeps no `Location`; a lost creation leaves an
/// empty upload that expires, and tus clients retry by protocol).
pub fn idempotent(method: &Method, path: &str, access: Access) -> bool {
    *method == Method::POST
        && access != Access::Public
        && !SECRET_MINTING.contains(&path)
        && path != "/mcp"
        && path != "/api/uploads"
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pipeline::router::{find, Found};
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
            let concrete: String =
                r.path.split('/').map(|s| if s.starts_with('{') { "x1" } else { s }).collect::<Vec<_>>().join("/");
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

    #[test]
    fn sign_in_and_key_management_live_in_the_account_worker() {
        for r in routes() {
            let key_management = r.path.starts_with("/api/auth/api-keys") && !r.path.contains("/webhooks");
            let account = ["/api/auth/signup", "/api/auth/login", "/api/auth/logout", "/api/auth/scopes", "/api/account"]
                .contains(&r.path)
                || r.path == "/api/security/leaked-keys"
                || r.path.starts_with("/oauth/")
                || r.path.starts_with("/.well-known/")
                || r.path.starts_with("/api/oauth/")
                || r.path.starts_with("/api/auth/grants")
                || r.path == "/device"
                || r.path.starts_with("/api/auth/login/")
                || r.path.starts_with("/api/auth/sessions")
                || r.path.starts_with("/api/admin/")
                || r.path.starts_with("/api/account/");
            let expected = if key_management || account { Home::Account } else { Home::Api };
            assert_eq!(r.home, expected, "{} {}", r.method, r.path);
        }
    }

    #[test]
    fn mcp_tools_call_only_routes_the_api_serves_itself() {
        // A tool is dispatched in process, through the API build's table,
        // where an account route's handler is not compiled.
        let table = routes();
        for t in crate::api::mcp::tools::catalog() {
            let r = table.iter().find(|r| r.method == t.method && r.path == t.route).expect(t.route);
            assert_eq!(r.home, Home::Api, "{} -> {} {}", t.name, r.method, r.path);
        }
    }

    #[test]
    fn a_path_is_served_by_one_worker_whatever_the_method() {
        // A 405's Allow must be the same in both Workers, so a path never mixes homes.
        let table = routes();
        for r in &table {
            for other in table.iter().filter(|o| o.path == r.path) {
                assert_eq!(r.home, other.home, "{} is split between Workers", r.path);
            }
        }
    }

    #[test]
    fn every_account_security_route_is_for_sessions_and_its_secrets_are_never_replayed() {
        for r in routes() {
            if r.path.starts_with("/api/admin/") {
                assert_eq!(r.access, Access::Operator, "{} {}", r.method, r.path);
            }
            if r.path.starts_with("/api/account/") || r.path.starts_with("/api/auth/sessions") {
                assert_eq!(r.access, Access::SessionOnly, "{} {}", r.method, r.path);
            }
        }
        assert!(SECRET_MINTING.contains(&"/api/account/2fa/setup") && SECRET_MINTING.contains(&"/api/account/2fa/enable"));
    }

    /// Public writes that authenticate by other means than a credential.
    const SIGNED_PUBLIC_WRITES: &[&str] = &["/api/security/leaked-keys"];

    #[test]
    fn oauth_endpoints_are_public_and_secret_minting_ones_never_replayed() {
        for r in routes().iter().filter(|r| r.path.starts_with("/oauth/") || r.path.starts_with("/.well-known/")) {
            assert_eq!(r.access, Access::Public, "{} {}: OAuth clients present no credential", r.method, r.path);
            assert!(!r.idempotent, "{} {}", r.method, r.path);
        }
        // The consent, the device page's calls and Connected apps are the person's own.
        for r in routes().iter().filter(|r| r.path.starts_with("/api/oauth/") || r.path.starts_with("/api/auth/grants")) {
            assert_eq!(r.access, Access::SessionOnly, "{} {}", r.method, r.path);
        }
        assert!(!idempotent(&Method::POST, "/api/oauth/authorize", Access::SessionOnly), "a replay would store a code");
        // What browsers may call from any origin is public OAuth, never a session's route.
        let open: Vec<_> = routes().into_iter().filter(|r| crate::pipeline::cors_open(r.path)).collect();
        assert_eq!(open.len(), 7);
        assert!(open.iter().all(|r| r.access == Access::Public && !r.path.starts_with("/api/")));
    }

    #[test]
    fn the_listing_engagement_and_account_surface_is_session_only() {
        let surface =
            ["/api/feed/", "/api/trending", "/api/discover", "/api/search", "/api/users/", "/api/saves", "/api/account"];
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
        assert!(!idem.contains(&"/api/uploads"), "a replay would lose the tus Location");
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
