//! A credential's record as the Gate loads it from D1 (once, then cached):
//! an API key or a session with its account, or an OAuth grant with its
//! account and every live access token.

use serde::Deserialize;
use worker::{Env, Result};

use crate::auth::decide::{Credential, CredentialKind, LiveToken, Profile};

/// A credential's record joined with its account: one row type for keys and
/// sessions (a session's row has no label, scopes, allowlist or canary).
#[derive(Deserialize)]
struct CredentialRow {
    id: String,
    user_id: String,
    label: Option<String>,
    scopes: Option<String>,
    expires_at: Option<f64>,
    ip_allowlist: Option<String>,
    revoked_at: Option<f64>,
    canary: Option<f64>,
    username: String,
    email: String,
    display_name: String,
    user_created_at: f64,
    deleted_at: Option<f64>,
    suspended_at: Option<f64>,
}

impl CredentialRow {
    fn credential(self, kind: CredentialKind) -> Credential {
        Credential {
            kind,
            scopes: self.scopes.as_deref().map_or(0, |s| crate::auth::scope::ScopeSet::from_stored(s).bits()),
            expires_at: self.expires_at.map(|v| v as i64),
            allowlist: self.ip_allowlist.as_deref().and_then(|a| serde_json::from_str(a).ok()).unwrap_or_default(),
            // A deleted account's credentials are dead.
            revoked: self.revoked_at.is_some() || self.deleted_at.is_some(),
            canary: self.canary.is_some_and(|c| c != 0.0),
            profile: Some(Profile {
                username: self.username,
                email: self.email,
                display_name: self.display_name,
                created_at: self.user_created_at as i64,
            }),
            id: self.id,
            user_id: self.user_id,
            label: self.label.unwrap_or_default(),
            tokens: vec![],
            suspended: self.suspended_at.is_some(),
        }
    }
}

const USER_COLS: &str = "u.username, u.email, u.display_name, u.created_at AS user_created_at, u.deleted_at, u.suspended_at";

/// The credential's record from D1, or `None` for an unknown one: a key or
/// session by its token hash, a grant by its id with its access tokens
/// unexpired at `tokens_after` (unix ms).
pub async fn load(env: &Env, kind: CredentialKind, hash: &str, tokens_after: i64) -> Result<Option<Credential>> {
    let db = env.d1(crate::adapters::d1::BINDING)?;
    let arg = [wasm_bindgen::JsValue::from_str(hash)];
    let sql = match kind {
        CredentialKind::Key => format!(
            "SELECT k.id, k.user_id, k.label, k.scopes, k.expires_at, k.ip_allowlist, k.revoked_at, k.canary, \
             {USER_COLS} FROM api_keys k JOIN users u ON u.id = k.user_id WHERE k.token_hash = ?1"
        ),
        CredentialKind::Session => format!(
            "SELECT s.id, s.user_id, s.expires_at, s.revoked_at, {USER_COLS} \
             FROM sessions s JOIN users u ON u.id = s.user_id WHERE s.token_hash = ?1"
        ),
        // A grant: its client's name is the `via` label; its expiry is each token's.
        CredentialKind::OAuth => format!(
            "SELECT g.id, g.user_id, g.client_name AS label, g.scopes, g.revoked_at, {USER_COLS} \
             FROM oauth_grants g JOIN users u ON u.id = g.user_id WHERE g.id = ?1"
        ),
    };
    let row = db.prepare(&sql).bind(&arg)?.first::<CredentialRow>(None).await?;
    let Some(mut cred) = row.map(|r| r.credential(kind)) else { return Ok(None) };
    if kind == CredentialKind::OAuth {
        #[derive(Deserialize)]
        struct TokenRow {
            token_hash: String,
            expires_at: f64,
            scopes: String,
        }
        let after = wasm_bindgen::JsValue::from_f64(tokens_after as f64);
        let rows: Vec<TokenRow> = db
            .prepare(
                "SELECT token_hash, expires_at, scopes FROM oauth_access_tokens \
                 WHERE grant_id = ?1 AND revoked_at IS NULL AND expires_at > ?2",
            )
            .bind(&[arg[0].clone(), after])?
            .all()
            .await?
            .results()?;
        cred.tokens = rows
            .into_iter()
            .map(|r| LiveToken {
                hash: r.token_hash,
                expires_at: r.expires_at as i64,
                scopes: crate::auth::scope::ScopeSet::from_stored(&r.scopes).bits(),
            })
            .collect();
    }
    Ok(Some(cred))
}
