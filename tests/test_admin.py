"""Operators (issue 24, item 5) over HTTP: accounts named in ADMIN_USERNAMES
search accounts, suspend one (every credential dead at once, within the
Free plan's subrequest bound, however many it holds: counted by the meter,
scripts/meter/), lift a suspension and revoke any key; each action lands in
the audit log of the account it touched. Keys and OAuth tokens get
403 session_only, other sessions 403 forbidden."""
from __future__ import annotations

import time
import uuid

import pyotp
import pytest

import oauth
from conftest import Api, assert_error, d1_query
from metering import cost, meter, served
from test_revocation import KEYS, LEAF, PASSWORD, SESSIONS, fan_out_calls, live, make_keys, plant_sessions, statuses

OPERATOR = "root" + uuid.uuid4().hex[:6]


@pytest.fixture(scope="module")
def srv():
    # No usage flush during a test: its alarms would add to the counts.
    common = {"METER": "true", "USAGE_FLUSH_SECONDS": "3600"}

    def sign_up_the_operator(first):
        Api(first.url).signup(OPERATOR, password=PASSWORD)

    # As the README says: the operator signs up, then the name is listed (nobody signs up into a listed name).
    yield from served({"ADMIN_USERNAMES": f"someone_else, {OPERATOR}", **common}, first=common, setup=sign_up_the_operator)


@pytest.fixture(scope="module")
def aapi(srv) -> Api:
    return Api(srv.url)


@pytest.fixture(scope="module")
def op(aapi: Api) -> dict:
    r = aapi.post("/api/auth/login", json={"login": OPERATOR, "password": PASSWORD})
    assert r.status_code == 200, r.text
    return {"user": r.json()["user"], "token": r.json()["session"]["token"], "password": PASSWORD}


def login(api: Api, who: dict, password: str = PASSWORD):
    return api.post("/api/auth/login", json={"login": who["user"]["username"], "password": password})


def audit(api: Api, token: str) -> list[dict]:
    r = api.get("/api/account/audit?limit=100", token=token)
    assert r.status_code == 200, r.text
    return r.json()["items"]


def admin_routes(target_id: str) -> list[tuple[str, str]]:
    return [("GET", "/api/admin/accounts"), ("POST", f"/api/admin/accounts/{target_id}/suspend"),
            ("POST", f"/api/admin/accounts/{target_id}/unsuspend"), ("DELETE", "/api/admin/api-keys/nope")]


def test_only_operators_sessions_reach_the_admin_routes(aapi: Api, op):
    someone = aapi.signup(password=PASSWORD)
    own_key = aapi.create_key(op["token"])["key"]
    their_key = aapi.create_key(someone["token"])["key"]
    token = oauth.tokens(aapi, op["token"], scopes=["write:jes"])["access_token"]
    for method, path in admin_routes(someone["user"]["id"]):
        assert_error(aapi.call(method, path, token=someone["token"]), 403, "forbidden")
        for credential in (own_key, their_key, token):
            assert_error(aapi.call(method, path, token=credential), 403, "session_only")
        assert_error(aapi.call(method, path), 401, "unauthenticated")
    assert login(aapi, someone).status_code == 200, "nothing happened to the account"
    assert aapi.get("/api/auth/me", token=their_key).status_code == 200


def test_search_by_username_prefix_and_by_email(aapi: Api, op):
    tag = uuid.uuid4().hex[:8]
    a = aapi.signup(f"find_{tag}_a")
    b = aapi.signup(f"find_{tag}_b")
    r = aapi.get(f"/api/admin/accounts?q=find_{tag}", token=op["token"])
    assert r.status_code == 200, r.text
    assert {x["username"] for x in r.json()["items"]} == {a["user"]["username"], b["user"]["username"]}
    item = r.json()["items"][0]
    assert set(item) == {"id", "username", "email", "displayName", "createdAt", "suspendedAt", "deletedAt"}
    r = aapi.get(f"/api/admin/accounts?q={a['user']['email'].upper()}", token=op["token"])
    assert [x["id"] for x in r.json()["items"]] == [a["user"]["id"]]
    # LIKE's wildcards match only themselves.
    assert aapi.get("/api/admin/accounts?q=%25", token=op["token"]).json()["items"] == []
    assert aapi.get("/api/admin/accounts?q=_", token=op["token"]).json()["items"] == []
    page = aapi.get("/api/admin/accounts?limit=1", token=op["token"]).json()
    assert len(page["items"]) == 1 and page["nextCursor"]


def test_suspending_an_account_with_50_keys_and_300_sessions_ends_every_credential_in_one_request(srv, aapi: Api, op):
    target = aapi.signup(password=PASSWORD)
    tid = target["user"]["id"]
    keys = make_keys(aapi, target["token"], KEYS)
    sessions = [target["token"]] + plant_sessions(srv, tid, SESSIONS - 1)
    grant = oauth.tokens(aapi, target["token"], scopes=["write:jes"])
    # Every key's Gate warm (holding the account unsuspended), some sessions' too.
    assert {s for s, _ in statuses(aapi, keys + sessions[:60] + [grant["access_token"]])} == {200}

    before = meter(srv)
    suspended = aapi.post(f"/api/admin/accounts/{tid}/suspend", token=op["token"], json={"reason": "spam wave"})
    assert suspended.status_code == 200, suspended.text
    spent = cost(before, meter(srv))
    print("suspension, 300 sessions, 50 keys, 1 grant:", spent)
    assert suspended.json()["suspendedAt"] and suspended.json()["id"] == tid

    # The account Worker: the guard, the account read, ONE batch, ONE
    # fan-out call, the intent row's delete (and the operator session's
    # last-use touch); the API only forwards.
    assert spent["api"]["subrequests"] == 1, spent
    assert spent["account"]["durableObjects"] == 2, spent
    assert spent["account"]["widest"] == spent["account"]["subrequests"] <= 6, spent
    # 351 Gates told, through fan-out objects making at most 40 calls each;
    # only the 50 warm keys read D1 (to reload the account).
    told = SESSIONS + 1 + KEYS
    assert spent["engine"]["durableObjects"] == fan_out_calls(told), spent
    assert spent["engine"]["widestObject"] == LEAF, spent
    assert spent["engine"]["d1"] == KEYS, spent

    # Every credential dead at once.
    assert set(statuses(aapi, sessions)) == {(401, "invalid_session")}
    assert set(statuses(aapi, keys)) == {(403, "account_suspended")}
    assert_error(aapi.get("/api/auth/me", token=grant["access_token"]), 401, "invalid_token")
    r = oauth.refresh(aapi, grant["client"]["client_id"], grant["refresh_token"])
    assert r.status_code == 400 and r.json()["error"] == "invalid_grant", r.text
    assert_error(login(aapi, target), 403, "account_suspended")
    # A wrong password still says nothing about the suspension.
    assert_error(login(aapi, target, "not it at all"), 401, "invalid_credentials")

    # D1 says so too: sessions and grants revoked, keys kept for the unsuspension.
    assert live(srv, "sessions", tid) == 0 and live(srv, "oauth_grants", tid) == 0
    assert live(srv, "api_keys", tid) == KEYS
    row = d1_query(srv, f"SELECT suspended_at, suspended_by FROM users WHERE id = '{tid}'")[0]
    assert row["suspended_at"] and row["suspended_by"] == op["user"]["id"]
    rows = d1_query(srv, f"SELECT actor_type, actor_id, target_type, target_id, data FROM audit_log "
                         f"WHERE user_id = '{tid}' AND action = 'account.suspended'")
    assert len(rows) == 1, rows
    assert rows[0]["actor_type"] == "operator" and rows[0]["actor_id"] == op["user"]["id"]
    assert (rows[0]["target_type"], rows[0]["target_id"]) == ("account", tid)
    assert "spam wave" in rows[0]["data"]
    assert d1_query(srv, f"SELECT COUNT(*) AS n FROM revocations WHERE user_id = '{tid}'")[0]["n"] == 0

    # Repeating it is harmless, logs nothing new and keeps the first time.
    first = suspended.json()["suspendedAt"]
    again = aapi.post(f"/api/admin/accounts/{tid}/suspend", token=op["token"])
    assert again.status_code == 200 and again.json()["suspendedAt"] == first, again.text
    assert len(d1_query(srv, f"SELECT 1 FROM audit_log WHERE user_id = '{tid}' AND action = 'account.suspended'")) == 1

    # Lifting it: the keys work again; sessions and the grant stay dead.
    before = meter(srv)
    r = aapi.post(f"/api/admin/accounts/{tid}/unsuspend", token=op["token"])
    assert r.status_code == 200 and r.json()["suspendedAt"] is None, r.text
    spent = cost(before, meter(srv))
    assert spent["account"]["durableObjects"] == 2 and spent["account"]["subrequests"] <= 6, spent
    assert spent["engine"]["durableObjects"] == fan_out_calls(KEYS), spent
    assert {s for s, _ in statuses(aapi, keys)} == {200}
    made = aapi.post("/api/posts", token=keys[0], json={"content": "back", "visibility": "PUBLIC"})
    assert made.status_code == 201, made.text
    assert set(statuses(aapi, sessions[:20])) == {(401, "invalid_session")}
    assert_error(aapi.get("/api/auth/me", token=grant["access_token"]), 401, "invalid_token")
    fresh = login(aapi, target)
    assert fresh.status_code == 200, fresh.text
    actions = [(a["action"], a["actor"]["type"], a["actor"]["id"]) for a in audit(aapi, fresh.json()["session"]["token"])]
    assert ("account.suspended", "operator", op["user"]["id"]) in actions
    assert ("account.unsuspended", "operator", op["user"]["id"]) in actions
    assert not [a for a in audit(aapi, op["token"]) if a["action"].startswith("account.")], "not in the operator's own log"


def test_a_suspended_two_factor_account_is_refused_at_the_second_step(aapi: Api, op):
    target = aapi.signup(password=PASSWORD)
    setup = aapi.post("/api/account/2fa/setup", token=target["token"]).json()
    totp = pyotp.TOTP(setup["secret"])
    assert aapi.post("/api/account/2fa/enable", token=target["token"], json={"code": totp.now()}).status_code == 200
    challenge = login(aapi, target).json()["twoFactor"]["challenge"]
    assert aapi.post(f"/api/admin/accounts/{target['user']['id']}/suspend", token=op["token"]).status_code == 200
    r = aapi.post("/api/auth/login/2fa", json={"challenge": challenge, "code": totp.at(time.time() + 30)})
    assert_error(r, 403, "account_suspended")
    assert_error(login(aapi, target), 403, "account_suspended")


def test_operators_revoke_any_key_and_the_owner_sees_it(aapi: Api, op):
    owner = aapi.signup(password=PASSWORD)
    made = aapi.create_key(owner["token"], label="leaky")
    assert aapi.get("/api/auth/me", token=made["key"]).status_code == 200
    assert aapi.delete(f"/api/admin/api-keys/{made['id']}", token=op["token"]).status_code == 204
    assert_error(aapi.get("/api/auth/me", token=made["key"]), 401, "api_key_revoked")
    rows = [a for a in audit(aapi, owner["token"]) if a["action"] == "key.revoked"]
    assert len(rows) == 1
    assert rows[0]["actor"] == {"type": "operator", "id": op["user"]["id"]}
    assert rows[0]["target"] == {"type": "key", "id": made["id"]} and rows[0]["data"]["reason"] == "operator"
    # Again: nothing more happens, nothing more is logged.
    assert aapi.delete(f"/api/admin/api-keys/{made['id']}", token=op["token"]).status_code == 204
    assert len([a for a in audit(aapi, owner["token"]) if a["action"] == "key.revoked"]) == 1
    assert_error(aapi.delete("/api/admin/api-keys/nope", token=op["token"]), 404, "not_found")
    assert [a for a in audit(aapi, op["token"]) if a["action"] == "key.revoked"] == [], "in the owner's log, not the operator's"


def test_operators_are_not_suspended_and_unknown_accounts_are_not_found(srv, aapi: Api, op):
    assert_error(aapi.post(f"/api/admin/accounts/{op['user']['id']}/suspend", token=op["token"]), 403, "forbidden")
    assert aapi.get("/api/auth/me", token=op["token"]).status_code == 200
    for path in ("suspend", "unsuspend"):
        assert_error(aapi.post(f"/api/admin/accounts/nope/{path}", token=op["token"]), 404, "not_found")
    # A reason that is not a string is refused before anything changes.
    someone = aapi.signup(password=PASSWORD)
    r = aapi.post(f"/api/admin/accounts/{someone['user']['id']}/suspend", token=op["token"], json={"reason": 5})
    assert_error(r, 400, "invalid_request")
    assert aapi.get("/api/auth/me", token=someone["token"]).status_code == 200
    # Nobody takes an operator's name: not by renaming, not by signing up, even one nobody holds yet.
    err = assert_error(aapi.patch("/api/account", token=someone["token"], json={"username": "someone_else"}), 409, "conflict")
    assert err["message"] == "username: reserved"
    for name in ("someone_else", OPERATOR):
        body = {"username": name, "email": f"{uuid.uuid4().hex[:8]}@example.com", "password": PASSWORD}
        err = assert_error(aapi.post("/api/auth/signup", json=body), 409, "conflict")
        assert err["message"] == "username: reserved"
    assert d1_query(srv, "SELECT count(*) AS n FROM users WHERE username = 'someone_else'") == [{"n": 0}]


def test_the_readme_s_operator_example_runs(srv, aapi: Api, op):
    """README "Operators", run as pasted with only the host changed."""
    from test_readme import HOST, blocks, run
    (block,) = blocks("Operators", "sh")
    spammer = aapi.signup("spammer" + uuid.uuid4().hex[:6], password=PASSWORD)
    key = aapi.create_key(spammer["token"], label="bulk")
    env = {"OPERATOR_SESSION": op["token"], "ID": spammer["user"]["id"], "KEY_ID": key["id"]}
    out = run(["bash", "-euo", "pipefail", "-c", block.replace(HOST, srv.url)], env)
    assert spammer["user"]["username"] in out and "spam wave" not in out
    assert_error(aapi.get("/api/auth/me", token=spammer["token"]), 401, "invalid_session")
    assert_error(aapi.get("/api/auth/me", token=key["key"]), 401, "api_key_revoked")
    assert login(aapi, spammer).status_code == 200, "unsuspended"
    actions = {a["action"] for a in audit(aapi, login(aapi, spammer).json()["session"]["token"])}
    assert {"account.suspended", "account.unsuspended", "key.revoked"} <= actions
