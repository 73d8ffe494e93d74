//! Domain events about an account's content and keys, delivered to webhooks:
//! the catalog (`EventType`) and the event itself. Pure; writing and sending
//! them is `adapters::outbox`.

use serde::{Deserialize, Serialize};

use crate::domain::ids;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum EventType {
    #[serde(rename = "post.created")]
    PostCreated,
    #[serde(rename = "post.updated")]
    PostUpdated,
    #[serde(rename = "post.deleted")]
    PostDeleted,
    #[serde(rename = "post.bounced")]
    PostBounced,
    #[serde(rename = "comment.created")]
    CommentCreated,
    #[serde(rename = "jesclip.created")]
    JesclipCreated,
    #[serde(rename = "webhook.test")]
    WebhookTest,
    #[serde(rename = "key.quota_threshold")]
    KeyQuotaThreshold,
    #[serde(rename = "key.expiring")]
    KeyExpiring,
    #[serde(rename = "key.revoked")]
    KeyRevoked,
    #[serde(rename = "key.leaked")]
    KeyLeaked,
    #[serde(rename = "key.canary_used")]
    KeyCanaryUsed,
}

impl EventType {
    /// The catalog, in the order lists are stored and shown.
    pub const ALL: [EventType; 12] = [
        EventType::PostCreated,
        EventType::PostUpdated,
        EventType::PostDeleted,
        EventType::PostBounced,
        EventType::CommentCreated,
        EventType::JesclipCreated,
        EventType::WebhookTest,
        EventType::KeyQuotaThreshold,
        EventType::KeyExpiring,
        EventType::KeyRevoked,
        EventType::KeyLeaked,
        EventType::KeyCanaryUsed,
    ];

    pub fn parse(s: &str) -> Option<EventType> {
        EventType::ALL.into_iter().find(|t| t.as_str() == s)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            EventType::PostCreated => "post.created",
            EventType::PostUpdated => "post.updated",
            EventType::PostDeleted => "post.deleted",
            EventType::PostBounced => "post.bounced",
            EventType::CommentCreated => "comment.created",
            EventType::JesclipCreated => "jesclip.created",
            EventType::WebhookTest => "webhook.test",
            EventType::KeyQuotaThreshold => "key.quota_threshold",
            EventType::KeyExpiring => "key.expiring",
            EventType::KeyRevoked => "key.revoked",
            EventType::KeyLeaked => "key.leaked",
            EventType::KeyCanaryUsed => "key.canary_used",
        }
    }

    /// Owner notices about one key: delivered to that key's own endpoints
    /// only, whatever its scopes and even once it is revoked (`data.keyId`).
    pub fn is_key_event(self) -> bool {
        matches!(
            self,
            EventType::KeyQuotaThreshold
                | EventType::KeyExpiring
                | EventType::KeyRevoked
                | EventType::KeyLeaked
                | EventType::KeyCanaryUsed
        )
    }
}

/// One event: `{id, type, createdAt, data}` on the wire.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Event {
    /// `evt_<ULID>`: stable across retries (it becomes the `webhook-id`).
    pub id: String,
    #[serde(rename = "type")]
    pub kind: EventType,
    /// The account the event is about; only its keys' endpoints may receive it.
    pub account_id: String,
    /// Unix milliseconds.
    pub created_at: i64,
    pub data: serde_json::Value,
}

impl Event {
    /// `random`: the id's random part (`adapters::crypto::random_bytes`).
    pub fn new(kind: EventType, account_id: &str, now_ms: i64, random: [u8; 10], data: serde_json::Value) -> Event {
        Event {
            id: format!("evt_{}", ids::ulid(now_ms, random)),
            kind,
            account_id: account_id.to_string(),
            created_at: now_ms,
            data,
        }
    }
}
