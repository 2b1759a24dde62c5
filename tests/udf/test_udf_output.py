"""The writer and emitter: exact wire bytes, counting, flushing rules, a vanished peer."""

from __future__ import annotations

import threading

from udf_wire import point

from errloop.udf.agent import FrameDecoder, udf_pb2
from errloop.udf.agent.output import Counters, Emitter, Writer


def sample_point() -> udf_pb2.Point:
    return point(5, {"service": "api"}, {"message": "boom", "n": 3, "d": 1.5, "ok": True}, group="service=api").point


def test_emitted_point_is_a_valid_response_identical_to_protobufs_own() -> None:
    sent: list[bytes] = []
    emitter = Emitter(Writer(sent.append, Counters()))
    p = sample_point()
    emitter.point(p)
    [body] = FrameDecoder().feed(b"".join(sent))
    resp = udf_pb2.Response()
    resp.ParseFromString(body)
    assert resp.WhichOneof("message") == "point"
    assert resp.point == p
    assert resp == udf_pb2.Response(point=p)


def test_batches_round_trip_and_are_counted() -> None:
    sent: list[bytes] = []
    counters = Counters()
    emitter = Emitter(Writer(sent.append, counters))
    begin = udf_pb2.BeginBatch(name="m", group="g", size=2, byName=True)
    begin.tags["a"] = "b"
    end = udf_pb2.EndBatch(name="m", group="g", tmax=99)
    emitter.begin_batch(begin)
    emitter.point(sample_point())
    emitter.end_batch(end)
    kinds = []
    for body in FrameDecoder().feed(b"".join(sent)):
        r = udf_pb2.Response()
        r.ParseFromString(body)
        kinds.append(r.WhichOneof("message"))
        if kinds[-1] == "begin":
            assert r.begin == begin
        if kinds[-1] == "end":
            assert r.end == end
    assert kinds == ["begin", "point", "end"]
    assert (counters.points_out, counters.batches_out) == (1, 1)


def test_worker_writes_wait_for_flush_other_threads_flush_at_once() -> None:
    sent: list[bytes] = []
    writer = Writer(sent.append, Counters())
    emitter = Emitter(writer)
    writer.deferred_thread = threading.get_ident()
    emitter.point(sample_point())
    assert sent == []  # buffered: the worker flushes when its queue is empty
    writer.flush()
    assert len(sent) == 1
    other = threading.Thread(target=emitter.point, args=(sample_point(),))
    other.start()
    other.join()
    assert len(sent) == 2  # from another thread: on the wire immediately


def test_peer_gone_drops_output_and_counts_it() -> None:
    def broken(data: bytes) -> None:
        raise BrokenPipeError(32, "Broken pipe")

    counters = Counters()
    writer = Writer(broken, counters)
    emitter = Emitter(writer)
    emitter.point(sample_point())  # must not raise into the handler
    emitter.point(sample_point())
    assert writer.broken
    assert counters.dropped_writes == 2
