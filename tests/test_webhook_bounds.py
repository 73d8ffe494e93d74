"""Webhook fan-out bounds over HTTP (issue 20, item 4): at most 25 endpoints
per account and each URL once, exact under concurrency; each endpoint keeps
only its newest finished deliveries; and the cron drops the record past 30
days a bounded slice per run, reading it by primary-key range."""
from __future__ import annotations

import base64
import os
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

from conftest import Api, assert_error, d1_query, wait_for
from receiver import Receiver

KEEP = 3  # WEBHOOK_HISTORY_PER_ENDPOINT here: every finished delivery trims
DAY_MS = 86_400_000
CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"


def ulid_time(ms: int) -> str:
    """The 10-character time part of a ULID made at `ms`."""
    return "".join(CROCKFORD[(ms >> (5 * i)) & 31] for i in reversed(range(10)))


@pytest.fixture(scope="module")
def bounds(make_server):
    return make_server({
        "WEBHOOK_HISTORY_PER_ENDPOINT": str(KEEP),
        "WEBHOOK_RETRY_DELAYS": "1,1",
        "WEBHOOK_SECRET_KEY": base64.b64encode(os.urandom(32)).decode(),
    })


@pytest.fixture(scope="module")
def bapi(bounds) -> Api:
    return Api(bounds.url)


@pytest.fixture(scope="module")
def receiver():
    r = Receiver()
    yield r
    r.stop()


def hooks(key_id: str) -> str:
    return f"/api/auth/api-keys/{key_id}/webhooks"


def cron(server):
    requests.get(server.url + "/__scheduled?cron=*+*+*+*+*", timeout=60)


def count(server, sql: str) -> int:
    return d1_query(server, sql)[0]["n"]


# ---------------------------------------------------------------- caps

def test_webhook_endpoints_are_25_per_account_and_each_url_once(bounds, bapi: Api):
    api, server = bapi, bounds
    a = api.signup()
    keys = [api.create_key(a["token"], scopes=["webhooks:manage", "write:jes"], label=f"k{i}") for i in range(3)]
    for i in range(25):
        k = keys[i // 10]
        r = api.post(hooks(k["id"]), token=a["token"],
                     json={"url": f"https://example.com/hook/{i}", "events": ["post.created"]})
        assert r.status_code == 201, r.text
    r = api.post(hooks(keys[2]["id"]), token=a["token"],
                 json={"url": "https://example.com/hook/26", "events": ["post.created"]})
    assert "25 endpoints per account" in assert_error(r, 409, "conflict")["message"]
    rows = d1_query(server, f"SELECT COUNT(*) AS n FROM webhook_endpoints WHERE user_id = '{a['user']['id']}'")
    assert rows[0]["n"] == 25
    # The same URL twice in one account, even on another key, is 409 too.
    b = api.signup()
    bk = [api.create_key(b["token"], scopes=["webhooks:manage", "write:jes"], label=f"k{i}") for i in range(2)]
    hook = {"url": "https://example.com/same", "events": ["post.created"]}
    first = api.post(hooks(bk[0]["id"]), token=b["token"], json=hook)
    assert first.status_code == 201, first.text
    r = api.post(hooks(bk[1]["id"]), token=b["token"], json=hook)
    message = assert_error(r, 409, "conflict")["message"]
    assert "already has an endpoint with this URL" in message and first.json()["id"] in message, message
    # The same receiver written differently (case, default port, a fragment fetch never sends) is the same URL.
    r = api.post(hooks(bk[1]["id"]), token=b["token"],
                 json={**hook, "url": "HTTPS://Example.COM:443/same#section"})
    assert "already has an endpoint with this URL" in assert_error(r, 409, "conflict")["message"]
    rows = d1_query(server, f"SELECT COUNT(*) AS n FROM webhook_endpoints WHERE user_id = '{b['user']['id']}'")
    assert rows[0]["n"] == 1
    # Another account may use the URL.
    c = api.signup()
    ck = api.create_key(c["token"], scopes=["webhooks:manage", "write:jes"])
    assert api.post(hooks(ck["id"]), token=c["token"], json=hook).status_code == 201


def test_a_key_learns_no_id_of_another_keys_endpoint_from_the_conflict(bapi: Api):
    api = bapi
    a = api.signup()
    mine = api.create_key(a["token"], scopes=["webhooks:manage"], label="mine")
    other = api.create_key(a["token"], scopes=["webhooks:manage"], label="other")
    hook = {"url": "https://example.com/shared", "events": ["key.revoked"]}
    held = api.post(hooks(other["id"]), token=a["token"], json=hook).json()
    r = api.post(hooks(mine["id"]), token=mine["key"], json=hook)
    message = assert_error(r, 409, "conflict")["message"]
    assert "already has an endpoint with this URL" in message and held["id"] not in message, message


def test_parallel_creates_cannot_pass_the_cap_or_add_a_url_twice(bounds, bapi: Api):
    api, server = bapi, bounds
    a = api.signup()
    keys = [api.create_key(a["token"], scopes=["webhooks:manage"], label=f"k{i}") for i in range(3)]
    for i in range(24):
        r = api.post(hooks(keys[i // 10]["id"]), token=a["token"],
                     json={"url": f"https://example.com/p/{i}", "events": ["key.revoked"]})
        assert r.status_code == 201, r.text

    def create(token: str, key_id: str, url: str) -> requests.Response:
        return requests.post(bounds.url + hooks(key_id), json={"url": url, "events": ["key.revoked"]},
                             headers={"Authorization": f"Bearer {token}"}, timeout=60)

    with ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(lambda i: create(a["token"], keys[2]["id"], f"https://example.com/race/{i}"), range(8)))
    assert sorted(r.status_code for r in answers) == [201] + [409] * 7, [r.text for r in answers]
    assert count(server, f"SELECT COUNT(*) AS n FROM webhook_endpoints WHERE user_id = '{a['user']['id']}'") == 25

    b = api.signup()
    bk = [api.create_key(b["token"], scopes=["webhooks:manage"], label=f"k{i}") for i in range(2)]
    with ThreadPoolExecutor(6) as pool:
        answers = list(pool.map(lambda i: create(b["token"], bk[i % 2]["id"], "https://example.com/once"), range(6)))
    assert sorted(r.status_code for r in answers) == [201] + [409] * 5, [r.text for r in answers]
    assert count(server, f"SELECT COUNT(*) AS n FROM webhook_endpoints WHERE user_id = '{b['user']['id']}'") == 1


# ---------------------------------------------------------------- the delivery record

def test_each_endpoint_keeps_only_its_newest_finished_deliveries(bounds, bapi: Api, receiver):
    api, server = bapi, bounds
    a = api.signup()
    k = api.create_key(a["token"], scopes=["webhooks:manage"])
    busy_path, quiet_path = receiver.new_path(), receiver.new_path()
    busy = api.post(hooks(k["id"]), token=a["token"],
                    json={"url": receiver.url(busy_path), "events": ["webhook.test"]}).json()
    quiet = api.post(hooks(k["id"]), token=a["token"],
                     json={"url": receiver.url(quiet_path), "events": ["webhook.test"]}).json()
    assert api.post(f"{hooks(k['id'])}/{quiet['id']}/test", token=a["token"]).status_code == 202
    sent = []
    # One at a time, so the deliveries are made (and their ids sort) in the order sent.
    for i in range(KEEP + 4):
        r = api.post(f"{hooks(k['id'])}/{busy['id']}/test", token=a["token"])
        assert r.status_code == 202, r.text
        sent.append(r.json()["id"])
        wait_for(f"test event {i + 1} at its receiver", lambda: len(receiver.at(busy_path)) == i + 1)
    wait_for("the quiet endpoint's one event", lambda: receiver.at(quiet_path))

    def record(endpoint_id: str) -> list[dict]:
        return d1_query(server, f"SELECT id, event_id, status FROM webhook_deliveries "
                                f"WHERE endpoint_id = '{endpoint_id}' ORDER BY id")

    kept = wait_for(f"the busy endpoint's record trimmed to {KEEP}",
                    lambda: (lambda rows: rows if len(rows) == KEEP and all(r["status"] == "succeeded" for r in rows)
                             else None)(record(busy["id"])))
    assert [r["event_id"] for r in kept] == sent[-KEEP:], "the newest are kept"
    attempts = d1_query(server, f"SELECT delivery_id FROM webhook_attempts WHERE endpoint_id = '{busy['id']}'")
    assert sorted(x["delivery_id"] for x in attempts) == sorted(r["id"] for r in kept), "attempts go with their deliveries"
    listed = api.get(f"{hooks(k['id'])}/{busy['id']}/deliveries", token=a["token"]).json()["items"]
    assert [x["eventId"] for x in listed] == list(reversed(sent[-KEEP:]))
    assert len(record(quiet["id"])) == 1, "another endpoint's record is its own"


def test_the_cron_drops_the_record_past_thirty_days_a_bounded_slice_per_run(bounds):
    server = bounds
    now = int(time.time() * 1000)
    old, young = now - 40 * DAY_MS, now - 29 * DAY_MS
    tag = os.urandom(4).hex()  # this test's rows, apart from any other test's

    planted = [0]

    def plant(table: str, n: int, at: int, status: str):
        prefix = ("att_" if table == "webhook_attempts" else "dlv_") + ulid_time(at)
        ids = f"'{prefix}' || printf('%016d', i + {planted[0]})"
        planted[0] += n
        if table == "webhook_attempts":
            cols = "id, delivery_id, endpoint_id, event_id, event_type, attempt, status, created_at"
            vals = f"{ids}, 'dlv_{tag}', 'wh_{tag}', 'evt_{tag}', 'webhook.test', 1, '{status}', {at}"
        else:
            cols = "id, event_id, endpoint_id, event_type, status, created_at, updated_at"
            vals = f"{ids}, 'evt_{tag}_{status}_{at}_' || i, 'wh_{tag}', 'webhook.test', '{status}', {at}, {at}"
        d1_query(server, f"WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < {n}) "
                         f"INSERT INTO {table} ({cols}) SELECT {vals} FROM n")

    plant("webhook_attempts", 4500, old, "succeeded")
    plant("webhook_attempts", 10, young, "succeeded")
    plant("webhook_deliveries", 1500, old, "dead")
    plant("webhook_deliveries", 5, old, "pending")  # still on the queue: never dropped
    plant("webhook_deliveries", 10, young, "succeeded")

    def standing() -> dict:
        return d1_query(server, f"""SELECT
            (SELECT COUNT(*) FROM webhook_attempts WHERE endpoint_id = 'wh_{tag}' AND created_at = {old}) AS old_attempts,
            (SELECT COUNT(*) FROM webhook_attempts WHERE endpoint_id = 'wh_{tag}' AND created_at = {young}) AS young_attempts,
            (SELECT COUNT(*) FROM webhook_deliveries WHERE endpoint_id = 'wh_{tag}' AND created_at = {old}
                AND status = 'dead') AS old_deliveries,
            (SELECT COUNT(*) FROM webhook_deliveries WHERE endpoint_id = 'wh_{tag}' AND status = 'pending') AS pending,
            (SELECT COUNT(*) FROM webhook_deliveries WHERE endpoint_id = 'wh_{tag}' AND created_at = {young}) AS young_deliveries
        """)[0]

    cron(server)
    # One run deletes at most 4 rounds of 1,000 of each: 500 old attempts wait for the next.
    wait_for("the first run's slice", lambda: standing()["old_attempts"] == 500)
    time.sleep(1)
    assert standing() == {"old_attempts": 500, "young_attempts": 10, "old_deliveries": 0, "pending": 5,
                          "young_deliveries": 10}
    cron(server)
    wait_for("the rest", lambda: standing()["old_attempts"] == 0)
    assert standing() == {"old_attempts": 0, "young_attempts": 10, "old_deliveries": 0, "pending": 5,
                          "young_deliveries": 10}
