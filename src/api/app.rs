//! The one route table: method, path, what the caller needs, handler (every
//! handler an `async fn(Ctx)` wrapped by `h!`: see pipeline/ctx.rs). Requests
//! are matched against it (`pipeline::dispatch`), the auth guard reads each
//! route's `Access` from it, MCP's tools and the OpenAPI document are checked
//! against it, and tests iterate over it (natively, and over HTTP via
//! `GET /api/routes`).

use axum::http::Method;

use crate::api::routes::{
    account, accounts, bench, clips, comments, feeds, keys, media, meta, notifications, posts, security, webhooks,
};
use crate::auth::principal::Access;
use crate::h;
use crate::pipeline::Route;

macro_rules! route {
    ($method:ident $path:literal, $access:expr, $handler:expr) => {
        Route { method: Method::$method, path: $path, access: $access, handler: $handler, idempotent: false }
    };
}

pub fn routes() -> Vec<Route> {
    use crate::auth::scope::Scope::*;
    use Access::*;
    let mut table = vec![
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
        route!(GET "/api/notifications", SessionOnly, h!(notifications::list)),
        route!(POST "/api/notifications/read", SessionOnly, h!(notifications::mark_read)),
        route!(POST "/api/security/leaked-keys", Public, h!(security::report)),
        // MCP (API keys only; tools dispatch back through this table)
        route!(POST "/mcp", KeyOnly, h!(crate::api::mcp::post)),
        // Webhooks: the owning session, or that same key with webhooks:manage
        // (sessions pass scope checks; the handlers refuse any other key with 404).
        route!(POST "/api/auth/api-keys/{id}/webhooks", Scopes(&[WebhooksManage]), h!(webhooks::create)),
        route!(GET "/api/auth/api-keys/{id}/webhooks", Scopes(&[WebhooksManage]), h!(webhooks::list)),
        route!(PATCH "/api/auth/api-keys/{id}/webhooks/{webhookId}", Scopes(&[WebhooksManage]), h!(webhooks::update)),
        route!(DELETE "/api/auth/api-keys/{id}/webhooks/{webhookId}", Scopes(&[WebhooksManage]), h!(webhooks::delete)),
        route!(POST "/api/auth/api-keys/{id}/webhooks/{webhookId}/test", Scopes(&[WebhooksManage]), h!(webhooks::deliveries::test)),
        route!(POST "/api/auth/api-keys/{id}/webhooks/{webhookId}/rotate-secret", Scopes(&[WebhooksManage]), h!(webhooks::rotate_secret)),
        route!(POST "/api/auth/api-keys/{id}/webhooks/{webhookId}/redeliver", Scopes(&[WebhooksManage]), h!(webhooks::deliveries::redeliver)),
        route!(GET "/api/auth/api-keys/{id}/webhooks/{webhookId}/deliveries", Scopes(&[WebhooksManage]), h!(webhooks::deliveries::list)),
        // Content: Jes, JesClips, comments, media
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

    /// Public writes that authenticate by other means than a credential.
    const SIGNED_PUBLIC_WRITES: &[&str] = &["/api/security/leaked-keys"];

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
