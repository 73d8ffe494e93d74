//! The audit log of an account: what happened to its credentials, when, from
//! where, by whom (the owner, an operator, or the system). Pure: the event, the
//! SQL that records it, what a row looks like in `GET /api/account/audit`.
//! `adapters::audit` binds an event into a D1 statement that joins the batch
//! of the change it records, so a change and its row commit together or not
//! at all; a conditional change carries its condition into the row's insert.

use serde::Serialize;

use crate::domain::clock::{rfc3339, DAY_MS};

/// Rows are kept this long (the cron deletes older ones).
pub const KEEP_DAYS: i64 = 90;
/// Rows deleted per cron run at most.
pub const SWEEP_BATCH: i64 = 1000;

/// Declares `Action`: each event is one line, its variant and the name the
/// contract gives it (API.md, "Audit log"). Adding an event is adding a line.
macro_rules! actions {
    ($($(#[$doc:meta])* $variant:ident => $name:literal,)+) => {
        /// What happened.
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        pub enum Action {
            $($(#[$doc])* $variant,)+
        }

        impl Action {
            pub const ALL: &'static [Action] = &[$(Action::$variant),+];

            pub fn as_str(self) -> &'static str {
                match self {
                    $(Action::$variant => $name,)+
                }
            }
        }
    };
}

actions! {
    /// A sign-in (data: `{method: password | totp | recovery_code}`).
    Login => "auth.login",
    /// A wrong password for an existing account, or a wrong two-factor code.
    LoginFailed => "auth.login_failed",
    TwoFactorEnabled => "2fa.enabled",
    TwoFactorDisabled => "2fa.disabled",
    RecoveryCodeUsed => "2fa.recovery_code_used",
    PasswordChanged => "account.password_changed",
    EmailChanged => "account.email_changed",
    KeyCreated => "key.created",
    KeyRenamed => "key.renamed",
    /// data: `{reason}` (owner, operator, leaked, …).
    KeyRevoked => "key.revoked",
    KeyLeaked => "key.leaked",
    GrantCreated => "grant.created",
    /// data: `{reason}`.
    GrantRevoked => "grant.revoked",
    WebhookCreated => "webhook.created",
    WebhookDeleted => "webhook.deleted",
    SessionRevoked => "session.revoked",
    AccountSuspended => "account.suspended",
    AccountUnsuspended => "account.unsuspended",
}

/// Who did it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ActorType {
    /// The account's owner (a session of theirs, or their password at login).
    User,
    /// An operator (`ADMIN_USERNAMES`), acting on someone else's account.
    Operator,
    /// The service itself (a leak report, a reused refresh token).
    System,
}

impl ActorType {
    pub fn as_str(self) -> &'static str {
        match self {
            ActorType::User => "user",
            ActorType::Operator => "operator",
            ActorType::System => "system",
        }
    }
}

/// What it was done to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TargetType {
    Account,
    Session,
    Key,
    Grant,
    Webhook,
    TwoFactor,
}

impl TargetType {
    pub fn as_str(self) -> &'static str {
        match self {
            TargetType::Account => "account",
            TargetType::Session => "session",
            TargetType::Key => "key",
            TargetType::Grant => "grant",
            TargetType::Webhook => "webhook",
            TargetType::TwoFactor => "two_factor",
        }
    }
}

/// Where a request came from: its address and user agent (at most 256 characters).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Origin {
    pub ip: Option<String>,
    pub user_agent: Option<String>,
}

impl Origin {
    pub fn new(ip: Option<String>, user_agent: Option<&str>) -> Origin {
        Origin { ip, user_agent: user_agent.map(|ua| ua.chars().filter(|c| !c.is_control()).take(256).collect()) }
    }
}

/// One audit row, before it has an id and a time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    /// Whose log: the account that was touched.
    pub user_id: String,
    pub action: Action,
    pub actor_type: ActorType,
    pub actor_id: Option<String>,
    pub target: Option<(TargetType, String)>,
    pub origin: Origin,
    /// A small JSON object (reason, method). Never a secret.
    pub data: serde_json::Value,
}

impl Event {
    /// The owner did `action` to their own account.
    pub fn by_owner(user_id: &str, action: Action, origin: &Origin) -> Event {
        Event {
            user_id: user_id.to_string(),
            action,
            actor_type: ActorType::User,
            actor_id: Some(user_id.to_string()),
            target: None,
            origin: origin.clone(),
            data: serde_json::json!({}),
        }
    }

    /// Operator `operator_id` did `action` to account `user_id`.
    pub fn by_operator(operator_id: &str, user_id: &str, action: Action, origin: &Origin) -> Event {
        Event {
            actor_type: ActorType::Operator,
            actor_id: Some(operator_id.to_string()),
            ..Event::by_owner(user_id, action, origin)
        }
    }

    /// The service did `action` to account `user_id` (no person acted).
    pub fn by_system(user_id: &str, action: Action) -> Event {
        Event { actor_type: ActorType::System, actor_id: None, ..Event::by_owner(user_id, action, &Origin::default()) }
    }

    pub fn target(mut self, kind: TargetType, id: &str) -> Event {
        self.target = Some((kind, id.to_string()));
        self
    }

    pub fn data(mut self, data: serde_json::Value) -> Event {
        self.data = data;
        self
    }

    /// The row's bound values, in `insert_sql`'s order (?1..?11): id, user,
    /// action, actor type and id, target type and id, ip, user agent, data, time.
    pub fn values(&self, id: &str, at: i64) -> Row {
        Row {
            id: id.to_string(),
            user_id: self.user_id.clone(),
            action: self.action.as_str().to_string(),
            actor_type: self.actor_type.as_str().to_string(),
            actor_id: self.actor_id.clone(),
            target_type: self.target.as_ref().map(|(t, _)| t.as_str().to_string()),
            target_id: self.target.as_ref().map(|(_, id)| id.clone()),
            ip: self.origin.ip.clone(),
            user_agent: self.origin.user_agent.clone(),
            data: self.data.to_string(),
            at: at as f64,
        }
    }
}

/// The insert of one row (?1..?11, as `Event::values`). With `condition`
/// (SQL over parameters from ?12 on), the row is written only when it holds
/// inside the same transaction: a refused change leaves no audit row.
pub fn insert_sql(condition: Option<&str>) -> String {
    const COLUMNS: &str = "id, user_id, action, actor_type, actor_id, target_type, target_id, ip, user_agent, data, at";
    match condition {
        None => format!("INSERT INTO audit_log ({COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)"),
        Some(cond) => {
            format!("INSERT INTO audit_log ({COLUMNS}) SELECT ?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11 WHERE {cond}")
        }
    }
}

/// Rows older than this (unix ms) are gone from the log.
pub fn cutoff(now_ms: i64) -> i64 {
    now_ms - KEEP_DAYS * DAY_MS
}

/// An audit row as stored (and as `GET /api/account/audit` reads it, built
/// from a D1 row in `adapters::audit`).
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    pub id: String,
    pub user_id: String,
    pub action: String,
    pub actor_type: String,
    pub actor_id: Option<String>,
    pub target_type: Option<String>,
    pub target_id: Option<String>,
    pub ip: Option<String>,
    pub user_agent: Option<String>,
    pub data: String,
    pub at: f64,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Item {
    pub id: String,
    pub action: String,
    pub at: String,
    pub ip: Option<String>,
    pub user_agent: Option<String>,
    pub actor: Party,
    pub target: Option<Party>,
    pub data: serde_json::Value,
}

#[derive(Debug, Serialize)]
pub struct Party {
    #[serde(rename = "type")]
    pub kind: String,
    pub id: Option<String>,
}

impl Row {
    pub fn item(self) -> Item {
        Item {
            action: self.action,
            at: rfc3339(self.at as i64),
            ip: self.ip,
            user_agent: self.user_agent,
            actor: Party { kind: self.actor_type, id: self.actor_id },
            target: self.target_type.map(|kind| Party { kind, id: self.target_id }),
            data: serde_json::from_str(&self.data).unwrap_or_else(|_| serde_json::json!({})),
            id: self.id,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn action_names_are_the_contracts_and_unique() {
        let names: Vec<&str> = Action::ALL.iter().map(|a| a.as_str()).collect();
        let unique: std::collections::HashSet<_> = names.iter().collect();
        assert_eq!(unique.len(), names.len());
        for n in ["auth.login", "2fa.recovery_code_used", "key.renamed", "grant.revoked", "account.suspended"] {
            assert!(names.contains(&n), "{n}");
        }
    }

    #[test]
    fn an_operator_event_is_in_the_touched_accounts_log_with_the_operator_as_actor() {
        let origin = Origin::new(Some("203.0.113.7".into()), Some("curl/8\u{7}"));
        let ev = Event::by_operator("op1", "u1", Action::AccountSuspended, &origin)
            .target(TargetType::Account, "u1")
            .data(serde_json::json!({"reason": "spam"}));
        let row = ev.values("aud_1", 1_700_000_000_000);
        assert_eq!((row.user_id.as_str(), row.actor_type.as_str(), row.actor_id.as_deref()), ("u1", "operator", Some("op1")));
        assert_eq!(row.user_agent.as_deref(), Some("curl/8"), "control characters dropped");
        let item = serde_json::to_value(row.item()).unwrap();
        assert_eq!(item["actor"], serde_json::json!({"type": "operator", "id": "op1"}));
        assert_eq!(item["target"], serde_json::json!({"type": "account", "id": "u1"}));
        assert_eq!(item["userAgent"], "curl/8");
        assert_eq!(item["at"], "2023-11-14T22:13:20Z");
        assert_eq!(item["data"]["reason"], "spam");
    }

    #[test]
    fn system_events_have_no_actor_id_and_long_user_agents_are_cut() {
        let row = Event::by_system("u1", Action::KeyLeaked).values("a", 0);
        assert_eq!((row.actor_type.as_str(), row.actor_id), ("system", None));
        let long = "x".repeat(1000);
        assert_eq!(Origin::new(None, Some(&long)).user_agent.unwrap().len(), 256);
    }

    #[test]
    fn a_conditional_insert_selects_only_when_the_change_happened() {
        let sql = insert_sql(Some("EXISTS (SELECT 1 FROM api_keys WHERE id = ?12)"));
        assert!(sql.contains("SELECT ?1, ?2") && sql.ends_with("WHERE EXISTS (SELECT 1 FROM api_keys WHERE id = ?12)"));
        assert!(insert_sql(None).contains("VALUES (?1,"));
        assert_eq!(cutoff(100 * DAY_MS), 10 * DAY_MS);
    }
}
