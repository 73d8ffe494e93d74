"""A real local webhook receiver for the HTTP tests."""
from __future__ import annotations

import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class Receiver:
    """A local HTTP receiver on 127.0.0.1 that records every request and
    answers from a per-path script of status codes (then 200)."""

    def __init__(self):
        self.requests: list[dict] = []
        self.scripts: dict[str, list[int]] = {}
        self.always: dict[str, int] = {}
        self.lock = threading.Lock()
        self.port = 0
        self.httpd: ThreadingHTTPServer | None = None
        self.start()

    def start(self):
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("content-length", 0)))
                with receiver.lock:
                    receiver.requests.append({
                        "path": self.path, "headers": {k.lower(): v for k, v in self.headers.items()},
                        "body": body.decode(), "at": time.time(),
                    })
                    script = receiver.scripts.get(self.path)
                    status = script.pop(0) if script else receiver.always.get(self.path, 200)
                self.send_response(status)
                self.send_header("content-length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *args):
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self.port = self.httpd.server_address[1]
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def stop(self):
        if self.httpd:
            self.httpd.shutdown()
            self.httpd.server_close()
            self.httpd = None

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def new_path(self, statuses: list[int] | None = None, always: int | None = None) -> str:
        path = "/hook/" + uuid.uuid4().hex[:10]
        if statuses:
            self.scripts[path] = list(statuses)
        if always is not None:
            self.always[path] = always
        return path

    def at(self, path: str) -> list[dict]:
        with self.lock:
            return [r for r in self.requests if r["path"] == path]


