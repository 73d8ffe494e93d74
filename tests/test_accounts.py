"""Accounts, sessions and the request pipeline, over HTTP."""
import time
import uuid

import pytest

from conftest import Api, assert_error, wait_clear_of_window_end


def test_signup_returns_user_and_session_and_me_answers_with_it(api: Api):
    name = "ada" + uuid.uuid4().hex[:8]
    r = api.post("/api/auth/signup", json={"username": name.upper(), "email": f"{name}@Example.COM",
                                           "password": "correct horse battery", "displayName": "Ada L."})
    assert r.status_code == 201, r.text
    body = r.json()
    assert body["user"]["username"] == name, "usernames are stored lowercase"
    assert body["user"]["email"] == f"{name}@example.com"
    assert body["user"]["displayName"] == "Ada L."
    assert body["session"]["token"].startswith("jes_sess_")
    assert body["session"]["expiresAt"].endswith("Z")
    me = api.get("/api/auth/me", token=body["session"]["token"])
    assert me.status_code == 200
    assert me.json() == body["user"]
    assert "x-request-id" in me.headers


def test_username_and_email_are_unique_case_insensitively(api: Api):
    a = api.signup()
    name = a["user"]["username"]
    r = api.post("/api/auth/signup", json={"username": name.upper(), "email": "other" + name + "@example.com",
                                           "password": "correct horse battery"})
    err = assert_error(r, 409, "conflict")
    assert "username" in err["message"]
    r = api.post("/api/auth/signup", json={"username": "x" + name, "email": a["user"]["email"].upper(),
                                           "password": "correct horse battery"})
    assert "email" in assert_error(r, 409, "conflict")["message"]


@pytest.mark.parametrize("body,field", [
    ({"email": "a@example.com", "password": "correct horse battery"}, "username"),
    ({"username": "ab", "email": "a@example.com", "password": "correct horse battery"}, "username"),
    ({"username": "pаypal_x", "email": "a@example.com", "password": "correct horse battery"}, "username"),
    ({"username": "valid_name", "email": "not-an-email", "password": "correct horse battery"}, "email"),
    ({"username": "valid_name", "email": "a@example.com", "password": "short"}, "password"),
    ({"username": "valid_name", "email": "a@example.com", "password": "correct horse battery",
      "displayName": "bad\r\nname"}, "displayName"),
])
def test_signup_rejects_bad_fields_naming_them(api: Api, body, field):
    err = assert_error(api.post("/api/auth/signup", json=body), 400, "invalid_request")
    assert field in err["message"]


def test_login_by_username_or_email_issues_a_new_session(api: Api):
    a = api.signup()
    for login in (a["user"]["username"].upper(), a["user"]["email"]):
        r = api.post("/api/auth/login", json={"login": login, "password": a["password"]})
        assert r.status_code == 200, r.text
        tok = r.json()["session"]["token"]
        assert tok != a["token"]
        assert api.get("/api/auth/me", token=tok).json()["id"] == a["user"]["id"]


def test_wrong_password_and_unknown_account_get_the_same_answer(api: Api):
    a = api.signup()
    wrong = api.post("/api/auth/login", json={"login": a["user"]["username"], "password": "not the password"})
    unknown = api.post("/api/auth/login", json={"login": "nobody" + uuid.uuid4().hex[:8], "password": "whatever pw 1"})
    e1 = assert_error(wrong, 401, "invalid_credentials")
    e2 = assert_error(unknown, 401, "invalid_credentials")
    assert e1 == e2


def test_failed_logins_are_throttled_per_account_at_an_address(make_server):
    s = make_server({"LOGIN_MAX_FAILURES": "3"})
    api = Api(s.url)
    a = api.signup()
    here = {"CF-Connecting-IP": "198.51.100.1"}
    wait_clear_of_window_end(900, 15)  # the burst below in one aligned window
    for _ in range(3):
        r = api.post("/api/auth/login", json={"login": a["user"]["username"], "password": "wrong password"},
                     headers=here)
        assert_error(r, 401, "invalid_credentials")
    # Even the right password, from that address, waits (the owner elsewhere does not: test_bounds.py).
    r = api.post("/api/auth/login", json={"login": a["user"]["username"], "password": a["password"]}, headers=here)
    err = assert_error(r, 429, "rate_limited")
    assert int(r.headers["retry-after"]) >= 1
    assert err["retryAfter"] == int(r.headers["retry-after"])


def test_parallel_login_guesses_cannot_outrun_the_throttle(make_server):
    """Each try is counted before the password is checked: a burst from one address gets `limit` answers."""
    from concurrent.futures import ThreadPoolExecutor
    s = make_server({"LOGIN_MAX_FAILURES": "3"})
    api = Api(s.url)
    a = api.signup()
    guess = lambda i: api.post("/api/auth/login", json={"login": a["user"]["username"], "password": f"guess {i:04}"},
                               headers={"CF-Connecting-IP": "198.51.100.1"})
    wait_clear_of_window_end(900, 15)  # the burst below in one aligned window
    with ThreadPoolExecutor(10) as pool:
        codes = sorted(r.status_code for r in pool.map(guess, range(10)))
    assert codes == [401] * 3 + [429] * 7, codes


def test_successful_logins_do_not_use_up_the_address_allowance(make_server):
    s = make_server({"LOGIN_MAX_FAILURES": "1"})
    api = Api(s.url)
    ip = {"CF-Connecting-IP": "203.0.113.60"}
    users = [api.signup() for _ in range(8)]
    for u in users:  # eight right answers from one address: more than its 5 x 1 failures allow
        r = api.post("/api/auth/login", json={"login": u["user"]["username"], "password": u["password"]}, headers=ip)
        assert r.status_code == 200, r.text


def test_failed_logins_are_throttled_per_address(make_server):
    s = make_server({"LOGIN_MAX_FAILURES": "2"})
    api = Api(s.url)
    ip = {"CF-Connecting-IP": "203.0.113.50"}
    wait_clear_of_window_end(900, 15)  # the burst below in one aligned window
    # Five times the per-account limit, spread over many unknown accounts.
    for i in range(10):
        r = api.post("/api/auth/login", json={"login": f"ghost{i}", "password": "wrong password"}, headers=ip)
        assert_error(r, 401, "invalid_credentials")
    r = api.post("/api/auth/login", json={"login": "ghost99", "password": "wrong password"}, headers=ip)
    assert_error(r, 429, "rate_limited")
    # Another address is unaffected.
    r = api.post("/api/auth/login", json={"login": "ghost99", "password": "wrong password"},
                 headers={"CF-Connecting-IP": "203.0.113.51"})
    assert_error(r, 401, "invalid_credentials")


def test_logout_revokes_the_session_at_once(api: Api):
    a = api.signup()
    assert api.get("/api/auth/me", token=a["token"]).status_code == 200
    r = api.post("/api/auth/logout", token=a["token"])
    assert r.status_code == 204
    assert_error(api.get("/api/auth/me", token=a["token"]), 401, "invalid_session")
    assert_error(api.post("/api/auth/logout", token=a["token"]), 401, "invalid_session")


def test_me_needs_credentials(api: Api):
    assert_error(api.get("/api/auth/me"), 401, "unauthenticated")
    assert_error(api.get("/api/auth/me", headers={"Authorization": "Basic dXNlcjpwYXNz"}), 401, "unauthenticated")
    assert_error(api.get("/api/auth/me", token="jes_sess_" + "A" * 36), 401, "invalid_session")


def test_unknown_route_is_a_404_envelope(api: Api):
    assert_error(api.get("/api/does-not-exist"), 404, "not_found")
    # `/` is the web UI (public/); any other path that is not a file is the Worker's 404.
    assert_error(api.get("/no-such-page"), 404, "not_found")


def test_wrong_method_is_a_405_envelope(api: Api):
    r = api.call("PUT", "/api/auth/me")
    assert_error(r, 405, "method_not_allowed")
    assert "GET" in r.headers["allow"]


def test_malformed_json_is_a_400_naming_the_problem(api: Api):
    h = {"Content-Type": "application/json"}
    err = assert_error(api.post("/api/auth/signup", data=b'{"username":', headers=h), 400, "invalid_request")
    assert "malformed JSON" in err["message"]
    err = assert_error(api.post("/api/auth/signup", data=b'{"username": 5}', headers=h), 400, "invalid_request")
    assert "username" in err["message"]
    err = assert_error(api.post("/api/auth/signup", data=b'\xff\xfe{}', headers=h), 400, "invalid_request")
    assert "UTF-8" in err["message"]


def test_wrong_content_type_is_a_415(api: Api):
    r = api.post("/api/auth/signup", data="username=ada", headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert_error(r, 415, "unsupported_media_type")


def test_oversized_body_is_a_413(api: Api):
    big = b'{"username":"' + b"a" * (70 * 1024) + b'"}'
    r = api.post("/api/auth/signup", data=big, headers={"Content-Type": "application/json"})
    assert_error(r, 413, "payload_too_large")


def test_logs_never_contain_credentials(server, api: Api):
    a = api.signup(password="very secret password 1")
    api.get("/api/auth/me", token=a["token"])
    api.post("/api/auth/login", json={"login": a["user"]["username"], "password": a["password"]})
    logs = server.logs()
    assert '"msg":"request"' in logs.replace(" ", "") or "request" in logs
    assert a["token"] not in logs
    assert "very secret password 1" not in logs


def test_the_harness_leaves_no_wrangler_or_workerd_process_behind(make_server):
    import os
    s = make_server()
    pgid = s.proc.pid
    members = [p for p in os.listdir("/proc") if p.isdigit() and _pgid(p) == pgid]
    assert len(members) >= 2, "wrangler and its workerd children share one process group"
    s.stop()
    deadline = time.time() + 10
    while True:
        # Zombies are dead and only wait for init to reap them.
        left = [p for p in os.listdir("/proc") if p.isdigit() and _pgid(p) == pgid and _state(p) != "Z"]
        if not left or time.time() > deadline:
            break
        time.sleep(0.2)
    assert left == [], f"processes left running in the group: {[(p, _state(p), _cmd(p)) for p in left]}"


def _state(pid: str) -> str | None:
    try:
        return open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return None


def _cmd(pid: str) -> str:
    try:
        return open(f"/proc/{pid}/cmdline", "rb").read().replace(b"\0", b" ").decode()[:120]
    except OSError:
        return ""


def _pgid(pid: str) -> int | None:
    try:
        stat = open(f"/proc/{pid}/stat").read()
        return int(stat.rsplit(")", 1)[1].split()[2])
    except (OSError, ValueError, IndexError):
        return None
