//! Structured JSON log lines on the console. Callers pass no credentials: the
//! request log holds method, path, status, timing and the request id only.

use serde_json::json;

fn emit(line: serde_json::Value) {
    #[cfg(target_arch = "wasm32")]
    worker::console_log!("{line}");
    #[cfg(not(target_arch = "wasm32"))]
    eprintln!("{line}");
}

pub fn request(request_id: &str, method: &str, path: &str, status: u16, ms: i64, detail: Option<&str>) {
    emit(json!({
        "level": if status >= 500 { "error" } else { "info" },
        "msg": "request",
        "requestId": request_id,
        "method": method,
        "path": path,
        "status": status,
        "ms": ms,
        "detail": detail,
    }));
}

pub fn error(request_id: &str, what: &str, detail: &str) {
    emit(json!({ "level": "error", "msg": what, "requestId": request_id, "detail": detail }));
}

/// Something worth an operator's look that is not a failure.
pub fn warn(id: &str, what: &str, detail: &str) {
    emit(json!({ "level": "warn", "msg": what, "requestId": id, "detail": detail }));
}
