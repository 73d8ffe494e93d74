"""The dev meter's readings (scripts/meter/, METER=true), shared by the tests
that count what a request costs and by `make bench`: a server on tmpfs, one
reading, the difference of two, and (`summary`) one request's cost in the
units of the README's budget table; `scripts/cost.py` prices the same
differences."""
from __future__ import annotations

import os
import shutil
import tempfile

import requests

from conftest import Server


def served(vars: dict[str, str], first: dict[str, str] | None = None, setup=None):
    """A server with `vars` whose state (D1, Durable Object storage) is on
    tmpfs when the machine has one. Metered tests make hundreds of Durable
    Objects, and the local runtime writes and syncs each one's SQLite files
    on its single thread: under other disk load that stalled every Worker of
    the server for a minute or more (measured: a 10 s password change and a
    60 s stall on disk, 2 s and none on tmpfs). Production storage is not
    local files; what the tests count is the same either way.

    With `setup`, the server first runs with the variables `first` and
    `setup(server)` acts on it; then it restarts on the same state with
    `vars` (a deployment whose configuration changes)."""
    shm = "/dev/shm"
    state = tempfile.mkdtemp(prefix="jestha-state-", dir=shm if os.path.isdir(shm) else None)
    try:
        if setup:
            s = Server(first, state_dir=state).start()
            try:
                setup(s)
            finally:
                s.stop()
        s = Server(vars, state_dir=state).start()
        try:
            yield s
        finally:
            s.stop()
    finally:
        shutil.rmtree(state, ignore_errors=True)


def meter(server) -> dict:
    """Every Worker's totals, once deferred work has settled: {api, account, engine}."""
    r = requests.get(server.url + "/__meter?settle=1", timeout=60)
    assert r.status_code == 200, r.text
    return r.json()


def cost(before: dict, after: dict) -> dict:
    """Per Worker: what happened between two readings (totals subtracted;
    `widest` and `widestObject` are already since the first reading)."""
    keep = ("widest", "widestObject", "pending")
    return {w: {k: v if k in keep else v - before[w][k] for k, v in after[w].items()} for w in after}


def summary(spent: dict) -> dict:
    """One request's cost across the Workers: `subrequests`, and of them `d1`
    and `durableObjects`, are those of the invocation chain it started (the
    API, the account Worker and the engine behind their service bindings,
    deferred work included), not those of the Durable Objects it called,
    which are invocations with a limit of their own (`widestObject`, the
    most any one of them made), nor those of queue batches that ran
    meanwhile (webhook deliveries of earlier requests)."""
    def total(k: str) -> int:
        return sum(w[k] for w in spent.values())
    return {
        "invocations": spent["api"]["invocations"],
        "subrequests": total("subrequests") - total("apartSubrequests"),
        "d1": total("d1") - total("apart_d1"),
        "durableObjects": total("durableObjects") - total("apart_durableObjects"),
        "widestObject": max(w["widestObject"] for w in spent.values()),
    }
