"""Idempotency-Key on POSTs over HTTP: replay, reuse, in-flight,
expiry, per-credential scope, multipart boundaries, and exactly one Jes under
retries and races."""
import glob
import os
import sqlite3
import time
import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest

from conftest import Api, assert_error


def d1(server) -> sqlite3.Connection:
    """The local D1 database file of a running `wrangler dev` (for database effects)."""
    files = [f for f in glob.glob(os.path.join(server.state, "v3/d1/miniflare-D1DatabaseObject/*.sqlite"))
             if not f.endswith("metadata.sqlite")]
    assert len(files) == 1, files
    return sqlite3.connect(files[0], timeout=10)


def jes_count(server, user_id: str) -> int:
    with d1(server) as db:
        return db.execute("SELECT COUNT(*) FROM posts WHERE author_id = ?", (user_id,)).fetchone()[0]


def session_scope(server, user_id: str) -> str:
    """The credential scope of the account's only session (the signup's)."""
    with d1(server) as db:
        return "session:" + db.execute("SELECT id FROM sessions WHERE user_id = ?", (user_id,)).fetchone()[0]


def key() -> dict:
    return {"Idempotency-Key": "k-" + uuid.uuid4().hex}


BODY = {"content": "exactly once", "visibility": "PUBLIC"}


def test_a_retry_replays_the_first_response_and_creates_nothing(server, api: Api):
    a = api.signup()
    h = key()
    first = api.post("/api/posts", token=a["token"], json=BODY, headers=h)
    assert first.status_code == 201, first.text
    assert "idempotent-replayed" not in first.headers
    for _ in range(2):
        again = api.post("/api/posts", token=a["token"], json=BODY, headers=h)
        assert again.status_code == 201
        assert again.headers["idempotent-replayed"] == "true"
        assert again.headers["content-type"] == "application/json"
        assert again.json() == first.json()
    assert jes_count(server, a["user"]["id"]) == 1


def test_the_same_key_with_another_request_is_422(api: Api):
    a = api.signup()
    h = key()
    made = api.post("/api/posts", token=a["token"], json=BODY, headers=h)
    assert made.status_code == 201
    assert_error(api.post("/api/posts", token=a["token"], json={**BODY, "content": "changed"}, headers=h),
                 422, "idempotency_key_reused")
    # Same body on another route is another request too.
    assert_error(api.post(f"/api/posts/{made.json()['id']}/comments", token=a["token"], json=BODY, headers=h),
                 422, "idempotency_key_reused")


def test_keys_are_scoped_per_credential(server, api: Api):
    a, b = api.signup(), api.signup()
    h = key()
    mine = api.post("/api/posts", token=a["token"], json=BODY, headers=h).json()
    theirs = api.post("/api/posts", token=b["token"], json=BODY, headers=h)
    assert theirs.status_code == 201 and "idempotent-replayed" not in theirs.headers
    assert theirs.json()["id"] != mine["id"]
    # Two keys of account a, and its session: none replays another's request.
    k1 = api.create_key(a["token"], scopes=["write:jes"])
    k2 = api.create_key(a["token"], scopes=["write:jes"])
    ids = {mine["id"]}
    for k in (k1, k2):
        r = api.post("/api/posts", token=k["key"], json=BODY, headers=h)
        assert r.status_code == 201 and "idempotent-replayed" not in r.headers, r.text
        ids.add(r.json()["id"])
        again = api.post("/api/posts", token=k["key"], json=BODY, headers=h)
        assert again.headers.get("idempotent-replayed") == "true" and again.json()["id"] == r.json()["id"]
    assert len(ids) == 3 and jes_count(server, a["user"]["id"]) == 3


def test_a_second_sessions_logout_is_not_a_replay(api: Api):
    a = api.signup()
    second = api.post("/api/auth/login", json={"login": a["user"]["username"], "password": "correct horse battery"})
    assert second.status_code == 200, second.text
    s2 = second.json()["session"]["token"]
    h = key()
    for token in (a["token"], s2):
        r = api.post("/api/auth/logout", token=token, headers=h)
        assert r.status_code == 204 and "idempotent-replayed" not in r.headers
    for token in (a["token"], s2):
        assert_error(api.get("/api/auth/me", token=token), 401, "invalid_session")


def test_another_key_never_replays_a_webhook_test_it_may_not_see(server, api: Api):
    a = api.signup()
    owner = api.create_key(a["token"], scopes=["webhooks:manage", "write:jes"])
    other = api.create_key(a["token"], scopes=["webhooks:manage"])
    hook = api.post(f"/api/auth/api-keys/{owner['id']}/webhooks", token=a["token"],
                    json={"url": "http://127.0.0.1:9/hook", "events": ["post.created"]})
    assert hook.status_code == 201, hook.text
    path = f"/api/auth/api-keys/{owner['id']}/webhooks/{hook.json()['id']}/test"
    h = key()
    assert api.post(path, token=a["token"], headers=h).status_code == 202
    assert_error(api.post(path, token=other["key"], headers=h), 404, "not_found")
    with d1(server) as db:
        n = db.execute("SELECT COUNT(*) FROM event_outbox WHERE type = 'webhook.test' AND account_id = ?",
                       (a["user"]["id"],)).fetchone()[0]
    assert n == 1


def form(boundary: str, caption: str) -> bytes:
    return (f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"p.png\"\r\n"
            f"Content-Type: image/png\r\n\r\n").encode() + PNG + (
            f"\r\n--{boundary}\r\nContent-Disposition: form-data; name=\"caption\"\r\n\r\n{caption}\r\n"
            f"--{boundary}--\r\n").encode()


PNG = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(range(256)) * 8


def multipart(boundary: str) -> dict:
    return {"Content-Type": f"multipart/form-data; boundary={boundary}"}


def media_count(server, user_id: str) -> int:
    with d1(server) as db:
        return db.execute("SELECT COUNT(*) FROM media WHERE owner_id = ?", (user_id,)).fetchone()[0]


def test_a_multipart_boundary_over_70_characters_is_400_and_stores_nothing(server, api: Api):
    a = api.signup()
    for b in ("b" * 71, "a" * 3999 + "b"):
        for extra in ({}, key()):
            for path in ("/api/media", "/api/jesclips"):
                r = api.post(path, token=a["token"], data=form(b, "x"), headers={**multipart(b), **extra})
                err = assert_error(r, 400, "invalid_request")
                assert "boundary" in err["message"], err
    assert api.post("/api/media", token=a["token"], data=form("b" * 70, "x"), headers=multipart("b" * 70)).status_code == 201
    assert media_count(server, a["user"]["id"]) == 1
    with d1(server) as db:
        assert db.execute("SELECT COUNT(*) FROM idempotency_requests WHERE account_id = ?",
                          (a["user"]["id"],)).fetchone()[0] == 0


def test_a_multipart_retry_with_a_new_boundary_replays(server, api: Api):
    a = api.signup()
    h = key()
    first = api.post("/api/media", token=a["token"], data=form("AaB03x", "same"), headers={**multipart("AaB03x"), **h})
    assert first.status_code == 201, first.text
    again = api.post("/api/media", token=a["token"], data=form("----x7MA4YWxkTrZu0gW", "same"),
                     headers={**multipart("----x7MA4YWxkTrZu0gW"), **h})
    assert again.status_code == 201 and again.headers.get("idempotent-replayed") == "true"
    assert again.json() == first.json()
    assert media_count(server, a["user"]["id"]) == 1


def test_different_captions_under_one_key_are_422(server, api: Api):
    # The boundary's own letters inside a caption are content, not a delimiter:
    # these two forms once fingerprinted alike.
    a = api.signup()
    h = key()
    assert api.post("/api/media", token=a["token"], data=form("q", "qq"), headers={**multipart("q"), **h}).status_code == 201
    assert_error(api.post("/api/media", token=a["token"], data=form("Z", "ZZ"), headers={**multipart("Z"), **h}),
                 422, "idempotency_key_reused")
    assert media_count(server, a["user"]["id"]) == 1


def test_client_errors_are_replayed_too(api: Api):
    a = api.signup()
    h = key()
    bad = api.post("/api/posts", token=a["token"], json={"content": ""}, headers=h)
    assert_error(bad, 400, "invalid_request")
    again = api.post("/api/posts", token=a["token"], json={"content": ""}, headers=h)
    assert_error(again, 400, "invalid_request")
    assert again.headers["idempotent-replayed"] == "true"


def test_bad_keys_are_400s(api: Api):
    a = api.signup()
    err = assert_error(api.post("/api/posts", token=a["token"], json=BODY, headers={"Idempotency-Key": "x" * 256}),
                       400, "invalid_request")
    assert err["message"].startswith("Idempotency-Key")
    assert api.post("/api/posts", token=a["token"], json=BODY, headers={"Idempotency-Key": "x" * 255}).status_code == 201


def plant_claim(server, who: dict, key: str, fingerprint: str, age_ms: int) -> None:
    """A claim still 'running' for the session of `who`, made `age_ms` ago
    (a request in flight, or one whose Worker died)."""
    with d1(server) as db:
        db.execute("INSERT INTO idempotency_requests (credential, key, account_id, fingerprint, state, created_at) "
                   "VALUES (?, ?, ?, ?, 'running', ?)",
                   (session_scope(server, who["user"]["id"]), key, who["user"]["id"], fingerprint,
                    int(time.time() * 1000) - age_ms))


def test_a_request_while_the_first_is_running_is_409_and_an_abandoned_claim_is_taken_over(server, api: Api):
    a = api.signup()
    h = key()
    now = int(time.time() * 1000)
    plant_claim(server, a, h["Idempotency-Key"], "f", 0)
    r = api.post("/api/posts", token=a["token"], json=BODY, headers=h)
    assert_error(r, 409, "idempotency_in_flight")
    assert jes_count(server, a["user"]["id"]) == 0
    with d1(server) as db:
        db.execute("UPDATE idempotency_requests SET created_at = ? WHERE account_id = ?", (now - 61_000, a["user"]["id"]))
    r = api.post("/api/posts", token=a["token"], json=BODY, headers=h)
    assert r.status_code == 201 and "idempotent-replayed" not in r.headers
    assert api.post("/api/posts", token=a["token"], json=BODY, headers=h).headers["idempotent-replayed"] == "true"


def test_a_streamed_upload_still_running_after_a_minute_is_not_taken_over(server, api: Api):
    """A slow upload's claim is taken before its body is read (no fingerprint yet):
    a retry a minute later must wait for it, not upload a second copy; only
    after the upload grace (6 h) is such a claim abandoned."""
    a = api.signup()
    h = key()
    now = int(time.time() * 1000)
    plant_claim(server, a, h["Idempotency-Key"], "", 61_000)
    r = api.post("/api/media", token=a["token"], data=form("AaB03x", "slow"), headers={**multipart("AaB03x"), **h})
    assert_error(r, 409, "idempotency_in_flight")
    assert media_count(server, a["user"]["id"]) == 0
    with d1(server) as db:
        db.execute("UPDATE idempotency_requests SET created_at = ? WHERE account_id = ?",
                   (now - 6 * 3_600_000 - 1_000, a["user"]["id"]))
    r = api.post("/api/media", token=a["token"], data=form("AaB03x", "slow"), headers={**multipart("AaB03x"), **h})
    assert r.status_code == 201 and "idempotent-replayed" not in r.headers, r.text
    assert media_count(server, a["user"]["id"]) == 1


def test_keys_expire_after_24_hours(server, api: Api):
    a = api.signup()
    h = key()
    assert api.post("/api/posts", token=a["token"], json=BODY, headers=h).status_code == 201
    with d1(server) as db:
        db.execute("UPDATE idempotency_requests SET created_at = created_at - 86400000 WHERE account_id = ?", (a["user"]["id"],))
    r = api.post("/api/posts", token=a["token"], json={**BODY, "content": "a new day"}, headers=h)
    assert r.status_code == 201 and "idempotent-replayed" not in r.headers
    assert jes_count(server, a["user"]["id"]) == 2


def test_concurrent_retries_create_exactly_one_jes(server, api: Api):
    a = api.signup()
    h = key()

    def send(_):
        return api.post("/api/posts", token=a["token"], json=BODY, headers=h)

    with ThreadPoolExecutor(max_workers=8) as pool:
        results = list(pool.map(send, range(8)))
    created = [r for r in results if r.status_code == 201]
    assert created, [r.text for r in results]
    for r in results:
        if r.status_code == 409:
            assert_error(r, 409, "idempotency_in_flight")
        else:
            assert r.status_code == 201 and r.json() == created[0].json()
    assert sum(1 for r in created if "idempotent-replayed" not in r.headers) == 1
    assert jes_count(server, a["user"]["id"]) == 1


def test_comments_and_bounces_honour_the_key(server, api: Api):
    a = api.signup()
    post = api.post("/api/posts", token=a["token"], json=BODY).json()
    h = key()
    c1 = api.post(f"/api/posts/{post['id']}/comments", token=a["token"], json={"content": "once"}, headers=h)
    c2 = api.post(f"/api/posts/{post['id']}/comments", token=a["token"], json={"content": "once"}, headers=h)
    assert c1.status_code == c2.status_code == 201 and c1.json() == c2.json()
    assert api.get(f"/api/posts/{post['id']}", token=a["token"]).json()["counts"]["comments"] == 1
    h = key()
    b1 = api.post(f"/api/posts/{post['id']}/bounce", token=a["token"], headers=h)
    b2 = api.post(f"/api/posts/{post['id']}/bounce", token=a["token"], headers=h)
    assert b1.status_code == b2.status_code == 201 and b1.json() == b2.json()
    assert b2.headers["idempotent-replayed"] == "true"


def test_new_api_keys_are_never_stored_for_replay(server, api: Api):
    a = api.signup()
    h = key()
    k1 = api.post("/api/auth/api-keys", token=a["token"], json={"label": "x", "scopes": ["write:jes"]}, headers=h)
    k2 = api.post("/api/auth/api-keys", token=a["token"], json={"label": "x", "scopes": ["write:jes"]}, headers=h)
    assert k1.status_code == k2.status_code == 201
    assert k1.json()["key"] != k2.json()["key"]
    with d1(server) as db:
        stored = db.execute("SELECT COUNT(*) FROM idempotency_requests WHERE body LIKE '%jes_live_%'").fetchone()[0]
    assert stored == 0
