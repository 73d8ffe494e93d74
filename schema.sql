-- Jestha Edge: the D1 schema. Idempotent: safe to apply on every start.
-- Times are unix milliseconds (INTEGER); the API renders them as RFC 3339.
-- Credentials are stored only as SHA-256 hex digests (token_hash).
PRAGMA foreign_keys = ON;

CREATE TABLE IF NOT EXISTS users (
  id            TEXT PRIMARY KEY,
  username      TEXT NOT NULL UNIQUE,          -- lowercase a-z0-9_
  email         TEXT NOT NULL UNIQUE,          -- lowercase
  display_name  TEXT NOT NULL,
  password_hash TEXT NOT NULL,                 -- pbkdf2-sha256$iterations$salt$hash
  created_at    INTEGER NOT NULL,
  deleted_at    INTEGER
) STRICT;

CREATE TABLE IF NOT EXISTS sessions (
  id          TEXT PRIMARY KEY,
  user_id     TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
  token_hash  TEXT NOT NULL UNIQUE,
  created_at  INTEGER NOT NULL,
  expires_at  INTEGER NOT NULL,
  revoked_at  INTEGER
) STRICT;
CREATE INDEX IF NOT EXISTS sessions_user ON sessions(user_id);

CREATE TABLE IF NOT EXISTS api_keys (
  id            TEXT PRIMARY KEY,
  user_id       TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
  token_hash    TEXT NOT NULL UNIQUE,
  masked_key    TEXT NOT NULL,                 -- jes_live_a1b2****
  label         TEXT NOT NULL,
  scopes        TEXT NOT NULL,                 -- space-separated scope names
  expires_at    INTEGER,                       -- NULL = never
  ip_allowlist  TEXT NOT NULL DEFAULT '[]',    -- JSON array of CIDRs
  canary        INTEGER NOT NULL DEFAULT 0,
  created_at    INTEGER NOT NULL,
  last_used_at  INTEGER,
  revoked_at    INTEGER
) STRICT;
CREATE INDEX IF NOT EXISTS api_keys_user ON api_keys(user_id, created_at);

-- Transactional outbox: one row per domain event, written in the same batch as
-- the change it describes; sent_at is set once the webhook queue has it.
CREATE TABLE IF NOT EXISTS event_outbox (
  id          TEXT PRIMARY KEY,               -- evt_<ULID>, the webhook-id
  account_id  TEXT NOT NULL,
  type        TEXT NOT NULL,
  payload     TEXT NOT NULL,                  -- JSON: the event's data
  created_at  INTEGER NOT NULL,
  sent_at     INTEGER
) STRICT;
CREATE INDEX IF NOT EXISTS event_outbox_unsent ON event_outbox(sent_at, created_at);

-- Per-key usage by UTC day and outcome, flushed in batches by each key's
-- Durable Object (absolute counts: a repeated flush is harmless).
CREATE TABLE IF NOT EXISTS key_usage (
  key_id              TEXT NOT NULL REFERENCES api_keys(id) ON DELETE CASCADE,
  day                 INTEGER NOT NULL,        -- unix seconds of the UTC day's start
  allowed             INTEGER NOT NULL DEFAULT 0,
  rate_limited        INTEGER NOT NULL DEFAULT 0,
  quota_exceeded      INTEGER NOT NULL DEFAULT 0,
  insufficient_scope  INTEGER NOT NULL DEFAULT 0,
  ip_not_allowed      INTEGER NOT NULL DEFAULT 0,
  session_only        INTEGER NOT NULL DEFAULT 0,
  PRIMARY KEY (key_id, day)
) STRICT;

-- Owner notices shown in the web UI (and sent as webhook events).
CREATE TABLE IF NOT EXISTS notifications (
  id          TEXT PRIMARY KEY,
  user_id     TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
  key_id      TEXT,
  type        TEXT NOT NULL,                   -- key.quota_threshold, key.expiring, key.revoked, key.leaked, key.canary_used
  data        TEXT NOT NULL,                   -- JSON
  created_at  INTEGER NOT NULL,
  read_at     INTEGER
) STRICT;
CREATE INDEX IF NOT EXISTS notifications_user ON notifications(user_id, id);

-- Every token a signed leak report named (only its hash), and what it matched.
CREATE TABLE IF NOT EXISTS leak_reports (
  id          TEXT PRIMARY KEY,
  token_hash  TEXT NOT NULL,
  url         TEXT NOT NULL,
  source      TEXT NOT NULL,
  matched     INTEGER NOT NULL,               -- a real Jestha key (live or not)
  live        INTEGER NOT NULL,               -- it was live and is now revoked
  created_at  INTEGER NOT NULL
) STRICT;
