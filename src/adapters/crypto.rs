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
    let crypto =
        Reflect::get(&js_sys::global(), &JsValue::from_str("crypto")).map_err(|_| ApiError::internal("no crypto global"))?;
    let subtle = Reflect::get(&crypto, &JsValue::from_str("subtle")).map_err(|_| ApiError::internal("no crypto.subtle"))?;
    Ok(subtle.unchecked_into())
}

fn js_err(what: &str) -> impl Fn(JsValue) -> ApiError + '_ {
    move |e| ApiError::internal(format!("{what}: {e:?}"))
}

/// Sets one member of a WebCrypto algorithm or parameters object.
fn set(o: &Object, k: &str, v: impl Into<JsValue>) -> Result<(), ApiError> {
    Reflect::set(o, &JsValue::from_str(k), &v.into()).map(drop).map_err(js_err("params"))
}

/// PBKDF2-HMAC-SHA256, 32 bytes out.
pub async fn pbkdf2_sha256(password: &[u8], salt: &[u8], iterations: u32) -> Result<Vec<u8>, ApiError> {
    let subtle = subtle()?;
    let usages = js_sys::Array::of1(&JsValue::from_str("deriveBits"));
    let key_data = Uint8Array::from(password);
    let key: CryptoKey =
        JsFuture::from(subtle.import_key_with_str("raw", &key_data, "PBKDF2", false, &usages).map_err(js_err("importKey"))?)
            .await
            .map_err(js_err("importKey"))?
            .unchecked_into();
    let params = Object::new();
    set(&params, "name", "PBKDF2")?;
    set(&params, "hash", "SHA-256")?;
    set(&params, "salt", Uint8Array::from(salt))?;
    set(&params, "iterations", iterations as f64)?;
    let bits = JsFuture::from(subtle.derive_bits_with_object(&params, &key, 256).map_err(js_err("deriveBits"))?)
        .await
        .map_err(js_err("deriveBits"))?;
    Ok(Uint8Array::new(&bits).to_vec())
}

/// HMAC-SHA1 of each message under one key (WebCrypto; imported once): the
/// MACs of the TOTP steps a code is checked against (`auth::totp`).
pub async fn hmac_sha1(key: &[u8], messages: &[[u8; 8]]) -> Result<Vec<[u8; 20]>, ApiError> {
    let subtle = subtle()?;
    let algorithm = Object::new();
    set(&algorithm, "name", "HMAC")?;
    set(&algorithm, "hash", "SHA-1")?;
    let usages = js_sys::Array::of1(&JsValue::from_str("sign"));
    let key: CryptoKey = JsFuture::from(
        subtle.import_key_with_object("raw", &Uint8Array::from(key), &algorithm, false, &usages).map_err(js_err("importKey"))?,
    )
    .await
    .map_err(js_err("importKey"))?
    .unchecked_into();
    let mut out = Vec::with_capacity(messages.len());
    for m in messages {
        let sig = JsFuture::from(subtle.sign_with_str_and_u8_array("HMAC", &key, m).map_err(js_err("sign"))?)
            .await
            .map_err(js_err("sign"))?;
        let bytes = Uint8Array::new(&sig).to_vec();
        out.push(bytes.try_into().map_err(|_| ApiError::internal("HMAC-SHA1 is not 20 bytes"))?);
    }
    Ok(out)
}

async fn aes_gcm_key(key: &[u8; 32], usage: &str) -> Result<CryptoKey, ApiError> {
    let usages = js_sys::Array::of1(&JsValue::from_str(usage));
    let key_data = Uint8Array::from(&key[..]);
    Ok(JsFuture::from(subtle()?.import_key_with_str("raw", &key_data, "AES-GCM", false, &usages).map_err(js_err("importKey"))?)
        .await
        .map_err(js_err("importKey"))?
        .unchecked_into())
}

fn aes_gcm_params(nonce: &[u8], aad: &[u8]) -> Result<Object, ApiError> {
    let params = Object::new();
    set(&params, "name", "AES-GCM")?;
    set(&params, "iv", Uint8Array::from(nonce))?;
    set(&params, "additionalData", Uint8Array::from(aad))?;
    Ok(params)
}

/// AES-256-GCM with associated data (WebCrypto): ciphertext with its 16-byte tag.
pub async fn aes_gcm_seal(key: &[u8; 32], nonce: &[u8; 12], aad: &[u8], plaintext: &[u8]) -> Result<Vec<u8>, ApiError> {
    let k = aes_gcm_key(key, "encrypt").await?;
    let out = JsFuture::from(
        subtle()?.encrypt_with_object_and_u8_array(&aes_gcm_params(nonce, aad)?, &k, plaintext).map_err(js_err("encrypt"))?,
    )
    .await
    .map_err(js_err("encrypt"))?;
    Ok(Uint8Array::new(&out).to_vec())
}

/// Opens what `aes_gcm_seal` sealed; fails if anything (key, nonce, data, tag) differs.
pub async fn aes_gcm_open(key: &[u8; 32], nonce: &[u8], aad: &[u8], ciphertext: &[u8]) -> Result<Vec<u8>, ApiError> {
    let k = aes_gcm_key(key, "decrypt").await?;
    let out = JsFuture::from(
        subtle()?
            .decrypt_with_object_and_u8_array(&aes_gcm_params(nonce, aad)?, &k, ciphertext)
            .map_err(|_| ApiError::internal("sealed secret did not open (wrong key or tampered row)"))?,
    )
    .await
    .map_err(|_| ApiError::internal("sealed secret did not open (wrong key or tampered row)"))?;
    Ok(Uint8Array::new(&out).to_vec())
}

/// ECDSA P-256 with SHA-256 (WebCrypto): true when `signature` (raw `r || s`)
/// signs `data` under the SubjectPublicKeyInfo `spki`. A key the runtime will
/// not import (a point off the curve) verifies nothing.
pub async fn ecdsa_p256_verify(spki: &[u8], signature: &[u8; 64], data: &[u8]) -> Result<bool, ApiError> {
    let subtle = subtle()?;
    let algorithm = Object::new();
    set(&algorithm, "name", "ECDSA")?;
    set(&algorithm, "namedCurve", "P-256")?;
    let usages = js_sys::Array::of1(&JsValue::from_str("verify"));
    let Ok(import) = subtle.import_key_with_object("spki", &Uint8Array::from(spki), &algorithm, false, &usages) else {
        return Ok(false);
    };
    let Ok(key) = JsFuture::from(import).await else { return Ok(false) };
    set(&algorithm, "hash", "SHA-256")?;
    let ok = JsFuture::from(
        subtle
            .verify_with_object_and_u8_array_and_u8_array(&algorithm, &key.unchecked_into(), signature, data)
            .map_err(js_err("verify"))?,
    )
    .await
    .map_err(js_err("verify"))?;
    Ok(ok.as_bool() == Some(true))
}
