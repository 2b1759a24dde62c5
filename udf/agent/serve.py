"""Entry points: serve a handler over stdin/stdout (process UDF) or a Unix socket (socket UDF).

Process mode (kapacitor.conf ``prog``/``args``): Kapacitor starts one process per UDF node
and speaks over its stdin/stdout. Before anything else the runtime takes private
duplicates of fd 0 and fd 1 for the protocol, points fd 0 at /dev/null and fd 1 (and
``sys.stdout``) at stderr: a stray ``print()`` or ``input()`` in a handler or a library can
then never corrupt or steal protocol bytes. Kapacitor logs stderr line by line.

Socket mode (kapacitor.conf ``socket``): one long-lived server; every connection (one per
UDF node per task, plus one at kapacitord start for the info request) gets its own handler
instance and its own thread. SIGTERM/SIGINT stop accepting and remove the socket file.
"""

from __future__ import annotations

import contextlib
import fcntl
import gc
import logging
import os
import signal
import socket
import stat
import sys
import threading
from types import FrameType
from typing import Final

from errloop.udf.agent.connection import Connection, HandlerFactory

log = logging.getLogger("errloop.udf")

EXIT_USAGE: Final = 64
ACCEPT_POLL_S: Final = 0.5
PIPE_BYTES: Final = 256 * 1024  # the capacity asked for the protocol pipes (capped by fs.pipe-max-size)


def setup_logging(level: int = logging.INFO) -> None:
    """Send ``errloop.udf`` logs to stderr (one record per line start) unless already configured."""
    if log.handlers:
        return
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(levelname)s %(message)s"))
    log.addHandler(handler)
    log.setLevel(level)
    log.propagate = False


def take_stdio() -> tuple[int, int]:
    """Reserve stdin/stdout for the protocol; return private (input fd, output fd).

    Afterwards fd 0 reads /dev/null, fd 1 writes to stderr, ``sys.stdout`` is ``sys.stderr``.
    """
    sys.stdout.flush()
    in_fd = os.dup(0)
    out_fd = os.dup(1)
    devnull = os.open(os.devnull, os.O_RDONLY)
    try:
        os.dup2(devnull, 0)
    finally:
        os.close(devnull)
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    sys.stdin = open(os.devnull, encoding="utf-8")
    return in_fd, out_fd


def enlarge_pipes(*fds: int, size: int = PIPE_BYTES) -> dict[int, int]:
    """Ask for ``size`` bytes of capacity on each pipe among ``fds``; return each pipe's capacity after.

    Kapacitor writes every point to the UDF in two unbuffered writes and reads the answers
    4 KiB at a time; with the kernel's default 64 KiB pipes either side blocks often (a
    point of errloop_events is ~1.3 KB), and each block and wake-up costs both processes
    CPU. 256 KiB lets a run of ~200 points pass without one (measured inside Kapacitor,
    benchmarks/udf_kapacitor.py: the classify UDF's CPU per point ~30 -> ~25 us, mirror's
    ~10 -> ~6 us; 1 MiB was no faster, and a keepalive request waits behind whatever the
    input pipe holds: 256 KiB is ~5 ms of classify's work). Memory stays bounded: the kernel
    holds at most ``size`` per pipe. The size is capped by ``/proc/sys/fs/pipe-max-size``; a
    refusal (a user over their pipe quota, an fd that is no pipe) keeps the pipe as it was;
    so does a system without ``F_SETPIPE_SZ`` (not Linux).
    """
    get_size = getattr(fcntl, "F_GETPIPE_SZ", None)
    set_size = getattr(fcntl, "F_SETPIPE_SZ", None)
    if get_size is None or set_size is None:  # not Linux: pipes keep their size
        return {}
    try:
        with open("/proc/sys/fs/pipe-max-size") as f:
            size = min(size, int(f.read()))
    except (OSError, ValueError):
        pass
    sizes: dict[int, int] = {}
    for fd in fds:
        try:
            if fcntl.fcntl(fd, get_size) < size:
                fcntl.fcntl(fd, set_size, size)
            sizes[fd] = fcntl.fcntl(fd, get_size)
        except OSError:
            continue  # not a pipe, or no more pipe memory for this user: keep it as it is
    return sizes


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        view = view[written:]


def serve_process(factory: HandlerFactory, name: str = "udf") -> int:
    """Serve one Kapacitor conversation over stdin/stdout; return the exit status."""
    in_fd, out_fd = take_stdio()
    enlarge_pipes(in_fd, out_fd)

    def read(size: int) -> bytes:
        return os.read(in_fd, size)

    def sink(data: bytes) -> None:
        _write_all(out_fd, data)

    status = Connection(factory, read, sink, label=name).run()
    os.close(out_fd)
    os.close(in_fd)
    return status


class SocketServer:
    """A Unix stream socket server: one handler instance and one thread per connection."""

    def __init__(self, factory: HandlerFactory, path: str, name: str = "udf") -> None:
        self.factory = factory
        self.path = path
        self.name = name
        self._stop = threading.Event()
        self._ready = threading.Event()
        self._listener: socket.socket | None = None
        self._threads: list[threading.Thread] = []
        self._accepted = 0

    def bind(self) -> None:
        """Create the socket file (replacing a stale one) and start listening."""
        _remove_stale_socket(self.path)
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            listener.bind(self.path)
            listener.listen(64)
            listener.settimeout(ACCEPT_POLL_S)
        except OSError:
            listener.close()
            raise
        self._listener = listener
        self._ready.set()

    def wait_ready(self, timeout: float | None = None) -> bool:
        """Block until the socket is listening (for tests and embedding)."""
        return self._ready.wait(timeout)

    def serve_forever(self) -> int:
        """Accept connections until :meth:`shutdown`; return 0."""
        if self._listener is None:
            self.bind()
        listener = self._listener
        assert listener is not None
        log.info("%s: listening on %s", self.name, self.path)
        try:
            while not self._stop.is_set():
                try:
                    conn, _ = listener.accept()
                except TimeoutError:
                    continue
                except OSError as exc:
                    if self._stop.is_set():
                        break
                    log.error("%s: accept failed: %s", self.name, exc)
                    continue
                self._accepted += 1
                thread = threading.Thread(
                    target=self._serve_connection,
                    args=(conn, f"{self.name}#{self._accepted}"),
                    name=f"{self.name}-conn-{self._accepted}",
                    daemon=True,
                )
                self._threads = [t for t in self._threads if t.is_alive()]
                self._threads.append(thread)
                thread.start()
        finally:
            listener.close()
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self.path)
        open_conns = sum(1 for t in self._threads if t.is_alive())
        log.info("%s: stopped after %d connections (%d still open)", self.name, self._accepted, open_conns)
        return 0

    def shutdown(self) -> None:
        """Stop accepting; :meth:`serve_forever` returns within ACCEPT_POLL_S seconds."""
        self._stop.set()

    def _serve_connection(self, conn: socket.socket, label: str) -> None:
        conn.setblocking(True)
        try:
            Connection(self.factory, conn.recv, conn.sendall, label=label).run()
        except Exception:
            log.exception("%s: connection failed", label)
        finally:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_WR)
            conn.close()


def _remove_stale_socket(path: str) -> None:
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        return
    if not stat.S_ISSOCK(mode):
        raise FileExistsError(f"{path} exists and is not a socket; refusing to replace it")
    probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        probe.connect(path)
    except OSError:
        os.unlink(path)  # nobody listens: a leftover from a dead server
        return
    finally:
        probe.close()
    raise FileExistsError(f"{path} is in use by a running server")


def serve_socket(factory: HandlerFactory, path: str, name: str = "udf") -> int:
    """Run a socket server until SIGTERM/SIGINT; return the exit status."""
    server = SocketServer(factory, path, name)
    try:
        server.bind()
    except OSError as exc:
        log.error("%s: cannot listen on %s: %s", name, path, exc)
        return EXIT_USAGE
    if threading.current_thread() is threading.main_thread():

        def stop(signum: int, frame: FrameType | None) -> None:
            server.shutdown()

        signal.signal(signal.SIGTERM, stop)
        signal.signal(signal.SIGINT, stop)
    return server.serve_forever()


GC_THRESHOLD0: Final = 10_000
"""Allocations between two young collections of the cyclic GC (CPython's default: 700)."""


def tune_gc() -> None:
    """Fewer cyclic-GC passes for a process that allocates short-lived tuples per point.

    A UDF's hot loop makes container objects (keys, tuples, lists) that reference counting
    frees at once; with CPython's default threshold the cyclic GC still runs every 700
    allocations and its older generations walk the whole heap (rules, regex sets,
    templates). A higher first threshold, and :func:`gc.freeze` once a handler is
    initialised (``Connection``), cut the classify UDF's CPU per point by about a fifth;
    what the GC still finds is collected as before.
    """
    gc.set_threshold(GC_THRESHOLD0, *gc.get_threshold()[1:])


def run(factory: HandlerFactory, socket_path: str | None = None, name: str = "udf") -> int:
    """Serve ``factory``'s handlers: over stdin/stdout, or on ``socket_path`` if given."""
    setup_logging()
    tune_gc()
    if socket_path:
        return serve_socket(factory, socket_path, name)
    return serve_process(factory, name)
