"""One thread serves the conversation; the watchdog reads for it while a handler call runs long.

The serving thread reads, frames and calls the handler itself. Once it has been inside the
handler for ``takeover_s`` the watchdog thread reads the input instead: it answers keepalives
at once and holds everything else, in order, for the serving thread (bounded: see
test_udf_connection's back-pressure test).
"""

from __future__ import annotations

import os
import threading
import time

from udf_wire import Sink, keepalive, point

from errloop.udf.agent import Connection, Edge, Handler, Info, frame, udf_pb2


class Busy(Handler):
    """Blocks in point() on the point with time 1 until ``release`` is set."""

    entered = threading.Event()
    release = threading.Event()

    @classmethod
    def info(cls) -> Info:
        return Info(Edge.STREAM, Edge.STREAM)

    def point(self, p: udf_pb2.Point) -> None:
        if p.time == 1:
            Busy.entered.set()
            Busy.release.wait(20)
        self.emitter.point(p)


def serve(takeover_s: float = 0.04) -> tuple[Connection, Sink, int, threading.Thread, list[int]]:
    Busy.entered, Busy.release = threading.Event(), threading.Event()
    r, w = os.pipe()
    sink = Sink()
    conn = Connection(Busy, lambda n: os.read(r, n), sink, takeover_s=takeover_s)
    status: list[int] = []
    thread = threading.Thread(target=lambda: (status.append(conn.run()), os.close(r)), daemon=True)
    thread.start()
    return conn, sink, w, thread, status


def send(w: int, *reqs: udf_pb2.Request) -> None:
    os.write(w, b"".join(frame(r.SerializeToString()) for r in reqs))


def wait_for(check: object, timeout: float = 5.0) -> float:
    """Seconds until ``check()`` was true (raises on timeout)."""
    started = time.monotonic()
    while not check():  # type: ignore[operator]
        if time.monotonic() - started > timeout:
            raise AssertionError("timed out")
        time.sleep(0.002)
    return time.monotonic() - started


def test_a_keepalive_is_answered_within_100ms_while_the_handler_is_inside_a_long_call() -> None:
    conn, sink, w, thread, status = serve()
    send(w, point(1))
    assert Busy.entered.wait(5)
    time.sleep(0.1)  # well past takeover_s: the watchdog reads now
    send(w, point(2), keepalive(77), point(3))
    waited = wait_for(lambda: any(r.keepalive.time == 77 for r in sink.responses()))
    assert waited < 0.1, f"keepalive answered after {waited:.3f}s"
    assert conn.counters.points_out == 0  # the handler is still inside point 1
    Busy.release.set()
    os.close(w)
    thread.join(10)
    assert status == [0]
    points = [r.point.time for r in sink.responses() if r.WhichOneof("message") == "point"]
    assert points == [1, 2, 3]  # what the watchdog read is handled, in order, after the long call
    assert conn.counters.keepalives == 1
    assert conn.watchdog_reads >= 1


def test_end_of_input_seen_by_the_watchdog_still_handles_everything_before_it() -> None:
    conn, sink, w, thread, status = serve()
    send(w, point(1))
    assert Busy.entered.wait(5)
    time.sleep(0.1)
    send(w, point(2), point(3))
    os.close(w)  # EOF while the handler is busy
    time.sleep(0.1)
    assert thread.is_alive()
    Busy.release.set()
    thread.join(10)
    assert status == [0]
    assert [r.point.time for r in sink.responses()] == [1, 2, 3]
    assert conn.counters.points_in == 3


def test_a_broken_stream_seen_by_the_watchdog_ends_after_what_arrived_whole() -> None:
    conn, sink, w, thread, status = serve()
    send(w, point(1))
    assert Busy.entered.wait(5)
    time.sleep(0.1)
    os.write(w, frame(point(2).SerializeToString()) + b"\xff" * 6)  # a prefix longer than 5 bytes
    os.close(w)
    time.sleep(0.1)
    Busy.release.set()
    thread.join(10)
    assert status == [2]
    kinds = [r.WhichOneof("message") for r in sink.responses()]
    assert kinds == ["point", "point", "error"]
    assert conn.counters.protocol_errors == 1


def test_a_quick_handler_is_served_by_one_thread_and_its_points_are_flushed_per_read() -> None:
    conn, sink, w, thread, status = serve()
    for t in (2, 3, 4):
        send(w, point(t))
        wait_for(lambda t=t: any(r.point.time == t for r in sink.responses()), timeout=2)
    send(w, keepalive(5))
    wait_for(lambda: any(r.keepalive.time == 5 for r in sink.responses()), timeout=2)
    os.close(w)
    thread.join(10)
    assert status == [0]
    assert [r.point.time for r in sink.responses() if r.WhichOneof("message") == "point"] == [2, 3, 4]
    assert conn.watchdog_reads == 0  # the serving thread read everything itself


def test_output_goes_out_while_the_watchdog_waits_in_a_read_for_input_that_does_not_come() -> None:
    conn, sink, w, thread, status = serve()
    send(w, point(1))
    assert Busy.entered.wait(5)
    time.sleep(0.1)  # the watchdog is now blocked in a read: nothing more is coming
    Busy.release.set()
    wait_for(lambda: any(r.point.time == 1 for r in sink.responses()), timeout=2)  # not held until more input
    os.close(w)
    thread.join(10)
    assert status == [0]
    assert conn.watchdog_reads >= 1
