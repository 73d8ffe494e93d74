"""The README's examples, run as a reader would paste them, against a fresh
local server: only the host changes (127.0.0.1:8787 becomes the test
server's), and the variables the text tells the reader to set are set. If the
README shows something that no longer works, these fail.

Blocks are found by the section they sit in and their language, so an edited
example is the one tested.
"""
import json
import os
import re
import shutil
import subprocess
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

import pytest

from conftest import Api, ROOT, assert_error
from receiver import Receiver

README = (ROOT / "README.md").read_text()
HOST = "http://127.0.0.1:8787"


def section_text(section: str, text: str = README) -> str:
    """What is under the heading `section` (any level), up to the next heading
    of the same or a higher level; `#` lines inside code fences are not headings."""
    lines, out, level, fenced = text.splitlines(keepends=True), [], None, False
    for line in lines:
        if line.startswith("```"):
            fenced = not fenced
        heading = None if fenced else re.match(r"(#+) (.*)\n?$", line)
        if level is None:
            if heading and heading.group(2) == section:
                level = len(heading.group(1))
            continue
        if heading and len(heading.group(1)) <= level:
            break
        out.append(line)
    assert level is not None, f"README has no section {section!r}"
    return "".join(out)


def blocks(section: str, lang: str) -> list[str]:
    """The fenced `lang` blocks under the heading `section` (its subsections included)."""
    return re.findall(rf"^```{lang}\n(.*?)^```", section_text(section), re.S | re.M)


def run(cmd: list[str], env: dict[str, str], cwd: Path | None = None) -> str:
    p = subprocess.run(cmd, env={**os.environ, **env}, capture_output=True, text=True, timeout=90, cwd=cwd)
    assert p.returncode == 0, f"{cmd[0]} failed:\n{p.stdout}\n{p.stderr}"
    return p.stdout


@pytest.fixture
def key(api: Api) -> tuple[dict, str]:
    a = api.signup()
    return a, api.create_key(a["token"], label="readme", scopes=["write:jes", "read:comment", "webhooks:manage"])["key"]


def test_try_it_logs_in_makes_a_key_and_uses_it(server, api: Api):
    """`make dev` makes the demo account; the rest of the block is shell."""
    (block,) = blocks("Try it", "sh")
    lines = block.splitlines()
    assert lines[0] == "make dev"
    password = re.search(r'"password":"([^"]+)"', block).group(1)
    login = re.search(r'"login":"([^"]+)"', block).group(1)
    demo = api.signup(username=login, password=password)
    out = run(["bash", "-euo", "pipefail", "-c", "\n".join(lines[1:]).replace(HOST, server.url)], {})
    me = json.loads(out)
    assert me["id"] == demo["user"]["id"] and me["username"] == login
    keys = api.get("/api/auth/api-keys", token=demo["token"]).json()["items"]
    assert [k["label"] for k in keys] == ["my scheduler"], keys


def test_the_curl_and_python_examples_run(server, api: Api, key):
    a, k = key
    env = {"JESTHA_API_KEY": k}
    (curl,) = blocks("API keys", "sh")[-1:]
    made = json.loads(run(["bash", "-c", curl.replace(HOST, server.url)], env))
    assert made["content"] == "Hello from my service" and made["author"]["id"] == a["user"]["id"]
    (py,) = blocks("API keys", "python")
    assert run([sys.executable, "-c", py.replace(HOST, server.url)], env).strip() == a["user"]["id"]


@pytest.mark.skipif(shutil.which("node") is None, reason="node is not installed")
def test_the_javascript_example_runs(server, key, tmp_path):
    a, k = key
    (js,) = blocks("API keys", "js")
    out = run(["node", "--input-type=module", "-e", js.replace(HOST, server.url)], {"JESTHA_API_KEY": k}, cwd=tmp_path)
    assert out.strip() == a["user"]["id"]


def test_the_webhook_example_adds_an_endpoint(server, api: Api, key):
    a, k = key
    key_id = api.get("/api/auth/key", token=k).json()["id"]
    (block,) = blocks("Webhooks", "sh")
    made = json.loads(run(["bash", "-c", block.replace(HOST, server.url)], {"JESTHA_API_KEY": k, "KEY_ID": key_id}))
    assert made["url"] == "https://example.com/hooks/jestha" and made["secret"].startswith("whsec_")
    listed = api.get(f"/api/auth/api-keys/{key_id}/webhooks", token=a["token"]).json()["items"]
    assert [w["id"] for w in listed] == [made["id"]]


def test_the_mcp_sdk_example_lists_tools_and_calls_whoami(server, api: Api, key):
    a, k = key
    (py,) = blocks("MCP", "python")
    out = run([sys.executable, "-c", py.replace(HOST, server.url)], {"JESTHA_API_KEY": k}).splitlines()
    assert "whoami" in out[0] and "create_jes" in out[0], out
    assert a["user"]["id"] in out[1], out


# ---------------------------------------------------------------- Integrating

def test_the_quickstart_goes_from_sign_up_to_a_first_jes(server, api: Api):
    (block,) = blocks("Quickstart: from sign-up to your first Jes", "sh")
    jes = json.loads(run(["bash", "-euo", "pipefail", "-c", block.replace(HOST, server.url)], {}).splitlines()[-1])
    assert jes["content"] == "Hello from my scheduler #firstpost" and jes["visibility"] == "PUBLIC"
    assert jes["author"]["username"] == "my_scheduler" and jes["via"] == {"label": "my scheduler"}
    assert jes["hashtags"] == ["firstpost"]


def exhaust(api: Api, key: str) -> int:
    """Spends the key's per-minute limit: returns the Retry-After of the first 429
    that leaves at least 6 seconds, so a retry cannot slip into the next window first
    (starting node on a loaded CI machine has taken over 2 s)."""
    for _ in range(50):
        r = api.get("/api/auth/me", token=key)
        if r.status_code == 429 and int(r.headers["retry-after"]) >= 6:
            return int(r.headers["retry-after"])
        if r.status_code == 429:
            time.sleep(int(r.headers["retry-after"]) + 0.2)
    raise AssertionError("never rate limited")


@pytest.fixture(scope="module")
def limited(make_server):
    """A server allowing one request per 10-second window per key."""
    return make_server({"RATE_LIMIT_PER_MINUTE": "1", "RATE_LIMIT_WINDOW_SECONDS": "10"})


def test_the_python_retry_helper_waits_out_retry_after_and_keeps_the_idempotency_key(limited, monkeypatch):
    api = Api(limited.url)
    a = api.signup()
    key = api.create_key(a["token"], scopes=["write:jes"])["key"]
    (block,) = blocks("Retries and backoff", "python")
    import requests as requests_module
    seen, sleeps, real_request, real_sleep = [], [], requests_module.request, time.sleep

    def request(method, url, **kw):
        res = real_request(method, url, **kw)
        seen.append((res.status_code, res.headers.get("retry-after"), kw["headers"].get("Idempotency-Key")))
        return res

    def sleep(seconds):
        sleeps.append(seconds)
        real_sleep(seconds)

    monkeypatch.setattr(requests_module, "request", request)
    monkeypatch.setattr(time, "sleep", sleep)
    ns: dict = {}
    exec(block, ns)
    exhaust(api, key)
    seen.clear(), sleeps.clear()  # exhaust's own requests and waits are not the helper's
    res = ns["call"]("POST", f"{limited.url}/api/posts", key, json={"content": "retried", "visibility": "PUBLIC"})
    assert res.status_code == 201, res.text
    assert seen[0][0] == 429 and seen[-1][0] == 201 and {s for s, _, _ in seen[:-1]} == {429}, seen
    assert len(sleeps) == len(seen) - 1 and sleeps[0] >= max(1, int(seen[0][1])), (sleeps, seen)
    assert len({idem for _, _, idem in seen}) == 1 and seen[0][2], "one Idempotency-Key across the retries"
    posts = api.get(f"/api/users/{a['user']['username']}/posts", token=a["token"]).json()["items"]
    assert [p["content"] for p in posts] == ["retried"]


@pytest.mark.skipif(shutil.which("node") is None, reason="node is not installed")
def test_the_javascript_retry_helper_waits_out_retry_after_and_keeps_the_idempotency_key(limited, tmp_path):
    api = Api(limited.url)
    a = api.signup()
    key = api.create_key(a["token"], scopes=["write:jes"])["key"]
    (block,) = blocks("Retries and backoff", "js")
    (tmp_path / "retry.mjs").write_text(block)
    (tmp_path / "run.mjs").write_text("""
import { call } from './retry.mjs';
const seen = [];
const realFetch = globalThis.fetch;
globalThis.fetch = async (url, init) => {
  const r = await realFetch(url, init);
  seen.push([r.status, r.headers.get('retry-after'), init.headers['Idempotency-Key']]);
  return r;
};
const started = Date.now();
const res = await call('POST', `${process.env.BASE}/api/posts`, process.env.KEY, { body: { content: 'retried in js', visibility: 'PUBLIC' } });
console.log(JSON.stringify({ status: res.status, seen, elapsed: (Date.now() - started) / 1000 }));
""")
    exhaust(api, key)
    out = json.loads(run(["node", str(tmp_path / "run.mjs")], {"BASE": limited.url, "KEY": key}))
    statuses = [s for s, _, _ in out["seen"]]
    assert out["status"] == 201 and statuses[-1] == 201 and statuses[0] == 429 and set(statuses[:-1]) == {429}, out
    assert out["elapsed"] >= int(out["seen"][0][1]), out
    assert len({idem for _, _, idem in out["seen"]}) == 1 and out["seen"][0][2], out


def test_key_rotation_keeps_two_live_keys_then_revokes_the_old_one(server, api: Api):
    a = api.signup()
    old = api.create_key(a["token"], label="my scheduler", scopes=["write:jes"])
    (block,) = blocks("Rotating a key", "sh")
    out = run(["bash", "-euo", "pipefail", "-c", block.replace(HOST, server.url)],
              {"SESSION": a["token"], "OLD_KEY_ID": old["id"]})
    live = out.strip().splitlines()
    assert len(live) == 2, f"step 3 shows both live keys: {out}"
    assert any(line.startswith(f"{old['id']} my scheduler ") for line in live), out
    assert any(" my scheduler 2027-03 " in line for line in live), out
    assert_error(api.get("/api/auth/me", token=old["key"]), 401, "api_key_revoked")
    keys = api.get("/api/auth/api-keys", token=a["token"]).json()["items"]
    assert sorted((k["label"], k["status"], tuple(k["scopes"])) for k in keys) == [
        ("my scheduler", "revoked", ("write:jes",)), ("my scheduler 2027-03", "active", ("write:jes",))]


def test_the_webhook_verifiers_accept_real_deliveries_and_refuse_forgeries(server, api: Api, tmp_path):
    """Both snippets judge the same cases alike: real deliveries (one signature, then
    two during a secret rotation) pass; a changed body, another secret and a stale
    timestamp fail."""
    from standardwebhooks import Webhook

    rx = Receiver()
    try:
        a = api.signup()
        key = api.create_key(a["token"], preset="moderation")
        path = rx.new_path()
        hooks = f"/api/auth/api-keys/{key['id']}/webhooks"
        hook = api.post(hooks, token=a["token"], json={"url": rx.url(path), "events": ["webhook.test"]}).json()

        def delivery(n: int) -> dict:
            assert api.post(f"{hooks}/{hook['id']}/test", token=a["token"]).status_code == 202
            deadline = time.time() + 45
            while len(rx.at(path)) < n and time.time() < deadline:
                time.sleep(0.2)
            return rx.at(path)[n - 1]

        first = delivery(1)
        rotated = api.post(f"{hooks}/{hook['id']}/rotate-secret", token=a["token"]).json()
        second = delivery(2)
    finally:
        rx.stop()
    assert " " in second["headers"]["webhook-signature"], "two signatures during the grace period"
    old, new = hook["secret"], rotated["secret"]
    stale_ts = int(time.time()) - 600
    stale = Webhook(old).sign(first["headers"]["webhook-id"], datetime.fromtimestamp(stale_ts, timezone.utc), first["body"])
    cases = [
        (old, first["headers"], first["body"], True),
        (old, first["headers"], first["body"].replace("test", "tEst"), False),
        (new, first["headers"], first["body"], False),
        (old, second["headers"], second["body"], True),
        (new, second["headers"], second["body"], True),
        (old, {**first["headers"], "webhook-timestamp": str(stale_ts), "webhook-signature": stale}, first["body"], False),
    ]
    assert Webhook(old).verify(first["body"], first["headers"]), "the reference library agrees on the real one"
    (py,) = blocks("Verifying webhooks", "python")
    ns: dict = {}
    exec(py, ns)
    assert [ns["verify_webhook"](s, h, b.encode()) for s, h, b, _ in cases] == [want for *_, want in cases]
    (js,) = blocks("Verifying webhooks", "js")
    (tmp_path / "verify.mjs").write_text(js)
    (tmp_path / "cases.json").write_text(json.dumps([[s, h, b] for s, h, b, _ in cases]))
    (tmp_path / "run.mjs").write_text("""
import { readFileSync } from 'node:fs';
import { verifyWebhook } from './verify.mjs';
const cases = JSON.parse(readFileSync(new URL('./cases.json', import.meta.url)));
console.log(JSON.stringify(cases.map(([s, h, b]) => verifyWebhook(s, h, Buffer.from(b)))));
""")
    assert json.loads(run(["node", str(tmp_path / "run.mjs")], {})) == [want for *_, want in cases]


def table_codes(text: str) -> dict[str, set[int]]:
    """Every `| status | code(s) |` row of a Markdown table: code -> statuses."""
    out: dict[str, set[int]] = {}
    for status, cell in re.findall(r"^\| *(\d{3}) *\| *([^|]+)\|", text, re.M):
        for code in re.findall(r"[a-z]+(?:_[a-z]+)+|[a-z]{5,}", cell):
            out.setdefault(code, set()).add(int(status))
    return out


def test_the_error_tables_list_every_code_of_the_envelope_with_its_status(api: Api):
    """README's and docs/api.md's tables against the served document: ErrorCode lists
    every code, and each error example says which status a code comes with."""
    doc = api.get("/openapi.json").json()
    codes = set(doc["components"]["schemas"]["ErrorCode"]["enum"])
    statuses: dict[str, set[int]] = {}
    for ops in doc["paths"].values():
        for op in ops.values():
            for status, r in op["responses"].items():
                if "$ref" in r:
                    r = doc["components"]["responses"][r["$ref"].rsplit("/", 1)[1]]
                for ex in r.get("content", {}).get("application/json", {}).get("examples", {}).values():
                    statuses.setdefault(ex["value"]["error"]["code"], set()).add(int(status))
    assert set(statuses) == codes - {"method_not_allowed"}, "every code but 405 is some operation's answer"
    readme = table_codes(section_text("Errors"))
    assert set(readme) == codes, f"README's table: missing {codes - set(readme)}, unknown {set(readme) - codes}"
    contract = table_codes(section_text("Errors", (ROOT / "docs" / "api.md").read_text()))
    assert codes <= set(contract), f"docs/api.md lacks {codes - set(contract)}"
    for code, seen in statuses.items():
        assert seen <= readme[code], f"README gives {code} {readme[code]}, the API answers it with {seen}"
        assert seen <= contract[code], f"docs/api.md gives {code} {contract[code]}, the API answers it with {seen}"


def test_the_docs_link_only_files_inside_the_repository():
    for doc in [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]:
        for target in re.findall(r"\]\(([^)\s]+)\)", doc.read_text()):
            if re.match(r"[a-z]+:", target) or target.startswith("#"):
                continue
            path = (doc.parent / target.split("#")[0]).resolve()
            assert path.is_relative_to(ROOT.resolve()), f"{doc.name} links {target}, outside the repository"
            assert path.exists(), f"{doc.name} links {target}, which does not exist"
