//! Builds the OpenAPI 3.1 document from the route table itself: paths, methods,
//! access, scopes and which POSTs honour `Idempotency-Key` come from
//! `app::routes()`; summaries, schemas and examples from `operations.json` and
//! `components.json`; the webhook events from `events::EventType::ALL` and
//! `webhooks.json`; error examples from `ApiError` itself, so their bodies are
//! the ones the API sends. Native only: the Worker serves the committed result
//! (`public/openapi.json`, a static asset), and the tests below fail if the
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
use crate::auth::token::{self, TokenKind};
use crate::domain::event::EventType;
use crate::error::ApiError;

const OPERATIONS: &str = include_str!("operations.json");
const COMPONENTS: &str = include_str!("components.json");
const WEBHOOKS: &str = include_str!("webhooks.json");
const INFO: &str = include_str!("info.md");

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
    ("mcp", "The MCP server for API keys (Streamable HTTP, JSON-RPC 2.0)."),
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
        Access::SessionOnly => sessions,
        Access::KeyOnly => key(vec![]),
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
    }
}

/// Every code the envelope carries, each with an example of the error.
/// `range_not_satisfiable` is answered by the media route itself (a 416 is
/// not an `ApiError`).
fn every_error() -> Vec<ApiError> {
    use ApiError::*;
    // A new variant does not compile until this match, and so the list below, names it.
    let _exhaustive = |e: &ApiError| match e {
        InvalidRequest(_)
        | Unauthenticated
        | InvalidApiKey
        | ApiKeyRevoked
        | ApiKeyExpired
        | InvalidSession
        | InvalidCredentials
        | IpNotAllowed
        | InsufficientScope(_)
        | InsufficientAnyScope(_)
        | SessionOnly
        | Forbidden(_)
        | NotFound
        | MethodNotAllowed
        | Conflict(_)
        | IdempotencyInFlight
        | PayloadTooLarge(_)
        | UnsupportedMediaType(_)
        | IdempotencyKeyReused
        | RateLimited { .. }
        | QuotaExceeded { .. }
        | TooManyAttempts { .. }
        | Internal(_) => (),
    };
    vec![
        InvalidRequest("content: at most 500 characters".into()),
        Unauthenticated,
        InvalidApiKey,
        ApiKeyRevoked,
        ApiKeyExpired,
        InvalidSession,
        InvalidCredentials,
        IpNotAllowed,
        InsufficientScope(vec!["write:jes"]),
        InsufficientAnyScope(vec!["write:jes", "write:jesclip"]),
        SessionOnly,
        Forbidden("You can only edit your own Jes".into()),
        NotFound,
        MethodNotAllowed,
        Conflict("username or email already taken".into()),
        IdempotencyInFlight,
        PayloadTooLarge("JSON body larger than 65536 bytes".into()),
        UnsupportedMediaType("Content-Type must be application/json".into()),
        IdempotencyKeyReused,
        RateLimited { retry_after: 42 },
        QuotaExceeded { retry_after: 30000 },
        TooManyAttempts { retry_after: 600 },
        Internal(String::new()),
    ]
}

/// Every error code, in the order of the contract's table.
pub fn error_codes() -> Vec<&'static str> {
    let mut codes: Vec<&'static str> = vec![];
    for e in every_error() {
        if !codes.contains(&e.code()) {
            codes.push(e.code());
        }
    }
    codes.push("range_not_satisfiable");
    codes
}

/// One documented error answer: its status and the envelope it carries.
struct ErrorExample {
    status: u16,
    code: &'static str,
    message: String,
    body: Value,
    /// When it happens, if the code alone does not say.
    note: Option<&'static str>,
}

impl ErrorExample {
    fn of(e: ApiError, note: Option<&'static str>) -> ErrorExample {
        let body = serde_json::from_slice(&e.body()).expect("an ApiError body is JSON");
        ErrorExample { status: e.status().as_u16(), code: e.code(), message: e.message(), body, note }
    }
}

/// An operation's own errors (`errors` in operations.json: code -> message).
fn named_error(code: &str, message: &str) -> ErrorExample {
    let e = match code {
        "invalid_request" => ApiError::InvalidRequest(message.into()),
        "forbidden" => ApiError::Forbidden(message.into()),
        "conflict" => ApiError::Conflict(message.into()),
        "payload_too_large" => ApiError::PayloadTooLarge(message.into()),
        "unsupported_media_type" => ApiError::UnsupportedMediaType(message.into()),
        "invalid_credentials" => ApiError::InvalidCredentials,
        "rate_limited" => ApiError::TooManyAttempts { retry_after: 600 },
        // Answered by the media route itself, not an ApiError.
        "range_not_satisfiable" => {
            let body = json!({ "error": { "code": "range_not_satisfiable", "message": message } });
            return ErrorExample { status: 416, code: "range_not_satisfiable", message: message.into(), body, note: None };
        }
        other => panic!("operations.json: no example for error code {other}"),
    };
    ErrorExample::of(e, None)
}

/// The errors an operation can answer, by status, from its access, its
/// inputs and its own `errors`.
fn errors_of(route: &RouteDoc<'_>, op: &Value, has_body: bool) -> Vec<(u16, Vec<ErrorExample>)> {
    use ApiError::*;
    let mut by_status: Vec<(u16, Vec<ErrorExample>)> = vec![];
    let mut put = |x: ErrorExample| match by_status.iter_mut().find(|(s, _)| *s == x.status) {
        Some((_, list)) => {
            if !list.iter().any(|y| y.code == x.code && y.message == x.message) {
                list.push(x);
            }
        }
        None => by_status.push((x.status, vec![x])),
    };
    let mut add = |e: ApiError, note: Option<&'static str>| put(ErrorExample::of(e, note));
    let a = route.access;
    let guarded = a != Access::Public;
    let keys = matches!(a, Access::Optional | Access::Authenticated | Access::Scopes(_) | Access::AnyScope(_) | Access::KeyOnly);
    let sessions = !matches!(a, Access::Public | Access::KeyOnly);
    let unsafe_method = route.method != "GET";
    if has_body {
        add(
            InvalidRequest("body: malformed JSON (expected value at line 1 column 1)".into()),
            Some("the message names the field"),
        );
    } else if route.path.contains('{') || op.get("query").is_some() || guarded {
        add(InvalidRequest("limit: must be an integer from 1 to 100".into()), Some("a parameter or header is invalid"));
    }
    if guarded {
        add(Unauthenticated, None);
        add(InvalidApiKey, Some("wrong format, bad checksum, unknown or a canary key"));
        add(ApiKeyRevoked, None);
        add(ApiKeyExpired, None);
        add(InvalidSession, None);
        if keys {
            add(IpNotAllowed, None);
        }
        match a {
            Access::Scopes(s) => {
                add(InsufficientScope(ScopeSet::of(s).names()), Some("an API key without the operation's scopes"))
            }
            Access::AnyScope(s) => add(InsufficientAnyScope(ScopeSet::of(s).names()), Some("an API key with none of the scopes")),
            Access::SessionOnly => add(SessionOnly, Some("any API key, whatever its scopes")),
            Access::KeyOnly => add(Forbidden("This endpoint is for API keys, not sessions".into()), Some("a session")),
            _ => {}
        }
        if sessions && unsafe_method {
            add(Forbidden("CSRF token missing or invalid".into()), Some("the session cookie without X-CSRF-Token"));
        }
    }
    if op["security"].is_string() {
        add(Unauthenticated, Some("no valid signature by a trusted key"));
    }
    add(NotFound, Some("an unknown id, or something the caller may not see"));
    if route.idempotent {
        add(IdempotencyInFlight, Some("the same Idempotency-Key while the first request runs"));
        add(IdempotencyKeyReused, Some("the same Idempotency-Key with a different request"));
    }
    if has_body {
        add(PayloadTooLarge("JSON body larger than 65536 bytes".into()), None);
        add(UnsupportedMediaType("Content-Type must be application/json".into()), None);
    }
    if guarded {
        add(RateLimited { retry_after: 42 }, Some("the per-minute limit"));
        if keys {
            add(QuotaExceeded { retry_after: 30000 }, Some("the daily quota (API keys)"));
        }
    }
    add(Internal(String::new()), Some("logged with the request id"));
    // An operation's own errors: code -> message, or a list of messages.
    for (code, messages) in op["errors"].as_object().into_iter().flatten() {
        let list = match messages {
            Value::Array(a) => a.iter().filter_map(Value::as_str).collect(),
            other => vec![other.as_str().unwrap_or_default()],
        };
        for message in list {
            put(named_error(code, message));
        }
    }
    by_status
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

fn error_response(errors: &[ErrorExample], headers: Value) -> Value {
    let listed: Vec<String> = errors
        .iter()
        .map(|e| match e.note {
            Some(n) => format!("`{}` ({n})", e.code),
            None => format!("`{}`", e.code),
        })
        .collect();
    let mut examples = Map::new();
    for e in errors {
        let mut name = e.code.to_string();
        let mut n = 2;
        while examples.contains_key(&name) {
            name = format!("{}_{n}", e.code);
            n += 1;
        }
        examples.insert(name, json!({ "summary": e.message, "value": e.body }));
    }
    json!({
        "description": listed.join(", "),
        "headers": headers,
        "content": { "application/json": {
            "schema": { "$ref": "#/components/schemas/Error" },
            "examples": examples,
        } },
    })
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

/// The name under `components.responses` of an error answer that is the same
/// wherever it occurs, so operations refer to it instead of repeating it
/// (it is most of the document otherwise). Decided by the route, not by which
/// operation comes first; an operation's own errors at a status keep that
/// status inline. `None`: inline.
fn shared_response(route: &RouteDoc<'_>, op: &Value, status: u16, has_body: bool) -> Option<&'static str> {
    let own = op["errors"].as_object().into_iter().flatten().any(|(code, _)| named_error(code, "").status == status);
    let guarded = route.access != Access::Public;
    let keys = route.access != Access::SessionOnly;
    match status {
        _ if own => None,
        400 if has_body => Some("InvalidBody"),
        400 => Some("InvalidParameter"),
        401 if guarded => Some("Unauthorized"),
        404 => Some("NotFound"),
        413 => Some("PayloadTooLarge"),
        415 => Some("UnsupportedMediaType"),
        422 => Some("IdempotencyKeyReused"),
        // Optional credentials declare their rate headers inline, as optional.
        429 if guarded && route.access != Access::Optional && keys => Some("TooManyRequests"),
        429 if guarded && !keys => Some("TooManyRequestsSession"),
        500 => Some("InternalError"),
        _ => None,
    }
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

/// `key.quota_threshold` -> `KeyQuotaThreshold`
fn event_name(event: &str) -> String {
    event
        .split(['.', '_'])
        .map(|w| {
            let mut c = w.chars();
            c.next().map(|f| f.to_ascii_uppercase().to_string() + c.as_str()).unwrap_or_default()
        })
        .collect()
}

/// The `webhooks` section: one entry per event type, its payload a schema of
/// its own (`…Event`, added to `schemas`), signed with the Standard Webhooks headers.
fn webhooks(events: &Value, schemas: &mut Map<String, Value>) -> Value {
    let mut out = Map::new();
    for kind in EventType::ALL {
        let name = kind.as_str();
        let e = events.get(name).unwrap_or_else(|| panic!("webhooks.json has no {name}"));
        let schema = format!("{}Event", event_name(name));
        let data = schema_ref(&e["data"]);
        schemas.insert(
            schema.clone(),
            json!({
                "type": "object",
                "description": format!("The `{name}` payload."),
                "required": ["id", "type", "createdAt", "data"],
                "properties": {
                    "id": { "type": "string", "pattern": "^evt_", "description": "The event id: also the webhook-id header, the same on every retry. De-duplicate on it." },
                    "type": { "const": name },
                    "createdAt": { "type": "string", "format": "date-time" },
                    "data": data,
                },
            }),
        );
        let payload = json!({ "id": "evt_01KBZ8W6Y5J0M4Q9T2R7HNXC3D", "type": name, "createdAt": "2026-12-04T15:30:00.000Z", "data": e["example"] });
        let mut description = e["description"].as_str().unwrap_or_default().to_string();
        description.push_str(if kind.is_key_event() {
            "\n\nA notice about one key: delivered to that key's own endpoints only, whatever its scopes."
        } else {
            ""
        });
        out.insert(
            name.to_string(),
            json!({ "post": {
                "operationId": format!("on{}", event_name(name)),
                "summary": e["summary"],
                "description": description,
                "tags": ["webhook events"],
                "parameters": [
                    { "$ref": "#/components/parameters/webhook-id" },
                    { "$ref": "#/components/parameters/webhook-timestamp" },
                    { "$ref": "#/components/parameters/webhook-signature" },
                    { "$ref": "#/components/parameters/User-Agent" },
                ],
                "requestBody": { "required": true, "content": { "application/json": {
                    "schema": { "$ref": format!("#/components/schemas/{schema}") },
                    "example": payload,
                } } },
                "responses": {
                    "2XX": { "description": "Delivered. Answer within 15 seconds; do the work afterwards." },
                    "410": { "description": "Gone: the endpoint is disabled at once (re-enable it with PATCH {\"enabled\": true})." },
                    "default": { "description": "Any other answer, or none: retried on the backoff schedule, then given up (and redeliverable)." },
                },
                "security": [],
            } }),
        );
    }
    Value::Object(out)
}

/// The example credentials the document shows, made by the token module
/// itself from fixed bytes (so the committed document does not drift): well
/// formed, checksum included, and obviously an example (`jes_live_0123…`).
/// No source file holds a credential literal that a secret scanner matches.
fn example_credential(kind: TokenKind, first_byte: u8) -> String {
    let mut next = first_byte;
    token::generate(kind, |buf| {
        for b in buf.iter_mut() {
            *b = next % 62;
            next = next.wrapping_add(1);
        }
    })
}

/// Replaces operations.json's `{example api key}`, `{example masked key}` and
/// `{example session token}` placeholders, wherever they stand.
fn fill_example_credentials(value: &mut Value) {
    let key = example_credential(TokenKind::ApiKey, 0);
    let session = example_credential(TokenKind::Session, 30);
    let mut fill = |v: &mut Value| match v.as_str() {
        Some("{example api key}") => *v = json!(key),
        Some("{example masked key}") => *v = json!(token::mask(&key)),
        Some("{example session token}") => *v = json!(session),
        _ => {}
    };
    fn walk(v: &mut Value, fill: &mut impl FnMut(&mut Value)) {
        match v {
            Value::Array(items) => items.iter_mut().for_each(|i| walk(i, fill)),
            Value::Object(map) => map.values_mut().for_each(|i| walk(i, fill)),
            _ => fill(v),
        }
    }
    walk(value, &mut fill);
}

/// The whole document, from these route docs and the committed JSON files.
/// Routes without an entry in `operations.json` are left out here; the
/// native test makes that impossible to ship.
pub fn document(routes: &[RouteDoc<'_>]) -> Value {
    let components: Value = serde_json::from_str(COMPONENTS).expect("components.json is valid JSON");
    document_with(routes, components)
}

fn document_with(routes: &[RouteDoc<'_>], mut components: Value) -> Value {
    let mut ops: Value = serde_json::from_str(OPERATIONS).expect("operations.json is valid JSON");
    fill_example_credentials(&mut ops);
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::app::{idempotent, routes};

    fn table() -> Vec<(String, String, Access, bool)> {
        routes()
            .iter()
            .map(|r| (r.method.to_string(), r.path.to_string(), r.access, idempotent(&r.method, r.path, r.access)))
            .collect()
    }

    fn docs(t: &[(String, String, Access, bool)]) -> Vec<RouteDoc<'_>> {
        t.iter().map(|(m, p, a, i)| RouteDoc { method: m, path: p, access: *a, idempotent: *i }).collect()
    }

    fn doc() -> Value {
        document(&docs(&table()))
    }

    /// Every operation object of the document, with its method and path.
    fn operations(d: &Value) -> Vec<(String, String, &Value)> {
        let mut out = vec![];
        for (path, item) in d["paths"].as_object().unwrap() {
            for (method, op) in item.as_object().unwrap() {
                out.push((method.to_uppercase(), path.clone(), op));
            }
        }
        out
    }

    /// Resolves a local `$ref` (one level), or returns the value itself.
    fn resolve<'a>(d: &'a Value, v: &'a Value) -> &'a Value {
        match v["$ref"].as_str() {
            Some(r) => d.pointer(r.trim_start_matches('#')).unwrap_or_else(|| panic!("dangling {r}")),
            None => v,
        }
    }

    #[test]
    fn every_route_is_documented_and_every_operation_is_a_route() {
        let keys: Vec<String> = table().iter().map(|(m, p, _, _)| format!("{m} {p}")).collect();
        let documented = documented();
        let missing: Vec<_> = keys.iter().filter(|k| !documented.contains(k)).collect();
        let stale: Vec<_> = documented.iter().filter(|k| !keys.contains(k)).collect();
        assert!(missing.is_empty(), "routes without an operation in operations.json: {missing:?}");
        assert!(stale.is_empty(), "operations without a route: {stale:?}");
    }

    fn refs(v: &Value, out: &mut Vec<String>) {
        match v {
            Value::Object(m) => {
                if let Some(Value::String(r)) = m.get("$ref") {
                    out.push(r.clone());
                }
                m.values().for_each(|x| refs(x, out));
            }
            Value::Array(a) => a.iter().for_each(|x| refs(x, out)),
            _ => {}
        }
    }

    /// `UPDATE_OPENAPI=1 cargo test --lib openapi` rewrites the committed file.
    #[test]
    fn the_committed_document_is_the_one_the_table_builds() {
        let built = serde_json::to_string(&doc()).unwrap() + "\n";
        if std::env::var_os("UPDATE_OPENAPI").is_some() {
            let path = concat!(env!("CARGO_MANIFEST_DIR"), "/public/openapi.json");
            std::fs::write(path, &built).unwrap();
            return;
        }
        assert!(super::super::DOCUMENT == built, "public/openapi.json is stale: run UPDATE_OPENAPI=1 cargo test --lib openapi");
    }

    #[test]
    fn every_reference_resolves() {
        let d = doc();
        let mut all = vec![];
        refs(&d, &mut all);
        assert!(all.len() > 100);
        for r in all {
            let target = r.strip_prefix('#').expect("local refs only");
            assert!(d.pointer(target).is_some(), "dangling {r}");
        }
    }

    #[test]
    fn the_route_table_schema_names_every_access_the_table_uses() {
        let d = doc();
        let allowed = &d["components"]["schemas"]["RouteTable"]["properties"]["items"]["items"]["properties"]["access"]["enum"];
        for (m, p, a, _) in table() {
            assert!(allowed.as_array().unwrap().contains(&json!(access_name(a))), "{m} {p}: {} undocumented", access_name(a));
        }
    }

    #[test]
    fn scoped_operations_list_their_scopes_for_api_keys() {
        let d = doc();
        for (m, p, a, _) in table() {
            let op = &d["paths"][&p][m.to_lowercase()];
            if let Access::Scopes(s) = a {
                assert_eq!(op["security"][0]["apiKey"], json!(ScopeSet::of(s).names()), "{m} {p}");
            }
            if a == Access::SessionOnly {
                assert!(op["security"].as_array().unwrap().iter().all(|s| s.get("apiKey").is_none()), "{m} {p}");
            }
        }
    }

    #[test]
    fn operation_ids_are_present_and_unique() {
        let d = doc();
        let mut seen = std::collections::HashSet::new();
        for (m, p, op) in operations(&d) {
            let id = op["operationId"].as_str().unwrap_or_else(|| panic!("{m} {p}: no operationId"));
            assert!(
                id.chars().all(|c| c.is_ascii_alphanumeric()) && id.starts_with(|c: char| c.is_ascii_lowercase()),
                "{m} {p}: {id}"
            );
            assert!(seen.insert(id.to_string()), "{m} {p}: operationId {id} twice");
        }
    }

    /// Every operation shows examples of what it takes and answers: every
    /// parameter, JSON request body and JSON success body has one, every
    /// error status one per code (so an operation with neither input nor
    /// answer body, like a logout, shows its errors').
    #[test]
    fn every_operation_has_examples() {
        let d = doc();
        for (m, p, op) in operations(&d) {
            let mut count = 0;
            for param in op["parameters"].as_array().into_iter().flatten() {
                let param = resolve(&d, param);
                assert!(param.get("example").is_some(), "{m} {p}: parameter {} has no example", param["name"]);
                count += 1;
            }
            for (media, c) in op["requestBody"]["content"].as_object().into_iter().flatten() {
                if media == "application/json" {
                    assert!(c.get("example").is_some(), "{m} {p}: request has no example");
                    count += 1;
                }
            }
            for (status, r) in op["responses"].as_object().unwrap() {
                let r = resolve(&d, r);
                let json_body = r["content"].get("application/json");
                if status.starts_with('2') {
                    if let Some(c) = json_body {
                        assert!(c.get("example").is_some(), "{m} {p}: {status} has no example");
                        count += 1;
                    }
                } else if let Some(c) = json_body {
                    assert!(!c["examples"].as_object().unwrap().is_empty(), "{m} {p}: {status} has no example");
                }
            }
            let bodiless =
                op["responses"].as_object().unwrap().iter().all(|(s, r)| !s.starts_with('2') || r.get("content").is_none());
            assert!(count > 0 || bodiless && op.get("requestBody").is_none(), "{m} {p}: no example besides its errors");
        }
    }

    #[test]
    fn every_post_that_honours_idempotency_key_declares_it_and_no_other_operation_does() {
        let d = doc();
        let mut declared = 0;
        for (m, p, _, idem) in table() {
            let op = &d["paths"][&p][m.to_lowercase()];
            let has = op["parameters"].as_array().into_iter().flatten().any(|x| resolve(&d, x)["name"] == "Idempotency-Key");
            assert_eq!(has, idem, "{m} {p}");
            if idem {
                declared += 1;
                for status in ["409", "422"] {
                    let codes =
                        resolve(&d, &op["responses"][status])["content"]["application/json"]["examples"].as_object().unwrap();
                    assert!(codes.keys().any(|k| k.starts_with("idempotency_")), "{m} {p}: {status} lacks the idempotency error");
                }
                let ok = op["responses"].as_object().unwrap().iter().find(|(s, _)| s.starts_with('2')).unwrap().1;
                assert!(ok["headers"].get("Idempotent-Replayed").is_some(), "{m} {p}");
            }
        }
        assert!(declared >= 10, "{declared}");
    }

    #[test]
    fn error_responses_are_the_envelope_and_name_their_codes_by_status() {
        let d = doc();
        let all = error_codes();
        for (m, p, op) in operations(&d) {
            for (status, r) in op["responses"].as_object().unwrap() {
                let r = resolve(&d, r);
                let code: u16 = status.parse().unwrap();
                if code < 400 {
                    continue;
                }
                let c = &r["content"]["application/json"];
                assert_eq!(c["schema"]["$ref"], "#/components/schemas/Error", "{m} {p} {status}");
                for (name, ex) in c["examples"].as_object().unwrap() {
                    let body = &ex["value"]["error"];
                    let ec = body["code"].as_str().unwrap();
                    assert!(all.contains(&ec), "{m} {p} {status}: unknown code {ec}");
                    assert!(
                        name.starts_with(ec) && r["description"].as_str().unwrap().contains(&format!("`{ec}`")),
                        "{m} {p} {status}: {name}"
                    );
                    assert_eq!(body.get("retryAfter").is_some(), code == 429, "{m} {p} {status}");
                }
            }
        }
    }

    #[test]
    fn counted_answers_declare_the_rate_limit_headers_and_429_retry_after() {
        let d = doc();
        for (m, p, op) in operations(&d) {
            let counted = op["x-jestha-access"] != "public";
            for (status, r) in op["responses"].as_object().unwrap() {
                let h = &resolve(&d, r)["headers"];
                assert!(h.get("X-Request-Id").is_some(), "{m} {p} {status}");
                let ok = status.starts_with('2');
                for name in RATE_HEADERS {
                    assert_eq!(h.get(name).is_some(), counted && (ok || status == "429"), "{m} {p} {status} {name}");
                }
                assert_eq!(h.get("Retry-After").is_some(), status == "429", "{m} {p} {status}");
            }
            if counted {
                assert!(op["responses"].get("429").is_some(), "{m} {p}");
            }
        }
        for name in RATE_HEADERS.iter().chain(&["Retry-After", "X-Request-Id", "Idempotent-Replayed"]) {
            let h = &d["components"]["headers"][*name];
            assert!(h["schema"].is_object() && h["description"].is_string() && h.get("example").is_some(), "{name}");
        }
    }

    #[test]
    fn every_error_code_is_in_the_error_code_schema() {
        let d = doc();
        let listed: Vec<&str> =
            d["components"]["schemas"]["ErrorCode"]["enum"].as_array().unwrap().iter().map(|v| v.as_str().unwrap()).collect();
        for e in every_error() {
            assert!(listed.contains(&e.code()), "{}", e.code());
        }
        assert_eq!(listed.len(), 22, "{listed:?}");
    }

    #[test]
    fn every_event_type_is_a_webhook_with_its_payload_schema_and_the_signature_headers() {
        let d = doc();
        let hooks = d["webhooks"].as_object().unwrap();
        assert_eq!(hooks.len(), EventType::ALL.len());
        for kind in EventType::ALL {
            let op = &hooks[kind.as_str()]["post"];
            let schema = resolve(&d, &op["requestBody"]["content"]["application/json"]["schema"]);
            assert_eq!(schema["properties"]["type"]["const"], kind.as_str());
            assert_eq!(op["requestBody"]["content"]["application/json"]["example"]["type"], kind.as_str());
            let headers: Vec<&Value> = op["parameters"].as_array().unwrap().iter().map(|p| resolve(&d, p)).collect();
            for name in ["webhook-id", "webhook-timestamp", "webhook-signature"] {
                let h = headers.iter().find(|h| h["name"] == name).unwrap_or_else(|| panic!("{}: no {name}", kind.as_str()));
                assert_eq!((h["in"].as_str(), h["required"].as_bool()), (Some("header"), Some(true)));
            }
        }
        let types = &d["components"]["schemas"]["WebhookEventType"]["enum"];
        assert_eq!(types.as_array().unwrap().len(), EventType::ALL.len());
    }

    /// Adding a credential is one entry in components.json: an OAuth 2.0
    /// scheme marked `key` is offered, with the scopes, wherever keys are.
    #[test]
    fn a_new_key_like_scheme_is_one_entry_and_every_operation_follows() {
        let mut components: Value = serde_json::from_str(COMPONENTS).unwrap();
        components["securitySchemes"]["oauth"] = json!({
            "type": "oauth2",
            "x-jestha-credential": "key",
            "flows": { "authorizationCode": { "authorizationUrl": "/oauth/authorize", "tokenUrl": "/oauth/token", "scopes": {} } },
        });
        let t = table();
        let d = document_with(&docs(&t), components);
        let flows = &d["components"]["securitySchemes"]["oauth"]["flows"]["authorizationCode"]["scopes"];
        assert_eq!(flows.as_object().unwrap().len(), Scope::ALL.len());
        for (m, p, a, _) in &t {
            let sec = d["paths"][p][m.to_lowercase()]["security"].as_array().unwrap().clone();
            let oauth: Vec<&Value> = sec.iter().filter_map(|s| s.get("oauth")).collect();
            match a {
                Access::Scopes(s) => {
                    assert_eq!(oauth, vec![&json!(ScopeSet::of(s).names())], "{m} {p}")
                }
                Access::SessionOnly | Access::Public => assert!(oauth.is_empty(), "{m} {p}"),
                _ => assert!(!oauth.is_empty(), "{m} {p}"),
            }
        }
    }

    /// Where `text` holds a whole credential (`jes_live_`/`jes_sess_` and 36
    /// letters or digits), the one a secret scanner would report.
    fn credential_literals(text: &str) -> Vec<String> {
        let mut found = Vec::new();
        for kind in [TokenKind::ApiKey, TokenKind::Session] {
            for (at, _) in text.match_indices(kind.prefix()) {
                let body = &text[at + kind.prefix().len()..];
                if body.len() >= 36 && body.bytes().take(36).all(|b| b.is_ascii_alphanumeric()) {
                    found.push(text[at..at + kind.prefix().len() + 36].to_string());
                }
            }
        }
        found
    }

    #[test]
    fn the_sources_hold_no_credential_and_the_document_shows_well_formed_examples() {
        for (name, text) in [("operations.json", OPERATIONS), ("components.json", COMPONENTS), ("webhooks.json", WEBHOOKS)] {
            assert_eq!(credential_literals(text), Vec::<String>::new(), "{name}");
        }
        let d = serde_json::to_string(&document(&docs(&table()))).unwrap();
        assert!(!d.contains("{example "), "a placeholder was left unfilled");
        let shown = credential_literals(&d);
        assert!(shown.len() >= 4, "{shown:?}");
        for c in &shown {
            let kind = TokenKind::of(c).unwrap();
            assert!(token::well_formed(kind, c), "{c}");
        }
        assert!(shown.contains(&example_credential(TokenKind::ApiKey, 0)));
        assert!(credential_literals("x jes_live_0123456789abcdefghijABCDEFGHIJ012345 y").len() == 1, "the scan finds one");
    }
}
