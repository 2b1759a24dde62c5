"""Test helpers for errloop serve: a realistic alert body and an in-memory stand-in for InfluxDB.

``InMemoryStoreFake`` is a fake (named so): it keeps action points the way InfluxDB 1.x
does — one point per (series, timestamp), fields of a second write merged into the first —
so the tests without the TICK stack can check what serve writes. The real InfluxDB is used
by tests/serve/test_serve_stack.py.
"""

from __future__ import annotations

import copy
import json
import threading
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from errloop.deploy.serve.actions import ActionRecord
from errloop.deploy.serve.influx import InfluxError, Row
from errloop.rules import contract

DATA = Path(__file__).parent / "data"
ALERT_FILE = DATA / "kapacitor_alert.json"
LOGGED_NS = 1795780800123456789  # the sample's event time (2026-11-27T12:00:00.123456789Z)


def alert_doc() -> dict[str, Any]:
    """The sample alert body as Kapacitor sends it (a fresh copy)."""
    doc: dict[str, Any] = json.loads(ALERT_FILE.read_text())
    return doc


def alert_body(**changes: Any) -> bytes:
    """The sample alert with top-level keys replaced."""
    doc = alert_doc()
    doc.update(changes)
    return json.dumps(doc).encode()


def alert_with_events(event_ids: list[str], level: str = "CRITICAL", alert_id: str | None = None) -> bytes:
    """The sample alert with one row per given event id (other values copied from the sample row)."""
    doc = alert_doc()
    series = doc["data"]["series"][0]
    cols = series["columns"]
    template = series["values"][0]
    rows = []
    for eid in event_ids:
        row = list(template)
        row[cols.index("event_id")] = eid
        rows.append(row)
    series["values"] = rows
    doc["level"] = level
    if alert_id is not None:
        doc["id"] = alert_id
    return json.dumps(doc).encode()


def alert_point(event_id: str, time_ns: int, level: str = "CRITICAL", alert_id: str | None = None) -> Row:
    """An errloop_alerts point (as InfluxQL returns it with epoch=ns) for one event."""
    doc = alert_doc()
    series = doc["data"]["series"][0]
    row: Row = dict(series["tags"])
    for col, v in zip(series["columns"], series["values"][0], strict=True):
        if col != "time":
            row[col] = v
    row["time"] = time_ns
    row["event_id"] = event_id
    row["alert_id"] = alert_id or doc["id"]
    row["alert_level"] = level
    row["alert_message"] = doc["message"]
    return row


class InMemoryStoreFake:
    """Stands in for InfluxDB in unit tests; ``fail_writes`` makes the next N writes fail."""

    def __init__(self) -> None:
        self.points: dict[tuple[tuple[tuple[str, str], ...], int], dict[str, Any]] = {}
        self.alerts: list[Row] = []
        self.events: list[Row] = []
        self.classified: list[Row] = []
        self.fail_writes = 0
        self.fail_reads = False
        self.writes = 0
        self.alert_row_reads = 0
        self.closed = False
        self._lock = threading.Lock()

    def write_actions(self, records: Sequence[ActionRecord]) -> None:
        with self._lock:
            if self.fail_writes:
                self.fail_writes -= 1
                raise InfluxError("InfluxDB write failed: fake outage")
            self.writes += 1
            for r in records:
                key = (tuple(sorted(r.tags.items())), r.time_ns)
                point = self.points.setdefault(key, {"time": r.time_ns, **r.tags})
                point.update(r.fields)

    def _check_read(self) -> None:
        if self.fail_reads:
            raise InfluxError("InfluxDB at http://127.0.0.1:8086 unreachable: ConnectError")

    def action_list(self) -> list[dict[str, Any]]:
        with self._lock:
            return sorted((copy.deepcopy(p) for p in self.points.values()), key=lambda p: p["time"])

    def action_rows(self, since_ns: int) -> list[Row]:
        self._check_read()
        return [dict(p) for p in self.action_list() if p["time"] > since_ns]

    def _alerts(self, since_ns: int, wanted: set[str] | None) -> list[Row]:
        self._check_read()
        return [
            dict(p)
            for p in self.alerts
            if isinstance(p["time"], int) and p["time"] > since_ns and (wanted is None or p.get("event_id") in wanted)
        ]

    def alert_rows(self, since_ns: int, event_ids: Sequence[str] | None = None) -> list[Row]:
        self.alert_row_reads += 1  # full points read (the expensive query)
        return self._alerts(since_ns, None if event_ids is None else set(event_ids))

    def alert_event_ids(self, since_ns: int) -> list[str]:
        return [str(p["event_id"]) for p in self._alerts(since_ns, None) if "event_id" in p]

    def event_rows(self, event_id: str) -> dict[str, list[Row]]:
        self._check_read()

        def pick(rows: Sequence[Mapping[str, object]]) -> list[Row]:
            return [dict(r) for r in rows if r.get("event_id") == event_id]

        return {
            contract.EVENTS: pick(self.events),
            contract.CLASSIFIED: pick(self.classified),
            contract.ALERTS: pick(self.alerts),
            contract.ACTIONS: pick(self.action_list()),
        }

    def close(self) -> None:
        self.closed = True
