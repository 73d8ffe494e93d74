"""Sessions listed and revoked, one key read and renamed (and nothing else of
it changed), and the audit log: what each action writes, from where, by whom,
paginated, 90 days, and written in the same batch as its change."""
from __future__ import annotations

import time

import pytest
import requests

from conftest import Api, assert_error, d1_query


def login(api: Api, who: dict, ua: str = "pytest-agent/1", ip: str = "203.0.113.9") -> str:
    r = api.post("/api/auth/login", json={"login": who["user"]["username"], "password": who["password"]},
                 headers={"User-Agent": ua, "CF-Connecting-IP": ip})
    assert r.status_code == 200, r.text
    return r.json()["session"]["token"]


def sessions(api: Api, token: str) -> list[dict]:
    r = api.get("/api/auth/sessions", token=token)
    assert r.status_code == 200, r.text
    return r.json()["items"]


def test_sessions_are_listed_with_the_current_one_marked_and_revoked_at_once(api: Api):
    who = api.signup()
    other = login(api, who, ua="Firefox/140 on a laptop")
    items = sessions(api, who["token"])
    assert len(items) == 2
    current = [s for s in items if s["current"]]
    assert len(current) == 1
    laptop = next(s for s in items if not s["current"])
    assert laptop["userAgent"] == "Firefox/140 on a laptop"
    for field in ("id", "createdAt", "expiresAt", "lastUsedAt"):
        assert field in laptop
    assert api.get("/api/auth/me", token=other).status_code == 200
    r = api.delete(f"/api/auth/sessions/{laptop['id']}", token=who["token"])
    assert r.status_code == 204, r.text
    # Dead on its very next request.
    assert_error(api.get("/api/auth/me", token=other), 401, "invalid_session")
    assert [s["id"] for s in sessions(api, who["token"])] == [current[0]["id"]]
    audit = api.get("/api/account/audit", token=who["token"]).json()["items"]
    revoked = [a for a in audit if a["action"] == "session.revoked"]
    assert revoked and revoked[0]["target"] == {"type": "session", "id": laptop["id"]}
    # Again: already revoked, still 204, no second row.
    assert api.delete(f"/api/auth/sessions/{laptop['id']}", token=who["token"]).status_code == 204
    audit = api.get("/api/account/audit", token=who["token"]).json()["items"]
    assert len([a for a in audit if a["action"] == "session.revoked"]) == 1


def test_last_use_moves_when_a_session_is_used(api: Api):
    who = api.signup()
    fresh = login(api, who)
    fresh_id = next(s["id"] for s in sessions(api, fresh) if s["current"])
    # The listing itself was this session's first use.
    deadline = time.time() + 15
    while time.time() < deadline:
        row = next(s for s in sessions(api, who["token"]) if s["id"] == fresh_id)
        if row["lastUsedAt"]:
            break
        time.sleep(0.3)
    assert row["lastUsedAt"], "lastUsedAt was never set"


def test_another_accounts_session_is_404_and_keys_are_refused(api: Api):
    a, b = api.signup(), api.signup()
    b_id = next(s["id"] for s in sessions(api, b["token"]) if s["current"])
    assert_error(api.delete(f"/api/auth/sessions/{b_id}", token=a["token"]), 404, "not_found")
    assert api.get("/api/auth/me", token=b["token"]).status_code == 200
    key = api.create_key(a["token"])["key"]
    assert_error(api.get("/api/auth/sessions", token=key), 403, "session_only")
    assert_error(api.delete(f"/api/auth/sessions/{b_id}", token=key), 403, "session_only")
    assert_error(api.get("/api/account/audit", token=key), 403, "session_only")


def test_revoking_the_current_session_logs_out(api: Api):
    who = api.signup()
    me = next(s["id"] for s in sessions(api, who["token"]) if s["current"])
    r = api.delete(f"/api/auth/sessions/{me}", token=who["token"])
    assert r.status_code == 204
    assert "Max-Age=0" in r.headers.get("set-cookie", "")
    assert_error(api.get("/api/auth/me", token=who["token"]), 401, "invalid_session")


def test_a_key_is_read_and_renamed_and_its_next_post_carries_the_new_label(api: Api):
    who = api.signup()
    made = api.create_key(who["token"], label="old name", scopes=["write:jes"])
    key, kid = made["key"], made["id"]
    # The key's Gate caches its label: use it once so the cache is warm.
    r = api.post("/api/posts", token=key, json={"content": "before", "visibility": "PUBLIC"})
    assert r.json()["via"]["label"] == "old name"
    got = api.get(f"/api/auth/api-keys/{kid}", token=who["token"])
    assert got.status_code == 200, got.text
    assert got.json()["label"] == "old name" and got.json()["description"] == ""
    assert got.json()["maskedKey"] == made["maskedKey"] and got.json()["status"] == "active"
    r = api.patch(f"/api/auth/api-keys/{kid}", token=who["token"], json={"label": "new name", "description": "posts the CI digest"})
    assert r.status_code == 200, r.text
    assert (r.json()["label"], r.json()["description"]) == ("new name", "posts the CI digest")
    assert r.json()["scopes"] == ["write:jes"]
    post = api.post("/api/posts", token=key, json={"content": "after", "visibility": "PUBLIC"})
    assert post.json()["via"]["label"] == "new name"
    audit = api.get("/api/account/audit", token=who["token"]).json()["items"]
    renamed = [a for a in audit if a["action"] == "key.renamed"]
    assert renamed and renamed[0]["target"] == {"type": "key", "id": kid}
    assert renamed[0]["actor"] == {"type": "user", "id": who["user"]["id"]}


@pytest.mark.parametrize("field,value", [
    ("scopes", ["read:comment"]), ("preset", "read-only"), ("expiresAt", "2030-01-01T00:00:00Z"),
    ("expiresIn", "30d"), ("ipAllowlist", ["10.0.0.0/8"]), ("canary", True),
])
def test_fixed_fields_of_a_key_are_400_naming_the_field(api: Api, field, value):
    who = api.signup()
    kid = api.create_key(who["token"])["id"]
    err = assert_error(api.patch(f"/api/auth/api-keys/{kid}", token=who["token"], json={"label": "x", field: value}),
                       400, "invalid_request")
    assert err["message"].startswith(f"{field}:"), err
    assert api.get(f"/api/auth/api-keys/{kid}", token=who["token"]).json()["label"] == "test key", "nothing changed"


def test_key_patch_refusals(api: Api):
    a, b = api.signup(), api.signup()
    kid = api.create_key(a["token"])["id"]
    assert assert_error(api.patch(f"/api/auth/api-keys/{kid}", token=a["token"], json={"colour": "red"}),
                        400, "invalid_request")["message"].startswith("colour:")
    assert_error(api.patch(f"/api/auth/api-keys/{kid}", token=a["token"], json={}), 400, "invalid_request")
    assert_error(api.patch(f"/api/auth/api-keys/{kid}", token=a["token"], json={"label": "x" * 65}), 400, "invalid_request")
    assert_error(api.patch(f"/api/auth/api-keys/{kid}", token=b["token"], json={"label": "mine now"}), 404, "not_found")
    assert_error(api.get(f"/api/auth/api-keys/{kid}", token=b["token"]), 404, "not_found")
    key = api.create_key(a["token"])["key"]
    assert_error(api.patch(f"/api/auth/api-keys/{kid}", token=key, json={"label": "y"}), 403, "session_only")
def test_audit_rows_name_action_time_address_agent_actor_and_target(api: Api):
    who = api.signup()
    ua, ip = "audit-test/2.0", "198.51.100.23"
    h = {"User-Agent": ua, "CF-Connecting-IP": ip}
    bad = api.post("/api/auth/login", json={"login": who["user"]["username"], "password": "not the password"}, headers=h)
    assert bad.status_code == 401
    tok = login(api, who, ua=ua, ip=ip)
    made = api.post("/api/auth/api-keys", token=tok, json={"label": "audited", "scopes": ["write:jes"]}, headers=h).json()
    assert api.delete(f"/api/auth/api-keys/{made['id']}", token=tok, headers=h).status_code == 204
    r = api.patch("/api/account", token=tok, headers=h,
                  json={"email": f"new-{who['user']['username']}@example.com", "currentPassword": who["password"]})
    assert r.status_code == 200, r.text
    r = api.patch("/api/account", token=tok, headers=h, json={"password": "another long password", "currentPassword": who["password"]})
    assert r.status_code == 200, r.text
    items = api.get("/api/account/audit?limit=100", token=tok).json()["items"]
    by_action = {}
    for a in items:
        by_action.setdefault(a["action"], a)
    for action in ("auth.login_failed", "auth.login", "key.created", "key.revoked", "account.email_changed", "account.password_changed"):
        row = by_action.get(action)
        assert row, f"{action} missing from {sorted(by_action)}"
        assert (row["ip"], row["userAgent"]) == (ip, ua), row
        assert row["actor"] == {"type": "user", "id": who["user"]["id"]}
        assert row["id"].startswith("aud_") and row["at"].endswith("Z")
    assert by_action["key.created"]["target"] == {"type": "key", "id": made["id"]}
    assert by_action["key.revoked"]["data"]["reason"] == "owner"
    assert by_action["auth.login"]["data"]["method"] == "password"
    ids = [a["id"] for a in items]
    assert ids == sorted(ids, reverse=True), "newest first"


def test_the_audit_log_pages_and_keeps_ninety_days(server, api: Api):
    who = api.signup()
    for _ in range(3):
        login(api, who)
    uid = who["user"]["id"]
    old = int((time.time() - 91 * 86400) * 1000)
    d1_query(server, "INSERT INTO audit_log (id, user_id, action, actor_type, actor_id, data, at) "
                     f"VALUES ('aud_00000000000000000000000000', '{uid}', 'auth.login', 'user', '{uid}', '{{}}', {old})")
    first = api.get("/api/account/audit?limit=2", token=who["token"]).json()
    assert len(first["items"]) == 2 and first["nextCursor"]
    rest = api.get(f"/api/account/audit?limit=100&cursor={first['nextCursor']}", token=who["token"]).json()
    seen = [a["id"] for a in first["items"] + rest["items"]]
    assert len(seen) == len(set(seen)) == 3, "three logins, and the 91-day-old row is not shown"
    assert requests.get(server.url + "/__scheduled?cron=*+*+*+*+*", timeout=30).status_code == 200
    deadline = time.time() + 20
    while time.time() < deadline and d1_query(server, "SELECT 1 FROM audit_log WHERE id = 'aud_00000000000000000000000000'"):
        time.sleep(0.5)
    assert not d1_query(server, "SELECT 1 FROM audit_log WHERE id = 'aud_00000000000000000000000000'"), "swept by the cron"


def test_a_refused_change_writes_no_audit_row(server, api: Api):
    who = api.signup()
    uid = who["user"]["id"]
    for i in range(50):
        api.create_key(who["token"], label=f"k{i}")
    assert_error(api.post("/api/auth/api-keys", token=who["token"], json={"label": "one too many", "scopes": ["write:jes"]}),
                 409, "conflict")
    rows = d1_query(server, f"SELECT count(*) AS n FROM audit_log WHERE user_id = '{uid}' AND action = 'key.created'")
    assert rows[0]["n"] == 50


def test_webhook_endpoints_added_and_removed_are_in_the_audit_log(api: Api):
    who = api.signup()
    kid = api.create_key(who["token"], scopes=["write:jes", "webhooks:manage"])["id"]
    r = api.post(f"/api/auth/api-keys/{kid}/webhooks", token=who["token"],
                 json={"url": "https://hooks.example.com/jestha", "events": ["post.created"]})
    assert r.status_code == 201, r.text
    wid = r.json()["id"]
    assert api.delete(f"/api/auth/api-keys/{kid}/webhooks/{wid}", token=who["token"]).status_code == 204
    items = api.get("/api/account/audit", token=who["token"]).json()["items"]
    for action in ("webhook.created", "webhook.deleted"):
        row = next(a for a in items if a["action"] == action)
        assert row["target"] == {"type": "webhook", "id": wid}, row
        assert row["data"]["keyId"] == kid
    # A second delete finds nothing: 404, and no second row.
    assert api.delete(f"/api/auth/api-keys/{kid}/webhooks/{wid}", token=who["token"]).status_code == 404
    items = api.get("/api/account/audit", token=who["token"]).json()["items"]
    assert [a["action"] for a in items].count("webhook.deleted") == 1
