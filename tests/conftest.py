"""HTTP test harness: starts `wrangler dev` on a free port with a fresh state
directory, applies migrations/ to its local D1, and stops the whole process
group afterwards, even when a test fails. One process serves the three
Workers: the API (wrangler.toml, the port), the engine (Gate Durable Object,
queue consumer, cron sweeps) and the account Worker (sign-in, key
management), whose configs are written into the state directory with the
same variables (`--var` reaches only the API).

Fixtures:
  server        one shared instance with the default configuration
  make_server   start another instance with its own Worker variables
  api           an `Api` client bound to `server`
"""
from __future__ import annotations

import atexit
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import pytest
import requests

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "scripts"))
import worker_config  # noqa: E402
ENV = dict(os.environ)
ENV["PATH"] = f"{ROOT / 'node_modules' / '.bin'}:{Path.home() / '.cargo' / 'bin'}:{ENV.get('PATH', '')}"
ENV["WRANGLER_SEND_METRICS"] = "false"
ENV["WRANGLER_LOG_PATH"] = str(ROOT / ".wrangler" / "logs")

_live: list["Server"] = []


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """One `wrangler dev` process group with its own state directory."""

    def __init__(self, vars: dict[str, str] | None = None, state_dir: str | None = None,
                 engine_vars: dict[str, str] | None = None):
        # Every test client comes from one address: the per-address bounds
        # (sign-ups, unknown credentials) are lifted unless a test sets them.
        self.vars = {"WEBHOOK_ALLOW_LOOPBACK": "true", "CIMD_ALLOW_LOOPBACK": "true", "SIGNUP_MAX_PER_ADDRESS": "1000000",
                     "CREDENTIAL_MISS_MAX": "1000000", **(vars or {})}
        # The engine gets the same variables, `engine_vars` on top (to test the two out of step).
        self.engine_vars = {**self.vars, **(engine_vars or {})}
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.own_state = state_dir is None
        self.state = state_dir or tempfile.mkdtemp(prefix="jestha-state-")
        self.proc: subprocess.Popen | None = None
        self.log_path = Path(tempfile.mkstemp(prefix="wrangler-", suffix=".log")[1])

    def start(self, timeout: float = 120) -> "Server":
        subprocess.run(
            ["wrangler", "d1", "migrations", "apply", "DB", "--local", "--persist-to", self.state],
            cwd=ROOT, env=ENV, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
        )
        configs = worker_config.write_all(Path(self.state), self.engine_vars, self.vars)
        self._launch(configs)
        _live.append(self)
        deadline = time.time() + timeout
        # A port free when chosen can be taken before workerd binds it (other
        # servers' workerd pick ephemeral ports too): then a fresh port, twice at most.
        port_retries = 2
        while time.time() < deadline:
            if self.proc.poll() is not None:
                if port_retries and "Address already in use" in self.log_path.read_text(errors="replace"):
                    port_retries -= 1
                    self._kill_group()
                    self.port = free_port()
                    self.url = f"http://127.0.0.1:{self.port}"
                    self._launch(configs)
                    continue
                raise RuntimeError(f"wrangler dev exited:\n{self.log_path.read_text()[-3000:]}")
            try:
                if requests.get(self.url + "/health", timeout=2).status_code == 200:
                    return self
            except requests.RequestException:
                pass
            time.sleep(0.3)
        self.stop()
        raise RuntimeError(f"wrangler dev did not answer in {timeout}s:\n{self.log_path.read_text()[-3000:]}")

    def _launch(self, configs: list[Path]) -> None:
        # Each instance gets its own inspector port: two on the default 9229 collide.
        # --test-scheduled: GET /__scheduled runs the cron (with [assets]
        # configured, /cdn-cgi/handler/scheduled answers 500 in wrangler 4.86).
        args = ["wrangler", "dev", "-c", "wrangler.toml"]
        for config in configs:
            args += ["-c", str(config)]
        args += ["--ip", "127.0.0.1", "--port", str(self.port), "--persist-to", self.state,
                "--inspector-port", str(free_port()), "--test-scheduled"]
        for k, v in self.vars.items():
            args += ["--var", f"{k}:{v}"]
        if self.proc:
            self.log.close()  # the failed launch's; the new one starts the file afresh
        self.log = open(self.log_path, "w")
        # A new session makes wrangler and its workerd children one process group.
        self.proc = subprocess.Popen(args, cwd=ROOT, env=ENV, stdout=self.log, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL, start_new_session=True)
        self.group_killed = False

    def _kill_group(self) -> None:
        """Ends wrangler and every workerd child (they may outlive a TERM to the leader)."""
        if self.proc and self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGTERM)
                self.proc.wait(timeout=10)
            except (ProcessLookupError, subprocess.TimeoutExpired):
                pass
        # Once the group is gone its id may be reused by another process group:
        # only the first stop of a launch signals it (a test may stop a server
        # that its fixture stops again at the end).
        if self.proc and not self.group_killed:
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            self.group_killed = True

    def stop(self, keep_state: bool = False) -> None:
        self._kill_group()
        if self in _live:
            _live.remove(self)
        if self.own_state and not keep_state:
            shutil.rmtree(self.state, ignore_errors=True)

    def logs(self) -> str:
        return self.log_path.read_text(errors="replace")


@atexit.register
def _stop_all() -> None:
    for s in list(_live):
        s.stop()


class Api:
    """A small client: `api.post(path, json=…, token=…)` returns the Response."""

    def __init__(self, url: str):
        self.url = url
        self.http = requests.Session()

    def call(self, method: str, path: str, token: str | None = None, headers: dict | None = None, **kw):
        h = dict(headers or {})
        if token:
            h["Authorization"] = f"Bearer {token}"
        return self.http.request(method, self.url + path, headers=h, timeout=30, **kw)

    def get(self, path, **kw):
        return self.call("GET", path, **kw)

    def post(self, path, **kw):
        return self.call("POST", path, **kw)

    def patch(self, path, **kw):
        return self.call("PATCH", path, **kw)

    def delete(self, path, **kw):
        return self.call("DELETE", path, **kw)

    def signup(self, username: str | None = None, password: str = "correct horse battery", **extra) -> dict:
        """Creates an account; returns {user, token, password}."""
        username = username or "u" + uuid.uuid4().hex[:12]
        body = {"username": username, "email": f"{username}@example.com", "password": password, **extra}
        r = self.post("/api/auth/signup", json=body)
        assert r.status_code == 201, r.text
        data = r.json()
        return {"user": data["user"], "token": data["session"]["token"], "password": password}

    def create_key(self, session: str, **body) -> dict:
        body.setdefault("label", "test key")
        if "scopes" not in body and "preset" not in body:
            body["scopes"] = ["write:jes"]
        r = self.post("/api/auth/api-keys", token=session, json=body)
        assert r.status_code == 201, r.text
        return r.json()


def assert_error(r: requests.Response, status: int, code: str) -> dict:
    """The response is the contract's error envelope with this status and code."""
    assert r.status_code == status, f"expected {status} {code}, got {r.status_code}: {r.text}"
    assert r.headers["content-type"].startswith("application/json")
    assert "x-request-id" in r.headers
    body = r.json()
    assert set(body) == {"error"}, body
    assert body["error"]["code"] == code, body
    assert isinstance(body["error"]["message"], str) and body["error"]["message"]
    return body["error"]


@pytest.fixture(scope="session")
def server():
    s = Server().start()
    yield s
    s.stop()


@pytest.fixture(scope="module")
def make_server():
    """Servers with variables of a test's own, stopped when the module ends
    (each is a wrangler and two workerd processes, ~350 MB: kept for the
    whole session, dozens of them would press on a small CI machine)."""
    started: list[Server] = []

    def make(vars: dict[str, str] | None = None, state_dir: str | None = None,
             engine_vars: dict[str, str] | None = None) -> Server:
        s = Server(vars, state_dir, engine_vars).start()
        started.append(s)
        return s

    yield make
    for s in started:
        s.stop()


@pytest.fixture(scope="session")
def api(server) -> Api:
    return Api(server.url)


def d1_file(server: "Server") -> str:
    """The local D1 database file of a running server."""
    import glob
    files = [f for f in glob.glob(os.path.join(server.state, "v3/d1/miniflare-D1DatabaseObject/*.sqlite"))
             if not f.endswith("metadata.sqlite")]
    assert len(files) == 1, files
    return files[0]


def wait_clear_of_window_end(window: int, margin: float = 4.0) -> None:
    """Every window (limits, throttles) is aligned to multiples of its length
    since the epoch: don't start a burst that must fit in one just before a reset."""
    left = window - time.time() % window
    if left < margin:
        time.sleep(left + 0.2)


def wait_for(what, cond, timeout: float = 45, every: float = 0.25):
    """Polls `cond` until it returns something truthy; fails naming `what`."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        got = cond()
        if got:
            return got
        time.sleep(every)
    raise AssertionError(f"timed out waiting for {what}")


def d1_query(server: "Server", sql: str) -> list[dict]:
    """Runs SQL on the server's local D1 database directly (database-effect
    assertions, and the rows a test plants; a write commits when it succeeds).
    sqlite in-process, not `wrangler d1 execute`, which fails under load while
    wrangler dev holds the same database."""
    import sqlite3
    with sqlite3.connect(d1_file(server), timeout=10) as db:
        db.row_factory = sqlite3.Row
        return [dict(r) for r in db.execute(sql)]
