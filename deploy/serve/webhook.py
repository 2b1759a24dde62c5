"""Optional webhook for the ``notify`` action: delivered in the background, retried, counted.

The action is recorded before delivery is tried, so a slow or dead webhook never delays the
answer to Kapacitor nor loses the record. The URL may hold a secret (a Slack-style token in
its path): only its scheme and host are ever logged.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
import urllib.parse
from collections.abc import Mapping
from typing import Any

import httpx

log = logging.getLogger("errloop.serve")


def safe_url(url: str) -> str:
    """``scheme://host[:port]`` of a URL: what may be logged."""
    parts = urllib.parse.urlsplit(url)
    host = parts.hostname or "?"
    return f"{parts.scheme}://{host}{f':{parts.port}' if parts.port else ''}"


class WebhookNotifier:
    """POSTs JSON payloads to one URL from a worker thread; a full queue drops and counts."""

    def __init__(self, url: str, timeout: float = 5.0, attempts: int = 3, max_queue: int = 1000) -> None:
        self.url = url
        self.attempts = attempts
        self.counters = {"webhook_sent": 0, "webhook_failed": 0, "webhook_dropped": 0}
        self._lock = threading.Lock()
        self._queue: queue.Queue[Mapping[str, Any] | None] = queue.Queue(maxsize=max_queue)
        self._http = httpx.Client(timeout=timeout)
        self._thread = threading.Thread(target=self._run, name="errloop-serve-webhook", daemon=True)
        self._thread.start()

    def submit(self, payload: Mapping[str, Any]) -> None:
        """Queue one payload (never blocks)."""
        try:
            self._queue.put_nowait(payload)
        except queue.Full:
            self._count("webhook_dropped")

    def _count(self, name: str) -> None:
        with self._lock:
            self.counters[name] += 1

    def _run(self) -> None:
        while True:
            payload = self._queue.get()
            if payload is None:
                return
            self._deliver(payload)

    def _deliver(self, payload: Mapping[str, Any]) -> None:
        delay = 0.5
        for attempt in range(1, self.attempts + 1):
            try:
                resp = self._http.post(self.url, json=dict(payload))
                if resp.status_code < 300:
                    self._count("webhook_sent")
                    return
                why = f"HTTP {resp.status_code}"
            except httpx.HTTPError as exc:
                why = type(exc).__name__
            if attempt < self.attempts:
                time.sleep(delay)
                delay *= 2
        self._count("webhook_failed")
        log.warning("webhook %s failed after %d attempts (%s)", safe_url(self.url), self.attempts, why)

    def stop(self, timeout: float = 5.0) -> None:
        """Deliver what is queued (up to ``timeout``), then stop the worker."""
        try:
            self._queue.put(None, timeout=timeout)
        except queue.Full:
            pass
        self._thread.join(timeout)
        self._http.close()
