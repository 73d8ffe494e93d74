"""Resumable uploads over tus 1.0.0 at /api/uploads (issue 21), driven by
clients nobody here wrote: tuspy (upload, interrupt and resume) and
tus-js-client under node (upload, termination); the protocol's edges by
hand (chunk sizes that leave tails, a PATCH cut midway, offsets, types,
scopes, another account, expiry with the cron)."""
import io
import json
import os
import socket
import subprocess
import threading
import time
import uuid
from email.utils import parsedate_to_datetime
from pathlib import Path

import pytest
import requests
from tusclient import client as tus

from conftest import ROOT, ENV, Api, assert_error, wait_for
from test_uploads_stream import d1, media_rows, mp4, multipart_uploads, r2_keys, sha, trash, PNG

MiB = 1 << 20
TUS = {"Tus-Resumable": "1.0.0"}


def create(api: Api, token: str, length: int, metadata: str = "") -> str:
    h = {**TUS, "Upload-Length": str(length)}
    if metadata:
        h["Upload-Metadata"] = metadata
    r = api.post("/api/uploads", token=token, headers=h)
    assert r.status_code == 201, r.text
    assert r.headers["tus-resumable"] == "1.0.0"
    loc = r.headers["location"]
    assert loc.startswith("/api/uploads/")
    return loc


def patch(api: Api, token: str, loc: str, offset: int, chunk: bytes, **h):
    headers = {**TUS, "Upload-Offset": str(offset), "Content-Type": "application/offset+octet-stream", **h}
    return api.patch(loc, token=token, data=chunk, headers=headers)


def head(api: Api, token: str, loc: str):
    return api.call("HEAD", loc, token=token, headers=TUS)


def upload_row(server, loc: str):
    rows = d1(server, "SELECT r2_upload_id, r2_key FROM uploads WHERE id = ?", loc.rsplit("/", 1)[1])
    return rows[0] if rows else None


def test_options_advertise_tus_and_the_version_is_required(api: Api):
    r = api.call("OPTIONS", "/api/uploads")
    assert r.status_code == 204, r.text
    assert r.headers["tus-version"] == "1.0.0"
    assert set(r.headers["tus-extension"].split(",")) == {"creation", "termination", "expiration"}
    assert r.headers["tus-max-size"] == str(1 << 30)
    a = api.signup()
    r = api.post("/api/uploads", token=a["token"], headers={"Upload-Length": "10"})
    assert_error(r, 412, "precondition_failed")
    assert r.headers["tus-version"] == "1.0.0" and r.headers["tus-resumable"] == "1.0.0"
    r = api.post("/api/uploads", headers={**TUS, "Upload-Length": "10"})
    assert_error(r, 401, "unauthenticated")
    assert r.headers["tus-resumable"] == "1.0.0", "the guard's answers say the version too"
    assert_error(api.post("/api/uploads", token=a["token"], headers={**TUS, "Upload-Length": str((1 << 30) + 1)}),
                 413, "payload_too_large")
    assert_error(api.post("/api/uploads", token=a["token"], headers={**TUS, "Upload-Defer-Length": "1"}),
                 400, "invalid_request")


def test_tuspy_uploads_interrupts_and_resumes_byte_for_byte(server, api: Api):
    a = api.signup()
    key = api.create_key(a["token"], preset="scheduler")["key"]
    data = mp4(23 * MiB + 12345)
    c = tus.TusClient(f"{api.url}/api/uploads", headers={"Authorization": f"Bearer {key}"})
    first = c.uploader(file_stream=io.BytesIO(data), chunk_size=5 * MiB,
                       metadata={"filename": "clip.mp4", "filetype": "video/mp4"})
    first.upload(stop_at=10 * MiB)
    assert first.offset == 10 * MiB
    again = c.uploader(file_stream=io.BytesIO(data), chunk_size=5 * MiB, url=first.url)
    assert again.offset == 10 * MiB, "a new client resumes where HEAD says"
    again.upload()
    media_id = again.request.response_headers["jestha-media-id"]
    h = head(api, key, first.url.replace(api.url, ""))
    assert h.status_code == 200 and h.headers["upload-offset"] == str(len(data))
    assert h.headers["jestha-media-id"] == media_id and "upload-expires" not in h.headers
    got = requests.get(f"{api.url}/api/media/{media_id}", headers={"Authorization": f"Bearer {key}"}, timeout=120)
    assert sha(got.content) == sha(data) and got.headers["content-type"] == "video/mp4"
    r = api.post("/api/jesclips", token=key, json={"mediaId": media_id, "caption": "resumed"})
    assert r.status_code == 201, r.text


def test_chunks_of_any_size_from_5_mib_leave_tails_that_the_next_chunk_takes(server, api: Api):
    a = api.signup()
    data = mp4(6 * MiB + 7 * MiB + 5 * MiB + 321)
    loc = create(api, a["token"], len(data))
    at = 0
    for size in (6 * MiB, 7 * MiB, 5 * MiB, 321):
        r = patch(api, a["token"], loc, at, data[at:at + size])
        assert r.status_code == 204, r.text
        at += size
        assert r.headers["upload-offset"] == str(at)
    media_id = r.headers["jestha-media-id"]
    got = requests.get(f"{api.url}/api/media/{media_id}", headers={"Authorization": f"Bearer {a['token']}"}, timeout=60)
    assert sha(got.content) == sha(data)
    assert not any(k.endswith(".t") for k in r2_keys(server)), "no tail object is left"


def test_chunk_rules_offsets_and_types(server, api: Api):
    a = api.signup()
    data = mp4(12 * MiB)
    loc = create(api, a["token"], len(data))
    err = assert_error(patch(api, a["token"], loc, 0, data[:MiB]), 400, "invalid_request")
    assert err["message"] == ("Upload chunks other than the last must be at least 5242880 bytes (5 MiB); "
                              "this one is 1048576 bytes.")
    assert head(api, a["token"], loc).headers["upload-offset"] == "0"
    assert_error(patch(api, a["token"], loc, 0, data[:5 * MiB], **{"Content-Type": "application/octet-stream"}),
                 415, "unsupported_media_type")
    assert patch(api, a["token"], loc, 0, data[:5 * MiB]).status_code == 204
    assert_error(patch(api, a["token"], loc, 0, data[:5 * MiB]), 409, "conflict")
    assert_error(patch(api, a["token"], loc, 5 * MiB, data[5 * MiB:] + b"x"), 413, "payload_too_large")
    r = patch(api, a["token"], loc, 5 * MiB, data[5 * MiB:])
    assert r.status_code == 204 and "jestha-media-id" in r.headers, "a last chunk may be any size"
    again = patch(api, a["token"], loc, len(data), b"")
    assert again.status_code == 204 and again.headers["jestha-media-id"] == r.headers["jestha-media-id"]


def slow_patch(server, token: str, loc: str, offset: int, declared: int, first: bytes, hold: threading.Event,
               rest: bytes = b"") -> bytes:
    """A PATCH sent in two goes over a raw socket: `first`, then (after
    `hold` is set) `rest`, then the write side is shut."""
    s = socket.create_connection(("127.0.0.1", server.port))
    try:
        s.sendall((f"PATCH {loc} HTTP/1.1\r\nHost: 127.0.0.1:{server.port}\r\nAuthorization: Bearer {token}\r\n"
                   f"Tus-Resumable: 1.0.0\r\nUpload-Offset: {offset}\r\nContent-Type: application/offset+octet-stream\r\n"
                   f"Content-Length: {declared}\r\nConnection: close\r\n\r\n").encode() + first)
        hold.wait(60)
        if rest:
            s.sendall(rest)
        s.shutdown(socket.SHUT_WR)
        s.settimeout(60)
        got = b""
        try:
            while chunk := s.recv(65536):
                got += chunk
        except (ConnectionResetError, socket.timeout):
            pass
        return got
    finally:
        s.close()


def test_a_patch_cut_midway_keeps_its_whole_parts_and_tuspy_resumes(server, api: Api):
    a = api.signup()
    data = mp4(16 * MiB)
    loc = create(api, a["token"], len(data))
    go = threading.Event()
    go.set()
    # 7.5 MiB of a declared 10 MiB chunk, then the client goes.
    slow_patch(server, a["token"], loc, 0, 10 * MiB, data[:7 * MiB + MiB // 2], go)
    deadline = time.time() + 20
    while head(api, a["token"], loc).headers["upload-offset"] != str(5 * MiB) and time.time() < deadline:
        time.sleep(0.3)
    assert head(api, a["token"], loc).headers["upload-offset"] == str(5 * MiB), "the whole 5 MiB part is kept"
    c = tus.TusClient(f"{api.url}/api/uploads", headers={"Authorization": f"Bearer {a['token']}"})
    u = c.uploader(file_stream=io.BytesIO(data), chunk_size=5 * MiB, url=api.url + loc)
    assert u.offset == 5 * MiB
    u.upload()
    media_id = u.request.response_headers["jestha-media-id"]
    got = requests.get(f"{api.url}/api/media/{media_id}", headers={"Authorization": f"Bearer {a['token']}"}, timeout=60)
    assert sha(got.content) == sha(data)


def test_a_second_patch_while_one_streams_is_409(server, api: Api):
    a = api.signup()
    data = mp4(12 * MiB)
    loc = create(api, a["token"], len(data))
    hold = threading.Event()
    out = {}
    t = threading.Thread(target=lambda: out.setdefault("r", slow_patch(
        server, a["token"], loc, 0, 6 * MiB, data[:MiB], hold, data[MiB:6 * MiB])))
    t.start()
    try:
        # The held PATCH has taken the upload's lock (not a fixed sleep: a loaded runtime is slow).
        upload_id = loc.rsplit("/", 1)[1]
        wait_for("the first PATCH's lock", lambda: d1(server, "SELECT lock_id FROM uploads WHERE id = ?", upload_id)[0][0])
        r = patch(api, a["token"], loc, 0, data[:6 * MiB])
        err = assert_error(r, 409, "conflict")
        assert "in progress" in err["message"]
    finally:
        hold.set()
        t.join(90)
    assert out["r"].startswith(b"HTTP/1.1 204"), out["r"][:200]
    assert head(api, a["token"], loc).headers["upload-offset"] == str(6 * MiB)


def test_types_scopes_and_accounts_are_those_of_post_media(server, api: Api):
    a, b = api.signup(), api.signup()
    poster = api.create_key(a["token"], preset="cross-poster")["key"]
    clipper = api.create_key(a["token"], scopes=["write:jesclip"])["key"]
    keys, uploads = r2_keys(server), multipart_uploads(server)
    loc = create(api, poster, 6 * MiB)
    err = assert_error(patch(api, poster, loc, 0, mp4(6 * MiB)), 403, "insufficient_scope")
    assert err["message"] == "Token missing scope(s): write:jesclip"
    assert head(api, poster, loc).status_code == 404, "a refused file ends the upload"
    new = {u: s for u, s in multipart_uploads(server).items() if u not in uploads}
    assert list(new.values()) == [2], new
    assert r2_keys(server) == keys
    loc = create(api, clipper, len(PNG), metadata="filetype aW1hZ2UvcG5n")
    assert_error(patch(api, clipper, loc, 0, PNG), 403, "insufficient_scope")
    loc = create(api, poster, len(PNG), metadata="filetype dmlkZW8vbXA0")  # says video/mp4
    err = assert_error(patch(api, poster, loc, 0, PNG), 415, "unsupported_media_type")
    assert err["message"] == "file: declared video/mp4 but the content is image/png"
    loc = create(api, poster, len(PNG))
    r = patch(api, poster, loc, 0, PNG)
    assert r.status_code == 204, r.text
    made = api.post("/api/posts", token=poster, json={"content": "tus pic", "mediaIds": [r.headers["jestha-media-id"]]})
    assert made.status_code == 201, made.text
    # Another account's upload does not exist for it; another key of the owner goes on.
    data = mp4(10 * MiB)
    loc = create(api, clipper, len(data))
    assert patch(api, clipper, loc, 0, data[:5 * MiB]).status_code == 204
    for r in (head(api, b["token"], loc), patch(api, b["token"], loc, 5 * MiB, data[5 * MiB:]),
              api.delete(loc, token=b["token"], headers=TUS)):
        assert r.status_code == 404, r.text
    r = patch(api, a["token"], loc, 5 * MiB, data[5 * MiB:])
    assert r.status_code == 204 and "jestha-media-id" in r.headers


def node(*args: str) -> dict:
    out = subprocess.run(["node", str(ROOT / "tests" / "tus_client.mjs"), *args], cwd=ROOT, env=ENV,
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


def test_tus_js_client_uploads_and_terminates(server, api: Api, tmp_path: Path):
    a = api.signup()
    data = mp4(11 * MiB + 5)
    f = tmp_path / "clip.mp4"
    f.write_bytes(data)
    done = node("upload", api.url, a["token"], str(f), str(5 * MiB))
    assert done["mediaId"] and done["url"].startswith(api.url + "/api/uploads/")
    got = requests.get(f"{api.url}/api/media/{done['mediaId']}", headers={"Authorization": f"Bearer {a['token']}"},
                       timeout=60)
    assert sha(got.content) == sha(data)
    # Termination of an unfinished upload: its parts are aborted, nothing stays.
    keys, listed = r2_keys(server), trash(server)
    loc = create(api, a["token"], 12 * MiB)
    assert patch(api, a["token"], loc, 0, data[:6 * MiB]).status_code == 204
    upload_id, key = upload_row(server, loc)
    assert f"{key}.t" in r2_keys(server), "the part's remainder waits in a tail object"
    assert node("terminate", api.url + loc, a["token"]) == {"terminated": True}
    assert head(api, a["token"], loc).status_code == 404
    assert multipart_uploads(server)[upload_id] == 2
    api.get("/__scheduled")
    assert key not in r2_keys(server) and f"{key}.t" not in r2_keys(server) and r2_keys(server) <= keys
    assert trash(server) <= listed


def test_unfinished_uploads_expire_and_the_cron_aborts_them(make_server):
    s = make_server(engine_vars={"UPLOAD_EXPIRY_SECONDS": "3"})
    api = Api(s.url)
    a = api.signup()
    keys = r2_keys(s)
    data = mp4(12 * MiB)
    started = time.time()
    loc = create(api, a["token"], len(data))
    r = patch(api, a["token"], loc, 0, data[:6 * MiB])
    assert r.status_code == 204
    expires = parsedate_to_datetime(r.headers["upload-expires"]).timestamp()
    assert started + 1 <= expires <= time.time() + 4, expires - started
    upload_id, key = upload_row(s, loc)
    time.sleep(max(0.0, expires - time.time()) + 1.5)
    assert head(api, a["token"], loc).status_code == 404, "expired, even before the cron"
    assert api.get("/__scheduled").status_code == 200
    assert upload_row(s, loc) is None
    assert multipart_uploads(s)[upload_id] == 2, "its R2 multipart upload is aborted"
    assert r2_keys(s) == keys, "its tail object is gone"
    assert trash(s) == set() and media_rows(s, a["user"]["id"]) == 0


def test_an_upload_id_that_is_not_one_is_404_and_reaches_nothing_else(server, api: Api):
    """The id becomes part of the API's hand-off URL to the engine: a crafted one
    (`..%2Fcron` resolves to the engine's cron entry) is an upload nobody has."""
    a = api.signup()
    key = api.create_key(a["token"], scopes=["write:jesclip"])["key"]
    h = {**TUS, "Authorization": f"Bearer {key}"}
    for crafted in ("..%2Fcron", "%2E%2E%2Fcron", "..%2F..%2Fcron", "..%2Fingest", "01arz3ndektsv4rrffq69g5fav"):
        url = f"{api.url}/api/uploads/{crafted}"
        for method, extra in (("GET", {}), ("DELETE", {}),
                              ("PATCH", {"Upload-Offset": "0", "Content-Type": "application/offset+octet-stream"})):
            r = requests.request(method, url, headers={**h, **extra}, data=b"" if method == "PATCH" else None, timeout=30)
            assert_error(r, 404, "not_found")
        assert requests.head(url, headers=h, timeout=30).status_code == 404
