//! The engine Worker's one HTTP entry, the cron hand-off: the API's cron
//! posts here through its `ENGINE` service binding and the engine runs the
//! sweeps before it answers.

use worker::Env;

use crate::error::ApiError;

pub const BINDING: &str = "ENGINE";
/// Service bindings pass the URL through as given; the host names nothing.
const CRON_URL: &str = "https://engine/cron";

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
