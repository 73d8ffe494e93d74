-- Upgrades a database to account security and operators: two-factor sign-in,
-- the half-done logins waiting for a code, recovery codes, session details,
-- key descriptions, account suspension, and the audit log. schema.sql holds
-- the same columns and tables for a fresh database.

-- Operators suspend accounts: every credential dead, keys answer 403 until unsuspended.
ALTER TABLE users ADD COLUMN suspended_at INTEGER;          -- NULL = active
ALTER TABLE users ADD COLUMN suspended_by TEXT;             -- the operator's user id
CREATE INDEX IF NOT EXISTS users_suspended ON users(suspended_at) WHERE suspended_at IS NOT NULL;

-- The sessions list shows where each one was opened and when it was last used.
ALTER TABLE sessions ADD COLUMN user_agent TEXT;            -- first 256 characters, at login
ALTER TABLE sessions ADD COLUMN ip TEXT;                    -- CF-Connecting-IP at login
ALTER TABLE sessions ADD COLUMN last_used_at INTEGER;       -- touched at most once a minute
CREATE INDEX IF NOT EXISTS sessions_user_live ON sessions(user_id, expires_at) WHERE revoked_at IS NULL;

-- A key's label and description can change; its scopes, expiry and allowlist never do.
ALTER TABLE api_keys ADD COLUMN description TEXT NOT NULL DEFAULT '';

-- Two-factor (TOTP, RFC 6238). The secret is sealed like webhook secrets
-- (aesgcm.<kid>.<nonce>.<ct> with WEBHOOK_SECRET_KEY, additional data
-- "totp:"||user_id; plain.<base32> only when no key is set).
CREATE TABLE IF NOT EXISTS user_totp (
  user_id     TEXT PRIMARY KEY REFERENCES users(id) ON DELETE CASCADE,
  secret      TEXT NOT NULL,
  enabled_at  INTEGER,                                      -- NULL: set up, not yet confirmed
  last_step   INTEGER NOT NULL DEFAULT 0,                   -- highest accepted time step: a code works once
  created_at  INTEGER NOT NULL
) STRICT;

-- Ten per account, shown once; stored as SHA-256 of the normalized code.
CREATE TABLE IF NOT EXISTS recovery_codes (
  user_id    TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
  code_hash  TEXT NOT NULL,
  used_at    INTEGER,
  PRIMARY KEY (user_id, code_hash)
) STRICT;

-- The half-done login of a two-factor account: password checked, code pending.
CREATE TABLE IF NOT EXISTS login_challenges (
  token_hash  TEXT PRIMARY KEY,                             -- SHA-256 of jes_chal_…
  user_id     TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
  ip          TEXT,
  user_agent  TEXT,
  attempts    INTEGER NOT NULL DEFAULT 0,                   -- five wrong codes burn it
  created_at  INTEGER NOT NULL,
  expires_at  INTEGER NOT NULL,
  used_at     INTEGER
) STRICT;
CREATE INDEX IF NOT EXISTS login_challenges_expiry ON login_challenges(expires_at);

-- Credential events of an account, written in the same D1 batch as the change
-- they record (a refused change leaves no row), kept 90 days. No foreign key:
-- the log outlives the rows it names.
CREATE TABLE IF NOT EXISTS audit_log (
  id           TEXT PRIMARY KEY,                            -- aud_<ULID>: order and page cursor
  user_id      TEXT NOT NULL,                               -- whose log: the account touched
  action       TEXT NOT NULL,                               -- auth.login, key.created, account.suspended, …
  actor_type   TEXT NOT NULL CHECK (actor_type IN ('user', 'operator', 'system')),
  actor_id     TEXT,                                        -- user id (user, operator); NULL for system
  target_type  TEXT,                                        -- account | session | key | grant | webhook | two_factor
  target_id    TEXT,
  ip           TEXT,
  user_agent   TEXT,
  data         TEXT NOT NULL DEFAULT '{}',                  -- small JSON (reason, method); never a secret
  at           INTEGER NOT NULL
) STRICT;
CREATE INDEX IF NOT EXISTS audit_log_user ON audit_log(user_id, id);
CREATE INDEX IF NOT EXISTS audit_log_at ON audit_log(at);
