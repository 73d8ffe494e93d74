//! The only code that touches bindings and runtime APIs.
pub mod account;
pub mod audit;
pub mod cimd;
pub mod crypto;
pub mod d1;
pub mod engine;
pub mod gate;
pub mod media;
pub mod notices;
pub mod outbox;
pub mod queue;
pub mod revocation;
pub mod stream;
pub mod webhook_secrets;

/// A POST request for `fetch` (or a form parse), built with the runtime's
/// `RequestInit` directly: workers-rs's own `RequestInit` converts through
/// every `cf` option (image resizing, caching…) we never set, 10 KB of wasm.
/// `headers`: none for a bare internal call (the Gate's, on the hot path).
/// `manual_redirect`: a 3xx is answered, not followed.
pub fn post_request(
    url: &str,
    headers: Option<&web_sys::Headers>,
    body: &wasm_bindgen::JsValue,
    manual_redirect: bool,
) -> Result<web_sys::Request, crate::error::ApiError> {
    let init = web_sys::RequestInit::new();
    init.set_method("POST");
    if let Some(h) = headers {
        init.set_headers(h);
    }
    init.set_body(body);
    if manual_redirect {
        init.set_redirect(web_sys::RequestRedirect::Manual);
    }
    web_sys::Request::new_with_str_and_init(url, &init).map_err(|e| crate::error::ApiError::internal(format!("request: {e:?}")))
}

/// The JS Response with `status`, `headers` and `body`: a `ReadableStream`
/// the runtime streams itself, a `Uint8Array` of the whole body, or none.
pub fn js_response(
    status: axum::http::StatusCode,
    headers: &axum::http::HeaderMap,
    body: Option<&js_sys::Object>,
) -> worker::Result<web_sys::Response> {
    let js_headers = web_sys::Headers::new()?;
    for (name, value) in headers {
        if let Ok(v) = value.to_str() {
            js_headers.append(name.as_str(), v)?;
        }
    }
    let init = web_sys::ResponseInit::new();
    init.set_status(status.as_u16());
    init.set_headers(&js_headers);
    Ok(web_sys::Response::new_with_opt_buffer_source_and_init(body, &init)?)
}
