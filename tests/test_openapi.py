"""The OpenAPI document matches the live route table."""
import re

from conftest import Api


def test_openapi_document_covers_exactly_the_route_table(api: Api):
    r = api.get("/openapi.json")
    assert r.status_code == 200
    assert r.headers["content-type"] == "application/json"
    doc = r.json()
    assert doc["openapi"] == "3.1.0"
    documented = {(m.upper(), re.sub(r"\{(\w+)\}", r":\1", p)) for p, ops in doc["paths"].items() for m in ops}
    table = {(x["method"], x["path"]) for x in api.get("/api/routes").json()["items"]}
    assert documented == table
    for item in api.get("/api/routes").json()["items"]:
        path = re.sub(r":(\w+)", r"{\1}", item["path"])
        op = doc["paths"][path][item["method"].lower()]
        assert op["x-jestha-access"] == item["access"]
        if item["access"] == "scopes":
            assert op["x-required-scopes"] == item["scopes"]
            assert op["security"][0] == {"apiKey": item["scopes"]}
        if item["access"] == "any_scope":
            assert op["x-any-of-scopes"] == item["scopes"]
            assert [x for x in op["security"] if "apiKey" in x] == [{"apiKey": [sc]} for sc in item["scopes"]]
    assert set(doc["components"]["securitySchemes"]) >= {"apiKey", "session", "sessionCookie"}
