"""A small, strict line protocol parser for the tests, after Telegraf's default influx parser.

It follows Telegraf v1.37's ragel grammar (plugins/parsers/influx/machine.go.rl) and its
unescaping (escape.go): measurement ``\\,`` ``\\ ``; tag keys/values and field keys
``\\,`` ``\\"`` ``\\ `` ``\\=``; string fields ``\\\\`` and ``\\"`` only (any other
backslash pair is a syntax error there). It is stricter than Telegraf in one way on
purpose: a raw LF, CR or FF anywhere is an error, because errloop promises one point
per line.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

Value = str | int | float | bool

_FORBIDDEN_IN_NAMES = set("\t\n\v\f\r")
_INT = re.compile(r"-?(?:0|[1-9]\d*)i")
_FLOAT = re.compile(r"-?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+)?")
_TRUE = {"t", "T", "true", "True", "TRUE"}
_FALSE = {"f", "F", "false", "False", "FALSE"}
_TAG_UNESCAPE = {",": ",", '"': '"', " ": " ", "=": "="}
_NAME_UNESCAPE = {",": ",", " ": " "}


class LPSyntaxError(ValueError):
    pass


@dataclass
class ParsedPoint:
    measurement: str
    tags: dict[str, str]
    fields: dict[str, Value]
    time_ns: int | None


def _scan_name(line: str, i: int, stops: str, unescape: dict[str, str]) -> tuple[str, int]:
    out: list[str] = []
    start = i
    while i < len(line):
        c = line[i]
        if c in _FORBIDDEN_IN_NAMES:
            raise LPSyntaxError(f"control character {c!r} at {i}")
        if c == "\\":
            if i + 1 >= len(line):
                raise LPSyntaxError("trailing backslash")
            nxt = line[i + 1]
            if nxt in _FORBIDDEN_IN_NAMES:
                raise LPSyntaxError(f"escaped control character at {i}")
            out.append(unescape.get(nxt, "\\" + nxt))
            i += 2
            continue
        if c in stops:
            break
        out.append(c)
        i += 1
    if i == start:
        raise LPSyntaxError(f"empty name at {i}")
    return "".join(out), i


def _scan_string(line: str, i: int) -> tuple[str, int]:
    assert line[i] == '"'
    i += 1
    out: list[str] = []
    while i < len(line):
        c = line[i]
        if c in "\n\r\f":
            raise LPSyntaxError(f"raw {c!r} inside a string field at {i}")
        if c == "\\":
            nxt = line[i + 1] if i + 1 < len(line) else ""
            if nxt not in ('"', "\\"):
                raise LPSyntaxError(f"invalid escape \\{nxt} in a string field at {i}")
            out.append(nxt)
            i += 2
            continue
        if c == '"':
            return "".join(out), i + 1
        out.append(c)
        i += 1
    raise LPSyntaxError("unterminated string field")


def _scan_value(line: str, i: int) -> tuple[Value, int]:
    if i < len(line) and line[i] == '"':
        return _scan_string(line, i)
    j = i
    while j < len(line) and line[j] not in ", ":
        j += 1
    token = line[i:j]
    if _INT.fullmatch(token):
        return int(token[:-1]), j
    if _FLOAT.fullmatch(token):
        return float(token), j
    if token in _TRUE:
        return True, j
    if token in _FALSE:
        return False, j
    raise LPSyntaxError(f"bad field value {token!r}")


def parse_line(line: str) -> ParsedPoint:
    """One line (no newline inside) → its point; LPSyntaxError on anything Telegraf would not read the same."""
    if "\n" in line or "\r" in line or "\f" in line:
        raise LPSyntaxError("line holds a line break")
    if not line or line.startswith("#"):
        raise LPSyntaxError("empty line or comment")
    measurement, i = _scan_name(line, 0, ", ", _NAME_UNESCAPE)
    tags: dict[str, str] = {}
    while i < len(line) and line[i] == ",":
        key, i = _scan_name(line, i + 1, ",= ", _TAG_UNESCAPE)
        if i >= len(line) or line[i] != "=":
            raise LPSyntaxError(f"tag {key!r} without '='")
        value, i = _scan_name(line, i + 1, ",= ", _TAG_UNESCAPE)
        tags[key] = value
    if i >= len(line) or line[i] != " ":
        raise LPSyntaxError(f"expected a space before the fields at {i}")
    i += 1
    fields: dict[str, Value] = {}
    while True:
        key, i = _scan_name(line, i, ",= ", _TAG_UNESCAPE)
        if i >= len(line) or line[i] != "=":
            raise LPSyntaxError(f"field {key!r} without '='")
        field_value, i = _scan_value(line, i + 1)
        fields[key] = field_value
        if i < len(line) and line[i] == ",":
            i += 1
            continue
        break
    time_ns: int | None = None
    if i < len(line):
        if line[i] != " ":
            raise LPSyntaxError(f"unexpected {line[i]!r} at {i}")
        token = line[i + 1 :]
        if not re.fullmatch(r"-?\d{1,19}", token):
            raise LPSyntaxError(f"bad timestamp {token!r}")
        time_ns = int(token)
    return ParsedPoint(measurement, tags, fields, time_ns)
