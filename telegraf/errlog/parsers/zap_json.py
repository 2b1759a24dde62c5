"""zap's JSON encoder (``zap.NewProduction``): one JSON object per line.

Production shape: ``{"level":"error","ts":1732700000.123456,"logger":"api","caller":
"api/users.go:42","msg":"…","error":"…","errorVerbose":"…","stacktrace":"…", …fields}``.
Renamed keys of common encoder configs are accepted too (``time``/``timestamp`` for
``ts``, ``message`` for ``msg``, ``severity``/``lvl`` for ``level``). A line is zap JSON
when it is a JSON object with a string level; anything else is not this format.
"""

from __future__ import annotations

from typing import Final

from errloop.telegraf.errlog.parsers.base import Record
from errloop.telegraf.errlog.parsers.common import first, json_object, text
from errloop.telegraf.errlog.timeparse import to_ns

_LEVEL_KEYS: Final = ("level", "lvl", "severity")
_MESSAGE_KEYS: Final = ("msg", "message")
_TIME_KEYS: Final = ("ts", "time", "timestamp", "@timestamp")
_ERROR_KEYS: Final = ("error", "err")
_STACK_KEYS: Final = ("stacktrace", "stack")
_OWN_KEYS: Final = frozenset(
    (*_LEVEL_KEYS, *_MESSAGE_KEYS, *_TIME_KEYS, *_ERROR_KEYS, *_STACK_KEYS, "logger", "caller", "errorVerbose")
)


_first = first
_text = text


class ZapJsonParser:
    """Parses zap's production JSON lines; see the module docstring."""

    name: str = "zap_json"

    def parse(self, line: str) -> Record | None:
        obj = json_object(line.strip())
        if obj is None:
            return None
        level = _first(obj, _LEVEL_KEYS)
        if not isinstance(level, str) or not level:
            return None
        return Record(
            format=self.name,
            level=level.strip().lower(),
            message=_text(_first(obj, _MESSAGE_KEYS)),
            ts_ns=to_ns(_first(obj, _TIME_KEYS)),
            logger=_text(obj.get("logger")),
            caller=_text(obj.get("caller")),
            error=_text(_first(obj, _ERROR_KEYS)),
            error_verbose=_text(obj.get("errorVerbose")),
            stacktrace=_text(_first(obj, _STACK_KEYS)),
            extra={k: v for k, v in obj.items() if k not in _OWN_KEYS},
        )
