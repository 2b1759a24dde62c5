"""Alert events as errloop serve sees them: parsing Kapacitor's alert JSON, ids, times.

Pure functions over plain data, no I/O. Kapacitor's alert event JSON (tick-facts §3.3)
holds one alert; every row of ``data.series`` is one classified error event
(measurement ``errloop_classified``), so one alert becomes one :class:`AlertEvent` per row.
"""

from __future__ import annotations

import calendar
import datetime
import json
import re
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Final

from errloop.rules.contract import Event

LEVELS: Final = ("OK", "INFO", "WARNING", "CRITICAL")
OK: Final = "OK"
UNKNOWN_POLICY: Final = "unknown"
ALERT_ID_PREFIX: Final = "errloop"  # the TICKscript's alert id: errloop:<policy>:<service>:<category>
MAX_BODY: Final = 1 << 20  # 1 MiB: larger alert bodies are refused

_EVENT_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")
_RFC3339 = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})[Tt ](\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,9}))?([Zz]|[+-]\d{2}:\d{2})",
)
_NS = 1_000_000_000


class AlertFormatError(ValueError):
    """The request body is not a Kapacitor alert event: not JSON, or the wrong shape."""


def valid_event_id(value: object) -> bool:
    """True for an event id errloop accepts: 1 to 64 of ``[A-Za-z0-9_-]``."""
    return isinstance(value, str) and _EVENT_ID.fullmatch(value) is not None


# ---------------------------------------------------------------------------------------------
# times


def parse_rfc3339_ns(text: str) -> int:
    """Nanoseconds since the epoch of an RFC3339 / RFC3339Nano time (as Go writes it)."""
    m = _RFC3339.fullmatch(text.strip())
    if m is None:
        raise ValueError(f"not an RFC3339 time: {text[:40]!r}")
    year, month, day, hour, minute, second = (int(g) for g in m.groups()[:6])
    frac, zone = m.group(7) or "", m.group(8)
    try:
        datetime.datetime(year, month, day, hour, minute, min(second, 59))  # validates the ranges
    except ValueError as exc:
        raise ValueError(f"not an RFC3339 time: {text[:40]!r} ({exc})") from None
    secs = calendar.timegm((year, month, day, hour, minute, second, 0, 0, 0))
    if zone not in ("Z", "z"):
        sign = 1 if zone[0] == "+" else -1
        secs -= sign * (int(zone[1:3]) * 3600 + int(zone[4:6]) * 60)
    return secs * _NS + int(frac.ljust(9, "0") or 0)


def _split_ns(ns: int) -> tuple[str, int]:
    secs, frac = divmod(ns, _NS)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(secs)), frac


def format_rfc3339_nano(ns: int) -> str:
    """Go's RFC3339Nano in UTC: trailing zeros of the fraction dropped (``…05.1234Z``)."""
    base, frac = _split_ns(ns)
    digits = f"{frac:09d}".rstrip("0")
    return f"{base}.{digits}Z" if digits else f"{base}Z"


def format_rfc3339_ms(ns: int) -> str:
    """RFC3339 in UTC with exactly three fraction digits (``…05.123Z``), truncated."""
    base, frac = _split_ns(ns)
    return f"{base}.{frac // 1_000_000:03d}Z"


def as_ns(value: object) -> int | None:
    """An integer nanosecond value from a field (int, integral float or digit string), else None."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str) and value.isdigit():
        return int(value)
    return None


# ---------------------------------------------------------------------------------------------
# alerts


def policy_from_alert_id(alert_id: str) -> str:
    """``errloop:<policy>:<service>:<category>`` -> ``<policy>``; anything else -> ``unknown``."""
    parts = alert_id.split(":")
    if len(parts) >= 2 and parts[0] == ALERT_ID_PREFIX and parts[1]:
        return parts[1]
    return UNKNOWN_POLICY


@dataclass(frozen=True)
class AlertEvent:
    """One classified error event of one alert."""

    event_id: str
    alert_id: str
    policy: str
    level: str
    message: str
    alert_ns: int  # the alert's own time (``time`` of the alert JSON = its triggering point)
    time_ns: int  # the event's point time: stage "logged"
    event: Event  # the row's tags and fields (no "time")
    event_ids: tuple[str, ...] = ()  # every event of the same alert, in order

    @property
    def recovery(self) -> bool:
        """An OK-level event: recorded as a recovery, no closed-loop CSV row."""
        return self.level == OK

    def ns(self, name: str) -> int | None:
        """An integer ns field of the event (ingested_ns, classified_ns, alerted_ns), if present."""
        return as_ns(self.event.get(name))

    def text(self, name: str) -> str:
        """A field or tag of the event as text ("" when absent)."""
        value = self.event.get(name)
        return "" if value is None else str(value)


@dataclass(frozen=True)
class Alert:
    """A parsed alert: its header and its events; rows that could not be used are in ``rejected``."""

    alert_id: str
    level: str
    message: str
    time_ns: int
    duration_ns: int = 0
    previous_level: str = ""
    recoverable: bool = True
    events: tuple[AlertEvent, ...] = ()
    rejected: tuple[str, ...] = field(default=())


def _is_value(v: object) -> bool:
    return isinstance(v, str | int | float | bool)


def row_event(tags: Mapping[str, object], columns: Sequence[object], row: Sequence[object]) -> tuple[Event, object]:
    """A row of a series as (event mapping, raw ``time`` column value); None values are left out.

    Raises ValueError when a value is not a scalar or the row does not fit the columns.
    """
    if len(row) != len(columns):
        raise ValueError(f"{len(row)} values for {len(columns)} columns")
    event: Event = {}
    for k, v in tags.items():
        if not isinstance(k, str) or not isinstance(v, str):
            raise ValueError("tags must map strings to strings")
        event[k] = v
    time_value: object = None
    for col, v in zip(columns, row, strict=True):
        if not isinstance(col, str):
            raise ValueError("column names must be strings")
        if col == "time":
            time_value = v
        elif v is None:
            continue
        elif not _is_value(v):
            raise ValueError(f"column {col!r} holds a {type(v).__name__}, not a scalar")
        else:
            event[col] = v  # type: ignore[assignment,unused-ignore]  # checked by _is_value
    return event, time_value


def make_events(
    rows: Sequence[tuple[Event, int]],
    alert_id: str,
    level: str,
    message: str,
    alert_ns: int,
) -> tuple[list[AlertEvent], list[str]]:
    """Events of one alert from (event mapping, point time) pairs; bad or repeated ids are rejected."""
    events: list[AlertEvent] = []
    rejected: list[str] = []
    seen: set[str] = set()
    default_policy = policy_from_alert_id(alert_id)
    for i, (event, time_ns) in enumerate(rows):
        eid = event.get("event_id")
        if not valid_event_id(eid):
            rejected.append(f"row {i}: event_id missing or malformed ({str(eid)[:40]!r})")
            continue
        assert isinstance(eid, str)
        if eid in seen:
            rejected.append(f"row {i}: event_id {eid} repeated in the same alert")
            continue
        seen.add(eid)
        tag_policy = event.get("policy")
        policy = tag_policy if isinstance(tag_policy, str) and tag_policy else default_policy
        events.append(AlertEvent(eid, alert_id, policy, level, message, alert_ns, time_ns, event))
    ids = tuple(e.event_id for e in events)
    return [_with_ids(e, ids) for e in events], rejected


def _with_ids(ev: AlertEvent, ids: tuple[str, ...]) -> AlertEvent:
    return AlertEvent(ev.event_id, ev.alert_id, ev.policy, ev.level, ev.message, ev.alert_ns, ev.time_ns, ev.event, ids)


def _require(cond: bool, msg: str) -> None:
    if not cond:
        raise AlertFormatError(msg)


def parse_alert(body: bytes | str) -> Alert:
    """Parse one Kapacitor alert event JSON document (a ``post`` handler's body).

    Raises :class:`AlertFormatError` with a clear message when the document is not JSON or
    not an alert; rows that cannot be used (no valid ``event_id``, non-scalar values) do not
    fail the alert: they are listed in ``Alert.rejected``.
    """
    if len(body) > MAX_BODY:
        raise AlertFormatError(f"body too large: {len(body)} bytes > {MAX_BODY}")
    try:
        doc = json.loads(body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise AlertFormatError(f"body is not JSON: {exc}") from None
    _require(isinstance(doc, dict), "alert must be a JSON object")
    assert isinstance(doc, dict)
    alert_id = doc.get("id")
    _require(isinstance(alert_id, str) and alert_id != "", "alert 'id' must be a non-empty string")
    assert isinstance(alert_id, str)
    level = doc.get("level")
    _require(level in LEVELS, f"alert 'level' must be one of {', '.join(LEVELS)}")
    assert isinstance(level, str)
    message = doc.get("message", "")
    _require(isinstance(message, str), "alert 'message' must be a string")
    assert isinstance(message, str)
    raw_time = doc.get("time")
    _require(isinstance(raw_time, str), "alert 'time' must be an RFC3339 string")
    assert isinstance(raw_time, str)
    try:
        time_ns = parse_rfc3339_ns(raw_time)
    except ValueError as exc:
        raise AlertFormatError(f"alert 'time': {exc}") from None
    duration = doc.get("duration", 0)
    _require(isinstance(duration, int) and not isinstance(duration, bool), "alert 'duration' must be an integer")
    assert isinstance(duration, int)
    previous = doc.get("previousLevel", "")
    _require(previous == "" or previous in LEVELS, "alert 'previousLevel' must be a level")
    recoverable = doc.get("recoverable", True)
    _require(isinstance(recoverable, bool), "alert 'recoverable' must be a boolean")
    data = doc.get("data", {})
    _require(isinstance(data, dict), "alert 'data' must be an object")
    series = data.get("series", [])
    _require(isinstance(series, list), "alert 'data.series' must be a list")

    rows: list[tuple[Event, int]] = []
    rejected: list[str] = []
    for s_i, s in enumerate(series):
        _require(isinstance(s, dict), f"data.series[{s_i}] must be an object")
        tags = s.get("tags", {})
        columns = s.get("columns", [])
        values = s.get("values", [])
        _require(isinstance(tags, dict), f"data.series[{s_i}].tags must be an object")
        _require(isinstance(columns, list), f"data.series[{s_i}].columns must be a list")
        _require(isinstance(values, list), f"data.series[{s_i}].values must be a list")
        for r_i, row in enumerate(values):
            where = f"data.series[{s_i}].values[{r_i}]"
            if not isinstance(row, list):
                rejected.append(f"{where}: not a list")
                continue
            try:
                event, t = row_event(tags, columns, row)
                row_ns = parse_rfc3339_ns(t) if isinstance(t, str) else time_ns
            except ValueError as exc:
                rejected.append(f"{where}: {exc}")
                continue
            rows.append((event, row_ns))
    events, bad = make_events(rows, alert_id, level, message, time_ns)
    rejected += bad
    return Alert(
        alert_id=alert_id,
        level=level,
        message=message,
        time_ns=time_ns,
        duration_ns=duration,
        previous_level=str(previous),
        recoverable=recoverable,
        events=tuple(events),
        rejected=tuple(rejected),
    )
