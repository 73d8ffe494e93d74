"""The README's per-route budget table (issue 20, item 8), checked: each row's
request is made against a server with METER=true (scripts/meter/ counts every
call through a binding before it leaves, deferred work included) and what it
cost must be within its row, and every row within the Free plan's 50
subrequests per invocation. A row without a fixture here, or a fixture without
a row, fails too, so the table cannot drift from what is measured."""
from __future__ import annotations

import math
import os
import uuid
from pathlib import Path

import pytest

from conftest import Api, d1_query
from keys import forge
from metering import cost, meter, served, summary
from test_revocation import make_keys, plant_sessions

README = (Path(__file__).resolve().parent.parent / "README.md").read_text()
FREE_PLAN_SUBREQUESTS = 50
PART = 5 << 20            # domain::upload::PART
MAX_UPLOAD = 104_857_600  # MAX_UPLOAD_BYTES' default
MP4_HEAD = b"\x00\x00\x00\x18ftypisom\x00\x00\x02\x00isomiso2"


def table() -> dict[str, dict[str, int]]:
    section = README.split("### Budget per route", 1)[1].split("\n#", 1)[0]
    rows = {}
    for line in section.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) == 6 and cells[2].isdigit():
            rows[cells[0]] = {k: int(v) for k, v in zip(("subrequests", "d1", "durableObjects", "widestObject"), cells[2:])}
    return rows


ROWS = table()


@pytest.fixture(scope="module")
def s():
    # No usage flush during a request: its alarms would add to the counts.
    yield from served({"METER": "true", "USAGE_FLUSH_SECONDS": "3600", "SIGNUP_MAX_PER_ADDRESS": "1000"})


def big_account(s, api: Api) -> dict:
    """300 sessions (the sign-up's own and 299 more), 50 keys, some Gates warm."""
    a = api.signup()
    keys = make_keys(api, a["token"], 50)
    sessions = plant_sessions(s, a["user"]["id"], 299)
    for t in sessions[:40] + keys[:20]:
        assert api.get("/api/auth/me", token=t).status_code == 200
    return a


def me_with_a_key(s, api):
    k = api.create_key(api.signup()["token"], scopes=["read:comment"])["key"]
    return lambda: api.get("/api/auth/me", token=k)


def post_with_a_webhook(s, api):
    a = api.signup()
    k = api.create_key(a["token"], scopes=["webhooks:manage", "write:jes"])
    hook = {"url": "https://example.com/hook", "events": ["post.created"]}
    assert api.post(f"/api/auth/api-keys/{k['id']}/webhooks", token=a["token"], json=hook).status_code == 201
    return lambda: api.post("/api/posts", token=k["key"], json={"content": "costed #one #two"},
                            headers={"Idempotency-Key": uuid.uuid4().hex})


def upload(s, api):
    k = api.create_key(api.signup()["token"], scopes=["write:jesclip"])["key"]
    data = MP4_HEAD + os.urandom(2 * PART + 1_000_000 - len(MP4_HEAD))
    return lambda: api.http.post(api.url + "/api/media", data=data, timeout=120,
                                 headers={"Authorization": f"Bearer {k}", "Content-Type": "video/mp4"})


def signup(s, api):
    name = "c" + uuid.uuid4().hex[:10]
    return lambda: api.post("/api/auth/signup", json={"username": name, "email": f"{name}@example.com",
                                                      "password": "correct horse battery"})


def login(s, api):
    a = api.signup()
    return lambda: api.post("/api/auth/login", json={"login": a["user"]["username"], "password": a["password"]})


def failed_login(s, api):
    a = api.signup()
    return lambda: api.post("/api/auth/login", json={"login": a["user"]["username"], "password": "wrong password"})


def invented_key(s, api):
    return lambda: api.get("/api/auth/me", token=forge())


def password_change(s, api):
    a = big_account(s, api)
    return lambda: api.patch("/api/account", token=a["token"], json={
        "password": "another long password", "currentPassword": a["password"], "displayName": "Costed"})


def account_deletion(s, api):
    a = big_account(s, api)
    return lambda: api.delete("/api/account", token=a["token"])


def webhook_refused(s, api):
    a = api.signup()
    k = api.create_key(a["token"], scopes=["webhooks:manage", "write:jes"])
    hook = {"url": "https://example.com/once", "events": ["post.created"]}
    assert api.post(f"/api/auth/api-keys/{k['id']}/webhooks", token=a["token"], json=hook).status_code == 201
    return lambda: api.post(f"/api/auth/api-keys/{k['id']}/webhooks", token=a["token"], json=hook)


FIXTURES = {
    "`GET /api/auth/me` (key)": me_with_a_key,
    "`POST /api/posts` (Idempotency-Key, 2 hashtags, a webhook)": post_with_a_webhook,
    "`POST /api/media` (100 MiB, 20 parts)": upload,
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
        assert row["subrequests"] <= FREE_PLAN_SUBREQUESTS and row["widestObject"] <= FREE_PLAN_SUBREQUESTS, name


@pytest.mark.parametrize("name", list(FIXTURES))
def test_each_route_costs_at_most_its_row(s, name):
    api = Api(s.url)
    call = FIXTURES[name](s, api)
    before = meter(s)
    r = call()
    spent = cost(before, meter(s))
    got = summary(spent)
    if FIXTURES[name] is upload:
        # Measured on 2 parts and a tail; each further part is one more R2
        # call of the engine's invocation (asserted), so the largest file's
        # cost is this one's with the parts it has beyond them.
        parts = math.ceil(len(r.request.body) / PART)
        assert spent["engine"]["r2"] == parts + 2, spent
        extra = math.ceil(MAX_UPLOAD / PART) - parts
        got = {**got, "subrequests": got["subrequests"] + extra}
    assert r.status_code < 500, r.text
    print(f"\n{name}: {got}")
    busy = {w: {k: v for k, v in c.items() if v and k in ("invocations", "subrequests", "d1", "durableObjects")}
            for w, c in spent.items()}
    assert got["invocations"] == 1
    for k, bound in ROWS[name].items():
        assert got[k] <= bound, (name, k, got, ROWS[name], busy)


def multipart(parts: int) -> tuple[bytes, str]:
    b = "x" + uuid.uuid4().hex
    body = b"".join(f"--{b}\r\nContent-Disposition: form-data; name=\"f{i}\"\r\n\r\nv\r\n".encode() for i in range(parts))
    return body + f"--{b}--\r\n".encode(), f"multipart/form-data; boundary={b}"


def test_large_inputs_get_a_4xx_and_write_nothing(s):
    """Inputs far past every bound are refused with the error envelope, not
    a 5xx or a hang, and leave no row behind."""
    api = Api(s.url)
    a = api.signup()
    key = api.create_key(a["token"], preset="scheduler")["key"]
    many, many_type = multipart(40)
    cases = [
        ("a 5 MB JSON body", lambda: api.post("/api/posts", token=key, data=b'{"content":"' + b"a" * 5_000_000 + b'"}',
                                               headers={"Content-Type": "application/json"}), 413, "payload_too_large"),
        ("a Jes of 60,000 characters", lambda: api.post("/api/posts", token=key, json={"content": "a" * 60_000}),
         400, "invalid_request"),
        ("a page of a hundred million", lambda: api.get("/api/auth/api-keys?limit=100000000", token=a["token"]),
         400, "invalid_request"),
        ("a 40-part form", lambda: api.post("/api/jesclips", token=key, data=many, headers={"Content-Type": many_type}),
         400, "invalid_request"),
        ("a 71-character boundary", lambda: api.post("/api/jesclips", token=key, data=b"--" + b"b" * 71 + b"--\r\n",
                                                      headers={"Content-Type": "multipart/form-data; boundary=" + "b" * 71}),
         400, "invalid_request"),
        ("a resumable upload of 10 GiB", lambda: api.post("/api/uploads", token=key, headers={
            "Tus-Resumable": "1.0.0", "Upload-Length": str(10 << 30)}), 413, "payload_too_large"),
    ]
    before = rows_of(s, a["user"]["id"])
    for name, call, status, code in cases:
        r = call()
        assert 400 <= r.status_code < 500, (name, r.status_code, r.text[:300])
        if status:
            assert r.status_code == status and r.json()["error"]["code"] == code, (name, r.status_code, r.text[:300])
    assert rows_of(s, a["user"]["id"]) == before


def rows_of(s, user_id: str) -> int:
    """The account's posts and media."""
    return d1_query(s, f"SELECT (SELECT COUNT(*) FROM posts WHERE author_id = '{user_id}') + "
                       f"(SELECT COUNT(*) FROM media WHERE owner_id = '{user_id}') AS n")[0]["n"]
