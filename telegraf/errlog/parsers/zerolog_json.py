"""zerolog's JSON lines: ``message`` (not ``msg``), lower-case ``level``, no ``ts``; ``time``,
``caller``, ``error``, ``stack`` (pkgerrors' list of ``{func,line,source}``).
"""

from __future__ import annotations

from typing import Final

from errloop.telegraf.errlog.parsers.base import Record
from errloop.telegraf.errlog.parsers.common import (
    LEVEL_WORDS,
    extra_keys,
    json_object,
    stack_text,
    text,
)
from errloop.telegraf.errlog.timeparse import to_ns

_ERROR_KEYS: Final = ("error", "err")


class ZerologJsonParser:
    """zerolog's JSON lines; see the module docstring."""

    name: str = "zerolog_json"
    _own: Final = frozenset(("level", "message", "time", "caller", "error", "stack"))

    def parse(self, line: str) -> Record | None:
        obj = json_object(line.strip())
        if obj is None or "msg" in obj or "ts" in obj:
            return None
        level = obj.get("level")
        if not isinstance(level, str) or level not in LEVEL_WORDS:
            return None
        if "message" not in obj and "time" not in obj and "error" not in obj:
            return None
        return Record(
            format=self.name,
            level=level,
            message=text(obj.get("message")),
            ts_ns=to_ns(obj.get("time")),
            caller=text(obj.get("caller")),
            error=text(obj.get("error")),
            stacktrace=stack_text(obj.get("stack")),
            extra=extra_keys(obj, self._own),
        )
