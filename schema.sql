-- Jestha Edge: the whole D1 schema, as the migrations in migrations/ make it.
-- Databases are built by `wrangler d1 migrations apply DB` (each file once, in
-- order); a schema change is a new migration AND its effect written here:
-- tests/test_schema.py holds the two equal. Idempotent (IF NOT EXISTS).
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
  deleted_at    INTEGER,
  suspended_at  INTEGER,                       -- NULL = active; set by an operator
  suspended_by  TEXT                           -- the operator's user id
) STRICT;
CREATE INDEX IF NOT EXISTS users_suspended ON users(suspended_at) WHERE suspended_at IS NOT NULL;

CREATE TABLE IF NOT EXISTS sessions (
  id          TEXT PRIMARY KEY,
  user_id     TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
  token_hash  TEXT NOT NULL UNIQUE,
  created_at  INTEGER NOT NULL,
  expires_at  INTEGER NOT NULL,
  revoked_at  INTEGER,
  user_agent  TEXT,                          -- first 256 characters, at login
  ip          TEXT,                          -- CF-Connecting-IP at login
  last_used_at INTEGER                       -- touched at most once a minute
) STRICT;
CREATE INDEX IF NOT EXISTS sessions_user ON sessions(user_id);
CREATE INDEX IF NOT EXISTS sessions_user_live ON sessions(user_id, expires_at) WHERE revoked_at IS NULL;

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
  revoked_at    INTEGER,
  description   TEXT NOT NULL DEFAULT ''       -- label and description can change; scopes never
) STRICT;
CREATE INDEX IF NOT EXISTS api_keys_user ON api_keys(user_id, created_at);
-- The cron's key.expiring sweep reads only keys expiring within a threshold.
CREATE INDEX IF NOT EXISTS api_keys_expiring ON api_keys(expires_at)
  WHERE revoked_at IS NULL AND canary = 0 AND expires_at IS NOT NULL;

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
-- A finding is (token, url, source): a replayed one changes nothing and
-- notifies no one (security::report). Not UNIQUE: older rows hold replays.
CREATE INDEX IF NOT EXISTS leak_reports_finding ON leak_reports(token_hash, url, source);

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
-- At most 25 endpoints per account and one URL once: checked inside the insert
-- (webhooks::create) by this index. Not UNIQUE, so a database holding
-- duplicates from before the bound still migrates.
CREATE INDEX IF NOT EXISTS webhook_endpoints_user_url ON webhook_endpoints(user_id, url);

-- The secret an endpoint had before its last rotation: deliveries carry its
-- signature beside the new one until expires_at, so receivers can switch over.
CREATE TABLE IF NOT EXISTS webhook_previous_secrets (
  endpoint_id TEXT PRIMARY KEY REFERENCES webhook_endpoints(id) ON DELETE CASCADE,
  secret      TEXT NOT NULL,                  -- sealed like webhook_endpoints.secret
  expires_at  INTEGER NOT NULL
) STRICT;

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
-- Newest first per endpoint: the history trim keeps WEBHOOK_HISTORY_PER_ENDPOINT.
CREATE INDEX IF NOT EXISTS webhook_deliveries_endpoint ON webhook_deliveries(endpoint_id, id);

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

-- ==========================================================================
-- Content (issue 6): Jes and JesClips, media, comments, engagement, follows,
-- hashtags, search, idempotency. Jes and JesClips share `posts` (kind) so
-- comments, counts, visibility and media work the same for both.
-- ==========================================================================
CREATE TABLE IF NOT EXISTS posts (
  rid           INTEGER PRIMARY KEY,          -- stable rowid: the FTS index keys on it
  id            TEXT NOT NULL UNIQUE,
  author_id     TEXT NOT NULL REFERENCES users(id),
  kind          TEXT NOT NULL CHECK (kind IN ('jes', 'jesclip')),
  content       TEXT NOT NULL DEFAULT '',     -- Jes text or JesClip caption; '' once deleted
  visibility    TEXT NOT NULL CHECK (visibility IN ('PUBLIC', 'FOLLOWERS', 'PRIVATE')),
  hub           TEXT,                         -- JeHub slug
  bounce_of     TEXT REFERENCES posts(id),    -- bounce (content '') or quote-bounce
  via_key_id    TEXT,                         -- the API key that made it, if any
  via_label     TEXT,
  like_count    INTEGER NOT NULL DEFAULT 0,   -- counters are set from COUNT(*) in the
  comment_count INTEGER NOT NULL DEFAULT 0,   -- same batch as the change, so they are
  bounce_count  INTEGER NOT NULL DEFAULT 0,   -- exact under concurrency
  save_count    INTEGER NOT NULL DEFAULT 0,
  created_at    INTEGER NOT NULL,
  updated_at    INTEGER NOT NULL,
  deleted_at    INTEGER                       -- soft delete: threads keep their parent
) STRICT;
CREATE INDEX IF NOT EXISTS posts_author ON posts(author_id, id);
CREATE INDEX IF NOT EXISTS posts_kind ON posts(kind, id);
CREATE INDEX IF NOT EXISTS posts_hub ON posts(hub, id) WHERE hub IS NOT NULL;
CREATE INDEX IF NOT EXISTS posts_bounce ON posts(bounce_of) WHERE bounce_of IS NOT NULL;
-- One plain bounce per account and Jes; quote-bounces are unlimited.
CREATE UNIQUE INDEX IF NOT EXISTS posts_one_bounce ON posts(author_id, bounce_of)
  WHERE bounce_of IS NOT NULL AND content = '' AND deleted_at IS NULL;

-- Uploaded files; the bytes live in R2 under r2_key (random, never derived from ids).
CREATE TABLE IF NOT EXISTS media (
  id            TEXT PRIMARY KEY,
  owner_id      TEXT NOT NULL REFERENCES users(id),
  post_id       TEXT REFERENCES posts(id),    -- NULL until attached (POST /api/media then mediaIds)
  position      INTEGER NOT NULL DEFAULT 0,
  r2_key        TEXT NOT NULL UNIQUE,
  content_type  TEXT NOT NULL,                -- from the bytes, not the client
  size          INTEGER NOT NULL,
  etag          TEXT NOT NULL,                -- R2's HTTP ETag
  created_at    INTEGER NOT NULL
) STRICT;
CREATE INDEX IF NOT EXISTS media_post ON media(post_id, position);
CREATE INDEX IF NOT EXISTS media_owner ON media(owner_id, id);
-- The cron's media sweep (src/engine/sweeps.rs) finds unattached uploads through
-- media_post (post_id IS NULL) and deleted accounts through this, so a run
-- reads deleted accounts, not every account.
CREATE INDEX IF NOT EXISTS users_deleted ON users(deleted_at) WHERE deleted_at IS NOT NULL;
-- Every media object's key is, from before its bytes are put until after
-- they are deleted, either named by a media row or listed here. An upload
-- lists its keys first (purge_after: an hour on, past any request); the
-- row's insert takes the key off (trigger). A row's delete puts it back, due
-- at once (trigger, same transaction). The deleter removes the object and
-- then the entry; whatever is due and still here, the cron deletes: uploads
-- whose request died before its row was written, object deletes that failed
-- (src/adapters/media.rs `purge`). Re-applying this file keeps existing triggers:
-- changing one's body needs a DROP TRIGGER first.
CREATE TABLE IF NOT EXISTS media_trash (
  r2_key       TEXT PRIMARY KEY,
  purge_after  INTEGER NOT NULL                 -- unix ms; 0 = due now
) STRICT;
CREATE INDEX IF NOT EXISTS media_trash_due ON media_trash(purge_after);
CREATE TRIGGER IF NOT EXISTS media_named AFTER INSERT ON media BEGIN
  DELETE FROM media_trash WHERE r2_key = new.r2_key;
END;
CREATE TRIGGER IF NOT EXISTS media_to_trash AFTER DELETE ON media BEGIN
  INSERT OR REPLACE INTO media_trash (r2_key, purge_after) VALUES (old.r2_key, 0);
END;

CREATE TABLE IF NOT EXISTS comments (
  id            TEXT PRIMARY KEY,
  post_id       TEXT NOT NULL REFERENCES posts(id),
  parent_id     TEXT REFERENCES comments(id),
  author_id     TEXT NOT NULL REFERENCES users(id),
  content       TEXT NOT NULL,
  via_key_id    TEXT,
  via_label     TEXT,
  created_at    INTEGER NOT NULL
) STRICT;
CREATE INDEX IF NOT EXISTS comments_post ON comments(post_id, id);

CREATE TABLE IF NOT EXISTS likes (
  post_id       TEXT NOT NULL REFERENCES posts(id),
  user_id       TEXT NOT NULL REFERENCES users(id),
  created_at    INTEGER NOT NULL,
  PRIMARY KEY (post_id, user_id)
) STRICT;
CREATE INDEX IF NOT EXISTS likes_recent ON likes(created_at);

CREATE TABLE IF NOT EXISTS saves (
  id            TEXT NOT NULL UNIQUE,         -- orders the caller's saved list
  user_id       TEXT NOT NULL REFERENCES users(id),
  post_id       TEXT NOT NULL REFERENCES posts(id),
  created_at    INTEGER NOT NULL,
  PRIMARY KEY (user_id, post_id)
) STRICT;

CREATE TABLE IF NOT EXISTS follows (
  follower_id   TEXT NOT NULL REFERENCES users(id),
  followee_id   TEXT NOT NULL REFERENCES users(id),
  created_at    INTEGER NOT NULL,
  PRIMARY KEY (follower_id, followee_id)
) STRICT;
CREATE INDEX IF NOT EXISTS follows_followee ON follows(followee_id);

CREATE TABLE IF NOT EXISTS hashtags (
  tag           TEXT NOT NULL,
  post_id       TEXT NOT NULL REFERENCES posts(id),
  created_at    INTEGER NOT NULL,
  PRIMARY KEY (tag, post_id)
) STRICT;
CREATE INDEX IF NOT EXISTS hashtags_post ON hashtags(post_id);

-- Full-text index of live posts, kept in step with `posts` by triggers.
CREATE VIRTUAL TABLE IF NOT EXISTS posts_fts USING fts5(content, tokenize = 'unicode61 remove_diacritics 2');
CREATE TRIGGER IF NOT EXISTS posts_fts_insert AFTER INSERT ON posts BEGIN
  INSERT INTO posts_fts (rowid, content) SELECT new.rid, new.content WHERE new.content != '';
END;
CREATE TRIGGER IF NOT EXISTS posts_fts_update AFTER UPDATE OF content, deleted_at ON posts BEGIN
  DELETE FROM posts_fts WHERE rowid = old.rid;
  INSERT INTO posts_fts (rowid, content) SELECT new.rid, new.content
    WHERE new.content != '' AND new.deleted_at IS NULL;
END;

-- Idempotency-Key, scoped per credential (`key:<id>`, `session:<id>`,
-- `oauth:<grant id>`), 24 h: a replay only ever returns what the same
-- credential's own handler answered, so it never skips that handler's checks
-- (a second session's logout used to replay the first's 204). `running` is a
-- claim; `done` holds the response to replay. The account-scoped table it
-- replaces is dropped: its rows lived a day at most.
CREATE TABLE IF NOT EXISTS idempotency_requests (
  credential    TEXT NOT NULL,
  key           TEXT NOT NULL,
  account_id    TEXT NOT NULL,
  fingerprint   TEXT NOT NULL,                -- domain::idempotency::StreamFp
  state         TEXT NOT NULL CHECK (state IN ('running', 'done')),
  status        INTEGER,
  body          TEXT,
  created_at    INTEGER NOT NULL,
  PRIMARY KEY (credential, key)
) STRICT;
CREATE INDEX IF NOT EXISTS idempotency_requests_created ON idempotency_requests(created_at);

-- Account security ----------------------------------------------------------
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

-- OAuth 2.1 (migrations/0005_oauth.sql): clients, grants, and the grant's codes and tokens,
-- every secret stored as its SHA-256 hex digest.
-- Public OAuth clients, dynamically registered or Client ID Metadata Documents (no secret: token_endpoint_auth_method none).
CREATE TABLE IF NOT EXISTS oauth_clients (
  id             TEXT PRIMARY KEY,              -- cli_<ULID>, or a CIMD https URL
  client_name    TEXT NOT NULL,                 -- sanitized, at most 64 characters
  client_uri     TEXT,                          -- https only; shown as a host
  redirect_uris  TEXT NOT NULL,                 -- JSON array, exactly as registered
  grant_types    TEXT NOT NULL,                 -- space separated
  scope          TEXT NOT NULL DEFAULT '',      -- informational
  software_id    TEXT,
  software_version TEXT,
  created_at     INTEGER NOT NULL,
  -- 'cimd': id is the https URL of a Client ID Metadata Document, cached here
  kind           TEXT NOT NULL DEFAULT 'registered' CHECK (kind IN ('registered', 'cimd')),
  metadata_fetched_at INTEGER,                  -- CIMD: the last successful fetch
  metadata_expires_at INTEGER                   -- CIMD: refetch after this (5 min .. 24 h)
) STRICT;
CREATE INDEX IF NOT EXISTS oauth_clients_created ON oauth_clients(created_at);

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
-- The retention sweep's (engine::sweeps::oauth): each finds what is due by index.
CREATE INDEX IF NOT EXISTS oauth_grants_pending ON oauth_grants(created_at) WHERE activated_at IS NULL;
CREATE INDEX IF NOT EXISTS oauth_grants_revoked ON oauth_grants(revoked_at) WHERE revoked_at IS NOT NULL;
CREATE INDEX IF NOT EXISTS oauth_grants_client ON oauth_grants(client_id);

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
CREATE INDEX IF NOT EXISTS oauth_codes_expiry ON oauth_codes(expires_at);

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
CREATE INDEX IF NOT EXISTS oauth_refresh_expiry ON oauth_refresh_tokens(expires_at);

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
CREATE INDEX IF NOT EXISTS oauth_access_expiry ON oauth_access_tokens(expires_at);
CREATE INDEX IF NOT EXISTS oauth_access_revoked ON oauth_access_tokens(revoked_at) WHERE revoked_at IS NOT NULL;

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
CREATE INDEX IF NOT EXISTS oauth_device_codes_expiry ON oauth_device_codes(expires_at);
CREATE INDEX IF NOT EXISTS oauth_device_codes_client ON oauth_device_codes(client_id);

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
CREATE INDEX IF NOT EXISTS grant_usage_day ON grant_usage(day);
-- Uploads at scale (issue 21): resumable tus uploads backed by R2 multipart
-- uploads, and the multipart uploads to abort once due (media_trash's
-- companion: objects there, R2 multipart uploads here).

-- One tus upload (/api/uploads/{id}). Its bytes are R2 parts of PART bytes
-- (5 MiB) of one multipart upload for `r2_key`; what does not fill a part
-- between PATCHes waits in the object `r2_key || '.t'` (`tail_len` bytes).
-- `upload_offset` = parts × PART + tail_len is what HEAD reports.
CREATE TABLE IF NOT EXISTS uploads (
  id             TEXT PRIMARY KEY,                       -- ULID, in the URL
  account_id     TEXT NOT NULL REFERENCES users(id),
  r2_key         TEXT NOT NULL UNIQUE,                   -- the final object, m/<32 hex>
  r2_upload_id   TEXT NOT NULL,
  upload_length  INTEGER NOT NULL CHECK (upload_length > 0),
  upload_offset  INTEGER NOT NULL DEFAULT 0,
  parts          TEXT NOT NULL DEFAULT '[]',             -- JSON array of part etags, part n at n-1
  tail_len       INTEGER NOT NULL DEFAULT 0,
  content_type   TEXT,                                   -- judged from the first bytes
  metadata       TEXT,                                   -- Upload-Metadata as sent (<= 4 KiB)
  lock_id        TEXT,                                   -- the PATCH now writing
  lock_until     INTEGER,
  media_id       TEXT,                                   -- once complete
  created_at     INTEGER NOT NULL,
  expires_at     INTEGER NOT NULL,
  completed_at   INTEGER
) STRICT;
CREATE INDEX IF NOT EXISTS uploads_expiry ON uploads(expires_at);
CREATE INDEX IF NOT EXISTS uploads_account ON uploads(account_id);

CREATE TABLE IF NOT EXISTS media_trash_mpu (
  upload_id    TEXT PRIMARY KEY,
  r2_key       TEXT NOT NULL,
  purge_after  INTEGER NOT NULL                 -- unix ms; 0 = due now
) STRICT;
CREATE INDEX IF NOT EXISTS media_trash_mpu_due ON media_trash_mpu(purge_after);

-- A deleted (expired, terminated) upload leaves nothing behind: its object
-- and tail go to media_trash (an object a media row names is kept by the
-- purge), an unfinished one's multipart upload to media_trash_mpu.
CREATE TRIGGER IF NOT EXISTS uploads_to_trash AFTER DELETE ON uploads BEGIN
  INSERT OR REPLACE INTO media_trash (r2_key, purge_after) VALUES (old.r2_key, 0), (old.r2_key || '.t', 0);
  INSERT OR REPLACE INTO media_trash_mpu (upload_id, r2_key, purge_after)
    SELECT old.r2_upload_id, old.r2_key, 0 WHERE old.completed_at IS NULL;
END;

-- Bulk revocation (issue 20, item 3): an account-wide change (a password
-- change, a deletion, a suspension or its lifting, a profile edit) is
-- committed with every revocation it implies and this intent row in one D1
-- batch; the credentials' Gate objects are told next, and the row deleted
-- once they all are. A row still here after 30 s is a fan-out that failed:
-- the cron tells those Gates again (adapters::revocation::redrive).
CREATE TABLE IF NOT EXISTS revocations (
  id          TEXT PRIMARY KEY,                -- rvk_<ULID>
  user_id     TEXT NOT NULL,
  stamp       INTEGER NOT NULL,                -- the revoked_at it wrote (unix ms)
  reload      TEXT NOT NULL,                   -- '' | keys | all: live credentials whose Gates reload the account
  created_at  INTEGER NOT NULL
) STRICT;
CREATE INDEX IF NOT EXISTS revocations_created ON revocations(created_at);
