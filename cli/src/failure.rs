//! What a failed command reports, and the exit code scripts can trust.
//!
//! Every failure carries a code (the API's own error code when the API refused,
//! the OAuth error when the authorization server did, or one of this client's
//! own) and a message. The exit code is chosen by the code's kind, so a script
//! can branch on `$?` and read the exact code on stderr.

use std::fmt;

/// The exit codes, by kind. `EXIT_CODES_HELP` documents them for `--help`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    /// The API failed (5xx) or answered something this client does not understand.
    Failed = 1,
    /// Bad arguments, API URL or file (clap's own usage errors are 2 as well).
    Usage = 2,
    /// No credential, or one the API refused; a login denied or expired.
    Auth = 3,
    /// The credential may not do this.
    Permission = 4,
    NotFound = 5,
    /// The API refused the request's content.
    Rejected = 6,
    /// Still rate limited after the retries, or the daily quota is spent.
    RateLimited = 7,
    /// The API could not be reached.
    Network = 8,
}

pub const EXIT_CODES_HELP: &str = "\
Exit codes (the error's code and message go to stderr):
  0  success
  1  the API failed (5xx) or answered something unexpected
  2  usage: bad arguments, API URL, file or JESTHA_API_KEY format
  3  authentication: not logged in; unauthenticated, invalid_api_key, api_key_revoked,
     api_key_expired, invalid_token, invalid_grant; a login denied or expired
  4  permission: insufficient_scope, ip_not_allowed, session_only, forbidden
  5  not_found
  6  rejected: invalid_request, conflict, payload_too_large, unsupported_media_type,
     idempotency_key_reused, idempotency_in_flight
  7  rate_limited (after --max-retries waits) or quota_exceeded
  8  network: the API could not be reached";

/// The exit code for an error code, with the HTTP status as the fallback for
/// codes this client does not know yet.
pub fn exit_for(code: &str, status: Option<u16>) -> Exit {
    match code {
        "usage" | "bad_api_url" | "bad_file" | "bad_api_key" | "config" => Exit::Usage,
        "unauthenticated" | "invalid_api_key" | "api_key_revoked" | "api_key_expired" | "invalid_session" | "invalid_token"
        | "invalid_grant" | "invalid_client" | "not_logged_in" | "access_denied" | "expired_token" => Exit::Auth,
        "insufficient_scope" | "ip_not_allowed" | "session_only" | "forbidden" | "account_suspended" => Exit::Permission,
        "not_found" => Exit::NotFound,
        "invalid_request"
        | "conflict"
        | "payload_too_large"
        | "unsupported_media_type"
        | "idempotency_key_reused"
        | "idempotency_in_flight"
        | "range_not_satisfiable" => Exit::Rejected,
        "rate_limited" | "quota_exceeded" => Exit::RateLimited,
        "network" => Exit::Network,
        _ => match status {
            Some(401) => Exit::Auth,
            Some(403) => Exit::Permission,
            Some(404) => Exit::NotFound,
            Some(400 | 409 | 413 | 415 | 422) => Exit::Rejected,
            Some(429) => Exit::RateLimited,
            _ => Exit::Failed,
        },
    }
}

/// A command that did not succeed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    pub code: String,
    pub message: String,
    /// The HTTP status, when a server answered.
    pub status: Option<u16>,
}

impl Failure {
    pub fn new(code: &str, message: impl Into<String>) -> Failure {
        Failure { code: code.to_string(), message: message.into(), status: None }
    }

    pub fn exit(&self) -> Exit {
        exit_for(&self.code, self.status)
    }

    /// `{"error":{"code","message","status"}}`: the API's envelope, plus the status.
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::json!({ "error": { "code": self.code, "message": self.message, "status": self.status } })
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.code, self.message)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_error_code_of_the_contract_has_its_kind() {
        let table = [
            ("invalid_request", 400, Exit::Rejected),
            ("unauthenticated", 401, Exit::Auth),
            ("invalid_api_key", 401, Exit::Auth),
            ("api_key_revoked", 401, Exit::Auth),
            ("api_key_expired", 401, Exit::Auth),
            ("invalid_session", 401, Exit::Auth),
            ("ip_not_allowed", 403, Exit::Permission),
            ("insufficient_scope", 403, Exit::Permission),
            ("session_only", 403, Exit::Permission),
            ("forbidden", 403, Exit::Permission),
            ("not_found", 404, Exit::NotFound),
            ("conflict", 409, Exit::Rejected),
            ("payload_too_large", 413, Exit::Rejected),
            ("unsupported_media_type", 415, Exit::Rejected),
            ("idempotency_in_flight", 409, Exit::Rejected),
            ("idempotency_key_reused", 422, Exit::Rejected),
            ("rate_limited", 429, Exit::RateLimited),
            ("quota_exceeded", 429, Exit::RateLimited),
            ("internal", 500, Exit::Failed),
        ];
        for (code, status, exit) in table {
            assert_eq!(exit_for(code, Some(status)), exit, "{code}");
        }
    }

    #[test]
    fn oauth_errors_of_a_login_are_authentication_failures() {
        for code in ["access_denied", "expired_token", "invalid_grant", "invalid_token", "not_logged_in"] {
            assert_eq!(exit_for(code, Some(400)), Exit::Auth, "{code}");
        }
    }

    #[test]
    fn unknown_codes_fall_back_on_the_status() {
        assert_eq!(exit_for("something_new", Some(401)), Exit::Auth);
        assert_eq!(exit_for("something_new", Some(403)), Exit::Permission);
        assert_eq!(exit_for("something_new", Some(422)), Exit::Rejected);
        assert_eq!(exit_for("something_new", Some(503)), Exit::Failed);
        assert_eq!(exit_for("something_new", None), Exit::Failed);
    }

    #[test]
    fn the_exit_codes_are_distinct_small_numbers_and_the_help_lists_each() {
        let all = [
            Exit::Failed,
            Exit::Usage,
            Exit::Auth,
            Exit::Permission,
            Exit::NotFound,
            Exit::Rejected,
            Exit::RateLimited,
            Exit::Network,
        ];
        for (i, e) in all.iter().enumerate() {
            assert_eq!(*e as i32, i as i32 + 1);
            assert!(EXIT_CODES_HELP.contains(&format!("\n  {}  ", *e as i32)), "{e:?} missing from the help");
        }
    }

    #[test]
    fn the_json_form_is_the_api_envelope_with_the_status() {
        let f =
            Failure { code: "insufficient_scope".into(), message: "Token missing scope(s): write:jes".into(), status: Some(403) };
        assert_eq!(
            f.to_json(),
            serde_json::json!({"error": {"code": "insufficient_scope", "message": "Token missing scope(s): write:jes", "status": 403}})
        );
        assert_eq!(f.to_string(), "insufficient_scope: Token missing scope(s): write:jes");
    }
}
