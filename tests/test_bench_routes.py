"""The benchmark's routes: `baseline` and `floor` exist only with
BENCH_ROUTES=true and answer the contract's 404 otherwise; the floor is one
Durable Object increment (in the engine Worker), so each call counts once."""
import requests

from conftest import assert_error


def test_bench_routes_are_404_without_the_variable(server):
    for path in ("/__bench/baseline", "/__bench/floor"):
        assert_error(requests.get(server.url + path, timeout=30), 404, "not_found")


def test_with_the_variable_the_floor_counts_each_call_once(make_server):
    s = make_server({"BENCH_ROUTES": "true"})
    assert requests.get(s.url + "/__bench/baseline", timeout=30).status_code == 200
    counts = []
    for _ in range(3):
        r = requests.get(s.url + "/__bench/floor", timeout=30)
        assert r.status_code == 200, r.text
        counts.append(r.json()["n"])
    assert counts == [counts[0], counts[0] + 1, counts[0] + 2]
