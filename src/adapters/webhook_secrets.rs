//! Webhook signing secrets at rest: the API seals a new endpoint's
//! `whsec_…` secret with `WEBHOOK_SECRET_KEY` (AES-256-GCM), the engine
//! opens it to sign a delivery. Secrets are never logged: errors name ids only.

use worker::Env;

use crate::adapters::crypto::{aes_gcm_open, aes_gcm_seal, random_bytes};
use crate::config::Config;
use crate::domain::webhook::{self as wh, Sealed};
use crate::error::{ApiError, ApiResult};

/// The at-rest encryption key (`WEBHOOK_SECRET_KEY`). A malformed value is an
/// error, never a silent downgrade.
fn encryption_key(env: &Env) -> ApiResult<Option<[u8; 32]>> {
    match &Config::get(env).webhook_secret_key {
        None => Ok(None),
        Some(s) => wh::parse_encryption_key(s).map(Some).map_err(ApiError::internal),
    }
}

/// The stored form of a new endpoint's `whsec_…` secret.
pub async fn seal_secret(env: &Env, endpoint_id: &str, whsec: &str) -> ApiResult<String> {
    let Some(key) = encryption_key(env)? else {
        crate::log::warn(endpoint_id, "webhook secret stored unsealed", "set the WEBHOOK_SECRET_KEY secret to seal it");
        return Ok(Sealed::Plain(whsec.to_string()).to_stored());
    };
    let nonce: [u8; 12] = random_bytes();
    let ciphertext = aes_gcm_seal(&key, &nonce, endpoint_id.as_bytes(), whsec.as_bytes()).await?;
    Ok(Sealed::AesGcm { kid: wh::key_id(&key), nonce: nonce.to_vec(), ciphertext }.to_stored())
}

/// The signing key bytes of an endpoint.
pub async fn open_secret(env: &Env, endpoint_id: &str, stored: &str) -> ApiResult<Vec<u8>> {
    let whsec = match Sealed::parse(stored).map_err(ApiError::internal)? {
        Sealed::Plain(s) => s,
        Sealed::AesGcm { kid, nonce, ciphertext } => {
            // The API seals, the engine opens: both Workers need the same secret.
            let key = encryption_key(env)?.ok_or_else(|| {
                ApiError::internal("sealed secret but no WEBHOOK_SECRET_KEY on this Worker (API and engine need the same one)")
            })?;
            if kid != wh::key_id(&key) {
                return Err(ApiError::internal(format!(
                    "secret of {endpoint_id} sealed with key {kid}, this Worker's WEBHOOK_SECRET_KEY is {} (API and engine need the same one)",
                    wh::key_id(&key)
                )));
            }
            let plain = aes_gcm_open(&key, &nonce, endpoint_id.as_bytes(), &ciphertext).await?;
            String::from_utf8(plain).map_err(|_| ApiError::internal("sealed secret is not text"))?
        }
    };
    wh::decode_secret(&whsec).map_err(ApiError::internal)
}

/// Seals `text` (another secret kept at rest, such as a TOTP secret) with the
/// same key and format as endpoint secrets, bound to `aad` (what it belongs to).
pub async fn seal_text(env: &Env, aad: &str, text: &str) -> ApiResult<String> {
    let Some(key) = encryption_key(env)? else { return Ok(Sealed::Plain(text.to_string()).to_stored()) };
    let nonce: [u8; 12] = random_bytes();
    let ciphertext = aes_gcm_seal(&key, &nonce, aad.as_bytes(), text.as_bytes()).await?;
    Ok(Sealed::AesGcm { kid: wh::key_id(&key), nonce: nonce.to_vec(), ciphertext }.to_stored())
}

/// Opens what `seal_text` sealed for `aad`.
pub async fn open_text(env: &Env, aad: &str, stored: &str) -> ApiResult<String> {
    match Sealed::parse(stored).map_err(ApiError::internal)? {
        Sealed::Plain(s) => Ok(s),
        Sealed::AesGcm { kid, nonce, ciphertext } => {
            let key = encryption_key(env)?.ok_or_else(|| ApiError::internal("sealed secret but no WEBHOOK_SECRET_KEY"))?;
            if kid != wh::key_id(&key) {
                return Err(ApiError::internal(format!("secret sealed with key {kid}, not this Worker's")));
            }
            let plain = aes_gcm_open(&key, &nonce, aad.as_bytes(), &ciphertext).await?;
            String::from_utf8(plain).map_err(|_| ApiError::internal("sealed secret is not text"))
        }
    }
}
