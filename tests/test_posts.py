"""Jes over HTTP: create, read, edit, delete, bounce; visibility on
every read; `via` on what keys create; ownership across accounts."""
import pytest

from conftest import Api, assert_error


def jes(api: Api, token: str, content: str = "hello #jestha", visibility: str = "PUBLIC", **extra) -> dict:
    r = api.post("/api/posts", token=token, json={"content": content, "visibility": visibility, **extra})
    assert r.status_code == 201, r.text
    return r.json()


def follow(api: Api, follower_token: str, username: str) -> None:
    r = api.post(f"/api/users/{username}/follow", token=follower_token)
    assert r.status_code == 200, r.text
    assert r.json()["following"] is True


@pytest.fixture(scope="module")
def trio(api: Api):
    """An author, a follower of the author, and a stranger."""
    author, fan, stranger = api.signup(), api.signup(), api.signup()
    follow(api, fan["token"], author["user"]["username"])
    return author, fan, stranger


def test_a_session_creates_a_jes_that_reads_back_identically(api: Api):
    a = api.signup(displayName="Ada")
    r = api.post("/api/posts", token=a["token"], json={"content": "  Hello #World and #rust\nline two ", "visibility": "PUBLIC"})
    assert r.status_code == 201, r.text
    made = r.json()
    assert made["content"] == "Hello #World and #rust\nline two"
    assert made["type"] == "jes"
    assert made["visibility"] == "PUBLIC"
    assert made["hashtags"] == ["world", "rust"]
    assert made["media"] == [] and made["bounceOf"] is None and made["hub"] is None
    assert made["author"] == {"id": a["user"]["id"], "username": a["user"]["username"], "displayName": "Ada"}
    assert "via" not in made, "sessions create without via"
    assert made["createdAt"].endswith("Z") and made["createdAt"] == made["updatedAt"]
    got = api.get(f"/api/posts/{made['id']}", token=a["token"])
    assert got.status_code == 200
    body = got.json()
    assert body.pop("counts") == {"likes": 0, "comments": 0, "bounces": 0, "saves": 0}
    assert body.pop("viewer") == {"liked": False, "saved": False}
    assert body == made, "the create response and the read agree field for field"


def test_a_key_creates_under_its_account_with_via_label(api: Api):
    a = api.signup()
    key = api.create_key(a["token"], label="Scheduler Pro", scopes=["write:jes"])
    made = jes(api, key["key"], "from a key")
    assert made["author"]["id"] == a["user"]["id"]
    assert made["via"] == {"label": "Scheduler Pro"}
    # Without read:engagement the key sees the Jes but no counts.
    got = api.get(f"/api/posts/{made['id']}", token=key["key"]).json()
    assert got["via"] == {"label": "Scheduler Pro"}
    assert "counts" not in got and "viewer" not in got
    reader = api.create_key(a["token"], label="dash", scopes=["read:engagement"])
    assert api.get(f"/api/posts/{made['id']}", token=reader["key"]).json()["counts"]["likes"] == 0
    # The owner's session sees via and counts.
    got = api.get(f"/api/posts/{made['id']}", token=a["token"]).json()
    assert got["via"] == {"label": "Scheduler Pro"} and "counts" in got


def test_creating_needs_write_jes(api: Api):
    a = api.signup()
    key = api.create_key(a["token"], scopes=["read:comment"])
    r = api.post("/api/posts", token=key["key"], json={"content": "nope", "visibility": "PUBLIC"})
    err = assert_error(r, 403, "insufficient_scope")
    assert err["message"] == "Token missing scope(s): write:jes"
    assert_error(api.post("/api/posts", json={"content": "x"}), 401, "unauthenticated")


@pytest.mark.parametrize("body,field", [
    ({"visibility": "PUBLIC"}, "content"),
    ({"content": "   ", "visibility": "PUBLIC"}, "content"),
    ({"content": "x" * 501, "visibility": "PUBLIC"}, "content"),
    ({"content": 5, "visibility": "PUBLIC"}, "content"),
    ({"content": "bad\u0007bell", "visibility": "PUBLIC"}, "content"),
    ({"content": "ok", "visibility": "public"}, "visibility"),
    ({"content": "ok", "visibility": "EVERYONE"}, "visibility"),
    ({"content": " ".join(f"#t{i}" for i in range(11))}, "content"),
    ({"content": "ok", "hub": "not a hub!"}, "hub"),
    ({"content": "ok", "mediaIds": "abc"}, "mediaIds"),
    ({"content": "ok", "mediaIds": ["nope"]}, "mediaIds"),
    ({"content": "ok", "mediaIds": ["a", "b", "c", "d", "e"]}, "mediaIds"),
])
def test_bad_jes_bodies_are_400s_naming_the_field(api: Api, body, field):
    a = api.signup()
    err = assert_error(api.post("/api/posts", token=a["token"], json=body), 400, "invalid_request")
    assert err["message"].startswith(field), err


def test_content_limit_is_counted_in_characters_not_bytes(api: Api):
    a = api.signup()
    made = jes(api, a["token"], "é" * 500)
    assert len(made["content"]) == 500
    assert_error(api.post("/api/posts", token=a["token"], json={"content": "é" * 501}), 400, "invalid_request")


def test_json_body_rules_apply(api: Api):
    a = api.signup()
    assert_error(api.post("/api/posts", token=a["token"], data="content=hi",
                          headers={"Content-Type": "text/plain"}), 415, "unsupported_media_type")
    assert_error(api.post("/api/posts", token=a["token"], data="[1]",
                          headers={"Content-Type": "application/json"}), 400, "invalid_request")
    assert_error(api.post("/api/posts", token=a["token"], data="{",
                          headers={"Content-Type": "application/json"}), 400, "invalid_request")


def test_visibility_defaults_to_public_and_hub_is_kept(api: Api):
    a = api.signup()
    made = api.post("/api/posts", token=a["token"], json={"content": "hub post", "hub": "Rust-Lang"}).json()
    assert made["visibility"] == "PUBLIC" and made["hub"] == "rust-lang"


def test_public_jes_is_readable_by_any_account_and_key(api: Api, trio):
    author, fan, stranger = trio
    made = jes(api, author["token"], "for everyone", "PUBLIC")
    for tok in (author["token"], fan["token"], stranger["token"]):
        assert api.get(f"/api/posts/{made['id']}", token=tok).status_code == 200
    # Any valid key reads it, even with no scope at all.
    key = api.create_key(stranger["token"], scopes=["read:comment"])
    assert api.get(f"/api/posts/{made['id']}", token=key["key"]).status_code == 200
    assert_error(api.get(f"/api/posts/{made['id']}"), 401, "unauthenticated")


def test_followers_jes_is_seen_by_author_and_followers_only(api: Api, trio):
    author, fan, stranger = trio
    made = jes(api, author["token"], "friends only", "FOLLOWERS")
    assert api.get(f"/api/posts/{made['id']}", token=author["token"]).status_code == 200
    assert api.get(f"/api/posts/{made['id']}", token=fan["token"]).status_code == 200
    assert_error(api.get(f"/api/posts/{made['id']}", token=stranger["token"]), 404, "not_found")
    # A key bound to the follower sees it; one bound to the stranger does not.
    fan_key = api.create_key(fan["token"], scopes=["read:comment"])
    stranger_key = api.create_key(stranger["token"], scopes=["read:comment"])
    assert api.get(f"/api/posts/{made['id']}", token=fan_key["key"]).status_code == 200
    assert_error(api.get(f"/api/posts/{made['id']}", token=stranger_key["key"]), 404, "not_found")


def test_unfollowing_takes_followers_jes_out_of_sight(api: Api):
    author, fan = api.signup(), api.signup()
    follow(api, fan["token"], author["user"]["username"])
    made = jes(api, author["token"], "soon hidden", "FOLLOWERS")
    assert api.get(f"/api/posts/{made['id']}", token=fan["token"]).status_code == 200
    r = api.delete(f"/api/users/{author['user']['username']}/follow", token=fan["token"])
    assert r.status_code == 200 and r.json()["following"] is False
    assert_error(api.get(f"/api/posts/{made['id']}", token=fan["token"]), 404, "not_found")


def test_private_jes_is_seen_by_its_author_only(api: Api, trio):
    author, fan, stranger = trio
    made = jes(api, author["token"], "diary", "PRIVATE")
    assert api.get(f"/api/posts/{made['id']}", token=author["token"]).status_code == 200
    own_key = api.create_key(author["token"], scopes=["write:jes"])
    assert api.get(f"/api/posts/{made['id']}", token=own_key["key"]).status_code == 200
    for tok in (fan["token"], stranger["token"]):
        assert_error(api.get(f"/api/posts/{made['id']}", token=tok), 404, "not_found")


def test_unknown_jes_is_a_404(api: Api):
    a = api.signup()
    assert_error(api.get("/api/posts/01JNOTAREALIDXXXXXXXXXXXXX", token=a["token"]), 404, "not_found")
    assert_error(api.get("/api/posts/%FF%FE", token=a["token"]), 404, "not_found")


def test_author_edits_own_jes_and_hashtags_follow(api: Api):
    a = api.signup()
    key = api.create_key(a["token"], label="editor", scopes=["write:jes"])
    made = jes(api, a["token"], "first #one")
    r = api.patch(f"/api/posts/{made['id']}", token=key["key"], json={"content": "second #two", "visibility": "FOLLOWERS"})
    assert r.status_code == 200, r.text
    edited = r.json()
    assert edited["content"] == "second #two" and edited["hashtags"] == ["two"]
    assert edited["visibility"] == "FOLLOWERS"
    assert edited["updatedAt"] >= made["updatedAt"] and edited["createdAt"] == made["createdAt"]
    got = api.get(f"/api/posts/{made['id']}", token=a["token"]).json()
    got.pop("counts"), got.pop("viewer")
    assert got == edited
    assert_error(api.patch(f"/api/posts/{made['id']}", token=a["token"], json={}), 400, "invalid_request")
    err = assert_error(api.patch(f"/api/posts/{made['id']}", token=a["token"], json={"visibility": "ALL"}), 400, "invalid_request")
    assert err["message"].startswith("visibility")


def test_editing_or_deleting_another_accounts_visible_jes_is_403(api: Api, trio):
    author, fan, stranger = trio
    made = jes(api, author["token"], "mine")
    key = api.create_key(stranger["token"], scopes=["write:jes"])
    for tok in (stranger["token"], key["key"]):
        assert_error(api.patch(f"/api/posts/{made['id']}", token=tok, json={"content": "yours now"}), 403, "forbidden")
        assert_error(api.delete(f"/api/posts/{made['id']}", token=tok), 403, "forbidden")
    assert api.get(f"/api/posts/{made['id']}", token=author["token"]).json()["content"] == "mine"


def test_editing_or_deleting_a_jes_the_caller_cannot_see_is_404(api: Api, trio):
    author, fan, stranger = trio
    made = jes(api, author["token"], "secret", "PRIVATE")
    assert_error(api.patch(f"/api/posts/{made['id']}", token=fan["token"], json={"content": "x"}), 404, "not_found")
    assert_error(api.delete(f"/api/posts/{made['id']}", token=fan["token"]), 404, "not_found")


def test_deleted_jes_is_gone_for_everyone_and_a_second_delete_is_404(api: Api):
    a, b = api.signup(), api.signup()
    made = jes(api, a["token"], "short lived")
    assert api.delete(f"/api/posts/{made['id']}", token=a["token"]).status_code == 204
    for tok in (a["token"], b["token"]):
        assert_error(api.get(f"/api/posts/{made['id']}", token=tok), 404, "not_found")
    assert_error(api.delete(f"/api/posts/{made['id']}", token=a["token"]), 404, "not_found")
    assert_error(api.patch(f"/api/posts/{made['id']}", token=a["token"], json={"content": "back"}), 404, "not_found")


def test_a_key_deletes_its_accounts_jes(api: Api):
    a = api.signup()
    key = api.create_key(a["token"], scopes=["write:jes"])
    made = jes(api, a["token"], "made by session")
    assert api.delete(f"/api/posts/{made['id']}", token=key["key"]).status_code == 204
    assert_error(api.get(f"/api/posts/{made['id']}", token=a["token"]), 404, "not_found")


def test_bounce_and_quote_bounce(api: Api, trio):
    author, fan, stranger = trio
    orig = jes(api, author["token"], "bounce me")
    key = api.create_key(fan["token"], label="bouncer", scopes=["write:jes"])
    r = api.post(f"/api/posts/{orig['id']}/bounce", token=key["key"])
    assert r.status_code == 201, r.text
    plain = r.json()
    assert plain["bounceOf"] == orig["id"] and plain["content"] == ""
    assert plain["author"]["id"] == fan["user"]["id"] and plain["via"] == {"label": "bouncer"}
    # A second plain bounce by the same account is refused; a quote-bounce is not.
    assert_error(api.post(f"/api/posts/{orig['id']}/bounce", token=fan["token"]), 409, "conflict")
    quote = api.post(f"/api/posts/{orig['id']}/bounce", token=fan["token"], json={"content": "so true #quote"})
    assert quote.status_code == 201, quote.text
    assert quote.json()["bounceOf"] == orig["id"] and quote.json()["hashtags"] == ["quote"]
    counts = api.get(f"/api/posts/{orig['id']}", token=author["token"]).json()["counts"]
    assert counts["bounces"] == 2
    # Deleting a bounce recounts, and allows bouncing again.
    assert api.delete(f"/api/posts/{plain['id']}", token=fan["token"]).status_code == 204
    assert api.get(f"/api/posts/{orig['id']}", token=author["token"]).json()["counts"]["bounces"] == 1
    assert api.post(f"/api/posts/{orig['id']}/bounce", token=fan["token"]).status_code == 201


def test_a_plain_bounce_cannot_be_given_text_later(api: Api):
    a, b = api.signup(), api.signup()
    orig = jes(api, a["token"], "original")
    plain = api.post(f"/api/posts/{orig['id']}/bounce", token=b["token"]).json()
    err = assert_error(api.patch(f"/api/posts/{plain['id']}", token=b["token"], json={"content": "sneaky"}), 400, "invalid_request")
    assert err["message"].startswith("content")


def test_bouncing_needs_sight_of_the_jes(api: Api, trio):
    author, fan, stranger = trio
    hidden = jes(api, author["token"], "followers only", "FOLLOWERS")
    assert_error(api.post(f"/api/posts/{hidden['id']}/bounce", token=stranger["token"]), 404, "not_found")
    assert api.post(f"/api/posts/{hidden['id']}/bounce", token=fan["token"]).status_code == 201


def test_following_needs_a_live_account_other_than_ones_own(api: Api):
    a = api.signup()
    assert_error(api.post("/api/users/nobody_here_at_all/follow", token=a["token"]), 404, "not_found")
    assert_error(api.post(f"/api/users/{a['user']['username']}/follow", token=a["token"]), 400, "invalid_request")
    key = api.create_key(a["token"], scopes=["write:jes", "write:comment", "read:comment", "read:engagement"])
    b = api.signup()
    assert_error(api.post(f"/api/users/{b['user']['username']}/follow", token=key["key"]), 403, "session_only")
