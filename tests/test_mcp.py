"""The MCP server on the same keys and scopes, driven by the official MCP Python SDK
over Streamable HTTP."""
import asyncio
import json

import pytest
import requests

from conftest import Api, assert_error

from mcp.client.session import ClientSession
from mcp.client.streamable_http import streamable_http_client
from mcp.shared._httpx_utils import create_mcp_http_client

ALL = ["write:jes", "write:jesclip", "write:comment", "read:comment", "read:engagement", "webhooks:manage"]


async def _with_session(url: str, key: str, fn):
    async with create_mcp_http_client(headers={"Authorization": f"Bearer {key}"}) as http:
        async with streamable_http_client(url + "/mcp", http_client=http) as (read, write):
            async with ClientSession(read, write) as session:
                init = await session.initialize()
                return await fn(session, init)


def mcp(server, key, fn):
    return asyncio.run(_with_session(server.url, key, fn))


def tool_names(server, key) -> set[str]:
    async def go(s, _):
        return {t.name for t in (await s.list_tools()).tools}
    return mcp(server, key, go)


def test_initialize_negotiates_the_protocol_and_ping_answers(server, api: Api):
    a = api.signup()
    key = api.create_key(a["token"], scopes=["read:comment"])["key"]

    async def go(s, init):
        await s.send_ping()
        return init
    init = mcp(server, key, go)
    assert init.protocol_version == "2025-11-25"
    assert init.server_info.name == "jestha-edge"
    assert init.capabilities.tools is not None


def test_tools_list_shows_only_what_the_scopes_allow(server, api: Api):
    a = api.signup()
    readonly = api.create_key(a["token"], preset="read-only")["key"]
    scheduler = api.create_key(a["token"], preset="scheduler")["key"]
    everything = api.create_key(a["token"], scopes=ALL)["key"]
    r = tool_names(server, readonly)
    s = tool_names(server, scheduler)
    e = tool_names(server, everything)
    assert "whoami" in r and "whoami" in s
    assert not {"create_jes", "add_webhook"} & r
    assert not {"add_comment", "list_webhooks"} & s
    assert r <= e and s <= e
    routes = {(x["method"], x["path"]) for x in api.get("/api/routes").json()["items"]}
    if ("POST", "/api/posts") in routes:
        assert r < e and s < e
        assert {"list_comments", "get_jes"} <= r
        assert {"create_jes", "edit_jes", "delete_jes", "bounce_jes", "create_jesclip", "get_jes"} <= s
    if ("GET", "/api/auth/api-keys/:id/webhooks") in routes:
        assert {"list_webhooks", "add_webhook", "remove_webhook", "test_webhook"} <= e


def test_whoami_is_the_keys_account(server, api: Api):
    a = api.signup()
    key = api.create_key(a["token"], scopes=["read:comment"])["key"]

    async def go(s, _):
        return await s.call_tool("whoami", {})
    res = mcp(server, key, go)
    assert not res.is_error
    assert res.structured_content["id"] == a["user"]["id"]
    assert json.loads(res.content[0].text)["username"] == a["user"]["username"]


def has_route(api: Api, method: str, path: str) -> bool:
    return any((x["method"], x["path"]) == (method, path) for x in api.get("/api/routes").json()["items"])


def test_calling_a_tool_outside_the_scopes_is_a_tool_error_naming_the_scope(server, api: Api):
    if not has_route(api, "POST", "/api/posts"):
        pytest.skip("content routes are not on this branch yet")
    a = api.signup()
    key = api.create_key(a["token"], preset="read-only")["key"]

    async def go(s, _):
        return await s.call_tool("create_jes", {"content": "should not exist", "visibility": "PUBLIC"})
    res = mcp(server, key, go)
    assert res.is_error
    assert "Token missing scope(s): write:jes" in res.content[0].text
    assert res.structured_content["error"]["code"] == "insufficient_scope"


def test_session_tokens_and_missing_credentials_are_refused(server, api: Api):
    a = api.signup()
    body = {"jsonrpc": "2.0", "id": 1, "method": "ping"}
    h = {"Accept": "application/json, text/event-stream"}
    assert_error(api.post("/mcp", json=body, headers=h), 401, "unauthenticated")
    assert_error(api.post("/mcp", json=body, token=a["token"], headers=h), 403, "forbidden")


def test_malformed_json_rpc_gets_standard_errors_never_a_5xx(server, api: Api):
    a = api.signup()
    key = api.create_key(a["token"], scopes=["read:comment"])["key"]
    h = {"Authorization": f"Bearer {key}", "Content-Type": "application/json",
         "Accept": "application/json, text/event-stream"}
    cases = {
        b"{not json": -32700,
        b'[{"jsonrpc":"2.0","id":1,"method":"ping"}]': -32600,
        b'{"id":1,"method":"ping"}': -32600,
        b'{"jsonrpc":"2.0","id":2,"method":"nope"}': -32601,
        b'{"jsonrpc":"2.0","id":3,"method":"tools/call","params":{"name":"no_such_tool"}}': -32602,
        b'{"jsonrpc":"2.0","id":4,"method":"tools/call","params":{"name":"whoami","arguments":{"x":1}}}': -32602,
    }
    for body, code in cases.items():
        r = requests.post(server.url + "/mcp", data=body, headers=h, timeout=10)
        assert r.status_code < 500, body
        assert r.json()["error"]["code"] == code, (body, r.text)
    r = requests.post(server.url + "/mcp", data=b'{"jsonrpc":"2.0","method":"notifications/initialized"}', headers=h)
    assert r.status_code == 202 and r.text == ""
    assert requests.get(server.url + "/mcp", headers=h).status_code == 405


def test_a_key_revoked_mid_session_is_refused_on_the_next_call(server, api: Api):
    a = api.signup()
    k = api.create_key(a["token"], scopes=["read:comment"])

    async def go(s, _):
        first = await s.call_tool("whoami", {})
        assert api.delete(f"/api/auth/api-keys/{k['id']}", token=a["token"]).status_code == 204
        try:
            await s.call_tool("whoami", {})
        except Exception as e:  # the transport surfaces the 401
            return first, e
        return first, None
    first, err = mcp(server, k["key"], go)
    assert not first.is_error
    assert err is not None, "the revoked key's next call must fail"


def test_each_tools_call_counts_once_against_the_rate_limit(make_server):
    s = make_server({"RATE_LIMIT_PER_MINUTE": "6", "RATE_LIMIT_WINDOW_SECONDS": "3600"})
    api = Api(s.url)
    a = api.signup()
    key = api.create_key(a["token"], scopes=["read:comment"])["key"]
    h = {"Authorization": f"Bearer {key}", "Content-Type": "application/json",
         "Accept": "application/json, text/event-stream"}
    call = {"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": "whoami", "arguments": {}}}
    remaining = []
    for _ in range(6):
        r = requests.post(s.url + "/mcp", json=call, headers=h, timeout=10)
        assert r.status_code == 200 and r.json()["result"]["isError"] is False
        remaining.append(int(r.headers["x-ratelimit-remaining"]))
    assert remaining == [5, 4, 3, 2, 1, 0]
    r = requests.post(s.url + "/mcp", json=call, headers=h, timeout=10)
    assert_error(r, 429, "rate_limited")

    # The SDK client sees the same refusal: the limit is spent.
    async def go(sess, _):
        return await sess.call_tool("whoami", {})
    with pytest.raises(BaseException):
        mcp(s, key, go)


def test_every_tool_does_what_its_rest_route_does(make_server):
    import os
    from receiver import Receiver
    rx = Receiver()
    try:
        s = make_server({"WEBHOOK_ALLOW_LOOPBACK": "true"})
        api = Api(s.url)
        a = api.signup()
        k = api.create_key(a["token"], scopes=ALL, label="agent")
        mp4 = b"\x00\x00\x00\x18ftypisom\x00\x00\x02\x00isomiso2" + os.urandom(4000)
        video = api.post("/api/media", token=k["key"], files={"file": ("v.mp4", mp4, "video/mp4")}).json()
        hook_path = rx.new_path()

        async def go(sess, _):
            out = {}
            call = sess.call_tool
            out["whoami"] = await call("whoami", {})
            out["create"] = await call("create_jes", {"content": "from an agent #mcp", "visibility": "PUBLIC",
                                                       "idempotencyKey": "mcp-create-1"})
            out["create_again"] = await call("create_jes", {"content": "from an agent #mcp", "visibility": "PUBLIC",
                                                             "idempotencyKey": "mcp-create-1"})
            jes = out["create"].structured_content["id"]
            out["edit"] = await call("edit_jes", {"id": jes, "content": "edited by an agent"})
            out["comment"] = await call("add_comment", {"jesId": jes, "content": "first!"})
            out["comments"] = await call("list_comments", {"jesId": jes, "limit": 10})
            out["bounce"] = await call("bounce_jes", {"id": jes, "content": "quote"})
            out["get"] = await call("get_jes", {"id": jes})
            out["clip"] = await call("create_jesclip", {"mediaId": video["id"], "caption": "clip", "visibility": "PUBLIC"})
            out["add_hook"] = await call("add_webhook", {"url": rx.url(hook_path), "events": ["webhook.test"]})
            hook = out["add_hook"].structured_content["id"]
            out["hooks"] = await call("list_webhooks", {})
            out["test_hook"] = await call("test_webhook", {"webhookId": hook})
            for _ in range(150):  # the delivery must land before the endpoint goes
                if rx.at(hook_path):
                    break
                await asyncio.sleep(0.2)
            out["remove_hook"] = await call("remove_webhook", {"webhookId": hook})
            out["delete"] = await call("delete_jes", {"id": jes})
            out["get_deleted"] = await call("get_jes", {"id": jes})
            return out

        out = mcp(s, k["key"], go)
        errors = {name: r.content[0].text for name, r in out.items() if r.is_error and name != "get_deleted"}
        assert not errors, errors
        sc = {name: r.structured_content for name, r in out.items()}
        assert sc["whoami"]["id"] == a["user"]["id"]
        assert sc["create"]["via"] == {"label": "agent"} and sc["create_again"]["id"] == sc["create"]["id"]
        assert sc["edit"]["content"] == "edited by an agent"
        assert [c["content"] for c in sc["comments"]["items"]] == ["first!"]
        assert sc["get"]["counts"]["comments"] == 1 and sc["get"]["counts"]["bounces"] == 1
        assert sc["clip"]["type"] == "jesclip" and sc["clip"]["video"]["id"] == video["id"]
        assert sc["add_hook"]["secret"].startswith("whsec_")
        assert [h["id"] for h in sc["hooks"]["items"]] == [sc["add_hook"]["id"]]
        assert out["get_deleted"].is_error and sc["get_deleted"]["error"]["code"] == "not_found"
        got = wait_hook(rx, hook_path)
        assert '"webhook.test"' in got[0]["body"]
        # What the tools did is visible over REST: one Jes was created, not two.
        mine = api.get(f"/api/users/{a['user']['username']}/posts", token=a["token"]).json()["items"]
        assert sum(1 for p in mine if p.get("content", "").startswith("from an agent")) == 0, "it was edited, then deleted"
    finally:
        rx.stop()


def wait_hook(rx, path, timeout=30):
    import time
    deadline = time.time() + timeout
    while time.time() < deadline:
        if rx.at(path):
            return rx.at(path)
        time.sleep(0.2)
    raise AssertionError("no delivery")


def test_get_jes_shows_counts_only_with_read_engagement(server, api: Api):
    a = api.signup()
    writer = api.create_key(a["token"], scopes=["write:jes"])["key"]
    analyst = api.create_key(a["token"], scopes=["write:jes", "read:engagement"])["key"]
    jes = api.post("/api/posts", token=writer, json={"content": "count me", "visibility": "PUBLIC"}).json()["id"]

    async def get(sess, _):
        return await sess.call_tool("get_jes", {"id": jes})
    assert "counts" not in mcp(server, writer, get).structured_content
    assert mcp(server, analyst, get).structured_content["counts"]["likes"] == 0


def test_a_jesclip_only_key_posts_a_clip_through_mcp_after_uploading(server, api: Api):
    """The MCP path for clips: upload over HTTP with the same key, then create_jesclip."""
    a = api.signup()
    key = api.create_key(a["token"], scopes=["write:jesclip"], label="clipper")["key"]
    mp4 = b"\x00\x00\x00\x18ftypisom\x00\x00\x02\x00isomiso2" + b"\x00" * 4000
    up = api.post("/api/media", token=key, files={"file": ("v.mp4", mp4, "video/mp4")})
    assert up.status_code == 201, up.text

    async def go(s, _):
        names = {t.name for t in (await s.list_tools()).tools}
        return names, await s.call_tool("create_jesclip", {"mediaId": up.json()["id"], "caption": "agent clip"})
    names, res = mcp(server, key, go)
    assert "create_jesclip" in names and "create_jes" not in names
    assert not res.is_error, res.content[0].text
    clip = res.structured_content
    assert clip["type"] == "jesclip" and clip["video"]["id"] == up.json()["id"] and clip["via"] == {"label": "clipper"}
