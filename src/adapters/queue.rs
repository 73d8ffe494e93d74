//! The webhook queues (binding `WEBHOOKS`, its dead-letter queue
//! `WEBHOOKS_DLQ`): sending jobs, which both Workers do.

use worker::Env;

use crate::domain::webhook::Job;
use crate::error::ApiResult;

pub const QUEUE_BINDING: &str = "WEBHOOKS";
pub const DLQ_BINDING: &str = "WEBHOOKS_DLQ";
pub const DLQ_NAME: &str = "jestha-webhooks-dlq";

/// One message: a batch of one, so the wasm holds one copy of workers-rs's
/// send code instead of two.
pub async fn send(env: &Env, binding: &str, job: &Job) -> ApiResult<()> {
    send_many(env, binding, std::slice::from_ref(job)).await
}

/// Sends in batches within the platform's limits (100 messages, 256 KB).
pub async fn send_many(env: &Env, binding: &str, jobs: &[Job]) -> ApiResult<()> {
    let queue = env.queue(binding)?;
    let mut chunk: Vec<String> = Vec::new();
    let mut bytes = 0;
    for job in jobs {
        let s = job.encode();
        if !chunk.is_empty() && (chunk.len() == 100 || bytes + s.len() > 200_000) {
            queue.send_batch(std::mem::take(&mut chunk)).await?;
            bytes = 0;
        }
        bytes += s.len() + 64;
        chunk.push(s);
    }
    if !chunk.is_empty() {
        queue.send_batch(chunk).await?;
    }
    Ok(())
}
