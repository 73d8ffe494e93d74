//! Resumable uploads, tus 1.0.0 at `/api/uploads` (core, creation,
//! termination, expiration). The guard decides who may call (the scopes of
//! `POST /api/media`); the engine answers (`engine::tus`), the PATCH body
//! handed over unread. What the engine says becomes the answer: its tus
//! headers, or the error envelope with them (a 412 carries `Tus-Version`).
//! `api::fetch` adds `Tus-Resumable` to every answer under this path.

use axum::http::{HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};

use crate::api::routes::media::{caller, refusal};
use crate::domain::upload::Caller;
use crate::error::ApiResult;
use crate::pipeline::ctx::Ctx;

/// OPTIONS /api/uploads, POST /api/uploads, GET (HEAD) /api/uploads/{id},
/// PATCH /api/uploads/{id}, DELETE /api/uploads/{id}
pub async fn relay(c: Ctx) -> ApiResult<Response> {
    let who = match c.who {
        Some(_) => caller(&c)?,
        None => Caller { account: String::new(), images: false, videos: false },
    };
    let body = c.raw.as_ref().and_then(|r| r.take());
    let reply =
        crate::adapters::engine::tus(&c.app.env, c.method.as_str(), &c.id, &c.headers, &who, &c.app.request_id, body.as_ref())
            .await?;
    let headers = reply.headers.clone();
    let mut res = if reply.status >= 400 {
        refusal(reply).into_response()
    } else {
        StatusCode::from_u16(reply.status).unwrap_or(StatusCode::OK).into_response()
    };
    for (name, value) in headers {
        if let (Ok(n), Ok(v)) = (HeaderName::from_bytes(name.as_bytes()), HeaderValue::from_str(&value)) {
            res.headers_mut().insert(n, v);
        }
    }
    Ok(res)
}
