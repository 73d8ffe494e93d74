//! The one error type of the API: every failure, from every route, becomes the
//! envelope `{"error":{"code","message"}}` with the status the contract names.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

/// Every way a request can fail. The doc line of each variant names its status.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ApiError {
    /// 400: malformed JSON, a missing or invalid field; the message names the field.
    InvalidRequest(String),
    /// 401: no credentials on a route that needs them.
    Unauthenticated,
    /// 401: wrong format, bad checksum or unknown hash (canary keys answer this too).
    InvalidApiKey,
    /// 401: the key was revoked.
    ApiKeyRevoked,
    /// 401: the key is past its expiry.
    ApiKeyExpired,
    /// 401: unknown, expired or logged-out session.
    InvalidSession,
    /// 401: an OAuth access token that is unknown, expired or revoked (or
    /// another OAuth credential presented as a bearer token).
    InvalidToken,
    /// 401: login with a wrong login or password (never says which).
    InvalidCredentials,
    /// 401: the second login step with an unknown, expired, used or burned
    /// challenge, or a wrong code (`invalid_credentials`).
    InvalidCode,
    /// 403: client IP outside the key's allowlist.
    IpNotAllowed,
    /// 403: the key lacks scopes; carries the missing ones, in catalog order.
    InsufficientScope(Vec<&'static str>),
    /// 403: the key holds none of the route's alternative scopes.
    InsufficientAnyScope(Vec<&'static str>),
    /// 403: a route never open to API keys.
    SessionOnly,
    /// 403: acting on something the caller may see but not change.
    Forbidden(String),
    /// 403: the account is suspended by an operator (its keys come back on unsuspend).
    AccountSuspended,
    /// 404: unknown route, or a resource the caller may not see.
    NotFound,
    /// 405: the route exists, the method does not.
    MethodNotAllowed,
    /// 409: e.g. username taken.
    Conflict(String),
    /// 409: same Idempotency-Key while the first request still runs.
    IdempotencyInFlight,
    /// 412: a tus request without `Tus-Resumable: 1.0.0`.
    PreconditionFailed(String),
    /// 413: body or upload over the limit.
    PayloadTooLarge(String),
    /// 415: content type not accepted.
    UnsupportedMediaType(String),
    /// 422: same Idempotency-Key, different request.
    IdempotencyKeyReused,
    /// 429: per-minute limit reached; seconds until the window resets.
    RateLimited { retry_after: u64 },
    /// 429: daily quota used up; seconds until the next UTC day.
    QuotaExceeded { retry_after: u64 },
    /// 429: too many failed logins for this account or address.
    TooManyAttempts { retry_after: u64 },
    /// 500: anything unexpected; the detail is logged, never answered.
    Internal(String),
}

#[derive(Serialize)]
struct Envelope<'a> {
    error: Body<'a>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Body<'a> {
    code: &'a str,
    message: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    retry_after: Option<u64>,
}

impl ApiError {
    pub fn invalid(msg: impl Into<String>) -> Self {
        ApiError::InvalidRequest(msg.into())
    }

    pub fn internal(detail: impl std::fmt::Display) -> Self {
        ApiError::Internal(detail.to_string())
    }

    /// The envelope for a bare 4xx status (framework rejections).
    pub fn from_status(status: StatusCode, detail: String) -> Self {
        let detail = if detail.is_empty() { status.canonical_reason().unwrap_or("error").to_string() } else { detail };
        match status {
            StatusCode::NOT_FOUND => ApiError::NotFound,
            StatusCode::METHOD_NOT_ALLOWED => ApiError::MethodNotAllowed,
            StatusCode::PAYLOAD_TOO_LARGE => ApiError::PayloadTooLarge(detail),
            StatusCode::UNSUPPORTED_MEDIA_TYPE => ApiError::UnsupportedMediaType(detail),
            _ => ApiError::InvalidRequest(detail),
        }
    }

    pub fn status(&self) -> StatusCode {
        use ApiError::*;
        match self {
            InvalidRequest(_) => StatusCode::BAD_REQUEST,
            Unauthenticated | InvalidApiKey | ApiKeyRevoked | ApiKeyExpired | InvalidSession | InvalidToken
            | InvalidCredentials | InvalidCode => StatusCode::UNAUTHORIZED,
            IpNotAllowed | InsufficientScope(_) | InsufficientAnyScope(_) | SessionOnly | Forbidden(_) | AccountSuspended => {
                StatusCode::FORBIDDEN
            }
            NotFound => StatusCode::NOT_FOUND,
            MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            Conflict(_) | IdempotencyInFlight => StatusCode::CONFLICT,
            PayloadTooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            UnsupportedMediaType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            PreconditionFailed(_) => StatusCode::PRECONDITION_FAILED,
            IdempotencyKeyReused => StatusCode::UNPROCESSABLE_ENTITY,
            RateLimited { .. } | QuotaExceeded { .. } | TooManyAttempts { .. } => StatusCode::TOO_MANY_REQUESTS,
            Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    pub fn code(&self) -> &'static str {
        use ApiError::*;
        match self {
            InvalidRequest(_) => "invalid_request",
            Unauthenticated => "unauthenticated",
            InvalidApiKey => "invalid_api_key",
            ApiKeyRevoked => "api_key_revoked",
            ApiKeyExpired => "api_key_expired",
            InvalidSession => "invalid_session",
            InvalidToken => "invalid_token",
            InvalidCredentials | InvalidCode => "invalid_credentials",
            IpNotAllowed => "ip_not_allowed",
            InsufficientScope(_) | InsufficientAnyScope(_) => "insufficient_scope",
            SessionOnly => "session_only",
            Forbidden(_) => "forbidden",
            AccountSuspended => "account_suspended",
            NotFound => "not_found",
            MethodNotAllowed => "method_not_allowed",
            Conflict(_) => "conflict",
            IdempotencyInFlight => "idempotency_in_flight",
            PayloadTooLarge(_) => "payload_too_large",
            UnsupportedMediaType(_) => "unsupported_media_type",
            PreconditionFailed(_) => "precondition_failed",
            IdempotencyKeyReused => "idempotency_key_reused",
            RateLimited { .. } => "rate_limited",
            QuotaExceeded { .. } => "quota_exceeded",
            TooManyAttempts { .. } => "rate_limited",
            Internal(_) => "internal_error",
        }
    }

    pub fn message(&self) -> String {
        use ApiError::*;
        match self {
            InvalidRequest(m)
            | Forbidden(m)
            | Conflict(m)
            | PayloadTooLarge(m)
            | UnsupportedMediaType(m)
            | PreconditionFailed(m) => m.clone(),
            Unauthenticated => "Authentication required: send Authorization: Bearer <token>".into(),
            InvalidApiKey => "Invalid API key".into(),
            ApiKeyRevoked => "API key revoked".into(),
            ApiKeyExpired => "API key expired".into(),
            InvalidSession => "Invalid or expired session".into(),
            InvalidToken => "Invalid, expired or revoked access token".into(),
            InvalidCredentials => "Invalid login or password".into(),
            InvalidCode => "Invalid or expired code; log in again".into(),
            IpNotAllowed => "Request IP is not in this API key's allowlist".into(),
            InsufficientScope(missing) => format!("Token missing scope(s): {}", missing.join(", ")),
            // API.md fixes the message's start; "or" says one of them is enough.
            InsufficientAnyScope(any) => format!("Token missing scope(s): {}", any.join(" or ")),
            SessionOnly => "This endpoint is not available to API keys".into(),
            AccountSuspended => "This account is suspended".into(),
            NotFound => "Not found".into(),
            MethodNotAllowed => "Method not allowed on this route".into(),
            IdempotencyInFlight => "A request with this Idempotency-Key is still being processed".into(),
            IdempotencyKeyReused => "This Idempotency-Key was used with a different request".into(),
            RateLimited { .. } => "Rate limit exceeded".into(),
            QuotaExceeded { .. } => "Daily quota exceeded".into(),
            TooManyAttempts { .. } => "Too many failed login attempts; try again later".into(),
            Internal(_) => "Internal error".into(),
        }
    }

    pub fn retry_after(&self) -> Option<u64> {
        match self {
            ApiError::RateLimited { retry_after }
            | ApiError::QuotaExceeded { retry_after }
            | ApiError::TooManyAttempts { retry_after } => Some(*retry_after),
            _ => None,
        }
    }

    /// The JSON envelope as bytes.
    pub fn body(&self) -> Vec<u8> {
        let env = Envelope { error: Body { code: self.code(), message: self.message(), retry_after: self.retry_after() } };
        serde_json::to_vec(&env).unwrap_or_default()
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ApiError::Internal(detail) => write!(f, "internal_error: {detail}"),
            other => write!(f, "{}: {}", other.code(), other.message()),
        }
    }
}

impl From<worker::Error> for ApiError {
    fn from(e: worker::Error) -> Self {
        ApiError::Internal(e.to_string())
    }
}

impl From<serde_json::Error> for ApiError {
    fn from(e: serde_json::Error) -> Self {
        ApiError::Internal(format!("json: {e}"))
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut res = (self.status(), self.body()).into_response();
        let h = res.headers_mut();
        h.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
        if let Some(secs) = self.retry_after() {
            h.insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        use crate::auth::challenge::{insufficient_scope, Unauthorized};
        match &self {
            ApiError::Internal(detail) => {
                // The pipeline logs this with the request id; the client sees only "Internal error".
                res.extensions_mut().insert(InternalDetail(detail.clone()));
            }
            // The request's origin is the Worker's to add (`pipeline::serve`).
            ApiError::Unauthenticated | ApiError::InvalidCredentials | ApiError::InvalidCode => {
                res.extensions_mut().insert(Unauthorized { invalid_token: false });
            }
            ApiError::InvalidApiKey
            | ApiError::ApiKeyRevoked
            | ApiError::ApiKeyExpired
            | ApiError::InvalidSession
            | ApiError::InvalidToken => {
                res.extensions_mut().insert(Unauthorized { invalid_token: true });
            }
            ApiError::InsufficientScope(scopes) | ApiError::InsufficientAnyScope(scopes) => {
                if let Ok(v) = HeaderValue::from_str(&insufficient_scope(scopes)) {
                    res.headers_mut().insert(header::WWW_AUTHENTICATE, v);
                }
            }
            _ => {}
        }
        res
    }
}

/// Carried on a 500 response so the request log can name the cause.
#[derive(Clone)]
pub struct InternalDetail(pub String);

pub type ApiResult<T> = Result<T, ApiError>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn insufficient_scope_message_names_every_missing_scope() {
        let e = ApiError::InsufficientScope(vec!["write:jes", "read:comment"]);
        assert_eq!(e.status(), StatusCode::FORBIDDEN);
        assert_eq!(e.message(), "Token missing scope(s): write:jes, read:comment");
        let v: serde_json::Value = serde_json::from_slice(&e.body()).unwrap();
        assert_eq!(v["error"]["code"], "insufficient_scope");
    }

    #[test]
    fn rate_limited_envelope_carries_retry_after() {
        let e = ApiError::RateLimited { retry_after: 17 };
        let v: serde_json::Value = serde_json::from_slice(&e.body()).unwrap();
        assert_eq!(v["error"]["retryAfter"], 17);
        assert_eq!(v["error"]["code"], "rate_limited");
        assert_eq!(e.status(), StatusCode::TOO_MANY_REQUESTS);
    }

    #[test]
    fn bare_statuses_map_to_envelope_codes() {
        assert_eq!(
            ApiError::from_status(StatusCode::BAD_REQUEST, "Failed to deserialize query string".into()).code(),
            "invalid_request"
        );
        assert_eq!(ApiError::from_status(StatusCode::UNPROCESSABLE_ENTITY, String::new()).message(), "Unprocessable Entity");
        assert_eq!(ApiError::from_status(StatusCode::PAYLOAD_TOO_LARGE, "x".into()).code(), "payload_too_large");
    }

    #[test]
    fn refusals_carry_what_their_challenge_needs() {
        use crate::auth::challenge::Unauthorized;
        let unauthorized = |e: ApiError| e.into_response().extensions().get::<Unauthorized>().copied();
        assert_eq!(unauthorized(ApiError::Unauthenticated), Some(Unauthorized { invalid_token: false }));
        assert_eq!(unauthorized(ApiError::InvalidCredentials), Some(Unauthorized { invalid_token: false }));
        for e in [
            ApiError::InvalidApiKey,
            ApiError::ApiKeyRevoked,
            ApiError::ApiKeyExpired,
            ApiError::InvalidSession,
            ApiError::InvalidToken,
        ] {
            assert_eq!(unauthorized(e), Some(Unauthorized { invalid_token: true }));
        }
        assert_eq!(unauthorized(ApiError::SessionOnly), None);
        let res = ApiError::InsufficientAnyScope(vec!["write:jes", "write:jesclip"]).into_response();
        assert_eq!(
            res.headers()[header::WWW_AUTHENTICATE],
            "Bearer error=\"insufficient_scope\", scope=\"write:jes write:jesclip\""
        );
        assert!(ApiError::NotFound.into_response().headers().get(header::WWW_AUTHENTICATE).is_none());
    }

    #[test]
    fn internal_errors_never_leak_their_detail() {
        let e = ApiError::internal("D1_ERROR: secret table");
        let body = String::from_utf8(e.body()).unwrap();
        assert!(!body.contains("secret"));
        assert_eq!(e.status(), StatusCode::INTERNAL_SERVER_ERROR);
    }
}
