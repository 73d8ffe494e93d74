"""The `jestha` command-line client against `wrangler dev`: the built binary
run as a CI job would run it, with JESTHA_API_KEY, its stdout parsed, its
exit codes and stderr checked, and every effect read back through the API.

The binary is target/debug/jestha (scripts/test.sh builds it) unless
JESTHA_BIN names another (e.g. target/release/jestha).

`jestha login` runs the device grant against the real authorization server:
the person's approval is given in Chromium on the /device page
(tests/browser/approve.mjs), as a person would from the address the CLI
prints.
"""
from __future__ import annotations

import json
import os
import pty
import re
import select
import socket
import subprocess
import threading
import time
import uuid
from pathlib import Path

import pytest

from conftest import ROOT, Api, d1_query, free_port
from keys import forge

BIN = ROOT / os.environ.get("JESTHA_BIN", "target/debug/jestha")  # relative to the repository, or absolute

MP4 = b"\x00\x00\x00\x18ftypisom\x00\x00\x02\x00isomiso2" + os.urandom(300_000)
PNG = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + os.urandom(3_000)
JPEG = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00" + os.urandom(3_000)



class Run:
    """One finished `jestha` run."""

    def __init__(self, p: subprocess.CompletedProcess, seconds: float):
        self.code, self.out, self.err, self.seconds = p.returncode, p.stdout, p.stderr, seconds

    def json(self):
        assert self.code == 0, f"exit {self.code}: {self.err}"
        return json.loads(self.out)

    def error(self) -> dict:
        """The `--json` error envelope on stderr (last line: waits may precede it)."""
        return json.loads(self.err.strip().splitlines()[-1])["error"]

    def __repr__(self):
        return f"exit {self.code}\nstdout: {self.out}\nstderr: {self.err}"


@pytest.fixture
def jestha(server, tmp_path):
    """Runs the binary against `server` with its own empty config directory."""
    assert BIN.exists(), f"{BIN} is not built: cargo build --bin jestha (scripts/test.sh does)"

    def run(*args: str, key: str | None = None, url: str | None = None, stdin: str | None = None,
            env: dict | None = None, timeout: float = 120) -> Run:
        e = {k: v for k, v in os.environ.items() if not k.startswith("JESTHA_")}
        e.update({"XDG_CONFIG_HOME": str(tmp_path / "config"), "JESTHA_API_URL": url or server.url})
        if key is not None:
            e["JESTHA_API_KEY"] = key
        e.update(env or {})
        started = time.monotonic()
        p = subprocess.run([str(BIN), *args], env=e, input=stdin, capture_output=True, text=True, timeout=timeout)
        return Run(p, time.monotonic() - started)

    return run


@pytest.fixture
def account(api: Api):
    """An account and a key that may do everything the CLI does."""
    a = api.signup()
    k = api.create_key(a["token"], label="ci job",
                       scopes=["write:jes", "write:jesclip", "write:comment", "read:comment"])
    return {**a, "key": k["key"], "key_id": k["id"]}


def files(tmp_path: Path, **contents: bytes) -> dict[str, Path]:
    out = {}
    for name, data in contents.items():
        p = tmp_path / name.replace("_", ".")
        p.write_bytes(data)
        out[name] = p
    return out


def test_whoami_names_the_account_and_the_masked_key(jestha, api, account):
    r = jestha("whoami", key=account["key"])
    assert r.code == 0, r
    user = account["user"]
    assert f"@{user['username']}" in r.out and user["id"] in r.out
    assert account["key"][:13] + "****" in r.out and account["key"] not in r.out + r.err
    me = jestha("--json", "whoami", key=account["key"]).json()
    assert me == api.get("/api/auth/me", token=account["key"]).json()


def test_status_shows_the_keys_scopes_and_limit_standing(jestha, account):
    st = jestha("status", "--json", key=account["key"]).json()
    assert st["id"] == account["key_id"] and st["label"] == "ci job"
    assert st["limits"]["minute"]["limit"] == 60 and st["limits"]["day"]["limit"] == 10000
    human = jestha("status", key=account["key"])
    assert human.code == 0, human
    assert "ci job" in human.out and "write:jesclip" in human.out
    assert re.search(r"^minute +\d+ of 60 left, resets in \d+ s$", human.out, re.M), human.out
    assert re.search(r"^day +\d+ of 10000 left, resets in ", human.out, re.M), human.out


def test_post_makes_a_jes_with_its_visibility_and_key_label(jestha, api, account):
    made = jestha("--json", "post", "hello from CI #cli", "--visibility", "followers", key=account["key"]).json()
    assert made["content"] == "hello from CI #cli" and made["visibility"] == "FOLLOWERS"
    assert made["via"] == {"label": "ci job"} and made["hashtags"] == ["cli"]
    assert api.get(f"/api/posts/{made['id']}", token=account["token"]).json()["content"] == "hello from CI #cli"
    human = jestha("post", "second", key=account["key"])
    assert human.code == 0 and re.fullmatch(r"Posted Jes \S+ \(PUBLIC\)\n", human.out), human


def test_post_reads_its_text_from_stdin(jestha, account):
    made = jestha("--json", "post", "-", key=account["key"], stdin="release notes\nline two\n").json()
    assert made["content"] == "release notes\nline two"


def test_post_with_media_uploads_each_file_and_they_read_back_byte_for_byte(jestha, server, api, account, tmp_path):
    f = files(tmp_path, a_png=PNG, b_jpg=JPEG)
    made = jestha("--json", "post", "two pictures", "--media", str(f["a_png"]), str(f["b_jpg"]), key=account["key"]).json()
    media = made["media"]
    assert [m["contentType"] for m in media] == ["image/png", "image/jpeg"]
    for m, data in zip(media, [PNG, JPEG]):
        assert m["size"] == len(data)
        assert api.get(m["url"], token=account["token"]).content == data
    rows = d1_query(server, f"SELECT post_id, position FROM media WHERE owner_id = '{account['user']['id']}' ORDER BY position")
    assert rows == [{"post_id": made["id"], "position": 0}, {"post_id": made["id"], "position": 1}], "both on the Jes, in order"


def test_clip_uploads_the_video_with_its_caption(jestha, server, api, account, tmp_path):
    f = files(tmp_path, clip_mp4=MP4)
    made = jestha("--json", "clip", str(f["clip_mp4"]), "--caption", "my clip #fun", "--visibility", "private",
                  key=account["key"]).json()
    assert made["type"] == "jesclip" and made["caption"] == "my clip #fun" and made["visibility"] == "PRIVATE"
    assert made["video"]["size"] == len(MP4) and made["via"] == {"label": "ci job"}
    assert api.get(made["video"]["url"], token=account["token"]).content == MP4
    # The video went over tus: its upload names the clip's media.
    rows = d1_query(server, f"SELECT upload_length, media_id FROM uploads WHERE account_id = '{account['user']['id']}'")
    assert rows == [{"upload_length": len(MP4), "media_id": made["video"]["id"]}]
    human = jestha("clip", str(f["clip_mp4"]), "--caption", "again", key=account["key"])
    assert human.code == 0 and human.out.startswith("Posted JesClip "), human


class Relay:
    """A counting HTTP/1.1 relay in front of `server`, one connection per
    request (`Connection: close` both ways): records each request's method,
    path and Upload-Offset. `cut_at`: the first PATCH from that offset has only
    `cut_after` bytes of its body passed on, then the relay waits for the
    server's answer and drops the client unanswered, as a network that fails
    midway would."""

    def __init__(self, server, cut_at: int | None = None, cut_after: int = 0):
        self.port, self.cut_at, self.cut_after, self.cut = server.port, cut_at, cut_after, False
        self.seen: list[tuple[str, str, int | None]] = []
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}"
        threading.Thread(target=self._serve, daemon=True).start()

    def close(self):
        self.sock.close()

    def patches(self) -> list[int]:
        return [o for m, _, o in self.seen if m == "PATCH"]

    def _serve(self):
        while True:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._relay, args=(c,), daemon=True).start()

    @staticmethod
    def _head(f) -> list[str] | None:
        lines = []
        while (line := f.readline()) not in (b"\r\n", b""):
            lines.append(line.decode("latin-1").rstrip("\r\n"))
        return lines if line else None

    @staticmethod
    def _closing(lines: list[str]) -> bytes:
        kept = [l for l in lines if not l.lower().startswith(("connection:", "keep-alive:"))]
        return ("\r\n".join([*kept, "Connection: close"]) + "\r\n\r\n").encode("latin-1")

    def _relay(self, c: socket.socket):
        with c, socket.create_connection(("127.0.0.1", self.port)) as up:
            f = c.makefile("rb")
            lines = self._head(f)
            if not lines:
                return
            method, path = lines[0].split(" ")[:2]
            headers = {k.strip().lower(): v.strip() for k, v in (l.split(":", 1) for l in lines[1:] if ":" in l)}
            offset = int(headers["upload-offset"]) if "upload-offset" in headers else None
            self.seen.append((method, path, offset))
            cut = method == "PATCH" and offset == self.cut_at and not self.cut
            self.cut = self.cut or cut
            up.sendall(self._closing(lines))
            left = self.cut_after if cut else int(headers.get("content-length", "0"))
            while left > 0:
                chunk = f.read(min(left, 1 << 16))
                if not chunk:
                    return
                up.sendall(chunk)
                left -= len(chunk)
            if cut:
                up.shutdown(socket.SHUT_WR)
                while up.recv(65536):
                    pass  # the server has taken what came; the client hears nothing
                f.close()
                return
            r = up.makefile("rb")
            answer = self._head(r)
            if answer is None:
                return
            c.sendall(self._closing(answer))
            while chunk := r.read1(1 << 16):
                c.sendall(chunk)


def test_a_12_mib_clip_goes_in_several_patches_and_reads_back_byte_for_byte(jestha, server, api, account, tmp_path):
    video = MP4[:24] + os.urandom(12 * 1024 * 1024 - 24)
    relay = Relay(server)
    try:
        made = jestha("--json", "clip", str(files(tmp_path, big_mp4=video)["big_mp4"]), "--caption", "big one",
                      key=account["key"], url=relay.url).json()
    finally:
        relay.close()
    assert [m for m, _, _ in relay.seen] == ["POST", "PATCH", "PATCH", "POST"], relay.seen
    assert relay.patches() == [0, 8 * 1024 * 1024], "8 MiB, then the last 4 MiB"
    assert relay.seen[0][1] == "/api/uploads" and relay.seen[-1][1] == "/api/jesclips"
    assert made["video"]["size"] == len(video) and made["video"]["contentType"] == "video/mp4"
    assert api.get(made["video"]["url"], token=account["token"]).content == video


def test_a_clip_upload_cut_midway_resumes_from_where_the_server_has_it(jestha, server, api, account, tmp_path):
    video = MP4[:24] + os.urandom(12 * 1024 * 1024 - 24)
    # The first PATCH (8 MiB) loses its connection after 6 MiB: the server keeps one whole 5 MiB part.
    relay = Relay(server, cut_at=0, cut_after=6 * 1024 * 1024)
    try:
        r = jestha("--json", "clip", str(files(tmp_path, cut_mp4=video)["cut_mp4"]), "--caption", "resumed",
                   key=account["key"], url=relay.url)
    finally:
        relay.close()
    made = r.json()
    assert re.search(r"^network: .*: waiting 1 s before retry 1 of 6, then resuming the upload where the server has it$",
                     r.err, re.M), r.err
    methods = [m for m, _, _ in relay.seen]
    assert methods[:3] == ["POST", "PATCH", "HEAD"] and methods[-1] == "POST", relay.seen
    patches = relay.patches()
    assert patches[0] == 0 and patches[-1] == 5 * 1024 * 1024, f"resumed at the kept part, not from 0: {relay.seen}"
    assert api.get(made["video"]["url"], token=account["token"]).content == video


def test_a_clip_rerun_with_its_idempotency_key_creates_nothing_and_sends_no_bytes_again(jestha, server, account, tmp_path):
    clip = str(files(tmp_path, again_mp4=MP4)["again_mp4"])
    idem = f"clip-{uuid.uuid4().hex}"
    relay = Relay(server)
    try:
        one = jestha("--json", "clip", clip, "--caption", "once", "--idempotency-key", idem,
                     key=account["key"], url=relay.url).json()
        relay.seen.clear()
        two = jestha("--json", "clip", clip, "--caption", "once", "--idempotency-key", idem,
                     key=account["key"], url=relay.url).json()
    finally:
        relay.close()
    assert two["id"] == one["id"]
    assert [m for m, _, _ in relay.seen] == ["HEAD", "POST"], f"the finished upload found, the publish replayed: {relay.seen}"
    rows = d1_query(server, f"SELECT COUNT(*) AS n FROM posts WHERE author_id = '{account['user']['id']}'")
    assert rows == [{"n": 1}]


def test_comment_and_reply_then_read_the_thread_in_pages(jestha, account):
    k = account["key"]
    post = jestha("--json", "post", "discuss", key=k).json()
    first = jestha("--json", "comment", post["id"], "first!", key=k).json()
    assert first["postId"] == post["id"] and first["content"] == "first!" and first["via"] == {"label": "ci job"}
    reply = jestha("--json", "comment", post["id"], "a reply", "--reply-to", first["id"], key=k).json()
    assert reply["parentId"] == first["id"]
    page = jestha("--json", "comments", post["id"], key=k).json()
    assert [c["id"] for c in page["items"]] == [first["id"], reply["id"]] and page["nextCursor"] is None
    one = jestha("--json", "comments", post["id"], "--limit", "1", key=k).json()
    assert [c["id"] for c in one["items"]] == [first["id"]] and one["nextCursor"]
    rest = jestha("--json", "comments", post["id"], "--limit", "1", "--cursor", one["nextCursor"], key=k).json()
    assert [c["id"] for c in rest["items"]] == [reply["id"]]
    every = jestha("--json", "comments", post["id"], "--limit", "1", "--all", key=k).json()
    assert [c["id"] for c in every["items"]] == [first["id"], reply["id"]]
    human = jestha("comments", post["id"], "--limit", "1", key=k)
    assert human.code == 0 and first["id"] in human.out and "first!" in human.out, human
    assert f"--cursor {one['nextCursor']}" in human.err, "the next page is named on stderr"


def test_comments_on_a_jesclip_are_found_by_its_id_alone(jestha, account, tmp_path):
    k = account["key"]
    clip = jestha("--json", "clip", str(files(tmp_path, v_mp4=MP4)["v_mp4"]), "--caption", "c", key=k).json()
    made = jestha("--json", "comment", clip["id"], "nice clip", key=k).json()
    assert made["postId"] == clip["id"]
    assert [c["content"] for c in jestha("--json", "comments", clip["id"], key=k).json()["items"]] == ["nice clip"]
    assert [c["id"] for c in jestha("--json", "comments", clip["id"], "--clip", key=k).json()["items"]] == [made["id"]]


def test_an_idempotency_key_makes_a_rerun_create_nothing(jestha, server, account):
    k, idem = account["key"], f"deploy-{uuid.uuid4().hex}"
    one = jestha("--json", "post", "released v1", "--idempotency-key", idem, key=k).json()
    two = jestha("--json", "post", "released v1", "--idempotency-key", idem, key=k).json()
    assert one["id"] == two["id"]
    rows = d1_query(server, f"SELECT COUNT(*) AS n FROM posts WHERE author_id = '{account['user']['id']}'")
    assert rows == [{"n": 1}]


def test_an_unknown_key_fails_with_exit_3_and_the_apis_code(jestha, account):
    # Well formed (it passes the local checksum), but no such key exists.
    r = jestha("whoami", key=forge())
    assert r.code == 3, r
    assert r.out == "" and r.err.startswith("error: invalid_api_key: "), r
    j = jestha("--json", "whoami", key=forge())
    assert j.code == 3 and j.error()["code"] == "invalid_api_key" and j.error()["status"] == 401


def test_a_malformed_key_is_refused_locally_with_exit_2(jestha, account):
    typo = account["key"][:-1] + ("a" if account["key"][-1] != "a" else "b")
    r = jestha("whoami", key=typo)
    assert r.code == 2 and "error: bad_api_key: " in r.err and "not sent" in r.err, r
    assert typo not in r.err, "the key is never echoed"


def test_a_missing_scope_fails_with_exit_4_naming_the_scope(jestha, api, account, tmp_path):
    reader = api.create_key(account["token"], label="reader", scopes=["read:comment"])["key"]
    r = jestha("post", "not allowed", key=reader)
    assert r.code == 4, r
    assert r.err.strip() == "error: insufficient_scope: Token missing scope(s): write:jes", r
    # A clip's upload begins at /api/uploads, which either write scope opens:
    # the server's message names both.
    clip = str(files(tmp_path, v_mp4=MP4[:2000])["v_mp4"])
    j = jestha("--json", "clip", clip, "--caption", "x", key=reader)
    assert j.code == 4 and j.error() == {
        "code": "insufficient_scope", "message": "Token missing scope(s): write:jes or write:jesclip", "status": 403}
    # With write:jes alone the upload begins, and its first bytes, a video, need write:jesclip.
    poster = api.create_key(account["token"], label="poster", scopes=["write:jes"])["key"]
    p = jestha("--json", "clip", clip, "--caption", "x", key=poster)
    assert p.code == 4 and p.error() == {
        "code": "insufficient_scope", "message": "Token missing scope(s): write:jesclip", "status": 403}


def test_a_revoked_key_fails_with_exit_3(jestha, api, account):
    k = api.create_key(account["token"], label="temp")
    assert api.delete(f"/api/auth/api-keys/{k['id']}", token=account["token"]).status_code == 204
    r = jestha("--json", "whoami", key=k["key"])
    assert r.code == 3 and r.error()["code"] == "api_key_revoked", r


def test_not_found_and_rejected_input_have_their_own_exit_codes(jestha, account, tmp_path):
    k = account["key"]
    nf = jestha("comments", "01JZZZZZZZZZZZZZZZZZZZZZZZ", key=k)
    assert nf.code == 5 and nf.err.startswith("error: not_found: "), nf
    long = jestha("--json", "post", "x" * 501, key=k)
    assert long.code == 6 and long.error()["code"] == "invalid_request" and "content" in long.error()["message"], long
    missing = jestha("post", "with a picture", "--media", str(tmp_path / "nope.png"), key=k)
    assert missing.code == 2 and "error: bad_file: " in missing.err and "nope.png" in missing.err, missing
    not_an_image = jestha("--json", "post", "text file", "--media", str(files(tmp_path, notes_txt=b"just text")["notes_txt"]), key=k)
    assert not_an_image.code == 6 and not_an_image.error()["code"] == "unsupported_media_type", not_an_image


def test_no_credential_an_unreachable_api_and_a_cleartext_remote_api(jestha, account):
    none = jestha("whoami")
    assert none.code == 3 and none.err.startswith("error: not_logged_in: "), none
    assert "jestha login" in none.err and "JESTHA_API_KEY" in none.err
    down = jestha("whoami", key=account["key"], url=f"http://127.0.0.1:{free_port()}")
    assert down.code == 8 and down.err.startswith("error: network: "), down
    remote = jestha("whoami", "--api", "http://api.example", key=account["key"])
    assert remote.code == 2 and "bad_api_url" in remote.err, remote
    out = jestha("logout")
    assert out.code == 0 and "Not logged in" in out.out, out


def test_errors_carry_no_colour_codes(jestha):
    r = jestha("whoami", env={"NO_COLOR": "1"})
    assert r.code == 3 and "\x1b[" not in r.err, r


def test_a_429_is_waited_out_visibly_and_the_command_succeeds(make_server, jestha):
    s = make_server({"RATE_LIMIT_PER_MINUTE": "2", "RATE_LIMIT_WINDOW_SECONDS": "6"})
    api = Api(s.url)
    a = api.signup()
    key = api.create_key(a["token"])["key"]
    left = 6 - time.time() % 6
    if left < 4:
        time.sleep(left + 0.2)
    statuses = [api.get("/api/auth/me", token=key).status_code for _ in range(3)]
    assert statuses == [200, 200, 429]
    r = jestha("--json", "whoami", key=key, url=s.url)
    assert r.code == 0, r
    assert r.json()["id"] == a["user"]["id"]
    m = re.search(r"^rate_limited: .*: waiting (\d+) s before retry 1 of 6 \(Retry-After: (\d+) s\)$", r.err, re.M)
    assert m, r.err
    waited, retry_after = int(m.group(1)), int(m.group(2))
    assert 1 <= retry_after <= 6 and waited == max(1, retry_after)
    assert r.seconds >= waited - 0.5, "it really waited"

    # With no retries allowed, the same refusal is exit 7 at once.
    left = 6 - time.time() % 6
    if left < 4:
        time.sleep(left + 0.2)
    for _ in range(3):
        api.get("/api/auth/me", token=key)
    now = jestha("--json", "--max-retries", "0", "whoami", key=key, url=s.url)
    assert now.code == 7 and now.error()["code"] == "rate_limited" and now.error()["status"] == 429, now
    assert "waiting" not in now.err


def test_the_upload_progress_bar_draws_on_a_terminal_without_colour_under_no_color(server, account, tmp_path):
    """stderr on a pseudo-terminal, as a person would see it."""
    assert BIN.exists(), f"{BIN} is not built"
    video = tmp_path / "big.mp4"
    video.write_bytes(MP4[:24] + os.urandom(8_000_000))

    def on_a_terminal(extra_env: dict) -> tuple[int, bytes]:
        master, slave = pty.openpty()
        env = {k: v for k, v in os.environ.items() if not k.startswith("JESTHA_") and k != "NO_COLOR"}
        env.update({"XDG_CONFIG_HOME": str(tmp_path / "cfg"), "JESTHA_API_URL": server.url,
                    "JESTHA_API_KEY": account["key"], "TERM": "xterm", **extra_env})
        p = subprocess.Popen([str(BIN), "clip", str(video), "--caption", "tty"], env=env,
                             stdout=subprocess.DEVNULL, stderr=slave, stdin=subprocess.DEVNULL)
        os.close(slave)
        seen = b""
        while True:
            ready, _, _ = select.select([master], [], [], 60)
            if not ready:
                break
            try:
                chunk = os.read(master, 65536)
            except OSError:
                break
            if not chunk:
                break
            seen += chunk
        os.close(master)
        return p.wait(timeout=60), seen

    code, plain = on_a_terminal({"NO_COLOR": "1"})
    assert code == 0, plain
    assert b"big.mp4" in plain and re.search(rb"\d+(\.\d+)? ?[KMG]i?B/\d+(\.\d+)? ?[KMG]i?B", plain), plain[-500:]
    assert not re.search(rb"\x1b\[[0-9;]*m", plain), "NO_COLOR: no SGR colour codes"
    code, coloured = on_a_terminal({})
    assert code == 0 and re.search(rb"\x1b\[[0-9;]*3[0-9]m", coloured), "without NO_COLOR the bar is coloured"


def readme_blocks(section: str) -> list[str]:
    """The fenced sh blocks under README's `## section`."""
    text = (ROOT / "README.md").read_text()
    m = re.search(rf"^## {re.escape(section)}\n(.*?)(?=^## )", text, re.S | re.M)
    assert m, f"README has no section {section!r}"
    return re.findall(r"^```sh\n(.*?)^```", m.group(1), re.S | re.M)


def test_the_readme_ci_example_posts_once_however_often_the_job_reruns(server, api, account, tmp_path):
    ci = next(b for b in readme_blocks("Command-line client: `jestha`") if "JESTHA_API_KEY" in b)
    env = {k: v for k, v in os.environ.items() if not k.startswith("JESTHA_")}
    env.update({"PATH": f"{BIN.parent}:{env['PATH']}", "XDG_CONFIG_HOME": str(tmp_path / "cfg"),
                "JESTHA_API_URL": server.url, "JESTHA_API_KEY": account["key"], "COMMIT": uuid.uuid4().hex[:12]})
    for _ in range(2):
        p = subprocess.run(["bash", "-euo", "pipefail", "-c", ci], env=env, cwd=tmp_path, capture_output=True, text=True, timeout=60)
        assert p.returncode == 0, p.stderr
    assert json.loads((tmp_path / "whoami.json").read_text())["id"] == account["user"]["id"]
    rows = d1_query(server, f"SELECT content FROM posts WHERE author_id = '{account['user']['id']}'")
    assert rows == [{"content": f"Deployed {env['COMMIT']} to production"}], "the rerun created nothing"


class Login:
    """`jestha --no-browser login` running: the address and code it printed."""

    def __init__(self, server, tmp_path, *args: str, env: dict | None = None):
        e = {k: v for k, v in os.environ.items() if not k.startswith("JESTHA_")}
        e.update({"XDG_CONFIG_HOME": str(tmp_path / "config"), "JESTHA_API_URL": server.url, **(env or {})})
        self.env = e
        self.proc = subprocess.Popen([str(BIN), *args, "login", "--no-browser"], env=e, text=True,
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        self.lines: list[str] = []
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            line = self.proc.stderr.readline()
            if not line:
                break
            self.lines.append(line)
            m = re.search(r"\(or open (\S+), which has the code filled in\)", line)
            if m:
                self.url = m.group(1)
                break
        else:
            raise AssertionError("".join(self.lines))
        assert hasattr(self, "url"), "".join(self.lines)
        self.code = re.search(r"enter the code: (\S+)", "".join(self.lines)).group(1)

    def approve(self, username: str, password: str, *extra: str):
        p = subprocess.run(["node", str(ROOT / "tests/browser/approve.mjs"), self.url, username, password, *extra],
                           cwd=ROOT, capture_output=True, text=True, timeout=150)
        assert p.returncode == 0, p.stderr

    def finish(self, timeout: float = 90) -> Run:
        started = time.monotonic()
        out, err = self.proc.communicate(timeout=timeout)
        return Run(subprocess.CompletedProcess(self.proc.args, self.proc.returncode, out, "".join(self.lines) + err),
                   time.monotonic() - started)


def test_login_with_the_device_grant_then_whoami_post_and_logout(jestha, server, api, tmp_path):
    a = api.signup()
    login = Login(server, tmp_path)
    assert login.url == f"{server.url}/device?user_code={login.code}"
    assert re.fullmatch(r"[B-DF-HJ-NP-TV-XZ]{4}-[B-DF-HJ-NP-TV-XZ]{4}", login.code), login.code
    login.approve(a["user"]["username"], a["password"], "--untick", "write:jesclip")
    done = login.finish()
    assert done.code == 0, done
    assert f"Logged in to {server.url} as @{a['user']['username']}" in done.out, done
    creds = tmp_path / "config" / "jestha" / "credentials.json"
    assert oct(creds.stat().st_mode & 0o777) == "0o600"
    stored = json.loads(creds.read_text())["logins"][server.url]
    assert stored["accessToken"].startswith("jes_oat_") and stored["refreshToken"].startswith("jes_ort_")
    assert "write:jesclip" not in stored["scope"] and "write:jes" in stored["scope"]
    me = jestha("--json", "whoami").json()
    assert me["username"] == a["user"]["username"]
    made = jestha("--json", "post", "from a logged-in terminal").json()
    assert made["via"] == {"label": "Jestha CLI"}
    grants = api.get("/api/auth/grants", token=a["token"]).json()["items"]
    assert [g["clientName"] for g in grants] == ["Jestha CLI"]
    out = jestha("logout")
    assert out.code == 0 and "tokens revoked and forgotten" in out.out, out
    assert api.get("/api/auth/grants", token=a["token"]).json()["items"] == []
    r = api.get("/api/auth/me", token=stored["accessToken"])
    assert r.status_code == 401 and r.json()["error"]["code"] == "invalid_token"
    after = jestha("whoami")
    assert after.code == 3, after


def test_a_denied_login_exits_3_with_access_denied(server, api, tmp_path):
    a = api.signup()
    login = Login(server, tmp_path)
    login.approve(a["user"]["username"], a["password"], "--deny")
    done = login.finish()
    assert done.code == 3, done
    assert "access_denied" in done.err, done
    assert not (tmp_path / "config" / "jestha" / "credentials.json").exists() or \
        server.url not in json.loads((tmp_path / "config" / "jestha" / "credentials.json").read_text()).get("logins", {})


def test_an_expired_access_token_is_refreshed_by_the_next_command(make_server, tmp_path, api):
    s = make_server({"OAUTH_ACCESS_TOKEN_TTL_SECONDS": "3"})
    sapi = Api(s.url)
    a = sapi.signup()
    login = Login(s, tmp_path)
    login.approve(a["user"]["username"], a["password"])
    assert login.finish().code == 0
    creds = tmp_path / "config" / "jestha" / "credentials.json"
    first = json.loads(creds.read_text())["logins"][s.url]["refreshToken"]
    time.sleep(4)
    env = {k: v for k, v in login.env.items()}
    p = subprocess.run([str(BIN), "--json", "whoami"], env=env, capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, p.stderr
    assert json.loads(p.stdout)["username"] == a["user"]["username"]
    assert json.loads(creds.read_text())["logins"][s.url]["refreshToken"] != first
