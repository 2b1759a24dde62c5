"""logfmt lines (go-kit/log's ``log.NewLogfmtLogger``, and any ``key=value`` logger).

``level=error ts=2024-11-27T10:00:00.123Z caller=main.go:42 msg="request failed" err="…"``.
Every token must be ``key=value`` (values bare or Go-quoted) with a ``level`` (or
``lvl``/``severity``) and a ``msg`` (or ``message``); time from ``ts``/``time``, caller
from ``caller``, error from ``err``/``error``.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Final

from errloop.telegraf.errlog.parsers.base import Record
from errloop.telegraf.errlog.parsers.common import LEVEL_WORDS, logfmt_pairs
from errloop.telegraf.errlog.timeparse import to_ns

_LEVEL_KEYS: Final = ("level", "lvl", "severity")
_MESSAGE_KEYS: Final = ("msg", "message")
_TIME_KEYS: Final = ("ts", "time", "timestamp", "t")
_ERROR_KEYS: Final = ("err", "error")
_CALLER_KEYS: Final = ("caller", "source", "file")


def _first(kv: dict[str, str], keys: tuple[str, ...]) -> str:
    for key in keys:
        if key in kv:
            return kv[key]
    return ""


@lru_cache(maxsize=8)
def _first_values(pairs: tuple[tuple[str, str], ...]) -> dict[str, str]:
    """Key → its first value (cached: the logfmt-family parsers ask for the same line in turn; never change it)."""
    kv: dict[str, str] = {}
    for key, value in pairs:
        kv.setdefault(key, value)
    return kv


@lru_cache(maxsize=16)
def _own(caller_keys: tuple[str, ...]) -> frozenset[str]:
    """The keys a record takes for itself (the rest are its extra keys)."""
    return frozenset((*_LEVEL_KEYS, *_MESSAGE_KEYS, *_TIME_KEYS, *_ERROR_KEYS, *caller_keys))


def parse_logfmt(
    line: str,
    name: str,
    *,
    level_ok: tuple[str, ...] | frozenset[str] = LEVEL_WORDS,
    caller_keys: tuple[str, ...] = _CALLER_KEYS,
    first_key: str = "",
    lead: tuple[tuple[str, ...], ...] = (),
) -> Record | None:
    """A logfmt line as a :class:`Record` of format ``name``; None if not logfmt with a known level and a message.

    ``lead``: when given, the first keys must be one of these sequences (a logger's fixed order).
    """
    text = line.strip()
    if "=" not in text or (first_key and not text.startswith(first_key + "=")):
        return None
    pairs = logfmt_pairs(text)
    if pairs is None:
        return None
    if lead and not any(tuple(k for k, _ in pairs[: len(keys)]) == keys for keys in lead):
        return None
    kv = _first_values(pairs)
    level = _first(kv, _LEVEL_KEYS)
    if level not in level_ok or not any(k in kv for k in _MESSAGE_KEYS):
        return None
    own = _own(caller_keys)
    return Record(
        format=name,
        level=level.lower(),
        message=_first(kv, _MESSAGE_KEYS),
        ts_ns=to_ns(_first(kv, _TIME_KEYS) or None),
        caller=_first(kv, caller_keys),
        error=_first(kv, _ERROR_KEYS),
        extra={k: v for k, v in kv.items() if k not in own},
    )


class LogfmtParser:
    """go-kit/logfmt lines; see the module docstring."""

    name: str = "logfmt"

    def parse(self, line: str) -> Record | None:
        return parse_logfmt(line, self.name)
