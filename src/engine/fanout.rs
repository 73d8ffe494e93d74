//! A fan-out object's work: a `Gate` object named `fanout:…`, holding no
//! credential, given `GateRequest::FanOut` by `adapters::revocation` (or by
//! its parent fan-out object). It tells every listed credential's Gate
//! (`Revoke`, `Refresh`) itself, or hands equal parts of the list to child
//! fan-out objects (`domain::fanout::plan`), all at once, so no invocation
//! makes more than `LEAF` subrequests however long the list. Stores nothing.

use futures_util::future::join_all;
use worker::{Env, Result};

use crate::adapters::gate;
use crate::domain::fanout::{plan, Plan, LEAF};
use crate::protocol::{FanOutCall, GateRequest};

/// Makes every call even when one fails (they are idempotent: the caller
/// may send them all again); answers how many Gates were told, or the first
/// failure.
pub async fn run(env: &Env, name: &str, calls: Vec<FanOutCall>) -> Result<u32> {
    let results: Vec<std::result::Result<u32, _>> = match plan(calls.len(), LEAF) {
        Plan::Direct => {
            join_all(calls.iter().map(|c| async move {
                let (object, msg) = c.message();
                gate::call::<()>(env, &object, &msg).await.map(|()| 1)
            }))
            .await
        }
        Plan::Split(parts) => {
            join_all(parts.into_iter().enumerate().map(|(i, r)| {
                let child = format!("{name}.{i}");
                let msg = GateRequest::FanOut { name: child.clone(), calls: calls[r].to_vec() };
                async move { gate::call::<u32>(env, &child, &msg).await }
            }))
            .await
        }
    };
    let mut told = 0;
    for r in results {
        told += r.map_err(|e| worker::Error::RustError(e.to_string()))?;
    }
    Ok(told)
}
