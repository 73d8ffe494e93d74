"""JesClips, Jes images and media over HTTP: multipart uploads
checked by magic bytes and size, R2 round trips byte for byte with Range,
visibility of media, and no orphans when an upload fails."""
import glob
import json
import os
import sqlite3
import time
import uuid

import pytest

from conftest import d1_file, Api, assert_error

MP4 = b"\x00\x00\x00\x18ftypisom\x00\x00\x02\x00isomiso2" + os.urandom(200_000)
WEBM = b"\x1a\x45\xdf\xa3\x9f\x42\x86\x81\x01\x42\xf7\x81\x01\x42\x82\x84webm" + os.urandom(5_000)
PNG = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + os.urandom(3_000)
JPEG = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00" + os.urandom(3_000)


def d1(server) -> sqlite3.Connection:
    return sqlite3.connect(d1_file(server), timeout=10)


def r2_keys(server) -> set[str]:
    """Object keys in the local R2 bucket."""
    keys: set[str] = set()
    for f in glob.glob(os.path.join(server.state, "v3/r2/miniflare-R2BucketObject/*.sqlite")):
        if f.endswith("metadata.sqlite"):
            continue
        with sqlite3.connect(f) as db:
            keys |= {k for (k,) in db.execute("SELECT key FROM _mf_objects")}
    return keys


def trash(server) -> set[str]:
    """R2 keys no media row names whose objects may still exist (uploads in
    flight, deleted rows' objects not yet deleted)."""
    with d1(server) as db:
        return {k for (k,) in db.execute("SELECT r2_key FROM media_trash")}


def media_rows(server, owner_id: str) -> int:
    with d1(server) as db:
        return db.execute("SELECT COUNT(*) FROM media WHERE owner_id = ?", (owner_id,)).fetchone()[0]


def clip(api: Api, token: str, data: bytes = MP4, caption: str = "my clip #fun", visibility: str = "PUBLIC",
         ctype: str = "video/mp4", headers: dict | None = None):
    return api.post("/api/jesclips", token=token, headers=headers,
                    files={"video": ("clip.mp4", data, ctype)},
                    data={"caption": caption, "visibility": visibility})


def made_clip(api: Api, token: str, **kw) -> dict:
    r = clip(api, token, **kw)
    assert r.status_code == 201, r.text
    return r.json()


def test_a_key_uploads_a_clip_that_reads_back_and_streams_byte_for_byte(api: Api):
    a = api.signup()
    key = api.create_key(a["token"], label="Clipper", preset="scheduler")
    made = made_clip(api, key["key"])
    assert made["type"] == "jesclip" and made["caption"] == "my clip #fun" and made["hashtags"] == ["fun"]
    assert made["via"] == {"label": "Clipper"} and made["author"]["id"] == a["user"]["id"]
    video = made["video"]
    assert video["contentType"] == "video/mp4" and video["size"] == len(MP4)
    assert video["url"] == f"/api/media/{video['id']}"
    got = api.get(f"/api/jesclips/{made['id']}", token=key["key"]).json()
    assert got == made
    r = api.get(video["url"], token=a["token"])
    assert r.status_code == 200
    assert r.content == MP4
    assert r.headers["content-type"] == "video/mp4"
    assert r.headers["content-length"] == str(len(MP4))
    assert r.headers["accept-ranges"] == "bytes"
    assert r.headers["etag"].startswith('"')


def test_ranges_reassemble_the_file_and_bad_ranges_are_416(api: Api):
    a = api.signup()
    url = made_clip(api, a["token"])["video"]["url"]
    size = len(MP4)
    parts, start = [], 0
    while start < size:
        end = min(start + 65_535, size - 1)
        r = api.get(url, token=a["token"], headers={"Range": f"bytes={start}-{end}"})
        assert r.status_code == 206, r.text
        assert r.headers["content-range"] == f"bytes {start}-{end}/{size}"
        assert r.headers["content-length"] == str(end - start + 1)
        parts.append(r.content)
        start = end + 1
    assert b"".join(parts) == MP4
    tail = api.get(url, token=a["token"], headers={"Range": "bytes=-100"})
    assert tail.status_code == 206 and tail.content == MP4[-100:]
    assert tail.headers["content-range"] == f"bytes {size - 100}-{size - 1}/{size}"
    bad = api.get(url, token=a["token"], headers={"Range": f"bytes={size}-"})
    assert_error(bad, 416, "range_not_satisfiable")
    assert bad.headers["content-range"] == f"bytes */{size}"
    # If-Range with a stale validator serves the whole object.
    whole = api.get(url, token=a["token"], headers={"Range": "bytes=0-9", "If-Range": '"stale"'})
    assert whole.status_code == 200 and whole.content == MP4


def test_etag_revalidation_answers_304(api: Api):
    a = api.signup()
    url = made_clip(api, a["token"])["video"]["url"]
    etag = api.get(url, token=a["token"]).headers["etag"]
    r = api.get(url, token=a["token"], headers={"If-None-Match": etag})
    assert r.status_code == 304 and r.content == b""
    assert api.get(url, token=a["token"], headers={"If-None-Match": '"other"'}).status_code == 200


def test_media_follows_the_visibility_of_its_jes(api: Api):
    author, fan, stranger = api.signup(), api.signup(), api.signup()
    assert api.post(f"/api/users/{author['user']['username']}/follow", token=fan["token"]).status_code == 200
    public = made_clip(api, author["token"], visibility="PUBLIC")["video"]["url"]
    followers = made_clip(api, author["token"], visibility="FOLLOWERS")["video"]["url"]
    private = made_clip(api, author["token"], visibility="PRIVATE")["video"]["url"]
    assert api.get(public).status_code == 200, "public media needs no credential"
    assert api.get(public, token=stranger["token"]).status_code == 200
    for url in (followers, private):
        assert_error(api.get(url), 404, "not_found")
        assert_error(api.get(url, token=stranger["token"]), 404, "not_found")
        assert api.get(url, token=author["token"]).status_code == 200
    assert api.get(followers, token=fan["token"]).status_code == 200
    assert_error(api.get(private, token=fan["token"]), 404, "not_found")
    key = api.create_key(fan["token"], scopes=["read:comment"])
    assert api.get(followers, token=key["key"]).status_code == 200
    # A bad credential is still refused, even on public media.
    assert_error(api.get(public, token="jes_live_" + "A" * 40), 401, "invalid_api_key")


def test_deleting_a_clip_removes_its_media(server, api: Api):
    a = api.signup()
    made = made_clip(api, a["token"])
    with d1(server) as db:
        (r2_key,) = db.execute("SELECT r2_key FROM media WHERE id = ?", (made["video"]["id"],)).fetchone()
    assert r2_key in r2_keys(server)
    assert not r2_key.count(made["id"]) and not r2_key.count(made["video"]["id"]), "R2 keys are opaque"
    assert api.delete(f"/api/jesclips/{made['id']}", token=a["token"]).status_code == 204
    assert_error(api.get(made["video"]["url"], token=a["token"]), 404, "not_found")
    assert_error(api.get(f"/api/jesclips/{made['id']}", token=a["token"]), 404, "not_found")
    deadline = time.time() + 45  # the delete runs after the answer, on a possibly busy runtime
    while (r2_key in r2_keys(server) or r2_key in trash(server)) and time.time() < deadline:
        time.sleep(0.1)
    assert r2_key not in r2_keys(server)
    assert r2_key not in trash(server), "the object is gone, so is its trash entry"


@pytest.mark.parametrize("data,ctype,status,code", [
    (b"<html><script>alert(1)</script></html>" * 10, "video/mp4", 415, "unsupported_media_type"),
    (PNG, "image/png", 415, "unsupported_media_type"),
    (MP4, "video/webm", 415, "unsupported_media_type"),
    (b"ID3\x04\x00\x00" + os.urandom(500), "video/mp4", 415, "unsupported_media_type"),
    (b"", "video/mp4", 400, "invalid_request"),
])
def test_uploads_are_judged_by_their_bytes(server, api: Api, data, ctype, status, code):
    a = api.signup()
    before = r2_keys(server)
    err = assert_error(clip(api, a["token"], data=data, ctype=ctype), status, code)
    assert err["message"].startswith("video")
    assert media_rows(server, a["user"]["id"]) == 0
    assert not (r2_keys(server) - before)


def test_webm_and_quicktime_and_untyped_videos_are_accepted(api: Api):
    a = api.signup()
    assert made_clip(api, a["token"], data=WEBM, ctype="video/webm")["video"]["contentType"] == "video/webm"
    mov = b"\x00\x00\x00\x14ftypqt  \x00\x00\x00\x00" + os.urandom(1000)
    assert made_clip(api, a["token"], data=mov, ctype="video/quicktime")["video"]["contentType"] == "video/quicktime"
    assert made_clip(api, a["token"], ctype="application/octet-stream")["video"]["contentType"] == "video/mp4"


def test_clip_form_rules(api: Api):
    a = api.signup()
    r = api.post("/api/jesclips", token=a["token"], data={"caption": "no video"}, files={"other": ("x", b"x")})
    assert assert_error(r, 400, "invalid_request")["message"].startswith("video")
    two = [("video", ("a.mp4", MP4, "video/mp4")), ("video", ("b.mp4", MP4, "video/mp4"))]
    r = api.post("/api/jesclips", token=a["token"], files=two)
    assert assert_error(r, 400, "invalid_request")["message"].startswith("video")
    r = api.post("/api/jesclips", token=a["token"], json={"caption": "json needs a mediaId"})
    assert assert_error(r, 400, "invalid_request")["message"].startswith("mediaId")
    r = api.post("/api/jesclips", token=a["token"], data="caption=x", headers={"Content-Type": "text/plain"})
    assert_error(r, 415, "unsupported_media_type")
    assert_error(clip(api, a["token"], caption="x" * 301), 400, "invalid_request")
    assert_error(clip(api, a["token"], visibility="SECRET"), 400, "invalid_request")
    r = api.post("/api/jesclips", token=a["token"], data=b"--x\r\nbroken", headers={"Content-Type": "multipart/form-data; boundary=y"})
    assert_error(r, 400, "invalid_request")


def test_clips_need_write_jesclip(api: Api):
    a = api.signup()
    key = api.create_key(a["token"], scopes=["write:jes"])
    # A small file: the guard answers before reading the body, and wrangler
    # dev's proxy fails the next request when a large body was left unread.
    err = assert_error(clip(api, key["key"], data=MP4[:2000]), 403, "insufficient_scope")
    assert err["message"] == "Token missing scope(s): write:jesclip"


def test_uploads_over_the_limit_are_413_and_leave_nothing(make_server):
    s = make_server({"MAX_UPLOAD_BYTES": "50000"})
    api = Api(s.url)
    a = api.signup()
    assert_error(clip(api, a["token"], data=MP4), 413, "payload_too_large")
    small = MP4[:40_000]
    r = clip(api, a["token"], data=small)
    assert r.status_code == 201, r.text
    assert api.get(r.json()["video"]["url"], token=a["token"]).content == small
    assert media_rows(s, a["user"]["id"]) == 1 and len(r2_keys(s)) == 1


def test_a_failed_write_after_the_upload_leaves_no_orphan(server, api: Api):
    a = api.signup()
    marker = "boom-" + uuid.uuid4().hex[:8]
    with d1(server) as db:
        db.execute(f"CREATE TRIGGER fail_{marker.replace('-', '_')} BEFORE INSERT ON posts "
                   f"WHEN NEW.content = '{marker}' BEGIN SELECT RAISE(ABORT, 'injected failure'); END")
    try:
        before, listed = r2_keys(server), trash(server)
        r = clip(api, a["token"], caption=marker)
        assert_error(r, 500, "internal_error")
        assert media_rows(server, a["user"]["id"]) == 0
        assert not (r2_keys(server) - before), "the object put before the failed batch is deleted again"
        assert not (trash(server) - listed), "and its trash entry with it"
    finally:
        with d1(server) as db:
            db.execute(f"DROP TRIGGER fail_{marker.replace('-', '_')}")


def test_an_upload_lists_its_key_before_the_put_for_six_hours(server, api: Api):
    """Should the request die between the put and its row, the cron finds the
    object through the entry listed first: due six hours later (a streamed
    upload may run long), not before."""
    a = api.signup()
    marker = uuid.uuid4().hex[:8]
    before, listed = r2_keys(server), trash(server)
    with d1(server) as db:
        # The row's insert fails; the entry is kept however the request ends.
        db.execute(f"CREATE TRIGGER no_media_{marker} BEFORE INSERT ON media "
                   f"WHEN NEW.owner_id = '{a['user']['id']}' BEGIN SELECT RAISE(ABORT, 'injected failure'); END")
        db.execute(f"CREATE TRIGGER keep_trash_{marker} BEFORE DELETE ON media_trash BEGIN SELECT RAISE(IGNORE); END")
    try:
        started = int(time.time() * 1000)
        r = api.post("/api/media", token=a["token"], files={"file": ("p.png", PNG, "image/png")})
        assert_error(r, 500, "internal_error")
        (key,) = trash(server) - listed
        with d1(server) as db:
            (due,) = db.execute("SELECT purge_after FROM media_trash WHERE r2_key = ?", (key,)).fetchone()
        assert started + 6 * 3_600_000 <= due <= int(time.time() * 1000) + 6 * 3_600_000, due - started
        assert key not in r2_keys(server) and not (r2_keys(server) - before), "the failed write's object is deleted at once"
    finally:
        with d1(server) as db:
            db.execute(f"DROP TRIGGER no_media_{marker}")
            db.execute(f"DROP TRIGGER keep_trash_{marker}")
            db.execute("DELETE FROM media_trash WHERE r2_key NOT IN (SELECT value FROM json_each(?))", (json.dumps(sorted(listed)),))


def test_clip_owner_edits_others_get_403_or_404(api: Api):
    a, b = api.signup(), api.signup()
    made = made_clip(api, a["token"])
    key = api.create_key(a["token"], preset="scheduler")
    r = api.patch(f"/api/jesclips/{made['id']}", token=key["key"], json={"caption": "new #cap", "visibility": "PRIVATE"})
    assert r.status_code == 200, r.text
    assert r.json()["caption"] == "new #cap" and r.json()["hashtags"] == ["cap"] and r.json()["visibility"] == "PRIVATE"
    assert_error(api.patch(f"/api/jesclips/{made['id']}", token=b["token"], json={"caption": "x"}), 404, "not_found")
    assert_error(api.get(made["video"]["url"], token=b["token"]), 404, "not_found")
    api.patch(f"/api/jesclips/{made['id']}", token=a["token"], json={"visibility": "PUBLIC"})
    assert_error(api.patch(f"/api/jesclips/{made['id']}", token=b["token"], json={"caption": "x"}), 403, "forbidden")
    assert api.get(made["video"]["url"], token=b["token"]).status_code == 200
    assert_error(api.patch(f"/api/jesclips/{made['id']}", token=a["token"], json={"content": "wrong field"}), 400, "invalid_request")


def test_clips_and_jes_are_different_resources(api: Api):
    a = api.signup()
    made = made_clip(api, a["token"])
    post = api.post("/api/posts", token=a["token"], json={"content": "a jes"}).json()
    assert_error(api.get(f"/api/posts/{made['id']}", token=a["token"]), 404, "not_found")
    assert_error(api.get(f"/api/jesclips/{post['id']}", token=a["token"]), 404, "not_found")


def test_comments_on_clips(api: Api):
    a, b = api.signup(), api.signup()
    made = made_clip(api, a["token"])
    key = api.create_key(b["token"], scopes=["write:comment", "read:comment"])
    r = api.post(f"/api/jesclips/{made['id']}/comments", token=key["key"], json={"content": "great clip"})
    assert r.status_code == 201, r.text
    thread = api.get(f"/api/jesclips/{made['id']}/comments", token=key["key"]).json()
    assert thread["items"] == [r.json()]
    assert api.get(f"/api/jesclips/{made['id']}", token=a["token"]).json()["counts"]["comments"] == 1
    assert api.post(f"/api/jesclips/{made['id']}/like", token=b["token"]).json() == {"liked": True, "likes": 1}


def test_a_jes_with_images_in_one_multipart_request(api: Api):
    a = api.signup()
    key = api.create_key(a["token"], label="photos", scopes=["write:jes"])
    files = [("media", ("a.png", PNG, "image/png")), ("media", ("b.jpg", JPEG, "image/jpeg"))]
    r = api.post("/api/posts", token=key["key"], data={"content": "two pics #photo", "visibility": "PUBLIC"}, files=files)
    assert r.status_code == 201, r.text
    made = r.json()
    assert [m["contentType"] for m in made["media"]] == ["image/png", "image/jpeg"]
    assert made["via"] == {"label": "photos"} and made["hashtags"] == ["photo"]
    assert api.get(made["media"][0]["url"]).content == PNG
    assert api.get(made["media"][1]["url"]).content == JPEG
    got = api.get(f"/api/posts/{made['id']}", token=key["key"]).json()
    assert got == made


def test_jes_image_rules(server, api: Api):
    a = api.signup()
    five = [("media", (f"{i}.png", PNG, "image/png")) for i in range(5)]
    r = api.post("/api/posts", token=a["token"], data={"content": "too many"}, files=five)
    assert assert_error(r, 400, "invalid_request")["message"].startswith("media")
    mixed = [("media", ("a.png", PNG, "image/png")), ("media", ("v.mp4", MP4, "video/mp4"))]
    before = r2_keys(server)
    r = api.post("/api/posts", token=a["token"], data={"content": "a video is not an image"}, files=mixed)
    assert_error(r, 415, "unsupported_media_type")
    assert not (r2_keys(server) - before) and media_rows(server, a["user"]["id"]) == 0
    # Images alone make a Jes; the text may be empty then.
    r = api.post("/api/posts", token=a["token"], data={"visibility": "PRIVATE"}, files=[("media", ("a.png", PNG, "image/png"))])
    assert r.status_code == 201 and r.json()["content"] == ""


def test_uploaded_media_is_owner_only_until_attached_by_media_ids(api: Api):
    a, b = api.signup(), api.signup()
    r = api.post("/api/media", token=a["token"], files={"file": ("p.png", PNG, "image/png")})
    assert r.status_code == 201, r.text
    m = r.json()
    assert m["contentType"] == "image/png" and m["size"] == len(PNG)
    assert api.get(m["url"], token=a["token"]).content == PNG
    assert_error(api.get(m["url"], token=b["token"]), 404, "not_found")
    assert_error(api.get(m["url"]), 404, "not_found")
    # Another account cannot attach it.
    err = assert_error(api.post("/api/posts", token=b["token"], json={"content": "steal", "mediaIds": [m["id"]]}),
                       400, "invalid_request")
    assert err["message"].startswith("mediaIds")
    post = api.post("/api/posts", token=a["token"], json={"content": "with media", "mediaIds": [m["id"]]})
    assert post.status_code == 201, post.text
    assert post.json()["media"] == [m]
    assert api.get(m["url"]).content == PNG, "attached to a PUBLIC Jes it is public"
    again = api.post("/api/posts", token=a["token"], json={"content": "reuse", "mediaIds": [m["id"]]})
    assert assert_error(again, 400, "invalid_request")["message"].startswith("mediaIds")
    assert_error(api.post("/api/media", token=a["token"], files={"file": ("x.html", b"<html></html>" * 9, "text/html")}),
                 415, "unsupported_media_type")


def test_an_uploaded_video_becomes_a_clip_by_media_id(api: Api):
    """How MCP clients (JSON only) post clips: upload first, then name the media."""
    a, b = api.signup(), api.signup()
    key = api.create_key(a["token"], label="agent", preset="scheduler")
    video = api.post("/api/media", token=key["key"], files={"file": ("v.mp4", MP4, "video/mp4")}).json()
    image = api.post("/api/media", token=key["key"], files={"file": ("p.png", PNG, "image/png")}).json()
    assert video["contentType"] == "video/mp4"
    err = assert_error(api.post("/api/posts", token=key["key"], json={"content": "x", "mediaIds": [video["id"]]}), 400, "invalid_request")
    assert err["message"].startswith("mediaIds"), "a Jes carries images only"
    err = assert_error(api.post("/api/jesclips", token=key["key"], json={"mediaId": image["id"]}), 400, "invalid_request")
    assert err["message"].startswith("mediaId")
    other = api.create_key(b["token"], preset="scheduler")
    assert_error(api.post("/api/jesclips", token=other["key"], json={"mediaId": video["id"]}), 400, "invalid_request")
    r = api.post("/api/jesclips", token=key["key"], json={"mediaId": video["id"], "caption": "by id #agent", "visibility": "PUBLIC"})
    assert r.status_code == 201, r.text
    clip_ = r.json()
    assert clip_["video"] == video and clip_["via"] == {"label": "agent"} and clip_["hashtags"] == ["agent"]
    assert api.get(f"/api/jesclips/{clip_['id']}", token=key["key"]).json() == clip_
    assert api.get(video["url"]).content == MP4


def test_idempotent_clip_upload_creates_one_clip(server, api: Api):
    a = api.signup()
    h = {"Idempotency-Key": uuid.uuid4().hex}
    r1 = clip(api, a["token"], headers=h)
    r2 = clip(api, a["token"], headers=h)
    assert r1.status_code == r2.status_code == 201
    assert r1.json() == r2.json() and r2.headers["idempotent-replayed"] == "true"
    assert media_rows(server, a["user"]["id"]) == 1


def test_upload_is_part_of_each_write_scope_images_for_jes_videos_for_clips(server, api: Api):
    """Seed 000: write:jesclip includes media upload, with no separate media scope.
    POST /api/media takes either write scope; each uploads what it makes."""
    a = api.signup()
    clips_only = api.create_key(a["token"], scopes=["write:jesclip"], label="clips")["key"]
    jes_only = api.create_key(a["token"], scopes=["write:jes"])["key"]
    reader = api.create_key(a["token"], scopes=["read:comment"])["key"]
    before_keys, before_rows = r2_keys(server), media_rows(server, a["user"]["id"])

    def up(key, name, data, ctype):
        return api.post("/api/media", token=key, files={"file": (name, data, ctype)})

    err = assert_error(up(clips_only, "p.png", PNG, "image/png"), 403, "insufficient_scope")
    assert err["message"] == "Token missing scope(s): write:jes"
    err = assert_error(up(jes_only, "v.mp4", MP4, "video/mp4"), 403, "insufficient_scope")
    assert err["message"] == "Token missing scope(s): write:jesclip"
    err = assert_error(up(reader, "p.png", PNG, "image/png"), 403, "insufficient_scope")
    assert err["message"] == "Token missing scope(s): write:jes or write:jesclip"
    assert r2_keys(server) == before_keys and media_rows(server, a["user"]["id"]) == before_rows, "refusals store nothing"

    video = up(clips_only, "v.mp4", MP4, "video/mp4")
    assert video.status_code == 201, video.text
    image = up(jes_only, "p.png", PNG, "image/png")
    assert image.status_code == 201, image.text
    assert len(r2_keys(server) - before_keys) == 2
    r = api.post("/api/jesclips", token=clips_only, json={"mediaId": video.json()["id"], "caption": "by id"})
    assert r.status_code == 201, r.text
    assert r.json()["video"]["id"] == video.json()["id"] and r.json()["via"] == {"label": "clips"}
    r = api.post("/api/posts", token=jes_only, json={"content": "pic", "mediaIds": [image.json()["id"]]})
    assert r.status_code == 201, r.text


def test_the_cron_sweeps_unattached_uploads_and_deleted_accounts_media(make_server):
    import requests
    # Long enough that the sweeps below never catch an upload older than the test means it to be.
    s = make_server({"MEDIA_ORPHAN_SECONDS": "10"})
    api = Api(s.url)
    a, gone = api.signup(), api.signup()

    def upload(token, name="p.png"):
        r = api.post("/api/media", token=token, files={"file": (name, PNG, "image/png")})
        assert r.status_code == 201, r.text
        return r.json()

    def key_of(media_id):
        with d1(s) as db:
            row = db.execute("SELECT r2_key FROM media WHERE id = ?", (media_id,)).fetchone()
        return row[0] if row else None

    def cron():
        assert requests.get(s.url + "/__scheduled?cron=*+*+*+*+*", timeout=30).status_code == 200

    uploaded = time.time()
    stale, kept = upload(a["token"]), upload(a["token"])
    post = api.post("/api/posts", token=a["token"], json={"content": "kept", "mediaIds": [kept["id"]]})
    assert post.status_code == 201, post.text
    theirs = upload(gone["token"])
    theirs_post = api.post("/api/posts", token=gone["token"], json={"content": "mine", "mediaIds": [theirs["id"]]})
    assert theirs_post.status_code == 201
    objects = {m["id"]: key_of(m["id"]) for m in (stale, kept, theirs)}
    assert set(objects.values()) <= r2_keys(s)

    cron()
    assert key_of(stale["id"]) is not None, "younger than MEDIA_ORPHAN_SECONDS: kept"
    time.sleep(max(0.0, uploaded + 10.5 - time.time()))
    fresh = upload(a["token"])
    assert api.delete("/api/account", token=gone["token"]).status_code == 204
    cron()
    assert key_of(stale["id"]) is None and objects[stale["id"]] not in r2_keys(s), "an old unattached upload goes"
    assert key_of(theirs["id"]) is None and objects[theirs["id"]] not in r2_keys(s), "a deleted account's media goes"
    assert key_of(kept["id"]) == objects[kept["id"]] and objects[kept["id"]] in r2_keys(s), "attached media stays"
    assert key_of(fresh["id"]) is not None, "a fresh upload stays"
    assert api.get(kept["url"]).content == PNG
    assert not (set(objects.values()) & trash(s)), "swept objects leave no trash entry"
    # Attaching a swept upload fails cleanly.
    err = assert_error(api.post("/api/posts", token=a["token"], json={"content": "late", "mediaIds": [stale["id"]]}),
                       400, "invalid_request")
    assert err["message"].startswith("mediaIds")


def test_objects_no_row_names_are_deleted_by_the_cron_and_named_ones_never(make_server):
    """Every object's key is named by a media row or listed in media_trash
    (schema.sql): an upload lists its key before the put and its row's insert
    takes it off; a row's delete puts it back. The cron deletes what is due:
    objects a failed delete left, uploads whose request died (after an hour)."""
    import requests
    s = make_server()
    api = Api(s.url)
    a = api.signup()

    def upload():
        r = api.post("/api/media", token=a["token"], files={"file": ("p.png", PNG, "image/png")})
        assert r.status_code == 201, r.text
        with d1(s) as db:
            return r.json()["id"], db.execute("SELECT r2_key FROM media WHERE id = ?", (r.json()["id"],)).fetchone()[0]

    def cron():
        assert requests.get(s.url + "/__scheduled?cron=*+*+*+*+*", timeout=30).status_code == 200

    failed_delete, abandoned, named = upload(), upload(), upload()
    assert not trash(s) & {failed_delete[1], abandoned[1], named[1]}, "a written row takes its key off the trash"
    now_ms = int(time.time() * 1000)
    with d1(s) as db:
        # A Jes deletion whose object delete then failed: the row is gone, the object is not.
        db.execute("DELETE FROM media WHERE id = ?", (failed_delete[0],))
        # An upload whose request died after the put, before its row: listed, due in an hour.
        db.execute("DELETE FROM media WHERE id = ?", (abandoned[0],))
        db.execute("UPDATE media_trash SET purge_after = ? WHERE r2_key = ?", (now_ms + 3_600_000, abandoned[1]))
        # A write reported failed that in fact committed: listed, yet a row names it.
        db.execute("INSERT INTO media_trash (r2_key, purge_after) VALUES (?, 0)", (named[1],))
    assert {failed_delete[1], abandoned[1], named[1]} <= trash(s) and {failed_delete[1], abandoned[1], named[1]} <= r2_keys(s)

    cron()
    assert failed_delete[1] not in r2_keys(s) and failed_delete[1] not in trash(s), "the cron finished the delete"
    assert abandoned[1] in r2_keys(s) and abandoned[1] in trash(s), "an upload may still be in flight: kept"
    assert named[1] in r2_keys(s) and named[1] not in trash(s), "a named object is never deleted; its entry goes"
    assert api.get(f"/api/media/{named[0]}", token=a["token"]).content == PNG

    with d1(s) as db:
        db.execute("UPDATE media_trash SET purge_after = ? WHERE r2_key = ?", (now_ms - 1, abandoned[1]))
    cron()
    assert abandoned[1] not in r2_keys(s) and abandoned[1] not in trash(s), "once due, the abandoned upload goes"
    assert named[1] in r2_keys(s)
