"""`make bench`'s cost figures (issue 20, item 9): the billable operations
one request makes, counted by the dev meter (scripts/meter/, METER=true), and
their price at Cloudflare's published Workers Paid prices; what the
every-minute cron costs a day on an empty and on a busy database; and how
many such requests a day fit in the Free plan's daily allowances.

Pure arithmetic over meter readings, plus `seed_busy`, which plants a busy
account base straight into the local D1 file (as the tests plant rows)."""
from __future__ import annotations

import sqlite3
import time
import uuid

# Workers Paid, beyond what the $5 a month includes; from the pricing pages of
# Workers, Durable Objects, D1, R2 and Queues on developers.cloudflare.com, as
# read on PRICES_DATE. Not counted: CPU time ($0.02 per million CPU ms) and
# Durable Object duration ($12.50 per million GB-s), which the local runtime
# does not measure, and storage (GB-month).
PRICES_DATE = "2026-12-06"
USD_PER_MILLION = {
    "workerRequests": 0.30,
    "doRequests": 0.15,
    "doRowsRead": 0.001,
    "doRowsWritten": 1.00,
    "d1RowsRead": 0.001,
    "d1RowsWritten": 1.00,
    "r2ClassA": 4.50,
    "r2ClassB": 0.36,
    "queueOps": 0.40,
}
# The Free plan's daily allowances (R2's are monthly: a 30th of them).
FREE_PER_DAY = {
    "workerRequests": 100_000,
    "doRequests": 100_000,
    "doRowsRead": 5_000_000,
    "doRowsWritten": 100_000,
    "d1RowsRead": 5_000_000,
    "d1RowsWritten": 100_000,
    "r2ClassA": 1_000_000 // 30,
    "r2ClassB": 10_000_000 // 30,
    "queueOps": 10_000,
}
CRON_RUNS_PER_DAY = 24 * 60


def units(spent: dict) -> dict:
    """The billable units in a meter difference (`metering.cost`) over all
    Workers. Worker requests are the HTTP requests the API answered, queue
    batches and cron runs; a call through a service binding is not billed
    as a request. A Queue message is three operations (write, read, delete)."""
    def total(k: str) -> int:
        return sum(w.get(k, 0) for w in spent.values())
    return {
        "workerRequests": spent["api"]["invocations"] + total("queueBatches"),
        "doRequests": total("durableObjects") + total("alarms"),
        "doRowsRead": total("doRowsRead"),
        "doRowsWritten": total("doRowsWritten"),
        "d1RowsRead": total("d1RowsRead"),
        "d1RowsWritten": total("d1RowsWritten"),
        "r2ClassA": total("r2ClassA"),
        "r2ClassB": total("r2ClassB"),
        "queueOps": 3 * total("queueMessages"),
    }


def per(u: dict, n: int) -> dict:
    return {k: round(v / n, 3) for k, v in u.items()}


def usd_per_million(u: dict) -> float:
    """Dollars per million of what `u` counts once (its units are per request)."""
    return round(sum(v * USD_PER_MILLION[k] for k, v in u.items()), 4)


def dominant(u: dict) -> str:
    return max(u, key=lambda k: u[k] * USD_PER_MILLION[k])


def free_plan_requests_per_day(u: dict, idle_per_day: dict) -> tuple[int, str]:
    """How many requests costing `u` each fit in a Free plan day beside the
    cron's own use, and the allowance that runs out first."""
    fits = {k: (FREE_PER_DAY[k] - idle_per_day.get(k, 0)) / v for k, v in u.items() if v > 0}
    k = min(fits, key=fits.get)
    return max(0, int(fits[k])), k


def seed_busy(d1_file: str, accounts: int = 2_000) -> dict[str, int]:
    """A busy deployment's tables, planted straight into the local D1 file:
    per account 10 API keys (half expiring in a year), 5 sessions, 5 Jes with
    a media item each, 2 OAuth grants with an access and a refresh token, and
    recent webhook deliveries, attempts, outbox events and audit rows: what
    the cron's sweeps look through, none of it due."""
    now = int(time.time() * 1000)
    year = now + 365 * 86_400_000
    rows: dict[str, list[tuple]] = {t: [] for t in (
        "users", "api_keys", "sessions", "posts", "media", "oauth_clients", "oauth_grants", "oauth_access_tokens",
        "oauth_refresh_tokens", "event_outbox", "webhook_deliveries", "webhook_attempts", "audit_log")}
    client = "cli_busy"
    rows["oauth_clients"].append((client, "Busy", '["https://example.com/cb"]', "authorization_code refresh_token", now))
    for a in range(accounts):
        uid = f"usr_busy{a}"
        rows["users"].append((uid, f"busy{a}", f"busy{a}@example.com", "Busy", "x", now))
        for k in range(10):
            rows["api_keys"].append((f"key_b{a}_{k}", uid, uuid.uuid4().hex, "jes_live_****", "k", "write:jes",
                                     year if k % 2 else None, now))
        for s in range(5):
            rows["sessions"].append((f"ses_b{a}_{s}", uid, uuid.uuid4().hex, now, now + 86_400_000))
            pid = f"pst_b{a}_{s}"
            rows["posts"].append((pid, uid, "jes", "busy", "PUBLIC", now, now))
            rows["media"].append((f"med_b{a}_{s}", uid, pid, f"m/b{a}_{s}", "image/png", 10, "e", now))
            eid = f"evt_b{a}_{s}"
            rows["event_outbox"].append((eid, uid, "post.created", "{}", now, now))
            rows["webhook_deliveries"].append((f"dlv_b{a}_{s}", eid, f"whe_b{a}", "post.created", "succeeded", now, now))
            rows["webhook_attempts"].append((f"att_b{a}_{s}", f"dlv_b{a}_{s}", f"whe_b{a}", eid, "post.created", 1,
                                             "succeeded", now))
            rows["audit_log"].append((f"aud_b{a}_{s}", uid, "auth.login", "user", now))
        for g in range(2):
            gid = f"grt_b{a}_{g}"
            rows["oauth_grants"].append((gid, uid, client, "Busy", "write:jes", "code", now, now))
            rows["oauth_access_tokens"].append((uuid.uuid4().hex, gid, "write:jes", now, now + 3_600_000))
            rows["oauth_refresh_tokens"].append((uuid.uuid4().hex, f"ort_b{a}_{g}", gid, "write:jes", now, year))
    sql = {
        "users": "INSERT INTO users (id, username, email, display_name, password_hash, created_at) VALUES (?,?,?,?,?,?)",
        "api_keys": "INSERT INTO api_keys (id, user_id, token_hash, masked_key, label, scopes, expires_at, created_at) "
                    "VALUES (?,?,?,?,?,?,?,?)",
        "sessions": "INSERT INTO sessions (id, user_id, token_hash, created_at, expires_at) VALUES (?,?,?,?,?)",
        "posts": "INSERT INTO posts (id, author_id, kind, content, visibility, created_at, updated_at) "
                 "VALUES (?,?,?,?,?,?,?)",
        "media": "INSERT INTO media (id, owner_id, post_id, r2_key, content_type, size, etag, created_at) "
                 "VALUES (?,?,?,?,?,?,?,?)",
        "oauth_clients": "INSERT INTO oauth_clients (id, client_name, redirect_uris, grant_types, created_at) "
                         "VALUES (?,?,?,?,?)",
        "oauth_grants": "INSERT INTO oauth_grants (id, user_id, client_id, client_name, scopes, flow, created_at, "
                        "activated_at) VALUES (?,?,?,?,?,?,?,?)",
        "oauth_access_tokens": "INSERT INTO oauth_access_tokens (token_hash, grant_id, scopes, created_at, expires_at) "
                               "VALUES (?,?,?,?,?)",
        "oauth_refresh_tokens": "INSERT INTO oauth_refresh_tokens (token_hash, id, grant_id, scopes, created_at, "
                                "expires_at) VALUES (?,?,?,?,?,?)",
        "event_outbox": "INSERT INTO event_outbox (id, account_id, type, payload, created_at, sent_at) VALUES (?,?,?,?,?,?)",
        "webhook_deliveries": "INSERT INTO webhook_deliveries (id, event_id, endpoint_id, event_type, status, "
                              "created_at, updated_at) VALUES (?,?,?,?,?,?,?)",
        "webhook_attempts": "INSERT INTO webhook_attempts (id, delivery_id, endpoint_id, event_id, event_type, "
                            "attempt, status, created_at) VALUES (?,?,?,?,?,?,?,?)",
        "audit_log": "INSERT INTO audit_log (id, user_id, action, actor_type, at) VALUES (?,?,?,?,?)",
    }
    with sqlite3.connect(d1_file, timeout=30) as db:
        for table, values in rows.items():
            db.executemany(sql[table], values)
    return {t: len(v) for t, v in rows.items()}
