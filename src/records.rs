//! What the API shows of an account and of a key, read from D1: shared by
//! the API Worker (`/api/auth/me`, key introspection) and the account Worker
//! (signup, login, account changes, the key list).

use ipnet::IpNet;
use serde::{Deserialize, Serialize};

use crate::adapters::d1;
use crate::domain::clock::rfc3339;
use crate::error::{ApiError, ApiResult};

#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UserResponse {
    pub id: String,
    pub username: String,
    pub email: String,
    pub display_name: String,
    pub created_at: String,
}

#[derive(Deserialize)]
pub struct UserRow {
    pub id: String,
    pub username: String,
    pub email: String,
    pub display_name: String,
    pub password_hash: String,
    pub created_at: f64,
}

impl UserRow {
    pub fn public(&self) -> UserResponse {
        UserResponse {
            id: self.id.clone(),
            username: self.username.clone(),
            email: self.email.clone(),
            display_name: self.display_name.clone(),
            created_at: rfc3339(self.created_at as i64),
        }
    }
}

/// The live account `id` as the API shows it (404 once deleted).
pub async fn load_user(db: &worker::D1Database, id: &str) -> ApiResult<UserResponse> {
    let row = d1::stmt(
        db,
        "SELECT id, username, email, display_name, password_hash, created_at FROM users WHERE id = ?1 AND deleted_at IS NULL",
        &[id.into()],
    )?
    .first::<UserRow>(None)
    .await?
    .ok_or(ApiError::NotFound)?;
    Ok(row.public())
}

#[derive(Deserialize)]
pub struct KeyRow {
    id: String,
    masked_key: String,
    label: String,
    scopes: String,
    expires_at: Option<f64>,
    ip_allowlist: String,
    canary: f64,
    created_at: f64,
    last_used_at: Option<f64>,
    revoked_at: Option<f64>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct KeyResponse {
    id: String,
    masked_key: String,
    label: String,
    scopes: Vec<String>,
    expires_at: Option<String>,
    ip_allowlist: Vec<IpNet>,
    created_at: String,
    last_used_at: Option<String>,
    revoked_at: Option<String>,
    status: &'static str,
    canary: bool,
}

pub fn status(revoked_at: Option<i64>, expires_at: Option<i64>, now: i64) -> &'static str {
    match (revoked_at, expires_at) {
        (Some(_), _) => "revoked",
        (None, Some(exp)) if exp <= now => "expired",
        _ => "active",
    }
}

impl d1::HasId for KeyRow {
    fn id(&self) -> &str {
        &self.id
    }
}

impl KeyRow {
    pub fn response(self, now: i64) -> KeyResponse {
        let (revoked, expires) = (self.revoked_at.map(|v| v as i64), self.expires_at.map(|v| v as i64));
        KeyResponse {
            status: status(revoked, expires, now),
            id: self.id,
            masked_key: self.masked_key,
            label: self.label,
            scopes: self.scopes.split(' ').filter(|s| !s.is_empty()).map(String::from).collect(),
            expires_at: expires.map(rfc3339),
            ip_allowlist: serde_json::from_str(&self.ip_allowlist).unwrap_or_default(),
            created_at: rfc3339(self.created_at as i64),
            last_used_at: self.last_used_at.map(|v| rfc3339(v as i64)),
            revoked_at: revoked.map(rfc3339),
            canary: self.canary != 0.0,
        }
    }
}

pub const KEY_COLUMNS: &str =
    "id, masked_key, label, scopes, expires_at, ip_allowlist, canary, created_at, last_used_at, revoked_at";

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_700_000_000_000;

    #[test]
    fn status_prefers_revoked_over_expired() {
        assert_eq!(status(Some(1), Some(0), NOW), "revoked");
        assert_eq!(status(None, Some(NOW), NOW), "expired");
        assert_eq!(status(None, Some(NOW + 1), NOW), "active");
        assert_eq!(status(None, None, NOW), "active");
    }
}
