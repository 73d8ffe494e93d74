//! Benchmark reference routes, served only when `BENCH_ROUTES=true` (404
//! otherwise): `baseline` touches nothing, `floor` makes exactly one Durable
//! Object call that increments stored state — what exact per-request counting
//! cannot go below.

use axum::http::StatusCode;
use axum::response::Response;

use crate::adapters::gate;
use crate::error::{ApiError, ApiResult};
use crate::http::{json, AppState};
use crate::pipeline::ctx::Ctx;

fn enabled(app: &AppState) -> bool {
    crate::config::Config::get(&app.env).bench_routes
}

/// GET /__bench/baseline
pub async fn baseline(c: Ctx) -> ApiResult<Response> {
    let app = &c.app;
    if !enabled(app) {
        return Err(ApiError::NotFound);
    }
    Ok(json(StatusCode::OK, &serde_json::json!({ "ok": true })))
}

/// GET /__bench/floor
pub async fn floor(c: Ctx) -> ApiResult<Response> {
    let app = &c.app;
    if !enabled(app) {
        return Err(ApiError::NotFound);
    }
    let n = gate::bench_increment(&app.env).await?;
    Ok(json(StatusCode::OK, &serde_json::json!({ "n": n })))
}
