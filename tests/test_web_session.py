"""The web UI's transport over HTTP: session and CSRF cookies, the CSRF check on
unsafe methods, and the static shell's security headers. The browser flows
themselves are in tests/browser (node --test with Debian's chromium)."""
from __future__ import annotations

import re
import uuid
from pathlib import Path

from conftest import assert_error

PUBLIC = Path(__file__).resolve().parent.parent / "public"


def set_cookies(r) -> dict[str, str]:
    """name -> the whole Set-Cookie line."""
    out = {}
    for line in r.raw.headers.getlist("Set-Cookie"):
        out[line.split("=", 1)[0]] = line
    return out


def attrs(line: str) -> set[str]:
    return {a.strip() for a in line.split(";")[1:]}


def value(line: str) -> str:
    return line.split(";", 1)[0].split("=", 1)[1]


def signup_with_cookies(api, transport: str | None = "cookie"):
    name = "w" + uuid.uuid4().hex[:12]
    headers = {"X-Session-Transport": transport} if transport else {}
    r = api.post("/api/auth/signup", headers=headers,
                 json={"username": name, "email": f"{name}@example.com", "password": "correct horse battery"})
    assert r.status_code == 201, r.text
    c = set_cookies(r)
    return r, name, value(c["__Host-jes_session"]), value(c["__Host-jes_csrf"])


def test_signup_sets_an_http_only_strict_session_cookie_and_a_script_readable_csrf_cookie(api):
    r, _, token, csrf = signup_with_cookies(api)
    c = set_cookies(r)
    assert token.startswith("jes_sess_")
    assert {"HttpOnly", "Secure", "SameSite=Strict", "Path=/"} <= attrs(c["__Host-jes_session"])
    assert "Max-Age=1209600" in attrs(c["__Host-jes_session"])
    assert {"Secure", "SameSite=Strict", "Path=/"} <= attrs(c["__Host-jes_csrf"])
    assert "HttpOnly" not in attrs(c["__Host-jes_csrf"])
    # The __Host- prefix: browsers keep such a cookie only with Secure, Path=/ and no Domain.
    for line in c.values():
        assert {"Secure", "Path=/"} <= attrs(line), line
        assert not any(a.lower().startswith("domain") for a in attrs(line)), line
    # The first release's names are expired, so a browser stops sending them.
    for old in ("jes_session", "jes_csrf"):
        assert value(c[old]) == "" and "Max-Age=0" in attrs(c[old])
    assert re.fullmatch(r"[0-9a-f]{64}", csrf)


def test_the_cookie_transport_keeps_the_token_out_of_the_body_and_bearer_clients_still_get_it(api):
    r, name, token, _ = signup_with_cookies(api)
    assert "token" not in r.json()["session"]
    assert r.json()["session"]["expiresAt"]
    assert token not in r.text
    r = api.post("/api/auth/login", json={"login": name, "password": "correct horse battery"})
    assert r.status_code == 200
    assert r.json()["session"]["token"].startswith("jes_sess_")
    assert set(set_cookies(r)) == {"__Host-jes_session", "__Host-jes_csrf", "jes_session", "jes_csrf"}


def test_a_cookie_session_reads_freely_but_unsafe_requests_need_the_matching_csrf_header(api):
    _, name, token, csrf = signup_with_cookies(api)
    cookie = {"Cookie": f"__Host-jes_session={token}; __Host-jes_csrf={csrf}"}
    r = api.get("/api/auth/me", headers=cookie)
    assert r.status_code == 200 and r.json()["username"] == name
    body = {"label": "from the web", "scopes": ["write:jes"]}
    for extra in ({}, {"X-CSRF-Token": "0" * 64}, {"X-CSRF-Token": ""}):
        assert_error(api.post("/api/auth/api-keys", headers={**cookie, **extra}, json=body), 403, "forbidden")
    # A forged request that sets its own header but cannot read the victim's CSRF cookie.
    forged = {"Cookie": f"__Host-jes_session={token}", "X-CSRF-Token": "x"}
    assert_error(api.post("/api/auth/api-keys", headers=forged, json=body), 403, "forbidden")
    assert api.get("/api/auth/api-keys", headers=cookie).json()["items"] == []
    # The old, unprefixed name is no session: a sibling subdomain could have planted it.
    assert_error(api.get("/api/auth/me", headers={"Cookie": f"jes_session={token}; jes_csrf={csrf}"}), 401, "unauthenticated")
    r = api.post("/api/auth/api-keys", headers={**cookie, "X-CSRF-Token": csrf}, json=body)
    assert r.status_code == 201, r.text


def test_requests_answered_before_their_body_is_read_leave_the_server_healthy(api):
    """Early answers (403 CSRF, 401 bad key, 404, 415, 413) with a body, each
    followed at once by a request that must succeed: the local runtime used to
    fail that next request with a 503 when a body was left unread."""
    _, _, token, csrf = signup_with_cookies(api)
    cookie = {"Cookie": f"__Host-jes_session={token}; __Host-jes_csrf={csrf}"}
    early = [
        (lambda: api.post("/api/auth/api-keys", headers=cookie, json={"label": "x", "scopes": ["write:jes"]}), 403),
        (lambda: api.post("/api/auth/api-keys", headers={"Authorization": "Bearer jes_live_nope"}, json={"label": "x"}), 401),
        (lambda: api.post("/api/no-such-route", json={"a": 1}), 404),
        (lambda: api.post("/api/auth/signup", data="username=ada", headers={"Content-Type": "application/x-www-form-urlencoded"}), 415),
        (lambda: api.post("/api/auth/signup", data=b'{"username":"' + b"a" * (70 * 1024) + b'"}', headers={"Content-Type": "application/json"}), 413),
    ]
    for _ in range(2):
        for call, status in early:
            assert call().status_code == status
            name = "n" + uuid.uuid4().hex[:12]
            r = api.post("/api/auth/signup", json={"username": name, "email": f"{name}@example.com", "password": "correct horse battery"})
            assert r.status_code == 201, r.text


def test_logout_clears_both_cookies_and_the_old_cookie_no_longer_works(api):
    _, _, token, csrf = signup_with_cookies(api)
    cookie = {"Cookie": f"__Host-jes_session={token}; __Host-jes_csrf={csrf}"}
    assert_error(api.post("/api/auth/logout", headers=cookie), 403, "forbidden")
    r = api.post("/api/auth/logout", headers={**cookie, "X-CSRF-Token": csrf})
    assert r.status_code == 204
    c = set_cookies(r)
    for name in ("__Host-jes_session", "__Host-jes_csrf", "jes_session", "jes_csrf"):
        assert value(c[name]) == "" and "Max-Age=0" in attrs(c[name])
    assert "HttpOnly" in attrs(c["__Host-jes_session"])
    assert_error(api.get("/api/auth/me", headers=cookie), 401, "invalid_session")


CSP_REQUIRED = [
    "default-src 'none'", "script-src 'self'", "style-src 'self'", "img-src 'self' data: blob:",
    "connect-src 'self'", "font-src 'self'", "frame-ancestors 'none'", "base-uri 'none'", "form-action 'self'",
]


def test_the_web_ui_shell_is_served_with_a_strict_content_security_policy(api):
    for path in ("/", "/index.html", "/app.css", "/js/app.js"):
        r = api.get(path, allow_redirects=False) if path != "/index.html" else api.get(path)
        assert r.status_code == 200, (path, r.status_code)
        csp = [d.strip() for d in r.headers["content-security-policy"].split(";")]
        for d in CSP_REQUIRED:
            assert d in csp, (path, d, csp)
        assert not any("unsafe" in d for d in csp)
        assert r.headers["x-frame-options"] == "DENY"
        assert r.headers["x-content-type-options"] == "nosniff"
        assert r.headers["referrer-policy"] == "no-referrer"
    r = api.get("/")
    assert r.headers["content-type"].startswith("text/html")
    assert "javascript" in api.get("/js/app.js").headers["content-type"]


def test_ui_files_revalidate_with_an_etag_and_only_get_and_head_serve_them(api):
    # Static assets: the platform answers them (ETag, 304, HEAD), _headers adds ours.
    r = api.get("/app.css")
    assert r.headers["cache-control"] == "no-cache"
    tag = r.headers["etag"]
    again = api.get("/app.css", headers={"If-None-Match": tag})
    assert again.status_code == 304 and again.content == b""
    assert again.headers["etag"] == tag
    head = api.call("HEAD", "/js/app.js")
    assert head.status_code == 200 and head.content == b""
    assert head.headers["etag"] == api.get("/js/app.js").headers["etag"]
    # Routes run the Worker first; /openapi.json is a route that reads its file from the assets.
    for path in ("/health", "/openapi.json"):
        head = api.call("HEAD", path)
        assert head.status_code == 200 and head.content == b"", path
        assert int(head.headers["content-length"]) == len(api.get(path).content), path
        assert head.headers["x-request-id"].startswith("req_"), path
    doc = api.get("/openapi.json")
    assert doc.headers["cache-control"] == "no-cache" and doc.json()["openapi"].startswith("3.1")
    again = api.get("/openapi.json", headers={"If-None-Match": doc.headers["etag"]})
    assert again.status_code == 304 and again.content == b"" and again.headers["etag"] == doc.headers["etag"]
    head = api.call("HEAD", "/openapi.json", headers={"If-None-Match": doc.headers["etag"]})
    # A 304 states no length, or the 200's (RFC 9110 8.6), never the 0 of its missing body.
    assert head.status_code == 304 and head.headers.get("content-length", str(len(doc.content))) == str(len(doc.content))
    assert_error(api.post("/openapi.json", json={}), 405, "method_not_allowed")
    # The UI's files take no writes (the platform's bare 405); any other path is the Worker's.
    r = api.post("/", json={})
    assert r.status_code == 405 and r.content == b""
    assert_error(api.post("/no-such-page", json={}), 404, "not_found")
    assert_error(api.get("/js/../Cargo.toml"), 404, "not_found")
    assert_error(api.get("/_headers"), 404, "not_found")


def test_api_paths_always_reach_the_worker_and_unknown_paths_get_the_envelope(api):
    assert api.get("/health").json() == {"status": "ok"}
    assert_error(api.get("/api/no-such-route"), 404, "not_found")
    assert_error(api.get("/no-such-page"), 404, "not_found")
    for path in ("/api/auth/me", "/health", "/openapi.json", "/mcp"):
        assert api.get(path).headers.get("x-request-id", "").startswith("req_"), path


VENDOR = PUBLIC / "docs" / "vendor"


def test_the_static_files_carry_no_inline_script_or_style_and_never_build_html_from_strings():
    html = (PUBLIC / "index.html").read_text()
    for tag in re.findall(r"<script\b[^>]*>", html):
        assert "src=" in tag, tag
    assert re.search(r"<script\b[^>]*>\s*[^<\s]", html) is None, "inline script body"
    assert "<style" not in html and not re.search(r"\sstyle=", html)
    assert not re.search(r"\son[a-z]+=", html), "inline event handler"
    # public/docs/vendor is Swagger UI, copied from node_modules by the build (pinned in
    # package-lock.json, gitignored): not our code; /docs runs it under the same CSP.
    for js in (p for p in PUBLIC.rglob("*.js") if VENDOR not in p.parents):
        src = js.read_text()
        for banned in ("innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval(", "new Function", ".style."):
            assert banned not in src, f"{js.name} uses {banned}"
        # A vendored file's license banner (/*! ... */) may name its author's page: not a host the code reaches.
        code = re.sub(r"/\*!.*?\*/", "", src, flags=re.S)
        hosts = code.replace("http://127.0.0.1", "").replace("http://www.w3.org/2000/svg", "").replace("https://example.com", "")
        assert "http://" not in hosts and "https://" not in hosts, f"{js.name} names an outside host"
