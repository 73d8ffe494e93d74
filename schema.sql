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

-- Webhooks ------------------------------------------------------------------
-- Endpoints attached to an API key; events about the key's account go to them.
-- secret holds the signing secret sealed with AES-256-GCM when the Worker has
-- WEBHOOK_SECRET_KEY (aesgcm.<kid>.<nonce>.<ciphertext>), else plain.whsec_….
CREATE TABLE IF NOT EXISTS webhook_endpoints (
  id                TEXT PRIMARY KEY,         -- wh_<ULID>
  key_id            TEXT NOT NULL REFERENCES api_keys(id) ON DELETE CASCADE,
  user_id           TEXT NOT NULL,            -- the key's account (fan-out looks endpoints up by it)
  url               TEXT NOT NULL,            -- normalized, checked against SSRF
  events            TEXT NOT NULL,            -- space-separated event types
  secret            TEXT NOT NULL,
  enabled           INTEGER NOT NULL DEFAULT 1,
  disabled_reason   TEXT,                     -- gone | failing | manual
  disabled_at       INTEGER,
  failing_since     INTEGER,                  -- first failed attempt since the last success
  consecutive_dead  INTEGER NOT NULL DEFAULT 0, -- deliveries given up on since the last success
  created_at        INTEGER NOT NULL
) STRICT;
CREATE INDEX IF NOT EXISTS webhook_endpoints_key ON webhook_endpoints(key_id, id);
CREATE INDEX IF NOT EXISTS webhook_endpoints_user ON webhook_endpoints(user_id, enabled);

-- One event to one endpoint. UNIQUE(event_id, endpoint_id) makes fan-out
-- idempotent; queued_at is set once its queue message is sent.
CREATE TABLE IF NOT EXISTS webhook_deliveries (
  id           TEXT PRIMARY KEY,              -- dlv_<ULID>
  event_id     TEXT NOT NULL,
  endpoint_id  TEXT NOT NULL,
  event_type   TEXT NOT NULL,
  status       TEXT NOT NULL DEFAULT 'pending', -- pending | succeeded | dead
  attempts     INTEGER NOT NULL DEFAULT 0,
  created_at   INTEGER NOT NULL,
  queued_at    INTEGER,
  updated_at   INTEGER NOT NULL,
  UNIQUE (event_id, endpoint_id)
) STRICT;
CREATE INDEX IF NOT EXISTS webhook_deliveries_endpoint ON webhook_deliveries(endpoint_id);

-- Every attempt, as GET …/webhooks/:id/deliveries shows it.
CREATE TABLE IF NOT EXISTS webhook_attempts (
  id             TEXT PRIMARY KEY,            -- att_<ULID>
  delivery_id    TEXT NOT NULL,
  endpoint_id    TEXT NOT NULL,
  event_id       TEXT NOT NULL,
  event_type     TEXT NOT NULL,
  attempt        INTEGER NOT NULL,            -- 1-based
  status         TEXT NOT NULL,               -- succeeded | failed | dead
  response_code  INTEGER,
  duration_ms    INTEGER,
  error          TEXT,
  created_at     INTEGER NOT NULL
) STRICT;
CREATE INDEX IF NOT EXISTS webhook_attempts_endpoint ON webhook_attempts(endpoint_id, id);
CREATE INDEX IF NOT EXISTS webhook_attempts_delivery ON webhook_attempts(delivery_id, attempt);

-- key.expiring notices already sent, one row per key and threshold (seconds before expiry).
CREATE TABLE IF NOT EXISTS key_expiry_notices (
  key_id     TEXT NOT NULL REFERENCES api_keys(id) ON DELETE CASCADE,
  threshold  INTEGER NOT NULL,
  sent_at    INTEGER NOT NULL,
  PRIMARY KEY (key_id, threshold)
) STRICT;
