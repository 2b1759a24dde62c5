"""Kapacitor's wire framing: an unsigned varint length prefix before each protobuf message.

reference/tick-facts.md §1.1. The prefix is Go's ``binary.PutUvarint``: base 128, least
significant group first, high bit set on every byte but the last. Kapacitor reads it with
``binary.ReadUvarint`` and then exactly that many bytes.

Decoding works on a growing buffer (:class:`FrameDecoder`): feed it whatever the pipe or
socket returned, take out every complete frame. A clean end of input at a frame boundary is
the end of the stream; an end of input inside a prefix or a body is a :class:`FramingError`,
and so is a prefix wider than 32 bits or a size above ``max_size``.
"""

from __future__ import annotations

from typing import Final

MAX_PREFIX_BYTES: Final = 5  # 5 x 7 bits covers 32 bits; a longer prefix is rejected
MAX_FRAME_SIZE: Final = 64 * 1024 * 1024  # no Kapacitor message comes near this
_MAX_UINT32: Final = 0xFFFF_FFFF

_ONE_BYTE: Final = tuple(bytes((i,)) for i in range(0x80))


class FramingError(Exception):
    """The byte stream is not a valid sequence of length-prefixed messages.

    The stream cannot be resynchronised after this: the connection has to end.
    """


def encode_uvarint(value: int) -> bytes:
    """Encode a non-negative int as a base-128 unsigned varint (Go ``binary.PutUvarint``)."""
    if value < 0x80:
        if value < 0:
            raise ValueError(f"uvarint cannot encode a negative value: {value}")
        return _ONE_BYTE[value]
    if value < 0x4000:
        return bytes(((value & 0x7F) | 0x80, value >> 7))
    out = bytearray()
    while value >= 0x80:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def frame(message: bytes) -> bytes:
    """Return ``message`` with its length prefix."""
    return encode_uvarint(len(message)) + message


def decode_uvarint(buf: bytes | bytearray | memoryview, pos: int = 0) -> tuple[int, int] | None:
    """Decode a length prefix at ``buf[pos:]``.

    Returns ``(value, position after the prefix)``, or ``None`` when the buffer ends inside
    the prefix (more input needed). Raises :class:`FramingError` for a prefix that is longer
    than 5 bytes or whose value does not fit in 32 bits.
    """
    end = len(buf)
    result = 0
    shift = 0
    i = pos
    while i < end:
        byte = buf[i]
        i += 1
        result |= (byte & 0x7F) << shift
        if byte < 0x80:
            if result > _MAX_UINT32:
                raise FramingError(f"message length prefix {result} does not fit in 32 bits")
            return result, i
        shift += 7
        if i - pos >= MAX_PREFIX_BYTES:
            raise FramingError(f"message length prefix longer than {MAX_PREFIX_BYTES} bytes (corrupt stream?)")
    return None


class FrameDecoder:
    """Split a byte stream into message bodies.

    >>> d = FrameDecoder()
    >>> d.feed(frame(b"ab") + frame(b"c")[:1])
    [b'ab']
    >>> d.feed(b"c")
    [b'c']
    >>> d.finish()  # clean end: nothing pending
    """

    __slots__ = ("_buf", "_error", "_max_size")

    def __init__(self, max_size: int = MAX_FRAME_SIZE) -> None:
        self._buf = bytearray()
        self._max_size = max_size
        self._error: FramingError | None = None

    def feed(self, data: bytes) -> list[bytes]:
        """Add input; return the complete message bodies now available, in order.

        Raises :class:`FramingError` at a broken prefix; the complete messages before it
        are returned first and the error is raised by the next call.
        """
        chunk, starts, stops = self.feed_spans(data)
        return [chunk[start:stop] for start, stop in zip(starts, stops, strict=True)]

    def feed_spans(self, data: bytes) -> tuple[bytes, list[int], list[int]]:
        """Like :meth:`feed`, without cutting the bodies out: ``(chunk, starts, stops)``.

        ``chunk`` holds every complete frame now available, prefixes included; body ``i`` is
        ``chunk[starts[i]:stops[i]]`` and frame ``i`` (with its prefix) starts where body
        ``i - 1`` stops (0 for the first). Consecutive frames can thus be forwarded as one
        slice of ``chunk``.
        """
        if self._error is not None:
            raise self._error
        held = self._buf
        if held:
            held += data
            buf: bytes | bytearray = held
        else:
            buf = data  # the usual case: nothing held back, scan the input itself (no copy)
        starts: list[int] = []
        stops: list[int] = []
        pos = 0
        end = len(buf)
        try:
            while pos < end:
                first = buf[pos]
                if first < 0x80:  # fast path: one-byte prefix
                    size, start = first, pos + 1
                elif pos + 1 < end and (second := buf[pos + 1]) < 0x80:  # two bytes: 128 B to 16 KiB (points)
                    size, start = (first & 0x7F) | (second << 7), pos + 2
                    if size > self._max_size:
                        raise FramingError(f"message of {size} bytes exceeds the limit of {self._max_size} bytes")
                else:
                    decoded = decode_uvarint(buf, pos)
                    if decoded is None:
                        break
                    size, start = decoded
                    if size > self._max_size:
                        raise FramingError(f"message of {size} bytes exceeds the limit of {self._max_size} bytes")
                stop = start + size
                if stop > end:
                    break
                starts.append(start)
                stops.append(stop)
                pos = stop
        except FramingError as exc:
            if not starts:
                if buf is data:
                    held += data  # keep the input, as a failed feed always did
                raise
            self._error = exc
        if buf is data:
            if pos < end:
                held += data[pos:]
            if not pos:
                return b"", starts, stops
            return (data if pos == end else data[:pos]), starts, stops
        if not pos:
            return b"", starts, stops
        if pos == end:
            chunk = bytes(held)
            held.clear()
        else:
            chunk = bytes(held[:pos])
            del held[:pos]
        return chunk, starts, stops

    @property
    def pending(self) -> int:
        """Bytes held that do not yet form a complete message."""
        return len(self._buf)

    def finish(self) -> None:
        """Declare the end of input; raise :class:`FramingError` if a message was cut off."""
        if self._error is not None:
            raise self._error
        if not self._buf:
            return
        decoded = decode_uvarint(self._buf)
        if decoded is None:
            raise FramingError("unexpected EOF inside a message length prefix")
        size, start = decoded
        missing = size - (len(self._buf) - start)
        raise FramingError(f"unexpected EOF, expected {missing} more bytes of a {size}-byte message")
