"""The official MCP Python SDK's own OAuth client (`OAuthClientProvider`,
mcp 2.3.0) against this server, end to end, with nothing of ours in between:
from a bare 401 it discovers the protected resource and the authorization
server, registers itself, sends a person to the consent screen (Chromium,
driven by tests/browser/approve.mjs, signs in and clicks Allow), receives the
code on a real loopback redirect (RFC 8252), exchanges it with PKCE, and
calls tools. The tools it sees follow the scopes the person granted, what it
creates says `via` its name, and when its access token expires it refreshes
(rotating the refresh token) without asking the person again."""
from __future__ import annotations

import asyncio
import re
import subprocess
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from mcp.client.auth import OAuthClientProvider, TokenStorage
from mcp.client.session import ClientSession
from mcp.client.streamable_http import streamable_http_client
from mcp.shared._httpx_utils import create_mcp_http_client
from mcp.shared.auth import AuthorizationCodeResult, OAuthClientMetadata

from conftest import ROOT, Api, assert_error
from oauth import ACCESS_RE, REFRESH_RE, refresh


class Memory(TokenStorage):
    def __init__(self):
        self.tokens = None
        self.client = None

    async def get_tokens(self):
        return self.tokens

    async def set_tokens(self, tokens):
        self.tokens = tokens

    async def get_client_info(self):
        return self.client

    async def set_client_info(self, info):
        self.client = info


class Loopback:
    """A real loopback redirect target: records the query /callback received."""

    def __init__(self):
        me = self
        self.query = None

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):
                url = urllib.parse.urlsplit(self.path)
                if url.path == "/callback":  # not the browser's /favicon.ico
                    me.query = urllib.parse.parse_qs(url.query)
                self.send_response(200)
                self.end_headers()
                self.wfile.write(b"done")

            def log_message(self, *args):
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_port}/callback"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()


class Agent:
    """One MCP client with the SDK's OAuth, its tokens kept across connections."""

    def __init__(self, base: str, login: str, password: str, untick=(), name: str = "SDK test agent"):
        self.base, self.login, self.password, self.untick = base, login, password, untick
        self.callback = Loopback()
        self.store = Memory()
        self.redirects: list[str] = []
        self.name = name

    async def redirect_handler(self, url: str) -> None:
        self.redirects.append(url)
        args = ["node", str(ROOT / "tests/browser/approve.mjs"), url, self.login, self.password]
        for s in self.untick:
            args += ["--untick", s]
        p = await asyncio.to_thread(subprocess.run, args, cwd=ROOT, capture_output=True, text=True, timeout=150)
        assert p.returncode == 0, p.stderr

    async def callback_handler(self) -> AuthorizationCodeResult:
        q = self.callback.query
        assert "code" in q, q
        return AuthorizationCodeResult(code=q["code"][0], state=q["state"][0], iss=q.get("iss", [None])[0])

    async def session(self, work):
        auth = OAuthClientProvider(
            server_url=self.base + "/mcp",
            client_metadata=OAuthClientMetadata(client_name=self.name, redirect_uris=[self.callback.url]),
            storage=self.store, redirect_handler=self.redirect_handler, callback_handler=self.callback_handler)
        async with create_mcp_http_client(auth=auth) as http:
            async with streamable_http_client(self.base + "/mcp", http_client=http) as (read, write):
                async with ClientSession(read, write) as s:
                    await s.initialize()
                    return await work(s)

    def run(self, work):
        return asyncio.run(self.session(work))


async def tools_and_me(s: ClientSession):
    names = {t.name for t in (await s.list_tools()).tools}
    me = (await s.call_tool("whoami", {})).structured_content
    return names, me


def test_the_sdk_discovers_registers_gets_consent_and_calls_tools(api: Api):
    a = api.signup()
    post = api.post("/api/posts", token=a["token"], json={"content": "a Jes to answer", "visibility": "PUBLIC"}).json()
    agent = Agent(api.url, a["user"]["username"], a["password"], untick=("write:jes",))
    names, me = agent.run(tools_and_me)
    assert len(agent.redirects) == 1
    auth_url = agent.redirects[0]
    assert auth_url.startswith(api.url + "/oauth/authorize?")
    q = urllib.parse.parse_qs(urllib.parse.urlsplit(auth_url).query)
    assert q["code_challenge_method"] == ["S256"] and q["resource"][0] in (api.url, api.url + "/mcp")
    assert agent.store.client.client_id.startswith("cli_")
    assert ACCESS_RE.match(agent.store.tokens.access_token) and REFRESH_RE.match(agent.store.tokens.refresh_token)
    assert me["username"] == a["user"]["username"]
    # The person unticked write:jes: no Jes tools; comments yes; webhooks never.
    assert "create_jes" not in names and "add_comment" in names and "list_comments" in names, names
    assert not any("webhook" in n for n in names), names
    assert "write:jes" not in agent.store.tokens.scope.split()

    async def comment(s: ClientSession):
        return (await s.call_tool("add_comment", {"jesId": post["id"], "content": "via the SDK"})).structured_content

    made = agent.run(comment)
    assert made["via"] == {"label": "SDK test agent"}, made
    assert len(agent.redirects) == 1, "the stored token was used: no second consent"
    tok = agent.store.tokens.access_token
    assert_error(api.post("/api/posts", token=tok, json={"content": "x", "visibility": "PUBLIC"}), 403, "insufficient_scope")
    # The owner revokes the app: its next MCP call is refused with invalid_token.
    grant = api.get("/api/auth/grants", token=a["token"]).json()["items"][0]
    assert grant["clientName"] == "SDK test agent"
    assert api.delete(f"/api/auth/grants/{grant['id']}", token=a["token"]).status_code == 204
    r = api.post("/mcp", token=tok, json={"jsonrpc": "2.0", "id": 1, "method": "tools/list"},
                 headers={"Accept": "application/json, text/event-stream"})
    assert r.status_code == 401 and 'error="invalid_token"' in r.headers["WWW-Authenticate"]


def test_an_expired_access_token_is_refreshed_without_asking_again(make_server):
    s = make_server({"OAUTH_ACCESS_TOKEN_TTL_SECONDS": "2"})
    api = Api(s.url)
    a = api.signup()
    agent = Agent(api.url, a["user"]["username"], a["password"], name="Refreshing agent")
    seen = {}

    async def twice(s: ClientSession):
        await tools_and_me(s)
        seen["first"] = agent.store.tokens.refresh_token
        assert agent.store.tokens.expires_in == 2
        # The SDK knows when its token expires (from expires_in) and refreshes
        # before the next request of the same connection.
        await asyncio.sleep(3)
        return await tools_and_me(s)

    _, me = agent.run(twice)
    first = seen["first"]
    assert me["username"] == a["user"]["username"]
    assert len(agent.redirects) == 1, "refreshed, not re-authorized"
    assert agent.store.tokens.refresh_token != first
    # The rotated-out refresh token, presented again, revokes the grant.
    r = refresh(api, agent.store.client.client_id, first)
    assert r.status_code == 400 and r.json()["error"] == "invalid_grant"
    assert_error(api.get("/api/auth/me", token=agent.store.tokens.access_token), 401, "invalid_token")
