"""OAuth discovery and client registration: the protected resource metadata
(RFC 9728) a 401 points to, the authorization server metadata (RFC 8414) with
an issuer that is exactly the origin, and RFC 7591 registration of public
clients (loopback and https redirect URIs only, no secret)."""
import pytest

from conftest import Api, d1_query, wait_clear_of_window_end
from oauth import GRANTABLE, address, client, register


def test_a_401_leads_to_the_protected_resource_metadata_and_on_to_the_server(api: Api):
    challenge = api.post("/mcp", json={}).headers["WWW-Authenticate"]
    url = challenge.split('resource_metadata="')[1].split('"')[0]
    assert url == f"{api.url}/.well-known/oauth-protected-resource"
    prm = api.http.get(url, allow_redirects=False)
    assert prm.status_code == 200 and prm.headers["content-type"].startswith("application/json")
    assert prm.headers["access-control-allow-origin"] == "*"
    doc = prm.json()
    assert doc["resource"] == api.url
    assert doc["authorization_servers"] == [api.url]
    assert doc["scopes_supported"] == GRANTABLE
    assert doc["bearer_methods_supported"] == ["header"]
    mcp = api.get("/.well-known/oauth-protected-resource/mcp").json()
    assert mcp["resource"] == f"{api.url}/mcp" and mcp["authorization_servers"] == [api.url]


def test_the_server_metadata_names_every_endpoint_and_only_what_is_supported(api: Api):
    r = api.http.get(api.url + "/.well-known/oauth-authorization-server", allow_redirects=False)
    assert r.status_code == 200
    m = r.json()
    o = api.url
    assert m["issuer"] == o and not m["issuer"].endswith("/")
    for name, path in [("authorization_endpoint", "/oauth/authorize"), ("token_endpoint", "/oauth/token"),
                       ("registration_endpoint", "/oauth/register"), ("revocation_endpoint", "/oauth/revoke"),
                       ("device_authorization_endpoint", "/oauth/device")]:
        assert m[name] == o + path, name
    assert m["code_challenge_methods_supported"] == ["S256"]
    assert m["response_types_supported"] == ["code"]
    assert m["grant_types_supported"] == ["authorization_code", "refresh_token",
                                          "urn:ietf:params:oauth:grant-type:device_code"]
    assert m["token_endpoint_auth_methods_supported"] == ["none"]
    assert m["scopes_supported"] == GRANTABLE
    assert "webhooks:manage" not in m["scopes_supported"] and "offline_access" not in m["scopes_supported"]
    assert m["authorization_response_iss_parameter_supported"] is True
    # Client ID metadata documents are not fetched, so not claimed.
    assert m["client_id_metadata_document_supported"] is True
    assert api.get("/.well-known/openid-configuration").status_code == 404


def test_a_public_client_registers_and_gets_no_secret(api: Api):
    r = register(api, redirect_uris=["http://127.0.0.1:33418/callback", "https://agent.example/cb"],
                 client_name="SDK agent", scope="read:comment claudeai", token_endpoint_auth_method="client_secret_post",
                 logo_uri="https://evil.example/logo.png")
    assert r.status_code == 201, r.text
    assert r.headers["cache-control"] == "no-store"
    c = r.json()
    assert c["client_id"].startswith("cli_") and len(c["client_id"]) == 30
    assert c["token_endpoint_auth_method"] == "none"
    assert "client_secret" not in c and "registration_access_token" not in c
    assert c["redirect_uris"] == ["http://127.0.0.1:33418/callback", "https://agent.example/cb"]
    assert c["grant_types"] == ["authorization_code", "refresh_token"]
    assert c["response_types"] == ["code"]
    assert c["scope"] == "read:comment"
    assert isinstance(c["client_id_issued_at"], int)


def test_the_cli_registers_for_the_device_grant_without_redirect_uris(api: Api):
    body = {"client_name": "Jestha CLI", "grant_types": ["urn:ietf:params:oauth:grant-type:device_code", "refresh_token"],
            "response_types": [], "token_endpoint_auth_method": "none", "software_id": "jestha-cli",
            "software_version": "0.1.0"}
    r = api.post("/oauth/register", json=body, headers={"CF-Connecting-IP": address()})
    assert r.status_code == 201, r.text
    assert r.json()["redirect_uris"] == [] and r.json()["response_types"] == []


@pytest.mark.parametrize("uris", [
    ["http://app.example/cb"], ["javascript:alert(1)"], ["https://app.example/cb#x"], ["https://user@app.example/cb"],
    ["com.example.app:/callback"], [f"https://app.example/{i}" for i in range(11)], [], "https://app.example/cb",
])
def test_unsafe_redirect_uris_are_refused(api: Api, uris):
    r = api.post("/oauth/register", json={"redirect_uris": uris}, headers={"CF-Connecting-IP": address()})
    assert r.status_code == 400, r.text
    assert r.json()["error"] == "invalid_redirect_uri" and r.json()["error_description"]


def test_bad_metadata_is_invalid_client_metadata_and_stores_nothing(api: Api, server):
    before = d1_query(server, "SELECT COUNT(*) AS n FROM oauth_clients")[0]["n"]
    for body in [{"redirect_uris": ["https://a.example/cb"], "grant_types": ["implicit"]},
                 {"redirect_uris": ["https://a.example/cb"], "response_types": ["token"]},
                 {"redirect_uris": ["https://a.example/cb"], "client_name": 7}, [1, 2]]:
        r = api.post("/oauth/register", json=body, headers={"CF-Connecting-IP": address()})
        assert r.status_code == 400 and r.json()["error"] == "invalid_client_metadata", (body, r.text)
    r = api.post("/oauth/register", data="redirect_uris=x", headers={"CF-Connecting-IP": address(),
                                                                      "content-type": "application/x-www-form-urlencoded"})
    assert r.status_code == 400 and r.json()["error"] == "invalid_client_metadata"
    big = {"redirect_uris": ["https://a.example/cb"], "client_name": "x" * 20_000}
    r = api.post("/oauth/register", json=big, headers={"CF-Connecting-IP": address()})
    assert r.status_code == 400 and r.json()["error"] == "invalid_client_metadata"
    assert d1_query(server, "SELECT COUNT(*) AS n FROM oauth_clients")[0]["n"] == before


def test_names_are_shown_safely(api: Api, server):
    c = client(api, client_name="  Good\u202eevil\u0007 app ")
    assert c["client_name"] == "Goodevil app"
    c = client(api, redirect_uris=["https://agent.example:8443/cb"], client_name="")
    assert c["client_name"] == "agent.example:8443"
    row = d1_query(server, f"SELECT client_name FROM oauth_clients WHERE id = '{c['client_id']}'")[0]
    assert row["client_name"] == "agent.example:8443"


def test_registrations_are_throttled_per_address(api: Api):
    ip = address()
    wait_clear_of_window_end(3600, 15)  # the burst below in one aligned window
    codes = [register(api, ip=ip).status_code for _ in range(20)]
    assert codes == [201] * 20
    r = register(api, ip=ip)
    assert r.status_code == 429 and int(r.headers["retry-after"]) > 0
    assert r.json()["error"] == "invalid_request"
    assert register(api, ip=address()).status_code == 201, "another address is not held back"


def test_browser_clients_may_call_discovery_registration_and_the_token_endpoint(api: Api):
    for path in ("/.well-known/oauth-authorization-server", "/oauth/register", "/oauth/token", "/oauth/revoke",
                 "/oauth/device", "/.well-known/oauth-protected-resource/mcp"):
        r = api.call("OPTIONS", path, headers={"Origin": "https://inspector.example",
                                               "Access-Control-Request-Method": "POST"})
        assert r.status_code == 204, (path, r.text)
        assert r.headers["access-control-allow-origin"] == "*"
        assert "content-type" in r.headers["access-control-allow-headers"]
    r = register(api)
    assert r.headers["access-control-allow-origin"] == "*"
    r = api.http.post(api.url + "/oauth/token", data={"grant_type": "authorization_code", "client_id": "cli_x"})
    assert r.status_code == 401 and r.headers["access-control-allow-origin"] == "*"
    # The API's own routes and the consent's are not opened to other origins.
    for path in ("/api/posts", "/api/oauth/authorize", "/oauth/authorize"):
        r = api.call("OPTIONS", path, headers={"Origin": "https://inspector.example"})
        assert r.status_code == 405 and "access-control-allow-origin" not in r.headers, path
