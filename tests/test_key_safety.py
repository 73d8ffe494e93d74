"""Key safety: introspection, usage per key, owner notices, canary keys."""
import time
from datetime import datetime, timezone

from conftest import Api, assert_error, d1_query, wait_clear_of_window_end
from keys import forge


def notices(api: Api, session: str, kind: str | None = None) -> list[dict]:
    items = api.get("/api/notifications?limit=100", token=session).json()["items"]
    return [n for n in items if kind is None or n["type"] == kind]


def wait_for(fn, timeout: float = 10.0, step: float = 0.2):
    deadline = time.time() + timeout
    while True:
        value = fn()
        if value or time.time() > deadline:
            return value
        time.sleep(step)


def test_a_key_can_read_its_own_metadata_and_standing(make_server):
    s = make_server({"RATE_LIMIT_PER_MINUTE": "50", "DAILY_QUOTA": "500", "RATE_LIMIT_WINDOW_SECONDS": "3600"})
    api = Api(s.url)
    a = api.signup()
    for scopes in (["read:comment"], ["write:jes", "webhooks:manage"]):
        k = api.create_key(a["token"], scopes=scopes, label="intro " + scopes[0], ipAllowlist=["127.0.0.0/8"])
        h = {"CF-Connecting-IP": "127.0.0.1"}
        r1 = api.get("/api/auth/key", token=k["key"], headers=h)
        assert r1.status_code == 200, r1.text
        body = r1.json()
        assert body["id"] == k["id"] and body["maskedKey"] == k["maskedKey"]
        assert body["label"] == k["label"] and body["scopes"] == scopes
        assert body["ipAllowlist"] == ["127.0.0.0/8"] and body["expiresAt"] is None
        assert body["status"] == "active" and k["key"] not in r1.text
        assert body["limits"]["minute"]["limit"] == 50 and body["limits"]["day"]["limit"] == 500
        r2 = api.get("/api/auth/key", token=k["key"], headers=h)
        assert r2.json()["limits"]["minute"]["remaining"] == body["limits"]["minute"]["remaining"] - 1, "it counts"
    assert_error(api.get("/api/auth/key", token=a["token"]), 403, "forbidden")


def test_usage_counts_a_known_mix_of_outcomes(make_server):
    s = make_server({"RATE_LIMIT_PER_MINUTE": "4", "RATE_LIMIT_WINDOW_SECONDS": "3600"})
    api = Api(s.url)
    a = api.signup()
    k = api.create_key(a["token"], scopes=["read:comment"], ipAllowlist=["203.0.113.0/24"])
    inside, outside = {"CF-Connecting-IP": "203.0.113.1"}, {"CF-Connecting-IP": "198.51.100.1"}
    wait_clear_of_window_end(3600, 15)  # the burst below in one aligned window
    for _ in range(2):
        assert_error(api.get("/api/auth/me", token=k["key"], headers=outside), 403, "ip_not_allowed")
    for _ in range(3):
        assert_error(api.get("/api/auth/scopes", token=k["key"], headers=inside), 403, "session_only")
    codes = [api.get("/api/auth/me", token=k["key"], headers=inside).status_code for _ in range(6)]
    assert codes == [200] * 4 + [429] * 2
    r = api.get(f"/api/auth/api-keys/{k['id']}/usage", token=a["token"])
    assert r.status_code == 200, r.text
    days = r.json()["days"]
    assert len(days) == 30
    today = days[-1]
    assert today["date"] == datetime.now(timezone.utc).strftime("%Y-%m-%d")
    assert (today["allowed"], today["rateLimited"], today["ipNotAllowed"], today["sessionOnly"]) == (4, 2, 2, 3)
    assert today["quotaExceeded"] == 0 and today["total"] == 11
    assert all(d["total"] == 0 for d in days[:-1])
    # Other accounts cannot read it; keys cannot either.
    b = api.signup()
    assert_error(api.get(f"/api/auth/api-keys/{k['id']}/usage", token=b["token"]), 404, "not_found")
    other = api.create_key(a["token"], scopes=["read:comment"])["key"]
    assert_error(api.get(f"/api/auth/api-keys/{k['id']}/usage", token=other), 403, "session_only")


def test_usage_reaches_d1_in_batches_not_per_request(make_server):
    s = make_server({"USAGE_FLUSH_SECONDS": "4"})
    api = Api(s.url)
    a = api.signup()
    k = api.create_key(a["token"])
    for _ in range(5):
        assert api.get("/api/auth/me", token=k["key"]).status_code == 200
    sql = f"SELECT allowed FROM key_usage WHERE key_id = '{k['id']}'"
    assert d1_query(s, sql) == [], "nothing is written per request"
    rows = wait_for(lambda: d1_query(s, sql), timeout=15, step=1)
    assert rows == [{"allowed": 5}]


def test_quota_thresholds_notify_once_each(make_server):
    s = make_server({"DAILY_QUOTA": "5"})
    api = Api(s.url)
    a = api.signup()
    k = api.create_key(a["token"])
    for i in range(3):
        api.get("/api/auth/me", token=k["key"])
    time.sleep(1)
    assert notices(api, a["token"], "key.quota_threshold") == []
    api.get("/api/auth/me", token=k["key"])  # 4 of 5 = 80 %
    got = wait_for(lambda: notices(api, a["token"], "key.quota_threshold"))
    assert [n["data"]["percent"] for n in got] == [80]
    api.get("/api/auth/me", token=k["key"])  # 5 of 5
    for _ in range(4):
        assert_error(api.get("/api/auth/me", token=k["key"]), 429, "quota_exceeded")
    got = wait_for(lambda: len(notices(api, a["token"], "key.quota_threshold")) >= 2 and notices(api, a["token"], "key.quota_threshold"))
    time.sleep(1)
    got = notices(api, a["token"], "key.quota_threshold")
    assert sorted(n["data"]["percent"] for n in got) == [80, 100], "each threshold once, never repeated"
    assert all(n["keyId"] == k["id"] and n["data"]["quota"] == 5 for n in got)


def test_revocation_leaves_a_notice(api: Api):
    a = api.signup()
    k = api.create_key(a["token"])
    api.delete(f"/api/auth/api-keys/{k['id']}", token=a["token"])
    got = wait_for(lambda: notices(api, a["token"], "key.revoked"))
    assert got and got[0]["keyId"] == k["id"]


def _comparable(r):
    drop = {"x-request-id", "date", "content-length", "transfer-encoding", "connection", "keep-alive"}
    return r.status_code, r.json(), {k.lower(): v for k, v in r.headers.items() if k.lower() not in drop}


def test_canary_keys_answer_like_unknown_keys_and_notify_the_owner_hourly(api: Api):
    a = api.signup()
    c = api.create_key(a["token"], scopes=["write:jes", "read:comment"], canary=True, label="honeytoken")
    assert c["canary"] is True
    h = {"CF-Connecting-IP": "198.51.100.23", "User-Agent": "curl/8.0 attacker"}
    wait_clear_of_window_end(3600, 15)  # the burst below in one aligned window
    canary = api.get("/api/auth/me", token=c["key"], headers=h)
    unknown = api.get("/api/auth/me", token=forge(), headers=h)
    assert _comparable(canary) == _comparable(unknown)
    assert_error(canary, 401, "invalid_api_key")
    got = wait_for(lambda: notices(api, a["token"], "key.canary_used"))
    assert len(got) == 1
    assert got[0]["keyId"] == c["id"]
    assert got[0]["data"]["ip"] == "198.51.100.23" and got[0]["data"]["userAgent"] == "curl/8.0 attacker"
    api.get("/api/auth/me", token=c["key"], headers=h)
    time.sleep(1)
    assert len(notices(api, a["token"], "key.canary_used")) == 1, "at most one notice per hour"
    listed = next(i for i in api.get("/api/auth/api-keys", token=a["token"]).json()["items"] if i["id"] == c["id"])
    assert listed["canary"] is True


def test_owner_notices_are_marked_read_by_id_or_all_and_only_the_owners(api: Api):
    a, b = api.signup(), api.signup()
    ids = []
    for label in ("one", "two", "three"):
        c = api.create_key(a["token"], scopes=["read:comment"], canary=True, label=label)
        api.get("/api/auth/me", token=c["key"])
        ids.append(wait_for(lambda: [n for n in notices(api, a["token"], "key.canary_used") if n["keyId"] == c["id"]])[0]["id"])
    assert all(n["readAt"] is None for n in notices(api, a["token"]))
    # Another account's session changes nothing; a key may not mark at all.
    assert api.post("/api/notifications/read", token=b["token"], json={"ids": ids}).json() == {"marked": 0}
    k = api.create_key(a["token"], scopes=["read:comment"])
    assert_error(api.post("/api/notifications/read", token=k["key"], json={"all": True}), 403, "session_only")
    for bad in ({}, {"ids": []}, {"ids": [1]}, {"ids": ids, "all": True}, {"all": False}, {"ids": ["x"] * 101}):
        err = assert_error(api.post("/api/notifications/read", token=a["token"], json=bad), 400, "invalid_request")
        assert err["message"].startswith(("ids", "body")), err
    r = api.post("/api/notifications/read", token=a["token"], json={"ids": ids[:1]})
    assert r.status_code == 200 and r.json() == {"marked": 1}
    read = {n["id"]: n["readAt"] for n in notices(api, a["token"])}
    assert read[ids[0]] is not None and read[ids[1]] is None and read[ids[2]] is None
    assert api.post("/api/notifications/read", token=a["token"], json={"ids": ids[:1]}).json() == {"marked": 0}
    assert api.post("/api/notifications/read", token=a["token"], json={"all": True}).json() == {"marked": 2}
    assert all(n["readAt"] is not None for n in notices(api, a["token"]))


# ---- Leaked-key reports (GitHub secret-scanning partner shape) --------------------------

def _signer():
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    key = ec.generate_private_key(ec.SECP256R1())
    pem = key.public_key().public_bytes(serialization.Encoding.PEM,
                                        serialization.PublicFormat.SubjectPublicKeyInfo).decode()

    def sign(body: bytes) -> str:
        import base64
        return base64.b64encode(key.sign(body, ec.ECDSA(hashes.SHA256()))).decode()

    return pem, sign


def test_signed_leak_reports_revoke_live_keys_and_say_which_were_live(make_server):
    import json
    pem, sign = _signer()
    other_pem, _ = _signer()
    # Two trusted keys (GitHub rotates them); the report is signed by the second.
    s = make_server({"LEAK_REPORT_PUBLIC_KEYS": other_pem + pem})
    api = Api(s.url)
    a = api.signup()
    live = api.create_key(a["token"], label="leaky")
    spare = api.create_key(a["token"], label="spare")
    revoked = api.create_key(a["token"], label="old")
    api.delete(f"/api/auth/api-keys/{revoked['id']}", token=a["token"])
    assert api.get("/api/auth/me", token=live["key"]).status_code == 200
    body = json.dumps([
        {"token": live["key"], "type": "jestha_api_key", "url": "https://github.com/x/y/blob/main/.env", "source": "content"},
        {"token": revoked["key"], "type": "jestha_api_key", "url": "https://gist.github.com/z", "source": "gist"},
        {"token": forge(), "type": "jestha_api_key", "url": "https://example.com", "source": "content"},
        {"token": "not-a-key", "type": "jestha_api_key", "url": "https://example.com", "source": "content"},
    ]).encode()
    r = api.post("/api/security/leaked-keys", data=body,
                 headers={"Content-Type": "application/json", "Github-Public-Key-Identifier": "test",
                          "Github-Public-Key-Signature": sign(body)})
    assert r.status_code == 200, r.text
    verdicts = r.json()
    assert [(v["label"], v["live"]) for v in verdicts] == [
        ("true_positive", True), ("true_positive", False), ("false_positive", False), ("false_positive", False)]
    import hashlib
    assert verdicts[0]["token_hash"] == hashlib.sha256(live["key"].encode()).hexdigest()
    assert live["key"] not in r.text, "the answer never echoes a token"
    assert_error(api.get("/api/auth/me", token=live["key"]), 401, "api_key_revoked")
    assert api.get("/api/auth/me", token=spare["key"]).status_code == 200
    got = wait_for(lambda: notices(api, a["token"], "key.leaked"))
    assert {n["keyId"] for n in got} >= {live["id"]}
    leaked = next(n for n in got if n["keyId"] == live["id"])
    assert leaked["data"]["url"] == "https://github.com/x/y/blob/main/.env" and leaked["data"]["wasLive"] is True
    rows = d1_query(s, "SELECT matched, live FROM leak_reports ORDER BY rowid")
    assert [(r["matched"], r["live"]) for r in rows] == [(1, 1), (1, 0), (0, 0), (0, 0)]
    # The owner's audit log says the system revoked it as leaked (once: the repeat changed nothing).
    audit = [x for x in api.get("/api/account/audit", token=a["token"]).json()["items"] if x["action"] == "key.leaked"]
    assert len(audit) == 1 and audit[0]["target"] == {"type": "key", "id": live["id"]}
    assert audit[0]["actor"] == {"type": "system", "id": None}


def test_unsigned_and_forged_leak_reports_change_nothing(make_server):
    import json
    pem, sign = _signer()
    _, forge_sign = _signer()
    s = make_server({"LEAK_REPORT_PUBLIC_KEYS": pem})
    api = Api(s.url)
    a = api.signup()
    k = api.create_key(a["token"])
    body = json.dumps([{"token": k["key"], "type": "jestha_api_key", "url": "https://x", "source": "content"}]).encode()
    h = {"Content-Type": "application/json"}
    assert_error(api.post("/api/security/leaked-keys", data=body, headers=h), 401, "unauthenticated")
    forged = {**h, "Github-Public-Key-Signature": forge_sign(body)}
    assert_error(api.post("/api/security/leaked-keys", data=body, headers=forged), 401, "unauthenticated")
    tampered = body.replace(b"https://x", b"https://y")
    replayed = {**h, "Github-Public-Key-Signature": sign(body)}
    assert_error(api.post("/api/security/leaked-keys", data=tampered, headers=replayed), 401, "unauthenticated")
    assert api.get("/api/auth/me", token=k["key"]).status_code == 200
    assert d1_query(s, "SELECT COUNT(*) AS n FROM leak_reports") == [{"n": 0}]


def test_leak_reports_are_refused_when_no_key_is_trusted(api: Api):
    body = b'[{"token":"jes_live_x","type":"t","url":"u","source":"s"}]'
    r = api.post("/api/security/leaked-keys", data=body, headers={"Content-Type": "application/json",
                                                                  "Github-Public-Key-Signature": "MEUCIQ=="})
    assert_error(r, 401, "unauthenticated")


def test_a_replayed_leak_report_changes_nothing_and_notifies_no_one_twice(make_server):
    import json
    from concurrent.futures import ThreadPoolExecutor
    import requests as rq
    from receiver import Receiver
    rx = Receiver()
    try:
        pem, sign = _signer()
        s = make_server({"LEAK_REPORT_PUBLIC_KEYS": pem, "WEBHOOK_ALLOW_LOOPBACK": "true", "WEBHOOK_RETRY_DELAYS": "1,1"})
        api = Api(s.url)
        a = api.signup()
        uid = a["user"]["id"]
        live = api.create_key(a["token"], label="leaky")
        old = api.create_key(a["token"], label="old")
        live_path, old_path = rx.new_path(), rx.new_path()
        live_hook = _hook(api, a["token"], live["id"], rx.url(live_path), ["key.leaked"])
        _hook(api, a["token"], old["id"], rx.url(old_path), ["key.leaked"])
        assert api.delete(f"/api/auth/api-keys/{old['id']}", token=a["token"]).status_code == 204

        def report(findings: list[dict]) -> tuple[bytes, dict]:
            body = json.dumps([{"type": "jestha_api_key", "source": "content", **f} for f in findings]).encode()
            return body, {"Content-Type": "application/json", "Github-Public-Key-Signature": sign(body)}

        def post(body: bytes, headers: dict):
            return rq.post(s.url + "/api/security/leaked-keys", data=body, headers=headers, timeout=60)

        def counts() -> dict:
            return d1_query(s, f"""SELECT
                (SELECT COUNT(*) FROM notifications WHERE user_id = '{uid}' AND type = 'key.leaked') AS notices,
                (SELECT COUNT(*) FROM event_outbox WHERE account_id = '{uid}' AND type = 'key.leaked') AS events,
                (SELECT COUNT(*) FROM leak_reports) AS findings,
                (SELECT COUNT(*) FROM audit_log WHERE user_id = '{uid}' AND action = 'key.leaked') AS audit""")[0]

        body, headers = report([
            {"token": live["key"], "url": "https://github.com/x/y/blob/main/.env"},
            {"token": old["key"], "url": "https://gist.github.com/z"},
            {"token": forge(), "url": "https://example.com"},
        ])
        first = post(body, headers)
        assert first.status_code == 200, first.text
        assert [(v["label"], v["live"]) for v in first.json()] == [
            ("true_positive", True), ("true_positive", False), ("false_positive", False)]
        wait_for(lambda: rx.at(live_path) and rx.at(old_path), timeout=30)
        after_first = counts()
        assert after_first == {"notices": 2, "events": 2, "findings": 3, "audit": 1}

        # The same body and signature again, then twice at once: the first answer, and nothing else.
        replay = post(body, headers)
        assert replay.status_code == 200 and replay.json() == first.json(), replay.text
        with ThreadPoolExecutor(2) as pool:
            again = list(pool.map(lambda _: post(body, headers), range(2)))
        assert [r.json() for r in again] == [first.json()] * 2
        rq.get(s.url + "/__scheduled?cron=*+*+*+*+*", timeout=60)  # the outbox sweep finds nothing left to send
        time.sleep(3)
        assert counts() == after_first
        assert len(rx.at(live_path)) == 1 and len(rx.at(old_path)) == 1, "one key.leaked per key, ever"
        assert _verified(live_hook, rx.at(live_path)[0])["data"]["wasLive"] is True
        assert_error(api.get("/api/auth/me", token=live["key"]), 401, "api_key_revoked")
        assert len(notices(api, a["token"], "key.leaked")) == 2

        # Two identical reports of a fresh finding at once record it once.
        twin = api.create_key(a["token"], label="twin")
        body, headers = report([{"token": twin["key"], "url": "https://github.com/x/twin"}])
        with ThreadPoolExecutor(2) as pool:
            both = list(pool.map(lambda _: post(body, headers), range(2)))
        assert [r.status_code for r in both] == [200, 200]
        assert both[0].json() == both[1].json() and both[0].json()[0]["label"] == "true_positive"
        assert counts() == {"notices": 3, "events": 3, "findings": 4, "audit": 2}
        assert_error(api.get("/api/auth/me", token=twin["key"]), 401, "api_key_revoked")

        # A known key found somewhere new is news: recorded and told, though it is revoked already.
        body, headers = report([{"token": live["key"], "url": "https://gist.github.com/new-place"}])
        r = post(body, headers)
        assert [(v["label"], v["live"]) for v in r.json()] == [("true_positive", False)]
        got = wait_for(lambda: len(rx.at(live_path)) == 2 and rx.at(live_path), timeout=30)
        assert _verified(live_hook, got[1])["data"]["url"] == "https://gist.github.com/new-place"
        assert counts() == {"notices": 4, "events": 4, "findings": 5, "audit": 2}
    finally:
        rx.stop()


# ---- Owner notices as signed webhook events to the key's own endpoints -----------------

def _hook(api: Api, session: str, key_id: str, url: str, events: list[str]) -> dict:
    r = api.post(f"/api/auth/api-keys/{key_id}/webhooks", token=session, json={"url": url, "events": events})
    assert r.status_code == 201, r.text
    return r.json()


def _verified(hook: dict, req: dict) -> dict:
    from standardwebhooks.webhooks import Webhook
    return Webhook(hook["secret"]).verify(req["body"], req["headers"])


def test_quota_thresholds_reach_the_keys_own_endpoints_once_each(make_server):
    from receiver import Receiver
    rx = Receiver()
    try:
        s = make_server({"DAILY_QUOTA": "5", "WEBHOOK_ALLOW_LOOPBACK": "true", "WEBHOOK_RETRY_DELAYS": "1,1"})
        api = Api(s.url)
        a = api.signup()
        k = api.create_key(a["token"], scopes=["read:comment"])
        other = api.create_key(a["token"], scopes=["read:comment"])
        mine, theirs = rx.new_path(), rx.new_path()
        hook = _hook(api, a["token"], k["id"], rx.url(mine), ["key.quota_threshold", "key.revoked"])
        _hook(api, a["token"], other["id"], rx.url(theirs), ["key.quota_threshold"])
        for _ in range(5):
            assert api.get("/api/auth/me", token=k["key"]).status_code == 200
        for _ in range(3):
            assert_error(api.get("/api/auth/me", token=k["key"]), 429, "quota_exceeded")
        got = wait_for(lambda: len(rx.at(mine)) >= 2 and rx.at(mine), timeout=30)
        time.sleep(2)
        events = [_verified(hook, r) for r in rx.at(mine)]
        assert sorted(e["data"]["percent"] for e in events) == [80, 100]
        assert all(e["type"] == "key.quota_threshold" and e["data"]["keyId"] == k["id"] for e in events)
        assert rx.at(theirs) == [], "another key's endpoint hears nothing about this key"
        # Revocation is told to the revoked key's own endpoint.
        api.delete(f"/api/auth/api-keys/{k['id']}", token=a["token"])
        revoked = wait_for(lambda: [r for r in rx.at(mine) if '"key.revoked"' in r["body"]], timeout=30)
        assert _verified(hook, revoked[0])["data"]["keyId"] == k["id"]
    finally:
        rx.stop()


def test_expiring_keys_are_noticed_before_each_threshold(make_server):
    import requests as rq
    from datetime import timedelta
    from receiver import Receiver
    rx = Receiver()
    try:
        s = make_server({"EXPIRY_NOTICE_SECONDS": "60,10", "WEBHOOK_ALLOW_LOOPBACK": "true"})
        api = Api(s.url)
        a = api.signup()
        at = (datetime.now(timezone.utc) + timedelta(seconds=40)).isoformat().replace("+00:00", "Z")
        k = api.create_key(a["token"], expiresAt=at)
        expires = datetime.fromisoformat(k["expiresAt"].replace("Z", "+00:00")).timestamp()
        far = api.create_key(a["token"], expiresIn="30d")
        path = rx.new_path()
        hook = _hook(api, a["token"], k["id"], rx.url(path), ["key.expiring"])
        cron = lambda: rq.get(s.url + "/__scheduled?cron=*+*+*+*+*", timeout=30)
        cron()
        cron()  # a second sweep sends nothing new
        first = wait_for(lambda: rx.at(path), timeout=30)
        time.sleep(1)
        assert len(rx.at(path)) == 1
        e = _verified(hook, first[0])
        assert e["type"] == "key.expiring" and e["data"]["keyId"] == k["id"] and e["data"]["noticeSeconds"] == 60
        time.sleep(max(0.0, expires - 6 - time.time()))  # now within 10 s of expiry, still before it
        cron()
        wait_for(lambda: len(rx.at(path)) >= 2, timeout=30)
        assert _verified(hook, rx.at(path)[1])["data"]["noticeSeconds"] == 10
        notes = notices(api, a["token"], "key.expiring")
        assert {n["keyId"] for n in notes} == {k["id"]}, "the 30-day key is not near its expiry"
        assert len(notes) == 2
    finally:
        rx.stop()
