//! The MCP tool catalog. Each tool is a thin call into a REST route: its
//! scopes are *read from the route table*, so a tool can never need less than
//! its route, and a call is planned into (method, path, body) and dispatched
//! through the same router, guard and handler as the REST request. Pure.

use axum::http::Method;
use serde_json::{json, Map, Value};

/// Where a path parameter comes from.
#[derive(Debug, Clone, Copy)]
pub enum Param {
    /// A tool argument of this name (a string).
    Arg(&'static str),
    /// The calling key's own id (webhook tools manage only their own key).
    OwnKey,
}

pub struct Tool {
    pub name: &'static str,
    pub title: &'static str,
    pub description: &'static str,
    pub method: Method,
    /// The route as written in `app::routes()`.
    pub route: &'static str,
    pub params: &'static [(&'static str, Param)],
    /// Arguments copied into the JSON body (None: no body).
    pub body: Option<&'static [&'static str]>,
    /// Arguments sent as the query string.
    pub query: &'static [&'static str],
    /// Accepts `idempotencyKey` (sent as the Idempotency-Key header).
    pub creates: bool,
    pub input_schema: fn() -> Value,
}

fn schema(props: Value, required: &[&str]) -> Value {
    json!({ "type": "object", "properties": props, "required": required, "additionalProperties": false })
}

fn idem() -> Value {
    json!({ "type": "string", "maxLength": 255, "description": "Optional Idempotency-Key: a retry with the same key and arguments creates nothing new." })
}

fn visibility() -> Value {
    json!({ "type": "string", "enum": ["PUBLIC", "FOLLOWERS", "PRIVATE"] })
}

fn id(desc: &str) -> Value {
    json!({ "type": "string", "description": desc })
}

pub fn catalog() -> Vec<Tool> {
    vec![
        Tool {
            name: "whoami",
            title: "Who am I",
            description: "The Jestha account this API key acts for.",
            method: Method::GET,
            route: "/api/auth/me",
            params: &[],
            body: None,
            query: &[],
            creates: false,
            input_schema: || schema(json!({}), &[]),
        },
        Tool {
            name: "create_jes",
            title: "Post a Jes",
            description: "Publish a Jes (post) on the bound account.",
            method: Method::POST,
            route: "/api/posts",
            params: &[],
            body: Some(&["content", "visibility", "mediaIds"]),
            query: &[],
            creates: true,
            input_schema: || {
                schema(
                    json!({ "content": { "type": "string" }, "visibility": visibility(),
                            "mediaIds": { "type": "array", "items": { "type": "string" } }, "idempotencyKey": idem() }),
                    &["content"],
                )
            },
        },
        Tool {
            name: "edit_jes",
            title: "Edit a Jes",
            description: "Edit one of the bound account's own Jes.",
            method: Method::PATCH,
            route: "/api/posts/{id}",
            params: &[("id", Param::Arg("id"))],
            body: Some(&["content", "visibility"]),
            query: &[],
            creates: false,
            input_schema: || {
                schema(json!({ "id": id("The Jes id"), "content": { "type": "string" }, "visibility": visibility() }), &["id"])
            },
        },
        Tool {
            name: "delete_jes",
            title: "Delete a Jes",
            description: "Delete one of the bound account's own Jes.",
            method: Method::DELETE,
            route: "/api/posts/{id}",
            params: &[("id", Param::Arg("id"))],
            body: None,
            query: &[],
            creates: false,
            input_schema: || schema(json!({ "id": id("The Jes id") }), &["id"]),
        },
        Tool {
            name: "bounce_jes",
            title: "Bounce a Jes",
            description: "Bounce (repost) a Jes; with content it is a quote-bounce.",
            method: Method::POST,
            route: "/api/posts/{id}/bounce",
            params: &[("id", Param::Arg("id"))],
            body: Some(&["content"]),
            query: &[],
            creates: true,
            input_schema: || {
                schema(
                    json!({ "id": id("The Jes to bounce"), "content": { "type": "string" }, "idempotencyKey": idem() }),
                    &["id"],
                )
            },
        },
        Tool {
            name: "create_jesclip",
            title: "Post a JesClip",
            description: "Publish a JesClip from a video already uploaded (its media id).",
            method: Method::POST,
            route: "/api/jesclips",
            params: &[],
            body: Some(&["mediaId", "caption", "visibility"]),
            query: &[],
            creates: true,
            input_schema: || {
                schema(
                    json!({ "mediaId": id("An uploaded video's media id"), "caption": { "type": "string" },
                            "visibility": visibility(), "idempotencyKey": idem() }),
                    &["mediaId"],
                )
            },
        },
        Tool {
            name: "add_comment",
            title: "Comment on a Jes",
            description: "Comment (or reply, with parentId) on a Jes the account can see.",
            method: Method::POST,
            route: "/api/posts/{id}/comments",
            params: &[("id", Param::Arg("jesId"))],
            body: Some(&["content", "parentId"]),
            query: &[],
            creates: true,
            input_schema: || {
                schema(
                    json!({ "jesId": id("The Jes id"), "content": { "type": "string" }, "parentId": id("Reply to this comment"),
                            "idempotencyKey": idem() }),
                    &["jesId", "content"],
                )
            },
        },
        Tool {
            name: "list_comments",
            title: "Read a comment thread",
            description: "The comment thread of one Jes, paginated.",
            method: Method::GET,
            route: "/api/posts/{id}/comments",
            params: &[("id", Param::Arg("jesId"))],
            body: None,
            query: &["limit", "cursor"],
            creates: false,
            input_schema: || {
                schema(
                    json!({ "jesId": id("The Jes id"), "limit": { "type": "integer", "minimum": 1, "maximum": 100 },
                            "cursor": { "type": "string" } }),
                    &["jesId"],
                )
            },
        },
        Tool {
            name: "get_jes",
            title: "Read a Jes",
            description: "One Jes with its author's public snippet; engagement counts need read:engagement.",
            method: Method::GET,
            route: "/api/posts/{id}",
            params: &[("id", Param::Arg("id"))],
            body: None,
            query: &[],
            creates: false,
            input_schema: || schema(json!({ "id": id("The Jes id") }), &["id"]),
        },
        Tool {
            name: "list_webhooks",
            title: "List webhooks",
            description: "The webhook endpoints attached to this API key.",
            method: Method::GET,
            route: "/api/auth/api-keys/{id}/webhooks",
            params: &[("id", Param::OwnKey)],
            body: None,
            query: &[],
            creates: false,
            input_schema: || schema(json!({}), &[]),
        },
        Tool {
            name: "add_webhook",
            title: "Add a webhook",
            description: "Attach an endpoint to this API key; the signing secret is returned once.",
            method: Method::POST,
            route: "/api/auth/api-keys/{id}/webhooks",
            params: &[("id", Param::OwnKey)],
            body: Some(&["url", "events"]),
            query: &[],
            creates: true,
            input_schema: || {
                schema(
                    json!({ "url": { "type": "string", "format": "uri" },
                            "events": { "type": "array", "items": { "type": "string" }, "minItems": 1 }, "idempotencyKey": idem() }),
                    &["url", "events"],
                )
            },
        },
        Tool {
            name: "remove_webhook",
            title: "Remove a webhook",
            description: "Detach one of this key's webhook endpoints.",
            method: Method::DELETE,
            route: "/api/auth/api-keys/{id}/webhooks/{webhookId}",
            params: &[("id", Param::OwnKey), ("webhookId", Param::Arg("webhookId"))],
            body: None,
            query: &[],
            creates: false,
            input_schema: || schema(json!({ "webhookId": id("The webhook id") }), &["webhookId"]),
        },
        Tool {
            name: "test_webhook",
            title: "Send a test event",
            description: "Send a webhook.test event to one of this key's endpoints.",
            method: Method::POST,
            route: "/api/auth/api-keys/{id}/webhooks/{webhookId}/test",
            params: &[("id", Param::OwnKey), ("webhookId", Param::Arg("webhookId"))],
            body: Some(&[]),
            query: &[],
            creates: false,
            input_schema: || schema(json!({ "webhookId": id("The webhook id") }), &["webhookId"]),
        },
    ]
}

/// A planned REST call.
#[derive(Debug, Clone, PartialEq)]
pub struct Planned {
    pub method: Method,
    pub path: String,
    pub body: Option<Value>,
    pub idempotency_key: Option<String>,
}

fn percent_encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// Checks arguments against the tool's schema (required keys, no unknown keys,
/// basic types) and plans the REST call. Errors are "Invalid params" messages.
pub fn plan(tool: &Tool, args: &Map<String, Value>, own_key: &str) -> Result<Planned, String> {
    let schema = (tool.input_schema)();
    let props = schema["properties"].as_object().cloned().unwrap_or_default();
    for required in schema["required"].as_array().into_iter().flatten().filter_map(Value::as_str) {
        if args.get(required).is_none_or(Value::is_null) {
            return Err(format!("missing required argument '{required}'"));
        }
    }
    for (name, value) in args {
        let Some(p) = props.get(name) else { return Err(format!("unknown argument '{name}'")) };
        let ok = match p["type"].as_str() {
            Some("string") => value.is_string(),
            Some("integer") => value.is_i64() || value.is_u64(),
            Some("array") => value.is_array(),
            _ => true,
        };
        if !ok && !value.is_null() {
            return Err(format!("argument '{name}' must be a {}", p["type"].as_str().unwrap_or("value")));
        }
    }
    let mut path = tool.route.to_string();
    for (placeholder, source) in tool.params {
        let value = match source {
            Param::OwnKey => own_key.to_string(),
            Param::Arg(arg) => args.get(*arg).and_then(Value::as_str).unwrap_or_default().to_string(),
        };
        if value.is_empty() {
            return Err(format!("argument for '{placeholder}' must not be empty"));
        }
        path = path.replace(&format!("{{{placeholder}}}"), &percent_encode(&value));
    }
    let query: Vec<String> = tool
        .query
        .iter()
        .filter_map(|q| args.get(*q).filter(|v| !v.is_null()).map(|v| (q, v)))
        .map(|(q, v)| format!("{q}={}", percent_encode(&v.as_str().map(str::to_string).unwrap_or_else(|| v.to_string()))))
        .collect();
    if !query.is_empty() {
        path = format!("{path}?{}", query.join("&"));
    }
    let body = tool.body.map(|fields| {
        Value::Object(
            fields.iter().filter_map(|f| args.get(*f).filter(|v| !v.is_null()).map(|v| (f.to_string(), v.clone()))).collect(),
        )
    });
    let idempotency_key = if tool.creates { args.get("idempotencyKey").and_then(Value::as_str).map(String::from) } else { None };
    Ok(Planned { method: tool.method.clone(), path, body, idempotency_key })
}

/// What `tools/list` shows for a tool.
pub fn describe(tool: &Tool) -> Value {
    json!({
        "name": tool.name,
        "title": tool.title,
        "description": tool.description,
        "inputSchema": (tool.input_schema)(),
        "outputSchema": { "type": "object" },
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::app::routes;

    fn tool(name: &str) -> Tool {
        catalog().into_iter().find(|t| t.name == name).unwrap()
    }

    fn args(v: Value) -> Map<String, Value> {
        v.as_object().unwrap().clone()
    }

    #[test]
    fn tool_names_are_unique_and_schemas_are_objects() {
        let mut names: Vec<_> = catalog().iter().map(|t| t.name).collect();
        names.sort();
        names.dedup();
        assert_eq!(names.len(), catalog().len());
        for t in catalog() {
            assert_eq!((t.input_schema)()["type"], "object", "{}", t.name);
        }
    }

    #[test]
    fn plans_fill_path_body_query_and_idempotency() {
        let p =
            plan(&tool("add_comment"), &args(json!({"jesId": "01J", "content": "hi", "idempotencyKey": "k1"})), "key1").unwrap();
        assert_eq!(p.path, "/api/posts/01J/comments");
        assert_eq!(p.body, Some(json!({"content": "hi"})));
        assert_eq!(p.idempotency_key.as_deref(), Some("k1"));
        let p = plan(&tool("list_comments"), &args(json!({"jesId": "a/b", "limit": 5})), "key1").unwrap();
        assert_eq!(p.path, "/api/posts/a%2Fb/comments?limit=5");
        let p = plan(&tool("remove_webhook"), &args(json!({"webhookId": "w1"})), "key1").unwrap();
        assert_eq!((p.method, p.path.as_str()), (Method::DELETE, "/api/auth/api-keys/key1/webhooks/w1"));
    }

    #[test]
    fn bad_arguments_are_refused_before_any_call() {
        assert!(plan(&tool("create_jes"), &args(json!({})), "k").unwrap_err().contains("content"));
        assert!(plan(&tool("create_jes"), &args(json!({"content": 5})), "k").unwrap_err().contains("string"));
        assert!(plan(&tool("create_jes"), &args(json!({"content": "x", "admin": true})), "k").unwrap_err().contains("admin"));
        assert!(plan(&tool("get_jes"), &args(json!({"id": ""})), "k").is_err());
    }

    #[test]
    fn webhook_tools_only_ever_address_the_calling_key() {
        for t in catalog().iter().filter(|t| t.route.contains("/webhooks")) {
            assert!(t.params.iter().any(|(p, s)| *p == "id" && matches!(s, Param::OwnKey)), "{}", t.name);
            assert!(!(t.input_schema)()["properties"].as_object().unwrap().contains_key("id"), "{}", t.name);
        }
    }

    #[test]
    fn every_tool_maps_to_a_route_in_the_table() {
        let table: Vec<(Method, &str)> = routes().iter().map(|r| (r.method.clone(), r.path)).collect();
        for t in catalog() {
            assert!(
                table.contains(&(t.method.clone(), t.route)),
                "{} calls {} {}, which is not a route",
                t.name,
                t.method,
                t.route
            );
        }
    }

    #[test]
    fn every_tool_path_parameter_is_filled_and_nothing_else_is() {
        for t in catalog() {
            let placeholders: Vec<&str> =
                t.route.split('/').filter_map(|s| s.strip_prefix('{').and_then(|s| s.strip_suffix('}'))).collect();
            let filled: Vec<&str> = t.params.iter().map(|(p, _)| *p).collect();
            assert_eq!(placeholders, filled, "{}", t.name);
        }
    }
}
