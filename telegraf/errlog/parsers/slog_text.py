"""log/slog's ``TextHandler``: ``time=2024-11-27T10:00:00.123Z level=ERROR source=/src/main.go:96
msg="request failed" err="…"`` — logfmt with an upper-case slog level (``ERROR``, ``WARN+2``)."""

from __future__ import annotations

from dataclasses import replace

from errloop.telegraf.errlog.parsers.base import Record
from errloop.telegraf.errlog.parsers.common import slog_level
from errloop.telegraf.errlog.parsers.logfmt import parse_logfmt

_SLOG_LEVELS = frozenset(
    f"{base}{off}"
    for base in ("DEBUG", "INFO", "WARN", "ERROR")
    for off in ("", "+1", "+2", "+3", "+4", "-1", "-2", "-3", "-4")
)


class SlogTextParser:
    """slog's text lines; see the module docstring."""

    name: str = "slog_text"

    def parse(self, line: str) -> Record | None:
        text = line.lstrip()
        if not (text.startswith("time=") or text.startswith("level=")):
            return None
        rec = parse_logfmt(text, self.name, level_ok=_SLOG_LEVELS, caller_keys=("source",))
        if rec is None:
            return None
        return replace(rec, level=slog_level(rec.level.upper()) or rec.level)
