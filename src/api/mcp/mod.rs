//! `POST /mcp`: an MCP server (Streamable HTTP, JSON responses) for API keys
//! and OAuth access tokens. The route is `KeyOrToken`, so the guard has
//! already checked the credential (revoked, expired, IP allowlist) and
//! counted this HTTP request once; a token's tools follow its granted scopes. A `tools/call`
//! is dispatched through the same router as REST, marked `Delegated`, so the
//! route's own scope checks and handler run unchanged and nothing is counted twice.

pub mod rpc;
pub mod tools;

use axum::body::Body;
use axum::http::{header, HeaderMap, HeaderName, HeaderValue, Request, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{json, Map, Value};

use crate::auth::decide::route_denial;
use crate::auth::principal::{Delegated, Principal};
use crate::error::ApiResult;
use crate::http::AppState;
use crate::pipeline::ctx::Ctx;
use crate::pipeline::Route;
use rpc::Incoming;

const SERVER_NAME: &str = "jestha-edge";

fn reply(status: StatusCode, body: &Value) -> Response {
    let mut res = (status, body.to_string()).into_response();
    res.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    res
}

/// The tools this key may call: exactly those whose route its scopes pass.
fn visible(table: &[Route], principal: &Principal) -> Vec<tools::Tool> {
    tools::catalog()
        .into_iter()
        .filter(|t| {
            table
                .iter()
                .find(|r| r.method == t.method && r.path == t.route)
                .and_then(|r| r.access.need())
                .is_some_and(|need| route_denial(principal.kind, principal.scopes.bits(), need).is_none())
        })
        .collect()
}

/// POST /mcp
pub async fn post(mut c: Ctx) -> ApiResult<Response> {
    let body = c.bytes(crate::http::MAX_JSON_BYTES).await?;
    Ok(answer(c.table, &c.app, c.who()?, &c.headers, &body).await)
}

async fn answer(table: &'static [Route], app: &AppState, principal: &Principal, headers: &HeaderMap, body: &[u8]) -> Response {
    if let Some(v) = headers.get("mcp-protocol-version").and_then(|v| v.to_str().ok()) {
        if !rpc::PROTOCOL_VERSIONS.contains(&v) {
            let msg = format!("Unsupported MCP-Protocol-Version: {v}");
            return reply(StatusCode::BAD_REQUEST, &rpc::error(Value::Null, rpc::INVALID_REQUEST, &msg));
        }
    }
    let (id, method, params) = match rpc::classify(body) {
        Incoming::Invalid(err) => return reply(StatusCode::BAD_REQUEST, &err),
        Incoming::Notification { .. } | Incoming::ClientResponse => return StatusCode::ACCEPTED.into_response(),
        Incoming::Request { id, method, params } => (id, method, params),
    };
    let answer = match method.as_str() {
        "initialize" => rpc::result(
            id,
            json!({
                "protocolVersion": rpc::negotiate(params["protocolVersion"].as_str()),
                "capabilities": { "tools": { "listChanged": false } },
                "serverInfo": { "name": SERVER_NAME, "title": "Jestha Edge", "version": env!("CARGO_PKG_VERSION") },
                "instructions": "Tools act for the Jestha account this credential (an API key or an OAuth token) is bound to, with its scopes and limits.",
            }),
        ),
        "ping" => rpc::result(id, json!({})),
        "tools/list" => {
            let list: Vec<Value> = visible(table, principal).iter().map(tools::describe).collect();
            rpc::result(id, json!({ "tools": list }))
        }
        "tools/call" => call_tool(table, app, principal, headers, id, &params).await,
        _ => rpc::error(id, rpc::METHOD_NOT_FOUND, &format!("Method not found: {method}")),
    };
    reply(StatusCode::OK, &answer)
}

async fn call_tool(
    table: &'static [Route],
    app: &AppState,
    principal: &Principal,
    headers: &HeaderMap,
    id: Value,
    params: &Value,
) -> Value {
    let Some(name) = params["name"].as_str() else {
        return rpc::error(id, rpc::INVALID_PARAMS, "Invalid params: name is required");
    };
    let Some(tool) = tools::catalog().into_iter().find(|t| t.name == name) else {
        return rpc::error(id, rpc::INVALID_PARAMS, &format!("Unknown tool: {name}"));
    };
    let args = match &params["arguments"] {
        Value::Null => Map::new(),
        Value::Object(m) => m.clone(),
        _ => return rpc::error(id, rpc::INVALID_PARAMS, "Invalid params: arguments must be an object"),
    };
    let planned = match tools::plan(&tool, &args, &principal.id) {
        Ok(p) => p,
        Err(msg) => return rpc::error(id, rpc::INVALID_PARAMS, &format!("Invalid params: {msg}")),
    };
    let mut req = Request::builder().method(planned.method).uri(&planned.path);
    for h in [header::USER_AGENT, HeaderName::from_static("cf-connecting-ip")] {
        if let Some(v) = headers.get(&h) {
            req = req.header(h, v);
        }
    }
    if let Some(k) = &planned.idempotency_key {
        req = req.header("idempotency-key", k);
    }
    let body = match &planned.body {
        Some(b) => {
            req = req.header(header::CONTENT_TYPE, "application/json");
            Body::from(b.to_string())
        }
        None => Body::empty(),
    };
    let Ok(mut req) = req.body(body) else {
        return rpc::error(id, rpc::INVALID_PARAMS, "Invalid params: could not build the request");
    };
    req.extensions_mut().insert(app.clone());
    req.extensions_mut().insert(Delegated(principal.clone()));
    let res = crate::pipeline::dispatch(table, req).await;
    let status = res.status();
    let bytes = axum::body::to_bytes(res.into_body(), 8 * 1024 * 1024).await.unwrap_or_default();
    let parsed: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    let structured = match parsed {
        Value::Object(_) => parsed,
        Value::Null => json!({ "ok": status.is_success(), "status": status.as_u16() }),
        other => json!({ "items": other }),
    };
    let text = if status.is_success() {
        structured.to_string()
    } else {
        format!(
            "{}: {}",
            structured["error"]["code"].as_str().unwrap_or("error"),
            structured["error"]["message"].as_str().unwrap_or("request failed")
        )
    };
    rpc::result(
        id,
        json!({
            "content": [{ "type": "text", "text": text }],
            "structuredContent": structured,
            "isError": !status.is_success(),
        }),
    )
}
