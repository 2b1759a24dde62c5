"""Log timestamps to epoch nanoseconds: epoch numbers of any unit and RFC 3339 / ISO 8601 text."""

from __future__ import annotations

import calendar
import re
from decimal import Decimal, InvalidOperation
from functools import lru_cache
from typing import Final

_MIN_NS: Final = -(2**63)
_MAX_NS: Final = 2**63 - 1

_ISO: Final = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})[Tt ](\d{2}):(\d{2}):(\d{2})(?:[.,](\d{1,9})\d*)?"
    r"\s*(Z|z|[+-]\d{2}(?::?\d{2})?)?"
)


_E11: Final = Decimal(10) ** 11
_E14: Final = Decimal(10) ** 14
_E17: Final = Decimal(10) ** 17


def epoch_to_ns(value: int | float | Decimal) -> int | None:
    """An epoch number to nanoseconds, its unit guessed from its size.

    Seconds below 1e11 (zap's default ``ts``), then milliseconds, microseconds and
    nanoseconds (zap's ``EpochMillis``/``EpochNanos`` encoders). Decimal input keeps
    every digit; None for a value that is not finite or out of range.
    """
    if isinstance(value, bool):
        return None
    try:
        d = value if isinstance(value, Decimal) else Decimal(value)
        if not d.is_finite():
            return None
        magnitude = abs(d)
        if magnitude < _E11:
            ns = int(d * 1_000_000_000)
        elif magnitude < _E14:
            ns = int(d * 1_000_000)
        elif magnitude < _E17:
            ns = int(d * 1_000)
        else:
            ns = int(d)
    except (InvalidOperation, ValueError, OverflowError):
        return None
    return ns if _MIN_NS <= ns <= _MAX_NS else None


@lru_cache(maxsize=256)
def day_seconds(year: int, month: int, day: int) -> int:
    """``calendar.timegm`` of a date's midnight (UTC), cached: a log's lines fall on a few days.

    ``calendar.timegm((y, mo, d, hh, mi, ss, …))`` is exactly this plus ``hh * 3600 + mi * 60 + ss``
    (and raises as it does for an impossible year or month).
    """
    return calendar.timegm((year, month, day, 0, 0, 0, 0, 0, 0))


def iso_to_ns(text: str) -> int | None:
    """RFC 3339 / ISO 8601 text (``2024-11-27T10:00:00.123456789Z``, ``…+0100``, no zone = UTC)."""
    m = _ISO.match(text.strip())
    if m is None:
        return None
    year, month, day, hour, minute, second = (int(g) for g in m.groups()[:6])
    frac, zone = m.group(7), m.group(8)
    if not (1 <= month <= 12 and 1 <= day <= 31 and hour <= 23 and minute <= 59 and second <= 60):
        return None
    try:
        seconds = day_seconds(year, month, day) + hour * 3600 + minute * 60 + second
    except (ValueError, OverflowError):
        return None
    if zone and zone not in ("Z", "z"):
        sign = -1 if zone[0] == "-" else 1
        digits = zone[1:].replace(":", "")
        offset = int(digits[:2]) * 3600 + (int(digits[2:4]) * 60 if len(digits) >= 4 else 0)
        seconds -= sign * offset
    ns = seconds * 1_000_000_000 + (int(frac.ljust(9, "0")) if frac else 0)
    return ns if _MIN_NS <= ns <= _MAX_NS else None


def to_ns(value: object) -> int | None:
    """A JSON timestamp value (number or text) to epoch nanoseconds, or None."""
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int | float | Decimal):
        return epoch_to_ns(value)
    if isinstance(value, str):
        ns = iso_to_ns(value)
        if ns is None:
            try:
                return epoch_to_ns(Decimal(value.strip()))
            except InvalidOperation:
                return None
        return ns
    return None
