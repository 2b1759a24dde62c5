"""The HTTP server in-process, over the in-memory InfluxDB fake: status codes, dedupe, catch-up."""

from __future__ import annotations

import csv
import http.client
import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from serve_fakes import InMemoryStoreFake, alert_body, alert_point, alert_with_events

from errloop.deploy.serve.app import ServeConfig, Server, build_parser, config_from_args, parse_duration
from errloop.rules import contract

HTTP = httpx.Client(timeout=10)  # one client: building one per request costs ~0.1 s (TLS context)


@pytest.fixture
def store() -> InMemoryStoreFake:
    return InMemoryStoreFake()


@pytest.fixture
def server(tmp_path: Path, store: InMemoryStoreFake) -> Iterator[Server]:
    config = ServeConfig(port=0, csv_path=tmp_path / "closed.csv", catchup_interval=3600.0)
    srv = Server(config, store=store)
    srv.start()
    try:
        yield srv
    finally:
        srv.stop()


def csv_ids(path: Path) -> list[str]:
    if not path.exists():
        return []
    with path.open(newline="") as f:
        return [r["event_id"] for r in csv.DictReader(f)]


def post(srv: Server, body: bytes, **headers: str) -> httpx.Response:
    return HTTP.post(f"{srv.url}/api/v1/alerts", content=body, headers=headers)


def test_post_records_and_answers_what_it_did(server: Server, store: InMemoryStoreFake) -> None:
    resp = post(server, alert_body(), **{"Content-Type": "application/json"})
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert body["recorded"] == ["01JDX3Q8Z4K7M2"] and body["duplicates"] == []
    assert csv_ids(server.config.csv_path) == ["01JDX3Q8Z4K7M2"]
    (point,) = store.action_list()
    assert point["policy"] == "checkout-slo" and json.loads(str(point["config"]))["via"] == "post"
    again = post(server, alert_body()).json()
    assert again["recorded"] == [] and again["duplicates"] == ["01JDX3Q8Z4K7M2"]
    assert csv_ids(server.config.csv_path) == ["01JDX3Q8Z4K7M2"]


@pytest.mark.parametrize(
    "body",
    [b"{", b"[]", b'{"id": "x"}', alert_body(level="LOUD"), alert_body(data={"series": "no"})],
)
def test_bad_alerts_get_400_json_and_are_counted(server: Server, body: bytes) -> None:
    resp = post(server, body)
    assert resp.status_code == 400
    assert resp.json()["error"]
    assert server.counters.snapshot()["bad_requests"] == 1
    assert HTTP.get(f"{server.url}/healthz").status_code == 200  # still serving


def test_huge_body_is_refused_unread(server: Server) -> None:
    resp = post(server, b"x" * (server.config.max_body + 1))
    assert resp.status_code == 400 and "too large" in resp.json()["error"]


def test_missing_content_length_is_refused(server: Server) -> None:
    host, port = server.url.removeprefix("http://").split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=10)
    conn.putrequest("POST", "/api/v1/alerts")
    conn.endheaders()
    resp = conn.getresponse()
    assert resp.status == 400 and "Content-Length" in json.loads(resp.read())["error"]
    conn.close()


def test_rows_without_event_id_are_reported(server: Server) -> None:
    resp = post(server, alert_with_events(["ok_1", "bad id"]))
    assert resp.status_code == 200
    assert resp.json()["recorded"] == ["ok_1"] and len(resp.json()["rejected"]) == 1


def test_recovery_is_recorded_without_a_row(server: Server, store: InMemoryStoreFake) -> None:
    resp = post(server, alert_with_events(["r1"], level="OK"))
    assert resp.json()["recovered"] == ["r1"]
    assert csv_ids(server.config.csv_path) == []
    assert store.action_list()[0]["state"] == "recovered"


def test_influx_down_on_post_gives_503_then_catch_up_records_it(server: Server, store: InMemoryStoreFake) -> None:
    store.fail_writes = 1
    resp = post(server, alert_with_events(["e1"]))
    assert resp.status_code == 503 and "not recorded" in resp.json()["error"]
    store.alerts = [alert_point("e1", time.time_ns())]
    res = server.catch_up_now()
    assert res.recorded == ["e1"]
    assert csv_ids(server.config.csv_path) == ["e1"]


def test_post_and_catch_up_racing_record_each_event_once(server: Server, store: InMemoryStoreFake) -> None:
    ids = [f"ev{i}" for i in range(60)]
    now = time.time_ns()
    store.alerts = [alert_point(eid, now + i) for i, eid in enumerate(ids)]
    errors: list[Any] = []

    def poster() -> None:
        for i in range(0, 60, 6):
            r = post(server, alert_with_events(ids[i : i + 6]))
            if r.status_code != 200:
                errors.append(r.text)

    threads = [threading.Thread(target=poster) for _ in range(3)]
    threads.append(threading.Thread(target=server.catch_up_now))
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert sorted(csv_ids(server.config.csv_path)) == sorted(ids)
    assert len(store.action_list()) == 60


def test_not_ready_until_the_ledger_loads(tmp_path: Path) -> None:
    store = InMemoryStoreFake()
    store.fail_reads = True
    srv = Server(ServeConfig(port=0, csv_path=tmp_path / "c.csv", catchup_interval=0.05), store=store)
    srv.start()
    try:
        health = HTTP.get(f"{srv.url}/healthz")
        assert health.status_code == 503 and health.json()["ready"] is False
        assert "unreachable" in health.json()["last_error"]
        resp = post(srv, alert_body())
        assert resp.status_code == 503 and "not ready" in resp.json()["error"]
        assert csv_ids(srv.config.csv_path) == []
        store.fail_reads = False
        store.alerts = [alert_point("01JDX3Q8Z4K7M2", time.time_ns())]  # the alert the POST could not deliver
        for _ in range(200):
            if csv_ids(srv.config.csv_path):
                break
            threading.Event().wait(0.02)
        assert csv_ids(srv.config.csv_path) == ["01JDX3Q8Z4K7M2"]
        assert HTTP.get(f"{srv.url}/healthz").json()["status"] == "ok"
    finally:
        srv.stop()


def test_trace_endpoint(server: Server, store: InMemoryStoreFake) -> None:
    post(server, alert_body())
    store.alerts = [alert_point("01JDX3Q8Z4K7M2", time.time_ns())]
    resp = HTTP.get(f"{server.url}/api/v1/events/01JDX3Q8Z4K7M2/trace")
    assert resp.status_code == 200
    trace = resp.json()
    assert trace["event_id"] == "01JDX3Q8Z4K7M2"
    stages = [s["stage"] for s in trace["stages"]]
    assert stages == [s for s in contract.STAGES if s in stages]
    assert {"action", "recorded", "alerted"} <= set(stages)
    assert trace["details"]["actions"][0]["action"] == "notify"


@pytest.mark.parametrize(
    ("path", "status"),
    [
        ("/api/v1/events/unknown_1/trace", 404),
        ("/api/v1/events/bad%20id/trace", 400),
        ("/api/v1/events/x%27%3B%20DROP/trace", 400),
        (f"/api/v1/events/{'x' * 65}/trace", 400),
        ("/api/v1/events//trace", 400),
        ("/nowhere", 404),
        ("/api/v1/alerts", 405),
    ],
)
def test_get_errors_are_json(server: Server, path: str, status: int) -> None:
    resp = HTTP.get(f"{server.url}{path}")
    assert resp.status_code == status
    assert "error" in resp.json()


def test_healthz_reports_counters(server: Server) -> None:
    post(server, alert_body())
    post(server, b"nope")
    body = HTTP.get(f"{server.url}/healthz").json()
    assert body["status"] == "ok" and body["ready"] is True
    assert body["counters"]["recorded_post"] == 1 and body["counters"]["bad_requests"] == 1
    assert body["ledger"]["done"] == 1


def test_foreign_csv_stops_start(tmp_path: Path) -> None:
    path = tmp_path / "c.csv"
    path.write_text("a,b\n")
    with pytest.raises(RuntimeError, match="header"):
        Server(ServeConfig(port=0, csv_path=path), store=InMemoryStoreFake()).start()


def test_options_and_defaults(tmp_path: Path) -> None:
    args = build_parser().parse_args(["--port", "0", "--csv", str(tmp_path / "x.csv"), "--catchup-interval", "500ms"])
    config = config_from_args(args)
    assert config.catchup_interval == 0.5 and config.port == 0
    assert config.state_path == tmp_path / "x.csv.state.json"
    defaults = config_from_args(build_parser().parse_args([]))
    assert (defaults.host, defaults.port, defaults.catchup_interval) == ("127.0.0.1", 9100, 2.0)
    assert defaults.csv_path == Path("/tmp/errloop-closed.csv") and defaults.db == contract.DATABASE


@pytest.mark.parametrize(("text", "seconds"), [("2s", 2.0), ("500ms", 0.5), ("1m", 60.0), ("1h", 3600.0), ("3", 3.0)])
def test_parse_duration(text: str, seconds: float) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "0s", "-1s", "2 s", "1d", "fast"])
def test_parse_duration_rejects(text: str) -> None:
    with pytest.raises(ValueError):
        parse_duration(text)
