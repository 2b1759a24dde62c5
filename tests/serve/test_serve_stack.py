"""errloop serve against the real InfluxDB and Kapacitor of the ``tick_stack`` fixture.

Each test gets its own database (created and dropped here) and its own Kapacitor task, so
serve's catch-up never picks up another test's alerts. Points go straight to Kapacitor's
``/kapacitor/v1/write`` (no subscription to wait for) and to InfluxDB's ``/write``.
The task is a small stand-in for the generated policy task with the same alert shape: it
adds ``alerted_ns`` with ``unixNano(now())``, posts to serve and writes the alert node's
output to ``errloop_alerts``.
"""

from __future__ import annotations

import csv
import json
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest

from errloop.deploy.serve.app import ServeConfig, Server
from errloop.deploy.serve.model import format_rfc3339_ms
from errloop.deploy.serve.trace import fetch_trace, format_trace
from errloop.rules import contract

pytestmark = pytest.mark.stack

T = TypeVar("T")
MS = 1_000_000

TICK = """
dbrp "@DB@"."autogen"

stream
    |from()
        .measurement('errloop_classified')
    |eval(lambda: unixNano(now()))
        .as('alerted_ns')
        .keep()
    |alert()
        .id('errloop:stacktest:{{ index .Tags "service" }}:{{ index .Tags "category" }}')
        .message('{{ .ID }} is {{ .Level }}')
        .crit(lambda: "window_count" >= 1)
        .idField('alert_id')
        .levelField('alert_level')
        .messageField('alert_message')
        .post('@SERVE@/api/v1/alerts')
    |influxDBOut()
        .database('@DB@')
        .retentionPolicy('autogen')
        .measurement('errloop_alerts')
        .flushInterval(100ms)
"""


def wait_for(what: str, probe: Callable[[], T | None], timeout: float = 15.0) -> T:
    deadline = time.monotonic() + timeout
    while True:
        got = probe()
        if got:
            return got
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.05)


def lp_value(v: object) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return f"{v}i"
    if isinstance(v, float):
        return repr(v)
    return '"' + str(v).replace("\\", "\\\\").replace('"', '\\"') + '"'


def lp_key(s: str) -> str:
    return s.replace("\\", "\\\\").replace(",", "\\,").replace("=", "\\=").replace(" ", "\\ ")


def line(measurement: str, event: dict[str, Any], tag_keys: tuple[str, ...], time_ns: int) -> str:
    tags, fields = contract.split(event, tag_keys)
    tag_part = "".join(f",{lp_key(k)}={lp_key(v)}" for k, v in sorted(tags.items()))
    field_part = ",".join(f"{lp_key(k)}={lp_value(v)}" for k, v in sorted(fields.items()))
    return f"{lp_key(measurement)}{tag_part} {field_part} {time_ns}"


def classified_event(event_id: str, logged_ns: int) -> dict[str, Any]:
    return {
        "service": "checkout",
        "env": "test",
        "host": "web-1",
        "level": "error",
        "format": "zap",
        "operation": "POST /orders",
        "fingerprint": "9f86d081884c7d65",
        "error_class": "transient",
        "category": "network",
        "retryable": "true",
        "severity": "high",
        "rule_id": "net.conn_refused",
        "event_id": event_id,
        "message": "save order: dial tcp 10.0.3.7:5432: connect: connection refused",
        "error_type": "*net.OpError",
        "top_frame": "main.(*Repo).Save",
        "file_line": "orders/repo.go:88",
        "suggestion": 'Check the database, then retry with backoff: "refused", not a timeout',
        "ingested_ns": logged_ns + 2 * MS,
        "classified_ns": logged_ns + 4 * MS,
        "window_count": 1,
    }


class Rig:
    """One private database, one Kapacitor task posting to serve, one CSV."""

    def __init__(self, influx_url: str, kapacitor_url: str, tmp: Path) -> None:
        self.influx_url = influx_url
        self.kapacitor_url = kapacitor_url
        self.db = f"errloop_serve_{uuid.uuid4().hex[:10]}"
        self.task = f"{self.db}_task"
        self.csv_path = tmp / "closed.csv"
        self.http = httpx.Client(timeout=10)
        self.port = 0
        self.server: Server | None = None
        r = self.http.post(f"{influx_url}/query", params={"q": f'CREATE DATABASE "{self.db}"'})
        r.raise_for_status()

    def start_serve(self) -> Server:
        cfg = ServeConfig(
            port=self.port,
            influx_url=self.influx_url,
            db=self.db,
            csv_path=self.csv_path,
            catchup_interval=0.2,
        )
        self.server = Server(cfg)
        self.server.start()
        self.port = int(self.server.url.rsplit(":", 1)[1])
        wait_for("serve ready", lambda: self.http.get(f"{self.server.url}/healthz").status_code == 200)  # type: ignore[union-attr]
        return self.server

    def stop_serve(self) -> None:
        if self.server is not None:
            self.server.stop()
            self.server = None

    def define_task(self) -> None:
        assert self.port, "start serve first: the task posts to its port"
        script = TICK.replace("@DB@", self.db).replace("@SERVE@", f"http://127.0.0.1:{self.port}")
        body = {"id": self.task, "type": "stream", "script": script, "status": "enabled"}
        r = self.http.post(f"{self.kapacitor_url}/kapacitor/v1/tasks", json=body)
        assert r.status_code == 200, r.text
        task = self.http.get(f"{self.kapacitor_url}/kapacitor/v1/tasks/{self.task}").json()
        assert task["executing"], task.get("error")

    def emit(self, event_id: str) -> int:
        """One error event: errloop_events + errloop_classified in InfluxDB, the classified point to Kapacitor."""
        logged = time.time_ns()
        event = classified_event(event_id, logged)
        raw = {k: v for k, v in event.items() if k in contract.EVENT_TAGS or k in contract.EVENT_FIELDS}
        lines = [
            line(contract.EVENTS, raw, contract.EVENT_TAGS, logged),
            line(contract.CLASSIFIED, event, contract.CLASSIFIED_TAGS, logged),
        ]
        r = self.http.post(f"{self.influx_url}/write", params={"db": self.db}, content="\n".join(lines))
        assert r.status_code == 204, r.text
        r = self.http.post(
            f"{self.kapacitor_url}/kapacitor/v1/write",
            params={"db": self.db, "rp": "autogen"},
            content=lines[1],
        )
        assert r.status_code == 204, r.text
        return logged

    def query(self, q: str, **params: str) -> list[dict[str, Any]]:
        query = {"db": self.db, "q": q, "epoch": "ns"}
        if params:
            query["params"] = json.dumps(params)
        doc = self.http.get(f"{self.influx_url}/query", params=query).json()
        rows = []
        for s in doc["results"][0].get("series", []):
            rows += [dict(zip(s["columns"], v, strict=True)) for v in s["values"]]
        return rows

    def actions_of(self, event_id: str) -> list[dict[str, Any]]:
        return self.query(f'SELECT * FROM "{contract.ACTIONS}" WHERE "event_id" = $id', id=event_id)

    def csv_rows(self) -> list[dict[str, str]]:
        if not self.csv_path.exists():
            return []
        with self.csv_path.open(newline="") as f:
            return list(csv.DictReader(f))

    def csv_row(self, event_id: str) -> dict[str, str] | None:
        return next((r for r in self.csv_rows() if r["event_id"] == event_id), None)

    def close(self) -> None:
        self.stop_serve()
        self.http.delete(f"{self.kapacitor_url}/kapacitor/v1/tasks/{self.task}")
        self.http.post(f"{self.influx_url}/query", params={"q": f'DROP DATABASE "{self.db}"'})
        self.http.close()


@pytest.fixture
def rig(tick_stack: Any, tmp_path: Path) -> Iterator[Rig]:
    r = Rig(tick_stack.influx_url, tick_stack.kapacitor_url, tmp_path)
    try:
        yield r
    finally:
        r.close()


def test_post_path_records_the_action_the_row_and_the_trace(rig: Rig) -> None:
    server = rig.start_serve()
    rig.define_task()
    eid = f"post_{uuid.uuid4().hex[:12]}"
    logged = rig.emit(eid)

    row = wait_for("the closed-loop row", lambda: rig.csv_row(eid))
    assert (row["service"], row["category"], row["rule_id"], row["action"]) == (
        "checkout",
        "network",
        "net.conn_refused",
        "notify",
    )
    assert row["suggestion"] == 'Check the database, then retry with backoff: "refused", not a timeout'
    # times in the row come from Kapacitor's JSON: the row's RFC3339Nano time and integer ns fields
    assert row["logged_at"] == row["alert_time"] == format_rfc3339_ms(logged)
    assert row["ingested_at"] == format_rfc3339_ms(logged + 2 * MS)
    assert row["classified_at"] == format_rfc3339_ms(logged + 4 * MS)
    assert row["alerted_at"] >= row["classified_at"] and row["recorded_at"] >= row["alerted_at"]
    assert float(row["total_ms"]) > 0

    (action,) = wait_for("the action point", lambda: rig.actions_of(eid))
    assert action["policy"] == "stacktest" and action["state"] == "recorded"
    assert json.loads(action["config"])["via"] == "post"
    assert action["alert_ns"] > logged and action["csv_ns"] > action["time"]

    def full_trace() -> dict[str, Any] | None:
        trace: dict[str, Any] = rig.http.get(f"{server.url}/api/v1/events/{eid}/trace").json()
        if trace.get("missing") or contract.ALERTS not in {s["source"] for s in trace["stages"]}:
            return None  # influxDBOut has not flushed errloop_alerts yet
        return trace

    trace = wait_for("all six stages in the trace, alerted from errloop_alerts", full_trace)
    assert [s["stage"] for s in trace["stages"]] == list(contract.STAGES)
    sources = [s["source"] for s in trace["stages"]]
    assert sources == [
        contract.EVENTS,
        contract.EVENTS,
        contract.CLASSIFIED,
        contract.ALERTS,
        contract.ACTIONS,
        contract.ACTIONS,
    ]
    ns = [s["ns"] for s in trace["stages"]]
    assert ns == sorted(ns) and ns[0] == logged
    assert trace["details"]["rule_id"] == "net.conn_refused"
    direct = fetch_trace(rig.influx_url, eid, db=rig.db)
    assert direct["stages"] == trace["stages"]
    text = format_trace(direct)
    assert all(stage in text for stage in contract.STAGES)

    assert rig.http.get(f"{server.url}/api/v1/events/no_such_event/trace").status_code == 404
    assert rig.http.get(f"{server.url}/api/v1/events/x%27%20OR%201%3D1/trace").status_code == 400


def test_alert_missed_while_down_is_caught_up_and_never_recorded_twice(rig: Rig) -> None:
    rig.start_serve()
    rig.define_task()
    rig.stop_serve()  # Kapacitor's post now fails and is not retried

    missed = f"missed_{uuid.uuid4().hex[:12]}"
    rig.emit(missed)
    wait_for(
        "the alert in errloop_alerts",
        lambda: rig.query(f'SELECT * FROM "{contract.ALERTS}" WHERE "event_id" = $id', id=missed),
    )
    assert rig.csv_row(missed) is None

    rig.start_serve()  # same port, CSV and state file
    wait_for("the caught-up row", lambda: rig.csv_row(missed))
    (action,) = wait_for("the caught-up action", lambda: rig.actions_of(missed))
    assert json.loads(action["config"])["via"] == "catchup"

    live = f"live_{uuid.uuid4().hex[:12]}"
    rig.emit(live)  # both paths see this one: the post and, a moment later, errloop_alerts
    wait_for("the live row", lambda: rig.csv_row(live))
    wait_for(
        "the live alert in errloop_alerts",
        lambda: rig.query(f'SELECT * FROM "{contract.ALERTS}" WHERE "event_id" = $id', id=live),
    )
    time.sleep(1.0)  # several catch-up passes over the same window

    rig.stop_serve()
    rig.start_serve()  # a restart loads the ledger from errloop_actions and the CSV
    time.sleep(1.0)

    ids = [r["event_id"] for r in rig.csv_rows()]
    assert sorted(ids) == sorted([missed, live])
    assert len(rig.actions_of(missed)) == 1
    assert len(rig.actions_of(live)) == 1
    assert json.loads(rig.actions_of(live)[0]["config"])["via"] == "post"
