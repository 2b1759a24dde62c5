"""The reader/worker runtime in-process: back-pressure with heartbeats, failure rules.

(The same runtime is exercised as a real subprocess in test_udf_process.py.)
"""

from __future__ import annotations

import os
import threading
import time

from udf_wire import Sink, info, init, keepalive, point

from errloop.udf.agent import Connection, Edge, Handler, Info, frame, udf_pb2
from errloop.udf.agent.output import Emitter


class GatedHandler(Handler):
    """Blocks in point() until the gate opens; raises on begin/end batches named 'bad'."""

    gate = threading.Event()

    @classmethod
    def info(cls) -> Info:
        return Info(Edge.STREAM, Edge.STREAM)

    def point(self, p: udf_pb2.Point) -> None:
        self.gate.wait(30)
        self.emitter.point(p)

    def begin_batch(self, begin: udf_pb2.BeginBatch) -> None:
        if begin.name == "bad":
            raise ValueError("bad begin")
        self.emitter.begin_batch(begin)

    def end_batch(self, end: udf_pb2.EndBatch) -> None:
        if end.name == "bad":
            raise ValueError("bad end")
        self.emitter.end_batch(end)


class Pipe:
    def __init__(self) -> None:
        self.r, self.w = os.pipe()

    def read(self, n: int) -> bytes:
        return os.read(self.r, n)


def start(conn: Connection) -> tuple[threading.Thread, list[int]]:
    status: list[int] = []
    thread = threading.Thread(target=lambda: status.append(conn.run()), daemon=True)
    thread.start()
    return thread, status


def test_full_queue_holds_input_back_and_keeps_the_watchdog_fed() -> None:
    GatedHandler.gate = threading.Event()
    pipe, sink = Pipe(), Sink()
    conn = Connection(GatedHandler, pipe.read, sink, queue_batches=2, batch_max=1, heartbeat_s=0.1)
    thread, status = start(conn)
    one = frame(point(1, {"k": "v"}, {"message": "x" * 100}).SerializeToString())
    n = (2 * 1024 * 1024) // len(one)  # far more than the pipe buffer plus one read
    written = threading.Event()

    def kapacitor_writes() -> None:
        os.write(pipe.w, one * n)  # blocks until the UDF reads it all
        written.set()

    threading.Thread(target=kapacitor_writes, daemon=True).start()
    time.sleep(0.8)
    assert not written.is_set(), "the UDF kept reading although its handler is stuck: no back-pressure"
    heartbeats = [r for r in sink.responses() if r.WhichOneof("message") == "keepalive"]
    assert len(heartbeats) >= 3, "no unsolicited keepalives while the queue was full"
    assert conn.counters.points_out == 0

    GatedHandler.gate.set()
    assert written.wait(20)
    os.close(pipe.w)
    thread.join(20)
    assert status == [0]
    assert conn.counters.points_in == n
    assert sink.kinds().count("point") == n


def test_batch_handler_errors_are_counted_and_skipped() -> None:
    GatedHandler.gate = threading.Event()
    GatedHandler.gate.set()
    pipe, sink = Pipe(), Sink()
    conn = Connection(GatedHandler, pipe.read, sink)
    thread, status = start(conn)
    reqs = [
        udf_pb2.Request(begin=udf_pb2.BeginBatch(name="bad")),
        point(1),
        udf_pb2.Request(end=udf_pb2.EndBatch(name="bad")),
        udf_pb2.Request(begin=udf_pb2.BeginBatch(name="good")),
        point(2),
        udf_pb2.Request(end=udf_pb2.EndBatch(name="good")),
        keepalive(5),
    ]
    os.write(pipe.w, b"".join(frame(r.SerializeToString()) for r in reqs))
    os.close(pipe.w)
    thread.join(10)
    assert status == [0]
    assert conn.counters.errors == 2
    assert conn.counters.batches_in == 2
    kinds = [k for k in sink.kinds() if k != "keepalive"]
    assert kinds == ["point", "begin", "point", "end"]


class BrokenInfo(Handler):
    @classmethod
    def info(cls) -> Info:
        raise RuntimeError("no info today")


def test_info_failure_becomes_an_error_response_not_a_crash() -> None:
    pipe, sink = Pipe(), Sink()
    conn = Connection(BrokenInfo, pipe.read, sink)
    thread, status = start(conn)
    os.write(pipe.w, frame(info().SerializeToString()) + frame(init().SerializeToString()))
    os.close(pipe.w)
    thread.join(10)
    assert status == [0]
    [err, init_resp] = sink.responses()
    assert "no info today" in err.error.error
    assert not init_resp.init.success and "no info today" in init_resp.init.error


def test_undecodable_request_is_skipped_and_the_stream_goes_on() -> None:
    GatedHandler.gate = threading.Event()
    GatedHandler.gate.set()
    pipe, sink = Pipe(), Sink()
    conn = Connection(GatedHandler, pipe.read, sink)
    thread, status = start(conn)
    garbage = frame(b"\xff\xff\xff")  # a well-framed body that is not a Request
    os.write(pipe.w, garbage + frame(b"") + frame(point(7).SerializeToString()))
    os.close(pipe.w)
    thread.join(10)
    assert status == [0]
    assert conn.counters.protocol_errors == 2
    assert [r.point.time for r in sink.responses()] == [7]


def test_emitter_is_usable_from_a_handler_thread() -> None:
    class Ticker(Handler):
        @classmethod
        def info(cls) -> Info:
            return Info(Edge.STREAM, Edge.STREAM)

        def __init__(self, emitter: Emitter) -> None:
            super().__init__(emitter)
            threading.Thread(target=self.tick, daemon=True).start()

        def tick(self) -> None:
            self.emitter.point(udf_pb2.Point(name="tick", time=1))

    pipe, sink = Pipe(), Sink()
    conn = Connection(Ticker, pipe.read, sink)
    thread, status = start(conn)
    deadline = time.monotonic() + 5
    while "point" not in sink.kinds() and time.monotonic() < deadline:
        time.sleep(0.01)
    assert sink.responses()[0].point.name == "tick"  # flushed without any request or keepalive
    os.close(pipe.w)
    thread.join(10)
    assert status == [0]


def test_gc_is_tuned_for_the_hot_loop_and_init_freezes_what_it_built() -> None:
    import gc

    from errloop.udf.agent import serve

    before = gc.get_threshold()
    try:
        serve.tune_gc()
        assert gc.get_threshold() == (serve.GC_THRESHOLD0, *before[1:])
        gc.unfreeze()
        GatedHandler.gate = threading.Event()
        GatedHandler.gate.set()
        pipe, sink = Pipe(), Sink()
        conn = Connection(GatedHandler, pipe.read, sink)
        thread, status = start(conn)
        os.write(pipe.w, frame(init().SerializeToString()) + frame(point(1).SerializeToString()))
        os.close(pipe.w)
        thread.join(10)
        assert status == [0] and "init" in sink.kinds()
        assert gc.get_freeze_count() > 0  # what existed at init is out of the GC's walks
    finally:
        gc.unfreeze()
        gc.set_threshold(*before)
