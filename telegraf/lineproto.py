"""InfluxDB line protocol: one point in, one ``\\n``-free line out.

The rules follow the parsers that read errloop's output: Telegraf's default influx parser
(the ragel machine behind ``inputs.execd`` with ``data_format = "influx"``), Telegraf's
``upstream`` parser (which execd feeds line by line) and InfluxDB 1.x
(reference/tick-facts.md §5.5).

Names (measurement, tag keys, field keys) are the programmer's: a bad one is refused
with :class:`LineProtocolError`. Values are data: they are made safe by fixed rules and
never refused, except numbers that no parser can hold.

==================  ======================================================================
element             rule
==================  ======================================================================
measurement         escape ``,`` and space; refused when empty, starting with ``#``, or
                    holding a backslash or a control character (TAB LF VT FF CR)
tag key, field key  escape ``,`` ``=`` and space; refused when empty, ``time``, or holding
                    a backslash or a control character
tag value           TAB LF VT FF CR become their Unicode control pictures (U+2409 …);
                    ``\\`` becomes ``/`` (no parser can carry a backslash in every
                    position of a tag value); escape ``,`` ``=`` and space; an empty
                    value drops the tag
string field        LF CR FF become their control pictures ␊ ␍ ␌ (U+240A, U+240D,
                    U+240C; see :data:`CONTROL_PICTURES`) so that a point stays on one
                    line: Telegraf's default parser refuses the escape ``\\n`` and its
                    upstream parser splits raw newlines; then ``\\`` and ``"`` are
                    escaped; values longer than :data:`MAX_STRING_BYTES` UTF-8 bytes are
                    cut on a character boundary
integer             ``42i``; refused outside signed 64 bits
float               shortest round-trip form (``repr``); NaN and ±inf are refused
bool                ``true`` / ``false``
timestamp           integer nanoseconds, signed 64 bits; ``None`` omits it
==================  ======================================================================

A consumer that wants the original line breaks back applies :func:`restore_newlines`
(``str.translate`` with :data:`RESTORE_TABLE`).
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from typing import Final

from errloop.rules.contract import CONTROL_PICTURES, RESTORE_TABLE, restore_newlines

__all__ = [
    "CONTROL_PICTURES",
    "MAX_STRING_BYTES",
    "RESTORE_TABLE",
    "LineProtocolError",
    "encode",
    "escape_string_field",
    "escape_tag_value",
    "restore_newlines",
]

MAX_STRING_BYTES: Final = 65_535
"""Longest string field value written, in UTF-8 bytes (InfluxDB 1.x keeps at most 64 KiB)."""

_INT_MIN: Final = -(2**63)
_INT_MAX: Final = 2**63 - 1
_CONTROL_IN_NAMES: Final = frozenset("\t\n\v\f\r")

_PICTURES_TABLE: Final = str.maketrans(CONTROL_PICTURES)

_TAG_VALUE_TABLE: Final = str.maketrans(
    {
        "\t": "\u2409",
        "\n": "\u240a",
        "\v": "\u240b",
        "\f": "\u240c",
        "\r": "\u240d",
        "\\": "/",
        ",": "\\,",
        "=": "\\=",
        " ": "\\ ",
    }
)
_KEY_TABLE: Final = str.maketrans({",": "\\,", "=": "\\=", " ": "\\ "})
_MEASUREMENT_TABLE: Final = str.maketrans({",": "\\,", " ": "\\ "})
_TAG_SPECIAL: Final = re.compile(r"[\t\n\v\f\r\\, =]")
_STRING_SPECIAL: Final = re.compile(r'[\\"\n\r\f]')
_NAME_CACHE_MAX: Final = 4096
_name_cache: dict[tuple[str, str], str] = {}  # (kind, name) -> escaped, for names already checked


class LineProtocolError(ValueError):
    """A point that cannot be written as line protocol; the message names the part at fault."""


def _check_name(kind: str, name: str) -> None:
    if not isinstance(name, str):
        raise LineProtocolError(f"{kind} must be a str, got {type(name).__name__}")
    if not name:
        raise LineProtocolError(f"{kind} is empty")
    if "\\" in name:
        raise LineProtocolError(f"{kind} {name!r} holds a backslash")
    if _CONTROL_IN_NAMES.intersection(name):
        raise LineProtocolError(f"{kind} {name!r} holds a control character")


def _remember(kind: str, name: str, escaped: str) -> str:
    if len(_name_cache) >= _NAME_CACHE_MAX:
        _name_cache.clear()
    _name_cache[(kind, name)] = escaped
    return escaped


def _key(kind: str, name: str) -> str:
    if not isinstance(name, str):
        _check_name(kind, name)
    escaped = _name_cache.get((kind, name))
    if escaped is not None:
        return escaped
    _check_name(kind, name)
    if name == "time":
        raise LineProtocolError(f"{kind} 'time' is reserved by InfluxDB")
    return _remember(kind, name, name.translate(_KEY_TABLE))


def _measurement(name: str) -> str:
    if not isinstance(name, str):
        _check_name("measurement", name)
    escaped = _name_cache.get(("measurement", name))
    if escaped is not None:
        return escaped
    _check_name("measurement", name)
    if name.startswith("#"):
        raise LineProtocolError(f"measurement {name!r} starts with '#', which marks a comment")
    return _remember("measurement", name, name.translate(_MEASUREMENT_TABLE))


def escape_tag_value(value: str) -> str:
    """The escaped form of a tag value; ``""`` means the tag is left out."""
    return value.translate(_TAG_VALUE_TABLE) if _TAG_SPECIAL.search(value) else value


def _cut_utf8(text: str, limit: int) -> str:
    data = text.encode("utf-8", "surrogatepass")
    if len(data) <= limit:
        return text
    return data[:limit].decode("utf-8", "ignore")


def escape_string_field(value: str) -> str:
    """The quoted form of a string field value (control pictures, escapes, length cap)."""
    if len(value) * 4 > MAX_STRING_BYTES:  # a character is at most 4 UTF-8 bytes, also after substitution
        value = _cut_utf8(value.translate(_PICTURES_TABLE), MAX_STRING_BYTES)
    if _STRING_SPECIAL.search(value) is None:
        return '"' + value + '"'
    # str.replace runs in C; str.translate with a dict table goes character by character
    if "\\" in value:
        value = value.replace("\\", "\\\\")
    if '"' in value:
        value = value.replace('"', '\\"')
    for char, picture in CONTROL_PICTURES.items():
        if char in value:
            value = value.replace(char, picture)
    return '"' + value + '"'


def _field_value(key: str, value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        if not _INT_MIN <= value <= _INT_MAX:
            raise LineProtocolError(f"field {key!r}: integer {value} is outside signed 64 bits")
        return f"{value}i"
    if isinstance(value, float):
        if not math.isfinite(value):
            raise LineProtocolError(f"field {key!r}: {value} is not a finite number")
        return repr(value)
    if isinstance(value, str):
        return escape_string_field(value)
    raise LineProtocolError(f"field {key!r}: unsupported type {type(value).__name__}")


def encode(
    measurement: str,
    tags: Mapping[str, str],
    fields: Mapping[str, str | int | float | bool],
    time_ns: int | None = None,
) -> str:
    """One point as one line of line protocol, without the trailing newline.

    Tags are sorted by key (InfluxDB's preferred order); fields keep their order.
    Raises :class:`LineProtocolError` for a bad name, no fields, or an unwritable number.
    """
    parts = [_measurement(measurement)]
    for key in sorted(tags):
        value = tags[key]
        if not isinstance(value, str):
            raise LineProtocolError(f"tag {key!r}: value must be a str, got {type(value).__name__}")
        escaped = escape_tag_value(value)
        if escaped:
            parts.append(f",{_key('tag key', key)}={escaped}")
    if not fields:
        raise LineProtocolError(f"point of {measurement!r} has no fields")
    parts.append(" ")
    parts.append(",".join(f"{_key('field key', k)}={_field_value(k, v)}" for k, v in fields.items()))
    if time_ns is not None:
        if isinstance(time_ns, bool) or not isinstance(time_ns, int) or not _INT_MIN <= time_ns <= _INT_MAX:
            raise LineProtocolError(f"timestamp {time_ns!r} is not a signed 64-bit integer")
        parts.append(f" {time_ns}")
    return "".join(parts)
