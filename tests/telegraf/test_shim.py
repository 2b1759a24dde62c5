"""The execd shim: batches, commit after flush, stop on stdin EOF/signals, EPIPE, back-pressure, clean stdout."""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Iterable
from pathlib import Path

import pytest
from tg_lp_parser import parse_line

from errloop.telegraf.shim import Point, TelegrafLogFormatter, run

# a shim that stops answering must fail its test, not hold CI for the global 10 minutes
pytestmark = pytest.mark.timeout(60)

PY = sys.executable


class FakePlugin:
    def __init__(self, batches: list[list[Point | str]], stdin_w: int | None = None) -> None:
        self.batches = batches
        self.stdin_w = stdin_w
        self.gathers = 0
        self.commits = 0
        self.closed = False
        self.events: list[str] = []

    def gather(self) -> Iterable[Point | str]:
        self.gathers += 1
        self.events.append("gather")
        if not self.batches:
            if self.stdin_w is not None:  # nothing left: Telegraf "stops" us
                os.close(self.stdin_w)
                self.stdin_w = None
            return []
        batch = self.batches.pop(0)
        if isinstance(batch, Exception):
            raise batch
        return batch

    def committed(self) -> None:
        self.commits += 1
        self.events.append("committed")

    def close(self) -> None:
        self.closed = True
        self.events.append("close")


class Reader(threading.Thread):
    def __init__(self, fd: int) -> None:
        super().__init__(daemon=True)
        self.fd = fd
        self.data = b""

    def run(self) -> None:
        while chunk := os.read(self.fd, 65536):
            self.data += chunk

    def lines(self) -> list[str]:
        self.join(5)
        return self.data.decode().splitlines()


def pipes() -> tuple[int, int, int, int, Reader]:
    out_r, out_w = os.pipe()
    in_r, in_w = os.pipe()
    reader = Reader(out_r)
    reader.start()
    return out_r, out_w, in_r, in_w, reader


def test_batches_are_written_then_committed_and_stdin_eof_stops() -> None:
    _, out_w, in_r, in_w, reader = pipes()
    plugin = FakePlugin(
        [[Point("m", {"t": "a"}, {"v": 1}, 1)], ["m v=2i 2", Point("m", {}, {"s": 'x"y'}, 3)]],
        stdin_w=in_w,
    )
    result = run(plugin, out_fd=out_w, in_fd=in_r, install_signals=False, interval_s=0.01)
    os.close(out_w)
    lines = reader.lines()
    assert [parse_line(ln).fields for ln in lines] == [{"v": 1}, {"v": 2}, {"s": 'x"y'}]
    assert result.exit_code == 0 and result.reason == "stdin closed"
    assert result.batches == 2 and result.lines == 3
    assert plugin.closed and plugin.events[-1] == "close"
    # every gather is followed by its commit; the final flush gather too
    assert plugin.events[:-1] == ["gather", "committed"] * plugin.gathers


def test_unwritable_points_are_dropped_and_counted() -> None:
    _, out_w, in_r, in_w, reader = pipes()
    plugin = FakePlugin([[Point("m", {}, {"v": float("nan")}), Point("m", {}, {"v": 1})]], stdin_w=in_w)
    result = run(plugin, out_fd=out_w, in_fd=in_r, install_signals=False, interval_s=0.01)
    os.close(out_w)
    assert reader.lines() == ["m v=1i"]
    assert result.dropped == 1


def test_a_failing_gather_does_not_stop_the_loop(caplog: pytest.LogCaptureFixture) -> None:
    _, out_w, in_r, in_w, reader = pipes()
    plugin = FakePlugin([RuntimeError("boom"), ["m v=1i"]], stdin_w=in_w)  # type: ignore[list-item]
    with caplog.at_level(logging.ERROR):
        result = run(plugin, out_fd=out_w, in_fd=in_r, install_signals=False, interval_s=0.01)
    os.close(out_w)
    assert reader.lines() == ["m v=1i"]
    assert result.plugin_errors == 1 and "gather failed" in caplog.text


def test_closed_stdout_ends_cleanly_without_commit() -> None:
    out_r, out_w = os.pipe()
    os.close(out_r)  # Telegraf is gone
    in_r, in_w = os.pipe()
    plugin = FakePlugin([["m v=1i"]])
    result = run(plugin, out_fd=out_w, in_fd=in_r, install_signals=False, interval_s=0.01)
    os.close(in_w)
    assert result.exit_code == 0 and result.reason == "stdout closed"
    assert plugin.commits == 0 and plugin.closed


def test_back_pressure_blocks_gathering_and_gives_up_at_stop() -> None:
    out_r, out_w = os.pipe()  # nobody reads out_r
    in_r, in_w = os.pipe()
    big = ["m s=" + '"' + "x" * 1000 + '"'] * 200  # ~200 KB, more than a pipe holds
    plugin = FakePlugin([big, big, big])
    timer = threading.Timer(0.5, lambda: os.close(in_w))  # Telegraf stops us while we are blocked
    timer.start()
    t0 = time.monotonic()
    result = run(plugin, out_fd=out_w, in_fd=in_r, install_signals=False, interval_s=0.01, stop_timeout_s=0.3)
    elapsed = time.monotonic() - t0
    timer.join()
    os.close(out_r)
    assert plugin.gathers == 1  # no second batch while the first one is not out
    assert plugin.commits == 0 and plugin.closed
    assert "reader blocked" in result.reason
    assert 0.5 <= elapsed < 5


def test_a_slow_reader_that_still_reads_is_waited_for_at_stop() -> None:
    """The stop's grace counts from the reader's last progress, not from the stop: a busy
    Telegraf that drains slowly gets the whole last batch (no cut line, no repeat after restart)."""
    out_r, out_w = os.pipe()
    in_r, in_w = os.pipe()
    big = ["m s=" + '"' + "x" * 1000 + '"'] * 400  # ~400 KB: the pipe holds a fraction of it
    plugin = FakePlugin([big])
    got = bytearray()

    def slow_reader() -> None:
        os.close(in_w)  # Telegraf stops us at once, then reads slowly: 16 KiB every 20 ms (~1.3 s)
        while True:
            chunk = os.read(out_r, 16384)
            if not chunk:
                return
            got.extend(chunk)
            time.sleep(0.02)

    reader = threading.Thread(target=slow_reader, daemon=True)
    reader.start()
    result = run(plugin, out_fd=out_w, in_fd=in_r, install_signals=False, interval_s=0.01, stop_timeout_s=0.3)
    with contextlib.suppress(OSError):
        os.close(out_w)  # the reader sees the end (run may have closed it already)
    reader.join(timeout=10)
    assert not reader.is_alive()
    assert "reader blocked" not in result.reason, result.reason
    assert plugin.commits >= 1 and plugin.closed
    assert got.count(b"\n") == 400 and got.endswith(b'"\n')


def test_signal_mode_must_be_known() -> None:
    with pytest.raises(ValueError, match="signal must be one of"):
        run(FakePlugin([]), signal="SIGKILL", out_fd=1)


def test_log_formatter_uses_telegraf_prefixes_on_one_line() -> None:
    fmt = TelegrafLogFormatter()
    rec = logging.LogRecord("x", logging.WARNING, __file__, 1, "two\nlines", None, None)
    assert fmt.format(rec) == "W! [x] two | lines"
    rec = logging.LogRecord("x", logging.ERROR, __file__, 1, "e" * 100_000, None, None)
    out = fmt.format(rec)
    assert out.startswith("E! ") and len(out) < 20_000


# --- as a process ------------------------------------------------------------------------------

SCRIPT = textwrap.dedent(
    """
    import os, sys
    from errloop.telegraf.shim import Point, run, setup_logging

    MODE = sys.argv[1]
    FOREVER = sys.argv[2] == "forever"

    class P:
        def __init__(self):
            self.n = 0
        def gather(self):
            self.n += 1
            print("stray print")            # must land on stderr
            os.write(1, b"stray fd1 write\\n")  # so must writes to fd 1
            if self.n > 3 and not FOREVER and MODE == "none":
                return []
            return [Point("m", {"mode": MODE}, {"n": self.n}, self.n)]
        def committed(self):
            pass
        def close(self):
            sys.stderr.write("closed after %d\\n" % self.n)

    setup_logging()
    sys.exit(run(P(), signal=MODE, interval_s=0.02).exit_code)
    """
)


@pytest.fixture
def script(tmp_path: Path) -> Path:
    path = tmp_path / "plugin_script.py"
    path.write_text(SCRIPT)
    return path


def start(script: Path, mode: str = "none", forever: str = "no") -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [PY, str(script), mode, forever], stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )


def finish(proc: subprocess.Popen[bytes]) -> tuple[bytes, bytes]:
    """Wait for the end and collect the rest of stdout/stderr (communicate() trips on a closed stdin)."""
    assert proc.stdout is not None and proc.stderr is not None
    out = proc.stdout.read()
    err = proc.stderr.read()
    proc.wait(timeout=10)
    return out, err


def read_lines(proc: subprocess.Popen[bytes], n: int) -> list[str]:
    assert proc.stdout is not None
    return [proc.stdout.readline().decode().rstrip("\n") for _ in range(n)]


def test_process_stdout_carries_only_line_protocol_and_sigterm_stops(script: Path) -> None:
    proc = start(script)
    try:
        lines = read_lines(proc, 3)
        assert [parse_line(ln).fields["n"] for ln in lines] == [1, 2, 3]
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=10)
    finally:
        proc.kill()
    assert proc.returncode == 0
    assert b"stray" not in out and out.strip() == b""
    assert b"stray print" in err and b"stray fd1 write" in err
    assert b"I! [errloop.shim] stopping: SIGTERM" in err and b"closed after" in err


def test_process_stops_on_stdin_eof(script: Path) -> None:
    proc = start(script)
    try:
        read_lines(proc, 1)
        assert proc.stdin is not None
        proc.stdin.close()
        _, err = finish(proc)
    finally:
        proc.kill()
    assert proc.returncode == 0 and b"stopping: stdin closed" in err


def test_process_ends_cleanly_when_stdout_is_closed(script: Path) -> None:
    proc = start(script, forever="forever")
    try:
        read_lines(proc, 2)
        assert proc.stdout is not None
        proc.stdout.close()
        assert proc.stderr is not None
        proc.wait(timeout=10)
        err = proc.stderr.read()
    finally:
        proc.kill()
    assert proc.returncode == 0
    assert b"stdout closed" in err and b"Traceback" not in err


def test_stdin_signal_mode_gathers_once_per_newline(script: Path) -> None:
    proc = start(script, mode="STDIN")
    try:
        assert proc.stdin is not None
        lines = []
        for _ in range(2):  # one newline at a time: newlines that arrive together are one gather
            proc.stdin.write(b"\n")
            proc.stdin.flush()
            lines += read_lines(proc, 1)
        proc.stdin.close()
        out, _ = finish(proc)
    finally:
        proc.kill()
    assert [parse_line(ln).fields["n"] for ln in lines] == [1, 2]
    assert all(parse_line(ln).tags == {"mode": "STDIN"} for ln in lines)
    # the final flush on stop gathers once more
    assert [parse_line(ln).fields["n"] for ln in out.decode().splitlines()] == [3]


def test_sigusr1_mode(script: Path) -> None:
    proc = start(script, mode="SIGUSR1")
    try:
        time.sleep(0.5)
        assert proc.stdout is not None
        proc.send_signal(signal.SIGUSR1)
        (line,) = read_lines(proc, 1)
        assert parse_line(line).fields["n"] == 1
        proc.send_signal(signal.SIGTERM)
        proc.communicate(timeout=10)
    finally:
        proc.kill()
    assert proc.returncode == 0
