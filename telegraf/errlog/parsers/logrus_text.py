"""logrus' ``TextFormatter`` without colours (what it writes to a file or a pipe).

``time="2024-11-27T10:00:00Z" level=error msg="request failed" func=main.handle
file="main.go:87" error="…" method=GET`` — logfmt whose first key is ``time`` (or
``level`` with ``DisableTimestamp``) and whose level is a lower-case logrus level
(``warning``, not ``WARN``), followed by ``msg``; the caller is ``file`` (with ``ReportCaller``).
"""

from __future__ import annotations

from typing import Final

from errloop.telegraf.errlog.parsers.base import Record
from errloop.telegraf.errlog.parsers.logfmt import parse_logfmt

_LEAD: Final = (("time", "level", "msg"), ("level", "msg"))
LOGRUS_LEVELS: Final = frozenset(("panic", "fatal", "error", "warning", "info", "debug", "trace"))


class LogrusTextParser:
    """logrus' text lines; see the module docstring."""

    name: str = "logrus_text"

    def parse(self, line: str) -> Record | None:
        text = line.lstrip()
        if not (text.startswith("time=") or text.startswith("level=")):
            return None
        return parse_logfmt(text, self.name, level_ok=LOGRUS_LEVELS, caller_keys=("file",), lead=_LEAD)
