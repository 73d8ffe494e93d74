//! Queue and cron entry points of the webhook pipeline, thin: decode each
//! message, run its step, ack or retry it on its own. The handler never fails
//! the batch (that would re-deliver every message in it), and a message that
//! does not decode is acked and logged rather than retried forever.

use futures_util::future::join_all;
use worker::{Env, MessageBatch, MessageExt, QueueRetryOptionsBuilder, RawMessage};

use crate::adapters::queue::DLQ_NAME;
use crate::domain::webhook::Job;
use crate::engine::delivery::{self as pipeline, Action, INTERNAL_RETRY_SECS};
use crate::log;

async fn step(env: &Env, job: &Job, dead_letters: bool, delays: &[u32]) -> Action {
    let result = match (dead_letters, job) {
        (true, _) => pipeline::dead_letter(env, job).await,
        (false, Job::FanOut { event }) => pipeline::fan_out(env, event).await.map(|_| Action::Ack),
        (false, Job::Deliver(d)) => pipeline::deliver(env, d, delays).await,
    };
    result.unwrap_or_else(|e| {
        let id = match job {
            Job::FanOut { event } => event.id.as_str(),
            Job::Deliver(d) => d.delivery_id.as_str(),
        };
        log::error(id, "webhook step failed; retrying", &e.to_string());
        Action::RetryIn(INTERNAL_RETRY_SECS)
    })
}

async fn handle(env: &Env, msg: &RawMessage, dead_letters: bool, delays: &[u32]) -> Action {
    let job = msg.body().as_string().ok_or_else(|| "body is not a string".to_string()).and_then(|s| Job::decode(&s));
    match job {
        Ok(job) => step(env, &job, dead_letters, delays).await,
        Err(e) => {
            log::error(&msg.id(), "undecodable webhook message dropped", &e);
            Action::Ack
        }
    }
}

/// `#[event(queue)]`: the main queue and its dead-letter queue.
pub async fn batch(batch: MessageBatch<String>, env: Env) {
    let dead_letters = batch.queue() == DLQ_NAME;
    let delays = pipeline::retry_delays(&env);
    let messages: Vec<RawMessage> = batch.raw_iter().collect();
    // Messages run concurrently: one slow receiver does not hold up the rest.
    let actions = join_all(messages.iter().map(|m| handle(&env, m, dead_letters, &delays))).await;
    for (m, action) in messages.iter().zip(actions) {
        match action {
            Action::Ack => m.ack(),
            Action::RetryIn(secs) => m.retry_with_options(&QueueRetryOptionsBuilder::new().with_delay_seconds(secs).build()),
        }
    }
}
