"""The session-only surface over HTTP: feeds, trending, discover,
search (FTS5), profiles, follows, likes, saves, account update and deletion.
Every route here is 403 session_only for any API key."""
import uuid

import pytest

from conftest import Api, assert_error, wait_clear_of_window_end

ALL_SCOPES = ["write:jes", "write:jesclip", "write:comment", "read:comment", "read:engagement", "webhooks:manage"]

SESSION_ONLY = [
    ("GET", "/api/feed/home"), ("GET", "/api/feed/jehub/rust"), ("GET", "/api/feed/jesclips"),
    ("GET", "/api/trending"), ("GET", "/api/discover"), ("GET", "/api/search?q=hello"),
    ("GET", "/api/users/{u}"), ("GET", "/api/users/{u}/posts"), ("GET", "/api/saves"),
    ("POST", "/api/users/{u}/follow"), ("DELETE", "/api/users/{u}/follow"),
    ("POST", "/api/posts/{p}/like"), ("DELETE", "/api/posts/{p}/like"),
    ("POST", "/api/posts/{p}/save"), ("DELETE", "/api/posts/{p}/save"),
    ("PATCH", "/api/account"), ("DELETE", "/api/account"),
]


def word() -> str:
    return "w" + uuid.uuid4().hex[:10]


def jes(api: Api, token: str, content: str, visibility: str = "PUBLIC", **extra) -> dict:
    r = api.post("/api/posts", token=token, json={"content": content, "visibility": visibility, **extra})
    assert r.status_code == 201, r.text
    return r.json()


def follow(api: Api, token: str, username: str) -> None:
    assert api.post(f"/api/users/{username}/follow", token=token).status_code == 200


def ids(resp) -> list[str]:
    assert resp.status_code == 200, resp.text
    return [i["id"] for i in resp.json()["items"]]


@pytest.mark.parametrize("method,path", SESSION_ONLY)
def test_every_session_only_route_refuses_api_keys_whatever_their_scopes(api: Api, method, path):
    a = api.signup()
    post = jes(api, a["token"], "target")
    key = api.create_key(a["token"], scopes=ALL_SCOPES)
    url = path.replace("{u}", a["user"]["username"]).replace("{p}", post["id"])
    r = api.call(method, url, token=key["key"], json={"displayName": "x"} if method == "PATCH" else None)
    assert_error(r, 403, "session_only")


def test_the_route_table_marks_the_surface_session_only(api: Api):
    table = {(r["method"], r["path"]): r["access"] for r in api.get("/api/routes").json()["items"]}
    for method, path in SESSION_ONLY:
        p = path.split("?")[0].replace("{u}", ":username").replace("{p}", ":id").replace("/jehub/rust", "/jehub/:hub")
        assert table[(method, p)] == "session_only", (method, p)


def test_home_feed_shows_own_and_followed_accounts_as_they_may_be_seen(api: Api):
    me, friend, stranger = api.signup(), api.signup(), api.signup()
    follow(api, me["token"], friend["user"]["username"])
    mine = jes(api, me["token"], "mine", "PRIVATE")
    f_public = jes(api, friend["token"], "friend public")
    f_followers = jes(api, friend["token"], "friend followers", "FOLLOWERS")
    jes(api, friend["token"], "friend private", "PRIVATE")
    jes(api, stranger["token"], "stranger public")
    feed = api.get("/api/feed/home", token=me["token"])
    assert ids(feed) == [f_followers["id"], f_public["id"], mine["id"]]
    assert feed.json()["items"][0]["counts"] == {"likes": 0, "comments": 0, "bounces": 0, "saves": 0}
    # Paginated newest first.
    first = api.get("/api/feed/home?limit=2", token=me["token"]).json()
    assert [i["id"] for i in first["items"]] == [f_followers["id"], f_public["id"]]
    second = api.get(f"/api/feed/home?limit=2&cursor={first['nextCursor']}", token=me["token"]).json()
    assert [i["id"] for i in second["items"]] == [mine["id"]] and second["nextCursor"] is None


def test_jehub_and_jesclip_feeds(api: Api):
    a, b = api.signup(), api.signup()
    hub = "hub" + uuid.uuid4().hex[:8]
    in_hub = jes(api, a["token"], "in the hub", hub=hub)
    jes(api, a["token"], "hidden in the hub", "PRIVATE", hub=hub)
    jes(api, a["token"], "elsewhere")
    assert ids(api.get(f"/api/feed/jehub/{hub.upper()}", token=b["token"])) == [in_hub["id"]]
    assert_error(api.get("/api/feed/jehub/not%20a%20hub", token=b["token"]), 400, "invalid_request")
    mp4 = b"\x00\x00\x00\x18ftypisom\x00\x00\x02\x00isomiso2" + b"\x00" * 500
    clip = api.post("/api/jesclips", token=a["token"], files={"video": ("c.mp4", mp4, "video/mp4")}, data={"caption": "clip"})
    assert clip.status_code == 201, clip.text
    clips = api.get("/api/feed/jesclips?limit=100", token=b["token"]).json()["items"]
    assert clips[0]["id"] == clip.json()["id"]
    assert all(i["type"] == "jesclip" for i in clips)


def test_trending_ranks_recent_engagement_and_pages_by_offset(api: Api):
    a = api.signup()
    fans = [api.signup() for _ in range(3)]
    hot, warm = jes(api, a["token"], "hot"), jes(api, a["token"], "warm")
    quiet = jes(api, a["token"], "quiet")
    secret = jes(api, a["token"], "secret", "PRIVATE")
    for f in fans:
        api.post(f"/api/posts/{hot['id']}/like", token=f["token"])
        api.post(f"/api/posts/{secret['id']}/like", token=a["token"])
    api.post(f"/api/posts/{hot['id']}/comments", token=fans[0]["token"], json={"content": "wow"})
    api.post(f"/api/posts/{warm['id']}/like", token=fans[0]["token"])
    items = ids(api.get("/api/trending?limit=100", token=fans[1]["token"]))
    assert items.index(hot["id"]) < items.index(warm["id"])
    assert quiet["id"] not in items and secret["id"] not in items
    page = api.get("/api/trending?limit=1", token=fans[1]["token"]).json()
    assert len(page["items"]) == 1 and page["nextCursor"]
    nxt = api.get(f"/api/trending?limit=1&cursor={page['nextCursor']}", token=fans[1]["token"]).json()
    assert nxt["items"][0]["id"] != page["items"][0]["id"]


def test_discover_shows_public_jes_of_accounts_not_followed(api: Api):
    me, friend, stranger = api.signup(), api.signup(), api.signup()
    follow(api, me["token"], friend["user"]["username"])
    jes(api, friend["token"], "friend")
    jes(api, me["token"], "me")
    s_public = jes(api, stranger["token"], "stranger")
    s_private = jes(api, stranger["token"], "stranger private", "PRIVATE")
    found = ids(api.get("/api/discover?limit=100", token=me["token"]))
    assert s_public["id"] in found and s_private["id"] not in found
    authors = {i["author"]["id"] for i in api.get("/api/discover?limit=100", token=me["token"]).json()["items"]}
    assert me["user"]["id"] not in authors and friend["user"]["id"] not in authors


def test_search_jes_by_words_and_hashtags_as_the_caller_may_see(api: Api):
    a, b = api.signup(), api.signup()
    w, tag = word(), word()
    public = jes(api, a["token"], f"Éclair {w} with #{tag}")
    private = jes(api, a["token"], f"{w} private", "PRIVATE")
    gone = jes(api, a["token"], f"{w} soon deleted")
    api.delete(f"/api/posts/{gone['id']}", token=a["token"])
    assert ids(api.get(f"/api/search?q={w}", token=b["token"])) == [public["id"]]
    assert set(ids(api.get(f"/api/search?q={w}&type=jes", token=a["token"]))) == {public["id"], private["id"]}
    assert ids(api.get(f"/api/search?q={w[:6]}", token=b["token"])) == [public["id"]], "prefix search"
    assert ids(api.get("/api/search?q=eclair " + w, token=b["token"])) == [public["id"]], "diacritics folded"
    assert ids(api.get(f"/api/search?q=%23{tag}", token=b["token"])) == [public["id"]]
    # Edits are searchable by their new words only.
    new = word()
    api.patch(f"/api/posts/{public['id']}", token=a["token"], json={"content": f"now {new}"})
    assert ids(api.get(f"/api/search?q={new}", token=b["token"])) == [public["id"]]
    assert ids(api.get(f"/api/search?q=eclair {w}", token=b["token"])) == []
    # FTS syntax in the query is just text.
    assert api.get('/api/search?q=" OR NEAR(a*', token=b["token"]).status_code == 200


def test_search_users_and_hashtags(api: Api):
    name = "srch" + uuid.uuid4().hex[:8]
    a = api.signup(username=name, displayName="Zelda " + name)
    b = api.signup()
    users = api.get(f"/api/search?q={name[:8]}&type=users", token=b["token"]).json()["items"]
    assert {"id": a["user"]["id"], "username": name, "displayName": "Zelda " + name} in users
    assert name in [u["username"] for u in api.get(f"/api/search?q=@{name}&type=users", token=b["token"]).json()["items"]]
    assert api.get("/api/search?q=%25&type=users", token=b["token"]).json()["items"] == [], "LIKE wildcards are literal"
    tag = word()
    jes(api, a["token"], f"#{tag}one")
    jes(api, a["token"], f"#{tag}one again")
    jes(api, a["token"], f"#{tag}two")
    jes(api, a["token"], f"#{tag}three", "PRIVATE")
    tags = api.get(f"/api/search?q=%23{tag}&type=hashtags", token=b["token"]).json()["items"]
    assert tags == [{"tag": f"{tag}one", "count": 2}, {"tag": f"{tag}two", "count": 1}]
    for q, t in [("", "jes"), ("x", "posts"), ("x" * 101, "jes"), ("!!!", "jes")]:
        assert_error(api.get(f"/api/search?q={q}&type={t}", token=b["token"]), 400, "invalid_request")


def test_profiles_follows_and_user_posts(api: Api):
    a, b, c = api.signup(displayName="Ann"), api.signup(), api.signup()
    follow(api, b["token"], a["user"]["username"])
    follow(api, a["token"], b["user"]["username"])
    follow(api, c["token"], a["user"]["username"])
    pub, fol = jes(api, a["token"], "p"), jes(api, a["token"], "f", "FOLLOWERS")
    jes(api, a["token"], "x", "PRIVATE")
    prof = api.get(f"/api/users/{a['user']['username'].upper()}", token=b["token"]).json()
    assert prof["id"] == a["user"]["id"] and prof["displayName"] == "Ann" and "email" not in prof
    assert (prof["followers"], prof["following"], prof["posts"]) == (2, 1, 2)
    assert prof["isFollowing"] is True and prof["followsYou"] is True
    assert api.get(f"/api/users/{a['user']['username']}", token=a["token"]).json()["posts"] == 3
    stranger = api.signup()
    seen = api.get(f"/api/users/{a['user']['username']}", token=stranger["token"]).json()
    assert seen["posts"] == 1 and seen["isFollowing"] is False
    assert ids(api.get(f"/api/users/{a['user']['username']}/posts", token=b["token"])) == [fol["id"], pub["id"]]
    assert ids(api.get(f"/api/users/{a['user']['username']}/posts", token=stranger["token"])) == [pub["id"]]
    assert_error(api.get("/api/users/nobody_at_all_here", token=b["token"]), 404, "not_found")


def test_saved_list_keeps_what_is_still_visible(api: Api):
    a, b = api.signup(), api.signup()
    one, two = jes(api, a["token"], "one"), jes(api, a["token"], "two")
    for p in (one, two):
        assert api.post(f"/api/posts/{p['id']}/save", token=b["token"]).json()["saved"] is True
    assert ids(api.get("/api/saves", token=b["token"])) == [two["id"], one["id"]]
    api.patch(f"/api/posts/{two['id']}", token=a["token"], json={"visibility": "PRIVATE"})
    assert ids(api.get("/api/saves", token=b["token"])) == [one["id"]]
    assert api.get("/api/saves", token=a["token"]).json()["items"] == []


def test_account_update_of_profile_fields(api: Api):
    a, b = api.signup(), api.signup()
    new_name = "renamed" + uuid.uuid4().hex[:8]
    r = api.patch("/api/account", token=a["token"], json={"displayName": "New Name", "username": new_name.upper()})
    assert r.status_code == 200, r.text
    assert r.json()["username"] == new_name and r.json()["displayName"] == "New Name"
    assert api.get("/api/auth/me", token=a["token"]).json() == r.json()
    assert_error(api.patch("/api/account", token=a["token"], json={"username": b["user"]["username"]}), 409, "conflict")
    assert_error(api.patch("/api/account", token=a["token"], json={}), 400, "invalid_request")
    err = assert_error(api.patch("/api/account", token=a["token"], json={"displayName": "bad\nname"}), 400, "invalid_request")
    assert err["message"].startswith("displayName")


def test_email_and_password_changes_need_the_current_password(api: Api):
    a = api.signup()
    other = api.post("/api/auth/login", json={"login": a["user"]["username"], "password": a["password"]}).json()["session"]["token"]
    key = api.create_key(a["token"], scopes=["write:jes"])
    email = f"new{uuid.uuid4().hex[:8]}@example.com"
    assert_error(api.patch("/api/account", token=a["token"], json={"email": email}), 400, "invalid_request")
    assert_error(api.patch("/api/account", token=a["token"], json={"email": email, "currentPassword": "wrong password!"}),
                 403, "forbidden")
    r = api.patch("/api/account", token=a["token"], json={"email": email.upper(), "currentPassword": a["password"]})
    assert r.status_code == 200 and r.json()["email"] == email
    r = api.patch("/api/account", token=a["token"], json={"password": "a brand new password", "currentPassword": a["password"]})
    assert r.status_code == 200, r.text
    assert api.get("/api/auth/me", token=a["token"]).status_code == 200, "the changing session stays"
    assert_error(api.get("/api/auth/me", token=other), 401, "invalid_session")
    assert api.get("/api/auth/me", token=key["key"]).status_code == 200, "API keys are not sessions"
    assert api.post("/api/auth/login", json={"login": email, "password": "a brand new password"}).status_code == 200
    assert_error(api.post("/api/auth/login", json={"login": email, "password": a["password"]}), 401, "invalid_credentials")


def test_current_password_guesses_are_throttled_per_session(make_server):
    """A stolen session must not become a password oracle (then an account takeover),
    nor lock the owner's own sessions out of changing the password."""
    from concurrent.futures import ThreadPoolExecutor
    s = make_server({"LOGIN_MAX_FAILURES": "3"})
    api = Api(s.url)
    a, b = api.signup(), api.signup()
    stolen = a["token"]
    email = f"new{uuid.uuid4().hex[:8]}@example.com"
    # Parallel guesses: each is counted before it is checked, so only three get an answer.
    guess = lambda i: api.patch("/api/account", token=stolen, json={"email": email, "currentPassword": f"guess {i:04}"})
    wait_clear_of_window_end(900, 15)  # the burst below in one aligned window
    with ThreadPoolExecutor(8) as pool:
        codes = sorted(r.status_code for r in pool.map(guess, range(8)))
    assert codes == [403] * 3 + [429] * 5, codes
    r = api.patch("/api/account", token=stolen, json={"email": email, "currentPassword": a["password"]})
    err = assert_error(r, 429, "rate_limited")
    assert int(r.headers["retry-after"]) >= 1 and err["retryAfter"] == int(r.headers["retry-after"])
    assert api.get("/api/auth/me", token=stolen).json()["email"] != email, "nothing changed"
    # The owner, in a session of their own, is not locked out: the new password ends the stolen one.
    mine = api.post("/api/auth/login", json={"login": a["user"]["username"], "password": a["password"]}).json()["session"]["token"]
    r = api.patch("/api/account", token=mine, json={"password": "the owner's new password", "currentPassword": a["password"]})
    assert r.status_code == 200, r.text
    assert_error(api.get("/api/auth/me", token=stolen), 401, "invalid_session")
    # Another account's check is unaffected, and a right answer clears the count.
    for i in range(2):
        assert_error(api.patch("/api/account", token=b["token"], json={"email": email, "currentPassword": "nope nope"}),
                     403, "forbidden")
    r = api.patch("/api/account", token=b["token"], json={"email": email, "currentPassword": b["password"]})
    assert r.status_code == 200, r.text
    for i in range(2):
        assert_error(api.patch("/api/account", token=b["token"], json={"password": "x" * 12, "currentPassword": "nope nope"}),
                     403, "forbidden")
    r = api.patch("/api/account", token=b["token"], json={"displayName": "B", "password": "another new password",
                                                          "currentPassword": b["password"]})
    assert r.status_code == 200, r.text


def test_deleting_the_account_revokes_everything_and_hides_its_content(api: Api):
    a, b = api.signup(), api.signup()
    follow(api, b["token"], a["user"]["username"])
    post = jes(api, a["token"], "going away")
    k1 = api.create_key(a["token"], scopes=["write:jes"])
    k2 = api.create_key(a["token"], scopes=["read:comment"])
    second = api.post("/api/auth/login", json={"login": a["user"]["username"], "password": a["password"]}).json()["session"]["token"]
    assert api.get(f"/api/posts/{post['id']}", token=k1["key"]).status_code == 200
    assert api.delete("/api/account", token=a["token"]).status_code == 204
    for k in (k1, k2):
        assert_error(api.get("/api/auth/me", token=k["key"]), 401, "api_key_revoked")
    for s in (a["token"], second):
        assert_error(api.get("/api/auth/me", token=s), 401, "invalid_session")
    assert_error(api.get(f"/api/posts/{post['id']}", token=b["token"]), 404, "not_found")
    assert_error(api.get(f"/api/users/{a['user']['username']}", token=b["token"]), 404, "not_found")
    assert_error(api.post("/api/auth/login", json={"login": a["user"]["username"], "password": a["password"]}),
                 401, "invalid_credentials")
    assert post["id"] not in ids(api.get("/api/feed/home", token=b["token"]))
