//! The engine Worker's HTTP entry, reached only through the API's `ENGINE`
//! service binding: the cron hand-off (the engine runs the sweeps before it
//! answers), and uploads: a single-request upload's or a tus request's body
//! handed over unread, with what the API decided (`domain::upload::Spec`,
//! `Caller`) in a header, answered with a `Reply` (postcard bytes).

use wasm_bindgen::JsCast;
use worker::Env;

use crate::domain::upload::{Caller, Reply, Spec};
use crate::error::ApiError;

pub const BINDING: &str = "ENGINE";
/// Service bindings pass the URL through as given; the host names nothing.
const CRON_URL: &str = "https://engine/cron";

/// A single-request upload (`engine::ingest`).
pub const INGEST_URL: &str = "https://engine/ingest";
/// tus requests, the upload's id after it (`engine::tus`).
pub const TUS_URL: &str = "https://engine/tus/";
/// What the API decided about the request, postcard in base64url.
pub const SPEC_HEADER: &str = "x-jestha-spec";
/// The client's method (the hand-off itself is always a POST).
pub const METHOD_HEADER: &str = "x-jestha-method";
/// The client's Content-Length.
pub const LENGTH_HEADER: &str = "x-jestha-length";
/// The API's request id.
pub const REQUEST_HEADER: &str = "x-request-id";
/// The client's headers a tus request carries on.
const TUS_HEADERS: [&str; 6] =
    ["content-type", "tus-resumable", "upload-offset", "upload-length", "upload-metadata", "upload-defer-length"];

/// A value for `SPEC_HEADER`.
pub fn encode_header<T: serde::Serialize>(v: &T) -> Result<String, ApiError> {
    use base64::Engine;
    let bytes = crate::protocol::encode(v).map_err(ApiError::from)?;
    Ok(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes))
}

/// `SPEC_HEADER` read back.
pub fn decode_header<T: serde::de::DeserializeOwned>(v: &str) -> Option<T> {
    use base64::Engine;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(v).ok()?;
    crate::protocol::decode(&bytes).ok()
}

/// Hands an upload body to the engine; its `Reply`.
async fn hand_over(
    env: &Env,
    url: &str,
    headers: &web_sys::Headers,
    body: Option<&web_sys::ReadableStream>,
) -> Result<Reply, ApiError> {
    let body = body.map_or(wasm_bindgen::JsValue::NULL, |b| b.into());
    let req = super::post_request(url, Some(headers), &body, false)?;
    let js = |e: wasm_bindgen::JsValue| ApiError::internal(format!("engine: {e:?}"));
    // The runtime's fetch, as the account hand-off does: workers-rs's would
    // wrap the answer in an http::Response to be read back through a Rust stream.
    let fetcher: worker::worker_sys::Fetcher = env.service(BINDING)?.into_rpc();
    let res: web_sys::Response =
        wasm_bindgen_futures::JsFuture::from(fetcher.fetch(&req).map_err(js)?).await.map_err(js)?.dyn_into().map_err(js)?;
    if res.status() != 200 {
        return Err(ApiError::internal(format!("the engine answered {}", res.status())));
    }
    let buf = wasm_bindgen_futures::JsFuture::from(res.array_buffer().map_err(js)?).await.map_err(js)?;
    crate::protocol::decode(&js_sys::Uint8Array::new(&buf).to_vec()).map_err(ApiError::from)
}

/// A single-request upload: `body` streams to R2 through the engine.
pub async fn ingest(env: &Env, spec: &Spec, body: Option<&web_sys::ReadableStream>) -> Result<Reply, ApiError> {
    let headers = web_sys::Headers::new().map_err(|e| ApiError::internal(format!("{e:?}")))?;
    let set = |k: &str, v: &str| headers.set(k, v).map_err(|e| ApiError::internal(format!("{e:?}")));
    set(SPEC_HEADER, &encode_header(spec)?)?;
    if let Some(n) = spec.length {
        // A stream handed on keeps its known length only when it says so.
        set("content-length", &n.to_string())?;
    }
    hand_over(env, INGEST_URL, &headers, body).await
}

/// A tus request (`id` empty for creation). Any other id that is not a ULID
/// is an upload nobody has, answered here: the id becomes part of the
/// hand-off URL, where `../cron` would resolve to the engine's cron entry.
pub async fn tus(
    env: &Env,
    method: &str,
    id: &str,
    client: &http::HeaderMap,
    caller: &Caller,
    request_id: &str,
    body: Option<&web_sys::ReadableStream>,
) -> Result<Reply, ApiError> {
    if !id.is_empty() && !crate::domain::ids::is_ulid(id) {
        return Ok(Reply::error(404, "not found"));
    }
    let headers = web_sys::Headers::new().map_err(|e| ApiError::internal(format!("{e:?}")))?;
    let set = |k: &str, v: &str| headers.set(k, v).map_err(|e| ApiError::internal(format!("{e:?}")));
    for name in TUS_HEADERS {
        if let Some(v) = client.get(name).and_then(|v| v.to_str().ok()) {
            set(name, v)?;
        }
    }
    if let Some(n) = client.get("content-length").and_then(|v| v.to_str().ok()) {
        set(LENGTH_HEADER, n)?;
        if body.is_some() {
            set("content-length", n)?;
        }
    }
    set(SPEC_HEADER, &encode_header(caller)?)?;
    set(METHOD_HEADER, method)?;
    set(REQUEST_HEADER, request_id)?;
    hand_over(env, &format!("{TUS_URL}{id}"), &headers, body).await
}

/// Whether a request the engine received is the cron hand-off.
pub fn is_cron(method: &str, url: &str) -> bool {
    method == "POST" && url == CRON_URL
}

/// Runs the engine's sweeps and waits for them (the cron's time limit, not a request's).
pub async fn run_cron(env: &Env) -> Result<(), ApiError> {
    let req = super::post_request(CRON_URL, None, &wasm_bindgen::JsValue::NULL, false)?;
    let res = env.service(BINDING)?.fetch_request(worker::Request::from(req)).await?;
    match res.status().as_u16() {
        204 => Ok(()),
        other => Err(ApiError::internal(format!("the engine answered {other}"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_post_to_the_cron_url_is_the_hand_off() {
        assert!(is_cron("POST", CRON_URL));
        assert!(!is_cron("GET", CRON_URL));
        assert!(!is_cron("POST", "https://engine/cron/x"));
        assert!(!is_cron("POST", "https://engine/"));
    }
}
