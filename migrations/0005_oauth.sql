-- OAuth 2.1 (issue 22): the API is its own authorization server. Clients
-- register (RFC 7591); a person's consent to one client is a grant; the
-- grant's codes, refresh tokens, access tokens and device codes are stored
-- only as SHA-256 hex digests. Times are unix milliseconds.

-- Dynamically registered public clients (no secret: token_endpoint_auth_method none).
CREATE TABLE IF NOT EXISTS oauth_clients (
  id             TEXT PRIMARY KEY,              -- cli_<ULID>
  client_name    TEXT NOT NULL,                 -- sanitized, at most 64 characters
  client_uri     TEXT,                          -- https only; shown as a host
  redirect_uris  TEXT NOT NULL,                 -- JSON array, exactly as registered
  grant_types    TEXT NOT NULL,                 -- space separated
  scope          TEXT NOT NULL DEFAULT '',      -- informational
  software_id    TEXT,
  software_version TEXT,
  created_at     INTEGER NOT NULL
) STRICT;

-- One person's consent to one client: a "Connected app". Its id is inside
-- every access token of the grant, so the guard finds the grant's Gate with
-- no lookup; limits and usage are counted per grant.
CREATE TABLE IF NOT EXISTS oauth_grants (
  id             TEXT PRIMARY KEY,              -- ULID (26 characters)
  user_id        TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
  client_id      TEXT NOT NULL REFERENCES oauth_clients(id),
  client_name    TEXT NOT NULL,                 -- at consent: the Connected apps row and `via`
  scopes         TEXT NOT NULL,                 -- what the person allowed, space separated
  resource       TEXT,                          -- RFC 8707 audience asked for, if any
  redirect_uri   TEXT,                          -- NULL for device grants
  flow           TEXT NOT NULL CHECK (flow IN ('code', 'device')),
  created_at     INTEGER NOT NULL,
  activated_at   INTEGER,                       -- first tokens issued
  last_used_at   INTEGER,
  revoked_at     INTEGER,
  revoked_reason TEXT                           -- owner | token_revoked | refresh_reuse | code_replay | account
) STRICT;
CREATE INDEX IF NOT EXISTS oauth_grants_user ON oauth_grants(user_id, id);

-- Authorization codes: single use, 60 s, PKCE S256 only.
CREATE TABLE IF NOT EXISTS oauth_codes (
  code_hash      TEXT PRIMARY KEY,
  grant_id       TEXT NOT NULL REFERENCES oauth_grants(id) ON DELETE CASCADE,
  client_id      TEXT NOT NULL,
  redirect_uri   TEXT NOT NULL,                 -- as sent to /oauth/authorize
  code_challenge TEXT NOT NULL,
  resource       TEXT,
  scopes         TEXT NOT NULL,
  expires_at     INTEGER NOT NULL,
  used_at        INTEGER,
  claim          TEXT                           -- nonce of the exchange that won the code
) STRICT;
CREATE INDEX IF NOT EXISTS oauth_codes_grant ON oauth_codes(grant_id);

-- Refresh tokens jes_ort_…: rotated on every use; a rotated one presented
-- again revokes the grant.
CREATE TABLE IF NOT EXISTS oauth_refresh_tokens (
  token_hash     TEXT PRIMARY KEY,
  id             TEXT NOT NULL UNIQUE,
  grant_id       TEXT NOT NULL REFERENCES oauth_grants(id) ON DELETE CASCADE,
  scopes         TEXT NOT NULL,
  created_at     INTEGER NOT NULL,
  expires_at     INTEGER NOT NULL,
  used_at        INTEGER,
  replaced_by    TEXT,                          -- the successor's id (the rotation's claim)
  revoked_at     INTEGER
) STRICT;
CREATE INDEX IF NOT EXISTS oauth_refresh_grant ON oauth_refresh_tokens(grant_id);

-- Access tokens jes_oat_…: the record the grant's Gate loads; the Gate decides.
CREATE TABLE IF NOT EXISTS oauth_access_tokens (
  token_hash     TEXT PRIMARY KEY,
  grant_id       TEXT NOT NULL REFERENCES oauth_grants(id) ON DELETE CASCADE,
  scopes         TEXT NOT NULL,
  created_at     INTEGER NOT NULL,
  expires_at     INTEGER NOT NULL,
  revoked_at     INTEGER
) STRICT;
CREATE INDEX IF NOT EXISTS oauth_access_grant ON oauth_access_tokens(grant_id, expires_at);

-- Device authorization (RFC 8628).
CREATE TABLE IF NOT EXISTS oauth_device_codes (
  device_code_hash TEXT PRIMARY KEY,
  user_code_hash   TEXT NOT NULL UNIQUE,        -- of the normalized code (8 letters)
  client_id        TEXT NOT NULL REFERENCES oauth_clients(id),
  scopes           TEXT NOT NULL,
  resource         TEXT,
  created_at       INTEGER NOT NULL,
  expires_at       INTEGER NOT NULL,
  interval_secs    INTEGER NOT NULL DEFAULT 5,  -- grows by 5 on each slow_down
  last_polled_at   INTEGER,
  status           TEXT NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'approved', 'denied', 'exchanged')),
  user_id          TEXT,
  grant_id         TEXT,
  decided_at       INTEGER,
  claim            TEXT                          -- nonce of the poll that won the exchange
) STRICT;

-- Per-grant usage by UTC day and outcome (key_usage's columns), flushed by the grant's Gate.
CREATE TABLE IF NOT EXISTS grant_usage (
  grant_id            TEXT NOT NULL REFERENCES oauth_grants(id) ON DELETE CASCADE,
  day                 INTEGER NOT NULL,
  allowed             INTEGER NOT NULL DEFAULT 0,
  rate_limited        INTEGER NOT NULL DEFAULT 0,
  quota_exceeded      INTEGER NOT NULL DEFAULT 0,
  insufficient_scope  INTEGER NOT NULL DEFAULT 0,
  ip_not_allowed      INTEGER NOT NULL DEFAULT 0,
  session_only        INTEGER NOT NULL DEFAULT 0,
  PRIMARY KEY (grant_id, day)
) STRICT;
