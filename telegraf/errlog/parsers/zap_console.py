"""zap's console encoder (``zap.NewDevelopment``): tab-separated, then the stack on the next lines.

``2024-11-27T13:03:45.501Z⇥ERROR⇥api⇥golog/main.go:74⇥request failed⇥{"error": "…", …}``
followed (at warn and above in the development config) by the stack as
``function\\n\\tfile:line`` lines; the grouping stage hands those over as one record.
Fields: time, upper-case level, optional logger name, optional caller, message, then the
fields as one JSON object.
"""

from __future__ import annotations

import json
import re
from typing import Final

from errloop.telegraf.errlog.parsers.base import Record
from errloop.telegraf.errlog.parsers.common import CALLER_RE, JSON_DECODER, text
from errloop.telegraf.errlog.timeparse import iso_to_ns

_LEVELS: Final = frozenset(("DEBUG", "INFO", "WARN", "ERROR", "DPANIC", "PANIC", "FATAL"))
_TIME: Final = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}")
_OWN: Final = frozenset(("error", "errorVerbose", "stacktrace"))


class ZapConsoleParser:
    """zap's development console lines (and the stack lines under them); see the module docstring."""

    name: str = "zap_console"

    def parse(self, line: str) -> Record | None:
        if "\t" not in line:  # the fields are tab-separated (the usual non-console line ends here)
            return None
        first, _, stack = line.partition("\n")
        parts = first.rstrip("\r").split("\t")
        if len(parts) < 3 or parts[1] not in _LEVELS or not _TIME.match(parts[0]):
            return None
        rest = parts[2:]
        fields: dict[str, object] = {}
        if len(rest) > 1 and rest[-1].startswith("{") and rest[-1].endswith("}"):
            try:
                obj = JSON_DECODER.decode(rest[-1])
            except (json.JSONDecodeError, RecursionError):
                obj = None
            if isinstance(obj, dict):
                fields = obj
                rest = rest[:-1]
        logger = caller = ""
        if len(rest) >= 2 and CALLER_RE.match(rest[0]):
            caller, rest = rest[0], rest[1:]
        elif len(rest) >= 3 and CALLER_RE.match(rest[1]):
            logger, caller, rest = rest[0], rest[1], rest[2:]
        elif len(rest) >= 2:
            logger, rest = rest[0], rest[1:]
        return Record(
            format=self.name,
            level=parts[1].lower(),
            message="\t".join(rest),
            ts_ns=iso_to_ns(parts[0]),
            logger=logger,
            caller=caller,
            error=text(fields.get("error")),
            error_verbose=text(fields.get("errorVerbose")),
            stacktrace=stack.strip("\n") or text(fields.get("stacktrace")),
            extra={k: v for k, v in fields.items() if k not in _OWN},
        )
