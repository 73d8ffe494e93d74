//! One API key (sessions only): read it, and change what may change, its
//! label and description. Scopes, expiry and allowlist are fixed at creation:
//! a patch naming one is refused with the field named.

use axum::http::StatusCode;
use axum::response::Response;

use crate::account::routes::keys::MAX_LABEL;
use crate::adapters::audit::{self, origin_of};
use crate::adapters::d1::{self, V};
use crate::adapters::gate;
use crate::auth::decide::CredentialKind;
use crate::domain::audit::{Action, Event, TargetType};
use crate::domain::validate;
use crate::error::{ApiError, ApiResult};
use crate::http::{json, now_ms};
use crate::pipeline::ctx::Ctx;
use crate::records::{KeyRow, KEY_COLUMNS};

pub const MAX_DESCRIPTION: usize = 500;
/// Fields of a key that never change after creation.
const FIXED: [&str; 6] = ["scopes", "preset", "expiresAt", "expiresIn", "ipAllowlist", "canary"];

/// What a patch body asks to change: `(label, description)`, or the 400 naming the field.
pub fn parse_patch(body: &serde_json::Value) -> Result<(Option<String>, Option<String>), String> {
    let obj = body.as_object().ok_or("body: must be a JSON object")?;
    if let Some(fixed) = obj.keys().find(|k| FIXED.contains(&k.as_str())) {
        return Err(format!("{fixed}: cannot be changed; create a new key"));
    }
    if let Some(unknown) = obj.keys().find(|k| !matches!(k.as_str(), "label" | "description")) {
        let shown: String = unknown.chars().filter(|c| !c.is_control()).take(40).collect();
        return Err(format!("{shown}: unknown field; only label and description can change"));
    }
    let text = |name: &str| -> Result<Option<&str>, String> {
        match obj.get(name) {
            None => Ok(None),
            Some(serde_json::Value::String(s)) => Ok(Some(s)),
            Some(_) => Err(format!("{name}: must be a string")),
        }
    };
    let label = text("label")?.map(|l| validate::text("label", l, MAX_LABEL)).transpose()?;
    let description = match text("description")? {
        // A description may be emptied.
        Some(d) if d.trim().is_empty() => Some(String::new()),
        Some(d) => Some(validate::text("description", d, MAX_DESCRIPTION)?),
        None => None,
    };
    if label.is_none() && description.is_none() {
        return Err("body: give label or description".into());
    }
    Ok((label, description))
}

/// The caller's key `c.id` as the API shows it (the list item with its
/// description), and its hash (to refresh its Gate). 404: not theirs.
async fn load(c: &Ctx) -> ApiResult<(serde_json::Value, String)> {
    let me = c.who()?;
    let db = d1::db(&c.app.env)?;
    let mut row: serde_json::Value = d1::stmt(
        &db,
        &format!("SELECT {KEY_COLUMNS}, description, token_hash FROM api_keys WHERE id = ?1 AND user_id = ?2"),
        &[(&c.id).into(), (&me.user_id).into()],
    )?
    .first(None)
    .await?
    .ok_or(ApiError::NotFound)?;
    let description = row["description"].take();
    let hash = row["token_hash"].as_str().unwrap_or_default().to_string();
    let key: KeyRow = serde_json::from_value(row)?;
    let mut item = serde_json::to_value(key.response(now_ms()))?;
    item["description"] = description;
    Ok((item, hash))
}

/// GET /api/auth/api-keys/{id}: the list item, with its description.
pub async fn get(c: Ctx) -> ApiResult<Response> {
    Ok(json(StatusCode::OK, &load(&c).await?.0))
}

/// PATCH /api/auth/api-keys/{id} `{label?, description?}`
pub async fn patch(mut c: Ctx) -> ApiResult<Response> {
    let body = c.json(false).await?;
    let (label, description) = parse_patch(&body).map_err(ApiError::invalid)?;
    let (_, hash) = load(&c).await?;
    let me = c.who()?;
    let db = d1::db(&c.app.env)?;
    let now = now_ms();
    let ev = Event::by_owner(&me.user_id, Action::KeyRenamed, &origin_of(&c.headers))
        .target(TargetType::Key, &c.id)
        .data(serde_json::json!({ "label": label, "descriptionChanged": description.is_some() }));
    db.batch(vec![
        d1::stmt(
            &db,
            "UPDATE api_keys SET label = coalesce(?1, label), description = coalesce(?2, description) WHERE id = ?3 AND user_id = ?4",
            &[label.as_ref().into(), description.as_ref().into(), (&c.id).into(), (&me.user_id).into()],
        )?,
        audit::stmt_if(&db, &ev, now, Some("EXISTS (SELECT 1 FROM api_keys WHERE id = ?12 AND user_id = ?13)"), &[
            V::T(&c.id),
            V::T(&me.user_id),
        ])?,
    ])
    .await?;
    // The key's Gate holds its label for `via` on what it creates.
    gate::refresh(&c.app.env, CredentialKind::Key, hash).await?;
    Ok(json(StatusCode::OK, &load(&c).await?.0))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn fixed_fields_are_refused_by_name() {
        for f in FIXED {
            let e = parse_patch(&json!({ "label": "x", f: "anything" })).unwrap_err();
            assert!(e.starts_with(&format!("{f}: cannot be changed")), "{e}");
        }
    }

    #[test]
    fn unknown_and_empty_patches_are_refused() {
        assert!(parse_patch(&json!({ "colour": "red" })).unwrap_err().starts_with("colour: unknown field"));
        assert!(parse_patch(&json!({})).unwrap_err().starts_with("body:"));
        assert!(parse_patch(&json!({ "label": 5 })).unwrap_err().starts_with("label: must be a string"));
        assert!(parse_patch(&json!({ "label": "" })).unwrap_err().starts_with("label:"));
        assert!(parse_patch(&json!({ "description": "x".repeat(501) })).unwrap_err().starts_with("description:"));
    }

    #[test]
    fn label_and_description_change_and_a_description_may_be_emptied() {
        assert_eq!(parse_patch(&json!({ "label": " CI " })).unwrap(), (Some("CI".into()), None));
        assert_eq!(parse_patch(&json!({ "description": "" })).unwrap(), (None, Some(String::new())));
        assert_eq!(parse_patch(&json!({ "label": "a", "description": "b" })).unwrap(), (Some("a".into()), Some("b".into())));
    }
}
