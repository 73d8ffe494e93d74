"""Rate limits and daily quotas counted in Durable Objects."""
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta, timezone

from conftest import Api, Server, assert_error, wait_clear_of_window_end


def parse_fields(value: str) -> dict:
    """`"minute";r=59;t=30, "day";r=9999;t=100` -> {"minute": {"r": 59, "t": 30}, ...}"""
    out = {}
    for item in value.split(","):
        name, *params = item.strip().split(";")
        out[name.strip('"')] = {k: int(v) for k, v in (p.split("=") for p in params)}
    return out


def seconds_to_utc_midnight() -> int:
    now = datetime.now(timezone.utc)
    midnight = (now + timedelta(days=1)).replace(hour=0, minute=0, second=0, microsecond=0)
    return int((midnight - now).total_seconds())


def test_exactly_the_limit_passes_under_concurrency(make_server):
    s = make_server({"RATE_LIMIT_PER_MINUTE": "20", "RATE_LIMIT_WINDOW_SECONDS": "3600"})
    api = Api(s.url)
    a = api.signup()
    key = api.create_key(a["token"])["key"]
    wait_clear_of_window_end(3600, 30)
    with ThreadPoolExecutor(60) as pool:
        results = list(pool.map(lambda _: Api(s.url).get("/api/auth/me", token=key), range(60)))
    codes = [r.status_code for r in results]
    assert codes.count(200) == 20, codes
    assert codes.count(429) == 40, codes
    for r in results:
        if r.status_code == 429:
            assert_error(r, 429, "rate_limited")
    remaining = sorted(int(r.headers["x-ratelimit-remaining"]) for r in results if r.status_code == 200)
    assert remaining == list(range(20)), "each allowed request saw a distinct count"


def test_headers_on_success_and_on_429(make_server):
    s = make_server({"RATE_LIMIT_PER_MINUTE": "3", "DAILY_QUOTA": "1000"})
    api = Api(s.url)
    a = api.signup()
    key = api.create_key(a["token"])["key"]
    wait_clear_of_window_end(60, 6)
    r = api.get("/api/auth/me", token=key)
    assert r.status_code == 200
    h = r.headers
    assert h["x-ratelimit-limit"] == "3"
    assert h["x-ratelimit-remaining"] == "2"
    reset = int(h["x-ratelimit-reset"])
    assert reset % 60 == 0 and 0 < reset - time.time() <= 61
    policy = parse_fields(h["ratelimit-policy"])
    assert policy == {"minute": {"q": 3, "w": 60}, "day": {"q": 1000, "w": 86400}}
    state = parse_fields(h["ratelimit"])
    assert state["minute"]["r"] == 2 and 0 <= state["minute"]["t"] <= 60
    assert state["day"]["r"] == 999 and abs(state["day"]["t"] - seconds_to_utc_midnight()) <= 5
    api.get("/api/auth/me", token=key)
    api.get("/api/auth/me", token=key)
    r = api.get("/api/auth/me", token=key)
    err = assert_error(r, 429, "rate_limited")
    retry = int(r.headers["retry-after"])
    assert err["retryAfter"] == retry and 1 <= retry <= 60
    assert r.headers["x-ratelimit-remaining"] == "0"
    assert parse_fields(r.headers["ratelimit"])["day"]["r"] == 997, "the refused request was not counted"


def test_the_window_resets_when_it_should(make_server):
    s = make_server({"RATE_LIMIT_PER_MINUTE": "2", "RATE_LIMIT_WINDOW_SECONDS": "3"})
    api = Api(s.url)
    a = api.signup()
    key = api.create_key(a["token"])["key"]
    wait_clear_of_window_end(3, 1.5)
    assert [api.get("/api/auth/me", token=key).status_code for _ in range(3)] == [200, 200, 429]
    r = api.get("/api/auth/me", token=key)
    reset = int(r.headers["x-ratelimit-reset"])
    time.sleep(max(0, reset - time.time()) + 0.3)
    assert api.get("/api/auth/me", token=key).status_code == 200


def test_daily_quota_is_independent_of_the_rate_limit(make_server):
    s = make_server({"RATE_LIMIT_PER_MINUTE": "100", "DAILY_QUOTA": "5"})
    api = Api(s.url)
    a = api.signup()
    key = api.create_key(a["token"])["key"]
    for _ in range(5):
        assert api.get("/api/auth/me", token=key).status_code == 200
    r = api.get("/api/auth/me", token=key)
    err = assert_error(r, 429, "quota_exceeded")
    assert abs(err["retryAfter"] - seconds_to_utc_midnight()) <= 5
    assert int(r.headers["retry-after"]) == err["retryAfter"]
    assert r.headers["x-ratelimit-limit"] == "5", "X-RateLimit-* describe the exhausted policy"
    assert parse_fields(r.headers["ratelimit"])["minute"]["r"] == 95


def test_rate_limit_denials_do_not_spend_the_quota(make_server):
    s = make_server({"RATE_LIMIT_PER_MINUTE": "2", "DAILY_QUOTA": "10", "RATE_LIMIT_WINDOW_SECONDS": "3600"})
    api = Api(s.url)
    a = api.signup()
    key = api.create_key(a["token"])["key"]
    wait_clear_of_window_end(3600, 30)
    codes = [api.get("/api/auth/me", token=key).status_code for _ in range(6)]
    assert codes == [200, 200, 429, 429, 429, 429]
    r = api.get("/api/auth/me", token=key)
    assert parse_fields(r.headers["ratelimit"])["day"]["r"] == 8


def test_auth_denials_are_not_counted(make_server):
    s = make_server({"RATE_LIMIT_PER_MINUTE": "5", "RATE_LIMIT_WINDOW_SECONDS": "3600"})
    api = Api(s.url)
    a = api.signup()
    key = api.create_key(a["token"], scopes=["read:comment"])["key"]
    wait_clear_of_window_end(3600, 30)
    for _ in range(10):
        r = api.get("/api/auth/scopes", token=key)
        assert_error(r, 403, "session_only")
        assert r.headers["x-ratelimit-remaining"] == "5", "a refused request carries the standing, uncounted"
    assert api.get("/api/auth/me", token=key).headers["x-ratelimit-remaining"] == "4"


def test_two_keys_of_one_account_are_limited_independently(make_server):
    s = make_server({"RATE_LIMIT_PER_MINUTE": "2", "RATE_LIMIT_WINDOW_SECONDS": "3600"})
    api = Api(s.url)
    a = api.signup()
    k1, k2 = api.create_key(a["token"])["key"], api.create_key(a["token"])["key"]
    wait_clear_of_window_end(3600, 30)
    assert [api.get("/api/auth/me", token=k1).status_code for _ in range(3)] == [200, 200, 429]
    assert [api.get("/api/auth/me", token=k2).status_code for _ in range(3)] == [200, 200, 429]


def test_sessions_have_their_own_per_minute_limit(make_server):
    s = make_server({"SESSION_RATE_LIMIT_PER_MINUTE": "3", "RATE_LIMIT_WINDOW_SECONDS": "3600"})
    api = Api(s.url)
    a = api.signup()
    wait_clear_of_window_end(3600, 30)
    codes = [api.get("/api/auth/me", token=a["token"]).status_code for _ in range(4)]
    assert codes == [200, 200, 200, 429]
    r = api.get("/api/auth/me", token=a["token"])
    assert_error(r, 429, "rate_limited")
    assert parse_fields(r.headers["ratelimit-policy"]) == {"minute": {"q": 3, "w": 3600}}


def test_counters_survive_a_restart(make_server):
    vars = {"RATE_LIMIT_PER_MINUTE": "5", "RATE_LIMIT_WINDOW_SECONDS": "3600"}
    s = make_server(vars)
    api = Api(s.url)
    a = api.signup()
    key = api.create_key(a["token"])["key"]
    wait_clear_of_window_end(3600, 60)
    for _ in range(3):
        assert api.get("/api/auth/me", token=key).status_code == 200
    s.stop(keep_state=True)
    s2 = make_server(vars, state_dir=s.state)
    try:
        r = Api(s2.url).get("/api/auth/me", token=key)
        assert r.status_code == 200
        assert r.headers["x-ratelimit-remaining"] == "1"
    finally:
        s2.stop()
        import shutil
        shutil.rmtree(s.state, ignore_errors=True)
