-- Bounds against abuse (issue 20).

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
DROP TABLE IF EXISTS idempotency_keys;
