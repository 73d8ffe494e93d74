-- OAuth Client ID Metadata Documents (issue 22; docs/design/oauth.md 3.3): a
-- client_id that is an https URL names a JSON document the client publishes.
-- Its validated copy is cached in oauth_clients under the URL itself, and is
-- used only until metadata_expires_at (then fetched again; never used stale).
ALTER TABLE oauth_clients ADD COLUMN kind TEXT NOT NULL DEFAULT 'registered' CHECK (kind IN ('registered', 'cimd'));
ALTER TABLE oauth_clients ADD COLUMN metadata_fetched_at INTEGER;  -- CIMD: the last successful fetch
ALTER TABLE oauth_clients ADD COLUMN metadata_expires_at INTEGER;  -- CIMD: refetch after this (5 min .. 24 h)
