"""OAuth Client ID Metadata Documents (docs/design/oauth.md 3.3): a client_id
that is a URL names a JSON document the client publishes; the server fetches
it (no redirects, 8 KiB, JSON only), holds it to the registration rules and to
naming itself, caches it for its lifetime and never uses a stale copy. The
MCP SDK demands an https document URL, so these run over HTTP: the test
server runs with CIMD_ALLOW_LOOPBACK=true (conftest) and a loopback
http.server here serves the documents and counts its hits."""
from __future__ import annotations

import json
import threading
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from conftest import Api, d1_query, wait_clear_of_window_end
from oauth import address, authorize_query, consent, exchange, pkce, query_of

CB = "http://127.0.0.1:8765/callback"


class Documents:
    """A loopback web server: path -> (status, headers, body); hits per path."""

    def __init__(self):
        self.routes: dict[str, tuple[int, dict, bytes]] = {}
        self.hits: dict[str, int] = {}
        docs = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):
                docs.hits[self.path] = docs.hits.get(self.path, 0) + 1
                status, headers, body = docs.routes.get(self.path, (404, {"Content-Type": "text/plain"}, b"no"))
                self.send_response(status)
                for k, v in headers.items():
                    self.send_header(k, v)
                if "Content-Length" not in headers and not headers.get("X-No-Length"):
                    self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.base = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def url(self) -> str:
        """A fresh document URL (each test its own: the server caches per URL)."""
        return f"{self.base}/{uuid.uuid4().hex[:8]}/client.json"

    def serve(self, url: str, body, status: int = 200, headers: dict | None = None) -> None:
        raw = body if isinstance(body, bytes) else json.dumps(body).encode()
        self.routes[url[len(self.base):]] = (status, {"Content-Type": "application/json", **(headers or {})}, raw)

    def hits_of(self, url: str) -> int:
        return self.hits.get(url[len(self.base):], 0)


@pytest.fixture(scope="module")
def docs():
    d = Documents()
    yield d
    d.httpd.shutdown()


def document(url: str, **over) -> dict:
    return {"client_id": url, "client_name": "Doc Agent", "redirect_uris": [CB],
            "grant_types": ["authorization_code", "refresh_token"], "response_types": ["code"],
            "token_endpoint_auth_method": "none", **over}


def authorize(api: Api, query: str):
    """From an address of its own: document fetches are bounded per address
    (test_document_fetches_are_bounded_per_address)."""
    return api.http.get(api.url + "/oauth/authorize?" + query, headers={"CF-Connecting-IP": address()},
                        allow_redirects=False, timeout=30)


def refused_on_our_page(r, error: str = "invalid_client") -> dict:
    assert r.status_code == 302, r.text
    loc = r.headers["location"]
    assert loc.startswith("/#/oauth/error?"), loc
    q = query_of(loc.replace("/#/oauth/error", ""))
    assert q["error"] == error, q
    return q


def test_a_document_client_is_authorized_end_to_end_and_its_copy_cached(api: Api, server, docs: Documents):
    url = docs.url()
    docs.serve(url, document(url), headers={"Cache-Control": "public, max-age=600"})
    verifier, challenge = pkce()
    q = authorize_query(url, CB, challenge)
    r = authorize(api, q)
    assert r.status_code == 302 and r.headers["location"] == "/#/oauth/authorize?" + q, r.headers.get("location")
    assert docs.hits_of(url) == 1
    row = d1_query(server, f"SELECT * FROM oauth_clients WHERE id = '{url}'")[0]
    assert row["kind"] == "cimd" and row["client_name"] == "Doc Agent"
    assert row["metadata_expires_at"] - row["metadata_fetched_at"] == 600_000

    a = api.signup()
    info = api.get("/api/oauth/authorize?" + q, token=a["token"])
    assert info.status_code == 200, info.text
    client = info.json()["client"]
    assert client["name"] == "Doc Agent" and client["kind"] == "cimd" and client["id"] == url
    assert client["host"] == docs.base.removeprefix("http://")
    r = consent(api, a["token"], q)
    assert r.status_code == 200, r.text
    code = query_of(r.json()["redirectTo"])["code"]
    t = exchange(api, url, code, CB, verifier)
    assert t.status_code == 200, t.text
    assert api.get("/api/auth/me", token=t.json()["access_token"]).status_code == 200
    assert docs.hits_of(url) == 1, "a fresh copy is used without fetching"

    # Past its lifetime the document is fetched again, and what it says now counts.
    d1_query(server, f"UPDATE oauth_clients SET metadata_expires_at = 0 WHERE id = '{url}'")
    docs.serve(url, document(url, client_name="Doc Agent 2"))
    assert api.get("/api/oauth/authorize?" + q, token=a["token"]).json()["client"]["name"] == "Doc Agent 2"
    assert docs.hits_of(url) == 2
    row = d1_query(server, f"SELECT * FROM oauth_clients WHERE id = '{url}'")[0]
    assert row["metadata_expires_at"] - row["metadata_fetched_at"] == 3_600_000, "no Cache-Control: an hour"

    # A stale copy is never used: when the refetch fails, the client is refused.
    d1_query(server, f"UPDATE oauth_clients SET metadata_expires_at = 0 WHERE id = '{url}'")
    docs.serve(url, b"gone", status=404, headers={"Content-Type": "text/plain"})
    refused_on_our_page(authorize(api, q))
    assert docs.hits_of(url) == 3
    t = api.http.post(api.url + "/oauth/token", timeout=30,
                      data={"grant_type": "refresh_token", "refresh_token": t.json()["refresh_token"], "client_id": url})
    assert t.status_code == 401 and t.json()["error"] == "invalid_client", t.text


@pytest.mark.parametrize("case", ["client_id", "private_key_jwt", "no_name", "html", "not_json", "404", "302",
                                  "9kb", "9kb_unannounced", "array"])
def test_a_bad_or_unavailable_document_refuses_the_client_on_our_page(api: Api, docs: Documents, case):
    url = docs.url()
    good = document(url)
    if case == "client_id":
        docs.serve(url, document(url + "x"))
    elif case == "private_key_jwt":
        docs.serve(url, document(url, token_endpoint_auth_method="private_key_jwt"))
    elif case == "no_name":
        docs.serve(url, {k: v for k, v in good.items() if k != "client_name"})
    elif case == "html":
        docs.serve(url, good, headers={"Content-Type": "text/html"})
    elif case == "not_json":
        docs.serve(url, b"{client_id: nope", headers={"Content-Type": "application/json"})
    elif case == "404":
        pass  # nothing served there
    elif case == "302":
        target = docs.url()
        docs.serve(target, document(url))
        docs.serve(url, b"", status=302, headers={"Location": target})
    elif case.startswith("9kb"):
        docs.serve(url, document(url, padding="x" * 9 * 1024),
                   headers={"X-No-Length": "1", "Connection": "close"} if case == "9kb_unannounced" else None)
    elif case == "array":
        docs.serve(url, [good])
    _, challenge = pkce()
    q = authorize_query(url, CB, challenge)
    # The failure throttle's minute is aligned: both tries must fall in one.
    wait_clear_of_window_end(60, 5)
    desc = refused_on_our_page(authorize(api, q))["error_description"]
    assert "metadata document" in desc, desc
    assert docs.hits_of(url) == 1
    if case == "302":
        assert docs.hits_of(docs.routes[url[len(docs.base):]][1]["Location"]) == 0, "redirects are not followed"
    # A failed document is not fetched again at once (at most once a minute).
    refused_on_our_page(authorize(api, q))
    assert docs.hits_of(url) == 1
    t = api.http.post(api.url + "/oauth/token", timeout=30,
                      data={"grant_type": "authorization_code", "code": "x", "client_id": url, "code_verifier": "x",
                            "redirect_uri": CB})
    assert t.status_code == 401 and t.json()["error"] == "invalid_client", t.text


def test_a_redirect_uri_the_document_does_not_list_is_never_redirected_to(api: Api, docs: Documents):
    url = docs.url()
    docs.serve(url, document(url))
    _, challenge = pkce()
    for redirect in ("https://evil.example/cb", "http://127.0.0.1:8765/other"):
        r = authorize(api, authorize_query(url, redirect, challenge, response_type="token"))
        refused_on_our_page(r, "invalid_request")
        assert "evil" not in r.headers["location"]
    assert docs.hits_of(url) == 1


@pytest.mark.parametrize("url", ["http://127.0.0.1:9/c.json?x=1", "http://127.0.0.1:9/", "http://127.0.0.1:9/a/../c",
                                 "https://localhost/c.json", "http://10.0.0.1/c.json"])
def test_urls_outside_the_rules_are_refused_without_a_fetch(api: Api, url):
    _, challenge = pkce()
    refused_on_our_page(authorize(api, authorize_query(url, CB, challenge)))


def test_without_cimd_allow_loopback_only_https_documents_are_fetched(make_server, docs: Documents):
    s = make_server({"CIMD_ALLOW_LOOPBACK": "false"})
    api = Api(s.url)
    url = docs.url()
    docs.serve(url, document(url))
    _, challenge = pkce()
    refused_on_our_page(authorize(api, authorize_query(url, CB, challenge)))
    assert docs.hits_of(url) == 0
    assert api.get("/.well-known/oauth-authorization-server").json()["client_id_metadata_document_supported"] is True


def test_document_fetches_are_bounded_per_address(api: Api, docs: Documents):
    """Each fetch is an outbound request and a row: one address may make the
    server fetch 30 documents an hour (a cached copy costs nothing)."""
    def from_(ip: str, url: str):
        q = authorize_query(url, CB, pkce()[1])
        return api.http.get(api.url + "/oauth/authorize?" + q, headers={"CF-Connecting-IP": ip},
                            allow_redirects=False, timeout=30)

    ip = address()
    urls = [docs.url() for _ in range(31)]
    for u in urls:
        docs.serve(u, b"gone", status=404, headers={"Content-Type": "text/plain"})
    for u in urls[:30]:
        refused_on_our_page(from_(ip, u))
    assert [docs.hits_of(u) for u in urls[:30]] == [1] * 30
    last = urls[30]
    docs.serve(last, document(last))
    refused_on_our_page(from_(ip, last))
    assert docs.hits_of(last) == 0, "the 31st document of the hour is refused without a fetch"
    r = from_(address(), last)
    assert r.status_code == 302 and r.headers["location"].startswith("/#/oauth/authorize?"), r.headers.get("location")
    assert docs.hits_of(last) == 1, "another address is not held back"
