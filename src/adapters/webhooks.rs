//! Webhook configuration and sealed signing secrets: the parts of the webhook
//! pipeline that touch the platform. Secrets are never logged.

use worker::Env;

use crate::adapters::crypto::{aes_gcm_open, aes_gcm_seal, random_bytes};
use crate::domain::webhook::{self as wh, Sealed, DEFAULT_DELAYS};
use crate::error::{ApiError, ApiResult};

pub const SECRET_KEY_VAR: &str = "WEBHOOK_SECRET_KEY";

// ---------------------------------------------------------------- configuration

fn var(env: &Env, name: &str) -> Option<String> {
    env.var(name).ok().map(|v| v.to_string())
}

pub fn allow_loopback(env: &Env) -> bool {
    var(env, "WEBHOOK_ALLOW_LOOPBACK").is_some_and(|v| v.trim().eq_ignore_ascii_case("true"))
}

/// The configured schedule; a malformed value falls back to the default (and says so).
pub fn retry_delays(env: &Env) -> Vec<u32> {
    match var(env, "WEBHOOK_RETRY_DELAYS").map(|s| wh::parse_delays(&s)) {
        Some(Ok(d)) => d,
        Some(Err(e)) => {
            crate::log::error("config", "webhook retry delays", &e);
            DEFAULT_DELAYS.to_vec()
        }
        None => DEFAULT_DELAYS.to_vec(),
    }
}

/// The at-rest encryption key, a Worker secret (also read as a plain var so
/// `--var` works locally). A malformed value is an error, never a silent downgrade.
fn encryption_key(env: &Env) -> ApiResult<Option<[u8; 32]>> {
    let raw = env.secret(SECRET_KEY_VAR).ok().map(|s| s.to_string()).or_else(|| var(env, SECRET_KEY_VAR));
    match raw.filter(|s| !s.trim().is_empty()) {
        None => Ok(None),
        Some(s) => wh::parse_encryption_key(&s).map(Some).map_err(ApiError::internal),
    }
}

// ---------------------------------------------------------------- secrets

/// The stored form of a new endpoint's `whsec_…` secret.
pub async fn seal_secret(env: &Env, endpoint_id: &str, whsec: &str) -> ApiResult<String> {
    let Some(key) = encryption_key(env)? else { return Ok(Sealed::Plain(whsec.to_string()).to_stored()) };
    let nonce: [u8; 12] = random_bytes();
    let ciphertext = aes_gcm_seal(&key, &nonce, endpoint_id.as_bytes(), whsec.as_bytes()).await?;
    Ok(Sealed::AesGcm { kid: wh::key_id(&key), nonce: nonce.to_vec(), ciphertext }.to_stored())
}

/// The signing key bytes of an endpoint.
pub async fn open_secret(env: &Env, endpoint_id: &str, stored: &str) -> ApiResult<Vec<u8>> {
    let whsec = match Sealed::parse(stored).map_err(ApiError::internal)? {
        Sealed::Plain(s) => s,
        Sealed::AesGcm { kid, nonce, ciphertext } => {
            let key = encryption_key(env)?.ok_or_else(|| ApiError::internal("sealed secret but no WEBHOOK_SECRET_KEY"))?;
            if kid != wh::key_id(&key) {
                return Err(ApiError::internal(format!("secret of {endpoint_id} sealed with key {kid}")));
            }
            let plain = aes_gcm_open(&key, &nonce, endpoint_id.as_bytes(), &ciphertext).await?;
            String::from_utf8(plain).map_err(|_| ApiError::internal("sealed secret is not text"))?
        }
    };
    wh::decode_secret(&whsec).map_err(ApiError::internal)
}
