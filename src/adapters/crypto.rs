//! WebCrypto and randomness: PBKDF2 runs natively in the runtime (fast, off the
//! wasm CPU budget); random bytes come from getrandom (crypto.getRandomValues).

use js_sys::{Object, Reflect, Uint8Array};
use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_futures::JsFuture;
use web_sys::{CryptoKey, SubtleCrypto};

use crate::error::ApiError;

pub fn random_bytes<const N: usize>() -> [u8; N] {
    let mut buf = [0u8; N];
    getrandom::fill(&mut buf).expect("the runtime provides crypto.getRandomValues");
    buf
}

pub fn fill_random(buf: &mut [u8]) {
    getrandom::fill(buf).expect("the runtime provides crypto.getRandomValues");
}

fn subtle() -> Result<SubtleCrypto, ApiError> {
    let crypto = Reflect::get(&js_sys::global(), &JsValue::from_str("crypto"))
        .map_err(|_| ApiError::internal("no crypto global"))?;
    let subtle = Reflect::get(&crypto, &JsValue::from_str("subtle"))
        .map_err(|_| ApiError::internal("no crypto.subtle"))?;
    Ok(subtle.unchecked_into())
}

fn js_err(what: &str) -> impl Fn(JsValue) -> ApiError + '_ {
    move |e| ApiError::internal(format!("{what}: {e:?}"))
}

/// PBKDF2-HMAC-SHA256, 32 bytes out.
pub async fn pbkdf2_sha256(password: &[u8], salt: &[u8], iterations: u32) -> Result<Vec<u8>, ApiError> {
    let subtle = subtle()?;
    let usages = js_sys::Array::of1(&JsValue::from_str("deriveBits"));
    let key_data = Uint8Array::from(password);
    let key: CryptoKey = JsFuture::from(
        subtle
            .import_key_with_str("raw", &key_data, "PBKDF2", false, &usages)
            .map_err(js_err("importKey"))?,
    )
    .await
    .map_err(js_err("importKey"))?
    .unchecked_into();
    let params = Object::new();
    let set = |k: &str, v: JsValue| Reflect::set(&params, &JsValue::from_str(k), &v);
    set("name", "PBKDF2".into()).map_err(js_err("params"))?;
    set("hash", "SHA-256".into()).map_err(js_err("params"))?;
    set("salt", Uint8Array::from(salt).into()).map_err(js_err("params"))?;
    set("iterations", (iterations as f64).into()).map_err(js_err("params"))?;
    let bits = JsFuture::from(
        subtle.derive_bits_with_object(&params, &key, 256).map_err(js_err("deriveBits"))?,
    )
    .await
    .map_err(js_err("deriveBits"))?;
    Ok(Uint8Array::new(&bits).to_vec())
}
