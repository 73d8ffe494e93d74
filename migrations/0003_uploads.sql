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
