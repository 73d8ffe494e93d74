"""Seed 001's integration examples, run verbatim against the local server:
the curl, JavaScript fetch and Python requests snippets that create
a Jes with an API key. Only the host changes (and, for curl, the `jes_live_...`
placeholder becomes a real key, as a reader would paste it).

The snippets are cut from tests/fixtures/seed_001_api_keys.txt, a verbatim
copy of the seed, so the test breaks if the documented examples stop working.
"""
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import Api

SEED = (Path(__file__).parent / "fixtures" / "seed_001_api_keys.txt").read_text()
HOST = "https://api.jestha.com"


def snippet(start: str, end: str) -> str:
    """The seed text from `start` through the end of `end`."""
    i = SEED.index(start)
    j = SEED.index(end, i) + len(end)
    return SEED[i:j]


CURL = snippet("curl -X POST https://api.jestha.com/api/posts", """"visibility":"PUBLIC"}'""")
JS = snippet("const res = await fetch('https://api.jestha.com/api/posts'", "console.log(jes.id);")
PY = snippet("import os, requests", "print(res.json()['id'])")


def test_the_snippets_are_the_ones_in_the_seed():
    assert CURL.count("\n") == 3 and CURL.endswith("'{\"content\":\"Hello from my service\",\"visibility\":\"PUBLIC\"}'")
    assert "process.env.JESTHA_API_KEY" in JS and "JSON.stringify" in JS
    assert "os.environ['JESTHA_API_KEY']" in PY and "raise_for_status" in PY


@pytest.fixture
def account(api: Api):
    a = api.signup()
    key = api.create_key(a["token"], label="My Service", scopes=["write:jes"])
    return a, key["key"]


def check_created(api: Api, account, stdout: str) -> None:
    a, key = account
    # curl prints the created Jes (its id first, the author's id inside);
    # the JS and Python snippets print only the id.
    try:
        jes_id = json.loads(stdout)["id"]
    except ValueError:
        ids = re.findall(r"\b[0-9A-HJKMNP-TV-Z]{26}\b", stdout)
        assert len(ids) == 1, stdout
        jes_id = ids[0]
    r = api.get(f"/api/posts/{jes_id}", token=a["token"])
    assert r.status_code == 200, r.text
    jes = r.json()
    assert jes["content"] == "Hello from my service" and jes["visibility"] == "PUBLIC"
    assert jes["author"]["id"] == a["user"]["id"]
    assert jes["via"] == {"label": "My Service"}


def run(cmd: list[str], key: str, cwd: Path | None = None) -> str:
    env = {**os.environ, "JESTHA_API_KEY": key}
    p = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=60, cwd=cwd)
    assert p.returncode == 0, f"{cmd[0]} failed ({p.returncode}):\n{p.stdout}\n{p.stderr}"
    return p.stdout


@pytest.mark.skipif(shutil.which("curl") is None, reason="curl is not installed")
def test_the_curl_example_creates_a_jes(server, api: Api, account):
    _, key = account
    script = CURL.replace(HOST, server.url).replace("jes_live_...", key)
    out = run(["bash", "-c", script], key)
    check_created(api, account, out)


@pytest.mark.skipif(shutil.which("node") is None, reason="node is not installed")
def test_the_javascript_fetch_example_creates_a_jes(server, api: Api, account, tmp_path):
    _, key = account
    # Top-level await, as in the docs: run it as an ES module.
    out = run(["node", "--input-type=module", "-e", JS.replace(HOST, server.url)], key, cwd=tmp_path)
    check_created(api, account, out)


def test_the_python_requests_example_creates_a_jes(server, api: Api, account):
    _, key = account
    out = run([sys.executable, "-c", PY.replace(HOST, server.url)], key)
    check_created(api, account, out)


def test_the_javascript_example_reports_an_api_error_as_its_docs_say(server, api: Api, tmp_path):
    a = api.signup()
    no_scope = api.create_key(a["token"], scopes=["read:comment"])["key"]
    env = {**os.environ, "JESTHA_API_KEY": no_scope}
    p = subprocess.run(["node", "--input-type=module", "-e", JS.replace(HOST, server.url)], env=env,
                       capture_output=True, text=True, timeout=60, cwd=tmp_path)
    assert p.returncode != 0
    assert "Jestha API 403" in p.stderr and "insufficient_scope" in p.stderr
