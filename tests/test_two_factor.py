"""Two-factor sign-in over HTTP, with codes computed by pyotp (a TOTP
implementation nobody here wrote): setup, enable with recovery codes, the
two-step login, once-per-step replay refusal, recovery codes working once,
wrong codes burning the challenge and throttled, disable, and the secret sealed
at rest."""
from __future__ import annotations

import base64
import hashlib
import os
import time

import pyotp
import pytest

from conftest import Api, assert_error, d1_query, wait_clear_of_window_end

VARS = {"WEBHOOK_SECRET_KEY": base64.b64encode(os.urandom(32)).decode(), "LOGIN_MAX_FAILURES": "8"}


@pytest.fixture(scope="module")
def srv(make_server):
    return make_server(VARS)


@pytest.fixture(scope="module")
def tapi(srv) -> Api:
    return Api(srv.url)


def enable(api: Api, token: str) -> tuple[pyotp.TOTP, list[str]]:
    r = api.post("/api/account/2fa/setup", token=token)
    assert r.status_code == 200, r.text
    assert r.headers["cache-control"] == "no-store"
    totp = pyotp.parse_uri(r.json()["otpauthUri"])
    assert totp.secret == r.json()["secret"]
    r = api.post("/api/account/2fa/enable", token=token, json={"code": totp.now()})
    assert r.status_code == 200, r.text
    return totp, r.json()["recoveryCodes"]


def start_login(api: Api, who: dict, **kw) -> str:
    r = api.post("/api/auth/login", json={"login": who["user"]["username"], "password": who["password"]}, **kw)
    assert r.status_code == 200, r.text
    body = r.json()
    assert set(body) == {"twoFactor"}, "no session before the second step"
    assert "set-cookie" not in r.headers
    assert body["twoFactor"]["challenge"].startswith("jes_chal_")
    return body["twoFactor"]["challenge"]


def second(api: Api, challenge: str, **codes):
    return api.post("/api/auth/login/2fa", json={"challenge": challenge, **codes})


def test_setup_enable_and_the_two_step_login(srv, tapi: Api):
    who = tapi.signup()
    r = tapi.post("/api/account/2fa/setup", token=who["token"])
    assert r.status_code == 200, r.text
    uri = r.json()["otpauthUri"]
    assert uri.startswith(f"otpauth://totp/Jestha:{who['user']['username']}?")
    for part in ("issuer=Jestha", "algorithm=SHA1", "digits=6", "period=30"):
        assert part in uri
    secret = r.json()["secret"]
    assert len(base64.b32decode(secret + "=" * (-len(secret) % 8))) == 20
    # Sealed at rest, bound to the account: the row holds no plaintext.
    (row,) = d1_query(srv, f"SELECT secret, enabled_at FROM user_totp WHERE user_id = '{who['user']['id']}'")
    assert row["secret"].startswith("aesgcm.") and secret not in row["secret"]
    assert row["enabled_at"] is None
    # Not yet on: login still gives a session at once.
    r = tapi.post("/api/auth/login", json={"login": who["user"]["username"], "password": who["password"]})
    assert r.status_code == 200 and "session" in r.json()

    totp = pyotp.TOTP(secret)
    bad = str((int(totp.now()) + 1) % 1_000_000).zfill(6)
    err = assert_error(tapi.post("/api/account/2fa/enable", token=who["token"], json={"code": bad}), 400, "invalid_request")
    assert err["message"].startswith("code:")
    r = tapi.post("/api/account/2fa/enable", token=who["token"], json={"code": totp.now()})
    assert r.status_code == 200, r.text
    codes = r.json()["recoveryCodes"]
    assert len(codes) == 10 and len(set(codes)) == 10
    stored = {x["code_hash"] for x in d1_query(srv, f"SELECT code_hash FROM recovery_codes WHERE user_id = '{who['user']['id']}'")}
    assert len(stored) == 10 and not stored & set(codes), "only hashes are stored"
    assert hashlib.sha256(codes[0].replace("-", "").encode()).hexdigest() in stored
    assert_error(tapi.post("/api/account/2fa/setup", token=who["token"]), 409, "conflict")

    challenge = start_login(tapi, who)
    # The enable used this step's code: the next step's (a phone a little fast) logs in.
    next_code = totp.at(time.time() + 30)
    r = second(tapi, challenge, code=next_code)
    assert r.status_code == 200, r.text
    session = r.json()["session"]["token"]
    assert tapi.get("/api/auth/me", token=session).json()["username"] == who["user"]["username"]
    assert "jes_session" in r.headers.get("set-cookie", "")
    # The challenge is single-use.
    assert_error(second(tapi, challenge, code=next_code), 401, "invalid_credentials")


def test_a_code_is_accepted_once_per_step_and_older_ones_never_after(tapi: Api):
    who = tapi.signup()
    totp, _ = enable(tapi, who["token"])
    now = time.time()
    ahead = totp.at(now + 30)
    assert second(tapi, start_login(tapi, who), code=ahead).status_code == 200
    # The same code again, within its window: refused.
    r = second(tapi, start_login(tapi, who), code=ahead)
    assert_error(r, 401, "invalid_credentials")
    # The current step's code is older than the one accepted: refused too.
    assert_error(second(tapi, start_login(tapi, who), code=totp.at(now)), 401, "invalid_credentials")
    # Two steps back is outside the window whatever was used.
    other = tapi.signup()
    totp2, _ = enable(tapi, other["token"])
    assert_error(second(tapi, start_login(tapi, other), code=totp2.at(time.time() - 60)), 401, "invalid_credentials")


def test_a_recovery_code_works_once_and_is_logged(srv, tapi: Api):
    who = tapi.signup()
    _, codes = enable(tapi, who["token"])
    r = second(tapi, start_login(tapi, who), recoveryCode=codes[3].upper().replace("-", " "))
    assert r.status_code == 200, r.text
    assert_error(second(tapi, start_login(tapi, who), recoveryCode=codes[3]), 401, "invalid_credentials")
    assert second(tapi, start_login(tapi, who), recoveryCode=codes[4]).status_code == 200
    rows = d1_query(srv, f"SELECT action, data FROM audit_log WHERE user_id = '{who['user']['id']}' ORDER BY id")
    actions = [x["action"] for x in rows]
    assert actions.count("2fa.recovery_code_used") == 2
    assert '{"method":"recovery_code"}' in [x["data"] for x in rows if x["action"] == "auth.login"]
    assert "auth.login_failed" in actions, "the reused code is a failed login"
    assert "2fa.enabled" in actions


def test_both_or_neither_code_is_a_400(tapi: Api):
    who = tapi.signup()
    enable(tapi, who["token"])
    challenge = start_login(tapi, who)
    assert_error(second(tapi, challenge), 400, "invalid_request")
    assert_error(second(tapi, challenge, code="123456", recoveryCode="aaaa-bbbb-cccc-dddd"), 400, "invalid_request")
    assert_error(second(tapi, "jes_chal_" + "0" * 64, code="123456"), 401, "invalid_credentials")


def test_five_wrong_codes_burn_the_challenge_and_the_throttle_answers_429(tapi: Api):
    who = tapi.signup()
    totp, _ = enable(tapi, who["token"])
    wrong = str((int(totp.now()) + 500_000) % 1_000_000).zfill(6)
    wait_clear_of_window_end(900, 15)  # the burst below in one aligned window
    challenge = start_login(tapi, who)
    for _ in range(5):
        assert_error(second(tapi, challenge, code=wrong), 401, "invalid_credentials")
    # Burned: even the right code is refused on this challenge.
    assert_error(second(tapi, challenge, code=totp.at(time.time() + 30)), 401, "invalid_credentials")
    # LOGIN_MAX_FAILURES=8 wrong codes per window for the account (five so far), then 429.
    challenge = start_login(tapi, who)
    assert [second(tapi, challenge, code=wrong).status_code for _ in range(3)] == [401, 401, 401]
    r = second(tapi, start_login(tapi, who), code=wrong)
    assert_error(r, 429, "rate_limited")
    assert int(r.headers["retry-after"]) > 0


def test_disable_needs_the_password_and_a_code(srv, tapi: Api):
    who = tapi.signup()
    _, codes = enable(tapi, who["token"])
    tok = who["token"]
    assert_error(tapi.delete("/api/account/2fa", token=tok, json={"code": "123456"}), 400, "invalid_request")
    assert_error(tapi.delete("/api/account/2fa", token=tok, json={"currentPassword": who["password"]}), 400, "invalid_request")
    assert_error(tapi.delete("/api/account/2fa", token=tok, json={"currentPassword": "wrong password!", "recoveryCode": codes[0]}),
                 403, "forbidden")
    err = assert_error(tapi.delete("/api/account/2fa", token=tok, json={"currentPassword": who["password"], "recoveryCode": "zzzz-zzzz-zzzz-zzzz"}),
                       400, "invalid_request")
    assert err["message"].startswith("recoveryCode:")
    r = tapi.delete("/api/account/2fa", token=tok, json={"currentPassword": who["password"], "recoveryCode": codes[0]})
    assert r.status_code == 204, r.text
    # Off: login gives a session at once, and disabling again is a conflict.
    r = tapi.post("/api/auth/login", json={"login": who["user"]["username"], "password": who["password"]})
    assert r.status_code == 200 and "session" in r.json()
    assert_error(tapi.delete("/api/account/2fa", token=tok, json={"currentPassword": who["password"], "code": "123456"}), 409, "conflict")
    actions = [x["action"] for x in d1_query(srv, f"SELECT action FROM audit_log WHERE user_id = '{who['user']['id']}'")]
    assert "2fa.disabled" in actions and "2fa.enabled" in actions


def test_enable_before_setup_is_a_400_and_keys_are_refused(tapi: Api):
    who = tapi.signup()
    err = assert_error(tapi.post("/api/account/2fa/enable", token=who["token"], json={"code": "123456"}), 400, "invalid_request")
    assert "setup" in err["message"]
    key = tapi.create_key(who["token"], scopes=["write:jes"])["key"]
    for method, path in [("POST", "/api/account/2fa/setup"), ("POST", "/api/account/2fa/enable"), ("DELETE", "/api/account/2fa")]:
        assert_error(tapi.call(method, path, token=key, json={}), 403, "session_only")
