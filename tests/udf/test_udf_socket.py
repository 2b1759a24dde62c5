"""Socket mode: one server, one handler instance and thread per Kapacitor connection."""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from udf_wire import SocketClient, event_point_like, info, init, keepalive, point

from errloop.udf.agent import udf_pb2


@pytest.fixture
def sock_dir() -> Iterator[Path]:
    # AF_UNIX paths are limited to ~107 bytes: pytest's tmp_path can be too long
    with tempfile.TemporaryDirectory(prefix="errloop-udf-") as d:
        yield Path(d)


def start_server(name: str, path: Path) -> subprocess.Popen[bytes]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "errloop.udf", name, "--socket", str(path)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if path.exists():
            try:
                with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as probe:
                    probe.connect(str(path))
                return proc
            except OSError:
                pass
        if proc.poll() is not None:
            break
        time.sleep(0.02)
    proc.kill()
    raise AssertionError(f"server did not start: {proc.communicate()[1].decode()}")


def stop_server(proc: subprocess.Popen[bytes]) -> tuple[int, str]:
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=10)
    return proc.returncode, err.decode()


def test_two_concurrent_connections_are_independent(sock_dir: Path) -> None:
    path = sock_dir / "mirror.sock"
    server = start_server("errloop_mirror", path)
    try:
        startup = SocketClient(str(path))  # kapacitord start: info, then close
        startup.send(info())
        assert startup.reader.expect("info").info.wants == udf_pb2.STREAM
        startup.close_write()
        assert startup.reader.next() is None  # the server ends the connection
        startup.close()

        a, b = SocketClient(str(path)), SocketClient(str(path))
        a.send(init(task="A"))
        b.send(init(task="B"))
        assert a.reader.expect("init").init.success and b.reader.expect("init").init.success
        for t in range(10):  # interleaved
            a.send(point(t, {"conn": "a"}))
            b.send(point(100 + t, {"conn": "b"}))
        got_a, got_b = a.reader.points(10), b.reader.points(10)
        assert [(p.time, p.tags["conn"]) for p in got_a] == [(t, "a") for t in range(10)]
        assert [(p.time, p.tags["conn"]) for p in got_b] == [(100 + t, "b") for t in range(10)]

        a.close_write()  # task A stops; B goes on
        assert a.reader.next() is None
        b.send(keepalive(7), point(200, {"conn": "b"}))
        assert b.reader.expect("keepalive", skip=()).keepalive.time == 7
        assert b.reader.expect("point").point.time == 200
        b.close_write()
        assert b.reader.next() is None
        a.close()
        b.close()
    finally:
        rc, err = stop_server(server)
    assert rc == 0, err
    assert not path.exists()
    assert "errloop_mirror#2" in err and "errloop_mirror#3" in err  # per-connection logs


def test_classify_state_is_per_connection(sock_dir: Path) -> None:
    path = sock_dir / "classify.sock"
    server = start_server("errloop_classify", path)
    try:
        a, b = SocketClient(str(path)), SocketClient(str(path))
        a.send(init(), *(event_point_like(t) for t in range(3)))
        b.send(init(), event_point_like(10))
        assert a.reader.expect("init").init.success and b.reader.expect("init").init.success
        assert [p.fieldsInt["fp_count"] for p in a.reader.points(3)] == [1, 2, 3]
        assert b.reader.expect("point").point.fieldsInt["fp_count"] == 1  # its own handler, its own table
        a.close()
        b.close()
    finally:
        rc, err = stop_server(server)
    assert rc == 0, err


def test_refuses_to_replace_a_file_that_is_not_a_socket(sock_dir: Path) -> None:
    path = sock_dir / "taken"
    path.write_text("precious")
    proc = subprocess.run(
        [sys.executable, "-m", "errloop.udf", "errloop_mirror", "--socket", str(path)],
        capture_output=True,
        timeout=20,
    )
    assert proc.returncode == 64
    assert b"not a socket" in proc.stderr
    assert path.read_text() == "precious"


def test_stale_socket_file_is_replaced(sock_dir: Path) -> None:
    path = sock_dir / "stale.sock"
    dead = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    dead.bind(str(path))
    dead.close()  # the file stays, nobody listens
    assert path.exists()
    server = start_server("errloop_mirror", path)
    rc, err = stop_server(server)
    assert rc == 0, err
    assert not path.exists()
