"""Kapacitor's side of the UDF protocol, for tests: start a UDF process, talk to it over pipes.

A background thread reads the UDF's stdout, splits the frames and parses each Response
into a queue, so a test can wait for a reply with a timeout while the UDF keeps running.
:class:`Sink` collects what an in-process ``Connection`` writes.
"""

from __future__ import annotations

import os
import queue
import socket
import subprocess
import sys
import threading
from collections.abc import Callable, Iterable
from pathlib import Path

from errloop.udf.agent import FrameDecoder, frame, udf_pb2

HERE = Path(__file__).resolve().parent
PYTHON = sys.executable


def udf_command(name: str) -> list[str]:
    """Start a shipped UDF the way kapacitor.conf does."""
    return [PYTHON, "-m", "errloop.udf", name]


def handler_command(cls: str) -> list[str]:
    """Start a test-only handler from udf_test_handlers.py with the real runtime."""
    code = (
        "import sys; sys.path.insert(0, sys.argv[1]); import udf_test_handlers as h; "
        "from errloop.udf.agent import run; sys.exit(run(getattr(h, sys.argv[2]), name=sys.argv[2]))"
    )
    return [PYTHON, "-c", code, str(HERE), cls]


class Reader:
    """Parses Responses from a byte source on a thread.

    With ``parse=False`` it only counts the bytes (for volume tests): see :meth:`wait_bytes`.
    """

    def __init__(self, read: Callable[[int], bytes], parse: bool = True) -> None:
        self.responses: queue.Queue[udf_pb2.Response | None] = queue.Queue()
        self.raw = bytearray()
        self.received = 0
        self.error: Exception | None = None
        self._parse = parse
        self._cond = threading.Condition()
        self._read = read
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def wait_bytes(self, n: int, timeout: float = 30.0) -> bool:
        with self._cond:
            return self._cond.wait_for(lambda: self.received >= n, timeout)

    def _run(self) -> None:
        decoder = FrameDecoder()
        try:
            while True:
                data = self._read(1 << 20)
                if not data:
                    decoder.finish()
                    break
                with self._cond:
                    self.received += len(data)
                    self._cond.notify_all()
                if not self._parse:
                    continue
                self.raw += data
                for body in decoder.feed(data):
                    resp = udf_pb2.Response()
                    resp.ParseFromString(body)
                    self.responses.put(resp)
        except Exception as exc:  # surfaced by next()
            self.error = exc
        finally:
            self.responses.put(None)

    def next(self, timeout: float = 10.0) -> udf_pb2.Response | None:
        """The next response, or None at end of stream; raises queue.Empty on timeout."""
        resp = self.responses.get(timeout=timeout)
        if resp is None and self.error is not None:
            raise self.error
        return resp

    def expect(self, kind: str, timeout: float = 10.0, skip: Iterable[str] = ("keepalive",)) -> udf_pb2.Response:
        """The next response of ``kind``, skipping kinds in ``skip``; fails on anything else."""
        skip = set(skip) - {kind}
        while True:
            resp = self.next(timeout)
            if resp is None:
                raise AssertionError(f"stream ended while waiting for {kind}")
            got = resp.WhichOneof("message")
            if got == kind:
                return resp
            if got not in skip:
                raise AssertionError(f"expected {kind}, got {got}: {resp}")

    def points(self, n: int, timeout: float = 10.0) -> list[udf_pb2.Point]:
        """The next ``n`` points (keepalives skipped)."""
        return [self.expect("point", timeout).point for _ in range(n)]

    def rest(self, timeout: float = 10.0) -> list[udf_pb2.Response]:
        """Every response until end of stream."""
        out: list[udf_pb2.Response] = []
        while True:
            resp = self.next(timeout)
            if resp is None:
                return out
            out.append(resp)


class UdfProcess:
    """A UDF child process with Kapacitor's pipes."""

    def __init__(self, argv: list[str], env: dict[str, str] | None = None, parse: bool = True) -> None:
        self.proc = subprocess.Popen(
            argv,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env={**os.environ, **(env or {})},
        )
        assert self.proc.stdout is not None and self.proc.stdin is not None and self.proc.stderr is not None
        self.reader = Reader(self.proc.stdout.read1, parse)  # type: ignore[attr-defined]
        self._stderr = bytearray()
        stderr = self.proc.stderr
        self._err_thread = threading.Thread(target=self._drain_stderr, args=(stderr,), daemon=True)
        self._err_thread.start()

    def _drain_stderr(self, stream: object) -> None:
        read = stream.read1  # type: ignore[attr-defined]
        while chunk := read(65536):
            self._stderr += chunk

    @property
    def stderr(self) -> str:
        return self._stderr.decode("utf-8", "replace")

    def send(self, *requests: udf_pb2.Request) -> None:
        self.send_raw(b"".join(frame(r.SerializeToString()) for r in requests))

    def send_raw(self, data: bytes) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(data)
        self.proc.stdin.flush()

    def close(self, timeout: float = 15.0) -> int:
        """Close stdin (Kapacitor stopping the task) and wait for the exit status."""
        assert self.proc.stdin is not None
        self.proc.stdin.close()
        rc = self.proc.wait(timeout)
        self._err_thread.join(5)
        return rc

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(5)


class SocketClient:
    """Kapacitor's side of one socket-UDF connection."""

    def __init__(self, path: str) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.connect(path)
        self.reader = Reader(self.sock.recv)

    def send(self, *requests: udf_pb2.Request) -> None:
        self.sock.sendall(b"".join(frame(r.SerializeToString()) for r in requests))

    def close_write(self) -> None:
        self.sock.shutdown(socket.SHUT_WR)

    def close(self) -> None:
        self.sock.close()


# ------------------------------------------------------------------------- request builders


def info() -> udf_pb2.Request:
    return udf_pb2.Request(info=udf_pb2.InfoRequest())


def init(*options: tuple[str, list[udf_pb2.OptionValue]], task: str = "task1", node: str = "udf1") -> udf_pb2.Request:
    req = udf_pb2.Request()
    req.init.taskID = task
    req.init.nodeID = node
    for name, values in options:
        req.init.options.add(name=name, values=values)
    return req


def opt_str(value: str) -> udf_pb2.OptionValue:
    return udf_pb2.OptionValue(type=udf_pb2.STRING, stringValue=value)


def opt_int(value: int) -> udf_pb2.OptionValue:
    return udf_pb2.OptionValue(type=udf_pb2.INT, intValue=value)


def opt_duration(ns: int) -> udf_pb2.OptionValue:
    return udf_pb2.OptionValue(type=udf_pb2.DURATION, durationValue=ns)


def keepalive(t: int) -> udf_pb2.Request:
    return udf_pb2.Request(keepalive=udf_pb2.KeepaliveRequest(time=t))


def snapshot() -> udf_pb2.Request:
    return udf_pb2.Request(snapshot=udf_pb2.SnapshotRequest())


def restore(data: bytes) -> udf_pb2.Request:
    return udf_pb2.Request(restore=udf_pb2.RestoreRequest(snapshot=data))


def point(
    t: int,
    tags: dict[str, str] | None = None,
    fields: dict[str, str | int | float | bool] | None = None,
    name: str = "errloop_events",
    group: str = "",
) -> udf_pb2.Request:
    """A stream point as Kapacitor sends it (all of name/db/rp/group/dimensions set)."""
    req = udf_pb2.Request()
    p = req.point
    p.time = t
    p.name = name
    p.database = "errloop"
    p.retentionPolicy = "autogen"
    p.group = group
    if group:
        p.dimensions.extend(kv.split("=", 1)[0] for kv in group.split(","))
    p.tags.update(tags or {})
    for k, v in (fields or {}).items():
        if isinstance(v, bool):
            p.fieldsBool[k] = v
        elif isinstance(v, int):
            p.fieldsInt[k] = v
        elif isinstance(v, float):
            p.fieldsDouble[k] = v
        else:
            p.fieldsString[k] = v
    return req


def event_point_like(t: int, fingerprint: str = "fpA", message: str = "connection refused") -> udf_pb2.Request:
    """An errloop_events point as the errlog plugin writes it (enough of it for classify)."""
    return point(
        t,
        {"service": "api", "env": "prod", "level": "error", "fingerprint": fingerprint},
        {"event_id": f"ev-{t}", "message": message},
        group="service=api",
    )


class Sink:
    """Collects what the UDF writes; thread-safe."""

    def __init__(self) -> None:
        self.data = bytearray()
        self.lock = threading.Lock()

    def __call__(self, data: bytes) -> None:
        with self.lock:
            self.data += data

    def responses(self) -> list[udf_pb2.Response]:
        with self.lock:
            bodies = FrameDecoder().feed(bytes(self.data))
        out = []
        for body in bodies:
            r = udf_pb2.Response()
            r.ParseFromString(body)
            out.append(r)
        return out

    def kinds(self) -> list[str]:
        return [str(r.WhichOneof("message")) for r in self.responses()]
