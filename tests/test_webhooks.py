"""Webhooks over HTTP (issue 7): management and its access rule, SSRF checks,
signed delivery through the real queue to a real local receiver, verified with
the reference Standard Webhooks library, retries, dead letters, 410 Gone,
disabling and re-enabling, scope filtering, account isolation and the outbox
sweep."""
from __future__ import annotations

import base64
import json
import os
import subprocess
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from conftest import ENV, ROOT, Api, assert_error

# Short schedule: 4 attempts (1 + 3 retries) within seconds.
FAST_VARS = {
    "WEBHOOK_RETRY_DELAYS": "1,2,3",
    "WEBHOOK_ALLOW_LOOPBACK": "true",
    "WEBHOOK_SECRET_KEY": base64.b64encode(os.urandom(32)).decode(),
}
ATTEMPTS = 4


# ---------------------------------------------------------------- receiver

class Receiver:
    """A local HTTP receiver on 127.0.0.1 that records every request and
    answers from a per-path script of status codes (then 200)."""

    def __init__(self):
        self.requests: list[dict] = []
        self.scripts: dict[str, list[int]] = {}
        self.always: dict[str, int] = {}
        self.lock = threading.Lock()
        self.port = 0
        self.httpd: ThreadingHTTPServer | None = None
        self.start()

    def start(self):
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("content-length", 0)))
                with receiver.lock:
                    receiver.requests.append({
                        "path": self.path, "headers": {k.lower(): v for k, v in self.headers.items()},
                        "body": body.decode(), "at": time.time(),
                    })
                    script = receiver.scripts.get(self.path)
                    status = script.pop(0) if script else receiver.always.get(self.path, 200)
                self.send_response(status)
                self.send_header("content-length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *args):
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self.port = self.httpd.server_address[1]
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def stop(self):
        if self.httpd:
            self.httpd.shutdown()
            self.httpd.server_close()
            self.httpd = None

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def new_path(self, statuses: list[int] | None = None, always: int | None = None) -> str:
        path = "/hook/" + uuid.uuid4().hex[:10]
        if statuses:
            self.scripts[path] = list(statuses)
        if always is not None:
            self.always[path] = always
        return path

    def at(self, path: str) -> list[dict]:
        with self.lock:
            return [r for r in self.requests if r["path"] == path]


def wait_for(what, cond, timeout: float = 45, every: float = 0.25):
    """Polls `cond` until it returns something truthy; fails naming `what`."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        got = cond()
        if got:
            return got
        time.sleep(every)
    raise AssertionError(f"timed out waiting for {what}")


# ---------------------------------------------------------------- fixtures

@pytest.fixture(scope="module")
def receiver():
    r = Receiver()
    yield r
    r.stop()


@pytest.fixture(scope="module")
def fast(make_server):
    return make_server(FAST_VARS)


@pytest.fixture(scope="module")
def fapi(fast) -> Api:
    return Api(fast.url)


def d1(server, sql: str) -> list[dict]:
    """Runs SQL on the instance's local D1 (the database the Worker uses)."""
    r = subprocess.run(
        ["wrangler", "d1", "execute", "DB", "--local", "--persist-to", server.state, "--command", sql, "--json"],
        cwd=ROOT, env=ENV, capture_output=True, text=True, check=True,
    )
    return json.loads(r.stdout)[0]["results"]


def hooks(key_id: str) -> str:
    return f"/api/auth/api-keys/{key_id}/webhooks"


def create_hook(api: Api, token: str, key_id: str, url: str, events=("webhook.test",)) -> dict:
    r = api.post(hooks(key_id), token=token, json={"url": url, "events": list(events)})
    assert r.status_code == 201, r.text
    return r.json()


def setup_account(api: Api, **key):
    acct = api.signup()
    if "scopes" not in key:
        key.setdefault("preset", "moderation")
    k = api.create_key(acct["token"], **key)
    return acct, k


def attempts(api: Api, token: str, key_id: str, hook_id: str) -> list[dict]:
    r = api.get(f"{hooks(key_id)}/{hook_id}/deliveries", token=token)
    assert r.status_code == 200, r.text
    return r.json()["items"]


def verify(secret: str, req: dict):
    return Webhook(secret).verify(req["body"], {
        "webhook-id": req["headers"]["webhook-id"],
        "webhook-timestamp": req["headers"]["webhook-timestamp"],
        "webhook-signature": req["headers"]["webhook-signature"],
    })


# ---------------------------------------------------------------- management

def test_a_session_creates_a_webhook_and_the_secret_is_shown_only_once(api: Api, receiver):
    acct, key = setup_account(api)
    url = receiver.url("/Hook/a?x=1")
    r = api.post(hooks(key["id"]), token=acct["token"],
                 json={"url": url, "events": ["webhook.test", "comment.created", "post.created", "comment.created"]})
    assert r.status_code == 201, r.text
    body = r.json()
    assert body["id"].startswith("wh_")
    assert body["secret"].startswith("whsec_") and len(base64.b64decode(body["secret"][6:])) >= 24
    assert body["url"] == url
    assert body["events"] == ["post.created", "comment.created", "webhook.test"], "deduplicated, catalog order"
    assert body["enabled"] is True and body["createdAt"].endswith("Z")
    assert r.headers["cache-control"] == "no-store"
    listed = api.get(hooks(key["id"]), token=acct["token"]).json()
    assert listed["nextCursor"] is None
    [item] = listed["items"]
    assert item["id"] == body["id"] and item["url"] == url and item["enabled"] is True
    assert "secret" not in item
    assert body["secret"] not in json.dumps(listed)


def test_a_key_with_webhooks_manage_manages_its_own_webhooks_and_no_other_keys(api: Api, receiver):
    acct, key_a = setup_account(api)
    key_b = api.create_key(acct["token"], preset="moderation", label="other")
    a = key_a["key"]
    mine = create_hook(api, a, key_a["id"], receiver.url("/a"))
    assert api.get(hooks(key_a["id"]), token=a).json()["items"][0]["id"] == mine["id"]
    theirs = create_hook(api, acct["token"], key_b["id"], receiver.url("/b"))
    # Every route, on a key of the same account: 404, never a hint it exists.
    b_hook = f"{hooks(key_b['id'])}/{theirs['id']}"
    for method, path, body in [
        ("POST", hooks(key_b["id"]), {"url": receiver.url("/x"), "events": ["webhook.test"]}),
        ("GET", hooks(key_b["id"]), None),
        ("PATCH", b_hook, {"enabled": False}),
        ("DELETE", b_hook, None),
        ("POST", b_hook + "/test", None),
        ("GET", b_hook + "/deliveries", None),
    ]:
        assert_error(api.call(method, path, token=a, json=body), 404, "not_found")
    # Nor can key A reach B's endpoint through its own key id.
    assert_error(api.delete(f"{hooks(key_a['id'])}/{theirs['id']}", token=a), 404, "not_found")
    assert [h["id"] for h in api.get(hooks(key_b["id"]), token=acct["token"]).json()["items"]] == [theirs["id"]]


def test_a_key_without_webhooks_manage_is_refused_and_sessions_of_other_accounts_see_nothing(api: Api, receiver):
    acct, key = setup_account(api, scopes=["write:jes"])
    r = api.get(hooks(key["id"]), token=key["key"])
    assert_error(r, 403, "insufficient_scope")
    hook = create_hook(api, acct["token"], key["id"], receiver.url("/c"), ["post.created"])
    stranger = api.signup()
    assert_error(api.get(hooks(key["id"]), token=stranger["token"]), 404, "not_found")
    assert_error(api.delete(f"{hooks(key['id'])}/{hook['id']}", token=stranger["token"]), 404, "not_found")
    assert_error(api.get(hooks("01JUNKJUNKJUNKJUNKJUNKJUNK"), token=acct["token"]), 404, "not_found")


@pytest.mark.parametrize("url,reason", [
    ("http://hooks.example.com/in", "https"),
    ("https://user:pw@hooks.example.com/in", "credentials"),
    ("https://10.0.0.8/in", "private"),
    ("https://192.168.1.20/in", "private"),
    ("https://172.20.0.1/in", "private"),
    ("https://100.64.1.1/in", "carrier-grade NAT"),
    ("https://169.254.169.254/latest/meta-data/", "metadata"),
    ("https://169.254.1.1/", "link-local"),
    ("https://127.0.0.2/", "loopback"),
    ("https://[::2]/", "IPv4-compatible"),
    ("https://[fd12::1]/", "unique-local"),
    ("https://[::ffff:10.0.0.1]/", "IPv4-mapped"),
    ("https://2130706433/", "dotted-quad"),
    ("https://0x7f.0.0.1/", "dotted-quad"),
    ("https://metadata.google.internal/", "internal"),
    ("https://printer.local/", "internal"),
    ("https://hooks.example.com:6379/", "port 6379"),
    ("ftp://hooks.example.com/", "https"),
    ("not a url", "ASCII"),
])
def test_webhook_urls_that_could_reach_internal_networks_are_refused_naming_the_reason(api: Api, url, reason):
    acct, key = setup_account(api)
    r = api.post(hooks(key["id"]), token=acct["token"], json={"url": url, "events": ["webhook.test"]})
    err = assert_error(r, 400, "invalid_request")
    assert err["message"].startswith("url:") and reason in err["message"], err
    assert api.get(hooks(key["id"]), token=acct["token"]).json()["items"] == [], "nothing was written"


def test_without_the_loopback_setting_http_to_127_0_0_1_is_refused(make_server):
    strict = make_server({"WEBHOOK_ALLOW_LOOPBACK": "false"})
    sapi = Api(strict.url)
    acct, key = setup_account(sapi)
    for url in ("http://127.0.0.1:9999/in", "https://127.0.0.1/in", "http://localhost:9999/in"):
        r = sapi.post(hooks(key["id"]), token=acct["token"], json={"url": url, "events": ["webhook.test"]})
        assert assert_error(r, 400, "invalid_request")["message"].startswith("url:")
    r = sapi.post(hooks(key["id"]), token=acct["token"], json={"url": "https://hooks.example.com/in", "events": ["webhook.test"]})
    assert r.status_code == 201, r.text


@pytest.mark.parametrize("scopes,events,needle", [
    (["write:jes", "webhooks:manage"], ["comment.created"], "read:comment"),
    (["read:comment", "webhooks:manage"], ["post.created"], "write:jes, read:engagement"),
    (["write:jes", "webhooks:manage"], ["jesclip.created"], "write:jesclip"),
    (["webhooks:manage"], ["post.bounced"], "post.bounced"),
    (["read:comment", "webhooks:manage"], ["post.exploded"], "unknown event type"),
    (["read:comment", "webhooks:manage"], [], "at least one"),
])
def test_events_must_be_known_and_visible_to_the_keys_scopes(api: Api, receiver, scopes, events, needle):
    acct = api.signup()
    key = api.create_key(acct["token"], scopes=scopes)
    for token in (acct["token"], key["key"]):  # the session is held to the key's scopes too
        r = api.post(hooks(key["id"]), token=token, json={"url": receiver.url("/e"), "events": events})
        err = assert_error(r, 400, "invalid_request")
        assert err["message"].startswith("events:") and needle in err["message"], err


def test_bad_bodies_are_400s_naming_the_field(api: Api, receiver):
    acct, key = setup_account(api)
    assert "url" in assert_error(api.post(hooks(key["id"]), token=acct["token"], json={"events": ["webhook.test"]}),
                                 400, "invalid_request")["message"]
    assert "events" in assert_error(api.post(hooks(key["id"]), token=acct["token"], json={"url": receiver.url("/x")}),
                                    400, "invalid_request")["message"]
    hook = create_hook(api, acct["token"], key["id"], receiver.url("/x"))
    r = api.patch(f"{hooks(key['id'])}/{hook['id']}", token=acct["token"], json={})
    assert "enabled" in assert_error(r, 400, "invalid_request")["message"]


def test_each_key_holds_at_most_ten_endpoints(api: Api, receiver):
    acct, key = setup_account(api)
    for i in range(10):
        create_hook(api, acct["token"], key["id"], receiver.url(f"/n{i}"))
    r = api.post(hooks(key["id"]), token=acct["token"], json={"url": receiver.url("/n10"), "events": ["webhook.test"]})
    assert_error(r, 409, "conflict")
    page = api.get(hooks(key["id"]) + "?limit=6", token=acct["token"]).json()
    rest = api.get(hooks(key["id"]) + f"?limit=6&cursor={page['nextCursor']}", token=acct["token"]).json()
    assert len(page["items"]) == 6 and len(rest["items"]) == 4 and rest["nextCursor"] is None
    assert len({h["id"] for h in page["items"] + rest["items"]}) == 10


def test_deleting_an_endpoint_answers_204_and_it_is_gone(api: Api, receiver):
    acct, key = setup_account(api)
    hook = create_hook(api, acct["token"], key["id"], receiver.url("/d"))
    r = api.delete(f"{hooks(key['id'])}/{hook['id']}", token=key["key"])
    assert r.status_code == 204, r.text
    assert api.get(hooks(key["id"]), token=acct["token"]).json()["items"] == []
    assert_error(api.delete(f"{hooks(key['id'])}/{hook['id']}", token=key["key"]), 404, "not_found")
    assert_error(api.post(f"{hooks(key['id'])}/{hook['id']}/test", token=key["key"]), 404, "not_found")


def test_a_revoked_key_gets_no_new_webhooks_and_its_endpoints_cannot_be_tested(api: Api, receiver):
    acct, key = setup_account(api)
    hook = create_hook(api, acct["token"], key["id"], receiver.url("/r"))
    assert api.delete(f"/api/auth/api-keys/{key['id']}", token=acct["token"]).status_code == 204
    r = api.post(hooks(key["id"]), token=acct["token"], json={"url": receiver.url("/r2"), "events": ["webhook.test"]})
    assert_error(r, 409, "conflict")
    assert_error(api.post(f"{hooks(key['id'])}/{hook['id']}/test", token=acct["token"]), 409, "conflict")
    assert [h["id"] for h in api.get(hooks(key["id"]), token=acct["token"]).json()["items"]] == [hook["id"]]
