"""One UDF conversation with Kapacitor: one serving thread, and a watchdog for when it is busy.

The *serving* thread (the one calling :meth:`Connection.run`) reads the byte stream, splits
it into frames, answers keepalives, and calls the handler with everything else, in order:
no queue and no second thread in the hot path, so no hand-off and no GIL contention per
batch. It reads again once it has handled what it read (flushing its output first).

The *watchdog* thread sleeps in ticks of ``takeover_s / 2``. Once the serving thread has
been inside what it read (a handler call, usually) for :data:`TAKEOVER_S`, the watchdog
reads the input in its place: it answers keepalives at once, so they are answered even
while a handler is busy, and holds every other request, framed, for the serving thread,
which takes them (in order, before reading again) when it is done. The two never read at
the same time (``_input_lock``); whichever reads sees end of input or a broken stream and
records it for the serving thread.

Points skip the parse when the handler allows it (:func:`point_mode`): a pass-through
handler gets runs of point frames forwarded as they are (:data:`FORWARD`; a ``Request``
holding only a point is byte for byte the ``Response`` holding it), a handler with
``POINT_BYTES`` gets runs of at most :data:`BATCH_MAX` serialized points (:data:`BYTES`,
:meth:`Handler.points_bytes`).

Back-pressure: the watchdog holds at most ``QUEUE_BATCHES * BATCH_MAX`` requests (plus one
read); then it stops reading, so Kapacitor's writes block instead of this process growing.
While it waits, it sends an unsolicited KeepaliveResponse every :data:`HEARTBEAT_S` seconds
(Kapacitor resets its watchdog on any response; a keepalive reply is otherwise a no-op for
it), and warns on stderr when the handler has made no progress for :data:`STALL_WARN_S`
seconds.

Failure rules (DESIGN.md §5, "a UDF must never take its task down"):

- an exception in ``point``/``begin_batch``/``end_batch`` is counted, logged with its
  traceback (the first :data:`TRACEBACKS` in full, then one summary line per
  :data:`SUMMARY_EVERY_S` seconds) and the message is skipped; no ErrorResponse;
- invalid options or an exception in ``init`` -> ``InitResponse(success=False, error=...)``;
- an exception in ``snapshot`` -> empty ``SnapshotResponse`` (Kapacitor keeps the old one);
- an exception in ``restore`` -> a fresh handler, initialised with the same options, and
  ``RestoreResponse(success=True)``;
- a request that does not parse is counted and skipped (the framing is intact);
- a broken framing (prefix > 32 bits, absurd size, EOF inside a message) ends the
  connection with an ErrorResponse and exit status 2;
- end of input at a message boundary: handle what was read, ``close()`` the handler, flush,
  status 0.
"""

from __future__ import annotations

import gc
import logging
import operator
import threading
import time
import traceback
from collections import deque
from collections.abc import Callable
from typing import Final, NamedTuple

from google.protobuf.message import DecodeError

from errloop.udf.agent import udf_pb2
from errloop.udf.agent.framing import FrameDecoder, FramingError, decode_uvarint
from errloop.udf.agent.handler import Handler, InitError
from errloop.udf.agent.options import Info, OptionError, Options, parse_options
from errloop.udf.agent.output import Counters, Emitter, Writer

log = logging.getLogger("errloop.udf")

HandlerFactory = Callable[[Emitter], Handler]


class RawPoints(NamedTuple):
    """Consecutive point requests left unparsed, for a handler that passes points through.

    ``frames`` is a slice of the input stream (length prefixes included). Each frame is a
    ``Request`` whose only content is its ``point`` member: byte for byte the ``Response``
    carrying the same point (both oneofs put ``point`` at field 17), so it is written out as is.
    """

    frames: bytes
    points: int


Batch = list[tuple[str, udf_pb2.Request | RawPoints | list[bytes]]]

READ_SIZE: Final = 64 * 1024  # bytes per read (256 KiB reads: +2-3 MiB of RSS, mirror ~40% more CPU per point)
BATCH_MAX: Final = 256  # points per run handed to Handler.points_bytes
QUEUE_BATCHES: Final = 4  # the watchdog holds at most BATCH_MAX * QUEUE_BATCHES requests for a busy handler
HEARTBEAT_S: Final = 1.0
TAKEOVER_S: Final = 0.04  # the watchdog reads input once the serving thread has been busy this long
STALL_WARN_S: Final = 30.0
FLUSH_EVERY_S: Final = 0.05  # flush at least this often while input keeps coming
TRACEBACKS: Final = 5
SUMMARY_EVERY_S: Final = 10.0

EXIT_OK: Final = 0
EXIT_PROTOCOL: Final = 2

_DATA: Final = frozenset({"point", "begin", "end"})
RAW: Final = "raw"  # batch item kind: RawPoints
POINT_BYTES: Final = "point_bytes"  # batch item kind: a list of serialized Points, for Handler.points_bytes

# how framing hands points to the current handler
PARSE: Final = 0  # a parsed Request each
FORWARD: Final = 1  # runs of unparsed frames, written out as they are (passes_points_through)
BYTES: Final = 2  # runs of Points' bytes, unparsed (Handler.POINT_BYTES)


def passes_points_through(handler: Handler) -> bool:
    """True when ``handler.point`` is :meth:`Handler.point` (emit unchanged): points may skip parsing."""
    return type(handler).point is Handler.point


def point_mode(handler: Handler) -> int:
    """:data:`FORWARD`, :data:`BYTES` or :data:`PARSE`: how points reach ``handler``."""
    kind = type(handler)
    if passes_points_through(handler) and (
        kind.point_bytes is Handler.point_bytes and kind.points_bytes is Handler.points_bytes
    ):
        return FORWARD
    return BYTES if handler.POINT_BYTES else PARSE


def _point_payload(buf: bytes, start: int, stop: int) -> int:
    """Where the Point starts if ``buf[start:stop]`` is a Request holding exactly one ``point`` member; else -1."""
    if stop - start < 3 or buf[start] != 0x8A or buf[start + 1] != 0x01:
        return -1
    size = buf[start + 2]
    if size < 0x80:
        return start + 3 if start + 3 + size == stop else -1
    if stop - start > 4 and buf[start + 3] < 0x80:  # two-byte size: points of 128 B to 16 KiB
        return start + 4 if start + 4 + ((size & 0x7F) | (buf[start + 3] << 7)) == stop else -1
    try:
        decoded = decode_uvarint(buf, start + 2)
    except FramingError:
        return -1
    if decoded is None or decoded[0] + decoded[1] != stop:
        return -1
    return decoded[1]


class ErrorReporter:
    """Logs handler exceptions without flooding stderr on a poison stream."""

    def __init__(self, label: str, tracebacks: int = TRACEBACKS, every_s: float = SUMMARY_EVERY_S) -> None:
        self.label = label
        self._tracebacks = tracebacks
        self._every_s = every_s
        self._logged = 0
        self._suppressed = 0
        self._last_summary = time.monotonic()
        self._last_error = ""

    def report(self, what: str, exc: BaseException) -> None:
        """Record one exception raised while handling ``what``."""
        self._last_error = f"{type(exc).__name__}: {exc}"
        if self._logged < self._tracebacks:
            self._logged += 1
            text = "".join(traceback.format_exception(exc)).rstrip()
            more = " (further tracebacks suppressed)" if self._logged == self._tracebacks else ""
            log.error("%s: %s skipped, handler raised%s\n%s", self.label, what, more, text)
            return
        self._suppressed += 1
        now = time.monotonic()
        if now - self._last_summary >= self._every_s:
            self.flush_summary(now)

    def flush_summary(self, now: float | None = None) -> None:
        """Log the count of suppressed errors, if any."""
        if self._suppressed:
            log.error(
                "%s: %d more data messages skipped after handler errors; last: %s",
                self.label,
                self._suppressed,
                self._last_error,
            )
            self._suppressed = 0
        self._last_summary = time.monotonic() if now is None else now


class Connection:
    """Serve one Kapacitor conversation until its input ends."""

    def __init__(
        self,
        factory: HandlerFactory,
        read: Callable[[int], bytes],
        sink: Callable[[bytes], object],
        label: str = "udf",
        *,
        queue_batches: int = QUEUE_BATCHES,
        batch_max: int = BATCH_MAX,
        heartbeat_s: float = HEARTBEAT_S,
        takeover_s: float = TAKEOVER_S,
    ) -> None:
        self.label = label
        self.counters = Counters()
        self.writer = Writer(sink, self.counters)
        self.emitter = Emitter(self.writer)
        self._factory = factory
        self._read = read
        self.handler = factory(self.emitter)
        self._point_mode = point_mode(self.handler)  # read when framing, set after a control request
        self._options: Options | None = None
        self._batch_max = batch_max
        self._heartbeat_s = heartbeat_s
        self._takeover_s = takeover_s
        self._tick = min(takeover_s / 2, heartbeat_s)  # the watchdog's sleep between looks
        self._errors = ErrorReporter(label)
        self._last_keepalive = 0
        self._progress = 0  # batches handled
        # the input side: whoever holds _input_lock reads and frames (the serving thread, or the
        # watchdog while the serving thread is busy); what the watchdog framed waits in _pending
        self._decoder = FrameDecoder()
        self._input_lock = threading.Lock()
        self._pending: deque[Batch] = deque()
        self._pending_lock = threading.Lock()
        self._pending_requests = 0  # requests in _pending (each point counts)
        self._max_pending = queue_batches * batch_max
        self._input_end: BaseException | bool = False  # True: EOF; an exception: reading failed
        self._busy_since = 0.0  # monotonic time the serving thread stopped reading; 0.0 while it reads
        self.watchdog_reads = 0  # reads the watchdog made for a busy serving thread
        self._done = threading.Event()
        self._watchdog = threading.Thread(target=self._watch, name=f"{label}-watchdog", daemon=True)

    # ----------------------------------------------------------------------------- serving thread

    def run(self) -> int:
        """Serve until end of input; return the exit status (0 clean, 2 broken stream)."""
        writer = self.writer
        writer.deferred_thread = threading.get_ident()
        self._watchdog.start()
        status = EXIT_OK
        broken: str | None = None
        try:
            self._serve()
        except FramingError as exc:
            status, broken = EXIT_PROTOCOL, str(exc)
            self.counters.protocol_errors += 1
            log.error("%s: %s", self.label, exc)
        except OSError as exc:
            status = EXIT_PROTOCOL
            log.error("%s: reading the request stream failed: %s", self.label, exc)
        finally:
            self._done.set()
            self._busy_since = 0.0
        self._watchdog.join(self._heartbeat_s + self._takeover_s + 1.0)  # (it can only be stuck in a read)
        try:
            self.handler.close()
        except Exception as exc:
            self.counters.errors += 1
            self._errors.report("close", exc)
        self._errors.flush_summary()
        if broken is not None:  # after everything that arrived whole has been handled
            self._send_error(f"errloop udf: broken request stream: {broken}")
        writer.flush()
        log.info("%s: input closed, done: %s", self.label, self.counters.summary())
        return status

    def _serve(self) -> None:
        """Read, frame and handle, in this thread, until the input ends."""
        writer = self.writer
        while True:
            batch = self._take_pending()
            if batch is None:
                lock = self._input_lock
                if not lock.acquire(blocking=False):
                    writer.flush()  # the watchdog is in a read: what was handled goes out while it waits
                    lock.acquire()
                try:
                    batch = self._take_pending()  # the watchdog may have framed some meanwhile
                    if batch is None:
                        end = self._input_end
                        if end is True:
                            self._decoder.finish()
                            return
                        if end:
                            raise end
                        writer.flush()  # everything handled so far goes out before a read that may wait
                        data = self._read(READ_SIZE)
                        if not data:
                            self._input_end = True
                            self._decoder.finish()
                            return
                        batch = self._frame(data)
                finally:
                    lock.release()
            self._busy_since = time.monotonic()
            self._handle(batch)
            self._progress += 1
            self._busy_since = 0.0

    def _take_pending(self) -> Batch | None:
        """Everything the watchdog framed meanwhile, as one batch (None if nothing)."""
        if not self._pending:
            return None
        with self._pending_lock:
            batch = [item for held in self._pending for item in held]
            self._pending.clear()
            self._pending_requests = 0
        return batch

    def _frame(self, data: bytes) -> Batch:
        """Split ``data`` (and what was left of the last read) into requests; answer keepalives now.

        Points come as runs (``POINT_BYTES`` items of at most ``batch_max`` points, or
        :class:`RawPoints`) or one parsed Request each, by the current handler's mode.
        """
        chunk, starts, stops = self._decoder.feed_spans(data)
        request_cls = udf_pb2.Request
        counters = self.counters
        batch_max = self._batch_max
        batch: Batch = []
        mode = self._point_mode
        run_from = -1  # frame start of the current run of unparsed points (FORWARD)
        run_count = 0
        payloads: list[bytes] = []  # the current run of points (BYTES)
        frame_start = 0
        for start, stop in zip(starts, stops, strict=True):
            if mode:
                # _point_payload, with its usual case (a point of 128 B to 16 KiB) inline
                if (
                    stop - start > 4
                    and chunk[start] == 0x8A
                    and chunk[start + 1] == 0x01
                    and (size := chunk[start + 2]) >= 0x80
                    and chunk[start + 3] < 0x80
                    and start + 4 + ((size & 0x7F) | (chunk[start + 3] << 7)) == stop
                ):
                    payload = start + 4
                else:
                    payload = _point_payload(chunk, start, stop)
                if payload >= 0:
                    if mode == BYTES:
                        payloads.append(chunk[payload:stop])
                        if len(payloads) >= batch_max:
                            batch.append((POINT_BYTES, payloads))
                            payloads = []
                    elif run_count == 0:
                        run_from = frame_start
                        run_count = 1
                    else:
                        run_count += 1
                    frame_start = stop
                    continue
            if payloads:
                batch.append((POINT_BYTES, payloads))
                payloads = []
            if run_count:
                batch.append((RAW, RawPoints(chunk[run_from:frame_start], run_count)))
                run_count = 0
            frame_start = stop
            body = chunk[start:stop]
            req = request_cls()  # a fresh parse target per message, never reused
            try:
                req.ParseFromString(body)
            except DecodeError as exc:
                counters.protocol_errors += 1
                log.error("%s: skipping a request that does not parse (%d bytes): %s", self.label, len(body), exc)
                continue
            kind = req.WhichOneof("message")
            if kind == "keepalive":
                self._answer_keepalive(req.keepalive.time)
            elif kind is None:
                counters.protocol_errors += 1
                log.warning("%s: skipping an empty or unknown request (%d bytes)", self.label, len(body))
            else:
                batch.append((kind, req))
        if payloads:
            batch.append((POINT_BYTES, payloads))
        if run_count:
            batch.append((RAW, RawPoints(chunk[run_from:frame_start], run_count)))
        return batch

    def _answer_keepalive(self, t: int) -> None:
        self.counters.keepalives += 1
        self._last_keepalive = t
        self.writer.write_message(udf_pb2.Response(keepalive=udf_pb2.KeepaliveResponse(time=t)).SerializeToString())

    def _send_error(self, text: str) -> None:
        self.writer.write_message(udf_pb2.Response(error=udf_pb2.ErrorResponse(error=text)).SerializeToString())

    def _handle(self, batch: Batch) -> None:
        """Hand every request of ``batch`` to the handler, in order."""
        writer = self.writer
        counters = self.counters
        errors = self._errors
        monotonic = time.monotonic
        handler = self.handler
        for kind, req in batch:
            if kind == POINT_BYTES:
                assert isinstance(req, list)
                counters.points_in += len(req)
                self._points_bytes(handler, req)
            elif kind == RAW:
                assert isinstance(req, RawPoints)
                self._raw(handler, req)
            elif kind == "point":
                counters.points_in += 1
                try:
                    handler.point(req.point)  # type: ignore[union-attr]
                except Exception as exc:
                    counters.errors += 1
                    errors.report("point", exc)
            elif kind in _DATA:
                assert isinstance(req, udf_pb2.Request)
                self._data(handler, kind, req)
            else:
                assert isinstance(req, udf_pb2.Request)
                self._control(kind, req)
                handler = self.handler  # restore may have replaced it
                self._point_mode = point_mode(handler)
            if monotonic() - writer.last_flush >= FLUSH_EVERY_S:  # slow handler or endless input
                writer.flush()

    # ----------------------------------------------------------------------------- watchdog

    def _watch(self) -> None:
        """Read for the serving thread while it is busy for long, so keepalives are still answered."""
        monotonic = time.monotonic
        while not self._done.wait(self._tick):
            since = self._busy_since
            if since and monotonic() - since >= self._takeover_s and self._input_end is False:
                self._read_while_busy(since)

    def _read_while_busy(self, since: float) -> None:
        """Read, frame (answering keepalives) and hold input while the serving thread stays busy.

        At most ``queue_batches * batch_max`` requests are held (plus one read): then reading
        stops, so Kapacitor's writes block instead of this process growing, and an unsolicited
        KeepaliveResponse goes out every ``heartbeat_s`` (Kapacitor resets its watchdog on any
        response) with a warning when the handler makes no progress for :data:`STALL_WARN_S`.
        """
        monotonic = time.monotonic
        progress, progress_at = self._progress, monotonic()
        beat_at = monotonic()
        warned = False
        while self._busy_since == since and not self._done.is_set():
            if self._pending_requests < self._max_pending and self._input_end is False:
                # blocks only while the serving thread reads, which it does only once it is no longer busy
                with self._input_lock:
                    if self._busy_since != since or self._input_end is not False:
                        return
                    self._read_held()
                continue
            if self._input_end is not False or self._done.wait(self._tick):
                return
            now = monotonic()
            if self._progress != progress:
                progress, progress_at, warned = self._progress, now, False
            if now - beat_at >= self._heartbeat_s:
                beat_at = now
                self.writer.write_message(
                    udf_pb2.Response(keepalive=udf_pb2.KeepaliveResponse(time=self._last_keepalive)).SerializeToString()
                )
            if not warned and now - progress_at > STALL_WARN_S:
                warned = True
                log.warning(
                    "%s: handler has made no progress for %.0fs (input is held back)", self.label, now - progress_at
                )

    def _read_held(self) -> None:
        """One read for the busy serving thread (call with the input lock held)."""
        self.watchdog_reads += 1
        try:
            data = self._read(READ_SIZE)
            if not data:
                self._input_end = True
                return
            batch = self._frame(data)
        except (FramingError, OSError) as exc:  # the serving thread raises it once it has handled the rest
            self._input_end = exc
            return
        if batch:
            held = 0
            for _, req in batch:
                held += len(req) if isinstance(req, list) else 1
            with self._pending_lock:
                self._pending.append(batch)
                self._pending_requests += held

    # ----------------------------------------------------------------------------- handler calls

    def _points_bytes(self, handler: Handler, payloads: list[bytes]) -> None:
        """A run of points to ``handler.points_bytes``; a point it raises on is counted and skipped."""
        points = iter(payloads)
        left = len(payloads)
        while left:
            try:
                handler.points_bytes(points)
                return
            except Exception as exc:
                self.counters.errors += 1
                self._errors.report("point", exc)
            now_left = operator.length_hint(points)
            if now_left == left:  # it raised before taking a point: the first one left is the failed one
                next(points, None)
                now_left -= 1
            left = now_left

    def _raw(self, handler: Handler, raw: RawPoints) -> None:
        self.counters.points_in += raw.points
        mode = point_mode(handler)
        if mode == FORWARD:
            self.writer.write_frames(raw.frames, raw.points)
            return
        # the handler changed after these were framed (a restore built another class): hand them over singly
        chunk, starts, stops = FrameDecoder().feed_spans(raw.frames)
        for start, stop in zip(starts, stops, strict=True):
            payload = chunk[_point_payload(chunk, start, stop) : stop]
            try:
                if mode == BYTES:
                    handler.point_bytes(payload)
                else:
                    handler.point(udf_pb2.Point.FromString(payload))
            except Exception as exc:
                self.counters.errors += 1
                self._errors.report("point", exc)

    def _data(self, handler: Handler, kind: str, req: udf_pb2.Request) -> None:
        try:
            if kind == "begin":
                self.counters.batches_in += 1
                handler.begin_batch(req.begin)
            else:
                handler.end_batch(req.end)
        except Exception as exc:
            self.counters.errors += 1
            self._errors.report("begin_batch" if kind == "begin" else "end_batch", exc)

    def _control(self, kind: str, req: udf_pb2.Request) -> None:
        resp = udf_pb2.Response()
        if kind == "info":
            try:
                resp.info.CopyFrom(self.info().to_proto())
            except Exception as exc:
                log.exception("%s: info failed", self.label)
                resp.error.error = f"info failed: {type(exc).__name__}: {exc}"
        elif kind == "init":
            error = self._init(req.init)
            resp.init.success = error is None
            if error is not None:
                resp.init.error = error
            else:
                # what init built (rules, regex sets, templates) lives as long as the handler:
                # out of the cyclic GC's walks from now on (serve.tune_gc)
                gc.freeze()
        elif kind == "snapshot":
            resp.snapshot.snapshot = self._snapshot()
        elif kind == "restore":
            self._restore(req.restore.snapshot)
            resp.restore.success = True
        else:  # a member this runtime does not know; tell Kapacitor rather than hang it
            self.counters.protocol_errors += 1
            resp.error.error = f"errloop udf: unsupported request {kind!r}"
        self.writer.write_message(resp.SerializeToString())

    def info(self) -> Info:
        """The handler's declared Info."""
        return self.handler.info()

    def _init(self, init: udf_pb2.InitRequest) -> str | None:
        handler = self.handler
        handler.task_id, handler.node_id = init.taskID, init.nodeID
        if init.taskID or init.nodeID:
            self._errors.label = f"{self.label} {init.taskID}/{init.nodeID}"
        try:
            options = parse_options(handler.info(), list(init.options))
            handler.init(options)
        except OptionError as exc:
            log.error("%s: init refused: %s", self.label, exc)
            return f"invalid options: {exc}"
        except Exception as exc:
            log.error("%s: init failed\n%s", self.label, "".join(traceback.format_exception(exc)).rstrip())
            text = str(exc) or type(exc).__name__
            return text if isinstance(exc, InitError) else f"{type(exc).__name__}: {text}"
        self._options = options
        return None

    def _snapshot(self) -> bytes:
        try:
            data = self.handler.snapshot()
            if not isinstance(data, bytes | bytearray):
                raise TypeError(f"snapshot() returned {type(data).__name__}, not bytes")
            return bytes(data)
        except Exception as exc:
            log.error(
                "%s: snapshot failed, sending an empty one\n%s",
                self.label,
                "".join(traceback.format_exception(exc)).rstrip(),
            )
            return b""

    def _restore(self, data: bytes) -> None:
        try:
            self.handler.restore(data)
            return
        except Exception as exc:
            log.error(
                "%s: restore of a %d-byte snapshot failed, starting empty\n%s",
                self.label,
                len(data),
                "".join(traceback.format_exception(exc)).rstrip(),
            )
        fresh = self._factory(self.emitter)
        fresh.task_id, fresh.node_id = self.handler.task_id, self.handler.node_id
        if self._options is not None:
            try:
                fresh.init(self._options)
            except Exception:
                log.exception("%s: re-initialising after a failed restore failed; keeping the old handler", self.label)
                return
        self.handler = fresh
