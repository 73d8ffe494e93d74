"""The authorization code flow with PKCE (OAuth 2.1): GET /oauth/authorize
never redirects anywhere unregistered, errors reach the client with state and
iss (RFC 9207), the consent screen's API records a grant with the scopes the
person left ticked, and a code is exchanged once, within 60 s, by its client,
with its verifier and redirect URI."""
import pytest

from conftest import Api, assert_error, d1_query
from oauth import (ACCESS_RE, REFRESH_RE, GRANTABLE, authorize_query, client, consent, exchange, pkce,
                   query_of, tokens)

CB = "http://127.0.0.1:8765/callback"


@pytest.fixture
def agent(api: Api):
    return client(api, redirect_uris=[CB, "https://agent.example/cb?app=1"], client_name="Agent Smith")


def authorize(api: Api, query: str):
    return api.http.get(api.url + "/oauth/authorize?" + query, allow_redirects=False, timeout=30)


def test_a_valid_request_goes_to_the_consent_screen_with_its_query(api: Api, agent):
    _, challenge = pkce()
    q = authorize_query(agent["client_id"], "http://127.0.0.1:51234/callback", challenge, scope="read:comment claudeai")
    r = authorize(api, q)
    assert r.status_code == 302, r.text
    assert r.headers["location"] == "/#/oauth/authorize?" + q


@pytest.mark.parametrize("redirect", ["https://evil.example/cb", "http://127.0.0.1:8765/other", None])
def test_an_unknown_client_or_unregistered_redirect_never_leaves_our_page(api: Api, agent, redirect):
    _, challenge = pkce()
    q = authorize_query(agent["client_id"], redirect or CB, challenge)
    if redirect is None:
        q = q.replace(agent["client_id"], "cli_01KBZ7Q2M3N4P5R6S7T8V9W0XA")
    r = authorize(api, q + "&response_type=x" if redirect else q)
    assert r.status_code == 302
    loc = r.headers["location"]
    assert loc.startswith("/#/oauth/error?") and "evil.example" not in loc, loc
    assert query_of(loc.replace("/#/oauth/error", ""))["error"] in ("invalid_client", "invalid_request")


@pytest.mark.parametrize("change,error", [
    ({"response_type": "token"}, "unsupported_response_type"),
    ({"code_challenge_method": "plain"}, "invalid_request"),
    ({"code_challenge": ""}, "invalid_request"),
    ({"resource": "https://other.example/mcp"}, "invalid_target"),
])
def test_later_errors_go_to_the_client_with_state_and_iss(api: Api, agent, change, error):
    _, challenge = pkce()
    base = dict(query_of("?" + authorize_query(agent["client_id"], CB, challenge)))
    base.update(change)
    import urllib.parse
    r = authorize(api, urllib.parse.urlencode(base))
    assert r.status_code == 302
    loc = r.headers["location"]
    assert loc.startswith(CB + "?"), loc
    q = query_of(loc)
    assert q["error"] == error and q["state"] == "st4te" and q["iss"] == api.url


def test_the_consent_screen_names_the_client_its_redirect_host_and_each_scope(api: Api, agent):
    a = api.signup()
    _, challenge = pkce()
    q = authorize_query(agent["client_id"], "https://agent.example/cb?app=1", challenge, scope="write:jes read:comment bogus")
    r = api.get("/api/oauth/authorize?" + q, token=a["token"])
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["client"]["name"] == "Agent Smith" and body["client"]["id"] == agent["client_id"]
    assert body["redirect"] == {"uri": "https://agent.example/cb?app=1", "host": "agent.example", "loopback": False}
    assert [s["scope"] for s in body["scopes"]] == ["write:jes", "read:comment"]
    assert all(s["name"] and s["description"] for s in body["scopes"])
    assert body["account"]["username"] == a["user"]["username"]
    # No scope named: the whole grantable catalog (never webhooks:manage).
    q = authorize_query(agent["client_id"], CB, challenge)
    assert [s["scope"] for s in api.get("/api/oauth/authorize?" + q, token=a["token"]).json()["scopes"]] == GRANTABLE
    key = api.create_key(a["token"], scopes=["read:comment"])["key"]
    assert_error(api.get("/api/oauth/authorize?" + q, token=key), 403, "session_only")


def test_deny_sends_access_denied_and_records_nothing(api: Api, server, agent):
    a = api.signup()
    _, challenge = pkce()
    q = authorize_query(agent["client_id"], CB, challenge)
    r = consent(api, a["token"], q, scopes=[], decision="deny")
    assert r.status_code == 200, r.text
    back = query_of(r.json()["redirectTo"])
    assert back == {"error": "access_denied", "error_description": "the person denied access", "state": "st4te", "iss": api.url}
    assert d1_query(server, f"SELECT COUNT(*) AS n FROM oauth_grants WHERE user_id = '{a['user']['id']}'")[0]["n"] == 0


def test_the_consent_accepts_only_requested_scopes_and_needs_csrf_with_a_cookie(api: Api, agent):
    a = api.signup()
    _, challenge = pkce()
    q = authorize_query(agent["client_id"], CB, challenge, scope="read:comment")
    err = assert_error(consent(api, a["token"], q, scopes=["write:jes"]), 400, "invalid_request")
    assert err["message"].startswith("scopes[0]")
    r = api.http.post(api.url + "/api/oauth/authorize", cookies={"jes_session": a["token"], "__Host-jes_session": a["token"]},
                      json={"request": q, "decision": "allow", "scopes": []})
    assert_error(r, 403, "forbidden")


def test_a_code_is_exchanged_once_for_tokens_stored_only_as_hashes(api: Api, server):
    a = api.signup()
    t = tokens(api, a["token"], scopes=["write:jes", "read:comment"])
    assert ACCESS_RE.match(t["access_token"]) and REFRESH_RE.match(t["refresh_token"])
    assert t["token_type"] == "Bearer" and t["expires_in"] == 3600 and t["scope"] == "write:jes read:comment"
    dump = str([d1_query(server, f"SELECT * FROM {table}") for table in
                ("oauth_clients", "oauth_grants", "oauth_codes", "oauth_refresh_tokens", "oauth_access_tokens")])
    for secret in (t["access_token"], t["refresh_token"], t["code"], t["verifier"]):
        assert secret not in dump
    # Replaying the code is refused, and revokes what the code gave.
    assert api.get("/api/auth/me", token=t["access_token"]).status_code == 200
    r = exchange(api, t["client"]["client_id"], t["code"], t["redirect_uri"], t["verifier"])
    assert r.status_code == 400 and r.json()["error"] == "invalid_grant"
    assert r.headers["cache-control"] == "no-store"
    res = api.get("/api/auth/me", token=t["access_token"])
    assert_error(res, 401, "invalid_token")
    assert res.headers["WWW-Authenticate"].endswith('error="invalid_token"')


def test_an_exchange_needs_the_right_verifier_redirect_client_and_a_fresh_code(api: Api, server):
    a = api.signup()
    c = client(api, redirect_uris=[CB])
    other = client(api, redirect_uris=[CB])

    def fresh():
        verifier, challenge = pkce()
        q = authorize_query(c["client_id"], CB, challenge, resource=api.url + "/mcp")
        return verifier, query_of(consent(api, a["token"], q).json()["redirectTo"])["code"]

    for change, error in [({"code_verifier": pkce()[0]}, "invalid_grant"),
                          ({"redirect_uri": "http://127.0.0.1:9999/callback"}, "invalid_grant"),
                          ({"client_id": other["client_id"]}, "invalid_grant"),
                          ({"resource": api.url}, "invalid_target"),
                          ({"resource": "https://other.example"}, "invalid_target")]:
        verifier, code = fresh()
        form = {"code_verifier": verifier, "redirect_uri": CB, "client_id": c["client_id"], **change}
        r = exchange(api, form.pop("client_id"), code, form.pop("redirect_uri"), form.pop("code_verifier"), **form)
        assert r.status_code == 400 and r.json()["error"] == error, (change, r.text)
    verifier, code = fresh()
    import hashlib
    d1_query(server, f"UPDATE oauth_codes SET expires_at = 0 WHERE code_hash = '{hashlib.sha256(code.encode()).hexdigest()}'")
    r = exchange(api, c["client_id"], code, CB, verifier)
    assert r.status_code == 400 and r.json()["error"] == "invalid_grant"
    r = exchange(api, "cli_unknown", code, CB, verifier)
    assert r.status_code == 401 and r.json()["error"] == "invalid_client"
    assert "WWW-Authenticate" in r.headers
    r = api.http.post(api.url + "/oauth/token", json={"grant_type": "authorization_code"})
    assert r.status_code == 400 and r.json()["error"] == "invalid_request"
    r = api.http.post(api.url + "/oauth/token", data="grant_type=a&grant_type=b&client_id=" + c["client_id"],
                      headers={"content-type": "application/x-www-form-urlencoded"})
    assert r.status_code == 400 and r.json()["error"] == "invalid_request"
    r = api.http.post(api.url + "/oauth/token", data={"grant_type": "password", "client_id": c["client_id"]})
    assert r.status_code == 400 and r.json()["error"] == "unsupported_grant_type"
