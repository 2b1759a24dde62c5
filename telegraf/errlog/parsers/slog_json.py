"""log/slog's ``JSONHandler``: ``msg`` and an upper-case slog level (``ERROR``, ``WARN+2``), no ``ts``;
``source`` is ``{"function","file","line"}`` with ``AddSource``; errors are usually under ``err``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final

from errloop.telegraf.errlog.parsers.base import Record
from errloop.telegraf.errlog.parsers.common import (
    extra_keys,
    first,
    json_object,
    slog_level,
    text,
)
from errloop.telegraf.errlog.timeparse import to_ns

_ERROR_KEYS: Final = ("error", "err")


class SlogJsonParser:
    """log/slog's ``JSONHandler`` lines; see the module docstring."""

    name: str = "slog_json"
    _own: Final = frozenset(("time", "level", "source", "msg", *_ERROR_KEYS))

    def parse(self, line: str) -> Record | None:
        obj = json_object(line.strip())
        if obj is None or "ts" in obj or "msg" not in obj:
            return None
        raw_level = obj.get("level")
        level = slog_level(raw_level) if isinstance(raw_level, str) else None
        if level is None:
            return None
        caller = ""
        source = obj.get("source")
        if isinstance(source, Mapping):
            file, lineno = text(source.get("file")), text(source.get("line"))
            caller = f"{file}:{lineno}" if file and lineno else file
        elif isinstance(source, str):
            caller = source
        return Record(
            format=self.name,
            level=level,
            message=text(obj.get("msg")),
            ts_ns=to_ns(obj.get("time")),
            caller=caller,
            error=text(first(obj, _ERROR_KEYS)),
            extra=extra_keys(obj, self._own),
        )
