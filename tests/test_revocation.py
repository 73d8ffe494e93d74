"""Bulk revocation (issue 20, item 3) over HTTP: a password change ends
hundreds of other sessions, and an account deletion every key, session and
OAuth grant, at once and within the Free plan's 50 subrequests per
invocation, counted by the meter (scripts/meter/, METER=true) around the one
request: the account Worker makes one D1 batch and one Durable Object call
for all of them, and no Durable Object invocation of the fan-out makes more
than 40. Nothing is half-done on failure: a change D1 refuses revokes
nothing, and Gates not told after a commit are told by the cron."""
from __future__ import annotations

import hashlib
import secrets
import time
import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

import oauth
from conftest import Api, assert_error, d1_query
from metering import cost, meter, served
from keys import ALPHABET, checksum

PASSWORD = "correct horse battery"
SESSIONS = 300  # the signup's own and 299 planted
KEYS = 50       # MAX_ACTIVE_KEYS
LEAF = 40       # domain::fanout::LEAF


@pytest.fixture(scope="module")
def metered():
    # No usage flush during a test: its alarms would add to the counts.
    yield from served({"METER": "true", "USAGE_FLUSH_SECONDS": "3600"})


def fan_out_calls(n: int) -> int:
    """Durable Object calls the fan-out objects make for n Gates (n <= 1600):
    the root calls them itself, or one child per 40, each calling its 40."""
    return n if n <= LEAF else n + -(-n // LEAF)


def session_token() -> str:
    body = "jes_sess_" + "".join(secrets.choice(ALPHABET) for _ in range(30))
    return body + checksum(body)


def plant_sessions(server, user_id: str, n: int) -> list[str]:
    """n live sessions of the account, written straight into the local D1
    file (logging in n times would be PBKDF2 n times)."""
    import sqlite3
    from conftest import d1_file
    now = int(time.time() * 1000)
    tokens = [session_token() for _ in range(n)]
    rows = [("ses_" + uuid.uuid4().hex, user_id, hashlib.sha256(t.encode()).hexdigest(), now - 1000, now + 86_400_000)
            for t in tokens]
    with sqlite3.connect(d1_file(server), timeout=10) as db:
        db.executemany("INSERT INTO sessions (id, user_id, token_hash, created_at, expires_at) VALUES (?, ?, ?, ?, ?)", rows)
    return tokens


def statuses(api: Api, tokens: list[str]) -> list[tuple[int, str]]:
    def one(t):
        r = api.get("/api/auth/me", token=t)
        return r.status_code, (r.json().get("error", {}).get("code", "") if r.status_code != 200 else "")
    with ThreadPoolExecutor(max_workers=8) as pool:
        return list(pool.map(one, tokens))


def make_keys(api: Api, session: str, n: int) -> list[str]:
    with ThreadPoolExecutor(max_workers=4) as pool:
        made = pool.map(lambda i: api.create_key(session, label=f"k{i}", scopes=["write:jes"])["key"], range(n))
        return list(made)


def big_account(server, api: Api) -> tuple[dict, list[str], list[str]]:
    a = api.signup(password=PASSWORD)
    keys = make_keys(api, a["token"], KEYS)
    sessions = plant_sessions(server, a["user"]["id"], SESSIONS - 1)
    # Some Gates warm (they cached the credential), the rest cold.
    assert {s for s, _ in statuses(api, sessions[:60] + keys)} == {200}
    return a, sessions, keys


def live(server, table: str, user_id: str) -> int:
    return d1_query(server, f"SELECT COUNT(*) AS n FROM {table} WHERE user_id = '{user_id}' AND revoked_at IS NULL")[0]["n"]


def test_a_password_change_ends_hundreds_of_other_sessions_within_the_subrequest_limit(metered):
    api = Api(metered.url)
    a, sessions, keys = big_account(metered, api)
    before = meter(metered)
    r = api.patch("/api/account", token=a["token"], json={"password": "a brand new passphrase", "currentPassword": PASSWORD})
    assert r.status_code == 200, r.text
    spent = cost(before, meter(metered))
    print("password change, 299 other sessions:", spent)
    # The API forwards the request: one service call.
    assert spent["api"]["subrequests"] == 1 and spent["api"]["service"] == 1, spent
    # The account Worker: the guard's Gate call, the password throttle (2),
    # its hash, ONE batch, ONE fan-out call, the intent row's delete, the
    # answer's read (and the session's last-use touch, once a minute).
    account = spent["account"]
    assert account["durableObjects"] == 4, spent
    assert 4 <= account["d1"] <= 5, spent
    assert account["widest"] == account["subrequests"] <= 9, spent
    # The engine: the fan-out objects told all 299 Gates, none making over 40
    # calls, and the Gates read nothing from D1 to be revoked.
    engine = spent["engine"]
    assert engine["durableObjects"] == fan_out_calls(SESSIONS - 1), spent
    assert engine["widestObject"] == LEAF, spent
    assert engine["d1"] == 0, spent
    assert engine["objects"] >= SESSIONS - 1 + 1, spent

    assert set(statuses(api, sessions)) == {(401, "invalid_session")}
    # The session that changed it, and every key, still work.
    assert api.get("/api/auth/me", token=a["token"]).status_code == 200
    assert {s for s, _ in statuses(api, keys)} == {200}
    assert live(metered, "sessions", a["user"]["id"]) == 1
    assert d1_query(metered, "SELECT COUNT(*) AS n FROM revocations")[0]["n"] == 0, "the intent row is closed"
    assert_error(api.post("/api/auth/login", json={"login": a["user"]["username"], "password": PASSWORD}),
                 401, "invalid_credentials")


def test_deleting_an_account_with_hundreds_of_credentials_ends_every_one(metered):
    api = Api(metered.url)
    a, sessions, keys = big_account(metered, api)
    grant = oauth.tokens(api, a["token"], scopes=["write:jes"])
    assert api.get("/api/auth/me", token=grant["access_token"]).status_code == 200
    before = meter(metered)
    r = api.delete("/api/account", token=a["token"])
    assert r.status_code == 204, r.text
    spent = cost(before, meter(metered))
    print("account deletion, 300 sessions, 50 keys, 1 grant:", spent)
    assert spent["api"]["subrequests"] == 1, spent
    # Guard, ONE batch, ONE fan-out, the intent row's delete (and the touch).
    assert spent["account"]["subrequests"] == spent["account"]["widest"] <= 5, spent
    assert spent["account"]["durableObjects"] == 2, spent
    told = SESSIONS + KEYS + 1
    assert spent["engine"]["durableObjects"] == fan_out_calls(told), spent
    assert spent["engine"]["widestObject"] == LEAF, spent
    assert all(w["widest"] <= 50 for w in spent.values()), spent

    assert set(statuses(api, keys)) == {(401, "api_key_revoked")}
    assert set(statuses(api, sessions + [a["token"]])) == {(401, "invalid_session")}
    assert_error(api.get("/api/auth/me", token=grant["access_token"]), 401, "invalid_token")
    r = oauth.refresh(api, grant["client"]["client_id"], grant["refresh_token"])
    assert r.status_code == 400 and r.json()["error"] == "invalid_grant", r.text
    uid = a["user"]["id"]
    for table in ("sessions", "api_keys", "oauth_grants"):
        assert live(metered, table, uid) == 0, table
    for table in ("oauth_access_tokens", "oauth_refresh_tokens"):
        left = d1_query(metered, f"SELECT COUNT(*) AS n FROM {table} t JOIN oauth_grants g ON g.id = t.grant_id "
                                 f"WHERE g.user_id = '{uid}' AND t.revoked_at IS NULL")[0]["n"]
        assert left == 0, table


def test_a_display_name_change_reaches_every_cached_profile_in_one_call(metered):
    api = Api(metered.url)
    a = api.signup(password=PASSWORD)
    keys = make_keys(api, a["token"], 45)
    assert {s for s, _ in statuses(api, keys)} == {200}
    before = meter(metered)
    assert api.patch("/api/account", token=a["token"], json={"displayName": "Renamed"}).status_code == 200
    spent = cost(before, meter(metered))
    # The guard and ONE fan-out, whatever the number of keys.
    assert spent["account"]["durableObjects"] == 2, spent
    # 46 Gates (45 keys and the session) reload, each reading its record once.
    assert spent["engine"]["durableObjects"] == fan_out_calls(46), spent
    assert spent["engine"]["d1"] == 46, spent
    names = {api.get("/api/auth/me", token=k).json()["displayName"] for k in keys + [a["token"]]}
    assert names == {"Renamed"}


def test_a_change_d1_refuses_revokes_nothing(metered):
    """The new password and the revocations are one batch: when D1 refuses it
    (the username in the same change is taken), no session ends, and no Gate
    was told anything, since the Gates are told only after the commit."""
    api = Api(metered.url)
    taken = api.signup()
    a = api.signup(password=PASSWORD)
    others = plant_sessions(metered, a["user"]["id"], 5)
    assert {s for s, _ in statuses(api, others)} == {200}
    before = meter(metered)
    r = api.patch("/api/account", token=a["token"], json={
        "password": "a brand new passphrase", "currentPassword": PASSWORD, "username": taken["user"]["username"]})
    assert_error(r, 409, "conflict")
    spent = cost(before, meter(metered))
    assert spent["account"]["durableObjects"] == 3, "the guard and the throttle only: no fan-out"
    assert spent["engine"]["objects"] == 3, spent
    assert {s for s, _ in statuses(api, others)} == {200}
    assert live(metered, "sessions", a["user"]["id"]) == 6
    assert d1_query(metered, f"SELECT COUNT(*) AS n FROM revocations WHERE user_id = '{a['user']['id']}'")[0]["n"] == 0
    r = api.post("/api/auth/login", json={"login": a["user"]["username"], "password": PASSWORD})
    assert r.status_code == 200, "the old password still works: nothing changed"


def test_gates_not_told_after_a_commit_are_told_by_the_cron(metered):
    """A fan-out that failed after D1 committed leaves its intent row: here
    the commit is planted (sessions revoked in D1 with a stamp, the row
    30 s old) while the Gates still hold the sessions live, as they would
    after a failed fan-out. The cron tells them; the row is closed."""
    api = Api(metered.url)
    a = api.signup(password=PASSWORD)
    uid = a["user"]["id"]
    others = plant_sessions(metered, uid, 45)
    keys = make_keys(api, a["token"], 3)
    assert {s for s, _ in statuses(api, others + keys)} == {200}
    stamp = int(time.time() * 1000) - 60_000
    d1_query(metered, f"UPDATE sessions SET revoked_at = {stamp} WHERE user_id = '{uid}' AND id IN "
                      f"(SELECT id FROM sessions WHERE user_id = '{uid}' AND token_hash <> "
                      f"'{hashlib.sha256(a['token'].encode()).hexdigest()}')")
    d1_query(metered, f"UPDATE users SET suspended_at = {stamp} WHERE id = '{uid}'")
    d1_query(metered, f"INSERT INTO revocations (id, user_id, stamp, reload, created_at) "
                      f"VALUES ('rvk_test_{uuid.uuid4().hex}', '{uid}', {stamp}, 'keys', {stamp})")
    # Not told yet: the cached Gates still let them in.
    assert {s for s, _ in statuses(api, others + keys)} == {200}
    before = meter(metered)
    r = requests.get(metered.url + "/__scheduled", timeout=120)
    assert r.status_code == 200, r.text
    spent = cost(before, meter(metered))
    assert set(statuses(api, others)) == {(401, "invalid_session")}
    assert set(statuses(api, keys)) == {(403, "account_suspended")}
    assert d1_query(metered, f"SELECT COUNT(*) AS n FROM revocations WHERE user_id = '{uid}'")[0]["n"] == 0
    # The cron's own call to the fan-out's root, then the fan-out's calls;
    # the cron run stays within the bound, re-drive and other sweeps together.
    assert spent["engine"]["durableObjects"] == 1 + fan_out_calls(45 + 3), spent
    assert spent["engine"]["widestObject"] == LEAF, spent
    assert spent["engine"]["widest"] <= 50, spent


def test_the_meter_is_off_without_its_variable(api: Api):
    assert_error(api.get("/__meter"), 404, "not_found")
