"""Refresh tokens rotate on every use and a reused one revokes the whole
grant (OAuth 2.1 §4.3.1); racing uses of one code or one refresh token issue
tokens once; RFC 7009 revocation of an access token (itself only) or a
refresh token (the grant)."""
import concurrent.futures as cf
import time

from conftest import Api, assert_error, d1_query
from oauth import ACCESS_RE, REFRESH_RE, client, exchange, refresh, tokens


def revoke(api: Api, client_id: str, token: str, hint: str | None = None):
    form = {"token": token, "client_id": client_id}
    if hint:
        form["token_type_hint"] = hint
    return api.http.post(api.url + "/oauth/revoke", data=form, timeout=30)


def test_a_refresh_rotates_and_a_reused_token_revokes_the_grant(api: Api, server):
    a = api.signup()
    t = tokens(api, a["token"], scopes=["write:jes", "read:comment"])
    cid = t["client"]["client_id"]
    r1 = refresh(api, cid, t["refresh_token"])
    assert r1.status_code == 200, r1.text
    n = r1.json()
    assert ACCESS_RE.match(n["access_token"]) and REFRESH_RE.match(n["refresh_token"])
    assert n["refresh_token"] != t["refresh_token"] and n["scope"] == "write:jes read:comment"
    # Both access tokens work until the reuse.
    assert api.get("/api/auth/me", token=n["access_token"]).status_code == 200
    assert api.get("/api/auth/me", token=t["access_token"]).status_code == 200
    reuse = refresh(api, cid, t["refresh_token"])
    assert reuse.status_code == 400 and reuse.json()["error"] == "invalid_grant"
    for tok in (t["access_token"], n["access_token"]):
        assert_error(api.get("/api/auth/me", token=tok), 401, "invalid_token")
    assert refresh(api, cid, n["refresh_token"]).json()["error"] == "invalid_grant"
    grant = d1_query(server, f"SELECT id, revoked_reason FROM oauth_grants WHERE user_id = '{a['user']['id']}'")
    assert [g["revoked_reason"] for g in grant] == ["refresh_reuse"]
    audit = d1_query(server, f"SELECT actor_type, data FROM audit_log WHERE action = 'grant.revoked' "
                             f"AND target_id = '{grant[0]['id']}'")
    assert audit == [{"actor_type": "system", "data": '{"reason":"refresh_reuse"}'}]


def test_a_refresh_may_narrow_scopes_but_never_widen_them(api: Api):
    a = api.signup()
    t = tokens(api, a["token"], scopes=["write:jes", "read:comment"])
    cid = t["client"]["client_id"]
    wide = refresh(api, cid, t["refresh_token"], scope="write:jes write:comment")
    assert wide.status_code == 400 and wide.json()["error"] == "invalid_scope"
    narrow = refresh(api, cid, t["refresh_token"], scope="read:comment")
    assert narrow.status_code == 200, narrow.text
    tok = narrow.json()["access_token"]
    assert narrow.json()["scope"] == "read:comment"
    assert_error(api.post("/api/posts", token=tok, json={"content": "x", "visibility": "PUBLIC"}), 403, "insufficient_scope")
    # A blank or unknown scope never widens to a default: blank keeps what is held, unknown is refused.
    blank = refresh(api, cid, narrow.json()["refresh_token"], scope=" ")
    assert blank.status_code == 200, blank.text
    assert blank.json()["scope"] == "read:comment"
    assert_error(api.post("/api/posts", token=blank.json()["access_token"], json={"content": "x", "visibility": "PUBLIC"}),
                 403, "insufficient_scope")
    unknown = refresh(api, cid, blank.json()["refresh_token"], scope="profile")
    assert unknown.status_code == 400 and unknown.json()["error"] == "invalid_scope"


def test_another_clients_or_an_expired_refresh_token_is_refused_and_revokes_nothing(api: Api, server):
    a = api.signup()
    t = tokens(api, a["token"])
    other = client(api)
    r = refresh(api, other["client_id"], t["refresh_token"])
    assert r.status_code == 400 and r.json()["error"] == "invalid_grant"
    assert api.get("/api/auth/me", token=t["access_token"]).status_code == 200
    import hashlib
    h = hashlib.sha256(t["refresh_token"].encode()).hexdigest()
    d1_query(server, f"UPDATE oauth_refresh_tokens SET expires_at = 1 WHERE token_hash = '{h}'")
    r = refresh(api, t["client"]["client_id"], t["refresh_token"])
    assert r.status_code == 400 and r.json()["error"] == "invalid_grant"
    assert api.get("/api/auth/me", token=t["access_token"]).status_code == 200


def test_racing_refreshes_issue_once(api: Api):
    a = api.signup()
    t = tokens(api, a["token"])
    cid = t["client"]["client_id"]
    with cf.ThreadPoolExecutor(4) as pool:
        answers = list(pool.map(lambda _: refresh(api, cid, t["refresh_token"]), range(4)))
    assert sum(r.status_code == 200 for r in answers) <= 1, [r.text for r in answers]
    assert all(r.status_code in (200, 400) for r in answers)


def test_racing_exchanges_of_one_code_issue_once(api: Api):
    from oauth import authorize_query, consent, pkce, query_of
    a = api.signup()
    cb = "http://127.0.0.1:8765/callback"
    c = client(api, redirect_uris=[cb])
    verifier, challenge = pkce()
    code = query_of(consent(api, a["token"], authorize_query(c["client_id"], cb, challenge)).json()["redirectTo"])["code"]
    with cf.ThreadPoolExecutor(4) as pool:
        answers = list(pool.map(lambda _: exchange(api, c["client_id"], code, cb, verifier), range(4)))
    assert sum(r.status_code == 200 for r in answers) <= 1, [r.text for r in answers]


def test_an_access_token_is_revoked_alone(api: Api):
    a = api.signup()
    t = tokens(api, a["token"])
    cid = t["client"]["client_id"]
    second = refresh(api, cid, t["refresh_token"]).json()
    r = revoke(api, cid, t["access_token"], "access_token")
    assert r.status_code == 200
    assert_error(api.get("/api/auth/me", token=t["access_token"]), 401, "invalid_token")
    assert api.get("/api/auth/me", token=second["access_token"]).status_code == 200
    assert revoke(api, cid, t["access_token"]).status_code == 200, "already revoked: still 200"


def test_a_refresh_token_revokes_its_grant(api: Api):
    a = api.signup()
    t = tokens(api, a["token"])
    cid = t["client"]["client_id"]
    assert revoke(api, client(api)["client_id"], t["refresh_token"]).json()["error"] == "invalid_client"
    assert api.get("/api/auth/me", token=t["access_token"]).status_code == 200
    assert revoke(api, cid, t["refresh_token"], "refresh_token").status_code == 200
    assert_error(api.get("/api/auth/me", token=t["access_token"]), 401, "invalid_token")
    assert refresh(api, cid, t["refresh_token"]).json()["error"] == "invalid_grant"
    assert api.get("/api/auth/grants", token=a["token"]).json()["items"] == []


def test_unknown_tokens_are_revoked_quietly_and_a_missing_one_is_invalid_request(api: Api):
    cid = client(api)["client_id"]
    for token in ("nonsense", "jes_ort_" + "A" * 36, "jes_live_x"):
        assert revoke(api, cid, token).status_code == 200
    r = api.http.post(api.url + "/oauth/revoke", data={"client_id": cid})
    assert r.status_code == 400 and r.json()["error"] == "invalid_request"


def test_access_tokens_expire(make_server):
    s = make_server({"OAUTH_ACCESS_TOKEN_TTL_SECONDS": "8"})
    api = Api(s.url)
    a = api.signup()
    t = tokens(api, a["token"])
    issued = time.time()  # no earlier than the token's own issue
    assert t["expires_in"] == 8
    assert api.get("/api/auth/me", token=t["access_token"]).status_code == 200
    time.sleep(max(0.0, issued + 9 - time.time()))
    assert_error(api.get("/api/auth/me", token=t["access_token"]), 401, "invalid_token")
    fresh = refresh(api, t["client"]["client_id"], t["refresh_token"]).json()
    assert api.get("/api/auth/me", token=fresh["access_token"]).status_code == 200


def test_the_cron_sweeps_spent_secrets_abandoned_consents_and_unused_clients(api: Api, server):
    import requests
    a = api.signup()
    live = tokens(api, a["token"])
    unused = client(api)
    stale = client(api)
    day = 86_400_000
    cid = live["client"]["client_id"]
    grant = d1_query(server, f"SELECT id FROM oauth_grants WHERE client_id = '{cid}'")[0]["id"]
    # Age what the sweep may drop: a client registered two days ago and never used,
    # the live grant's (used) code, and an abandoned consent of another client.
    d1_query(server, f"UPDATE oauth_clients SET created_at = created_at - 2 * {day} WHERE id = '{stale['client_id']}'")
    d1_query(server, f"UPDATE oauth_codes SET expires_at = expires_at - 2 * {day} WHERE grant_id = '{grant}'")
    d1_query(server, "INSERT INTO oauth_grants (id, user_id, client_id, client_name, scopes, flow, created_at) "
                     f"VALUES ('01KBZ7Q2M3N4P5R6S7T8V9W0XA', '{a['user']['id']}', '{unused['client_id']}', 'x', '', 'code', 1)")
    assert requests.get(server.url + "/__scheduled?cron=*+*+*+*+*", timeout=30).status_code == 200
    ids = {r["id"] for r in d1_query(server, "SELECT id FROM oauth_clients")}
    assert stale["client_id"] not in ids and cid in ids and unused["client_id"] in ids
    assert d1_query(server, f"SELECT COUNT(*) AS n FROM oauth_codes WHERE grant_id = '{grant}'")[0]["n"] == 0
    assert d1_query(server, "SELECT COUNT(*) AS n FROM oauth_grants WHERE id = '01KBZ7Q2M3N4P5R6S7T8V9W0XA'")[0]["n"] == 0
    # What is in use stays: the grant and its tokens work.
    assert api.get("/api/auth/me", token=live["access_token"]).status_code == 200
    assert refresh(api, cid, live["refresh_token"]).status_code == 200
