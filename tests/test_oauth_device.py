"""The device authorization grant (RFC 8628), as `jestha login` uses it:
the device gets a code pair, the person approves the user code on /device
(signed in), the device's polls hear pending, slow_down, denied or expired,
and an approval is exchanged for tokens exactly once."""
import hashlib

from conftest import Api, assert_error, d1_query, wait_clear_of_window_end
from oauth import ACCESS_RE, DEVICE_GRANT, REFRESH_RE, address

CLI = {"client_name": "Jestha CLI", "grant_types": [DEVICE_GRANT, "refresh_token"], "response_types": [],
       "token_endpoint_auth_method": "none", "software_id": "jestha-cli", "software_version": "0.1.0"}


def cli_client(api: Api) -> str:
    r = api.post("/oauth/register", json=CLI, headers={"CF-Connecting-IP": address()})
    assert r.status_code == 201, r.text
    return r.json()["client_id"]


def start(api: Api, client_id: str, scope: str = "write:jes read:comment"):
    r = api.http.post(api.url + "/oauth/device", data={"client_id": client_id, "scope": scope},
                      headers={"CF-Connecting-IP": address()}, timeout=30)
    assert r.status_code == 200, r.text
    return r.json()


def poll(api: Api, client_id: str, device_code: str):
    return api.http.post(api.url + "/oauth/token", timeout=30, data={
        "grant_type": DEVICE_GRANT, "device_code": device_code, "client_id": client_id})


def forget_last_poll(server, device_code: str):
    h = hashlib.sha256(device_code.encode()).hexdigest()
    d1_query(server, f"UPDATE oauth_device_codes SET last_polled_at = NULL WHERE device_code_hash = '{h}'")


def test_an_approved_device_gets_tokens_once(api: Api, server):
    cid = cli_client(api)
    d = start(api, cid)
    assert d["verification_uri"] == api.url + "/device"
    assert d["verification_uri_complete"] == f"{api.url}/device?user_code={d['user_code']}"
    assert d["expires_in"] == 600 and d["interval"] == 5
    assert len(d["user_code"]) == 9 and d["user_code"][4] == "-"
    assert d["device_code"].startswith("jes_odc_")
    r = poll(api, cid, d["device_code"])
    assert r.status_code == 400 and r.json()["error"] == "authorization_pending"
    r = poll(api, cid, d["device_code"])
    assert r.status_code == 400 and r.json()["error"] == "slow_down"
    h = hashlib.sha256(d["device_code"].encode()).hexdigest()
    assert d1_query(server, f"SELECT interval_secs FROM oauth_device_codes WHERE device_code_hash = '{h}'")[0]["interval_secs"] == 10
    a = api.signup()
    typed = d["user_code"].lower().replace("-", " ")
    info = api.get("/api/oauth/device?userCode=" + typed, token=a["token"])
    assert info.status_code == 200, info.text
    assert info.json()["client"]["name"] == "Jestha CLI"
    assert [s["scope"] for s in info.json()["scopes"]] == ["write:jes", "read:comment"]
    ok = api.post("/api/oauth/device", token=a["token"],
                  json={"userCode": d["user_code"], "decision": "allow", "scopes": ["write:jes"]})
    assert ok.status_code == 200 and ok.json() == {"status": "approved"}, ok.text
    forget_last_poll(server, d["device_code"])
    r = poll(api, cid, d["device_code"])
    assert r.status_code == 200, r.text
    t = r.json()
    assert ACCESS_RE.match(t["access_token"]) and REFRESH_RE.match(t["refresh_token"]) and t["scope"] == "write:jes"
    post = api.post("/api/posts", token=t["access_token"], json={"content": "from the CLI", "visibility": "PUBLIC"})
    assert post.status_code == 201 and post.json()["via"] == {"label": "Jestha CLI"}
    forget_last_poll(server, d["device_code"])
    assert poll(api, cid, d["device_code"]).json()["error"] == "invalid_grant"
    # Answered: the user code is no longer offered.
    assert_error(api.get("/api/oauth/device?userCode=" + d["user_code"], token=a["token"]), 404, "not_found")


def test_a_denied_or_expired_request_says_so(api: Api, server):
    cid = cli_client(api)
    a = api.signup()
    d = start(api, cid)
    r = api.post("/api/oauth/device", token=a["token"], json={"userCode": d["user_code"], "decision": "deny"})
    assert r.json() == {"status": "denied"}
    assert poll(api, cid, d["device_code"]).json()["error"] == "access_denied"
    d = start(api, cid)
    h = hashlib.sha256(d["device_code"].encode()).hexdigest()
    d1_query(server, f"UPDATE oauth_device_codes SET expires_at = 1 WHERE device_code_hash = '{h}'")
    assert poll(api, cid, d["device_code"]).json()["error"] == "expired_token"
    assert_error(api.get("/api/oauth/device?userCode=" + d["user_code"], token=a["token"]), 404, "not_found")


def test_a_device_code_is_its_clients_and_a_redirect_client_cannot_start_one(api: Api):
    cid = cli_client(api)
    d = start(api, cid)
    assert poll(api, cli_client(api), d["device_code"]).json()["error"] == "invalid_grant"
    r = api.post("/oauth/register", json={"redirect_uris": ["https://a.example/cb"]}, headers={"CF-Connecting-IP": address()})
    web = r.json()["client_id"]
    r = api.http.post(api.url + "/oauth/device", data={"client_id": web}, headers={"CF-Connecting-IP": address()})
    assert r.status_code == 400 and r.json()["error"] == "unauthorized_client"
    r = api.http.post(api.url + "/oauth/device", data={"client_id": "cli_nope"}, headers={"CF-Connecting-IP": address()})
    assert r.status_code == 401 and r.json()["error"] == "invalid_client"


def test_wrong_user_codes_are_throttled_per_account(api: Api):
    a = api.signup()
    wait_clear_of_window_end(900, 15)  # the burst below in one aligned window
    codes = [api.get("/api/oauth/device?userCode=BCDF-GHJK", token=a["token"]).status_code for _ in range(10)]
    assert codes == [404] * 10
    assert_error(api.get("/api/oauth/device?userCode=BCDF-GHJK", token=a["token"]), 429, "rate_limited")
    other = api.signup()
    assert api.get("/api/oauth/device?userCode=BCDF-GHJK", token=other["token"]).status_code == 404


def test_the_device_page_carries_the_code_to_the_web_app(api: Api):
    r = api.http.get(api.url + "/device?user_code=WDJB-MJHT", allow_redirects=False)
    assert r.status_code == 302 and r.headers["location"] == "/#/device?code=WDJB-MJHT"
    r = api.http.get(api.url + "/device?user_code=%3Cscript%3E", allow_redirects=False)
    assert r.headers["location"] == "/#/device?code=script"
    assert api.http.get(api.url + "/device", allow_redirects=False).headers["location"] == "/#/device"
