"""An OAuth access token is a third credential beside keys and sessions:
checked by the same guard in the same order, with its granted scopes, the
session-only surface refused, limits and usage counted per grant (one
connected app), revocation effective on the next request, and what it
creates carrying `via: {client_name}`."""
import time

from conftest import Api, assert_error, d1_query, wait_clear_of_window_end
from oauth import client, tokens


def test_a_token_acts_with_its_granted_scopes_only(api: Api):
    a = api.signup()
    t = tokens(api, a["token"], scopes=["write:comment", "read:comment"], client_name="Comment bot")
    tok = t["access_token"]
    me = api.get("/api/auth/me", token=tok)
    assert me.status_code == 200 and me.json()["username"] == a["user"]["username"]
    assert "x-ratelimit-limit" in me.headers
    res = api.post("/api/posts", token=tok, json={"content": "hi", "visibility": "PUBLIC"})
    assert_error(res, 403, "insufficient_scope")
    assert res.headers["WWW-Authenticate"] == 'Bearer error="insufficient_scope", scope="write:jes"'
    post = api.post("/api/posts", token=a["token"], json={"content": "by the owner", "visibility": "PUBLIC"}).json()
    c = api.post(f"/api/posts/{post['id']}/comments", token=tok, json={"content": "from the app"})
    assert c.status_code == 201, c.text
    assert c.json()["via"] == {"label": "Comment bot"}
    assert api.get(f"/api/posts/{post['id']}/comments", token=tok).status_code == 200


def test_a_token_is_never_a_session_nor_a_key(api: Api):
    a = api.signup()
    tok = tokens(api, a["token"])["access_token"]
    for method, path in [("GET", "/api/feed/home"), ("GET", "/api/auth/api-keys"), ("GET", "/api/auth/grants"),
                         ("POST", "/api/auth/logout"), ("GET", "/api/oauth/authorize")]:
        assert_error(api.call(method, path, token=tok), 403, "session_only")
    assert_error(api.get("/api/auth/key", token=tok), 403, "forbidden")
    key = api.create_key(a["token"], scopes=["webhooks:manage"])
    # Webhooks belong to keys: webhooks:manage is never granted, so every webhook route refuses a token.
    assert_error(api.get(f"/api/auth/api-keys/{key['id']}/webhooks", token=tok), 403, "insufficient_scope")


def test_the_token_endpoint_refuses_other_oauth_secrets_as_bearers(api: Api):
    a = api.signup()
    t = tokens(api, a["token"])
    for bogus in (t["refresh_token"], t["access_token"][:-1] + ("A" if t["access_token"][-1] != "A" else "B")):
        res = api.get("/api/auth/me", token=bogus)
        assert_error(res, 401, "invalid_token")
        assert res.headers["WWW-Authenticate"].endswith('error="invalid_token"')


def test_revoking_the_grant_kills_its_tokens_on_the_next_request(api: Api, server):
    a = api.signup()
    t = tokens(api, a["token"], client_name="Revoke me")
    tok = t["access_token"]
    assert api.get("/api/auth/me", token=tok).status_code == 200
    grants = api.get("/api/auth/grants", token=a["token"]).json()["items"]
    assert [g["clientName"] for g in grants] == ["Revoke me"]
    g = grants[0]
    assert g["clientId"] == t["client"]["client_id"] and g["scopes"] and g["createdAt"]
    other = api.signup()
    assert_error(api.delete(f"/api/auth/grants/{g['id']}", token=other["token"]), 404, "not_found")
    assert api.delete(f"/api/auth/grants/{g['id']}", token=a["token"]).status_code == 204
    assert_error(api.get("/api/auth/me", token=tok), 401, "invalid_token")
    assert api.get("/api/auth/grants", token=a["token"]).json()["items"] == []
    assert api.delete(f"/api/auth/grants/{g['id']}", token=a["token"]).status_code == 204
    row = d1_query(server, f"SELECT revoked_reason FROM oauth_grants WHERE id = '{g['id']}'")[0]
    assert row["revoked_reason"] == "owner"
    # The audit log has the consent and the revocation, once each (the second DELETE wrote nothing).
    rows = d1_query(server, f"SELECT action, actor_type, actor_id, target_type, data FROM audit_log "
                            f"WHERE target_id = '{g['id']}' ORDER BY id")
    assert [(r["action"], r["actor_type"], r["actor_id"], r["target_type"]) for r in rows] == [
        ("grant.created", "user", a["user"]["id"], "grant"), ("grant.revoked", "user", a["user"]["id"], "grant")]
    assert '"clientName":"Revoke me"' in rows[0]["data"] and '"reason":"owner"' in rows[1]["data"]


def test_limits_are_counted_per_grant_and_usage_is_flushed(make_server):
    s = make_server({"RATE_LIMIT_PER_MINUTE": "3", "USAGE_FLUSH_SECONDS": "1"})
    api = Api(s.url)
    a = api.signup()
    t = tokens(api, a["token"])
    tok = t["access_token"]
    wait_clear_of_window_end(60, 10)  # the four calls in one aligned minute
    r = [api.get("/api/auth/me", token=tok) for _ in range(4)]
    assert [x.status_code for x in r] == [200, 200, 200, 429], [x.text for x in r]
    assert r[0].headers["x-ratelimit-limit"] == "3"
    # A second client's grant has limits of its own.
    assert api.get("/api/auth/me", token=tokens(api, a["token"])["access_token"]).status_code == 200
    grant = api.get("/api/auth/grants", token=a["token"]).json()["items"][-1]["id"]
    deadline = time.time() + 15
    while time.time() < deadline:
        rows = d1_query(s, f"SELECT allowed, rate_limited FROM grant_usage WHERE grant_id = '{grant}'")
        if rows and rows[0]["rate_limited"] == 1:
            break
        time.sleep(0.5)
    assert rows == [{"allowed": 3, "rate_limited": 1}], rows
    last = d1_query(s, f"SELECT last_used_at FROM oauth_grants WHERE id = '{grant}'")[0]["last_used_at"]
    assert last is not None


def test_deleting_the_account_revokes_its_grants(api: Api):
    a = api.signup()
    tok = tokens(api, a["token"])["access_token"]
    assert api.get("/api/auth/me", token=tok).status_code == 200
    r = api.delete("/api/account", token=a["token"], json={"currentPassword": a["password"]})
    assert r.status_code == 204, r.text
    assert_error(api.get("/api/auth/me", token=tok), 401, "invalid_token")


def test_the_mcp_server_lists_the_tools_a_tokens_scopes_pass(api: Api):
    a = api.signup()
    tok = tokens(api, a["token"], scopes=["write:comment", "read:comment"])["access_token"]
    h = {"Accept": "application/json, text/event-stream"}
    init = {"jsonrpc": "2.0", "id": 1, "method": "initialize",
            "params": {"protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}}}
    assert api.post("/mcp", token=tok, json=init, headers=h).status_code == 200
    r = api.post("/mcp", token=tok, json={"jsonrpc": "2.0", "id": 2, "method": "tools/list"}, headers=h)
    names = {t["name"] for t in r.json()["result"]["tools"]}
    assert "add_comment" in names and "create_jes" not in names, names
    assert not any("webhook" in n for n in names), names


def test_a_grants_daily_quota_notifies_the_owner_as_a_keys_does(make_server):
    s = make_server({"DAILY_QUOTA": "5"})
    api = Api(s.url)
    a = api.signup()
    t = tokens(api, a["token"], client_name="Busy agent")

    def grant_notices():
        items = api.get("/api/notifications?limit=100", token=a["token"]).json()["items"]
        return [n for n in items if n["type"] == "grant.quota_threshold"]

    for _ in range(3):
        assert api.get("/api/auth/me", token=t["access_token"]).status_code == 200
    time.sleep(1)
    assert grant_notices() == []
    api.get("/api/auth/me", token=t["access_token"])  # 4 of 5: 80 %
    deadline = time.time() + 10
    while not grant_notices() and time.time() < deadline:
        time.sleep(0.3)
    got = grant_notices()
    assert [n["data"]["percent"] for n in got] == [80]
    assert got[0]["data"]["clientName"] == "Busy agent" and got[0]["data"]["quota"] == 5
    api.get("/api/auth/me", token=t["access_token"])
    assert_error(api.get("/api/auth/me", token=t["access_token"]), 429, "quota_exceeded")


def test_idempotency_keys_replay_for_a_token(api: Api):
    a = api.signup()
    tok = tokens(api, a["token"])["access_token"]
    body = {"content": "once only", "visibility": "PUBLIC"}
    first = api.post("/api/posts", token=tok, json=body, headers={"Idempotency-Key": "oauth-once"})
    again = api.post("/api/posts", token=tok, json=body, headers={"Idempotency-Key": "oauth-once"})
    assert first.status_code == 201 and again.status_code == 201
    assert again.headers.get("Idempotent-Replayed") == "true" and again.json()["id"] == first.json()["id"]
