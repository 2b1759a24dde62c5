"""The notify webhook (background, retried, never logs its secret) and the ``errloop serve`` entry."""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
from serve_fakes import InMemoryStoreFake, alert_body

from errloop.deploy.serve.app import ServeConfig, Server, main, serve
from errloop.deploy.serve.webhook import WebhookNotifier, safe_url
from errloop.deploy.stack.run import free_port


class Receiver:
    """A local HTTP endpoint that records JSON bodies; the first ``fail`` requests get 500."""

    def __init__(self, fail: int = 0) -> None:
        self.bodies: list[dict[str, Any]] = []
        self.fail = fail
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                if outer.fail > 0:
                    outer.fail -= 1
                    self.send_response(500)
                else:
                    outer.bodies.append(json.loads(body))
                    self.send_response(204)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.http = HTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.http.serve_forever, args=(0.05,), daemon=True)
        self.thread.start()
        self.url = f"http://127.0.0.1:{self.http.server_address[1]}/hooks/T0/B1/s3cr3t-token"

    def close(self) -> None:
        self.http.shutdown()
        self.http.server_close()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    yield r
    r.close()


def wait(cond: Any, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


def test_safe_url_drops_path_query_and_credentials() -> None:
    assert (
        safe_url("https://user:pw@hooks.example.com:8443/services/T/B/XYZ?token=1") == "https://hooks.example.com:8443"
    )
    assert safe_url("http://127.0.0.1/x") == "http://127.0.0.1"


def test_recorded_events_are_posted_to_the_webhook(tmp_path: Path, receiver: Receiver) -> None:
    srv = Server(ServeConfig(port=0, csv_path=tmp_path / "c.csv", webhook=receiver.url), store=InMemoryStoreFake())
    srv.start()
    try:
        assert httpx.post(f"{srv.url}/api/v1/alerts", content=alert_body()).status_code == 200
        wait(lambda: receiver.bodies)
        (body,) = receiver.bodies
        assert body["action"] == "notify" and body["event_id"] == "01JDX3Q8Z4K7M2"
        assert body["policy"] == "checkout-slo" and body["category"] == "network"
        assert body["trace"] == f"{srv.url}/api/v1/events/01JDX3Q8Z4K7M2/trace"
        wait(lambda: srv.health()[1]["counters"].get("webhook_sent") == 1)
    finally:
        srv.stop()


def test_webhook_retries_then_counts_a_failure_without_logging_the_secret(
    receiver: Receiver, caplog: pytest.LogCaptureFixture
) -> None:
    receiver.fail = 1
    hook = WebhookNotifier(receiver.url, attempts=2)
    hook.submit({"n": 1})
    wait(lambda: hook.counters["webhook_sent"] == 1)  # the retry got through
    receiver.fail = 5
    with caplog.at_level(logging.WARNING, logger="errloop.serve"):
        hook.submit({"n": 2})
        wait(lambda: hook.counters["webhook_failed"] == 1)
    hook.stop()
    assert [b["n"] for b in receiver.bodies] == [1]
    assert "failed after 2 attempts" in caplog.text
    assert "s3cr3t" not in caplog.text and "hooks" not in caplog.text


def test_serve_runs_until_stopped_even_without_influxdb(tmp_path: Path) -> None:
    port = free_port()
    config = ServeConfig(port=port, influx_url=f"http://127.0.0.1:{free_port()}", csv_path=tmp_path / "c.csv")
    stop = threading.Event()
    result: list[int] = []
    thread = threading.Thread(target=lambda: result.append(serve(config, stop)))
    thread.start()
    try:
        health: httpx.Response | None = None
        deadline = time.monotonic() + 10
        while health is None and time.monotonic() < deadline:
            try:
                health = httpx.get(f"http://127.0.0.1:{port}/healthz")
            except httpx.ConnectError:
                time.sleep(0.05)
        assert health is not None and health.status_code == 503  # InfluxDB unreachable: not ready
        assert "last_error" in health.json()
    finally:
        stop.set()
        thread.join(15)
    assert result == [0]


def test_serve_refuses_a_foreign_csv(tmp_path: Path) -> None:
    path = tmp_path / "c.csv"
    path.write_text("x,y\n")
    assert serve(ServeConfig(port=0, csv_path=path)) == 1


def test_main_rejects_bad_options(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["--catchup-interval", "soon"])
    assert exc.value.code == 2
    assert "not a duration" in capsys.readouterr().err
