//! Builds the OpenAPI 3.1 document from the route table itself: paths, methods,
//! access and scopes come from `app::routes()`; summaries and schemas from
//! `operations.json` and `components.json`. Native only: the Worker serves the
//! committed result (`public/openapi.json`, a static asset), and the tests below fail if the table, the
//! operations and the committed document ever drift apart.

use serde_json::{json, Map, Value};

use crate::auth::principal::Access;
use crate::auth::scope::ScopeSet;

const OPERATIONS: &str = include_str!("operations.json");
const COMPONENTS: &str = include_str!("components.json");

/// What the builder needs of a route.
pub struct RouteDoc<'a> {
    pub method: &'a str,
    pub path: &'a str,
    pub access: Access,
}

fn schema_ref(v: &Value) -> Value {
    match v {
        Value::String(name) => json!({ "$ref": format!("#/components/schemas/{name}") }),
        other => other.clone(),
    }
}

fn security(access: Access, op: &Value) -> Value {
    if op["security"] == "leakSignature" {
        return json!([{ "leakSignature": [] }]);
    }
    let session = json!([{ "session": [] }, { "sessionCookie": [] }]);
    match access {
        Access::Public => json!([]),
        Access::Optional => json!([{}, { "apiKey": [] }, { "session": [] }, { "sessionCookie": [] }]),
        Access::Authenticated => json!([{ "apiKey": [] }, { "session": [] }, { "sessionCookie": [] }]),
        Access::Scopes(s) => {
            json!([{ "apiKey": ScopeSet::of(s).names() }, { "session": [] }, { "sessionCookie": [] }])
        }
        // Security requirements are alternatives: one per scope.
        Access::AnyScope(s) => {
            let mut alts: Vec<Value> = ScopeSet::of(s).names().into_iter().map(|n| json!({ "apiKey": [n] })).collect();
            alts.extend([json!({ "session": [] }), json!({ "sessionCookie": [] })]);
            Value::Array(alts)
        }
        Access::SessionOnly => session,
        Access::KeyOnly => json!([{ "apiKey": [] }]),
    }
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

fn error_response(description: &str) -> Value {
    json!({ "description": description, "content": { "application/json": { "schema": { "$ref": "#/components/schemas/Error" } } } })
}

fn operation(route: &RouteDoc<'_>, op: &Value) -> Value {
    let mut o = Map::new();
    o.insert("summary".into(), op["summary"].clone());
    o.insert("tags".into(), op["tags"].clone());
    let slug: String = route.path.chars().map(|c| if c.is_ascii_alphanumeric() { c } else { '_' }).collect();
    o.insert("operationId".into(), json!(format!("{}{}", route.method.to_lowercase(), slug.trim_end_matches('_'))));
    let mut params: Vec<Value> = route
        .path
        .split('/')
        .filter_map(|seg| seg.strip_prefix('{').and_then(|s| s.strip_suffix('}')))
        .map(|name| json!({ "name": name, "in": "path", "required": true, "schema": { "type": "string", "minLength": 1 } }))
        .collect();
    for q in op["query"].as_array().into_iter().flatten().filter_map(Value::as_str) {
        let schema = match q {
            "limit" => json!({ "type": "integer", "minimum": 1, "maximum": 100, "default": 20 }),
            _ => json!({ "type": "string" }),
        };
        params.push(json!({ "name": q, "in": "query", "required": false, "schema": schema }));
    }
    if !params.is_empty() {
        o.insert("parameters".into(), Value::Array(params));
    }
    let mut responses = Map::new();
    for (status, schema) in op["responses"].as_object().into_iter().flatten() {
        let mut r = json!({ "description": op["summary"].clone() });
        if !schema.is_null() {
            let media = if status == "200" && route.path.starts_with("/api/media/") { "*/*" } else { "application/json" };
            r["content"] = json!({ media: { "schema": schema_ref(schema) } });
        }
        responses.insert(status.clone(), r);
    }
    if let Some(req) = op.get("request") {
        let media = op["requestMedia"].as_str().unwrap_or("application/json");
        o.insert("requestBody".into(), json!({ "required": true, "content": { media: { "schema": schema_ref(req) } } }));
        responses.entry("400").or_insert_with(|| error_response("Malformed body or an invalid field (the message names it)"));
        responses.entry("413").or_insert_with(|| error_response("Body over the limit"));
        responses.entry("415").or_insert_with(|| error_response("Content-Type not accepted"));
    }
    if route.path.contains('{') || op.get("query").is_some() {
        responses.entry("400").or_insert_with(|| error_response("Invalid parameter"));
    }
    if !matches!(route.access, Access::Public) || op["security"] == "leakSignature" {
        responses.entry("401").or_insert_with(|| error_response("Missing, invalid, revoked or expired credentials"));
    }
    if !matches!(route.access, Access::Public) {
        responses.entry("403").or_insert_with(|| {
            error_response("ip_not_allowed, insufficient_scope (\"Token missing scope(s): …\"), session_only or forbidden")
        });
        responses.entry("429").or_insert_with(|| error_response("rate_limited or quota_exceeded; see Retry-After"));
    }
    responses.entry("404").or_insert_with(|| error_response("Unknown route or a resource the caller may not see"));
    o.insert("responses".into(), Value::Object(responses));
    o.insert("security".into(), security(route.access, op));
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

/// The whole document. Routes without an entry in `operations.json` are left
/// out here; the native test makes that impossible to ship.
pub fn document(routes: &[RouteDoc<'_>]) -> Value {
    let ops: Value = serde_json::from_str(OPERATIONS).expect("operations.json is valid JSON");
    let mut components: Value = serde_json::from_str(COMPONENTS).expect("components.json is valid JSON");
    components["securitySchemes"] = json!({
        "apiKey": { "type": "http", "scheme": "bearer", "bearerFormat": "jes_live_…",
                    "description": "API key. Scopes listed on an operation are required of keys." },
        "session": { "type": "http", "scheme": "bearer", "bearerFormat": "jes_sess_…",
                     "description": "Session token from signup or login; sessions hold every scope." },
        "sessionCookie": { "type": "apiKey", "in": "cookie", "name": "jes_session",
                           "description": "Web UI session; unsafe methods also need X-CSRF-Token equal to the jes_csrf cookie." },
        "leakSignature": { "type": "apiKey", "in": "header", "name": "Github-Public-Key-Signature",
                           "description": "Base64 DER ECDSA P-256 signature of the raw body by a key in LEAK_REPORT_PUBLIC_KEYS." },
    });
    let mut paths = Map::new();
    for r in routes {
        let Some(op) = ops.get(format!("{} {}", r.method, r.path)) else { continue };
        let entry = paths.entry(r.path.to_string()).or_insert_with(|| json!({}));
        entry[r.method.to_lowercase()] = operation(r, op);
    }
    json!({
        "openapi": "3.1.0",
        "info": {
            "title": "Jestha Edge API",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "The public API of Jestha: Jes, JesClips, comments and bounces, with scoped API keys. Every error is {\"error\":{\"code\",\"message\"}}.",
        },
        "servers": [{ "url": "/" }],
        "paths": paths,
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
    use crate::api::app::routes;

    fn table() -> Vec<(String, String, Access)> {
        routes().iter().map(|r| (r.method.to_string(), r.path.to_string(), r.access)).collect()
    }

    fn doc() -> Value {
        let t = table();
        let docs: Vec<RouteDoc<'_>> = t.iter().map(|(m, p, a)| RouteDoc { method: m, path: p, access: *a }).collect();
        document(&docs)
    }

    #[test]
    fn every_route_is_documented_and_every_operation_is_a_route() {
        let keys: Vec<String> = table().iter().map(|(m, p, _)| format!("{m} {p}")).collect();
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
        for r in all {
            let name = r.strip_prefix("#/components/schemas/").expect("local schema refs only");
            assert!(d["components"]["schemas"].get(name).is_some(), "dangling {r}");
        }
    }

    #[test]
    fn the_route_table_schema_names_every_access_the_table_uses() {
        let d = doc();
        let allowed = &d["components"]["schemas"]["RouteTable"]["properties"]["items"]["items"]["properties"]["access"]["enum"];
        for (m, p, a) in table() {
            assert!(allowed.as_array().unwrap().contains(&json!(access_name(a))), "{m} {p}: {} undocumented", access_name(a));
        }
    }

    #[test]
    fn scoped_operations_list_their_scopes_for_api_keys() {
        let d = doc();
        for (m, p, a) in table() {
            let op = &d["paths"][&p][m.to_lowercase()];
            if let Access::Scopes(s) = a {
                assert_eq!(op["security"][0]["apiKey"], json!(ScopeSet::of(s).names()), "{m} {p}");
            }
            if a == Access::SessionOnly {
                assert!(op["security"].as_array().unwrap().iter().all(|s| s.get("apiKey").is_none()), "{m} {p}");
            }
        }
    }
}
