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
from pathlib import Path

import pytest

from conftest import Api, ROOT

README = (ROOT / "README.md").read_text()
HOST = "http://127.0.0.1:8787"


def blocks(section: str, lang: str) -> list[str]:
    """The fenced `lang` blocks under the `## section` (or `### section`) heading."""
    m = re.search(rf"^##+ {re.escape(section)}\n(.*?)(?=^## )", README, re.S | re.M)
    assert m, f"README has no section {section!r}"
    return re.findall(rf"^```{lang}\n(.*?)^```", m.group(1), re.S | re.M)


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
