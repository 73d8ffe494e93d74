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
    """A documentation-range address no other test uses (RFC 5737)."""
    return f"198.51.{random.randrange(256)}.{random.randrange(1, 255)}"


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
