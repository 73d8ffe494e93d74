//! Native tests of the document builder: drift against the route table and
//! the committed `public/openapi.json`, examples, headers, schemes.

use super::*;
use crate::api::openapi::examples::{example_credential, fill};
use crate::app::{idempotent, routes};
use crate::auth::token::{self, TokenKind};

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
            } else if c.get("example").is_some() {
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
                // The envelope shows one example per code; an OAuth error its one.
                let shown = c.get("example").is_some() || c["examples"].as_object().is_some_and(|e| !e.is_empty());
                assert!(shown, "{m} {p}: {status} has no example");
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
                let codes = resolve(&d, &op["responses"][status])["content"]["application/json"]["examples"].as_object().unwrap();
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
            if op["x-oauth"] == true && code != 500 {
                // OAuth's endpoints answer their RFCs' errors.
                assert_eq!(c["schema"]["$ref"], "#/components/schemas/OAuthError", "{m} {p} {status}");
                assert!(c["example"]["error"].is_string(), "{m} {p} {status}");
                continue;
            }
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
            if status == "401" {
                assert_eq!(resolve(&d, &h["WWW-Authenticate"])["required"], true, "{m} {p} {status}");
            }
        }
        if counted {
            assert!(op["responses"].get("429").is_some(), "{m} {p}");
        }
    }
    for name in RATE_HEADERS.iter().chain(&["Retry-After", "X-Request-Id", "Idempotent-Replayed", "WWW-Authenticate"]) {
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
    assert_eq!(listed.len(), 25, "{listed:?}");
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
            Access::SessionOnly | Access::Operator | Access::Public => assert!(oauth.is_empty(), "{m} {p}"),
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
    // The committed document holds placeholders only; the served one, filled
    // by the same function the route calls, shows well-formed examples.
    assert_eq!(credential_literals(super::super::DOCUMENT), Vec::<String>::new(), "public/openapi.json");
    let d = fill(&serde_json::to_string(&document(&docs(&table()))).unwrap());
    assert!(!d.contains("{example "), "a placeholder was left unfilled");
    let shown = credential_literals(&d);
    assert!(shown.len() >= 4, "{shown:?}");
    for c in &shown {
        let kind = TokenKind::of(c).unwrap();
        assert!(token::well_formed(kind, c), "{c}");
    }
    assert!(shown.contains(&example_credential(TokenKind::ApiKey, 0)));
    let planted = example_credential(TokenKind::ApiKey, 1);
    assert_eq!(credential_literals(&format!("x {planted} y")), vec![planted], "the scan finds one");
}
