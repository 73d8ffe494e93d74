"""Comments, replies, the paginated thread and engagement counts over HTTP,
including counts under concurrent likes and comments."""
from concurrent.futures import ThreadPoolExecutor

from conftest import Api, assert_error


def jes(api: Api, token: str, content: str = "talk to me", visibility: str = "PUBLIC") -> dict:
    r = api.post("/api/posts", token=token, json={"content": content, "visibility": visibility})
    assert r.status_code == 201, r.text
    return r.json()


def comment(api: Api, token: str, post_id: str, content: str, **extra) -> dict:
    r = api.post(f"/api/posts/{post_id}/comments", token=token, json={"content": content, **extra})
    assert r.status_code == 201, r.text
    return r.json()


def counts(api: Api, token: str, post_id: str) -> dict:
    r = api.get(f"/api/posts/{post_id}", token=token)
    assert r.status_code == 200, r.text
    return r.json()["counts"]


def test_a_key_comments_with_via_and_the_thread_shows_it_as_created(api: Api):
    author, other = api.signup(), api.signup()
    post = jes(api, author["token"])
    key = api.create_key(other["token"], label="cross-poster", preset="cross-poster")
    made = comment(api, key["key"], post["id"], "  nice one  ")
    assert made["content"] == "nice one" and made["postId"] == post["id"] and made["parentId"] is None
    assert made["author"]["id"] == other["user"]["id"] and made["via"] == {"label": "cross-poster"}
    reader = api.create_key(author["token"], preset="read-only")
    r = api.get(f"/api/posts/{post['id']}/comments", token=reader["key"])
    assert r.status_code == 200, r.text
    assert r.json() == {"items": [made], "nextCursor": None}


def test_replies_name_their_parent_on_the_same_jes(api: Api):
    a = api.signup()
    post, other_post = jes(api, a["token"]), jes(api, a["token"])
    top = comment(api, a["token"], post["id"], "top")
    reply = comment(api, a["token"], post["id"], "reply", parentId=top["id"])
    assert reply["parentId"] == top["id"] and "via" not in reply
    comment(api, a["token"], post["id"], "another top")
    only_replies = api.get(f"/api/posts/{post['id']}/comments?parentId={top['id']}", token=a["token"]).json()
    assert [c["id"] for c in only_replies["items"]] == [reply["id"]]
    # A parent on another Jes, or no such comment at all.
    for parent in (top["id"], "01JNOSUCHCOMMENTXXXXXXXXXX"):
        r = api.post(f"/api/posts/{other_post['id']}/comments", token=a["token"], json={"content": "x", "parentId": parent})
        assert assert_error(r, 400, "invalid_request")["message"].startswith("parentId")


def test_bad_comment_bodies_are_400s_naming_the_field(api: Api):
    a = api.signup()
    post = jes(api, a["token"])
    for body, field in [({}, "content"), ({"content": ""}, "content"), ({"content": "x" * 1001}, "content"),
                        ({"content": "ok", "parentId": 7}, "parentId")]:
        err = assert_error(api.post(f"/api/posts/{post['id']}/comments", token=a["token"], json=body), 400, "invalid_request")
        assert err["message"].startswith(field), err


def test_comment_routes_need_their_scopes(api: Api):
    a = api.signup()
    post = jes(api, a["token"])
    writer = api.create_key(a["token"], scopes=["write:jes"])
    err = assert_error(api.post(f"/api/posts/{post['id']}/comments", token=writer["key"], json={"content": "x"}),
                       403, "insufficient_scope")
    assert err["message"] == "Token missing scope(s): write:comment"
    err = assert_error(api.get(f"/api/posts/{post['id']}/comments", token=writer["key"]), 403, "insufficient_scope")
    assert err["message"] == "Token missing scope(s): read:comment"


def test_comments_need_sight_of_the_jes(api: Api):
    author, fan, stranger = api.signup(), api.signup(), api.signup()
    assert api.post(f"/api/users/{author['user']['username']}/follow", token=fan["token"]).status_code == 200
    post = jes(api, author["token"], "followers only", "FOLLOWERS")
    comment(api, fan["token"], post["id"], "I can see this")
    key = api.create_key(stranger["token"], scopes=["write:comment", "read:comment"])
    for tok in (stranger["token"], key["key"]):
        assert_error(api.post(f"/api/posts/{post['id']}/comments", token=tok, json={"content": "me too"}), 404, "not_found")
        assert_error(api.get(f"/api/posts/{post['id']}/comments", token=tok), 404, "not_found")
    private = jes(api, author["token"], "mine", "PRIVATE")
    assert_error(api.post(f"/api/posts/{private['id']}/comments", token=fan["token"], json={"content": "x"}), 404, "not_found")
    comment(api, author["token"], private["id"], "note to self")


def test_a_deleted_jes_takes_its_thread_with_it(api: Api):
    a, b = api.signup(), api.signup()
    post = jes(api, a["token"])
    comment(api, b["token"], post["id"], "first!")
    assert api.delete(f"/api/posts/{post['id']}", token=a["token"]).status_code == 204
    assert_error(api.get(f"/api/posts/{post['id']}/comments", token=b["token"]), 404, "not_found")
    assert_error(api.post(f"/api/posts/{post['id']}/comments", token=b["token"], json={"content": "hello?"}), 404, "not_found")


def test_the_thread_pages_oldest_first_with_a_cursor(api: Api):
    a = api.signup()
    post = jes(api, a["token"])
    made = [comment(api, a["token"], post["id"], f"c{i}")["id"] for i in range(5)]
    seen, cursor, pages = [], None, 0
    while True:
        q = "?limit=2" + (f"&cursor={cursor}" if cursor else "")
        page = api.get(f"/api/posts/{post['id']}/comments{q}", token=a["token"]).json()
        assert len(page["items"]) <= 2
        seen += [c["id"] for c in page["items"]]
        pages += 1
        cursor = page["nextCursor"]
        if not cursor:
            break
    assert seen == made and pages == 3
    assert_error(api.get(f"/api/posts/{post['id']}/comments?limit=0", token=a["token"]), 400, "invalid_request")
    assert_error(api.get(f"/api/posts/{post['id']}/comments?limit=101", token=a["token"]), 400, "invalid_request")
    assert_error(api.get(f"/api/posts/{post['id']}/comments?cursor=garbage!", token=a["token"]), 400, "invalid_request")


def test_comment_count_is_exact_under_concurrent_comments(api: Api):
    a = api.signup()
    post = jes(api, a["token"])
    people = [api.signup() for _ in range(4)]

    def send(i):
        tok = people[i % len(people)]["token"]
        return api.post(f"/api/posts/{post['id']}/comments", token=tok, json={"content": f"n{i}"}).status_code

    with ThreadPoolExecutor(max_workers=8) as pool:
        statuses = list(pool.map(send, range(16)))
    assert statuses == [201] * 16
    assert counts(api, a["token"], post["id"])["comments"] == 16
    thread = api.get(f"/api/posts/{post['id']}/comments?limit=100", token=a["token"]).json()
    assert len(thread["items"]) == 16


def test_like_count_is_exact_under_concurrent_likes_and_likes_are_idempotent(api: Api):
    a = api.signup()
    post = jes(api, a["token"])
    fans = [api.signup() for _ in range(8)]

    def like(f):
        return api.post(f"/api/posts/{post['id']}/like", token=f["token"])

    with ThreadPoolExecutor(max_workers=8) as pool:
        results = list(pool.map(like, fans + fans))  # everyone likes twice, concurrently
    assert all(r.status_code == 200 and r.json()["liked"] is True for r in results)
    assert counts(api, a["token"], post["id"])["likes"] == 8
    r = api.delete(f"/api/posts/{post['id']}/like", token=fans[0]["token"])
    assert r.json() == {"liked": False, "likes": 7}
    r = api.delete(f"/api/posts/{post['id']}/like", token=fans[0]["token"])
    assert r.json() == {"liked": False, "likes": 7}
    seen = api.get(f"/api/posts/{post['id']}", token=fans[1]["token"]).json()
    assert seen["viewer"] == {"liked": True, "saved": False}


def test_saves_are_counted_and_private_to_sessions(api: Api):
    a, b = api.signup(), api.signup()
    post = jes(api, a["token"])
    r = api.post(f"/api/posts/{post['id']}/save", token=b["token"])
    assert r.status_code == 200 and r.json() == {"saved": True, "saves": 1}
    assert counts(api, a["token"], post["id"]) == {"likes": 0, "comments": 0, "bounces": 0, "saves": 1}
    assert api.delete(f"/api/posts/{post['id']}/save", token=b["token"]).json() == {"saved": False, "saves": 0}
    key = api.create_key(b["token"], scopes=["write:jes", "write:comment", "read:comment", "read:engagement"])
    assert_error(api.post(f"/api/posts/{post['id']}/like", token=key["key"]), 403, "session_only")
    assert_error(api.post(f"/api/posts/{post['id']}/save", token=key["key"]), 403, "session_only")


def test_likes_need_sight_of_the_jes(api: Api):
    a, b = api.signup(), api.signup()
    private = jes(api, a["token"], "mine", "PRIVATE")
    assert_error(api.post(f"/api/posts/{private['id']}/like", token=b["token"]), 404, "not_found")
    assert api.post(f"/api/posts/{private['id']}/like", token=a["token"]).json() == {"liked": True, "likes": 1}


def test_counts_show_to_read_engagement_keys_only(api: Api):
    a = api.signup()
    post = jes(api, a["token"])
    comment(api, a["token"], post["id"], "one")
    plain = api.create_key(a["token"], scopes=["read:comment"])
    analytics = api.create_key(a["token"], preset="read-only")
    assert "counts" not in api.get(f"/api/posts/{post['id']}", token=plain["key"]).json()
    assert api.get(f"/api/posts/{post['id']}", token=analytics["key"]).json()["counts"]["comments"] == 1
