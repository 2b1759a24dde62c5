"""Points of a pass-through handler travel as bytes: framing spans, the raw path, its fallbacks."""

from __future__ import annotations

import os
import threading

import pytest
from udf_wire import keepalive, point, restore

from errloop.udf.agent import Connection, Edge, FrameDecoder, Handler, Info, frame, udf_pb2
from errloop.udf.agent.connection import passes_points_through
from errloop.udf.agent.framing import FramingError, encode_uvarint
from errloop.udf.agent.output import Counters, Writer
from errloop.udf.mirror import MirrorHandler


def run_conn(factory: type[Handler], data: bytes, **kw: int) -> tuple[Connection, bytes]:
    r, w = os.pipe()
    out = bytearray()
    lock = threading.Lock()

    def sink(b: bytes) -> None:
        with lock:
            out.extend(b)

    conn = Connection(factory, lambda n: os.read(r, n), sink, **kw)
    writer = threading.Thread(target=lambda: (os.write(w, data), os.close(w)), daemon=True)
    writer.start()
    assert conn.run() == 0
    writer.join(5)
    os.close(r)
    return conn, bytes(out)


def responses(data: bytes) -> list[udf_pb2.Response]:
    out = []
    for body in FrameDecoder().feed(data):
        r = udf_pb2.Response()
        r.ParseFromString(body)
        out.append(r)
    return out


def pts(n: int, start: int = 0) -> list[udf_pb2.Request]:
    return [point(start + i, {"host": f"h{i % 3}"}, {"message": "m" * (i % 300), "n": i}) for i in range(n)]


class Renamer(Handler):
    """Overrides point(): never gets raw points."""

    @classmethod
    def info(cls) -> Info:
        return Info(Edge.STREAM, Edge.STREAM)

    def point(self, p: udf_pb2.Point) -> None:
        p.name = "renamed"
        self.emitter.point(p)


# --- framing -----------------------------------------------------------------------------------


def test_feed_spans_gives_the_bodies_feed_gives_and_frames_are_contiguous() -> None:
    bodies = [b"", b"a", b"x" * 127, b"y" * 128, b"z" * 20_000]
    stream = b"".join(frame(b) for b in bodies)
    for cut in (1, 2, 130, 5000, len(stream)):
        spans_dec, plain_dec = FrameDecoder(), FrameDecoder()
        got: list[bytes] = []
        plain: list[bytes] = []
        for i in range(0, len(stream), cut):
            chunk, starts, stops = spans_dec.feed_spans(stream[i : i + cut])
            frame_start = 0
            for s, e in zip(starts, stops, strict=True):
                assert chunk[frame_start:e] == frame(chunk[s:e])  # prefix + body, nothing between frames
                frame_start = e
            assert frame_start == len(chunk)  # only whole frames are handed out
            got += [chunk[s:e] for s, e in zip(starts, stops, strict=True)]
            plain += plain_dec.feed(stream[i : i + cut])
        assert got == plain == bodies
        spans_dec.finish()


def test_feed_spans_returns_whole_frames_before_a_broken_prefix_then_raises() -> None:
    d = FrameDecoder()
    chunk, starts, stops = d.feed_spans(frame(b"ok") + b"\xff" * 6)
    assert [chunk[s:e] for s, e in zip(starts, stops, strict=True)] == [b"ok"]
    with pytest.raises(FramingError):
        d.feed_spans(b"")


# --- the raw path ------------------------------------------------------------------------------


def test_mirror_is_detected_as_pass_through_and_overriders_are_not() -> None:
    writer = Writer(lambda b: None, Counters())
    from errloop.udf.agent import Emitter

    assert passes_points_through(MirrorHandler(Emitter(writer)))
    assert not passes_points_through(Renamer(Emitter(writer)))


def test_pass_through_points_come_back_byte_for_byte_and_keepalives_are_answered_not_echoed() -> None:
    reqs = pts(600)
    stream = b"".join(frame(r.SerializeToString()) for r in reqs[:300])
    stream += frame(keepalive(42).SerializeToString())  # in the middle of a run of points
    stream += b"".join(frame(r.SerializeToString()) for r in reqs[300:])
    conn, out = run_conn(MirrorHandler, stream)
    got = responses(out)
    assert [r.WhichOneof("message") for r in got].count("keepalive") == 1
    assert next(r for r in got if r.WhichOneof("message") == "keepalive").keepalive.time == 42
    points = [r for r in got if r.WhichOneof("message") == "point"]
    assert [p.point for p in points] == [r.point for r in reqs]
    # the point frames are the request frames, unchanged
    assert out.replace(
        frame(udf_pb2.Response(keepalive=udf_pb2.KeepaliveResponse(time=42)).SerializeToString()), b""
    ) == (b"".join(frame(r.SerializeToString()) for r in reqs))
    assert (conn.counters.points_in, conn.counters.points_out) == (600, 600)


def test_pass_through_keeps_points_in_order_with_batches() -> None:
    reqs = [
        *pts(3),
        udf_pb2.Request(begin=udf_pb2.BeginBatch(name="b", size=2)),
        *pts(2, start=10),
        udf_pb2.Request(end=udf_pb2.EndBatch(name="b", tmax=11)),
        *pts(2, start=20),
    ]
    conn, out = run_conn(MirrorHandler, b"".join(frame(r.SerializeToString()) for r in reqs), batch_max=2)
    got = responses(out)
    assert [r.WhichOneof("message") for r in got] == [str(r.WhichOneof("message")) for r in reqs]
    assert [r.point.time for r in got if r.WhichOneof("message") == "point"] == [0, 1, 2, 10, 11, 20, 21]
    assert (conn.counters.batches_in, conn.counters.batches_out) == (1, 1)


def test_a_frame_with_more_than_one_point_member_is_parsed_not_forwarded() -> None:
    first, second = pts(2, start=5)
    body = first.SerializeToString() + second.SerializeToString()  # protobuf: the last point wins
    conn, out = run_conn(MirrorHandler, frame(body))
    [resp] = responses(out)
    assert resp.point == second.point
    assert frame(body) != out
    assert conn.counters.points_out == 1


def test_undecodable_frames_are_still_counted_with_a_pass_through_handler() -> None:
    good = pts(1)[0]
    conn, out = run_conn(MirrorHandler, frame(b"\xff\xff\xff") + frame(b"") + frame(good.SerializeToString()))
    assert conn.counters.protocol_errors == 2
    assert [r.point for r in responses(out)] == [good.point]


def test_points_queued_raw_go_through_point_if_a_restore_brings_another_handler() -> None:
    made: list[str] = []

    class BadRestoreMirror(MirrorHandler):
        def restore(self, data: bytes) -> None:
            raise ValueError("corrupt")

    def factory(emitter):  # type: ignore[no-untyped-def]
        made.append("x")
        return BadRestoreMirror(emitter) if len(made) == 1 else Renamer(emitter)

    reqs = [*pts(2), restore(b"junk"), *pts(3, start=10)]
    conn, out = run_conn(factory, b"".join(frame(r.SerializeToString()) for r in reqs))
    got = [r for r in responses(out) if r.WhichOneof("message") == "point"]
    assert [(p.point.time, p.point.name) for p in got] == [
        (0, "errloop_events"),
        (1, "errloop_events"),
        (10, "renamed"),
        (11, "renamed"),
        (12, "renamed"),
    ]
    assert (conn.counters.points_in, conn.counters.points_out, conn.counters.errors) == (5, 5, 0)


# --- the writer --------------------------------------------------------------------------------


def test_write_frames_counts_points_and_keeps_order_with_buffered_output() -> None:
    sent: list[bytes] = []
    counters = Counters()
    w = Writer(sent.append, counters)
    w.deferred_thread = threading.get_ident()  # like the worker: buffered until flush()
    w.write_member(b"\x8a\x01", b"first")
    w.write_frames(b"AB", 2)
    assert sent == []
    w.flush()
    assert sent == [encode_uvarint(8) + b"\x8a\x01\x05first" + b"AB"]  # key 2 + size 1 + 5
    assert counters.points_out == 3
    w.deferred_thread = None
    w.write_frames(b"CD", 2)  # another thread: at once, and without a copy into the buffer
    assert sent[-1] == b"CD"


def test_write_frames_after_the_peer_left_counts_every_point_as_dropped() -> None:
    def broken(_: bytes) -> None:
        raise BrokenPipeError

    counters = Counters()
    w = Writer(broken, counters)
    w.write_frames(b"x", 3)
    w.write_frames(b"y", 4)
    assert w.broken
    assert counters.dropped_writes == 1 + 4


@pytest.mark.parametrize("size", [0, 100, 126, 200, 16_000, 20_000, 3_000_000])
def test_point_payload_finds_the_point_of_a_point_only_request(size: int) -> None:
    from errloop.udf.agent.connection import _point_payload

    req = point(3, {"t": "v"}, {"message": "x" * size})
    body = req.SerializeToString()
    buf = b"junk" + body + b"more"
    start = _point_payload(buf, 4, 4 + len(body))
    assert start > 0 and udf_pb2.Point.FromString(buf[start : 4 + len(body)]) == req.point
    assert _point_payload(buf, 4, 4 + len(body) - 1) == -1  # size and frame disagree
    assert _point_payload(buf, 4, 4 + len(body) + 1) == -1
    ka = keepalive(1).SerializeToString()
    assert _point_payload(ka, 0, len(ka)) == -1
