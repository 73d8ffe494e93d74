"""Uploads stay in bounded memory (issue 21): the local runtime's resident
memory (every `workerd` process of the server's process group) is measured
while a 10 MB and a near-limit 95 MB file go up each way (multipart clip,
raw `POST /api/media`, tus), and its growth must not follow the file's size.
The figures are printed (and recorded as test properties); the README
quotes them. Before streaming, a 95 MB clip grew it by several hundred MiB."""
import io
import os
import threading
import time

import requests
from tusclient import client as tus

from conftest import Api
from test_uploads_stream import mp4

MiB = 1 << 20


def workerd_pids(server) -> list[int]:
    pids = []
    for p in os.listdir("/proc"):
        if not p.isdigit():
            continue
        try:
            with open(f"/proc/{p}/stat") as f:
                stat = f.read()
            comm = stat[stat.index("(") + 1:stat.rindex(")")]
            pgrp = int(stat[stat.rindex(")") + 2:].split()[2])
        except (OSError, ValueError, IndexError):
            continue
        if pgrp == server.proc.pid and comm.startswith("workerd"):
            pids.append(int(p))
    return pids


def rss(pids: list[int]) -> int:
    total = 0
    for p in pids:
        try:
            with open(f"/proc/{p}/status") as f:
                total += next(int(l.split()[1]) for l in f if l.startswith("VmRSS:")) * 1024
        except (OSError, StopIteration):
            pass
    return total


def growth(server, upload) -> float:
    """The peak RSS above the level before `upload()` ran, in MiB (sampled every 10 ms)."""
    pids = workerd_pids(server)
    assert pids, "no workerd process found"
    base = rss(pids)
    peak = [base]
    done = threading.Event()

    def sample():
        while not done.is_set():
            peak[0] = max(peak[0], rss(pids))
            time.sleep(0.01)
    t = threading.Thread(target=sample)
    t.start()
    try:
        upload()
    finally:
        done.set()
        t.join()
    return (peak[0] - base) / MiB


def test_memory_does_not_grow_with_the_file(make_server, record_property):
    s = make_server()
    api = Api(s.url)
    a = api.signup()
    token = a["token"]
    auth = {"Authorization": f"Bearer {token}"}

    def clip(data):
        def go():
            r = requests.post(f"{s.url}/api/jesclips", headers=auth, files={"video": ("v.mp4", data, "video/mp4")},
                              data={"caption": "m"}, timeout=300)
            assert r.status_code == 201, r.text
        return go

    def raw(data):
        def go():
            r = requests.post(f"{s.url}/api/media", headers={**auth, "Content-Type": "video/mp4"}, data=data, timeout=300)
            assert r.status_code == 201, r.text
        return go

    def resumable(data):
        def go():
            u = tus.TusClient(f"{s.url}/api/uploads", headers=auth).uploader(
                file_stream=io.BytesIO(data), chunk_size=20 * MiB)
            u.upload()
            assert u.request.response_headers["jestha-media-id"]
        return go

    clip(mp4(5_000_000))()  # warm the isolates up
    figures = {}
    for name, way in (("multipart", clip), ("raw", raw), ("tus", resumable)):
        for size in (10_000_000, 95_000_000):
            data = mp4(size)
            figures[(name, size)] = growth(s, way(data))
            del data
    for (name, size), g in figures.items():
        record_property(f"{name}_{size // 1_000_000}MB_growth_MiB", round(g, 1))
    print("workerd RSS growth (MiB):", {f"{n} {z // 1_000_000} MB": round(g, 1) for (n, z), g in figures.items()})
    for name in ("multipart", "raw", "tus"):
        small, big = figures[(name, 10_000_000)], figures[(name, 95_000_000)]
        assert big < 64, f"{name}: a 95 MB upload grew the runtime by {big:.1f} MiB"
        assert big - small < 40, f"{name}: growth follows the file ({small:.1f} -> {big:.1f} MiB for 10 -> 95 MB)"
