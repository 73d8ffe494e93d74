"""Clients that integrators generate from the served /openapi.json work, with
generators nobody here wrote: openapi-python-client (PyPI) and
openapi-typescript + openapi-fetch (npm), all pinned and installed by
`make setup`. Each is generated from the running API's document, then drives
one flow against it (tests/clients/): sign up, make a key, create a Jes twice
with one Idempotency-Key, comment, read the thread, add a webhook, read a
missing Jes's error. The flows print what they saw; these tests check it
against the database."""
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

from conftest import ROOT, d1_query

VENV_BIN = ROOT / ".venv" / "bin"
NODE_BIN = ROOT / "node_modules" / ".bin"

# Uploads are answered in their own media type (image/*, video/*): the
# generator's documented way to read such a body is as bytes.
PYTHON_CONFIG = """\
project_name_override: jestha-client
package_name_override: jestha_client
content_type_overrides:
  image/*: application/octet-stream
  video/*: application/octet-stream
  # tus PATCH bodies are raw bytes under the protocol's own media type.
  application/offset+octet-stream: application/octet-stream
"""

# Strict, and the generated declarations and openapi-fetch's own are checked too.
TSCONFIG = {
    "compilerOptions": {
        "strict": True, "target": "ES2022", "module": "NodeNext", "moduleResolution": "NodeNext",
        "lib": ["ES2022", "DOM"], "outDir": "out", "skipLibCheck": False, "noEmitOnError": True,
    },
    "files": ["flow.mts"],
}


def run(cmd: list, env: dict | None = None, cwd: Path | None = None) -> str:
    p = subprocess.run([str(c) for c in cmd], env={**os.environ, **(env or {})}, cwd=cwd,
                       capture_output=True, text=True, timeout=600)
    assert p.returncode == 0, f"{cmd[0]} failed ({p.returncode}):\n{p.stdout[-4000:]}\n{p.stderr[-4000:]}"
    return p.stdout + p.stderr


def assert_the_flow_happened(server, seen: dict, label: str):
    """What the flow printed is what the API stored."""
    assert seen["replayedJes"] == seen["jes"] and seen["replayed"] == "true", seen
    assert int(seen["remaining"]) >= 0 and seen["via"] == label, seen
    assert seen["thread"] == [seen["comment"]] and seen["webhooks"] == [seen["webhook"]], seen
    assert seen["secret"] == "whsec_" and seen["missing"] == [404, "not_found"], seen
    posts = d1_query(server, f"SELECT id, via_label FROM posts WHERE author_id = '{seen['userId']}'")
    assert posts == [{"id": seen["jes"], "via_label": label}], "one Jes, made once, by the key"
    comments = d1_query(server, f"SELECT id FROM comments WHERE post_id = '{seen['jes']}'")
    assert comments == [{"id": seen["comment"]}]
    hooks = d1_query(server, f"SELECT id, events FROM webhook_endpoints WHERE key_id = '{seen['keyId']}'")
    assert hooks == [{"id": seen["webhook"], "events": "post.created comment.created"}]


def test_a_python_client_generated_by_openapi_python_client_runs_the_flow(server, tmp_path):
    (tmp_path / "config.yaml").write_text(PYTHON_CONFIG)
    # The generator formats its output with ruff, installed beside it in the venv.
    path = f"{VENV_BIN}:{os.environ.get('PATH', '')}"
    out = run([VENV_BIN / "openapi-python-client", "generate", "--url", f"{server.url}/openapi.json",
               "--output-path", tmp_path / "jestha_client", "--meta", "none", "--config", tmp_path / "config.yaml"],
              env={"PATH": path})
    assert "Warning" not in out and "WARNING" not in out, out
    seen = json.loads(run([sys.executable, ROOT / "tests" / "clients" / "flow.py"],
                          env={"JESTHA_URL": server.url, "PYTHONPATH": str(tmp_path)}))
    assert_the_flow_happened(server, seen, "python client")


def test_a_typescript_client_from_openapi_typescript_and_openapi_fetch_type_checks_and_runs_the_flow(server, tmp_path):
    shutil.copy(ROOT / "tests" / "clients" / "flow.mts", tmp_path)
    (tmp_path / "node_modules").symlink_to(ROOT / "node_modules")
    (tmp_path / "tsconfig.json").write_text(json.dumps(TSCONFIG))
    run([NODE_BIN / "openapi-typescript", f"{server.url}/openapi.json", "-o", tmp_path / "schema.d.ts"])
    # tsc --strict over the flow against the generated types: a field, path or
    # value the document gets wrong fails here, and the flow's @ts-expect-error
    # lines fail if the types ever stop refusing what the API refuses.
    run([NODE_BIN / "tsc", "-p", tmp_path])
    seen = json.loads(run(["node", tmp_path / "out" / "flow.mjs"], env={"JESTHA_URL": server.url}))
    assert_the_flow_happened(server, seen, "typescript client")
