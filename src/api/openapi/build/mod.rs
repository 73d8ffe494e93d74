//! Builds the OpenAPI 3.1 document from the route table itself: paths, methods,
//! access, scopes and which POSTs honour `Idempotency-Key` come from
//! `app::routes()`; summaries, schemas and examples from `operations.json` and
//! `components.json`; the webhook events from `events::EventType::ALL` and
//! `webhooks.json`; error examples from `ApiError` itself, so their bodies are
//! the ones the API sends. Native only: the Worker serves the committed result
//! (`public/openapi.json`, a static asset), and the tests (`tests.rs`) fail if the
//! table, the operations and the committed document ever drift apart.
//!
//! Security schemes are data: each entry of `components.json`'s
//! `securitySchemes` says with `x-jestha-credential` what its credential is
//! (`key`: scoped like an API key; `session`: holds every scope;
//! `signature`: named by an operation's `security`). Adding a scheme, OAuth 2.0
//! say, is one entry there: every operation's requirements follow from it, and
//! an `oauth2` scheme's flows get the scope catalog filled in.

use serde_json::{json, Map, Value};

use crate::auth::principal::Access;
use crate::auth::scope::{Scope, ScopeSet};
use crate::domain::event::EventType;
use crate::error::ApiError;

mod errors;
#[cfg(test)]
mod tests;
mod webhooks;

use errors::*;
use webhooks::*;

const OPERATIONS: &str = include_str!("../operations.json");
const COMPONENTS: &str = include_str!("../components.json");
const WEBHOOKS: &str = include_str!("../webhooks.json");
const INFO: &str = include_str!("../info.md");

/// The reference's sections, in the order a reader meets them.
const TAGS: &[(&str, &str)] = &[
    ("accounts", "Sign-up, login and the account behind a credential. Only `GET /api/auth/me` is open to API keys."),
    ("api keys", "Generate, list and revoke keys (sessions only). The plaintext key is in the create response only."),
    ("jes", "Jes (posts): create, read, edit, delete, bounce."),
    ("jesclips", "JesClips (short videos)."),
    ("comments", "Comments and replies on a Jes or JesClip."),
    ("media", "Uploads for a later Jes or JesClip, and the bytes."),
    ("webhooks", "Endpoints attached to an API key: add, list, pause, rotate the secret, test, redeliver, read attempts. The events they receive are under Webhooks."),
    ("key safety", "The calling key's own standing, usage, owner notices and signed leak reports."),
    ("feeds", "Discovery, for sessions only: no API key reaches these, whatever its scopes."),
    ("engagement", "Likes and saves, for sessions only."),
    ("mcp", "The MCP server for API keys and OAuth tokens (Streamable HTTP, JSON-RPC 2.0)."),
    ("oauth", "The authorization server (OAuth 2.1): discovery, client registration, authorization with PKCE, tokens, revocation and the device grant. These endpoints answer in their RFCs' shapes (snake_case, `{\"error\", \"error_description\"}`), not the API's envelope."),
    ("meta", "The API about itself."),
    ("webhook events", "What Jestha POSTs to your endpoints: each event's payload, signed with the Standard Webhooks headers."),
];

/// What the builder needs of a route.
pub struct RouteDoc<'a> {
    pub method: &'a str,
    pub path: &'a str,
    pub access: Access,
    /// Whether the route honours `Idempotency-Key` (`app::idempotent`).
    pub idempotent: bool,
}

/// How a security scheme's credential is treated (its `x-jestha-credential`).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Credential {
    /// Scoped like an API key: an operation's scopes are required of it.
    Key,
    /// A session: holds every scope, and alone reaches session-only routes.
    Session,
    /// Not a bearer credential: only the operations naming it use it.
    Signature,
}

fn credentials(components: &Value) -> Vec<(String, Credential)> {
    let schemes = components["securitySchemes"].as_object().expect("components.json has securitySchemes");
    schemes
        .iter()
        .map(|(name, s)| {
            let kind = match s["x-jestha-credential"].as_str() {
                Some("key") => Credential::Key,
                Some("session") => Credential::Session,
                Some("signature") => Credential::Signature,
                other => panic!("securitySchemes.{name}: x-jestha-credential must be key, session or signature, not {other:?}"),
            };
            (name.clone(), kind)
        })
        .collect()
}

fn names(schemes: &[(String, Credential)], kind: Credential) -> impl Iterator<Item = &str> {
    schemes.iter().filter(move |(_, k)| *k == kind).map(|(n, _)| n.as_str())
}

/// The operation's security requirements: alternatives, keys' first.
fn security(access: Access, op: &Value, schemes: &[(String, Credential)]) -> Value {
    if let Some(name) = op["security"].as_str() {
        return json!([{ name: [] }]);
    }
    let key =
        |scopes: Vec<&str>| -> Vec<Value> { names(schemes, Credential::Key).map(|n| json!({ n: scopes.clone() })).collect() };
    let sessions: Vec<Value> = names(schemes, Credential::Session).map(|n| json!({ n: [] })).collect();
    let alts: Vec<Value> = match access {
        Access::Public => vec![],
        Access::Optional => [vec![json!({})], key(vec![]), sessions].concat(),
        Access::Authenticated => [key(vec![]), sessions].concat(),
        Access::Scopes(s) => [key(ScopeSet::of(s).names()), sessions].concat(),
        // Requirements are alternatives: one per scope.
        Access::AnyScope(s) => {
            let per_scope: Vec<Value> = ScopeSet::of(s).names().into_iter().flat_map(|sc| key(vec![sc])).collect();
            [per_scope, sessions].concat()
        }
        Access::SessionOnly | Access::Operator => sessions,
        Access::KeyOnly | Access::KeyOrToken => key(vec![]),
    };
    Value::Array(alts)
}

fn access_name(access: Access) -> &'static str {
    match access {
        Access::Public => "public",
        Access::Optional => "optional",
        Access::Authenticated => "authenticated",
        Access::Scopes(_) => "scopes",
        Access::AnyScope(_) => "any_scope",
        Access::SessionOnly => "session_only",
        Access::KeyOnly => "key_only",
        Access::KeyOrToken => "key_or_token",
        Access::Operator => "operator",
    }
}

fn header_ref(name: &str) -> Value {
    json!({ "$ref": format!("#/components/headers/{name}") })
}

const RATE_HEADERS: [&str; 5] =
    ["X-RateLimit-Limit", "X-RateLimit-Remaining", "X-RateLimit-Reset", "RateLimit", "RateLimit-Policy"];

/// The response headers: every response has X-Request-Id; a counted
/// request's success or 429 describes the credential's standing (optional
/// where the credential is); a 429 says when to retry.
fn response_headers(route: &RouteDoc<'_>, status: u16, headers: &Value) -> Value {
    let mut h = Map::new();
    h.insert("X-Request-Id".into(), header_ref("X-Request-Id"));
    if route.access != Access::Public && ((200..300).contains(&status) || status == 429) {
        for name in RATE_HEADERS {
            let v = if route.access == Access::Optional {
                let mut inline = headers[name].clone();
                inline["required"] = json!(false);
                inline
            } else {
                header_ref(name)
            };
            h.insert(name.into(), v);
        }
    }
    if status == 429 {
        h.insert("Retry-After".into(), header_ref("Retry-After"));
    }
    // A 401 always challenges; a 403 does when its code is insufficient_scope.
    if status == 401 {
        h.insert("WWW-Authenticate".into(), header_ref("WWW-Authenticate"));
    } else if status == 403 && route.access != Access::Public {
        let mut inline = headers["WWW-Authenticate"].clone();
        inline["required"] = json!(false);
        h.insert("WWW-Authenticate".into(), inline);
    }
    if route.idempotent && (200..300).contains(&status) {
        h.insert("Idempotent-Replayed".into(), header_ref("Idempotent-Replayed"));
    }
    Value::Object(h)
}

fn schema_ref(v: &Value) -> Value {
    match v {
        Value::String(name) => json!({ "$ref": format!("#/components/schemas/{name}") }),
        other => other.clone(),
    }
}

/// `{name}` parameters of a path, each with the reusable parameter that
/// documents it: `{id}` by the segment before it.
fn path_parameters(path: &str) -> Vec<Value> {
    let segs: Vec<&str> = path.split('/').collect();
    segs.iter()
        .enumerate()
        .filter_map(|(i, seg)| seg.strip_prefix('{').and_then(|s| s.strip_suffix('}')).map(|name| (i, name)))
        .map(|(i, name)| {
            let component = match (name, segs[i - 1]) {
                ("id", "posts") => "JesId",
                ("id", "jesclips") => "JesClipId",
                ("id", "api-keys") => "KeyId",
                ("id", "media") => "MediaId",
                ("id", "uploads") => "UploadId",
                ("id", "sessions") => "SessionId",
                ("id", "accounts") => "AccountId",
                ("id", "grants") => "GrantId",
                ("webhookId", _) => "WebhookId",
                ("username", _) => "Username",
                ("hub", _) => "Hub",
                (other, before) => {
                    panic!("{path}: no parameter documents {{{other}}} after /{before}/")
                }
            };
            json!({ "$ref": format!("#/components/parameters/{component}") })
        })
        .collect()
}

fn operation(
    route: &RouteDoc<'_>,
    op: &Value,
    schemes: &[(String, Credential)],
    headers: &Value,
    shared: &mut Map<String, Value>,
) -> Value {
    let key = format!("{} {}", route.method, route.path);
    let mut o = Map::new();
    o.insert("operationId".into(), op["operationId"].clone());
    o.insert("summary".into(), op["summary"].clone());
    if let Some(d) = op.get("description") {
        o.insert("description".into(), d.clone());
    }
    o.insert("tags".into(), op["tags"].clone());
    let mut params = path_parameters(route.path);
    for q in op["query"].as_array().into_iter().flatten().filter_map(Value::as_str) {
        params.push(json!({ "$ref": format!("#/components/parameters/{q}") }));
    }
    if route.idempotent {
        params.push(json!({ "$ref": "#/components/parameters/Idempotency-Key" }));
    }
    if !params.is_empty() {
        o.insert("parameters".into(), Value::Array(params));
    }
    let examples = &op["examples"];
    let has_body = op.get("request").is_some();
    if let Some(req) = op.get("request") {
        // A schema name is a JSON body; an object maps media types to schemas.
        let media: Vec<(String, &Value)> = match req {
            Value::Object(m) => m.iter().map(|(k, v)| (k.clone(), v)).collect(),
            other => vec![("application/json".to_string(), other)],
        };
        let mut content = Map::new();
        for (m, schema) in media {
            let mut c = json!({ "schema": schema_ref(schema) });
            if m == "application/json" {
                let ex = examples.get("request").unwrap_or_else(|| panic!("{key}: a JSON request needs examples.request"));
                c["example"] = ex.clone();
            } else if m == "application/x-www-form-urlencoded" {
                // OAuth's forms: the fields as a JSON object, as OpenAPI shows a form.
                if let Some(ex) = examples.get("request") {
                    c["example"] = ex.clone();
                }
            }
            content.insert(m, c);
        }
        o.insert(
            "requestBody".into(),
            json!({ "required": !op["requestOptional"].as_bool().unwrap_or(false), "content": content }),
        );
    }
    let mut responses = Map::new();
    for (status, schema) in op["responses"].as_object().into_iter().flatten() {
        let code: u16 = status.parse().unwrap_or_else(|_| panic!("{key}: response {status}"));
        let mut r = json!({ "description": op["responseDescriptions"][status].as_str().unwrap_or_else(|| op["summary"].as_str().unwrap_or_default()) });
        if !schema.is_null() {
            // JSON unless the operation names its media types (the bytes of an upload).
            let media: Vec<&str> = match &op["responseMedia"] {
                Value::Array(a) => a.iter().filter_map(Value::as_str).collect(),
                _ => vec!["application/json"],
            };
            let mut content = Map::new();
            for m in media {
                let mut c = json!({ "schema": schema_ref(schema) });
                if let Some(ex) = examples.get(status.as_str()) {
                    c["example"] = ex.clone();
                }
                content.insert(m.to_string(), c);
            }
            r["content"] = Value::Object(content);
        }
        r["headers"] = response_headers(route, code, headers);
        responses.insert(status.clone(), r);
    }
    for (status, errors) in errors_of(route, op, has_body) {
        let s = status.to_string();
        assert!(!responses.contains_key(&s), "{key}: {s} is an error status: name its code under errors");
        let response = error_response(&errors, response_headers(route, status, headers));
        let value = match shared_response(route, op, status, has_body) {
            Some(name) => {
                let first = shared.entry(name).or_insert_with(|| response.clone());
                assert!(*first == response, "{key}: {s} differs from components.responses.{name}: give it another name");
                json!({ "$ref": format!("#/components/responses/{name}") })
            }
            None => response,
        };
        responses.insert(s, value);
    }
    // Statuses in ascending order, as readers and generators expect.
    let mut sorted: Vec<(String, Value)> = responses.into_iter().collect();
    sorted.sort_by(|a, b| a.0.cmp(&b.0));
    o.insert("responses".into(), Value::Object(sorted.into_iter().collect()));
    o.insert("security".into(), security(route.access, op, schemes));
    o.insert("x-jestha-access".into(), json!(access_name(route.access)));
    if op["oauth"] == true {
        o.insert("x-oauth".into(), json!(true));
    }
    match route.access {
        Access::Scopes(s) => {
            o.insert("x-required-scopes".into(), json!(ScopeSet::of(s).names()));
        }
        Access::AnyScope(s) => {
            o.insert("x-any-of-scopes".into(), json!(ScopeSet::of(s).names()));
        }
        _ => {}
    }
    Value::Object(o)
}

/// The whole document, from these route docs and the committed JSON files.
/// Routes without an entry in `operations.json` are left out here; the
/// native test makes that impossible to ship.
pub fn document(routes: &[RouteDoc<'_>]) -> Value {
    let components: Value = serde_json::from_str(COMPONENTS).expect("components.json is valid JSON");
    document_with(routes, components)
}

fn document_with(routes: &[RouteDoc<'_>], mut components: Value) -> Value {
    let ops: Value = serde_json::from_str(OPERATIONS).expect("operations.json is valid JSON");
    let events: Value = serde_json::from_str(WEBHOOKS).expect("webhooks.json is valid JSON");
    let catalog: Map<String, Value> = Scope::ALL.iter().map(|s| (s.as_str().to_string(), json!(s.info().description))).collect();
    // Generated from the code, so they cannot drift: scopes, event types, error codes.
    let schemas = components["schemas"].as_object_mut().expect("components.json has schemas");
    schemas.insert("Scope".into(), json!({
        "type": "string",
        "enum": Scope::ALL.iter().map(|s| s.as_str()).collect::<Vec<_>>(),
        "description": Scope::ALL.iter().map(|s| format!("- `{}`: {}", s.as_str(), s.info().description)).collect::<Vec<_>>().join("\n"),
    }));
    schemas.insert(
        "WebhookEventType".into(),
        json!({ "type": "string", "enum": EventType::ALL.iter().map(|e| e.as_str()).collect::<Vec<_>>() }),
    );
    schemas.insert(
        "ErrorCode".into(),
        json!({
            "type": "string",
            "enum": error_codes(),
            "description": "Every code of the error envelope. New codes may be added: handle an unknown one by its HTTP status.",
        }),
    );
    let hooks = webhooks(&events, schemas);
    for scheme in components["securitySchemes"].as_object_mut().expect("securitySchemes").values_mut() {
        if scheme["type"] == "oauth2" {
            for flow in scheme["flows"].as_object_mut().into_iter().flat_map(|f| f.values_mut()) {
                flow["scopes"] = Value::Object(catalog.clone());
            }
        }
    }
    let schemes = credentials(&components);
    let mut paths = Map::new();
    let mut shared = Map::new();
    for r in routes {
        let Some(op) = ops.get(format!("{} {}", r.method, r.path)) else {
            continue;
        };
        let entry = paths.entry(r.path.to_string()).or_insert_with(|| json!({}));
        entry[r.method.to_lowercase()] = operation(r, op, &schemes, &components["headers"], &mut shared);
    }
    let mut shared: Vec<(String, Value)> = shared.into_iter().collect();
    shared.sort_by(|a, b| a.0.cmp(&b.0));
    components["responses"] = Value::Object(shared.into_iter().collect());
    json!({
        "openapi": "3.1.0",
        "info": {
            "title": "Jestha Edge API",
            "version": env!("CARGO_PKG_VERSION"),
            "summary": "Jes, JesClips, comments and bounces, with scoped API keys.",
            "description": INFO,
        },
        "servers": [{ "url": "/", "description": "This deployment (the document is served by the API it describes)" }],
        "tags": TAGS.iter().map(|(name, description)| json!({ "name": name, "description": description })).collect::<Vec<_>>(),
        "paths": paths,
        "webhooks": hooks,
        "components": components,
    })
}

/// Every `(method, path)` key of `operations.json`.
pub fn documented() -> Vec<String> {
    let ops: Value = serde_json::from_str(OPERATIONS).expect("operations.json is valid JSON");
    ops.as_object().map(|m| m.keys().cloned().collect()).unwrap_or_default()
}
