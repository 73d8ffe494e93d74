"""Hostile input over HTTP: each gets the right 4xx envelope and writes nothing.
Content- and webhook-specific cases live with their routes."""
import http.client
import json
from urllib.parse import urlparse

from conftest import Api, assert_error


def raw(server, method: str, path: str, headers: list[tuple[str, str]], body: bytes = b""):
    """Sends exactly these headers (repeats allowed), bypassing client normalisation."""
    u = urlparse(server.url)
    conn = http.client.HTTPConnection(u.hostname, u.port, timeout=15)
    conn.putrequest(method, path, skip_accept_encoding=True)
    for k, v in headers:
        conn.putheader(k, v)
    if body:
        conn.putheader("Content-Length", str(len(body)))
    conn.endheaders(body or None)
    r = conn.getresponse()
    data = r.read()
    conn.close()
    return r.status, {k.lower(): v for k, v in r.getheaders()}, (json.loads(data) if data else None)


def test_authorization_header_variants(server, api: Api):
    a = api.signup()
    key = api.create_key(a["token"], scopes=["read:comment"])["key"]
    ok = [f"Bearer {key}", f"bearer {key}", f"BEARER {key}", f"Bearer   {key}", f"Bearer {key}  "]
    for value in ok:
        status, _, body = raw(server, "GET", "/api/auth/me", [("Authorization", value)])
        assert status == 200, (value, body)
    refused = {
        f"Bearer {key} {key}": (401, "invalid_api_key"),
        f"Bearer {key},{key}": (401, "invalid_api_key"),
        f"Token {key}": (401, "unauthenticated"),
        f"Basic {key}": (401, "unauthenticated"),
        key: (401, "unauthenticated"),
        "Bearer": (401, "unauthenticated"),
        "Bearer ": (401, "invalid_api_key"),
        f"Bearer\t{key}": (401, "unauthenticated"),
    }
    for value, (code, err) in refused.items():
        status, headers, body = raw(server, "GET", "/api/auth/me", [("Authorization", value)])
        assert (status, body["error"]["code"]) == (code, err), (value, status, body)
        assert "x-request-id" in headers
    # The Workers runtime folds repeated headers into one ("a, b"): two tokens are refused as one bad token.
    status, _, body = raw(server, "GET", "/api/auth/me", [("Authorization", f"Bearer {key}"), ("Authorization", f"Bearer {key}")])
    assert (status, body["error"]["code"]) == (401, "invalid_api_key")


def test_deeply_nested_and_duplicate_key_json_are_400s(api: Api):
    h = {"Content-Type": "application/json"}
    deep = b'{"username":' + b"[" * 5000 + b"]" * 5000 + b"}"
    assert_error(api.post("/api/auth/signup", data=deep, headers=h), 400, "invalid_request")
    dup = b'{"username":"dupe_a","username":"dupe_b","email":"d@example.com","password":"correct horse battery"}'
    err = assert_error(api.post("/api/auth/signup", data=dup, headers=h), 400, "invalid_request")
    assert "duplicate field" in err["message"] and "username" in err["message"]
    r = api.post("/api/auth/login", json={"login": "dupe_a", "password": "correct horse battery"})
    assert_error(r, 401, "invalid_credentials")


def test_missing_or_lying_content_types_are_415(api: Api):
    body = json.dumps({"username": "ct_user", "email": "ct@example.com", "password": "correct horse battery"})
    for ctype in (None, "text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x"):
        h = {"Content-Type": ctype} if ctype else {}
        r = api.post("/api/auth/signup", data=body.encode(), headers=h)
        assert_error(r, 415, "unsupported_media_type")
    assert api.post("/api/auth/signup", data=body.encode(), headers={"Content-Type": "application/json; charset=utf-8"}).status_code == 201


def test_nul_bytes_and_overlong_strings_are_refused_without_a_write(api: Api):
    for name in ("nul\u0000user", "x" * 10_000):
        r = api.post("/api/auth/signup", json={"username": name, "email": "n@example.com", "password": "correct horse battery"})
        assert_error(r, 400, "invalid_request")
    r = api.post("/api/auth/login", json={"login": "n@example.com", "password": "correct horse battery"})
    assert_error(r, 401, "invalid_credentials")


def test_ids_of_other_accounts_and_garbage_ids_are_404(api: Api):
    a, b = api.signup(), api.signup()
    kb = api.create_key(b["token"])
    for path in (f"/api/auth/api-keys/{kb['id']}", "/api/auth/api-keys/%00", "/api/auth/api-keys/..%2F..%2Fetc",
                 "/api/auth/api-keys/" + "x" * 500):
        assert_error(api.delete(path, token=a["token"]), 404, "not_found")
    assert api.get("/api/auth/me", token=kb["key"]).status_code == 200


def test_query_and_path_oddities_never_5xx(api: Api):
    a = api.signup()
    for path in ("/api/auth/api-keys?limit=%FF", "/api/auth/api-keys?limit=1&limit=2", "/api/auth/api-keys?cursor=%00",
                 "/api/auth/api-keys?cursor=" + "A" * 5000, "/api//auth/me", "/api/auth/me/"):
        r = api.get(path, token=a["token"])
        assert 400 <= r.status_code < 500 or r.status_code == 200, (path, r.status_code)
        if r.status_code >= 400:
            assert r.json()["error"]["code"]


def test_truncated_and_malformed_multipart_are_400s_and_write_nothing(server, api: Api):
    from conftest import d1_query
    a = api.signup()
    key = api.create_key(a["token"], scopes=["write:jes", "write:jesclip"])["key"]
    mp4 = b"\x00\x00\x00\x18ftypisom\x00\x00\x02\x00isomiso2" + b"\x00" * 2000
    head = (b"--XBOUNDARY\r\nContent-Disposition: form-data; name=\"caption\"\r\n\r\nhi\r\n"
            b"--XBOUNDARY\r\nContent-Disposition: form-data; name=\"video\"; filename=\"v.mp4\"\r\n"
            b"Content-Type: video/mp4\r\n\r\n")
    bodies = {
        "no closing boundary": head + mp4,
        "cut inside the headers": head[:70],
        "wrong boundary": head.replace(b"XBOUNDARY", b"OTHER") + mp4 + b"\r\n--OTHER--\r\n",
    }
    before = d1_query(server, "SELECT COUNT(*) AS n FROM media")[0]["n"]
    for name, body in bodies.items():
        for path in ("/api/jesclips", "/api/posts"):
            r = api.post(path, token=key, data=body, headers={"Content-Type": "multipart/form-data; boundary=XBOUNDARY"})
            assert 400 <= r.status_code < 500, (name, path, r.status_code, r.text)
            assert r.json()["error"]["code"] in ("invalid_request", "unsupported_media_type"), (name, r.text)
    assert d1_query(server, "SELECT COUNT(*) AS n FROM media")[0]["n"] == before


def test_forged_and_replayed_webhook_test_calls(server, api: Api):
    a, b = api.signup(), api.signup()
    ka = api.create_key(a["token"], scopes=["webhooks:manage"])
    kb = api.create_key(b["token"], scopes=["webhooks:manage"])
    hook = api.post(f"/api/auth/api-keys/{kb['id']}/webhooks", token=kb["key"],
                    json={"url": "https://hooks.example.com/jestha", "events": ["webhook.test"]}).json()
    # Forged: another account's key naming B's key and endpoint, or its own key with B's endpoint.
    for path in (f"/api/auth/api-keys/{kb['id']}/webhooks/{hook['id']}/test",
                 f"/api/auth/api-keys/{ka['id']}/webhooks/{hook['id']}/test"):
        assert_error(api.post(path, token=ka["key"], json={}), 404, "not_found")
    # Replayed: each genuine call is a new test event with its own id.
    path = f"/api/auth/api-keys/{kb['id']}/webhooks/{hook['id']}/test"
    r1, r2 = api.post(path, token=kb["key"], json={}), api.post(path, token=kb["key"], json={})
    assert r1.status_code == r2.status_code == 202
    assert r1.json()["id"] != r2.json()["id"]
