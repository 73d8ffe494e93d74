"""API keys: lifecycle and the auth layer, over HTTP."""
import itertools
import re
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from conftest import Api, assert_error
from keys import checksum, forge

SCOPES = ["write:jes", "write:jesclip", "write:comment", "read:comment", "read:engagement", "webhooks:manage"]
FAKE_ID = "01HZZZZZZZZZZZZZZZZZZZZZZZ"


def test_create_returns_the_plaintext_once_and_list_shows_it_masked(api: Api):
    a = api.signup()
    r = api.post("/api/auth/api-keys", token=a["token"],
                 json={"label": "Scheduler", "scopes": ["write:jes", "write:jesclip"], "expiresIn": "90d",
                       "ipAllowlist": ["203.0.113.0/24", "2001:db8::/32"]})
    assert r.status_code == 201, r.text
    assert r.headers["cache-control"] == "no-store"
    k = r.json()
    assert re.fullmatch(r"jes_live_[0-9A-Za-z]{36}", k["key"])
    assert k["maskedKey"] == k["key"][:13] + "****"
    assert k["scopes"] == ["write:jes", "write:jesclip"]
    assert k["ipAllowlist"] == ["203.0.113.0/24", "2001:db8::/32"]
    exp = datetime.fromisoformat(k["expiresAt"].replace("Z", "+00:00"))
    assert abs(exp - (datetime.now(timezone.utc) + timedelta(days=90))) < timedelta(minutes=5)
    listed = api.get("/api/auth/api-keys", token=a["token"])
    assert listed.status_code == 200
    assert k["key"] not in listed.text
    item = listed.json()["items"][0]
    assert item["id"] == k["id"] and item["maskedKey"] == k["maskedKey"]
    assert item["status"] == "active" and item["revokedAt"] is None and item["lastUsedAt"] is None
    assert "key" not in item


def test_presets_expand_to_their_scopes(api: Api):
    a = api.signup()
    expected = {
        "scheduler": ["write:jes", "write:jesclip"],
        "moderation": ["read:comment", "read:engagement", "webhooks:manage"],
        "cross-poster": ["write:jes", "write:comment"],
        "read-only": ["read:comment", "read:engagement"],
    }
    for preset, scopes in expected.items():
        assert api.create_key(a["token"], preset=preset)["scopes"] == scopes


def test_scope_catalog_lists_descriptions_and_presets_for_sessions_only(api: Api):
    a = api.signup()
    r = api.get("/api/auth/scopes", token=a["token"])
    assert r.status_code == 200
    body = r.json()
    assert [s["scope"] for s in body["scopes"]] == SCOPES
    assert all(s["description"] for s in body["scopes"])
    assert "no separate media scope" in body["scopes"][1]["description"]
    assert {p["name"] for p in body["presets"]} == {"scheduler", "moderation", "cross-poster", "read-only"}
    key = api.create_key(a["token"], scopes=SCOPES)["key"]
    assert_error(api.get("/api/auth/scopes", token=key), 403, "session_only")


@pytest.mark.parametrize("body,field", [
    ({"label": "x"}, "scopes"),
    ({"label": "x", "scopes": []}, "scopes"),
    ({"label": "x", "scopes": ["write:jes", "admin:all"]}, "admin:all"),
    ({"label": "x", "preset": "root"}, "preset"),
    ({"label": "", "scopes": ["write:jes"]}, "label"),
    ({"label": "x" * 65, "scopes": ["write:jes"]}, "label"),
    ({"label": "evil\r\nX-Injected: 1", "scopes": ["write:jes"]}, "label"),
    ({"label": "x", "scopes": ["write:jes"], "expiresIn": "2w"}, "expiresIn"),
    ({"label": "x", "scopes": ["write:jes"], "expiresAt": "2001-01-01T00:00:00Z"}, "expiresAt"),
    ({"label": "x", "scopes": ["write:jes"], "ipAllowlist": ["10.0.0.0/8", "300.1.1.1/8"]}, "ipAllowlist[1]"),
    ({"label": "x", "scopes": ["write:jes"], "ipAllowlist": ["2001:db8::/129"]}, "ipAllowlist[0]"),
    ({"label": "x", "scopes": ["write:jes"], "ipAllowlist": ["10.0.0.1"] * 21}, "ipAllowlist"),
])
def test_invalid_key_requests_are_400s_naming_the_field(api: Api, body, field):
    a = api.signup()
    err = assert_error(api.post("/api/auth/api-keys", token=a["token"], json=body), 400, "invalid_request")
    assert field in err["message"]
    assert api.get("/api/auth/api-keys", token=a["token"]).json()["items"] == [], "nothing was written"


def test_active_keys_per_account_are_bounded(api: Api):
    a = api.signup()
    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(lambda i: api.post("/api/auth/api-keys", token=a["token"],
                                                   json={"label": f"k{i}", "scopes": ["write:jes"]}), range(52)))
    assert sorted(r.status_code for r in results) == [201] * 50 + [409] * 2
    assert_error([r for r in results if r.status_code == 409][0], 409, "conflict")
    first = next(r.json() for r in results if r.status_code == 201)
    assert api.delete(f"/api/auth/api-keys/{first['id']}", token=a["token"]).status_code == 204
    assert api.post("/api/auth/api-keys", token=a["token"], json={"label": "again", "scopes": ["write:jes"]}).status_code == 201


def test_me_answers_any_valid_key_with_no_scope_needed(api: Api):
    a = api.signup()
    for scopes in (["read:comment"], ["webhooks:manage"], SCOPES):
        key = api.create_key(a["token"], scopes=scopes)["key"]
        r = api.get("/api/auth/me", token=key)
        assert r.status_code == 200
        assert r.json()["id"] == a["user"]["id"]


def test_seed_001_section_6_curl_works_verbatim(server, api: Api):
    a = api.signup()
    key = api.create_key(a["token"], preset="scheduler")["key"]
    out = subprocess.run(["curl", "-sS", f"{server.url}/api/auth/me", "-H", f"Authorization: Bearer {key}"],
                         capture_output=True, text=True, check=True).stdout
    assert f'"id":"{a["user"]["id"]}"' in out
    assert f'"username":"{a["user"]["username"]}"' in out


def test_malformed_forged_and_unknown_keys_are_invalid_api_key(api: Api):
    a = api.signup()
    real = api.create_key(a["token"])["key"]
    typo = real[:15] + ("A" if real[15] != "A" else "B") + real[16:]
    cases = {
        "too short": "jes_live_abc",
        "bad checksum": typo,
        "wrong prefix": "jes_test_" + real[9:],
        "unknown but well-formed": forge(),
        "extra characters": real + "x",
    }
    for name, token in cases.items():
        err = assert_error(api.get("/api/auth/me", token=token), 401, "invalid_api_key")
        assert "x-ratelimit-limit" not in {k.lower() for k in api.get("/api/auth/me", token=token).headers}, name
    assert api.get("/api/auth/me", token=real).status_code == 200


def test_revocation_is_immediate_and_permanent(api: Api):
    a = api.signup()
    k = api.create_key(a["token"], scopes=["write:jes"])
    other = api.create_key(a["token"], scopes=["write:jes"], label="rotation")
    assert api.get("/api/auth/me", token=k["key"]).status_code == 200
    assert api.delete(f"/api/auth/api-keys/{k['id']}", token=a["token"]).status_code == 204
    assert_error(api.get("/api/auth/me", token=k["key"]), 401, "api_key_revoked")
    # Revoking again is harmless; the other live key is untouched (rotation by overlap).
    assert api.delete(f"/api/auth/api-keys/{k['id']}", token=a["token"]).status_code == 204
    assert api.get("/api/auth/me", token=other["key"]).status_code == 200
    items = {i["id"]: i for i in api.get("/api/auth/api-keys", token=a["token"]).json()["items"]}
    assert items[k["id"]]["status"] == "revoked" and items[k["id"]]["revokedAt"]
    assert items[other["id"]]["status"] == "active"


def test_a_key_revoked_while_requests_are_in_flight_never_passes_afterwards(api: Api):
    a = api.signup()
    k = api.create_key(a["token"], scopes=["write:jes"])
    with ThreadPoolExecutor(8) as pool:
        futures = [pool.submit(api.get, "/api/auth/me", token=k["key"]) for _ in range(20)]
        assert api.delete(f"/api/auth/api-keys/{k['id']}", token=a["token"]).status_code == 204
        after = [pool.submit(api.get, "/api/auth/me", token=k["key"]) for _ in range(20)]
        [f.result() for f in futures]
        assert {f.result().status_code for f in after} == {401}


def test_expired_key_is_refused_after_its_custom_expiry(api: Api):
    a = api.signup()
    at = (datetime.now(timezone.utc) + timedelta(seconds=12)).isoformat().replace("+00:00", "Z")
    k = api.create_key(a["token"], expiresAt=at)
    assert api.get("/api/auth/me", token=k["key"]).status_code == 200
    expires = datetime.fromisoformat(k["expiresAt"].replace("Z", "+00:00")).timestamp()
    time.sleep(max(0.0, expires + 1 - time.time()))
    assert_error(api.get("/api/auth/me", token=k["key"]), 401, "api_key_expired")
    item = next(i for i in api.get("/api/auth/api-keys", token=a["token"]).json()["items"] if i["id"] == k["id"])
    assert item["status"] == "expired"


def test_ip_allowlist_v4_and_v6(api: Api):
    a = api.signup()
    k = api.create_key(a["token"], ipAllowlist=["203.0.113.0/24", "2001:db8::/32"])["key"]
    ok = ["203.0.113.7", "2001:db8:abcd::1", "::ffff:203.0.113.9"]
    refused = ["198.51.100.7", "2001:db9::1", "203.0.114.1"]
    for ip in ok:
        assert api.get("/api/auth/me", token=k, headers={"CF-Connecting-IP": ip}).status_code == 200, ip
    for ip in refused:
        assert_error(api.get("/api/auth/me", token=k, headers={"CF-Connecting-IP": ip}), 403, "ip_not_allowed")
    # Without a client address the allowlist cannot be satisfied.
    assert_error(api.get("/api/auth/me", token=k, headers={"CF-Connecting-IP": "not-an-ip"}), 403, "ip_not_allowed")


def test_checks_run_in_the_documented_order(api: Api):
    a = api.signup()
    k = api.create_key(a["token"], scopes=["read:comment"], ipAllowlist=["203.0.113.0/24"])
    outside = {"CF-Connecting-IP": "198.51.100.1"}
    inside = {"CF-Connecting-IP": "203.0.113.1"}
    # IP before session-only before scope.
    assert_error(api.get("/api/auth/scopes", token=k["key"], headers=outside), 403, "ip_not_allowed")
    assert_error(api.get("/api/auth/scopes", token=k["key"], headers=inside), 403, "session_only")
    api.delete(f"/api/auth/api-keys/{k['id']}", token=a["token"])
    # Revoked before IP.
    assert_error(api.get("/api/auth/me", token=k["key"], headers=outside), 401, "api_key_revoked")


def test_last_used_at_is_recorded_without_blocking(api: Api):
    a = api.signup()
    k = api.create_key(a["token"])
    assert api.get("/api/auth/me", token=k["key"]).status_code == 200
    deadline = time.time() + 10
    while time.time() < deadline:
        item = next(i for i in api.get("/api/auth/api-keys", token=a["token"]).json()["items"] if i["id"] == k["id"])
        if item["lastUsedAt"]:
            break
        time.sleep(0.2)
    assert item["lastUsedAt"], "lastUsedAt was never set"
    used = datetime.fromisoformat(item["lastUsedAt"].replace("Z", "+00:00"))
    assert abs(datetime.now(timezone.utc) - used) < timedelta(minutes=1)


def test_one_account_cannot_revoke_or_see_another_accounts_keys(api: Api):
    a, b = api.signup(), api.signup()
    kb = api.create_key(b["token"])
    assert_error(api.delete(f"/api/auth/api-keys/{kb['id']}", token=a["token"]), 404, "not_found")
    assert api.get("/api/auth/me", token=kb["key"]).status_code == 200
    assert api.get("/api/auth/api-keys", token=a["token"]).json()["items"] == []
    # A's key is bound to A: /me says A, whatever B does.
    ka = api.create_key(a["token"], scopes=SCOPES)
    assert api.get("/api/auth/me", token=ka["key"]).json()["id"] == a["user"]["id"]


def test_key_list_is_paginated_newest_first(api: Api):
    a = api.signup()
    ids = [api.create_key(a["token"], label=f"k{i}")["id"] for i in range(5)]
    page1 = api.get("/api/auth/api-keys?limit=2", token=a["token"]).json()
    page2 = api.get(f"/api/auth/api-keys?limit=2&cursor={page1['nextCursor']}", token=a["token"]).json()
    page3 = api.get(f"/api/auth/api-keys?limit=2&cursor={page2['nextCursor']}", token=a["token"]).json()
    got = [i["id"] for p in (page1, page2, page3) for i in p["items"]]
    assert got == list(reversed(ids))
    assert page3["nextCursor"] is None
    assert_error(api.get("/api/auth/api-keys?cursor=garbage!", token=a["token"]), 400, "invalid_request")
    assert_error(api.get("/api/auth/api-keys?limit=101", token=a["token"]), 400, "invalid_request")


def test_no_plaintext_key_or_session_reaches_the_database_files(make_server):
    s = make_server()
    api = Api(s.url)
    a = api.signup()
    keys = [api.create_key(a["token"], scopes=SCOPES)["key"] for _ in range(3)]
    for k in keys:
        api.get("/api/auth/me", token=k)
    files = [p for p in Path(s.state).rglob("*") if p.is_file() and (p.suffix in (".sqlite", ".sqlite-wal", ".sqlite-shm") or "sqlite" in p.name)]
    assert files, "expected local D1 / Durable Object sqlite files under the state dir"
    blob = b"".join(p.read_bytes() for p in files)
    import hashlib
    assert hashlib.sha256(keys[0].encode()).hexdigest().encode() in blob, "the hash is stored (sanity check)"
    for secret in keys + [a["token"]]:
        assert secret.encode() not in blob
        assert secret[9:].encode() not in blob


# ---- The scope matrix: every route in the table, every scope set -------------------

def _path(p: str) -> str:
    return re.sub(r":[A-Za-z]+", FAKE_ID, p)


def _call(api: Api, route: dict, token: str):
    method = route["method"]
    kw = {"json": {}} if method in ("POST", "PATCH", "PUT") else {}
    return api.call(method, _path(route["path"]), token=token, **kw)


def test_scope_matrix_every_route_every_scope_set(make_server):
    s = make_server({"RATE_LIMIT_PER_MINUTE": "1000000", "DAILY_QUOTA": "1000000",
                     "SESSION_RATE_LIMIT_PER_MINUTE": "1000000"})
    api = Api(s.url)
    routes = api.get("/api/routes").json()["items"]
    guarded = [r for r in routes if r["access"] != "public"]
    assert any(r["access"] == "session_only" for r in guarded)
    owners = [api.signup(), api.signup()]
    subsets = [list(c) for n in range(1, len(SCOPES) + 1) for c in itertools.combinations(SCOPES, n)]
    keys = [(set(sc), api.create_key(owners[i // 40]["token"], scopes=sc, label=f"m{i}")["key"])
            for i, sc in enumerate(subsets)]

    def check(pair):
        held, key = pair
        failures = []
        for route in guarded:
            r = _call(api, route, key)
            code = r.json().get("error", {}).get("code") if r.headers.get("content-type", "").startswith("application/json") and r.status_code >= 400 else None
            # Operators' routes are session-only too (and then only for operators).
            if route["access"] in ("session_only", "operator"):
                if (r.status_code, code) != (403, "session_only"):
                    failures.append((route, sorted(held), r.status_code, code))
            elif route["access"] == "scopes":
                missing = [x for x in SCOPES if x in route["scopes"] and x not in held]
                if missing:
                    want = "Token missing scope(s): " + ", ".join(missing)
                    if (r.status_code, code) != (403, "insufficient_scope") or r.json()["error"]["message"] != want:
                        failures.append((route, sorted(held), r.status_code, code))
                elif code in ("insufficient_scope", "session_only") or r.status_code == 401:
                    failures.append((route, sorted(held), r.status_code, code))
            elif route["access"] == "any_scope" and not held.intersection(route["scopes"]):
                want = "Token missing scope(s): " + " or ".join(route["scopes"])
                if (r.status_code, code) != (403, "insufficient_scope") or r.json()["error"]["message"] != want:
                    failures.append((route, sorted(held), r.status_code, code))
            elif code in ("insufficient_scope", "session_only") or r.status_code == 401:
                failures.append((route, sorted(held), r.status_code, code))
        return failures

    with ThreadPoolExecutor(8) as pool:
        failures = [f for fs in pool.map(check, keys) for f in fs]
    assert not failures, failures[:10]
    # Sessions pass every scope check and are never told session_only.
    tok = owners[0]["token"]
    for route in guarded:
        if route["path"] in ("/api/auth/logout", "/api/account") and route["method"] in ("POST", "DELETE"):
            continue
        r = _call(api, route, tok)
        if r.status_code >= 400:
            assert r.json()["error"]["code"] not in ("insufficient_scope", "session_only"), route
