//! Client side of the `Gate` Durable Object: one `fetch` per call.

use serde::de::DeserializeOwned;
use worker::Env;

use crate::auth::decide::{CredentialKind, LiveToken};
use crate::error::ApiError;
use crate::protocol::{decode, encode, object_name, AuthorizeReply, FanOutCall, GateRequest, ThrottleAction, ThrottleReply};

pub const BINDING: &str = "GATE";

pub(crate) async fn call<T: DeserializeOwned>(env: &Env, name: &str, msg: &GateRequest) -> Result<T, ApiError> {
    let stub = env.durable_object(BINDING)?.get_by_name(name)?;
    let body = js_sys::Uint8Array::from(&encode(msg)?[..]);
    let req = super::post_request("https://gate/", None, &body, false)?;
    let mut res = stub.fetch_with_request(req.into()).await?;
    if res.status_code() != 200 {
        return Err(ApiError::internal(format!("gate answered {}", res.status_code())));
    }
    Ok(decode(&res.bytes().await?)?)
}

pub async fn authorize(env: &Env, msg: &GateRequest) -> Result<AuthorizeReply, ApiError> {
    let name = match msg {
        GateRequest::Authorize { kind, hash, .. } => object_name(*kind, hash),
        GateRequest::AuthorizeToken { grant_id, .. } => object_name(CredentialKind::OAuth, grant_id),
        _ => return Err(ApiError::internal("authorize needs an Authorize message")),
    };
    call(env, &name, msg).await
}

pub async fn revoke(env: &Env, msg: &GateRequest) -> Result<(), ApiError> {
    let GateRequest::Revoke { kind, hash } = msg else {
        return Err(ApiError::internal("revoke needs a Revoke message"));
    };
    call(env, &object_name(*kind, hash), msg).await
}

/// Tells a credential's object to reload its record (after an account change).
pub async fn refresh(env: &Env, kind: CredentialKind, hash: String) -> Result<(), ApiError> {
    let name = object_name(kind, &hash);
    call(env, &name, &GateRequest::Refresh { kind, hash }).await
}

pub async fn usage(env: &Env, msg: &GateRequest) -> Result<crate::protocol::UsageReply, ApiError> {
    let GateRequest::Usage { kind, hash } = msg else {
        return Err(ApiError::internal("usage needs a Usage message"));
    };
    call(env, &object_name(*kind, hash), msg).await
}

/// Tells the grant's object of a new access token, before D1 records it.
pub async fn grant_token(env: &Env, grant_id: &str, token: LiveToken) -> Result<(), ApiError> {
    let name = object_name(CredentialKind::OAuth, grant_id);
    call(env, &name, &GateRequest::GrantToken { grant_id: grant_id.to_string(), token }).await
}

/// Revokes one access token of a grant (the grant stays live).
pub async fn revoke_token(env: &Env, grant_id: &str, hash: String) -> Result<(), ApiError> {
    let name = object_name(CredentialKind::OAuth, grant_id);
    call(env, &name, &GateRequest::RevokeToken { grant_id: grant_id.to_string(), hash }).await
}

/// The benchmark floor: one call that increments one stored counter.
pub async fn bench_increment(env: &Env) -> Result<u64, ApiError> {
    call(env, "bench:floor", &GateRequest::BenchIncrement).await
}

/// Counts one try of `what` by the address `ip` (the throttle
/// `{what}:ip:{bucket}`, IPv6 by its /64: `domain::address`):
/// `Some(retry_after)` once the address is over `limit` per `window_secs`.
pub async fn address_over(env: &Env, what: &str, ip: &str, limit: u32, window_secs: i64) -> Result<Option<u64>, ApiError> {
    let bucket = crate::domain::address::bound_key(ip);
    let t = throttle(env, &format!("{what}:ip:{bucket}"), ThrottleAction::Attempt, limit, window_secs).await?;
    Ok((!t.allowed).then_some(t.retry_after))
}

/// A login throttle named `subject` (e.g. `login:ip:203.0.113.9`).
pub async fn throttle(
    env: &Env,
    subject: &str,
    action: ThrottleAction,
    limit: u32,
    window_secs: i64,
) -> Result<ThrottleReply, ApiError> {
    call(env, subject, &GateRequest::Throttle { action, limit, window_secs }).await
}

/// Sends `calls` through the fan-out object named `name` (see
/// `domain::fanout` and `Gate::fan_out`): one subrequest here, whatever
/// their number. Ok once every Gate has been told.
pub async fn fan_out(env: &Env, name: &str, calls: Vec<FanOutCall>) -> Result<(), ApiError> {
    if calls.is_empty() {
        return Ok(());
    }
    let want = calls.len() as u32;
    let told: u32 = call(env, name, &GateRequest::FanOut { name: name.to_string(), calls }).await?;
    if told != want {
        return Err(ApiError::internal(format!("fan-out told {told} of {want} Gates")));
    }
    Ok(())
}
