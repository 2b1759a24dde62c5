"""Helpers the parsers share: one cached JSON decode per line, value → text, logfmt pairs, level words."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from decimal import Decimal
from functools import lru_cache
from typing import Final

JSON_DECODER: Final = json.JSONDecoder(parse_float=Decimal)
"""``json.loads(text, parse_float=Decimal)`` without building a decoder per call (the same decoding)."""


@lru_cache(maxsize=8)
def json_object(text: str) -> dict[str, object] | None:
    """The line as a JSON object (floats as Decimal), or None; cached so the JSON parsers decode a line once.

    The dict is shared between the parsers that ask: never change it.
    """
    if not text.startswith("{"):
        return None
    try:
        obj = JSON_DECODER.decode(text)
    except (json.JSONDecodeError, RecursionError):
        return None
    return obj if isinstance(obj, dict) else None


def first(obj: dict[str, object], keys: tuple[str, ...]) -> object:
    for key in keys:
        if key in obj:
            return obj[key]
    return None


def text(value: object) -> str:
    """A JSON value as text: strings as they are, numbers and booleans as JSON, the rest as JSON."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | Decimal):
        return str(value)
    return json.dumps(value, default=str, ensure_ascii=False)


_KEY: Final = re.compile(r"[^\s=\"]+")
_ESCAPE: Final = re.compile(r"\\(?:u([0-9a-fA-F]{4})|U([0-9a-fA-F]{8})|x([0-9a-fA-F]{2})|(.))", re.S)
_SIMPLE_ESCAPES: Final = {
    "n": "\n",
    "t": "\t",
    "r": "\r",
    '"': '"',
    "\\": "\\",
    "a": "\a",
    "b": "\b",
    "f": "\f",
    "v": "\v",
}


def _unescape_match(m: re.Match[str]) -> str:
    hex4, hex8, hex2, other = m.groups()
    code = hex4 or hex8 or hex2
    if code:
        try:
            return chr(int(code, 16))
        except (ValueError, OverflowError):
            return m.group(0)
    return _SIMPLE_ESCAPES.get(other, m.group(0))


def unquote(quoted: str) -> str:
    """Go's ``strconv.Quote`` output (without the outer quotes) back to text."""
    return _ESCAPE.sub(_unescape_match, quoted) if "\\" in quoted else quoted


def quoted_end(line: str, start: int) -> int:
    """Index just after the closing quote of the Go-quoted string whose opening quote is at ``start``; -1 if open."""
    i = start + 1
    n = len(line)
    while i < n:
        c = line[i]
        if c == "\\":
            i += 2
            continue
        if c == '"':
            return i + 1
        i += 1
    return -1


_PAIR: Final = re.compile(r' *([^\s="]+)=(?:"((?:[^"\\]|\\.)*)"|([^\s"]*))(?= |$)', re.S)


@lru_cache(maxsize=8)
def _pairs(line: str, start: int) -> tuple[tuple[str, str], ...] | None:
    pairs: list[tuple[str, str]] = []
    pos, n = start, len(line)
    while pos < n:
        m = _PAIR.match(line, pos)
        if m is None:
            if line[pos:].isspace():
                break
            return None
        key, quoted, bare = m.groups()
        pairs.append((key, unquote(quoted) if quoted is not None else bare))
        pos = m.end()
    return tuple(pairs) or None


def logfmt_pairs(line: str, start: int = 0) -> tuple[tuple[str, str], ...] | None:
    """``key=value key2="quoted value"`` pairs (logfmt, as logrus, slog, go-kit and klog write them).

    None when the text is not logfmt: a token without ``=``, an unclosed quote, no pairs.
    Cached, so the logfmt-family parsers split a line once.
    """
    return _pairs(line.rstrip(), start)


LEVEL_WORDS: Final = frozenset(
    ("trace", "debug", "info", "warn", "warning", "error", "err", "dpanic", "panic", "fatal", "critical", "crit")
)
"""Level names the parsers accept, lower case (the normaliser maps aliases onto zap's names)."""

_SLOG_LEVEL: Final = re.compile(r"^(DEBUG|INFO|WARN|ERROR)([+-]\d+)?$")


def slog_level(value: str) -> str | None:
    """slog's level text (``ERROR``, ``WARN+2``, ``ERROR-1``) → lower-case base level; None if not slog's."""
    m = _SLOG_LEVEL.match(value)
    return m.group(1).lower() if m else None


CALLER_RE: Final = re.compile(r"^\S+\.go:\d+$")


def stack_text(value: object) -> str:
    """zerolog's pkgerrors stack (a list of ``{"func","line","source"}``) → Go's two-line frames; text as is."""
    if isinstance(value, str):
        return value
    if isinstance(value, list):
        frames = []
        for item in value:
            if isinstance(item, Mapping):
                fn, src, line = text(item.get("func")), text(item.get("source")), text(item.get("line"))
                if fn:
                    frames.append(f"{fn}\n\t{src}:{line}")
        return "\n".join(frames)
    return ""


def extra_keys(obj: dict[str, object], own: frozenset[str]) -> dict[str, object]:
    return {k: v for k, v in obj.items() if k not in own}
