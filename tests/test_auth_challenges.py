"""Standard auth challenges (RFC 6750, RFC 9728): every 401 tells an OAuth
client where the protected resource metadata is, adds `error="invalid_token"`
when a credential was sent and refused, and a 403 insufficient_scope names
the scopes that would pass. Checked on routes of both HTTP Workers (the API
and the account Worker it forwards to)."""
import re

import pytest

from conftest import Api, assert_error


def base(api: Api) -> str:
    return f'Bearer realm="jestha", resource_metadata="{api.url}/.well-known/oauth-protected-resource"'


def concrete(path: str) -> str:
    return re.sub(r":\w+", "x1", path)


def test_every_route_that_needs_a_credential_challenges_a_caller_without_one(api: Api):
    routes = api.get("/api/routes").json()["items"]
    checked = 0
    for r in routes:
        if r["access"] in ("public", "optional"):
            continue
        res = api.call(r["method"], concrete(r["path"]))
        assert res.status_code == 401, (r, res.text)
        assert res.headers["WWW-Authenticate"] == base(api), r
        checked += 1
    assert checked > 40


@pytest.mark.parametrize("path", ["/api/auth/me", "/api/auth/api-keys", "/mcp"])
def test_a_refused_credential_adds_invalid_token(api: Api, path):
    method = "POST" if path == "/mcp" else "GET"
    bogus = "jes_live_" + "A" * 30 + "000000"
    for token in (bogus, "jes_sess_not_a_session", "nonsense"):
        res = api.call(method, path, token=token)
        assert res.status_code == 401, (token, res.text)
        assert res.headers["WWW-Authenticate"] == base(api) + ', error="invalid_token"', (path, token)


def test_revoked_keys_and_logged_out_sessions_are_invalid_tokens(api: Api):
    a = api.signup()
    k = api.create_key(a["token"], scopes=["read:comment"])
    assert api.delete(f"/api/auth/api-keys/{k['id']}", token=a["token"]).status_code == 204
    res = api.get("/api/auth/me", token=k["key"])
    assert_error(res, 401, "api_key_revoked")
    assert res.headers["WWW-Authenticate"].endswith(', error="invalid_token"')
    assert api.post("/api/auth/logout", token=a["token"]).status_code in (200, 204)
    res = api.get("/api/auth/api-keys", token=a["token"])
    assert_error(res, 401, "invalid_session")
    assert res.headers["WWW-Authenticate"] == base(api) + ', error="invalid_token"'


def test_a_wrong_password_gets_the_base_challenge(api: Api):
    a = api.signup()
    res = api.post("/api/auth/login", json={"login": a["user"]["username"], "password": "wrong password here"})
    assert_error(res, 401, "invalid_credentials")
    assert res.headers["WWW-Authenticate"] == base(api)


def test_a_missing_scope_is_named_in_the_challenge(api: Api):
    a = api.signup()
    k = api.create_key(a["token"], scopes=["read:comment"])
    res = api.post("/api/posts", token=k["key"], json={"content": "hi", "visibility": "PUBLIC"})
    assert_error(res, 403, "insufficient_scope")
    assert res.headers["WWW-Authenticate"] == 'Bearer error="insufficient_scope", scope="write:jes"'
    # A route that takes one of several scopes lists the alternatives.
    res = api.post("/api/media", token=k["key"], headers={"content-type": "image/png"}, data=b"\x89PNG")
    assert_error(res, 403, "insufficient_scope")
    assert res.headers["WWW-Authenticate"] == 'Bearer error="insufficient_scope", scope="write:jes write:jesclip"'


def test_other_refusals_carry_no_challenge(api: Api):
    a = api.signup()
    k = api.create_key(a["token"], scopes=["write:jes"])
    res = api.get("/api/auth/api-keys", token=k["key"])
    assert_error(res, 403, "session_only")
    assert "WWW-Authenticate" not in res.headers
    assert "WWW-Authenticate" not in api.get("/api/posts/nope", token=k["key"]).headers
