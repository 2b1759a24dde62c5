"""The standard library's ``log`` package, with its flag variants.

``[prefix]2024/11/27 13:03:45[.123456] [file.go:42: ][prefix]message`` — ``Ldate``,
``Ltime``, ``Lmicroseconds``, ``Lshortfile``/``Llongfile``, ``LUTC`` and ``Lmsgprefix``
all give this shape (a line needs a date or a time to be recognised; the time is taken
as UTC, as ``LUTC`` writes it). The package has no levels: a leading level word
(``ERROR:``, ``[error]``, ``E!``, ``WARN``) gives the level and is left out of the
message; without one a message saying ``error``, ``fail``, ``panic``, ``fatal``,
``cannot`` or ``unable`` is ``error``, anything else ``info``. The message's ``": "``
links are the error chain.
"""

from __future__ import annotations

import re
from functools import lru_cache
from typing import Final

from errloop.telegraf.errlog.parsers.base import Record
from errloop.telegraf.errlog.timeparse import day_seconds

_LINE: Final = re.compile(
    r"^(?P<prefix>[^\d\n]{0,64}?)"
    r"(?:(?P<date>\d{4}/\d{2}/\d{2}) )?"
    r"(?P<time>\d{2}:\d{2}:\d{2}(?:\.\d{1,6})?) "
    r"(?:(?P<file>\S+\.go:\d+): )?"
    r"(?P<rest>.*)$",
    re.S,
)
_FILE_ONLY: Final = re.compile(r"^(?P<prefix>[^\n]{0,64}?)(?P<file>\S+\.go:\d+): (?P<rest>.*)$", re.S)
_LEVEL: Final = re.compile(
    r"^(?P<p>\[[\w.\- ]{1,32}\] )?"
    r"(?:\[(?P<b>[A-Za-z]+)\]:? |(?P<u>[A-Z]{3,8})(?::|\b) ?|(?P<l>[a-z]{4,8}): |(?P<s>[EWIF])! )"
)
_LEVEL_NAMES: Final = {
    "error": "error",
    "err": "error",
    "eror": "error",
    "warn": "warn",
    "warning": "warn",
    "info": "info",
    "debug": "debug",
    "trace": "debug",
    "fatal": "fatal",
    "panic": "panic",
    "critical": "fatal",
    "crit": "fatal",
    "e": "error",
    "w": "warn",
    "i": "info",
    "f": "fatal",
}
_ERRORISH: Final = re.compile(r"(?i)\b(?:error|err|fail\w*|panic\w*|fatal|cannot|can't|unable)\b")


@lru_cache(maxsize=64)
def _date_s(date: str) -> int | None:
    """``yyyy/mm/dd`` → epoch seconds of its midnight (UTC); None for an impossible date (cached)."""
    try:
        y, mo, d = (int(p) for p in date.split("/"))
        if not (1 <= mo <= 12 and 1 <= d <= 31):
            return None
        return day_seconds(y, mo, d)
    except (ValueError, OverflowError):
        return None


def _ns(date: str | None, clock: str) -> int | None:
    if date is None:
        return None
    day = _date_s(date)
    if day is None:
        return None
    try:
        hms, _, frac = clock.partition(".")
        hh, mi, ss = (int(p) for p in hms.split(":"))
    except ValueError:
        return None
    if not (hh < 24 and mi < 60 and ss <= 60):
        return None
    return (day + hh * 3600 + mi * 60 + ss) * 1_000_000_000 + (int(frac.ljust(9, "0")) if frac else 0)


def split_level(rest: str) -> tuple[str, str]:
    """``ERROR: text`` → (``error``, ``text``); without a level word: (guessed level, the text)."""
    m = _LEVEL.match(rest)
    if m is not None:
        word = (m.group("b") or m.group("u") or m.group("l") or m.group("s") or "").lower()
        level = _LEVEL_NAMES.get(word)
        if level is not None:
            return level, (m.group("p") or "") + rest[m.end() :]
    return ("error" if _ERRORISH.search(rest) else "info"), rest


class StdlogParser:
    """Lines of Go's ``log`` package; see the module docstring."""

    name: str = "stdlog"

    def parse(self, line: str) -> Record | None:
        text = line.rstrip()
        m = _LINE.match(text)
        if m is None:
            m = _FILE_ONLY.match(text)
            if m is None:
                return None
            date, clock = None, ""
        else:
            date, clock = m.group("date"), m.group("time")
        level, message = split_level(m.group("rest"))
        if not message:
            return None
        prefix = m.group("prefix").strip()
        return Record(
            format=self.name,
            level=level,
            message=message,
            ts_ns=_ns(date, clock) if clock else None,
            caller=m.group("file") or "",
            error=message if ": " in message else "",
            extra={"prefix": prefix} if prefix else {},
        )
