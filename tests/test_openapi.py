"""The OpenAPI document: it matches the live route table, a real validator
accepts it, every example in it validates against its schema, and live webhook
deliveries match its `webhooks` section."""
import copy
import json
import re
import time

import pytest
from jsonschema import Draft202012Validator, FormatChecker
from openapi_spec_validator import OpenAPIV31SpecValidator, validate
from openapi_spec_validator.validation.exceptions import OpenAPIValidationError
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

from conftest import Api
from receiver import Receiver

BASE = "urn:jestha:openapi"


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


# ---------------------------------------------------------------- the document as generators read it


@pytest.fixture(scope="module")
def doc(api: Api) -> dict:
    return api.get("/openapi.json").json()


def test_the_served_document_is_valid_openapi_3_1_by_a_real_validator(doc):
    validate(doc, cls=OpenAPIV31SpecValidator)
    # The validator is not a rubber stamp: a path parameter left undeclared, or a
    # response that is not a Response Object, fails.
    broken = copy.deepcopy(doc)
    del broken["paths"]["/api/posts/{id}"]["get"]["parameters"]
    with pytest.raises(OpenAPIValidationError, match="id"):
        validate(broken, cls=OpenAPIV31SpecValidator)
    broken = copy.deepcopy(doc)
    broken["paths"]["/api/posts"]["post"]["responses"]["201"] = "Jes"
    with pytest.raises(OpenAPIValidationError):
        validate(broken, cls=OpenAPIV31SpecValidator)


def pointer(*parts: str) -> str:
    return "#/" + "/".join(p.replace("~", "~0").replace("/", "~1") for p in parts)


class Schemas:
    """Validates instances against schemas of the document, wherever they sit (refs resolve)."""

    def __init__(self, doc: dict):
        self.registry = Registry().with_resource(BASE, Resource(contents=doc, specification=DRAFT202012))

    def errors(self, at: str, instance) -> list[str]:
        v = Draft202012Validator({"$ref": BASE + at}, registry=self.registry, format_checker=FormatChecker())
        return [f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in v.iter_errors(instance)]


def every_example(doc: dict):
    """(where, schema pointer, example) for every example of the document."""
    params = doc["components"]["parameters"]
    for name, p in params.items():
        yield f"parameter {name}", pointer("components", "parameters", name, "schema"), p["example"]
    for name, h in doc["components"]["headers"].items():
        yield f"header {name}", pointer("components", "headers", name, "schema"), h["example"]
    for name, r in doc["components"]["responses"].items():
        for media, c in r["content"].items():
            for ex_name, ex in c["examples"].items():
                yield f"response {name} {ex_name}", pointer("components", "responses", name, "content", media, "schema"), ex["value"]
    items = [("paths", path, method, op) for path, ops in doc["paths"].items() for method, op in ops.items()]
    items += [("webhooks", name, method, op) for name, ops in doc["webhooks"].items() for method, op in ops.items()]
    for section, path, method, op in items:
        where = f"{method.upper()} {path}"
        for media, c in op.get("requestBody", {}).get("content", {}).items():
            if "example" in c:
                yield f"{where} request", pointer(section, path, method, "requestBody", "content", media, "schema"), c["example"]
        for status, r in op["responses"].items():
            for media, c in r.get("content", {}).items():
                at = pointer(section, path, method, "responses", status, "content", media, "schema")
                if "example" in c:
                    yield f"{where} {status}", at, c["example"]
                for name, ex in c.get("examples", {}).items():
                    yield f"{where} {status} {name}", at, ex["value"]


def test_every_example_in_the_document_validates_against_its_schema(doc):
    schemas = Schemas(doc)
    checked, bad = 0, []
    for where, at, example in every_example(doc):
        checked += 1
        bad += [f"{where}: {e}" for e in schemas.errors(at, example)]
    assert not bad, "\n".join(bad[:30])
    assert checked > 200, checked
    # And the check bites: an example that breaks its schema is reported.
    assert schemas.errors(pointer("components", "schemas", "Jes"), {"id": 1})


def test_live_webhook_deliveries_match_the_documented_payloads_and_headers(api: Api, doc):
    """A real endpoint receives post.created/updated/bounced/deleted, comment.created,
    jesclip.created, webhook.test and key.revoked; each body validates against its
    webhook's schema and carries every required header the webhook declares."""
    rx = Receiver()
    try:
        a = api.signup()
        key = api.create_key(a["token"], label="docs", scopes=["write:jes", "write:jesclip", "write:comment", "read:comment"])
        path = rx.new_path()
        hook = api.post(f"/api/auth/api-keys/{key['id']}/webhooks", token=a["token"],
                        json={"url": rx.url(path), "events": [e for e in doc["webhooks"] if not e.startswith("key.") or e == "key.revoked"]})
        assert hook.status_code == 201, hook.text
        k = key["key"]
        jes = api.post("/api/posts", token=k, json={"content": "documented #hooks", "visibility": "PUBLIC"}).json()
        assert api.patch(f"/api/posts/{jes['id']}", token=k, json={"content": "edited"}).status_code == 200
        assert api.post(f"/api/posts/{jes['id']}/bounce", token=k, json={"content": "quote"}).status_code == 201
        assert api.post(f"/api/posts/{jes['id']}/comments", token=k, json={"content": "hi"}).status_code == 201
        mp4 = b"\x00\x00\x00\x18ftypisom\x00\x00\x02\x00isomiso2" + b"\x00" * 2000
        assert api.post("/api/jesclips", token=k, files={"video": ("a.mp4", mp4, "video/mp4")}, data={"caption": "clip"}).status_code == 201
        assert api.delete(f"/api/posts/{jes['id']}", token=k).status_code == 204
        assert api.post(f"/api/auth/api-keys/{key['id']}/webhooks/{hook.json()['id']}/test", token=a["token"]).status_code == 202
        def arrived(want: set[str]) -> list[dict]:
            deadline = time.time() + 60
            while time.time() < deadline and not want <= {json.loads(r["body"])["type"] for r in rx.at(path)}:
                time.sleep(0.3)
            got = rx.at(path)
            assert want <= {json.loads(r["body"])["type"] for r in got}, [json.loads(r["body"])["type"] for r in got]
            return got

        arrived({"post.created", "post.updated", "post.bounced", "post.deleted", "comment.created", "jesclip.created", "webhook.test"})
        # Revoked only now: a revoked key's endpoints receive its key notices, not content.
        assert api.delete(f"/api/auth/api-keys/{key['id']}", token=a["token"]).status_code == 204
        got = arrived({"key.revoked"})
        schemas = Schemas(doc)
        for r in got:
            body = json.loads(r["body"])
            hook_doc = doc["webhooks"][body["type"]]["post"]
            at = pointer("webhooks", body["type"], "post", "requestBody", "content", "application/json", "schema")
            assert schemas.errors(at, body) == [], (body["type"], r["body"])
            for ref in hook_doc["parameters"]:
                name = ref["$ref"].rsplit("/", 1)[1]
                param = doc["components"]["parameters"][name]
                if param["required"]:
                    value = r["headers"].get(param["name"].lower())
                    assert value is not None, (body["type"], param["name"])
                    assert schemas.errors(pointer("components", "parameters", name, "schema"), value) == [], name
    finally:
        rx.stop()
