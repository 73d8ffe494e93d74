-- The cost of idling (issue 20, item 9). The every-minute cron read every
-- API key and every OAuth token at each run: `make bench` measured 52,040 D1
-- rows read per run on its busy database (2,000 accounts), 75 million a day,
-- fifteen times the Free plan's daily 5 million, with nothing due. Each
-- sweep now finds what is due through an index, so an idle run reads about
-- what it acts on.

-- key.expiring: keys expiring within a notice's threshold, live, not canaries.
CREATE INDEX IF NOT EXISTS api_keys_expiring ON api_keys(expires_at)
  WHERE revoked_at IS NULL AND canary = 0 AND expires_at IS NOT NULL;

-- The OAuth retention sweep (engine::sweeps::oauth).
CREATE INDEX IF NOT EXISTS oauth_codes_expiry ON oauth_codes(expires_at);
CREATE INDEX IF NOT EXISTS oauth_device_codes_expiry ON oauth_device_codes(expires_at);
CREATE INDEX IF NOT EXISTS oauth_device_codes_client ON oauth_device_codes(client_id);
CREATE INDEX IF NOT EXISTS oauth_access_expiry ON oauth_access_tokens(expires_at);
CREATE INDEX IF NOT EXISTS oauth_access_revoked ON oauth_access_tokens(revoked_at) WHERE revoked_at IS NOT NULL;
CREATE INDEX IF NOT EXISTS oauth_refresh_expiry ON oauth_refresh_tokens(expires_at);
CREATE INDEX IF NOT EXISTS grant_usage_day ON grant_usage(day);
CREATE INDEX IF NOT EXISTS oauth_grants_pending ON oauth_grants(created_at) WHERE activated_at IS NULL;
CREATE INDEX IF NOT EXISTS oauth_grants_revoked ON oauth_grants(revoked_at) WHERE revoked_at IS NOT NULL;
CREATE INDEX IF NOT EXISTS oauth_grants_client ON oauth_grants(client_id);
CREATE INDEX IF NOT EXISTS oauth_clients_created ON oauth_clients(created_at);
