//! Who is calling and what a route asks of them: the types the guard
//! produces and everything after it (handlers, idempotency, MCP) reads.
//! Pure: no bindings, no request plumbing.

use super::decide::{CredentialKind, Need, Profile};
use super::scope::{Scope, ScopeSet};
use crate::domain::limits::Standings;

/// What a route asks of its caller.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// No credential (signup, login, health, documents).
    Public,
    /// Any valid API key (no scope needed) or session.
    Authenticated,
    /// API keys need every listed scope; sessions hold them all.
    Scopes(&'static [Scope]),
    /// API keys need at least one of the listed scopes; the handler decides
    /// what each allows (media upload: images for write:jes, videos for write:jesclip).
    AnyScope(&'static [Scope]),
    /// Sessions only: API keys get 403 session_only whatever their scopes.
    SessionOnly,
    /// Anyone; a presented credential is still checked and counted, and the
    /// handler sees `Option<Principal>` (e.g. media of a public Jes).
    Optional,
    /// API keys only, no scope needed (key introspection); sessions and
    /// OAuth tokens get 403.
    KeyOnly,
    /// API keys and OAuth tokens, no scope needed (MCP: its tools are checked
    /// one by one); sessions get 403.
    KeyOrToken,
    /// Operators' sessions only (`ADMIN_USERNAMES`): keys and tokens get 403
    /// session_only, other sessions 403 forbidden (decided by the guard).
    Operator,
}

impl Access {
    pub fn need(self) -> Option<Need> {
        match self {
            Access::Public => None,
            Access::Authenticated | Access::Optional => Some(Need::default()),
            Access::Scopes(s) => Some(Need { scopes: ScopeSet::of(s).bits(), ..Need::default() }),
            Access::AnyScope(s) => Some(Need { scopes: ScopeSet::of(s).bits(), any: true, ..Need::default() }),
            Access::SessionOnly | Access::Operator => Some(Need { session_only: true, ..Need::default() }),
            Access::KeyOnly => Some(Need { key_only: true, no_oauth: true, ..Need::default() }),
            Access::KeyOrToken => Some(Need { key_only: true, ..Need::default() }),
        }
    }
}

/// The authenticated caller, available to handlers as `Ctx::who`.
#[derive(Debug, Clone)]
pub struct Principal {
    pub kind: CredentialKind,
    /// Key id, session id, or (OAuth) grant id.
    pub id: String,
    pub user_id: String,
    /// The key's label or the OAuth client's name (empty for sessions).
    pub label: String,
    pub scopes: ScopeSet,
    pub standings: Standings,
    /// The account, as cached with the credential.
    pub profile: Option<Profile>,
}

impl Principal {
    /// Sessions act with every scope; keys with what they were created with.
    pub fn can(&self, scope: Scope) -> bool {
        self.kind == CredentialKind::Session || self.scopes.contains(scope)
    }

    /// What an `Idempotency-Key` belongs to: this one credential, never its
    /// account, so a replay only returns what this credential's own handler
    /// answered (`key:…`, `session:…`, or `oauth:<grant>` whose refreshed
    /// tokens share the grant, so a retry across a refresh still replays).
    pub fn scope_id(&self) -> String {
        let kind = match self.kind {
            CredentialKind::Key => "key",
            CredentialKind::Session => "session",
            CredentialKind::OAuth => "oauth",
        };
        format!("{kind}:{}", self.id)
    }

    pub fn is_key(&self) -> bool {
        self.kind == CredentialKind::Key
    }

    pub fn is_session(&self) -> bool {
        self.kind == CredentialKind::Session
    }

    /// `via: {label}` for what a key or an OAuth client creates.
    pub fn via(&self) -> Option<&str> {
        (!self.is_session()).then_some(self.label.as_str())
    }
}

/// A request the MCP server makes on behalf of a key it has already
/// authenticated and counted (one `tools/call` is one request). Only code in
/// this crate can attach it: clients cannot set request extensions.
#[derive(Debug, Clone)]
pub struct Delegated(pub Principal);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_access_maps_to_the_need_the_gate_checks() {
        assert_eq!(Access::Public.need(), None);
        assert!(Access::SessionOnly.need().unwrap().session_only);
        let n = Access::Scopes(&[Scope::WriteJes, Scope::ReadComment]).need().unwrap();
        assert_eq!(ScopeSet::from_bits(n.scopes).names(), vec!["write:jes", "read:comment"]);
    }
}
