"""OAuth test helpers: register a client, run the authorization-code dance
over HTTP (the consent as the web app posts it), exchange codes and refresh
tokens. Every registration comes from its own simulated address
(CF-Connecting-IP), as the server throttles registrations per address."""
from __future__ import annotations

import base64
import hashlib
import random
import re
import secrets
import urllib.parse

from conftest import Api

ACCESS_RE = re.compile(r"^jes_oat_[0-9A-HJKMNP-TV-Z]{26}[0-9A-Za-z]{36}$")
REFRESH_RE = re.compile(r"^jes_ort_[0-9A-Za-z]{36}$")
GRANTABLE = ["write:jes", "write:jesclip", "write:comment", "read:comment", "read:engagement"]
DEVICE_GRANT = "urn:ietf:params:oauth:grant-type:device_code"


def address() -> str:
    """A documentation-range address (RFC 3849) in a /64 no other test uses:
    per-address bounds count IPv6 by its /64, and 2^32 of them make a
    collision with another test's address (a shared allowance) negligible."""
    return f"2001:db8:{random.randrange(1 << 16):x}:{random.randrange(1 << 16):x}::1"


def register(api: Api, redirect_uris=("http://127.0.0.1:8765/callback",), ip: str | None = None, **meta):
    body = {"redirect_uris": list(redirect_uris), "client_name": "Test agent", **meta}
    return api.post("/oauth/register", json=body, headers={"CF-Connecting-IP": ip or address()})


def client(api: Api, **kw) -> dict:
    r = register(api, **kw)
    assert r.status_code == 201, r.text
    return r.json()


def pkce() -> tuple[str, str]:
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    return verifier, challenge


def authorize_query(client_id: str, redirect_uri: str, challenge: str, state: str = "st4te",
                    scope: str | None = None, resource: str | None = None, **extra) -> str:
    q = {"response_type": "code", "client_id": client_id, "redirect_uri": redirect_uri,
         "code_challenge": challenge, "code_challenge_method": "S256", "state": state}
    if scope is not None:
        q["scope"] = scope
    if resource is not None:
        q["resource"] = resource
    q.update(extra)
    return urllib.parse.urlencode(q)


def consent(api: Api, session: str, query: str, scopes=None, decision: str = "allow"):
    """The web app's consent answer, as a session posts it (no cookie, so no CSRF)."""
    if scopes is None:
        scopes = [s["scope"] for s in api.get("/api/oauth/authorize?" + query, token=session).json()["scopes"]]
    return api.post("/api/oauth/authorize", token=session,
                    json={"request": query, "decision": decision, "scopes": scopes})


def query_of(url: str) -> dict:
    return dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(url).query))


def exchange(api: Api, client_id: str, code: str, redirect_uri: str, verifier: str, **extra):
    form = {"grant_type": "authorization_code", "code": code, "redirect_uri": redirect_uri,
            "client_id": client_id, "code_verifier": verifier, **extra}
    return api.http.post(api.url + "/oauth/token", data=form, timeout=30)


def refresh(api: Api, client_id: str, refresh_token: str, **extra):
    form = {"grant_type": "refresh_token", "refresh_token": refresh_token, "client_id": client_id, **extra}
    return api.http.post(api.url + "/oauth/token", data=form, timeout=30)


def tokens(api: Api, session: str, scopes=None, client_name: str = "Test agent") -> dict:
    """The whole authorization-code dance over HTTP: {client, code, tokens}."""
    redirect_uri = "http://127.0.0.1:8765/callback"
    c = client(api, redirect_uris=[redirect_uri], client_name=client_name)
    verifier, challenge = pkce()
    q = authorize_query(c["client_id"], redirect_uri, challenge)
    r = consent(api, session, q, scopes=scopes)
    assert r.status_code == 200, r.text
    code = query_of(r.json()["redirectTo"])["code"]
    t = exchange(api, c["client_id"], code, redirect_uri, verifier)
    assert t.status_code == 200, t.text
    return {"client": c, "code": code, "verifier": verifier, "redirect_uri": redirect_uri, **t.json()}
