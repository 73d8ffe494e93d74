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
