"""The README's per-route budget table, checked: each row's request is made
against a server with METER=true (scripts/meter-entry.js counts every
subrequest the API Worker makes, deferred work included), and what it cost
must be within the row, and every row within the Free plan's 50 subrequests
per invocation. A row without a fixture here, or a fixture without a row,
fails too, so the table cannot drift from what is measured."""
from __future__ import annotations

import hashlib
import re
import time
import uuid
from pathlib import Path

import pytest

from conftest import Api, Server, d1_query, metered
from keys import forge

README = (Path(__file__).resolve().parent.parent / "README.md").read_text()
FREE_PLAN_SUBREQUESTS = 50


def table() -> dict[str, dict[str, int]]:
    section = README.split("### Budget per route", 1)[1].split("\n#", 1)[0]
    rows = {}
    for line in section.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) == 5 and cells[2].isdigit():
            rows[cells[0]] = {"subrequests": int(cells[2]), "d1": int(cells[3]), "durableObjects": int(cells[4])}
    return rows


ROWS = table()


@pytest.fixture(scope="module")
def s():
    srv = Server({"METER": "true", "SESSION_RATE_LIMIT_PER_MINUTE": "100000",
                  "RATE_LIMIT_PER_MINUTE": "100000", "SIGNUP_MAX_PER_ADDRESS": "1000"}).start()
    yield srv
    srv.stop()


def many_credentials(s, api: Api, a: dict, sessions: int = 299, keys: int = 50) -> list[str]:
    uid = a["user"]["id"]
    made = [api.create_key(a["token"], scopes=["read:comment"], label=f"k{i}")["key"] for i in range(keys)]
    now = int(time.time() * 1000)
    toks = [forge("jes_sess_") for _ in range(sessions)]
    values = ", ".join(f"('s{uuid.uuid4().hex}', '{uid}', '{hashlib.sha256(t.encode()).hexdigest()}', {now}, {now + 86_400_000})"
                       for t in toks)
    d1_query(s, f"INSERT INTO sessions (id, user_id, token_hash, created_at, expires_at) VALUES {values}")
    for t in toks[:40] + made[:20]:
        api.get("/api/auth/me", token=t)
    return made + toks


def me_with_a_key(s, api):
    a = api.signup()
    k = api.create_key(a["token"], scopes=["read:comment"])
    return lambda: api.get("/api/auth/me", token=k["key"])


def post_with_idempotency_key(s, api):
    a = api.signup()
    return lambda: api.post("/api/posts", token=a["token"], json={"content": "costed #one #two"},
                            headers={"Idempotency-Key": uuid.uuid4().hex})


def signup(s, api):
    name = "c" + uuid.uuid4().hex[:10]
    return lambda: api.post("/api/auth/signup", json={"username": name, "email": f"{name}@example.com",
                                                      "password": "correct horse battery"},
                            headers={"CF-Connecting-IP": "198.51.100.3"})


def login(s, api):
    a = api.signup()
    return lambda: api.post("/api/auth/login", json={"login": a["user"]["username"], "password": a["password"]},
                            headers={"CF-Connecting-IP": "198.51.100.4"})


def failed_login(s, api):
    a = api.signup()
    return lambda: api.post("/api/auth/login", json={"login": a["user"]["username"], "password": "wrong password"},
                            headers={"CF-Connecting-IP": "198.51.100.5"})


def invented_key(s, api):
    return lambda: api.get("/api/auth/me", token=forge(), headers={"CF-Connecting-IP": "198.51.100.6"})


def password_change(s, api):
    a = api.signup()
    many_credentials(s, api, a)
    return lambda: api.patch("/api/account", token=a["token"], json={
        "password": "another long password", "currentPassword": a["password"], "displayName": "Costed"})


def account_deletion(s, api):
    a = api.signup()
    many_credentials(s, api, a)
    return lambda: api.delete("/api/account", token=a["token"])


def webhook_refused(s, api):
    a = api.signup()
    k = api.create_key(a["token"], scopes=["webhooks:manage", "write:jes"])
    hook = {"url": "https://example.com/once", "events": ["post.created"]}
    assert api.post(f"/api/auth/api-keys/{k['id']}/webhooks", token=a["token"], json=hook).status_code == 201
    return lambda: api.post(f"/api/auth/api-keys/{k['id']}/webhooks", token=a["token"], json=hook)


FIXTURES = {
    "`GET /api/auth/me` (key)": me_with_a_key,
    "`POST /api/posts` (Idempotency-Key, 2 hashtags)": post_with_idempotency_key,
    "`POST /api/auth/signup`": signup,
    "`POST /api/auth/login`": login,
    "`POST /api/auth/login` (wrong password)": failed_login,
    "Any route, an invented key": invented_key,
    "`PATCH /api/account` (password and name; 300 sessions, 50 keys)": password_change,
    "`DELETE /api/account` (300 sessions, 50 keys)": account_deletion,
    "`POST …/webhooks` (refused: the URL is taken)": webhook_refused,
}


def test_every_row_has_a_fixture_and_fits_the_free_plan():
    assert set(ROWS) == set(FIXTURES), set(ROWS) ^ set(FIXTURES)
    for name, row in ROWS.items():
        assert row["subrequests"] <= FREE_PLAN_SUBREQUESTS, name
        assert row["d1"] + row["durableObjects"] <= row["subrequests"], name


@pytest.mark.parametrize("name", list(FIXTURES))
def test_each_route_costs_at_most_its_row(s, name):
    api = Api(s.url)
    call = FIXTURES[name](s, api)
    r, cost = metered(s, call)
    assert r.status_code < 500, r.text
    print(f"\n{name}: {cost}")
    row = ROWS[name]
    assert cost["invocations"] == 1
    for k in ("subrequests", "d1", "durableObjects"):
        assert cost[k] <= row[k], (name, k, cost, row)
