"""An integrator's flow through the Python client that openapi-python-client
generates from the served /openapi.json (tests/test_generated_clients.py
generates it as the package `jestha_client` and runs this with JESTHA_URL set).
Prints what it saw as JSON, for the test to check against the API."""
import json
import os
import uuid

from jestha_client import AuthenticatedClient, Client
from jestha_client.api.accounts import signup
from jestha_client.api.api_keys import create_api_key
from jestha_client.api.comments import create_jes_comment, list_jes_comments
from jestha_client.api.jes import create_jes, get_jes
from jestha_client.api.key_safety import get_calling_key
from jestha_client.api.webhooks import create_webhook, list_webhooks
from jestha_client.models import (
    CommentList,
    CreateCommentRequest,
    CreatedKey,
    CreatedWebhook,
    CreateJesRequest,
    CreateKeyRequest,
    CreateWebhookRequest,
    Error,
    Jes,
    Scope,
    SignupRequest,
    Visibility,
    WebhookEventType,
    WebhookList,
)

url = os.environ["JESTHA_URL"]
username = "py" + uuid.uuid4().hex[:12]

made = signup.sync(client=Client(base_url=url), body=SignupRequest(
    username=username, email=f"{username}@example.com", password="correct horse battery"))
assert not isinstance(made, Error) and made is not None, made
session = AuthenticatedClient(base_url=url, token=made.session.token)
key = create_api_key.sync(client=session, body=CreateKeyRequest(
    label="python client", scopes=[Scope.WRITEJES, Scope.WRITECOMMENT, Scope.READCOMMENT, Scope.WEBHOOKSMANAGE]))
assert isinstance(key, CreatedKey), key

client = AuthenticatedClient(base_url=url, token=key.key, raise_on_unexpected_status=True)
me = get_calling_key.sync(client=client)
idem = str(uuid.uuid4())
body = CreateJesRequest(content="Posted by a generated Python client #openapi", visibility=Visibility.PUBLIC)
first = create_jes.sync_detailed(client=client, body=body, idempotency_key=idem)
again = create_jes.sync_detailed(client=client, body=body, idempotency_key=idem)
assert isinstance(first.parsed, Jes) and isinstance(again.parsed, Jes), (first, again)
comment = create_jes_comment.sync(first.parsed.id, client=client, body=CreateCommentRequest(content="A comment, typed"))
thread = list_jes_comments.sync(first.parsed.id, client=client, limit=10)
assert isinstance(thread, CommentList), thread
hook = create_webhook.sync(me.id, client=client, body=CreateWebhookRequest(
    url="https://example.com/hooks/python", events=[WebhookEventType.POST_CREATED, WebhookEventType.COMMENT_CREATED]))
assert isinstance(hook, CreatedWebhook), hook
hooks = list_webhooks.sync(me.id, client=client)
assert isinstance(hooks, WebhookList), hooks
missing = get_jes.sync_detailed("01KBZ7T5A6B7C8D9E0F1G2H3JC", client=client)
assert isinstance(missing.parsed, Error), missing

print(json.dumps({
    "userId": made.user.id,
    "keyId": me.id,
    "jes": first.parsed.id,
    "replayedJes": again.parsed.id,
    "replayed": again.headers.get("idempotent-replayed"),
    "remaining": first.headers.get("x-ratelimit-remaining"),
    "via": first.parsed.via.label,
    "comment": comment.id,
    "thread": [c.id for c in thread.items],
    "webhook": hook.id,
    "secret": hook.secret[:6],
    "webhooks": [h.id for h in hooks.items],
    "missing": [missing.status_code.value, missing.parsed.error.code],
}))
