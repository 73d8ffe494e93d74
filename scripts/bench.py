"""`make bench`: the cost of authentication, limits and writes at the edge, as
ratios measured in one run.

Builds the release Workers, starts them under `wrangler dev` with a fresh state
directory and limits high enough that nothing is refused, then drives each route
with wrk (-t2 -c16) in alternating rounds so machine drift hits every route alike.
Writes target/bench/result.json and prints a table. Not part of `make test`.
"""
from __future__ import annotations

import gzip
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
from conftest import Api, Server, d1_file  # noqa: E402
from metering import cost, meter, served  # noqa: E402

sys.path.insert(0, str(ROOT / "scripts"))
import cost as price  # noqa: E402

ROUNDS = int(os.environ.get("BENCH_ROUNDS", "5"))
SECONDS = int(os.environ.get("BENCH_SECONDS", "5"))
THREADS, CONNECTIONS = 2, 16
HIGH = "1000000000"


def wrk(url: str, lua: str | None) -> dict:
    args = ["wrk", f"-t{THREADS}", f"-c{CONNECTIONS}", f"-d{SECONDS}s", "--latency", url]
    script = None
    if lua:
        script = tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False)
        script.write(lua)
        script.close()
        args[1:1] = ["-s", script.name]
    out = subprocess.run(args, capture_output=True, text=True, check=True).stdout
    if script:
        os.unlink(script.name)

    def pct(p: str) -> float:
        m = re.search(rf"^\s+{p}%\s+([\d.]+)(us|ms|s)\s*$", out, re.M)
        value, unit = float(m.group(1)), m.group(2)
        return value / 1000 if unit == "us" else value * 1000 if unit == "s" else value

    errors = 0
    for pattern in (r"Non-2xx or 3xx responses: (\d+)", r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)"):
        m = re.search(pattern, out)
        if m:
            errors += sum(int(g) for g in m.groups())
    # A run that got no answer at all (the server restarting, say) shows no
    # socket errors in wrk's summary; it is still a failed run, not a slow one.
    done = re.search(r"(\d+) requests in", out)
    if done is None or int(done.group(1)) == 0:
        errors += CONNECTIONS
        return {"rps": 0.0, "p50_ms": 0.0, "p99_ms": 0.0, "errors": errors}
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    return {"rps": rps, "p50_ms": pct("50"), "p99_ms": pct("99"), "errors": errors}


# The performance targets: (name, the measured value, the bound, whether it is met).
WASM_GZIP_TARGET = 300_000


def targets(result: dict) -> list[tuple[str, float, float, bool]]:
    floor = result.get("floor", {})
    out = []
    for name, bound in (("auth_get", 0.85), ("get_post", 0.6), ("post_create", 0.4)):
        if name in result:
            v = result[name]["vs_floor"]
            out.append((f"{name} req/s vs floor >=", v, bound, v >= bound))
    if "auth_get" in result and floor.get("p99_ms"):
        v = round(result["auth_get"]["p99_ms"] / floor["p99_ms"], 3)
        out.append(("auth_get p99 vs floor p99 <=", v, 1.5, v <= 1.5))
    errors = sum(v["errors"] for v in result.values() if isinstance(v, dict) and "errors" in v)
    out.append(("errors, all routes ==", errors, 0, errors == 0))
    # Each Worker's module on its own: the API's is what every request's isolate loads.
    for label, key in (("api", "wasm_gzip_bytes"), ("account", "account_wasm_gzip_bytes"),
                       ("engine", "engine_wasm_gzip_bytes")):
        if key in result:
            gz = result[key]
            out.append((f"{label} wasm gzipped bytes <=", gz, WASM_GZIP_TARGET, gz <= WASM_GZIP_TARGET))
    return out


def lua(method: str = "GET", token: str | None = None, body: dict | None = None) -> str:
    lines = [f'wrk.method = "{method}"']
    if token:
        lines.append(f'wrk.headers["Authorization"] = "Bearer {token}"')
    if body is not None:
        lines.append('wrk.headers["Content-Type"] = "application/json"')
        lines.append(f"wrk.body = {json.dumps(json.dumps(body))}")
    return "\n".join(lines) + "\n"


COST_REQUESTS = int(os.environ.get("BENCH_COST_REQUESTS", "40"))


def units_per_call(server, call, n: int, ok=lambda r: r.status_code < 300) -> dict:
    """The billable units one `call()` costs: the mean of `n`, each answered `ok`."""
    before = meter(server)
    for _ in range(n):
        r = call()
        assert ok(r), r.text
    return price.per(price.units(cost(before, meter(server))), n)


def cron_units(server, runs: int = 3) -> dict:
    """What one run of the every-minute cron costs (the mean of `runs`)."""
    import requests
    return units_per_call(server, lambda: requests.get(server.url + "/__scheduled", timeout=300), runs,
                          ok=lambda r: r.status_code == 200)


def idle(per_run: dict) -> dict:
    day = {k: v * price.CRON_RUNS_PER_DAY for k, v in per_run.items()}
    return {"per_run": per_run, "per_day": day, "usd_per_day": round(price.usd_per_million(day) / 1e6, 6),
            "dominant": price.dominant(per_run)}


def costs() -> dict:
    """The billable operations of each benchmarked route, per request (the
    mean of COST_REQUESTS after one warm-up, so a credential's first load
    from D1 is not in it), priced; the cron's idle cost on an empty database
    and on a busy one (`cost.seed_busy`); and what fits in the Free plan.
    A server of its own with METER=true, so the timed runs carry no meter.
    Usage flushes (a Gate's alarm, at most once a minute per active
    credential) are kept out of the per-request figures."""
    servers = served({"METER": "true", "BENCH_ROUTES": "true", "RATE_LIMIT_PER_MINUTE": HIGH, "DAILY_QUOTA": HIGH,
                      "SESSION_RATE_LIMIT_PER_MINUTE": HIGH, "USAGE_FLUSH_SECONDS": "3600"})
    s = next(servers)
    try:
        empty = idle(cron_units(s))
        api = Api(s.url)
        a = api.signup(username="cost_user")
        key = api.create_key(a["token"], scopes=["write:jes", "read:engagement"], label="cost")["key"]
        post = api.post("/api/posts", token=key, json={"content": "cost target", "visibility": "PUBLIC"}).json()
        calls = {
            "auth_get": lambda: api.get("/api/auth/me", token=key),
            "get_post": lambda: api.get(f"/api/posts/{post['id']}", token=key),
            "post_create": lambda: api.post("/api/posts", token=key, json={"content": "bench write #cost",
                                                                           "visibility": "PUBLIC"}),
            "session_get": lambda: api.get("/api/auth/me", token=a["token"]),
        }
        routes = {}
        for name, call in calls.items():
            assert call().status_code < 300
            routes[name] = units_per_call(s, call, COST_REQUESTS)
        seeded = price.seed_busy(d1_file(s))
        busy = {**idle(cron_units(s)), "seeded": seeded}
    finally:
        servers.close()
    out = {"prices": {"date": price.PRICES_DATE, "usd_per_million": price.USD_PER_MILLION,
                      "free_per_day": price.FREE_PER_DAY},
           "per_request": routes, "idle": {"empty": empty, "busy": busy}}
    out["usd_per_million"] = {n: price.usd_per_million(u) for n, u in routes.items()}
    out["dominant"] = {n: price.dominant(u) for n, u in routes.items()}
    out["free_plan_requests_per_day"] = {n: dict(zip(("requests", "limited_by"),
                                                     price.free_plan_requests_per_day(u, busy["per_day"])))
                                         for n, u in routes.items()}
    return out


def main() -> int:
    out_dir = ROOT / "target" / "bench"
    out_dir.mkdir(parents=True, exist_ok=True)
    subprocess.run(["bash", "scripts/build.sh"], cwd=ROOT, check=True)
    result: dict = {}
    for prefix, folder in (("", "build"), ("account_", "build-account"), ("engine_", "build-engine")):
        raw = (ROOT / folder / "index_bg.wasm").read_bytes()
        result[f"{prefix}wasm_bytes"] = len(raw)
        result[f"{prefix}wasm_gzip_bytes"] = len(gzip.compress(raw, 9))

    server = Server({"BENCH_ROUTES": "true", "RATE_LIMIT_PER_MINUTE": HIGH, "DAILY_QUOTA": HIGH,
                     "SESSION_RATE_LIMIT_PER_MINUTE": HIGH})
    t0 = time.monotonic()
    server.start()
    import requests
    t1 = time.monotonic()
    first = requests.get(server.url + "/__bench/baseline", timeout=30)
    first_ms = (time.monotonic() - t1) * 1000
    result["cold_start_ms"] = round((t1 - t0) * 1000)
    result["first_request_ms"] = round(first_ms, 2)
    assert first.status_code == 200, first.text
    try:
        api = Api(server.url)
        a = api.signup(username="bench_user")
        key = api.create_key(a["token"], scopes=["write:jes", "write:jesclip", "write:comment", "read:comment",
                                                  "read:engagement", "webhooks:manage"], label="bench")["key"]
        post = api.post("/api/posts", token=key, json={"content": "bench target", "visibility": "PUBLIC"})
        routes = {
            "baseline": (server.url + "/__bench/baseline", None),
            "floor": (server.url + "/__bench/floor", None),
            "auth_get": (server.url + "/api/auth/me", lua(token=key)),
            "session_get": (server.url + "/api/auth/me", lua(token=a["token"])),
        }
        if post.status_code == 201:
            routes["get_post"] = (server.url + f"/api/posts/{post.json()['id']}", lua(token=key))
            routes["post_create"] = (server.url + "/api/posts",
                                     lua("POST", key, {"content": "bench write", "visibility": "PUBLIC"}))
        else:
            print(f"bench: POST /api/posts answered {post.status_code}; get_post and post_create skipped", file=sys.stderr)
        samples: dict[str, list[dict]] = {name: [] for name in routes}
        names = list(routes)
        for r in range(ROUNDS):
            order = names[r % len(names):] + names[:r % len(names)]
            for name in order:
                samples[name].append(wrk(*routes[name]))
                print(f"round {r + 1}/{ROUNDS} {name:12s} {samples[name][-1]['rps']:9.1f} req/s", file=sys.stderr)
        for name, runs in samples.items():
            result[name] = {
                "rps": round(statistics.median(s["rps"] for s in runs), 1),
                "p50_ms": round(statistics.median(s["p50_ms"] for s in runs), 2),
                "p99_ms": round(statistics.median(s["p99_ms"] for s in runs), 2),
                "errors": sum(s["errors"] for s in runs),
            }
        for name in names:
            if name not in ("baseline", "floor"):
                result[name]["vs_floor"] = round(result[name]["rps"] / result["floor"]["rps"], 3)
                result[name]["vs_baseline"] = round(result[name]["rps"] / result["baseline"]["rps"], 3)
    finally:
        server.stop()
    c = costs()
    result["usd_per_million"] = c.pop("usd_per_million")
    result["idle"] = c["idle"]
    result["cost"] = c
    result["targets"] = [{"target": t, "value": v, "bound": b, "met": m} for t, v, b, m in targets(result)]
    (out_dir / "result.json").write_text(json.dumps(result, indent=2) + "\n")
    print(f"\n{'route':12s} {'req/s':>9s} {'p50 ms':>8s} {'p99 ms':>8s} {'errors':>6s} {'vs floor':>8s} {'vs base':>8s}")
    for name in ("baseline", "floor", "auth_get", "get_post", "post_create", "session_get"):
        if name in result:
            v = result[name]
            print(f"{name:12s} {v['rps']:9.1f} {v['p50_ms']:8.2f} {v['p99_ms']:8.2f} {v['errors']:6d} "
                  f"{v.get('vs_floor', 1.0 if name == 'floor' else ''):>8} {v.get('vs_baseline', ''):>8}")
    print(f"\nwasm: api {result['wasm_bytes']} bytes, {result['wasm_gzip_bytes']} gzipped; "
          f"account {result['account_wasm_bytes']} bytes, {result['account_wasm_gzip_bytes']} gzipped; "
          f"engine {result['engine_wasm_bytes']} bytes, {result['engine_wasm_gzip_bytes']} gzipped; "
          f"cold start {result['cold_start_ms']} ms, first request {result['first_request_ms']} ms")
    print("\ntargets:")
    for t in result["targets"]:
        print(f"  {'met    ' if t['met'] else 'NOT MET'}  {t['target']} {t['bound']}: {t['value']}")
    print(f"\ncost at Workers Paid prices of {c['prices']['date']} (per request; USD per million requests):")
    for name, u in c["per_request"].items():
        fit = c["free_plan_requests_per_day"][name]
        print(f"  {name:12s} ${result['usd_per_million'][name]:<8} mostly {c['dominant'][name]:14s} "
              f"Free plan: {fit['requests']:,}/day ({fit['limited_by']}) {u}")
    for state, v in result["idle"].items():
        print(f"  idle, {state} database: ${v['usd_per_day']}/day, {v['per_run']} per cron run")
    print(f"written to {out_dir / 'result.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
