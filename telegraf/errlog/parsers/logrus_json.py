"""logrus' ``JSONFormatter``: ``msg``, ``time``, lower-case ``level``, no ``ts``, and keys in sorted
order (logrus encodes a map, so its keys always come sorted); ``file``/``func`` with ``ReportCaller``.
"""

from __future__ import annotations

from typing import Final

from errloop.telegraf.errlog.parsers.base import Record
from errloop.telegraf.errlog.parsers.common import (
    LEVEL_WORDS,
    extra_keys,
    first,
    json_object,
    text,
)
from errloop.telegraf.errlog.timeparse import to_ns

_ERROR_KEYS: Final = ("error", "err")


class LogrusJsonParser:
    """logrus' ``JSONFormatter`` lines; see the module docstring."""

    name: str = "logrus_json"
    _own: Final = frozenset(("time", "level", "msg", "file", "func", *_ERROR_KEYS))

    def parse(self, line: str) -> Record | None:
        obj = json_object(line.strip())
        if obj is None or "ts" in obj or "msg" not in obj or "time" not in obj:
            return None
        level = obj.get("level")
        if not isinstance(level, str) or level not in LEVEL_WORDS:
            return None
        keys = list(obj)
        if keys != sorted(keys):
            return None
        return Record(
            format=self.name,
            level=level,
            message=text(obj.get("msg")),
            ts_ns=to_ns(obj.get("time")),
            caller=text(obj.get("file")),
            error=text(first(obj, _ERROR_KEYS)),
            extra=extra_keys(obj, self._own),
        )
