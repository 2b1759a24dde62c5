"""What errloop serve records for one event: the action point and the closed-loop CSV row.

Pure functions. One action point per event (measurement ``errloop_actions``); once the CSV
row is on disk, a second point with the same series and time adds the field ``csv_ns``
(InfluxDB merges the fields of points with the same series key and timestamp), so the
action row itself carries both stage times ("action" = its time, "recorded" = ``csv_ns``).
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Final

from errloop.deploy.serve.model import AlertEvent, format_rfc3339_ms
from errloop.rules import contract

ACTION_NOTIFY: Final = "notify"  # the only action the handler takes for now
STATE_RECORDED: Final = "recorded"  # a non-OK alert's event, with its closed-loop CSV row
STATE_RECOVERED: Final = "recovered"  # an OK-level event: recorded, no CSV row
CSV_NS: Final = "csv_ns"  # field added to the action point when the CSV row is written
VIA_POST: Final = "post"
VIA_CATCHUP: Final = "catchup"

CSV_COLUMNS: Final = (
    "event_id",
    "service",
    "error_type",
    "top_frame",
    "error_class",
    "category",
    "rule_id",
    "suggestion",
    "alert_time",
    "action",
    "logged_at",
    "ingested_at",
    "classified_at",
    "alerted_at",
    "recorded_at",
    "total_ms",
)


@dataclass(frozen=True)
class ActionRecord:
    """One point of measurement ``errloop_actions``."""

    event_id: str
    tags: dict[str, str]
    fields: dict[str, contract.Value]
    time_ns: int  # = recorded_ns

    def mark(self, csv_ns: int) -> ActionRecord:
        """The second point: same series and time, only the ``csv_ns`` field."""
        return ActionRecord(self.event_id, dict(self.tags), {CSV_NS: csv_ns}, self.time_ns)


def _digest(*parts: str) -> str:
    return hashlib.sha256("\x1f".join(parts).encode()).hexdigest()[:20]


def decision_id(ev: AlertEvent) -> str:
    """The alert that decided, as a stable id: every event of one alert shares it."""
    return "dec-" + _digest(ev.alert_id, str(ev.alert_ns))


def action_id(ev: AlertEvent, action: str) -> str:
    """Stable per (event, policy, action): a retried record keeps its id."""
    return "act-" + _digest(ev.event_id, ev.policy, action)


def alert_ns(ev: AlertEvent) -> int:
    """When Kapacitor raised the alert: the event's ``alerted_ns`` (wall clock), else the alert's time."""
    value: int | None = ev.ns("alerted_ns")
    fallback: int = ev.alert_ns
    return value if value is not None else fallback


def action_record(ev: AlertEvent, recorded_ns: int, via: str, action: str = ACTION_NOTIFY) -> ActionRecord:
    """The action point of one event."""
    tags = {
        "service": ev.text("service") or "unknown",
        "policy": ev.policy,
        "action": action,
        "state": STATE_RECOVERED if ev.recovery else STATE_RECORDED,
    }
    config = {"alert_id": ev.alert_id, "level": ev.level, "via": via}
    fields: dict[str, contract.Value] = {
        "action_id": action_id(ev, action),
        "decision_id": decision_id(ev),
        "event_ids": ",".join(ev.event_ids or (ev.event_id,)),
        "event_id": ev.event_id,
        "reason": ev.message,
        "config": json.dumps(config, sort_keys=True, separators=(",", ":")),
        "alert_ns": alert_ns(ev),
        "recorded_ns": recorded_ns,
    }
    assert set(tags) == set(contract.ACTION_TAGS) and set(fields) == set(contract.ACTION_FIELDS) - {CSV_NS}
    return ActionRecord(ev.event_id, tags, fields, recorded_ns)


def _at(ns: int | None) -> str:
    return "" if ns is None else format_rfc3339_ms(ns)


def csv_row(ev: AlertEvent, action: str, recorded_ns: int) -> dict[str, str]:
    """The closed-loop row of one event; ``recorded_ns`` is the CSV write time."""
    total_ms = (recorded_ns - ev.time_ns) / 1e6
    return {
        "event_id": ev.event_id,
        "service": ev.text("service"),
        "error_type": ev.text("error_type"),
        "top_frame": ev.text("top_frame"),
        "error_class": ev.text("error_class"),
        "category": ev.text("category"),
        "rule_id": ev.text("rule_id"),
        "suggestion": ev.text("suggestion"),
        "alert_time": _at(ev.alert_ns),
        "action": action,
        "logged_at": _at(ev.time_ns),
        "ingested_at": _at(ev.ns("ingested_ns")),
        "classified_at": _at(ev.ns("classified_ns")),
        "alerted_at": _at(ev.ns("alerted_ns")),
        "recorded_at": _at(recorded_ns),
        "total_ms": f"{total_ms:.3f}",
    }


def render_csv(rows: Iterable[Mapping[str, str]], header: bool) -> str:
    """CSV text of rows (RFC 4180 quoting where needed, ``\\n`` line ends), header first if asked."""
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=CSV_COLUMNS, lineterminator="\n", extrasaction="raise")
    if header:
        writer.writeheader()
    writer.writerows(rows)
    return buf.getvalue()


def header_line() -> str:
    """The CSV header line, without its line end."""
    return render_csv([], header=True).rstrip("\n")
