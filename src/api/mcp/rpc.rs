//! JSON-RPC 2.0 framing for the MCP endpoint: classify an incoming body, and
//! build results and the standard error objects. Pure.

use serde_json::{json, Value};

pub const PARSE_ERROR: i64 = -32700;
pub const INVALID_REQUEST: i64 = -32600;
pub const METHOD_NOT_FOUND: i64 = -32601;
pub const INVALID_PARAMS: i64 = -32602;

#[derive(Debug, Clone, PartialEq)]
pub enum Incoming {
    /// A call that wants an answer.
    Request { id: Value, method: String, params: Value },
    /// A notification (no id): answered 202 with no body.
    Notification { method: String },
    /// A response or error from the client (we never ask it anything): 202.
    ClientResponse,
    /// Anything else: answer this error object.
    Invalid(Value),
}

pub fn error(id: Value, code: i64, message: &str) -> Value {
    json!({ "jsonrpc": "2.0", "id": id, "error": { "code": code, "message": message } })
}

pub fn result(id: Value, result: Value) -> Value {
    json!({ "jsonrpc": "2.0", "id": id, "result": result })
}

fn valid_id(id: &Value) -> bool {
    id.is_string() || id.is_i64() || id.is_u64()
}

/// Classifies one body. Batches are refused: the current MCP revision dropped
/// JSON-RPC batching.
pub fn classify(body: &[u8]) -> Incoming {
    let Ok(v) = serde_json::from_slice::<Value>(body) else {
        return Incoming::Invalid(error(Value::Null, PARSE_ERROR, "Parse error: body is not valid JSON"));
    };
    if v.is_array() {
        return Incoming::Invalid(error(Value::Null, INVALID_REQUEST, "Batch requests are not supported"));
    }
    let Some(obj) = v.as_object() else {
        return Incoming::Invalid(error(Value::Null, INVALID_REQUEST, "Invalid Request: expected an object"));
    };
    let id = obj.get("id").cloned();
    let reply_id = id.clone().filter(valid_id).unwrap_or(Value::Null);
    if obj.get("jsonrpc").and_then(Value::as_str) != Some("2.0") {
        return Incoming::Invalid(error(reply_id, INVALID_REQUEST, "Invalid Request: jsonrpc must be \"2.0\""));
    }
    if obj.contains_key("result") || obj.contains_key("error") {
        return Incoming::ClientResponse;
    }
    let Some(method) = obj.get("method").and_then(Value::as_str) else {
        return Incoming::Invalid(error(reply_id, INVALID_REQUEST, "Invalid Request: method must be a string"));
    };
    let params = obj.get("params").cloned().unwrap_or(Value::Null);
    if !(params.is_null() || params.is_object()) {
        return Incoming::Invalid(error(reply_id, INVALID_PARAMS, "Invalid params: params must be an object"));
    }
    match id {
        None => Incoming::Notification { method: method.to_string() },
        Some(id) if valid_id(&id) => Incoming::Request { id, method: method.to_string(), params },
        Some(_) => Incoming::Invalid(error(Value::Null, INVALID_REQUEST, "Invalid Request: id must be a string or integer")),
    }
}

/// Protocol revisions we speak, newest first.
pub const PROTOCOL_VERSIONS: [&str; 4] = ["2025-11-25", "2025-06-18", "2025-03-26", "2024-11-05"];

/// The version to answer `initialize` with: the client's if we speak it, else our newest.
pub fn negotiate(requested: Option<&str>) -> &'static str {
    requested.and_then(|r| PROTOCOL_VERSIONS.iter().find(|v| **v == r).copied()).unwrap_or(PROTOCOL_VERSIONS[0])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn code(i: Incoming) -> i64 {
        match i {
            Incoming::Invalid(v) => v["error"]["code"].as_i64().unwrap(),
            other => panic!("expected an error, got {other:?}"),
        }
    }

    #[test]
    fn requests_notifications_and_responses_are_told_apart() {
        let r = classify(br#"{"jsonrpc":"2.0","id":1,"method":"ping"}"#);
        assert_eq!(r, Incoming::Request { id: json!(1), method: "ping".into(), params: Value::Null });
        let n = classify(br#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#);
        assert_eq!(n, Incoming::Notification { method: "notifications/initialized".into() });
        assert_eq!(classify(br#"{"jsonrpc":"2.0","id":"a","result":{}}"#), Incoming::ClientResponse);
    }

    #[test]
    fn malformed_messages_get_the_standard_error_codes() {
        assert_eq!(code(classify(b"{not json")), PARSE_ERROR);
        assert_eq!(code(classify(br#"[{"jsonrpc":"2.0","id":1,"method":"ping"}]"#)), INVALID_REQUEST);
        assert_eq!(code(classify(br#"{"id":1,"method":"ping"}"#)), INVALID_REQUEST);
        assert_eq!(code(classify(br#"{"jsonrpc":"2.0","id":1}"#)), INVALID_REQUEST);
        assert_eq!(code(classify(br#"{"jsonrpc":"2.0","id":{"x":1},"method":"ping"}"#)), INVALID_REQUEST);
        assert_eq!(code(classify(br#"{"jsonrpc":"2.0","id":1,"method":"ping","params":[1]}"#)), INVALID_PARAMS);
        assert_eq!(code(classify(b"42")), INVALID_REQUEST);
    }

    #[test]
    fn version_negotiation_prefers_the_clients_known_version() {
        assert_eq!(negotiate(Some("2025-03-26")), "2025-03-26");
        assert_eq!(negotiate(Some("1999-01-01")), "2025-11-25");
        assert_eq!(negotiate(None), "2025-11-25");
    }
}
