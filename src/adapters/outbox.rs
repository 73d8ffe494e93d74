//! The transactional outbox of domain events (`domain::event`).
//!
//! Contract for producers (content routes): build an `Event`, put
//! `outbox::record(&db, &event)?` in the SAME D1 batch as the change (the
//! event exists iff the change committed while the account had an enabled
//! webhook endpoint), and after the batch succeeds call
//! `outbox::dispatch(&app, event)`, which hands it to the webhook queue off
//! the hot path. A sweep re-sends outbox rows never marked sent.
//!
//! The webhook pipeline owns what happens after `dispatch`.

use serde::Deserialize;
use worker::{D1Database, D1PreparedStatement, Env};

use crate::adapters::d1;
use crate::adapters::queue::{send, QUEUE_BINDING};
use crate::domain::event::{Event, EventType};
use crate::domain::webhook::Job;
use crate::error::ApiResult;
use crate::http::{now_ms, AppState};

/// The outbox insert to run in the same batch as the change the event
/// describes, written only when the account has an enabled webhook endpoint
/// in that transaction: an event nobody subscribes to was written and then
/// marked sent for nothing, 5 of the 13 D1 rows a Jes wrote (`make bench`).
pub fn record(db: &D1Database, event: &Event) -> ApiResult<D1PreparedStatement> {
    let subscribed = |n: usize| format!("EXISTS (SELECT 1 FROM webhook_endpoints WHERE user_id = ?{n} AND enabled = 1)");
    record_if(db, event, Some((&subscribed, &[d1::V::T(&event.account_id)])))
}

/// `record`, written only when `only_if` holds in the batch's transaction.
pub fn record_if(db: &D1Database, event: &Event, only_if: Option<d1::OnlyIf<'_>>) -> ApiResult<D1PreparedStatement> {
    d1::insert_if(
        db,
        "INSERT INTO event_outbox (id, account_id, type, payload, created_at)",
        &[
            (&event.id).into(),
            (&event.account_id).into(),
            event.kind.as_str().into(),
            d1::V::T(&serde_json::to_string(&event.data)?),
            event.created_at.into(),
        ],
        only_if,
    )
}

/// After the change committed: hand the event to the webhook pipeline without
/// delaying the response.
pub fn dispatch(app: &AppState, event: Event) {
    let env = app.env.clone();
    app.defer("webhook dispatch", async move { enqueue_event(&env, event).await });
}

/// Hands a committed event to the queue and marks its outbox row sent. No
/// row (nobody was subscribed when it committed) or one already sent: nothing
/// to do. When no enabled endpoint of the account is left, the row is marked
/// sent without a queue message.
pub async fn enqueue_event(env: &Env, event: Event) -> ApiResult<()> {
    let db = d1::db(env)?;
    let now = now_ms();
    let row: Option<d1::Row> = d1::stmt(
        &db,
        "SELECT EXISTS (SELECT 1 FROM webhook_endpoints WHERE user_id = ?2 AND enabled = 1) AS subscribed \
         FROM event_outbox WHERE id = ?1 AND sent_at IS NULL",
        &[(&event.id).into(), (&event.account_id).into()],
    )?
    .first(None)
    .await?;
    let Some(row) = row else { return Ok(()) };
    let id = event.id.clone();
    if row.flag("subscribed") {
        send(env, QUEUE_BINDING, &Job::FanOut { event }).await?;
    }
    d1::stmt(&db, "UPDATE event_outbox SET sent_at = ?1 WHERE id = ?2 AND sent_at IS NULL", &[now.into(), (&id).into()])?
        .run()
        .await?;
    Ok(())
}

#[derive(Deserialize)]
pub struct OutboxRow {
    pub id: String,
    account_id: String,
    #[serde(rename = "type")]
    kind: String,
    payload: String,
    created_at: f64,
    /// The delivery the event is read for, when selected with it (redelivery).
    pub delivery_id: Option<String>,
}

impl OutboxRow {
    /// The event as it was recorded, or `None` (logged under `what`) when the
    /// row cannot be read.
    pub fn into_event(self, what: &str) -> Option<Event> {
        let (Some(kind), Ok(data)) = (EventType::parse(&self.kind), serde_json::from_str(&self.payload)) else {
            crate::log::error(what, "unreadable outbox row", &self.id);
            return None;
        };
        Some(Event { id: self.id, kind, account_id: self.account_id, created_at: self.created_at as i64, data })
    }
}
