//! Webhook rules, pure, by topic: Standard Webhooks signing, endpoint URL checks against
//! SSRF, which key scopes may see which event types, the retry schedule, how
//! an attempt's outcome is judged, when a failing endpoint is disabled, the
//! stored form of signing secrets, and the queue messages. No bindings here:
//! time, randomness and configuration come in as arguments.

//! Here: which key scopes may see which event types. `url`: endpoint URL
//! checks against SSRF. `signing`: Standard Webhooks signatures, the payload
//! and the stored form of secrets. `delivery`: the retry schedule, verdicts,
//! endpoint health, statuses and the queue messages. Their items are
//! re-exported here, so callers write `domain::webhook::validate_url`.

pub mod delivery;
pub mod signing;
pub mod url;

pub use delivery::*;
pub use signing::*;
pub use url::*;

use crate::auth::scope::{Scope, ScopeSet};
use crate::domain::event::EventType;

/// The scopes that let a key see an event type; any one of them is enough.
/// Empty means every key (the test event carries nothing about the account).
pub fn readers(kind: EventType) -> &'static [Scope] {
    use EventType::*;
    match kind {
        PostCreated | PostUpdated | PostDeleted | PostBounced => &[Scope::WriteJes, Scope::ReadEngagement],
        JesclipCreated => &[Scope::WriteJesclip, Scope::ReadEngagement],
        CommentCreated => &[Scope::ReadComment],
        // The test event carries nothing; key notices concern the key itself.
        WebhookTest | KeyQuotaThreshold | KeyExpiring | KeyRevoked | KeyLeaked | KeyCanaryUsed => &[],
    }
}

/// True when a key with `scopes` may receive events of `kind`: a webhook never
/// tells more than its key could read.
pub fn visible_to(kind: EventType, scopes: ScopeSet) -> bool {
    let r = readers(kind);
    r.is_empty() || r.iter().any(|s| scopes.contains(*s))
}

/// A request's `events` list: non-empty, known names, each visible to the key.
/// Duplicates collapse; the result is in catalog order.
pub fn parse_events(list: &[String], scopes: ScopeSet) -> Result<Vec<EventType>, String> {
    if list.is_empty() {
        return Err("events: at least one event type is required".into());
    }
    if list.len() > EventType::ALL.len() * 2 {
        return Err("events: too many entries".into());
    }
    let mut wanted = Vec::new();
    for name in list {
        let kind = EventType::parse(name).ok_or_else(|| {
            let shown: String = name.chars().filter(|c| !c.is_control()).take(64).collect();
            format!("events: unknown event type '{shown}'")
        })?;
        if !visible_to(kind, scopes) {
            let need: Vec<&str> = readers(kind).iter().map(|s| s.as_str()).collect();
            return Err(format!(
                "events: '{}' needs the key to hold {}{}",
                kind.as_str(),
                if need.len() > 1 { "one of " } else { "" },
                need.join(", ")
            ));
        }
        wanted.push(kind);
    }
    Ok(EventType::ALL.into_iter().filter(|k| wanted.contains(k)).collect())
}

pub fn events_to_stored(events: &[EventType]) -> String {
    events.iter().map(|e| e.as_str()).collect::<Vec<_>>().join(" ")
}

pub fn stored_events(s: &str) -> Vec<EventType> {
    s.split(' ').filter_map(EventType::parse).collect()
}

/// Fan-out filter: the endpoint subscribed to `kind` and its key may see it.
pub fn wants(endpoint_events: &str, key_scopes: &str, kind: EventType) -> bool {
    stored_events(endpoint_events).contains(&kind) && visible_to(kind, ScopeSet::from_stored(key_scopes))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(scopes: &[Scope]) -> ScopeSet {
        ScopeSet::of(scopes)
    }

    #[test]
    fn each_event_type_is_visible_only_to_keys_that_could_read_it() {
        use EventType::*;
        assert!(visible_to(CommentCreated, set(&[Scope::ReadComment])));
        assert!(!visible_to(CommentCreated, set(&[Scope::WriteComment, Scope::ReadEngagement, Scope::WriteJes])));
        for post in [PostCreated, PostUpdated, PostDeleted, PostBounced] {
            assert!(visible_to(post, set(&[Scope::WriteJes])));
            assert!(visible_to(post, set(&[Scope::ReadEngagement])));
            assert!(!visible_to(post, set(&[Scope::WriteJesclip, Scope::ReadComment, Scope::WebhooksManage])));
        }
        assert!(visible_to(JesclipCreated, set(&[Scope::WriteJesclip])));
        assert!(visible_to(JesclipCreated, set(&[Scope::ReadEngagement])));
        assert!(!visible_to(JesclipCreated, set(&[Scope::WriteJes])));
        assert!(visible_to(WebhookTest, ScopeSet::EMPTY));
    }

    #[test]
    fn event_lists_are_checked_against_the_keys_scopes_naming_the_event() {
        let moderation = set(&[Scope::ReadComment, Scope::ReadEngagement, Scope::WebhooksManage]);
        let l = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let got = parse_events(&l(&["webhook.test", "comment.created", "post.created", "comment.created"]), moderation).unwrap();
        assert_eq!(got, vec![EventType::PostCreated, EventType::CommentCreated, EventType::WebhookTest]);
        let e = parse_events(&l(&["comment.created"]), set(&[Scope::WriteJes])).unwrap_err();
        assert!(e.starts_with("events:") && e.contains("comment.created") && e.contains("read:comment"), "{e}");
        let e = parse_events(&l(&["post.deleted"]), set(&[Scope::ReadComment])).unwrap_err();
        assert!(e.contains("one of write:jes, read:engagement"), "{e}");
        assert!(parse_events(&l(&["post.exploded"]), moderation).unwrap_err().contains("unknown event type 'post.exploded'"));
        assert!(parse_events(&[], moderation).unwrap_err().starts_with("events:"));
    }

    #[test]
    fn fan_out_needs_both_the_subscription_and_the_scope() {
        assert!(wants("post.created comment.created", "read:comment write:jes", EventType::CommentCreated));
        assert!(!wants("post.created", "read:comment write:jes", EventType::CommentCreated));
        // A subscription stored before a rule tightened still cannot leak.
        assert!(!wants("comment.created", "write:jes", EventType::CommentCreated));
        assert_eq!(stored_events(&events_to_stored(&EventType::ALL)), EventType::ALL.to_vec());
    }
}
