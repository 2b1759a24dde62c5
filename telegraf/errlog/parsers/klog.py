"""klog (Kubernetes) lines: ``E1127 13:03:45.517696   22502 main.go:106] "request failed" err="…" k="v"``.

The header is ``Lmmdd hh:mm:ss.uuuuuu threadid file:line]``; ``L`` is ``I``/``W``/``E``/``F``.
Structured calls (``ErrorS``, ``InfoS``) write the message quoted and then ``key=value``
pairs (``err`` is the error); ``Errorf`` writes plain text, whose ``": "`` links are
then taken as the error chain. klog writes no year and local time: the year is the
current one (the previous one if that would put the line more than a day ahead), the
zone UTC.
"""

from __future__ import annotations

import re
import time
from typing import Final

from errloop.telegraf.errlog.parsers.base import Record
from errloop.telegraf.errlog.parsers.common import logfmt_pairs, quoted_end, unquote
from errloop.telegraf.errlog.timeparse import day_seconds

_HEADER: Final = re.compile(r"^([IWEF])(\d{2})(\d{2}) (\d{2}):(\d{2}):(\d{2})\.(\d{6})\s+(\d+) ([^\s\]]+:\d+)\] ?")
_LEVELS: Final = {"I": "info", "W": "warn", "E": "error", "F": "fatal"}


def _klog_ns(month: int, day: int, hh: int, mm: int, ss: int, us: int, now_s: float) -> int | None:
    year = time.gmtime(now_s).tm_year
    for y in (year, year - 1):
        try:
            secs = day_seconds(y, month, day) + hh * 3600 + mm * 60 + ss
        except (ValueError, OverflowError):
            return None
        if secs <= now_s + 86_400:
            return secs * 1_000_000_000 + us * 1000
    return None


class KlogParser:
    """klog's text lines; see the module docstring."""

    name: str = "klog"

    def parse(self, line: str) -> Record | None:
        if not line or line[0] not in "IWEF":
            return None
        m = _HEADER.match(line)
        if m is None:
            return None
        lvl, mo, dd, hh, mi, ss, us = m.group(1), *(int(g) for g in m.groups()[1:7])
        if not (1 <= mo <= 12 and 1 <= dd <= 31):
            return None
        ts = _klog_ns(mo, dd, hh, mi, ss, us, time.time())
        caller = m.group(9)
        rest = line[m.end() :].rstrip()
        extra: dict[str, object] = {"thread_id": int(m.group(8))}
        message, error = rest, ""
        if rest.startswith('"'):
            end = quoted_end(rest, 0)
            pairs = logfmt_pairs(rest, end) if end > 0 else None
            if end > 0 and (end == len(rest) or pairs is not None):
                message = unquote(rest[1 : end - 1])
                for key, value in pairs or []:
                    if key == "err" and not error:
                        error = value
                    else:
                        extra.setdefault(key, value)
        elif ": " in rest:
            error = rest
        return Record(
            format=self.name,
            level=_LEVELS[lvl],
            message=message,
            ts_ns=ts,
            caller=caller,
            error=error,
            extra=extra,
        )
