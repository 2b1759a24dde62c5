"""The write side of one UDF connection: counters, the locked writer, the handler's emitter.

Every response (points, control replies, keepalives) goes through one :class:`Writer`, which
holds one lock and one buffer. Writes from the connection's serving thread are buffered and
flushed by it before it reads again (so a burst costs one syscall, and a point never waits
for the next keepalive); writes from any other thread are flushed at once. After the peer
goes away (EPIPE, reset) the writer drops everything and says so once on stderr.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, fields
from typing import Final

from errloop.udf.agent import udf_pb2
from errloop.udf.agent.framing import encode_uvarint

log = logging.getLogger("errloop.udf")

# protobuf keys (field number << 3 | wire type 2) of the Response oneof members we write by hand
_KEY_BEGIN: Final = b"\x82\x01"  # 16
_KEY_POINT: Final = b"\x8a\x01"  # 17
_KEY_END: Final = b"\x92\x01"  # 18
FLUSH_AT: Final = 64 * 1024  # buffered bytes that force a flush even mid-burst
_HEADS_UP_TO: Final = 1 << 14  # point sizes whose frame head is remembered (two-byte sizes: 16k heads at most)
_heads: dict[int, bytes] = {}
HEADS: Final = _heads  # read-only outside: point_head(n) is HEADS.get(n) when that is not None (a cache)


def point_head(size: int) -> bytes:
    """The bytes before a serialized Point of ``size`` bytes that make it a framed ``Response(point=...)``.

    ``point_head(len(p)) + p`` is what :meth:`Emitter.point_bytes` writes for ``p``; a run
    of these joined goes out through :meth:`Emitter.point_frames`.
    """
    head = _heads.get(size)
    if head is None:
        inner = encode_uvarint(size)
        head = encode_uvarint(len(_KEY_POINT) + len(inner) + size) + _KEY_POINT + inner
        if size < _HEADS_UP_TO:
            _heads[size] = head
    return head


@dataclass(slots=True)
class Counters:
    """What one connection did; readable by the handler, logged when the connection ends."""

    points_in: int = 0
    points_out: int = 0
    batches_in: int = 0
    batches_out: int = 0
    errors: int = 0  # handler exceptions on data (points/batches skipped)
    keepalives: int = 0
    protocol_errors: int = 0  # undecodable or empty requests, framing errors
    dropped_writes: int = 0  # responses lost because the peer had gone

    def summary(self) -> str:
        """``name=value`` pairs for the log."""
        return " ".join(f"{f.name}={getattr(self, f.name)}" for f in fields(self))


class Writer:
    """Length-prefixed, lock-protected writes to the protocol stream.

    Pending output is a list of parts, joined once when flushed: a part (a point's bytes, a
    run of framed points) is copied once on its way out, not once into a buffer and again
    out of it.
    """

    __slots__ = ("_lock", "_parts", "_sink", "_size", "broken", "counters", "deferred_thread", "last_flush")

    def __init__(self, sink: Callable[[bytes], object], counters: Counters) -> None:
        self._sink = sink
        self._lock = threading.Lock()
        self._parts: list[bytes] = []
        self._size = 0  # bytes in _parts
        self.counters = counters
        self.broken = False
        self.last_flush = time.monotonic()
        # writes from this thread are buffered until flush(); others flush immediately
        self.deferred_thread: int | None = None

    def write_message(self, body: bytes, *, flush: bool = True) -> None:
        """Write one serialized Response."""
        self._write((encode_uvarint(len(body)), body), flush)

    def write_member(self, key: bytes, payload: bytes) -> None:
        """Write a Response whose only content is the oneof member ``key`` holding ``payload``.

        Byte-for-byte what ``Response(point=p).SerializeToString()`` gives, without the copy.
        Counts points and ended batches (under the lock, so several emitting threads are fine).
        """
        size = encode_uvarint(len(payload))
        prefix = encode_uvarint(len(key) + len(size) + len(payload))
        flush = threading.get_ident() != self.deferred_thread
        with self._lock:
            if self.broken:
                self.counters.dropped_writes += 1
                return
            self._parts += (prefix, key, size, payload)
            self._size += len(prefix) + len(key) + len(size) + len(payload)
            if key == _KEY_POINT:
                self.counters.points_out += 1
            elif key == _KEY_END:
                self.counters.batches_out += 1
            if flush or self._size >= FLUSH_AT:
                self._flush_locked()

    def write_frames(self, frames: bytes, points: int) -> None:
        """Write ``points`` already framed point Responses (a pass-through run), counted as points out."""
        flush = threading.get_ident() != self.deferred_thread
        with self._lock:
            if self.broken:
                self.counters.dropped_writes += points
                return
            self.counters.points_out += points
            if not self._parts and (flush or len(frames) >= FLUSH_AT):
                self._send_locked(frames)  # nothing to keep in order before it: no copy
                return
            self._parts.append(frames)
            self._size += len(frames)
            if flush or self._size >= FLUSH_AT:
                self._flush_locked()

    def _write(self, parts: tuple[bytes, ...], flush: bool) -> None:
        with self._lock:
            if self.broken:
                self.counters.dropped_writes += 1
                return
            self._parts += parts
            self._size += sum(map(len, parts))
            if flush or self._size >= FLUSH_AT:
                self._flush_locked()

    def flush(self) -> None:
        """Send everything buffered."""
        with self._lock:
            if self._parts and not self.broken:
                self._flush_locked()
            else:
                self.last_flush = time.monotonic()

    def _flush_locked(self) -> None:
        parts = self._parts
        data = parts[0] if len(parts) == 1 else b"".join(parts)
        parts.clear()
        self._size = 0
        self._send_locked(data)

    def _send_locked(self, data: bytes) -> None:
        self.last_flush = time.monotonic()
        try:
            self._sink(data)
        except OSError as exc:
            self.broken = True
            self.counters.dropped_writes += 1
            log.warning("protocol stream closed by the peer (%s); dropping further output", exc)


class Emitter:
    """What a handler uses to send data to Kapacitor; safe to call from any thread."""

    __slots__ = ("_writer", "counters")

    def __init__(self, writer: Writer) -> None:
        self._writer = writer
        self.counters = writer.counters

    def point(self, point: udf_pb2.Point) -> None:
        """Emit one point (stream output, or a point inside an open batch)."""
        self._writer.write_member(_KEY_POINT, point.SerializeToString())

    def point_bytes(self, payload: bytes) -> None:
        """Emit one point given as its serialized ``Point``."""
        self._writer.write_member(_KEY_POINT, payload)

    def point_frames(self, frames: bytes, points: int) -> None:
        """Emit ``points`` points given as framed point Responses, joined (see :func:`point_head`)."""
        self._writer.write_frames(frames, points)

    def begin_batch(self, begin: udf_pb2.BeginBatch) -> None:
        """Open an output batch."""
        self._writer.write_member(_KEY_BEGIN, begin.SerializeToString())

    def end_batch(self, end: udf_pb2.EndBatch) -> None:
        """Close the open output batch; Kapacitor emits it with end.name, end.tags and end.tmax."""
        self._writer.write_member(_KEY_END, end.SerializeToString())

    def flush(self) -> None:
        """Send buffered output now (the runtime does this itself; rarely needed)."""
        self._writer.flush()
