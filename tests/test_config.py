"""The three Workers' configurations agree, and local runs configure the
engine and the account Worker.

The API (wrangler.toml), the engine (wrangler.engine.toml) and the account
Worker (wrangler.account.toml) are deployed separately, so what several read
must be written the same in each, and what connects them (the Gate class, the
queue, the database, the service bindings) must name the same thing. Checked
on the files, and on the built modules' entry points."""
import json
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "scripts"))
import worker_config  # noqa: E402
from conftest import ENV  # noqa: E402

API = tomllib.loads((ROOT / "wrangler.toml").read_text())
ENGINE = tomllib.loads((ROOT / "wrangler.engine.toml").read_text())
ACCOUNT = tomllib.loads((ROOT / "wrangler.account.toml").read_text())
# Read by code in every Worker: URL checks at create time and at delivery.
SHARED_VARS = ["WEBHOOK_ALLOW_LOOPBACK"]


def environments(config):
    yield "top level", config
    for name, env in config.get("env", {}).items():
        yield f"env.{name}", env


def test_variables_several_workers_read_are_equal_in_every_environment():
    api_envs, engine_envs = dict(environments(API)), dict(environments(ENGINE))
    account_envs = dict(environments(ACCOUNT))
    assert api_envs.keys() == engine_envs.keys() == account_envs.keys()
    for name in api_envs:
        a, e = api_envs[name].get("vars", {}), engine_envs[name].get("vars", {})
        c = account_envs[name].get("vars", {})
        for var in SHARED_VARS:
            assert a.get(var) == e.get(var) == c.get(var), (name, var)
    # Each Worker's own settings live in one file only, so no one edits a copy that is never read.
    only_engine = {"RATE_LIMIT_PER_MINUTE", "DAILY_QUOTA", "SESSION_RATE_LIMIT_PER_MINUTE",
                   "RATE_LIMIT_WINDOW_SECONDS", "USAGE_FLUSH_SECONDS", "WEBHOOK_RETRY_DELAYS",
                   "EXPIRY_NOTICE_SECONDS", "MEDIA_ORPHAN_SECONDS", "WEBHOOK_HISTORY_PER_ENDPOINT",
                   "MAX_RESUMABLE_UPLOAD_BYTES", "UPLOAD_EXPIRY_SECONDS"}
    assert only_engine <= ENGINE["vars"].keys()
    assert not only_engine & API["vars"].keys()
    assert not only_engine & ACCOUNT["vars"].keys()
    # Sign-in's throttle, the leak-report keys and the operators are read by the account Worker's routes alone.
    only_account = {"LOGIN_MAX_FAILURES", "LOGIN_WINDOW_SECONDS", "LEAK_REPORT_PUBLIC_KEYS", "ADMIN_USERNAMES",
                    "SIGNUP_MAX_PER_ADDRESS", "SIGNUP_WINDOW_SECONDS"}
    assert only_account <= ACCOUNT["vars"].keys()
    assert not only_account & (API["vars"].keys() | ENGINE["vars"].keys())
    # The guard runs in the API and in the account Worker: both count unknown credentials alike.
    for var in ("CREDENTIAL_MISS_MAX", "CREDENTIAL_MISS_WINDOW_SECONDS"):
        assert API["vars"][var] == ACCOUNT["vars"][var] and var not in ENGINE["vars"], var


def test_the_api_reaches_the_gate_queue_and_database_the_engine_serves():
    gate = next(b for b in API["durable_objects"]["bindings"] if b["name"] == "GATE")
    assert gate["script_name"] == ENGINE["name"]
    # The cron fires on the API and is handed to the engine through ENGINE;
    # the account Worker's routes are forwarded through ACCOUNT.
    assert [(s["binding"], s["service"]) for s in API["services"]] == [("ENGINE", ENGINE["name"]),
                                                                       ("ACCOUNT", ACCOUNT["name"])]
    assert API["triggers"]["crons"] and "triggers" not in ENGINE
    assert ENGINE["workers_dev"] is False and ENGINE["preview_urls"] is False and "routes" not in ENGINE
    assert API["r2_buckets"] == ENGINE["r2_buckets"]
    assert gate["class_name"] in ENGINE["migrations"][0]["new_sqlite_classes"]
    assert "migrations" not in API  # the class and its storage are the engine's
    api_queues = {p["queue"] for p in API["queues"]["producers"]}
    consumed = {c["queue"] for c in ENGINE["queues"]["consumers"]}
    assert api_queues <= consumed
    assert "consumers" not in API["queues"]
    database = lambda c: [(d["binding"], d["database_name"], d["database_id"]) for d in c["d1_databases"]]
    assert database(API) == database(ENGINE) == database(ACCOUNT)


def test_the_account_worker_is_reached_only_through_the_api():
    assert ACCOUNT["workers_dev"] is False and ACCOUNT["preview_urls"] is False and "routes" not in ACCOUNT
    assert "triggers" not in ACCOUNT and "assets" not in ACCOUNT and "migrations" not in ACCOUNT
    # Any fetch it makes goes to public addresses only.
    assert "global_fetch_strictly_public" in ACCOUNT["compatibility_flags"]
    gate = next(b for b in ACCOUNT["durable_objects"]["bindings"] if b["name"] == "GATE")
    assert (gate["class_name"], gate["script_name"]) == ("Gate", ENGINE["name"])
    consumed = {c["queue"] for c in ENGINE["queues"]["consumers"]}
    assert {p["queue"] for p in ACCOUNT["queues"]["producers"]} <= consumed
    assert "consumers" not in ACCOUNT["queues"]


def test_local_engine_config_carries_the_run_s_variables(tmp_path):
    path = worker_config.write(tmp_path / "engine.json", {"RATE_LIMIT_PER_MINUTE": "5", "BENCH_ROUTES": "true"})
    written = json.loads(path.read_text())
    assert written["vars"]["RATE_LIMIT_PER_MINUTE"] == "5"
    assert written["vars"]["BENCH_ROUTES"] == "true"
    assert written["vars"]["DAILY_QUOTA"] == ENGINE["vars"]["DAILY_QUOTA"]
    assert Path(written["main"]).is_absolute() and written["main"].endswith(ENGINE["main"])
    assert "build" not in written  # the API's build builds all three
    assert written["queues"] == ENGINE["queues"] and written["migrations"] == ENGINE["migrations"]


def test_local_account_config_carries_the_run_s_variables(tmp_path):
    engine, account = worker_config.write_all(tmp_path, {"LOGIN_MAX_FAILURES": "3"}, {"WEBHOOK_ALLOW_LOOPBACK": "true"})
    written = json.loads(account.read_text())
    assert written["name"] == ACCOUNT["name"] and json.loads(engine.read_text())["name"] == ENGINE["name"]
    assert written["vars"]["LOGIN_MAX_FAILURES"] == "3"
    assert written["vars"]["WEBHOOK_ALLOW_LOOPBACK"] == "true"
    assert written["vars"]["LOGIN_WINDOW_SECONDS"] == ACCOUNT["vars"]["LOGIN_WINDOW_SECONDS"]
    assert Path(written["main"]).is_absolute() and written["main"].endswith(ACCOUNT["main"])
    assert "build" not in written
    assert written["compatibility_flags"] == ACCOUNT["compatibility_flags"]


def exports(folder: str) -> str:
    """The module worker-build made: each Worker's index.js is the meter's
    entry (scripts/meter/) around it, re-exporting all of it."""
    inner = ROOT / folder / "worker.js"
    if inner.exists():
        entry = (ROOT / folder / "index.js").read_text()
        assert 'export * from "./worker.js";' in entry and "export default Worker;" in entry
        return inner.read_text()
    return (ROOT / folder / "index.js").read_text()


def test_each_module_exports_only_its_own_entry_points():
    api, engine, account = exports("build"), exports("build-engine"), exports("build-account")
    assert ".prototype.fetch=" in api and ".prototype.scheduled=" in api
    assert " as Gate" not in api and ".prototype.queue=" not in api
    assert ".prototype.fetch=" in account
    assert " as Gate" not in account and ".prototype.queue=" not in account and ".prototype.scheduled=" not in account
    # The engine's fetch is the cron hand-off (src/adapters/engine.rs).
    assert " as Gate" in engine and ".prototype.queue=" in engine and ".prototype.fetch=" in engine
    assert ".prototype.scheduled=" not in engine


@pytest.mark.parametrize("config, expected", [
    ("wrangler.toml", ["env.GATE (Gate, defined in jestha-edge-engine)", "env.ENGINE (jestha-edge-engine)",
                       "env.ACCOUNT (jestha-edge-account)",
                       "env.WEBHOOKS (jestha-webhooks)", "env.DB (jestha)", "env.MEDIA (jestha-media)", "env.ASSETS"]),
    ("wrangler.account.toml", ["env.GATE (Gate, defined in jestha-edge-engine)", "env.WEBHOOKS (jestha-webhooks)",
                               "env.DB (jestha)"]),
    ("wrangler.engine.toml", ["env.GATE (Gate)", "env.WEBHOOKS (jestha-webhooks)",
                              "env.WEBHOOKS_DLQ (jestha-webhooks-dlq)", "env.DB (jestha)", "env.MEDIA (jestha-media)"]),
])
def test_each_config_passes_wrangler_s_own_deploy_checks(tmp_path, config, expected):
    """`wrangler deploy --dry-run` validates and bundles without an account or a network."""
    r = subprocess.run(["wrangler", "deploy", "--dry-run", "--outdir", str(tmp_path), "-c", config],
                       cwd=ROOT, env=ENV, capture_output=True, text=True, timeout=300)
    out = r.stdout + r.stderr
    assert r.returncode == 0, out[-3000:]
    assert "WARNING" not in out and "ERROR" not in out, out[-3000:]
    for binding in expected:
        assert binding in out, (binding, out[-3000:])
