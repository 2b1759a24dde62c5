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
from collections.abc import Container, Iterable, Mapping, Sequence
from typing import Final

from errloop.rules.contract import CONTROL_PICTURES, RESTORE_TABLE, restore_newlines

__all__ = [
    "CONTROL_PICTURES",
    "MAX_STRING_BYTES",
    "RESTORE_TABLE",
    "LineProtocolError",
    "SeriesEncoder",
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


class SeriesEncoder:
    """:func:`encode` for many points of one measurement with fixed tag keys, faster and byte for byte the same.

    The escaped ``measurement,tags`` head of each series is made once (at most
    ``max_series`` remembered), every field key is checked and escaped once, and the
    encoded ``key=value`` of the fields named in ``repeated`` (texts a log repeats: stacks,
    templates, frames) is remembered while short enough (at most ``max_repeated``).
    """

    def __init__(
        self,
        measurement: str,
        tag_keys: Sequence[str],
        *,
        repeated: Iterable[str] = (),
        max_series: int = 4096,
        max_repeated: int = 4096,
        repeated_chars: int = 8192,
    ) -> None:
        self.measurement = _measurement(measurement)
        self.tag_keys = tuple(sorted(tag_keys))
        self._tag_heads = tuple(f",{_key('tag key', k)}=" for k in self.tag_keys)
        self.repeated = frozenset(repeated)
        self.max_series = max_series
        self.max_repeated = max_repeated
        self.repeated_chars = repeated_chars
        self._heads: dict[tuple[object, ...], str] = {}
        self._field_keys: dict[str, str] = {}
        self._fragments: dict[str, dict[str, str]] = {k: {} for k in self.repeated}
        self._fragment_count = 0

    def head(self, tags: Mapping[str, object]) -> str:
        """``measurement,k=v,…`` of a point with these tags (keys outside ``tag_keys`` are not looked at)."""
        values = tuple(tags.get(k, "") for k in self.tag_keys)
        head = self._heads.get(values)
        if head is not None:
            return head
        parts = [self.measurement]
        for prefix, key, value in zip(self._tag_heads, self.tag_keys, values, strict=True):
            if not isinstance(value, str):
                raise LineProtocolError(f"tag {key!r}: value must be a str, got {type(value).__name__}")
            escaped = escape_tag_value(value)
            if escaped:
                parts.append(prefix + escaped)
        head = "".join(parts)
        if len(self._heads) >= self.max_series:
            self._heads.clear()
        self._heads[values] = head
        return head

    def _field_key(self, key: str) -> str:
        escaped = _key("field key", key)
        if len(self._field_keys) < 1024:
            self._field_keys[key] = escaped + "="
        return escaped + "="

    def fields(self, fields: Mapping[str, object], skip: Container[str] = ()) -> str:
        """The ``k=v,…`` part of a point: ``fields`` in their order, keys in ``skip`` left out."""
        out = []
        keys = self._field_keys
        fragments = self._fragments
        for key, value in fields.items():
            if key in skip:
                continue
            remembered = fragments.get(key)
            if remembered is not None and type(value) is str:
                fragment = remembered.get(value)
                if fragment is None:
                    fragment = (keys.get(key) or self._field_key(key)) + escape_string_field(value)
                    if len(value) <= self.repeated_chars:
                        if self._fragment_count >= self.max_repeated:
                            for memo in fragments.values():
                                memo.clear()
                            self._fragment_count = 0
                        remembered[value] = fragment
                        self._fragment_count += 1
                out.append(fragment)
                continue
            kind = type(value)
            if kind is str:
                encoded = escape_string_field(value)  # type: ignore[arg-type]
            elif kind is int and _INT_MIN <= value <= _INT_MAX:  # type: ignore[operator]
                encoded = f"{value}i"
            else:
                encoded = _field_value(key, value)
            out.append((keys.get(key) or self._field_key(key)) + encoded)
        if not out:
            raise LineProtocolError(f"point of {self.measurement!r} has no fields")
        return ",".join(out)

    def line(self, head: str, fields: Mapping[str, object], time_ns: int | None, skip: Container[str] = ()) -> str:
        """One line: ``head`` (from :meth:`head`), the fields (without the keys in ``skip``) and the time."""
        body = self.fields(fields, skip)
        if time_ns is None:
            return f"{head} {body}"
        if type(time_ns) is not int or not _INT_MIN <= time_ns <= _INT_MAX:
            raise LineProtocolError(f"timestamp {time_ns!r} is not a signed 64-bit integer")
        return f"{head} {body} {time_ns}"
