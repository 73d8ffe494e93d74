"""Property-based fuzzing of the whole API from its OpenAPI document with
schemathesis: no 5xx, every response conforms to
the documented status codes, content types and schemas, and no request that a key
without the scope (or any key, on a session-only route) gets through."""
import os
import subprocess

import pytest

from conftest import ROOT, Api

HIGH = "1000000000"
CHECKS = ("not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance,"
          "response_headers_conformance,scopes_enforced")
EXAMPLES = os.environ.get("FUZZ_EXAMPLES", "12")


@pytest.fixture(scope="module")
def fuzz_server(make_server):
    return make_server({"RATE_LIMIT_PER_MINUTE": HIGH, "DAILY_QUOTA": HIGH, "SESSION_RATE_LIMIT_PER_MINUTE": HIGH,
                        "LOGIN_MAX_FAILURES": HIGH})


def fuzz(server, token: str, credential: str, scopes: list[str], exclude: list[str]):
    env = dict(os.environ, SCHEMATHESIS_HOOKS="st_hooks", PYTHONPATH=str(ROOT / "tests"),
               JESTHA_KEY_SCOPES=" ".join(scopes), JESTHA_CREDENTIAL=credential)
    args = [str(ROOT / ".venv" / "bin" / "st"), "run", server.url + "/openapi.json",
            "-H", f"Authorization: Bearer {token}", "--checks", CHECKS, "-n", EXAMPLES,
            "--phases", "examples,fuzzing", "--seed", "20261126", "--request-timeout", "20",
            "--exclude-path", "/mcp", "--exclude-path-regex", "^/__bench"]
    for path in exclude:
        args += ["--exclude-path", path]
    run = subprocess.run(args, cwd=ROOT, env=env, capture_output=True, text=True, timeout=900)
    assert run.returncode == 0, run.stdout[-6000:] + run.stderr[-2000:]
    assert " passed" in run.stdout


@pytest.mark.parametrize("scopes", [
    ["write:jes", "write:jesclip", "write:comment", "read:comment", "read:engagement", "webhooks:manage"],
    ["read:comment"],
    ["write:jesclip", "webhooks:manage"],
])
def test_fuzzing_with_api_keys_finds_no_server_error_no_schema_break_and_no_scope_bypass(fuzz_server, scopes):
    api = Api(fuzz_server.url)
    a = api.signup()
    key = api.create_key(a["token"], scopes=scopes)["key"]
    fuzz(fuzz_server, key, "key", scopes, [])


def test_fuzzing_with_a_session_finds_no_server_error_or_schema_break(fuzz_server):
    api = Api(fuzz_server.url)
    a = api.signup()
    # Leave out the two operations that would end the session the run uses.
    fuzz(fuzz_server, a["token"], "session", [], ["/api/account", "/api/auth/logout"])
