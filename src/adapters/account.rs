//! The API's hand-off of an account route to the account Worker, through its
//! `ACCOUNT` service binding: the original request (method, URL, headers,
//! cookies, `cf-connecting-ip`, the body still unread) plus the request id,
//! and the account Worker's answer returned as it is.

use wasm_bindgen::JsCast;
use worker::Env;

use crate::error::ApiError;

pub const BINDING: &str = "ACCOUNT";
/// The header carrying the API's request id to the account Worker.
pub const REQUEST_ID: &str = "x-request-id";

/// Forwards `req`; a binding failure is the 500 envelope, logged.
pub async fn forward(env: &Env, req: web_sys::Request, request_id: &str) -> worker::Result<web_sys::Response> {
    match send(env, req, request_id).await {
        Ok(res) => Ok(res),
        Err(e) => {
            let detail = e.to_string();
            crate::log::error(request_id, "forward to the account Worker", &detail);
            let res = axum::response::IntoResponse::into_response(ApiError::internal(detail));
            let (parts, body) = res.into_parts();
            let bytes = axum::body::to_bytes(body, usize::MAX).await.unwrap_or_default();
            crate::adapters::js_response(parts.status, &parts.headers, Some(&js_sys::Uint8Array::from(&bytes[..])))
        }
    }
}

async fn send(env: &Env, req: web_sys::Request, request_id: &str) -> Result<web_sys::Response, worker::Error> {
    // An incoming request's headers are immutable: a new request from it,
    // which takes over its body stream.
    let headers = web_sys::Headers::new_with_headers(&req.headers())?;
    headers.set(REQUEST_ID, request_id)?;
    let init = web_sys::RequestInit::new();
    init.set_headers(&headers);
    let req = web_sys::Request::new_with_request_and_init(&req, &init)?;
    let fetcher: worker::worker_sys::Fetcher = env.service(BINDING)?.into_rpc();
    let res = wasm_bindgen_futures::JsFuture::from(fetcher.fetch(&req)?).await?;
    Ok(res.dyn_into()?)
}
