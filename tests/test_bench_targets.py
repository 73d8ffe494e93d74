"""`make bench` judges its performance targets itself (scripts/bench.py `targets`):
checked here on made-up results, without running the benchmark."""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "scripts"))
from bench import WASM_GZIP_TARGET, targets  # noqa: E402


def result(auth=0.9, get=0.65, create=0.45, auth_p99=120.0, floor_p99=100.0, errors=0, gz=290_000, engine_gz=150_000,
           account_gz=200_000):
    row = lambda vs, p99=50.0, e=0: {"rps": 1.0, "p50_ms": 1.0, "p99_ms": p99, "errors": e, "vs_floor": vs}
    return {
        "baseline": {"rps": 2.0, "p50_ms": 1.0, "p99_ms": 1.0, "errors": 0},
        "floor": {"rps": 1.0, "p50_ms": 1.0, "p99_ms": floor_p99, "errors": 0},
        "auth_get": row(auth, auth_p99),
        "get_post": row(get, e=errors),
        "post_create": row(create),
        "session_get": row(1.0),
        "wasm_bytes": 2 * gz, "wasm_gzip_bytes": gz, "cold_start_ms": 1,
        "engine_wasm_bytes": 2 * engine_gz, "engine_wasm_gzip_bytes": engine_gz,
        "account_wasm_bytes": 2 * account_gz, "account_wasm_gzip_bytes": account_gz,
    }


def verdicts(r):
    return {t: met for t, _, _, met in targets(r)}


def test_a_result_inside_every_bound_meets_every_target():
    v = verdicts(result())
    assert len(v) == 8 and all(v.values()), v


def test_each_bound_is_judged_on_its_own():
    cases = {
        "auth_get req/s vs floor >=": result(auth=0.84),
        "get_post req/s vs floor >=": result(get=0.59),
        "post_create req/s vs floor >=": result(create=0.39),
        "auth_get p99 vs floor p99 <=": result(auth_p99=151.0),
        "errors, all routes ==": result(errors=1),
        "api wasm gzipped bytes <=": result(gz=WASM_GZIP_TARGET + 1),
        "account wasm gzipped bytes <=": result(account_gz=WASM_GZIP_TARGET + 1),
        "engine wasm gzipped bytes <=": result(engine_gz=WASM_GZIP_TARGET + 1),
    }
    for failing, r in cases.items():
        v = verdicts(r)
        assert [t for t, met in v.items() if not met] == [failing], (failing, v)
