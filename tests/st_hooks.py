"""Schemathesis hooks for the fuzz run (loaded through SCHEMATHESIS_HOOKS)."""
import os

import schemathesis

HELD = set(os.environ.get("JESTHA_KEY_SCOPES", "").split())
IS_KEY = os.environ.get("JESTHA_CREDENTIAL", "key") == "key"


@schemathesis.check
def scopes_enforced(ctx, response, case):
    """No request gets through with a key that lacks the operation's scopes,
    or reaches a session-only operation at all."""
    if not IS_KEY or response.status_code >= 400:
        return None
    raw = case.operation.definition.raw
    access = raw.get("x-jestha-access")
    missing = [s for s in raw.get("x-required-scopes", []) if s not in HELD]
    any_of = raw.get("x-any-of-scopes", [])
    if any_of and not HELD.intersection(any_of):
        missing = any_of
    if access == "session_only" or missing:
        raise AssertionError(
            f"{case.operation.label} answered {response.status_code} to a key holding {sorted(HELD)} "
            f"(access {access}, missing {missing})"
        )
    return None


# A tus PATCH body is raw bytes under the protocol's own media type.
schemathesis.serializer.alias("application/offset+octet-stream", "application/octet-stream")
