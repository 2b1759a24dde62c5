"""The runtime as Kapacitor sees it: a real child process spoken to over its pipes."""

from __future__ import annotations

import fcntl
import json
import os
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from udf_wire import (
    UdfProcess,
    handler_command,
    info,
    init,
    keepalive,
    opt_duration,
    opt_int,
    opt_str,
    point,
    restore,
    snapshot,
    udf_command,
)

from errloop.udf.agent import encode_uvarint, frame, serve, udf_pb2


@pytest.fixture
def procs() -> Iterator[list[UdfProcess]]:
    started: list[UdfProcess] = []
    yield started
    for p in started:
        p.kill()


def spawn(procs: list[UdfProcess], argv: list[str]) -> UdfProcess:
    p = UdfProcess(argv)
    procs.append(p)
    return p


def test_kapacitord_startup_info_then_eof(procs: list[UdfProcess]) -> None:
    udf = spawn(procs, udf_command("errloop_mirror"))
    udf.send(info())
    resp = udf.reader.expect("info")
    assert resp.info.wants == udf_pb2.STREAM and resp.info.provides == udf_pb2.STREAM
    assert len(resp.info.options) == 0
    assert udf.close() == 0


def test_protocol_pipes_are_enlarged(procs: list[UdfProcess]) -> None:
    # Kapacitor's side of both pipes: the UDF asks for PIPE_BYTES (capped by the system's maximum)
    with open("/proc/sys/fs/pipe-max-size") as f:
        expected = min(serve.PIPE_BYTES, int(f.read()))
    udf = spawn(procs, udf_command("errloop_mirror"))
    assert udf.proc.stdin is not None and udf.proc.stdout is not None
    udf.send(info())
    udf.reader.expect("info")  # the runtime is serving: its set-up is done
    assert fcntl.fcntl(udf.proc.stdin.fileno(), fcntl.F_GETPIPE_SZ) == expected
    assert fcntl.fcntl(udf.proc.stdout.fileno(), fcntl.F_GETPIPE_SZ) == expected
    assert udf.close() == 0


def test_enlarge_pipes_keeps_what_is_no_pipe(tmp_path: Path) -> None:
    with (tmp_path / "file").open("wb") as f:
        read_end, write_end = os.pipe()
        try:
            sizes = serve.enlarge_pipes(f.fileno(), read_end, size=128 * 1024)
            assert sizes == {read_end: 128 * 1024}  # the file is left alone, the pipe grown
            assert fcntl.fcntl(write_end, fcntl.F_GETPIPE_SZ) == 128 * 1024  # one pipe, both ends
        finally:
            os.close(read_end)
            os.close(write_end)


def test_enlarge_pipes_without_pipe_size_control(monkeypatch: pytest.MonkeyPatch) -> None:
    # a system whose fcntl has no F_SETPIPE_SZ (not Linux): nothing changes, nothing raises
    monkeypatch.delattr(fcntl, "F_SETPIPE_SZ")
    read_end, write_end = os.pipe()
    try:
        before = fcntl.fcntl(read_end, fcntl.F_GETPIPE_SZ)
        assert serve.enlarge_pipes(read_end, size=before * 2) == {}
        assert fcntl.fcntl(read_end, fcntl.F_GETPIPE_SZ) == before
    finally:
        os.close(read_end)
        os.close(write_end)


def test_mirror_returns_every_point_unchanged(procs: list[UdfProcess]) -> None:
    udf = spawn(procs, udf_command("errloop_mirror"))
    udf.send(init())
    assert udf.reader.expect("init").init.success
    sent = [
        point(
            1_700_000_000_000_000_000 + i,
            {"service": "api", "host": f"h{i}"},
            {"message": f"m{i}", "http_status": 500 + i, "duration_ms": i / 3, "truncated": i % 2 == 0},
            group="service=api",
        )
        for i in range(50)
    ]
    udf.send(*sent)
    got = udf.reader.points(50)
    assert got == [r.point for r in sent]  # every field, dimensions, group, byName, in order
    assert udf.close() == 0
    assert "points_in=50 points_out=50" in udf.stderr


def test_mirror_passes_batches_through(procs: list[UdfProcess]) -> None:
    udf = spawn(procs, udf_command("errloop_mirror"))
    begin = udf_pb2.Request(begin=udf_pb2.BeginBatch(name="m", group="g", size=2))
    end = udf_pb2.Request(end=udf_pb2.EndBatch(name="m", group="g", tmax=9))
    udf.send(init(), begin, point(1), point(2), end)
    assert udf.reader.expect("init").init.success
    assert udf.reader.expect("begin").begin == begin.begin
    assert [p.time for p in udf.reader.points(2)] == [1, 2]
    assert udf.reader.expect("end").end == end.end
    assert udf.close() == 0


def test_points_are_flushed_without_waiting_for_a_keepalive(procs: list[UdfProcess]) -> None:
    udf = spawn(procs, udf_command("errloop_mirror"))
    udf.send(init())
    udf.reader.expect("init")
    for t in (1, 2, 3):
        udf.send(point(t))
        assert udf.reader.expect("point", timeout=2, skip=()).point.time == t


def test_points_of_a_slow_handler_are_not_held_until_its_batch_ends(procs: list[UdfProcess]) -> None:
    udf = spawn(procs, handler_command("SlowHandler"))
    udf.send(init(("delay", [opt_duration(400_000_000)])))
    assert udf.reader.expect("init").init.success
    started = time.monotonic()
    udf.send(point(1), point(2), point(3))  # one write: one queue batch
    assert udf.reader.expect("point", skip=()).point.time == 1
    first = time.monotonic() - started
    assert [p.time for p in udf.reader.points(2)] == [2, 3]
    total = time.monotonic() - started
    assert first < total - 0.5, f"first point after {first:.2f}s, all after {total:.2f}s"


def test_keepalive_is_answered_while_the_handler_is_busy(procs: list[UdfProcess]) -> None:
    udf = spawn(procs, handler_command("SlowHandler"))
    udf.send(init(("delay", [opt_duration(1_200_000_000)])))
    assert udf.reader.expect("init").init.success
    udf.send(point(1))
    time.sleep(0.2)  # the worker is now inside a 1.2 s point()
    started = time.monotonic()
    udf.send(keepalive(123456789))
    resp = udf.reader.next(timeout=0.8)
    assert resp is not None and resp.WhichOneof("message") == "keepalive", resp
    assert resp.keepalive.time == 123456789
    assert time.monotonic() - started < 0.6
    assert udf.reader.expect("point", timeout=5).point.time == 1  # the slow point still arrives
    assert udf.close() == 0


def test_handler_exception_skips_the_point_and_the_task_lives(procs: list[UdfProcess]) -> None:
    udf = spawn(procs, handler_command("FlakyHandler"))
    udf.send(init())
    assert udf.reader.expect("init").init.success
    udf.send(*(point(t, {"boom": "yes" if t in (2, 4) else "no"}) for t in range(1, 6)))
    assert [p.time for p in udf.reader.points(3)] == [1, 3, 5]
    udf.send(keepalive(1))
    assert udf.reader.expect("keepalive", skip=()).keepalive.time == 1
    assert udf.close() == 0
    assert "RuntimeError: boom at 2" in udf.stderr and "RuntimeError: boom at 4" in udf.stderr
    assert "Traceback" in udf.stderr
    assert "errors=2" in udf.stderr
    assert "error" not in {r.WhichOneof("message") for r in udf.reader.rest(timeout=1)}


def test_poison_stream_does_not_flood_stderr(procs: list[UdfProcess]) -> None:
    udf = spawn(procs, handler_command("FlakyHandler"))
    udf.send(init(), *(point(t, {"boom": "yes"}) for t in range(200)), point(999))
    assert udf.reader.expect("init").init.success
    assert udf.reader.expect("point").point.time == 999
    assert udf.close() == 0
    assert udf.stderr.count("Traceback") == 5
    assert "195 more data messages skipped" in udf.stderr
    assert "errors=200" in udf.stderr


def test_stray_prints_go_to_stderr_not_into_the_protocol(procs: list[UdfProcess]) -> None:
    udf = spawn(procs, handler_command("FlakyHandler"))
    udf.send(init(), point(1), point(2))
    assert udf.reader.expect("init", skip=()).init.success
    assert [p.time for p in udf.reader.points(2)] == [1, 2]
    assert udf.close() == 0
    assert udf.reader.error is None  # every byte on stdout parsed as a framed Response
    assert "stray print from init" in udf.stderr
    assert "stray print for point 2" in udf.stderr and "stray write" in udf.stderr
    assert b"stray" not in udf.reader.raw


def test_init_reports_option_problems_and_the_process_stays_up(procs: list[UdfProcess]) -> None:
    udf = spawn(procs, handler_command("PickyHandler"))
    udf.send(init(("size", [opt_int(1)])))
    resp = udf.reader.expect("init").init
    assert not resp.success and "option .field(STRING) is required" in resp.error
    udf.send(init(("field", [opt_int(1)])))
    resp = udf.reader.expect("init").init
    assert not resp.success and "got INT, expected STRING" in resp.error
    udf.send(init(("field", [opt_str("refuse")])))
    resp = udf.reader.expect("init").init
    assert not resp.success and resp.error == "field 'refuse' is not allowed"
    udf.send(init(("field", [opt_str("crash")])))
    resp = udf.reader.expect("init").init
    assert not resp.success and resp.error == "KeyError: 'crash'"
    udf.send(init(("field", [opt_str("fine")]), ("pair", [opt_str("a"), opt_int(2)])))
    assert udf.reader.expect("init").init.success
    assert udf.close() == 0


def test_unknown_option_to_mirror_fails_init(procs: list[UdfProcess]) -> None:
    udf = spawn(procs, udf_command("errloop_mirror"))
    udf.send(init(("speed", [opt_int(3)])))
    resp = udf.reader.expect("init").init
    assert not resp.success and "unknown option 'speed'" in resp.error


def test_snapshot_then_restore_into_a_fresh_process(procs: list[UdfProcess]) -> None:
    first = spawn(procs, handler_command("CountingHandler"))
    first.send(init(), point(1), point(2), point(3), snapshot())
    assert first.reader.expect("init").init.success
    assert [p.fieldsInt["n"] for p in first.reader.points(3, timeout=5)] == [1, 2, 3]
    saved = first.reader.expect("snapshot").snapshot.snapshot
    assert json.loads(saved) == {"version": 1, "count": 3}
    assert first.close() == 0

    second = spawn(procs, handler_command("CountingHandler"))
    second.send(init(), restore(saved), point(4))
    assert second.reader.expect("init").init.success
    assert second.reader.expect("restore").restore.success
    assert second.reader.expect("point").point.fieldsInt["n"] == 4
    assert second.close() == 0


def test_failed_restore_starts_empty_with_the_same_options(procs: list[UdfProcess]) -> None:
    udf = spawn(procs, handler_command("CountingHandler"))
    udf.send(init(("start", [opt_int(10)])), point(1), restore(b"explode"), point(2))
    assert udf.reader.expect("init").init.success
    assert udf.reader.expect("point").point.fieldsInt["n"] == 11
    assert udf.reader.expect("restore").restore.success
    assert udf.reader.expect("point").point.fieldsInt["n"] == 11  # fresh handler, re-initialised: start=10
    assert udf.close() == 0
    assert "ValueError: cannot restore this" in udf.stderr


def test_failed_snapshot_answers_empty_and_continues(procs: list[UdfProcess]) -> None:
    udf = spawn(procs, handler_command("CountingHandler"))
    udf.send(init(("fail_snapshot_at", [opt_int(1)])), point(1), snapshot(), point(2))
    assert udf.reader.expect("init").init.success
    udf.reader.expect("point")
    assert udf.reader.expect("snapshot").snapshot.snapshot == b""
    assert udf.reader.expect("point").point.fieldsInt["n"] == 2
    assert udf.close() == 0
    assert "snapshot exploded" in udf.stderr


def test_eof_inside_a_message_is_a_protocol_error(procs: list[UdfProcess]) -> None:
    udf = spawn(procs, udf_command("errloop_mirror"))
    udf.send(init(), point(1))
    udf.send_raw(frame(point(2).SerializeToString())[:10])
    assert udf.close() == 2
    rest = udf.reader.rest()
    kinds = [r.WhichOneof("message") for r in rest]
    assert kinds == ["init", "point", "error"]  # what arrived whole is still handled
    assert "expected" in rest[-1].error.error and "more bytes" in rest[-1].error.error


def test_oversized_prefix_is_rejected(procs: list[UdfProcess]) -> None:
    udf = spawn(procs, udf_command("errloop_mirror"))
    udf.send_raw(frame(point(1).SerializeToString()) + encode_uvarint(2**33) + b"x" * 10)  # one write
    assert udf.close() == 2
    [out, err] = udf.reader.rest()
    assert out.point.time == 1  # the whole message before the corruption is still handled
    assert "32 bits" in err.error.error


def test_rss_does_not_grow_with_the_number_of_points(procs: list[UdfProcess]) -> None:
    """200k points through the mirror (after a 30k warm-up); memory at 200k must be about what it was at 50k."""
    udf = UdfProcess(udf_command("errloop_mirror"), parse=False)
    procs.append(udf)
    one = frame(
        point(
            1, {"service": "api", "host": "h1"}, {"message": "x" * 200, "n": 1}, group="service=api"
        ).SerializeToString()
    )
    chunk = one * 10_000
    pid = udf.proc.pid

    def rss_kib() -> int:
        with open(f"/proc/{pid}/status") as f:
            return next(int(line.split()[1]) for line in f if line.startswith("VmRSS:"))

    sent = 0

    def pump(chunks: int) -> None:
        nonlocal sent
        udf.send_raw(chunk * chunks)  # one big write: the UDF's input queue fills up early
        sent += chunks * len(chunk)
        # a mirrored point is byte-for-byte its request (Request.point and Response.point are both field 17)
        assert udf.reader.wait_bytes(sent, timeout=30), f"only {udf.reader.received} of {sent} bytes came back"

    pump(3)  # warm-up: let the bounded in-flight buffers (queue, reads, output) reach their size
    pump(5)
    at_50k = rss_kib()
    pump(15)
    at_200k = rss_kib()
    assert udf.close() == 0
    assert udf.reader.received == sent
    assert "points_in=230000 points_out=230000" in udf.stderr
    # in-flight data is bounded (queue + one read + output buffer); 8 MiB over 150k points would be a
    # leak of > 55 bytes per point (reusing one parse target grows by ~1.3 KiB per point here)
    assert at_200k - at_50k < 8 * 1024, f"RSS grew from {at_50k} KiB to {at_200k} KiB"
