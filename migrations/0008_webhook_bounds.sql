-- Bounds against abuse (issue 20, items 4 and 7).

-- One URL once per account: webhooks::create's INSERT checks NOT EXISTS on
-- (user_id, url) and the account's count, both by this index. Not UNIQUE:
-- a database from before this bound may hold duplicates, which would fail
-- the index build and so the migration; the INSERT's check is exact without
-- it, since D1 runs one statement at a time.
CREATE INDEX IF NOT EXISTS webhook_endpoints_user_url ON webhook_endpoints(user_id, url);

-- Each endpoint keeps its newest finished deliveries (WEBHOOK_HISTORY_PER_ENDPOINT):
-- the trim walks this index newest first, so the id belongs in it.
DROP INDEX IF EXISTS webhook_deliveries_endpoint;
CREATE INDEX IF NOT EXISTS webhook_deliveries_endpoint ON webhook_deliveries(endpoint_id, id);

-- A leak finding is (token, url, source): a report that names one already
-- recorded (a replay) changes nothing and notifies no one. Not UNIQUE: rows
-- written before this hold replays.
CREATE INDEX IF NOT EXISTS leak_reports_finding ON leak_reports(token_hash, url, source);
