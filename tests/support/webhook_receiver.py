"""A real local HTTP receiver standing in for a Slack or Teams incoming webhook: it records
each JSON POST and answers with the status the test sets (200 by default).

with WebhookReceiver() as hook:        # listening on 127.0.0.1, a free port
    ...hook.url...
    hook.wait_for(1)                   # the posts so far, once there is at least one
"""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

WAIT_SECONDS = 10.0


class WebhookReceiver:
    PATH = "/services/T000/B000/hook-secret-path-5f1e"  # a Slack-like secret path

    def __init__(self) -> None:
        self.posts: list[dict] = []
        self.status = 200
        self.changed = threading.Condition()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                with receiver.changed:
                    receiver.posts.append(
                        {
                            "path": self.path,
                            "content_type": self.headers.get("Content-Type"),
                            "json": json.loads(body),
                        }
                    )
                    receiver.changed.notify_all()
                    status = receiver.status
                self.send_response(status)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}{self.PATH}"

    def __enter__(self) -> WebhookReceiver:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join()

    def bodies(self) -> list[dict]:
        with self.changed:
            return [post["json"] for post in self.posts]

    def wait_for(self, count: int, timeout: float = WAIT_SECONDS) -> list[dict]:
        """The posts' bodies once `count` have arrived (fails after `timeout`)."""
        deadline = time.monotonic() + timeout
        with self.changed:
            while len(self.posts) < count:
                left = deadline - time.monotonic()
                assert left > 0, f"{len(self.posts)} posts arrived, not {count}"
                self.changed.wait(left)
            return [post["json"] for post in self.posts]
