"""Well-known keys of structured Go logs → event values (service, trace, HTTP, duration, error type).

The key lists are shared by every structured format (zap, logrus JSON, …). Nested JSON
objects are looked up with dotted keys (``{"http": {"method": "GET"}}`` answers
``http.method``), one level deep. The first key present with a usable value wins.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from decimal import Decimal, InvalidOperation
from typing import Final

SERVICE_KEYS: Final = ("service", "service.name", "service_name", "serviceName", "app", "application")
ERROR_TYPE_KEYS: Final = ("errorType", "error_type", "errType", "error.type", "errorKind", "error_kind")
TRACE_KEYS: Final = ("trace_id", "traceID", "traceId", "traceid", "trace.id", "dd.trace_id", "trace-id")
SPAN_KEYS: Final = ("span_id", "spanID", "spanId", "spanid", "span.id", "dd.span_id", "span-id")
TRACEPARENT_KEYS: Final = ("traceparent", "trace_parent")
METHOD_KEYS: Final = ("method", "http_method", "http.method", "http.request.method", "httpMethod")
ROUTE_KEYS: Final = ("route", "http.route", "http_route")
PATH_KEYS: Final = (
    "path",
    "http_path",
    "http.path",
    "url.path",
    "http.target",
    "uri",
    "request_uri",
    "url",
    "http.url",
    "url.full",
)
STATUS_KEYS: Final = (
    "status",
    "status_code",
    "statusCode",
    "http_status",
    "http.status_code",
    "http.response.status_code",
)
DURATION_KEYS: Final = (
    "duration_ms",
    "latency_ms",
    "elapsed_ms",
    "took_ms",
    "latency",
    "duration",
    "elapsed",
    "took",
    "response_time",
    "request_time",
    "latency_ns",
    "duration_ns",
    "latency_us",
    "duration_us",
)

KNOWN_KEYS: Final = frozenset(
    (
        *SERVICE_KEYS,
        *ERROR_TYPE_KEYS,
        *TRACE_KEYS,
        *SPAN_KEYS,
        *TRACEPARENT_KEYS,
        *METHOD_KEYS,
        *ROUTE_KEYS,
        *PATH_KEYS,
        *STATUS_KEYS,
        *DURATION_KEYS,
    )
)
"""Every key read here: a record with none of them gives nothing (one check)."""
_MAX_ID_CHARS: Final = 128
_TRACEPARENT: Final = re.compile(r"^[0-9a-f]{2}-([0-9a-f]{32})-([0-9a-f]{16})-[0-9a-f]{2}")
_GO_DURATION: Final = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|μs|ms|s|m|h)")
_DURATION_MS: Final = {"ns": 1e-6, "us": 1e-3, "µs": 1e-3, "μs": 1e-3, "ms": 1.0, "s": 1e3, "m": 6e4, "h": 3.6e6}


_NOT_MAPPINGS: Final = frozenset((str, int, float, bool, type(None), Decimal, list))


def flatten(extra: Mapping[str, object]) -> dict[str, object]:
    """Keys as written plus ``parent.child`` for the members of nested objects (one level)."""
    flat: dict[str, object] = dict(extra)
    for key, value in extra.items():
        # the JSON scalars and lists are never mappings: skip the (slower) ABC check for them
        if type(value) not in _NOT_MAPPINGS and isinstance(value, Mapping):
            for child, inner in value.items():
                flat.setdefault(f"{key}.{child}", inner)
    return flat


def flat_view(extra: Mapping[str, object]) -> Mapping[str, object]:
    """What :func:`flatten` holds, for reading: ``extra`` itself when it has no nested object (no copy)."""
    for value in extra.values():
        if type(value) not in _NOT_MAPPINGS and isinstance(value, Mapping):
            return flatten(extra)
    return extra


def _scalar_text(value: object) -> str:
    if isinstance(value, bool) or value is None:
        return ""
    if isinstance(value, str):
        return value.strip()
    if isinstance(value, int | Decimal | float):
        return str(value)
    return ""


def first_text(flat: Mapping[str, object], keys: tuple[str, ...], limit: int = _MAX_ID_CHARS) -> str:
    """The first non-empty string/number value among ``keys``, cut to ``limit`` characters."""
    if flat.keys().isdisjoint(keys):  # most records have none of the keys: one check in C (hot path)
        return ""
    for key in keys:
        value = flat.get(key)
        if value is None:  # most keys are absent: skip them before any conversion (hot path)
            continue
        text = value.strip() if type(value) is str else _scalar_text(value)
        if text:
            return text[:limit]
    return ""


def trace_ids(flat: Mapping[str, object]) -> tuple[str, str]:
    """(trace_id, span_id) from the id keys, else from a W3C ``traceparent``."""
    trace = first_text(flat, TRACE_KEYS)
    span = first_text(flat, SPAN_KEYS)
    if not trace:
        m = _TRACEPARENT.match(first_text(flat, TRACEPARENT_KEYS).lower())
        if m is not None:
            trace, span = m.group(1), span or m.group(2)
    return trace, span


def http_status(flat: Mapping[str, object]) -> int | None:
    """An HTTP status code 100–599 from the status keys, else None."""
    if flat.keys().isdisjoint(STATUS_KEYS):
        return None
    for key in STATUS_KEYS:
        value = flat.get(key)
        if isinstance(value, bool) or value is None:
            continue
        if type(value) is int:  # what the conversion below gives for an int (the usual JSON status)
            code = value
        else:
            try:
                code = int(Decimal(str(value).strip()))
            except (InvalidOperation, ValueError):
                continue
        if 100 <= code <= 599:
            return code
    return None


def _unit_ms(key: str) -> float:
    for suffix, factor in (("_ms", 1.0), ("_ns", 1e-6), ("_us", 1e-3)):
        if key.endswith(suffix):
            return factor
    return 1e3  # zap's default duration encoder writes seconds


def parse_go_duration(text: str) -> float | None:
    """``1h2m3.5s``, ``12.5ms``, ``350µs`` → milliseconds; None when not a Go duration."""
    text = text.strip()
    sign = -1.0 if text.startswith("-") else 1.0
    body = text.lstrip("+-")
    pos = 0
    total = 0.0
    for m in _GO_DURATION.finditer(body):
        if m.start() != pos:
            return None
        total += float(m.group(1)) * _DURATION_MS[m.group(2)]
        pos = m.end()
    if pos == 0 or pos != len(body):
        return None
    return sign * total


def duration_ms(flat: Mapping[str, object]) -> float | None:
    """A request duration in milliseconds.

    Numbers are seconds (zap's ``SecondsDurationEncoder``) unless the key ends in
    ``_ms``, ``_us`` or ``_ns``; strings are Go durations (``StringDurationEncoder``) or
    numbers. Negative or non-finite values are ignored.
    """
    if flat.keys().isdisjoint(DURATION_KEYS):
        return None
    for key in DURATION_KEYS:
        value = flat.get(key)
        if isinstance(value, bool) or value is None:
            continue
        ms: float | None = None
        if isinstance(value, int | float | Decimal):
            ms = float(value) * _unit_ms(key)
        elif isinstance(value, str):
            ms = parse_go_duration(value)
            if ms is None:
                try:
                    ms = float(Decimal(value.strip())) * _unit_ms(key)
                except (InvalidOperation, ValueError):
                    ms = None
        if ms is not None and math.isfinite(ms) and ms >= 0:
            return ms
    return None
