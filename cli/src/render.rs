//! The human form of the API's answers (`--json` prints them as they are).
//! Pure: an answer and the time in, text out.

use serde_json::Value;

fn s<'a>(v: &'a Value, k: &str) -> &'a str {
    v.get(k).and_then(Value::as_str).unwrap_or("")
}

/// `42 s`, `3 min 20 s`, `8 h 20 min`.
pub fn duration(secs: i64) -> String {
    let secs = secs.max(0);
    match secs {
        0..60 => format!("{secs} s"),
        60..3600 if secs % 60 == 0 => format!("{} min", secs / 60),
        60..3600 => format!("{} min {} s", secs / 60, secs % 60),
        _ => format!("{} h {} min", secs / 3600, (secs % 3600) / 60),
    }
}

/// `@demo (Demo Person) 01J…`
pub fn user(me: &Value) -> String {
    let display = s(me, "displayName");
    let name = if display.is_empty() { String::new() } else { format!(" ({display})") };
    format!("@{}{name} {}", s(me, "username"), s(me, "id"))
}

/// One policy's standing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Standing {
    pub name: String,
    pub limit: Option<u64>,
    pub remaining: u64,
    /// Seconds until the window resets.
    pub reset_in: i64,
}

pub fn standing_line(st: &Standing) -> String {
    let of = st.limit.map_or(String::new(), |l| format!(" of {l}"));
    format!("{:<10} {}{of} left, resets in {}", st.name, st.remaining, duration(st.reset_in))
}

/// The standings in `GET /api/auth/key`'s `limits` (`reset` in unix seconds).
pub fn key_standings(key: &Value, now: u64) -> Vec<Standing> {
    let mut out = vec![];
    for name in ["minute", "day"] {
        if let Some(l) = key.get("limits").and_then(|l| l.get(name)) {
            out.push(Standing {
                name: name.into(),
                limit: l.get("limit").and_then(Value::as_u64),
                remaining: l.get("remaining").and_then(Value::as_u64).unwrap_or(0),
                reset_in: l.get("reset").and_then(Value::as_i64).unwrap_or(0) - now as i64,
            });
        }
    }
    out
}

/// The standings in the IETF `RateLimit` field (`"minute";r=59;t=42, "day";r=9987;t=30000`),
/// with each policy's quota from `RateLimit-Policy` (`"minute";q=60;w=60, …`).
pub fn header_standings(ratelimit: &str, policy: Option<&str>) -> Vec<Standing> {
    let quotas = policy.map(items).unwrap_or_default();
    items(ratelimit)
        .into_iter()
        .filter_map(|(name, params)| {
            let get = |k: &str| params.iter().find(|(pk, _)| pk == k).and_then(|(_, v)| v.parse::<i64>().ok());
            let limit = quotas
                .iter()
                .find(|(n, _)| *n == name)
                .and_then(|(_, ps)| ps.iter().find(|(k, _)| k == "q"))
                .and_then(|(_, v)| v.parse().ok());
            Some(Standing { remaining: get("r")?.max(0) as u64, reset_in: get("t").unwrap_or(0), limit, name })
        })
        .collect()
}

/// A structured-field list of `"name";k=v;k=v` items (the subset the API sends).
fn items(field: &str) -> Vec<(String, Vec<(String, String)>)> {
    field
        .split(',')
        .filter_map(|item| {
            let mut parts = item.trim().split(';');
            let name = parts.next()?.trim().trim_matches('"').to_string();
            let params = parts
                .filter_map(|p| p.split_once('='))
                .map(|(k, v)| (k.trim().to_string(), v.trim().trim_matches('"').to_string()))
                .collect();
            (!name.is_empty()).then_some((name, params))
        })
        .collect()
}

/// `jestha status` for an API key, from `GET /api/auth/key`.
pub fn key_status(key: &Value, now: u64) -> String {
    let mut lines = vec![format!("{:<10} {} \"{}\" ({})", "key", s(key, "maskedKey"), s(key, "label"), s(key, "status"))];
    let scopes: Vec<&str> =
        key.get("scopes").and_then(Value::as_array).map(|a| a.iter().filter_map(Value::as_str).collect()).unwrap_or_default();
    lines.push(format!("{:<10} {}", "scopes", if scopes.is_empty() { "(none)".to_string() } else { scopes.join(", ") }));
    lines.push(format!("{:<10} {}", "expires", key.get("expiresAt").and_then(Value::as_str).unwrap_or("never")));
    if let Some(allow) = key.get("ipAllowlist").and_then(Value::as_array).filter(|a| !a.is_empty()) {
        let list: Vec<&str> = allow.iter().filter_map(Value::as_str).collect();
        lines.push(format!("{:<10} {}", "allowlist", list.join(", ")));
    }
    lines.extend(key_standings(key, now).iter().map(standing_line));
    lines.join("\n")
}

/// One Jes or JesClip just made.
pub fn created(kind: &str, made: &Value) -> String {
    let media = made.get("media").and_then(Value::as_array).map_or(0, Vec::len);
    let with = if media > 0 { format!(", {media} media") } else { String::new() };
    format!("Posted {kind} {} ({}{with})", s(made, "id"), s(made, "visibility"))
}

/// A page of comments, oldest first, replies marked.
pub fn comments(items: &[Value]) -> String {
    let mut out = vec![];
    for c in items {
        let author = c.get("author").map(|a| s(a, "username")).unwrap_or("");
        let reply = c.get("parentId").and_then(Value::as_str).map_or(String::new(), |p| format!(" (reply to {p})"));
        let via = c.get("via").map(|v| format!(" via {}", s(v, "label"))).unwrap_or_default();
        out.push(format!("{} @{author} {}{reply}{via}", s(c, "id"), s(c, "createdAt")));
        for line in s(c, "content").lines() {
            out.push(format!("    {line}"));
        }
    }
    out.join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn durations_read_naturally() {
        assert_eq!(duration(42), "42 s");
        assert_eq!(duration(120), "2 min");
        assert_eq!(duration(200), "3 min 20 s");
        assert_eq!(duration(30_000), "8 h 20 min");
        assert_eq!(duration(-5), "0 s");
    }

    #[test]
    fn a_key_status_shows_scopes_expiry_and_both_standings() {
        let key = json!({"maskedKey": "jes_live_a1b2****", "label": "ci", "status": "active", "scopes": ["write:jes", "read:comment"],
            "expiresAt": null, "ipAllowlist": [], "limits": {"minute": {"limit": 60, "remaining": 59, "reset": 1042, "window": 60},
            "day": {"limit": 10000, "remaining": 9987, "reset": 31000, "window": 86400}}});
        assert_eq!(
            key_status(&key, 1000),
            "key        jes_live_a1b2**** \"ci\" (active)\n\
             scopes     write:jes, read:comment\n\
             expires    never\n\
             minute     59 of 60 left, resets in 42 s\n\
             day        9987 of 10000 left, resets in 8 h 20 min"
        );
    }

    #[test]
    fn the_ratelimit_headers_give_the_same_standings() {
        let st =
            header_standings(r#""minute";r=59;t=42, "day";r=9987;t=30000"#, Some(r#""minute";q=60;w=60, "day";q=10000;w=86400"#));
        assert_eq!(
            st,
            [
                Standing { name: "minute".into(), limit: Some(60), remaining: 59, reset_in: 42 },
                Standing { name: "day".into(), limit: Some(10000), remaining: 9987, reset_in: 30000 },
            ]
        );
        let bare = header_standings(r#""minute";r=3;t=7"#, None);
        assert_eq!(standing_line(&bare[0]), "minute     3 left, resets in 7 s");
        assert!(header_standings("garbage", None).is_empty());
    }

    #[test]
    fn a_comment_page_marks_replies_and_keys() {
        let page = [
            json!({"id": "C1", "content": "first\nsecond line", "parentId": null, "author": {"username": "ann"}, "createdAt": "2026-01-01T00:00:00Z"}),
            json!({"id": "C2", "content": "reply", "parentId": "C1", "author": {"username": "bob"}, "createdAt": "2026-01-01T00:01:00Z", "via": {"label": "bot"}}),
        ];
        assert_eq!(
            comments(&page),
            "C1 @ann 2026-01-01T00:00:00Z\n    first\n    second line\nC2 @bob 2026-01-01T00:01:00Z (reply to C1) via bot\n    reply"
        );
    }

    #[test]
    fn users_and_creations_in_one_line() {
        assert_eq!(user(&json!({"id": "U1", "username": "demo", "displayName": "Demo"})), "@demo (Demo) U1");
        assert_eq!(user(&json!({"id": "U1", "username": "demo", "displayName": null})), "@demo U1");
        let jes = json!({"id": "P1", "visibility": "PUBLIC", "media": [{}, {}]});
        assert_eq!(created("Jes", &jes), "Posted Jes P1 (PUBLIC, 2 media)");
        assert_eq!(created("JesClip", &json!({"id": "K1", "visibility": "PRIVATE"})), "Posted JesClip K1 (PRIVATE)");
    }
}
