"""The contract's bounds against abuse on sign-in, over HTTP: each hostile
request gets a clear 429 with Retry-After and leaves nothing written.
Sign-ups per address, failed logins per account at an address (a stranger
never locks the owner out from elsewhere), and invented credentials (valid
checksum, no owner) per address, after which the address is answered before
any Gate."""
from __future__ import annotations

import uuid

from conftest import Api, assert_error, d1_query, wait_clear_of_window_end
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
    wait_clear_of_window_end(3600, 15)  # the burst below in one aligned window
    for _ in range(2):
        assert api.post("/api/auth/signup", json=signup_body(), headers=here).status_code == 201
    refused = signup_body()
    r = api.post("/api/auth/signup", json=refused, headers=here)
    err = assert_error(r, 429, "rate_limited")
    assert int(r.headers["retry-after"]) >= 1 and err["retryAfter"] == int(r.headers["retry-after"])
    assert d1_query(s, f"SELECT COUNT(*) AS n FROM users WHERE username = '{refused['username']}'")[0]["n"] == 0
    # Another address signs up as usual, with the very same body.
    assert api.post("/api/auth/signup", json=refused, headers=ip("198.51.100.11")).status_code == 201


def test_a_strangers_failed_logins_never_lock_the_owner_out_from_another_address(make_server):
    s = make_server({"LOGIN_MAX_FAILURES": "3"})
    api = Api(s.url)
    a = api.signup()
    login = {"login": a["user"]["username"], "password": "wrong password"}
    stranger = ip("203.0.113.66")
    wait_clear_of_window_end(900, 15)  # the burst below in one aligned window
    for _ in range(3):
        assert_error(api.post("/api/auth/login", json=login, headers=stranger), 401, "invalid_credentials")
    # The stranger's address is done with this account, even with the right password...
    r = api.post("/api/auth/login", json={**login, "password": a["password"]}, headers=stranger)
    assert_error(r, 429, "rate_limited")
    assert int(r.headers["retry-after"]) >= 1
    # ...and the owner, elsewhere, logs in.
    r = api.post("/api/auth/login", json={**login, "password": a["password"]}, headers=ip("198.51.100.200"))
    assert r.status_code == 200, r.text


def test_invented_credentials_are_throttled_per_address_and_then_answered_before_any_gate(make_server):
    s = make_server({"CREDENTIAL_MISS_MAX": "3"})
    api = Api(s.url)
    a = api.signup()
    k = api.create_key(a["token"], scopes=["read:comment"])
    wait_clear_of_window_end(600, 15)  # the burst below in one aligned window
    attacker = ip("192.0.2.44")
    for _ in range(3):
        assert_error(api.get("/api/auth/me", token=forge(), headers=attacker), 401, "invalid_api_key")
    r = api.get("/api/auth/me", token=forge(), headers=attacker)
    err = assert_error(r, 429, "rate_limited")
    assert int(r.headers["retry-after"]) >= 1 and err["retryAfter"] == int(r.headers["retry-after"])
    # From then on the address is answered before any Gate, whatever it presents:
    # an invented session, and even a real key.
    assert_error(api.get("/api/auth/me", token=forge("jes_sess_"), headers=attacker), 429, "rate_limited")
    r = api.get("/api/auth/me", token=k["key"], headers=attacker)
    assert_error(r, 429, "rate_limited")
    # The real key's Gate never heard of it: no standing of the key's in the
    # answer (a Gate's 429 carries X-RateLimit-*), and its last use is unset.
    assert "x-ratelimit-remaining" not in r.headers, dict(r.headers)
    used = d1_query(s, f"SELECT last_used_at FROM api_keys WHERE id = '{k['id']}'")
    assert used == [{"last_used_at": None}], used
    # Other addresses, and the key itself elsewhere, are unaffected.
    assert api.get("/api/auth/me", token=k["key"], headers=ip("198.51.100.9")).status_code == 200
    assert_error(api.get("/api/auth/me", token=forge(), headers=ip("198.51.100.9")), 401, "invalid_api_key")


def test_an_ipv6_address_counts_by_its_64(make_server):
    """One line or host is routinely given a whole /64: its 2^64 addresses share
    one allowance (domain::address), for sign-ups as for invented credentials."""
    s = make_server({"SIGNUP_MAX_PER_ADDRESS": "2", "CREDENTIAL_MISS_MAX": "2"})
    api = Api(s.url)
    wait_clear_of_window_end(3600, 15)
    for host in ("2001:db8:5:6::1", "2001:db8:5:6:ffff:ffff:ffff:fffe"):
        assert api.post("/api/auth/signup", json=signup_body(), headers=ip(host)).status_code == 201
    refused = signup_body()
    assert_error(api.post("/api/auth/signup", json=refused, headers=ip("2001:db8:5:6:1234::9")), 429, "rate_limited")
    assert d1_query(s, f"SELECT COUNT(*) AS n FROM users WHERE username = '{refused['username']}'")[0]["n"] == 0
    assert api.post("/api/auth/signup", json=refused, headers=ip("2001:db8:5:7::1")).status_code == 201, "the next /64"

    a = api.signup()
    k = api.create_key(a["token"], scopes=["read:comment"])
    wait_clear_of_window_end(600, 15)
    for host in ("2001:db8:9:9::1", "2001:db8:9:9::2"):
        assert_error(api.get("/api/auth/me", token=forge(), headers=ip(host)), 401, "invalid_api_key")
    assert_error(api.get("/api/auth/me", token=forge(), headers=ip("2001:db8:9:9::3")), 429, "rate_limited")
    # The whole /64 is then answered before any Gate, even with a real key; the next /64 is not.
    assert_error(api.get("/api/auth/me", token=k["key"], headers=ip("2001:db8:9:9:abcd::1")), 429, "rate_limited")
    assert api.get("/api/auth/me", token=k["key"], headers=ip("2001:db8:9:a::1")).status_code == 200
