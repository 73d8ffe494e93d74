"""The contract's bounds against abuse over HTTP: each hostile request gets a
clear 4xx and leaves nothing lost or half-written. Signups per address,
failed logins per account at an address, invented credentials per address,
webhook endpoints per account, and bulk revocation for an account with
hundreds of sessions and keys."""
from __future__ import annotations

import hashlib
import time
import uuid

from conftest import Api, assert_error, d1_query, metered
from keys import forge


def ip(n: str) -> dict:
    return {"CF-Connecting-IP": n}


def signup_body() -> dict:
    name = "b" + uuid.uuid4().hex[:12]
    return {"username": name, "email": f"{name}@example.com", "password": "correct horse battery"}


def test_signups_are_throttled_per_address_with_retry_after(make_server):
    s = make_server({"SIGNUP_MAX_PER_ADDRESS": "2"})
    api = Api(s.url)
    here = ip("198.51.100.10")
    for _ in range(2):
        assert api.post("/api/auth/signup", json=signup_body(), headers=here).status_code == 201
    refused = signup_body()
    r = api.post("/api/auth/signup", json=refused, headers=here)
    err = assert_error(r, 429, "rate_limited")
    assert int(r.headers["retry-after"]) >= 1 and err["retryAfter"] == int(r.headers["retry-after"])
    assert d1_query(s, f"SELECT COUNT(*) AS n FROM users WHERE username = '{refused['username']}'")[0]["n"] == 0
    # Another address signs up as usual.
    assert api.post("/api/auth/signup", json=refused, headers=ip("198.51.100.11")).status_code == 201


def test_a_strangers_failed_logins_never_lock_the_owner_out_from_another_address(make_server):
    s = make_server({"LOGIN_MAX_FAILURES": "3"})
    api = Api(s.url)
    a = api.signup()
    login = {"login": a["user"]["username"], "password": "wrong password"}
    stranger = ip("203.0.113.66")
    for _ in range(3):
        assert_error(api.post("/api/auth/login", json=login, headers=stranger), 401, "invalid_credentials")
    # The stranger's address is done with this account, even with the right password…
    r = api.post("/api/auth/login", json={**login, "password": a["password"]}, headers=stranger)
    assert_error(r, 429, "rate_limited")
    assert int(r.headers["retry-after"]) >= 1
    # …and the owner, elsewhere, logs in.
    r = api.post("/api/auth/login", json={**login, "password": a["password"]}, headers=ip("198.51.100.200"))
    assert r.status_code == 200, r.text


def test_invented_credentials_are_throttled_per_address_before_reaching_a_gate(make_server):
    s = make_server({"CREDENTIAL_MISS_MAX": "3"})
    api = Api(s.url)
    a = api.signup()
    k = api.create_key(a["token"], scopes=["read:comment"])
    attacker = ip("192.0.2.44")
    for _ in range(3):
        assert_error(api.get("/api/auth/me", token=forge(), headers=attacker), 401, "invalid_api_key")
    r = api.get("/api/auth/me", token=forge(), headers=attacker)
    err = assert_error(r, 429, "rate_limited")
    assert int(r.headers["retry-after"]) >= 1 and err["retryAfter"] == int(r.headers["retry-after"])
    # From then on the address is answered before any Gate, whatever it presents.
    assert_error(api.get("/api/auth/me", token=forge("jes_sess_"), headers=attacker), 429, "rate_limited")
    assert_error(api.get("/api/auth/me", token=k["key"], headers=attacker), 429, "rate_limited")
    # Other addresses, and the key itself elsewhere, are unaffected.
    assert api.get("/api/auth/me", token=k["key"], headers=ip("198.51.100.9")).status_code == 200
    assert_error(api.get("/api/auth/me", token=forge(), headers=ip("198.51.100.9")), 401, "invalid_api_key")


def test_webhook_endpoints_are_25_per_account_and_each_url_once(server, api: Api):
    a = api.signup()
    keys = [api.create_key(a["token"], scopes=["webhooks:manage", "write:jes"], label=f"k{i}") for i in range(3)]
    made = 0
    for i in range(25):
        k = keys[i // 10]
        r = api.post(f"/api/auth/api-keys/{k['id']}/webhooks", token=a["token"],
                     json={"url": f"https://example.com/hook/{i}", "events": ["post.created"]})
        assert r.status_code == 201, r.text
        made += 1
    r = api.post(f"/api/auth/api-keys/{keys[2]['id']}/webhooks", token=a["token"],
                 json={"url": "https://example.com/hook/26", "events": ["post.created"]})
    assert "25 endpoints per account" in assert_error(r, 409, "conflict")["message"]
    rows = d1_query(server, f"SELECT COUNT(*) AS n FROM webhook_endpoints WHERE user_id = '{a['user']['id']}'")
    assert rows[0]["n"] == 25
    # The same URL twice in one account, even on another key, is 409 too.
    b = api.signup()
    bk = [api.create_key(b["token"], scopes=["webhooks:manage", "write:jes"], label=f"k{i}") for i in range(2)]
    hook = {"url": "https://example.com/same", "events": ["post.created"]}
    assert api.post(f"/api/auth/api-keys/{bk[0]['id']}/webhooks", token=b["token"], json=hook).status_code == 201
    r = api.post(f"/api/auth/api-keys/{bk[1]['id']}/webhooks", token=b["token"], json=hook)
    assert "already has an endpoint with this URL" in assert_error(r, 409, "conflict")["message"]
    rows = d1_query(server, f"SELECT COUNT(*) AS n FROM webhook_endpoints WHERE user_id = '{b['user']['id']}'")
    assert rows[0]["n"] == 1
    # Another account may use the URL.
    c = api.signup()
    ck = api.create_key(c["token"], scopes=["webhooks:manage", "write:jes"])
    assert api.post(f"/api/auth/api-keys/{ck['id']}/webhooks", token=c["token"], json=hook).status_code == 201


def test_a_password_change_and_a_deletion_revoke_hundreds_of_credentials(make_server):
    s = make_server({"SESSION_RATE_LIMIT_PER_MINUTE": "100000", "RATE_LIMIT_PER_MINUTE": "100000", "METER": "true"})
    api = Api(s.url)
    a = api.signup()
    uid = a["user"]["id"]
    keys = [api.create_key(a["token"], scopes=["read:comment"], label=f"k{i}")["key"] for i in range(50)]
    now = int(time.time() * 1000)
    sessions = [forge("jes_sess_") for _ in range(299)]
    values = ", ".join(
        f"('s{uuid.uuid4().hex}', '{uid}', '{hashlib.sha256(t.encode()).hexdigest()}', {now}, {now + 86_400_000})"
        for t in sessions)
    d1_query(s, f"INSERT INTO sessions (id, user_id, token_hash, created_at, expires_at) VALUES {values}")
    # Some Gates hold their credential in memory, the rest have never been asked.
    for t in sessions[:60] + keys[:25]:
        assert api.get("/api/auth/me", token=t).status_code == 200
    r, cost = metered(s, lambda: api.patch("/api/account", token=a["token"], json={
        "password": "a new long password", "currentPassword": a["password"], "displayName": "Renamed"}))
    assert r.status_code == 200, r.text
    # 299 sessions revoked and 350 credentials' profiles reloaded, in a handful of subrequests.
    assert cost["invocations"] == 1 and cost["subrequests"] <= 12, cost
    assert cost["durableObjects"] <= 5, cost
    for t in sessions:
        assert_error(api.get("/api/auth/me", token=t), 401, "invalid_session")
    live = d1_query(s, f"SELECT COUNT(*) AS n FROM sessions WHERE user_id = '{uid}' AND revoked_at IS NULL")
    assert live[0]["n"] == 1, "only the session that changed the password"
    assert api.get("/api/auth/me", token=a["token"]).status_code == 200
    assert all(api.get("/api/auth/me", token=k).status_code == 200 for k in keys[::7])
    assert api.get("/api/auth/me", token=keys[3]).json()["displayName"] == "Renamed", "the cached profile was reloaded"
    # Deletion ends every key and the last session too.
    r, cost = metered(s, lambda: api.delete("/api/account", token=a["token"]))
    assert r.status_code == 204
    assert cost["subrequests"] <= 6 and cost["durableObjects"] <= 2, cost
    for k in keys:
        assert_error(api.get("/api/auth/me", token=k), 401, "api_key_revoked")
    assert_error(api.get("/api/auth/me", token=a["token"]), 401, "invalid_session")
    rows = d1_query(s, f"SELECT (SELECT COUNT(*) FROM api_keys WHERE user_id = '{uid}' AND revoked_at IS NULL) AS k, "
                       f"(SELECT COUNT(*) FROM sessions WHERE user_id = '{uid}' AND revoked_at IS NULL) AS s")
    assert rows[0] == {"k": 0, "s": 0}
