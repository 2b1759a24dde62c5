"""Edit a serialized ``Point`` by appending fields: no parse, no re-serialization.

Protobuf decoders (Kapacitor's Go one included) read a message whose fields occur more
than once as follows: a scalar (``Point.name``) takes the last value, a map takes every
entry and, for a key seen twice, the last one. So ``payload + name(...) + tag(...)`` is the
point ``payload`` renamed and with that tag set. A name must not be appended to a map
other than the one it already lives in (the point would then hold it twice); callers check.

Field numbers and wire types are those of ``udf.proto`` (``Point``): name 2, tags 7,
fieldsDouble 8, fieldsInt 9, fieldsString 10, fieldsBool 12; a map entry is a message with
key 1 (string) and value 2.
"""

from __future__ import annotations

import struct
from typing import Final

from errloop.udf.agent.framing import encode_uvarint

_NAME: Final = b"\x12"  # 2, length-delimited
_TAGS: Final = b"\x3a"  # 7
_DOUBLES: Final = b"\x42"  # 8
_INTS: Final = b"\x4a"  # 9
_STRINGS: Final = b"\x52"  # 10
_BOOLS: Final = b"\x62"  # 12
_ENTRY_KEY: Final = b"\x0a"  # entry field 1, length-delimited
_ENTRY_TEXT: Final = b"\x12"  # entry field 2, length-delimited
_ENTRY_VARINT: Final = b"\x10"  # entry field 2, varint
_ENTRY_DOUBLE: Final = b"\x11"  # entry field 2, 64-bit
_INT64: Final = (1 << 64) - 1
_DOUBLE: Final = struct.Struct("<d")
_ONE_BYTE: Final = tuple(bytes((i,)) for i in range(0x80))


def _delimited(key: bytes, data: bytes) -> bytes:
    return key + encode_uvarint(len(data)) + data


def name(value: str) -> bytes:
    """Set ``Point.name``."""
    return _delimited(_NAME, value.encode("utf-8"))


def tag(key: str, value: str) -> bytes:
    """Set ``Point.tags[key]``."""
    return _delimited(
        _TAGS, _delimited(_ENTRY_KEY, key.encode("utf-8")) + _delimited(_ENTRY_TEXT, value.encode("utf-8"))
    )


def string_field(key: str, value: str) -> bytes:
    """Set ``Point.fieldsString[key]``."""
    entry = _delimited(_ENTRY_KEY, key.encode("utf-8")) + _delimited(_ENTRY_TEXT, value.encode("utf-8"))
    return _delimited(_STRINGS, entry)


def int_field(key: str, value: int) -> bytes:
    """Set ``Point.fieldsInt[key]`` (int64: negative values as two's complement)."""
    return _delimited(
        _INTS, _delimited(_ENTRY_KEY, key.encode("utf-8")) + _ENTRY_VARINT + encode_uvarint(value & _INT64)
    )


class IntField:
    """``int_field(key, value)`` for one fixed key, faster (the key's bytes are encoded once).

    Values below 2**28 (counts: the usual case) get their varint by arithmetic, in one call.
    """

    __slots__ = ("_h1", "_h2", "_h3", "_h4", "_heads", "_key")

    def __init__(self, key: str) -> None:
        self._key = key
        head = _delimited(_ENTRY_KEY, key.encode("utf-8")) + _ENTRY_VARINT
        # everything before the value's varint, for each varint length (1..10 bytes)
        self._heads = (b"", *(_INTS + encode_uvarint(len(head) + n) + head for n in range(1, 11)))
        self._h1, self._h2, self._h3, self._h4 = self._heads[1:5]

    def __call__(self, value: int) -> bytes:
        if 0 <= value < 0x80:
            return self._h1 + _ONE_BYTE[value]
        if 0 <= value < 0x4000:
            return self._h2 + bytes(((value & 0x7F) | 0x80, value >> 7))
        if 0 <= value < 0x200000:
            return self._h3 + bytes(((value & 0x7F) | 0x80, ((value >> 7) & 0x7F) | 0x80, value >> 14))
        if 0 <= value < 0x10000000:
            return self._h4 + bytes(
                ((value & 0x7F) | 0x80, ((value >> 7) & 0x7F) | 0x80, ((value >> 14) & 0x7F) | 0x80, value >> 21)
            )
        varint = encode_uvarint(value & _INT64)
        return self._heads[len(varint)] + varint


def double_field(key: str, value: float) -> bytes:
    """Set ``Point.fieldsDouble[key]``."""
    return _delimited(_DOUBLES, _delimited(_ENTRY_KEY, key.encode("utf-8")) + _ENTRY_DOUBLE + _DOUBLE.pack(value))


def bool_field(key: str, value: bool) -> bytes:
    """Set ``Point.fieldsBool[key]``."""
    return _delimited(
        _BOOLS, _delimited(_ENTRY_KEY, key.encode("utf-8")) + _ENTRY_VARINT + (b"\x01" if value else b"\x00")
    )
