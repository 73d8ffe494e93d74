//! Error answers in the document: every code with an example built from
//! `ApiError` itself, which errors each operation can answer, and which of
//! them are shared `components.responses`.

use super::*;

/// Every code the envelope carries, each with an example of the error.
/// `range_not_satisfiable` is answered by the media route itself (a 416 is
/// not an `ApiError`).
pub(super) fn every_error() -> Vec<ApiError> {
    use ApiError::*;
    // A new variant does not compile until this match, and so the list below, names it.
    let _exhaustive = |e: &ApiError| match e {
        InvalidRequest(_)
        | Unauthenticated
        | InvalidApiKey
        | ApiKeyRevoked
        | ApiKeyExpired
        | InvalidSession
        | InvalidToken
        | InvalidCredentials
        | InvalidCode
        | IpNotAllowed
        | InsufficientScope(_)
        | InsufficientAnyScope(_)
        | SessionOnly
        | Forbidden(_)
        | AccountSuspended
        | NotFound
        | MethodNotAllowed
        | Conflict(_)
        | IdempotencyInFlight
        | PayloadTooLarge(_)
        | UnsupportedMediaType(_)
        | PreconditionFailed(_)
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
        InvalidToken,
        InvalidCredentials,
        InvalidCode,
        IpNotAllowed,
        InsufficientScope(vec!["write:jes"]),
        InsufficientAnyScope(vec!["write:jes", "write:jesclip"]),
        SessionOnly,
        Forbidden("You can only edit your own Jes".into()),
        AccountSuspended,
        NotFound,
        MethodNotAllowed,
        Conflict("username or email already taken".into()),
        IdempotencyInFlight,
        PayloadTooLarge("JSON body larger than 65536 bytes".into()),
        UnsupportedMediaType("Content-Type must be application/json".into()),
        PreconditionFailed("Tus-Resumable: must be 1.0.0".into()),
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
pub(super) struct ErrorExample {
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
pub(super) fn named_error(code: &str, message: &str) -> ErrorExample {
    let e = match code {
        "invalid_request" => ApiError::InvalidRequest(message.into()),
        "forbidden" => ApiError::Forbidden(message.into()),
        "conflict" => ApiError::Conflict(message.into()),
        "payload_too_large" => ApiError::PayloadTooLarge(message.into()),
        "unsupported_media_type" => ApiError::UnsupportedMediaType(message.into()),
        "invalid_credentials" if message.contains("code") => ApiError::InvalidCode,
        "precondition_failed" => ApiError::PreconditionFailed(message.into()),
        "invalid_credentials" => ApiError::InvalidCredentials,
        "account_suspended" => ApiError::AccountSuspended,
        "rate_limited" if message.is_empty() => ApiError::TooManyAttempts { retry_after: 600 },
        "rate_limited" => ApiError::RateLimited { retry_after: 600 },
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
pub(super) fn errors_of(route: &RouteDoc<'_>, op: &Value, has_body: bool) -> Vec<(u16, Vec<ErrorExample>)> {
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
    if op["oauth"] == true {
        // An OAuth endpoint answers its RFC's errors (`OAuthError`, listed
        // under its own responses); only a failure of ours is the envelope.
        add(Internal(String::new()), Some("logged with the request id"));
        return by_status;
    }
    let a = route.access;
    let guarded = a != Access::Public;
    let keys = matches!(
        a,
        Access::Optional | Access::Authenticated | Access::Scopes(_) | Access::AnyScope(_) | Access::KeyOnly | Access::KeyOrToken
    );
    let sessions = !matches!(a, Access::Public | Access::KeyOnly | Access::KeyOrToken);
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
        add(InvalidToken, Some("an OAuth access token that is unknown, expired or revoked"));
        if keys {
            add(IpNotAllowed, None);
        }
        match a {
            Access::Scopes(s) => {
                add(InsufficientScope(ScopeSet::of(s).names()), Some("an API key without the operation's scopes"))
            }
            Access::AnyScope(s) => add(InsufficientAnyScope(ScopeSet::of(s).names()), Some("an API key with none of the scopes")),
            Access::SessionOnly => add(SessionOnly, Some("any API key, whatever its scopes")),
            Access::Operator => {
                add(SessionOnly, Some("any API key or OAuth token"));
                add(Forbidden("This endpoint is for operators".into()), Some("a session that is not an operator's"));
            }
            Access::KeyOnly => {
                add(Forbidden("This endpoint is for API keys, not sessions".into()), Some("a session"));
                add(Forbidden("This endpoint is for API keys only".into()), Some("an OAuth access token"));
            }
            Access::KeyOrToken => add(Forbidden("This endpoint is for API keys, not sessions".into()), Some("a session")),
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

pub(super) fn error_response(errors: &[ErrorExample], headers: Value) -> Value {
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

/// The name under `components.responses` of an error answer that is the same
/// wherever it occurs, so operations refer to it instead of repeating it
/// (it is most of the document otherwise). Decided by the route, not by which
/// operation comes first; an operation's own errors at a status keep that
/// status inline. `None`: inline.
pub(super) fn shared_response(route: &RouteDoc<'_>, op: &Value, status: u16, has_body: bool) -> Option<&'static str> {
    let own = op["errors"].as_object().into_iter().flatten().any(|(code, _)| named_error(code, "").status == status);
    let guarded = route.access != Access::Public;
    let keys = !matches!(route.access, Access::SessionOnly | Access::Operator);
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
