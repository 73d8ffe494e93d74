//! The scope catalog (seed 000), presets (API.md) and the set arithmetic the
//! auth layer needs. Scopes are fixed at key creation.

use serde::Serialize;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Scope {
    WriteJes,
    WriteJesclip,
    WriteComment,
    ReadComment,
    ReadEngagement,
    WebhooksManage,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ScopeInfo {
    pub scope: &'static str,
    pub name: &'static str,
    pub description: &'static str,
    pub routes: &'static [&'static str],
}

/// A scope is written as its name (`write:jes`).
impl Serialize for Scope {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

#[derive(Serialize)]
pub struct Preset {
    pub name: &'static str,
    pub description: &'static str,
    pub scopes: &'static [Scope],
}

impl Scope {
    pub const ALL: [Scope; 6] = [
        Scope::WriteJes,
        Scope::WriteJesclip,
        Scope::WriteComment,
        Scope::ReadComment,
        Scope::ReadEngagement,
        Scope::WebhooksManage,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Scope::WriteJes => "write:jes",
            Scope::WriteJesclip => "write:jesclip",
            Scope::WriteComment => "write:comment",
            Scope::ReadComment => "read:comment",
            Scope::ReadEngagement => "read:engagement",
            Scope::WebhooksManage => "webhooks:manage",
        }
    }

    pub fn parse(s: &str) -> Option<Scope> {
        Scope::ALL.into_iter().find(|sc| sc.as_str() == s)
    }

    fn bit(self) -> u8 {
        1 << (self as u8)
    }

    pub fn info(self) -> ScopeInfo {
        let (name, description, routes): (_, _, &'static [&'static str]) = match self {
            Scope::WriteJes => (
                "Post Jes",
                "Create and edit the bound account's Jes (text + media). Includes bounces and quote-bounces.",
                &["POST /api/posts", "PATCH /api/posts/:id (own only)", "DELETE /api/posts/:id (own only)", "POST /api/posts/:id/bounce"],
            ),
            Scope::WriteJesclip => (
                "Post JesClips",
                "Create and edit the bound account's JesClips (short videos). Media upload is included — no separate media scope.",
                &["POST /api/jesclips", "PATCH /api/jesclips/:id (own only)"],
            ),
            Scope::WriteComment => (
                "Comment",
                "Post comments and replies on any Jes the bound account can see, including its own.",
                &["POST /api/posts/:id/comments", "POST /api/jesclips/:id/comments"],
            ),
            Scope::ReadComment => (
                "Read comments",
                "Read the comment thread on a single Jes by ID. There is no scope that lets you list comments across Jes — you must know the Jes id (e.g. from a webhook).",
                &["GET /api/posts/:id/comments", "GET /api/jesclips/:id/comments"],
            ),
            Scope::ReadEngagement => (
                "Read engagement counts",
                "Read like / comment / bounce / save counts on a single Jes by ID. Useful for analytics dashboards over the bound account's own content.",
                &["(counts embedded in single-Jes GETs)"],
            ),
            Scope::WebhooksManage => (
                "Manage webhooks",
                "Add, remove, and test the webhook endpoints attached to this key. Not required for receiving webhook deliveries — only for managing them via API instead of from the web UI.",
                &["POST /api/auth/api-keys/:id/webhooks", "DELETE /api/auth/api-keys/:id/webhooks/:webhookId"],
            ),
        };
        ScopeInfo { scope: self.as_str(), name, description, routes }
    }
}

pub const PRESETS: [Preset; 4] = [
    Preset {
        name: "scheduler",
        description: "A scheduling tool that posts on a cron.",
        scopes: &[Scope::WriteJes, Scope::WriteJesclip],
    },
    Preset {
        name: "moderation",
        description: "A moderation dashboard that watches comments and manages its own webhook endpoints.",
        scopes: &[Scope::ReadComment, Scope::ReadEngagement, Scope::WebhooksManage],
    },
    Preset {
        name: "cross-poster",
        description: "A cross-poster that publishes elsewhere first.",
        scopes: &[Scope::WriteJes, Scope::WriteComment],
    },
    Preset {
        name: "read-only",
        description: "Dashboards and analytics that must never publish.",
        scopes: &[Scope::ReadComment, Scope::ReadEngagement],
    },
];

/// A set of scopes as a bit set: cheap to copy into the Durable Object protocol.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ScopeSet(u8);

impl ScopeSet {
    pub const EMPTY: ScopeSet = ScopeSet(0);

    pub fn of(scopes: &[Scope]) -> ScopeSet {
        ScopeSet(scopes.iter().fold(0, |acc, s| acc | s.bit()))
    }

    pub fn all() -> ScopeSet {
        ScopeSet::of(&Scope::ALL)
    }

    pub fn from_bits(bits: u8) -> ScopeSet {
        ScopeSet(bits & ScopeSet::all().0)
    }

    pub fn bits(self) -> u8 {
        self.0
    }

    pub fn contains(self, s: Scope) -> bool {
        self.0 & s.bit() != 0
    }

    pub fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// Scopes of `required` that `self` lacks, in catalog order.
    pub fn missing(self, required: ScopeSet) -> Vec<&'static str> {
        Scope::ALL.into_iter().filter(|s| required.contains(*s) && !self.contains(*s)).map(Scope::as_str).collect()
    }

    /// Scopes as stored on a key row: space-separated names (unknown ones ignored).
    pub fn from_stored(s: &str) -> ScopeSet {
        ScopeSet(s.split(' ').filter_map(Scope::parse).fold(0, |acc, sc| acc | sc.bit()))
    }

    pub fn names(self) -> Vec<&'static str> {
        Scope::ALL.into_iter().filter(|s| self.contains(*s)).map(Scope::as_str).collect()
    }

    /// Parses a list of scope names, or a preset. Exactly one of the two must be given.
    pub fn parse_request(scopes: Option<&[String]>, preset: Option<&str>) -> Result<ScopeSet, String> {
        match (scopes, preset) {
            (Some(_), Some(_)) => Err("give either scopes or preset, not both".into()),
            (None, None) => Err("scopes: at least one scope (or a preset) is required".into()),
            (None, Some(p)) => PRESETS
                .iter()
                .find(|pr| pr.name == p)
                .map(|pr| ScopeSet::of(pr.scopes))
                .ok_or_else(|| format!("preset: unknown preset '{p}'")),
            (Some(list), None) => {
                if list.is_empty() {
                    return Err("scopes: at least one scope is required".into());
                }
                if list.len() > Scope::ALL.len() * 2 {
                    return Err("scopes: too many entries".into());
                }
                let mut set = ScopeSet::EMPTY;
                for name in list {
                    let s = Scope::parse(name).ok_or_else(|| format!("scopes: unknown scope '{}'", printable(name)))?;
                    set.0 |= s.bit();
                }
                Ok(set)
            }
        }
    }
}

/// A user-supplied string made safe to echo in a message.
fn printable(s: &str) -> String {
    s.chars().filter(|c| !c.is_control()).take(64).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_lists_required_scopes_the_set_lacks_in_catalog_order() {
        let have = ScopeSet::of(&[Scope::WriteJes]);
        let need = ScopeSet::of(&[Scope::ReadComment, Scope::WriteJes, Scope::WriteComment]);
        assert_eq!(have.missing(need), vec!["write:comment", "read:comment"]);
        assert!(ScopeSet::all().missing(need).is_empty());
    }

    #[test]
    fn presets_resolve_to_their_documented_scopes() {
        let s = ScopeSet::parse_request(None, Some("moderation")).unwrap();
        assert_eq!(s.names(), vec!["read:comment", "read:engagement", "webhooks:manage"]);
        let s = ScopeSet::parse_request(None, Some("scheduler")).unwrap();
        assert_eq!(s.names(), vec!["write:jes", "write:jesclip"]);
        assert!(ScopeSet::parse_request(None, Some("admin")).is_err());
    }

    #[test]
    fn unknown_or_empty_scope_lists_are_refused_naming_the_field() {
        let e = ScopeSet::parse_request(Some(&["write:jes".into(), "admin:all".into()]), None).unwrap_err();
        assert!(e.starts_with("scopes:") && e.contains("admin:all"));
        assert!(ScopeSet::parse_request(Some(&[]), None).is_err());
        assert!(ScopeSet::parse_request(None, None).is_err());
        assert!(ScopeSet::parse_request(Some(&["write:jes".into()]), Some("scheduler")).is_err());
    }

    #[test]
    fn bits_round_trip_and_ignore_unknown_bits() {
        let s = ScopeSet::of(&[Scope::WebhooksManage, Scope::WriteJesclip]);
        assert_eq!(ScopeSet::from_bits(s.bits()), s);
        assert_eq!(ScopeSet::from_bits(0xff), ScopeSet::all());
    }

    #[test]
    fn stored_scope_lists_round_trip() {
        let s = ScopeSet::of(&[Scope::WriteJes, Scope::ReadComment]);
        assert_eq!(ScopeSet::from_stored(&s.names().join(" ")), s);
        assert_eq!(ScopeSet::from_stored("write:jes bogus"), ScopeSet::of(&[Scope::WriteJes]));
        assert_eq!(ScopeSet::from_stored(""), ScopeSet::EMPTY);
    }

    #[test]
    fn every_scope_parses_back_from_its_name() {
        for s in Scope::ALL {
            assert_eq!(Scope::parse(s.as_str()), Some(s));
        }
    }
}
