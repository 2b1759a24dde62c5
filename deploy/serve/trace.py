"""The life of one event, read back from InfluxDB: ``errloop trace EVENT_ID`` and the HTTP form.

:func:`build_trace` is pure (points in, trace out); :func:`fetch_trace` reads the points;
:func:`format_trace` renders the human table.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from errloop.deploy.serve.actions import CSV_NS
from errloop.deploy.serve.influx import InfluxReader, Row
from errloop.deploy.serve.model import as_ns, format_rfc3339_nano, valid_event_id
from errloop.rules import contract

DETAIL_KEYS = (
    "service",
    "error_type",
    "top_frame",
    "file_line",
    "message",
    "error_class",
    "category",
    "rule_id",
    "severity",
    "fingerprint",
    "suggestion",
)
ACTION_KEYS = ("policy", "action", "state", "action_id", "decision_id", "reason", "event_ids", "config")

# stage -> where to look, in order: (measurement, field; "time" = the point's time)
STAGE_SOURCES: dict[str, tuple[tuple[str, str], ...]] = {
    "logged": ((contract.EVENTS, "time"), (contract.CLASSIFIED, "time"), (contract.ALERTS, "time")),
    "ingested": (
        (contract.EVENTS, "ingested_ns"),
        (contract.CLASSIFIED, "ingested_ns"),
        (contract.ALERTS, "ingested_ns"),
    ),
    "classified": ((contract.CLASSIFIED, "classified_ns"), (contract.ALERTS, "classified_ns")),
    "alerted": ((contract.ALERTS, "alerted_ns"), (contract.CLASSIFIED, "alerted_ns"), (contract.ACTIONS, "alert_ns")),
    "action": ((contract.ACTIONS, "time"),),
    "recorded": ((contract.ACTIONS, CSV_NS),),
}
assert tuple(STAGE_SOURCES) == contract.STAGES


class InvalidEventId(ValueError):
    """The id is not 1 to 64 of ``[A-Za-z0-9_-]``."""


class EventNotFound(LookupError):
    """No point of any measurement carries this event id."""


def _stage(rows: Mapping[str, Sequence[Row]], stage: str) -> dict[str, Any] | None:
    for measurement, fld in STAGE_SOURCES[stage]:
        for row in rows.get(measurement, ()):
            ns = as_ns(row.get(fld))
            if ns is not None:
                return {"stage": stage, "time": format_rfc3339_nano(ns), "ns": ns, "source": measurement, "field": fld}
    return None


def build_trace(event_id: str, rows: Mapping[str, Sequence[Row]]) -> dict[str, Any]:
    """The trace of one event from its points per measurement (each list oldest first, ``time`` in ns).

    Stages found are listed in the order of ``contract.STAGES``; the others are named in
    ``missing``. Raises EventNotFound when there is no point at all.
    """
    if not any(rows.get(m) for m in (contract.EVENTS, contract.CLASSIFIED, contract.ALERTS, contract.ACTIONS)):
        raise EventNotFound(f"no event {event_id}")
    stages: list[dict[str, Any]] = []
    missing: list[str] = []
    for stage in contract.STAGES:
        found = _stage(rows, stage)
        if found is None:
            missing.append(stage)
        else:
            stages.append(found)
    by_name = {s["stage"]: s["ns"] for s in stages}
    total_ms = (by_name["recorded"] - by_name["logged"]) / 1e6 if {"logged", "recorded"} <= by_name.keys() else None

    details: dict[str, Any] = {}
    for m in (contract.CLASSIFIED, contract.ALERTS, contract.EVENTS):
        for row in rows.get(m, ()):
            for k in DETAIL_KEYS:
                if k not in details and row.get(k) not in (None, ""):
                    details[k] = row[k]
    alert = next(iter(rows.get(contract.ALERTS, ())), None)
    if alert is not None:
        for k in contract.ALERT_FIELDS:
            if alert.get(k) is not None:
                details[k] = alert[k]
    actions = []
    for row in rows.get(contract.ACTIONS, ()):
        t = as_ns(row.get("time"))
        item: dict[str, Any] = {"time": format_rfc3339_nano(t) if t is not None else None, "ns": t}
        for k in ACTION_KEYS:
            if row.get(k) is not None:
                item[k] = row[k]
        csv_ns = as_ns(row.get(CSV_NS))
        if csv_ns is not None:
            item["recorded"] = format_rfc3339_nano(csv_ns)
        actions.append(item)
    details["actions"] = actions
    return {"event_id": event_id, "stages": stages, "missing": missing, "total_ms": total_ms, "details": details}


def fetch_trace(influx_url: str, event_id: str, db: str = contract.DATABASE) -> dict[str, Any]:
    """The trace of one event computed directly from InfluxDB (what ``GET …/trace`` answers).

    Raises InvalidEventId, EventNotFound, or influx.InfluxError when InfluxDB cannot answer.
    """
    if not valid_event_id(event_id):
        raise InvalidEventId("event id must be 1 to 64 of A-Z a-z 0-9 _ -")
    reader = InfluxReader(influx_url, db)
    try:
        return build_trace(event_id, reader.event_rows(event_id))
    finally:
        reader.close()


# ---------------------------------------------------------------------------------------------
# the human table


def _clean(value: object, limit: int = 200) -> str:
    """One line of printable text: control characters (terminal escapes from logs) shown escaped."""
    text = str(value)
    out = "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)
    return out if len(out) <= limit else out[: limit - 1] + "…"


def format_trace(trace: Mapping[str, Any]) -> str:
    """A human-readable table of a trace (as built by :func:`build_trace` / the HTTP endpoint)."""
    d: Mapping[str, Any] = trace.get("details") or {}
    lines = [f"event {_clean(trace.get('event_id', '?'))}"]
    head = [
        ("service", d.get("service")),
        ("error", d.get("error_type")),
        ("class", d.get("error_class")),
        ("category", d.get("category")),
        ("rule", d.get("rule_id")),
    ]
    summary = "  ".join(f"{k}={_clean(v, 60)}" for k, v in head if v not in (None, ""))
    if summary:
        lines.append("  " + summary)
    if d.get("top_frame"):
        where = f"  ({_clean(d['file_line'], 80)})" if d.get("file_line") else ""
        lines.append(f"  top frame   {_clean(d['top_frame'], 120)}{where}")
    if d.get("message"):
        lines.append(f"  message     {_clean(d['message'])}")
    if d.get("suggestion"):
        lines.append(f"  suggestion  {_clean(d['suggestion'])}")
    lines.append("")
    lines.append(f"  {'stage':<11} {'time (UTC)':<31} {'+ms':>10} {'since logged':>13}  source")
    found: dict[str, Mapping[str, Any]] = {str(s.get("stage")): s for s in trace.get("stages") or []}
    logged = found.get("logged", {}).get("ns")
    prev: int | None = None
    for stage in contract.STAGES:
        s = found.get(stage)
        if s is None:
            lines.append(f"  {stage:<11} {'—':<31}")
            continue
        ns = s.get("ns")
        step = f"{(ns - prev) / 1e6:.3f}" if isinstance(ns, int) and prev is not None else ""
        since = f"{(ns - logged) / 1e6:.3f}" if isinstance(ns, int) and isinstance(logged, int) else ""
        src = _clean(s.get("source", ""))
        if s.get("field") not in (None, "time"):
            src += f".{_clean(s['field'])}"
        lines.append(f"  {stage:<11} {_clean(s.get('time')):<31} {step:>10} {since:>13}  {src}")
        prev = ns if isinstance(ns, int) else prev
    if trace.get("total_ms") is not None:
        lines.append(f"  total {float(trace['total_ms']):.3f} ms from logged to recorded")
    actions: Sequence[Mapping[str, Any]] = d.get("actions") or []
    if actions:
        lines.append("")
        lines.append("  actions")
        for a in actions:
            parts = [f"{k}={_clean(a[k], 60)}" for k in ("policy", "action", "state", "action_id") if a.get(k)]
            lines.append(f"  {_clean(a.get('time') or '?'):<31} " + " ".join(parts))
    return "\n".join(line.rstrip() for line in lines) + "\n"
