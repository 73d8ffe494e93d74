//! The transactional outbox of domain events (`domain::event`).
//!
//! Contract for producers (content routes): build an `Event`, put
//! `outbox::record(&db, &event)?` in the SAME D1 batch as the change (the
//! event exists iff the change committed), and after the batch succeeds call
//! `outbox::dispatch(&app, event)`, which hands it to the webhook queue off
//! the hot path. A sweep re-sends outbox rows never marked sent.
//!
//! The webhook pipeline owns what happens after `dispatch`.

use worker::{D1Database, D1PreparedStatement};

use crate::adapters::d1;
use crate::domain::event::Event;
use crate::error::ApiResult;
use crate::http::AppState;

/// The outbox insert to run in the same batch as the change the event describes.
pub fn record(db: &D1Database, event: &Event) -> ApiResult<D1PreparedStatement> {
    d1::stmt(
        db,
        "INSERT INTO event_outbox (id, account_id, type, payload, created_at) VALUES (?1, ?2, ?3, ?4, ?5)",
        &[
            (&event.id).into(),
            (&event.account_id).into(),
            event.kind.as_str().into(),
            d1::V::T(&serde_json::to_string(&event.data)?),
            event.created_at.into(),
        ],
    )
}

/// After the change committed: hand the event to the webhook pipeline without
/// delaying the response.
pub fn dispatch(app: &AppState, event: Event) {
    let env = app.env.clone();
    app.defer("webhook dispatch", async move { crate::adapters::webhooks::enqueue_event(&env, event).await });
}
