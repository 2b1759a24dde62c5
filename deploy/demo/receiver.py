"""FakeWeCom: a local stand-in for WeCom's group-robot webhook (no real WeCom is reachable here).

It accepts what WeCom's ``/cgi-bin/webhook/send`` accepts — a JSON body with ``msgtype``
and, for markdown, ``markdown.content`` — answers like WeCom (``{"errcode":0,"errmsg":"ok"}``,
or errcode 40008 for a malformed message) and keeps every message it got, so the demo
and the tests can show and check what would have reached the group.
"""

from __future__ import annotations

import json
import sys
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass(frozen=True)
class Message:
    received_ns: int
    body: dict[str, Any]

    @property
    def content(self) -> str:
        md = self.body.get("markdown") or self.body.get("text") or {}
        return str(md.get("content", "")) if isinstance(md, dict) else ""


class FakeWeCom:
    """A WeCom robot webhook on loopback; ``url`` is what a policy's wecom notify points at."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        self.messages: list[Message] = []
        self.rejected = 0
        self._cond = threading.Condition()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = min(int(self.headers.get("Content-Length") or 0), 1 << 20)
                raw = self.rfile.read(length)
                try:
                    body = json.loads(raw)
                    ok = isinstance(body, dict) and body.get("msgtype") in ("markdown", "text")
                except ValueError:
                    body, ok = None, False
                with outer._cond:
                    if ok:
                        outer.messages.append(Message(time.time_ns(), body))
                    else:
                        outer.rejected += 1
                    outer._cond.notify_all()
                reply = {"errcode": 0, "errmsg": "ok"} if ok else {"errcode": 40008, "errmsg": "invalid message type"}
                data = json.dumps(reply).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        class Server(ThreadingHTTPServer):
            daemon_threads = True

            def handle_error(self, request: Any, client_address: Any) -> None:
                if not isinstance(sys.exc_info()[1], ConnectionError):  # Kapacitor drops keep-alive connections
                    super().handle_error(request, client_address)

        self._server = Server((host, port), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True, name="fake-wecom")

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}/cgi-bin/webhook/send"

    def start(self) -> FakeWeCom:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def wait_for(self, text: str, timeout: float = 10.0) -> Message | None:
        """The first message whose content contains ``text``, waiting up to ``timeout``."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                for m in self.messages:
                    if text in m.content:
                        return m
                left = deadline - time.monotonic()
                if left <= 0:
                    return None
                self._cond.wait(left)
