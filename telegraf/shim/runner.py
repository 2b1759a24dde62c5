"""The run loop: triggers, one batch at a time, graceful stop.

Triggers by ``signal`` mode (the ``signal`` key of ``[[inputs.execd]]``):

- ``"none"``: the plugin pushes on its own: ``gather`` every ``interval_s``, and again at
  once after a non-empty batch (so a backlog drains at full speed; a plugin in this mode
  returns nothing when nothing is new).
- ``"STDIN"``: Telegraf writes a newline each interval; one ``gather`` per newline(s).
- ``"SIGHUP"``, ``"SIGUSR1"``, ``"SIGUSR2"``: one ``gather`` per signal.

A graceful stop comes from SIGTERM, SIGINT, SIGHUP (unless it is the trigger) or EOF on
stdin (Telegraf closes stdin when it stops or reloads, then waits 5 s before SIGTERM).
It runs one last ``gather`` so nothing read is left behind, writes it, calls
``committed`` and ``close``. If the reader stops reading at that point, the shim gives up
once it has taken nothing for ``stop_timeout_s`` (and the stop is that old), without
``committed`` (nothing is marked as delivered); a reader that is slow but reading is waited
for, so a busy machine does not turn a stop into repeated lines.
A closed stdout (EPIPE) ends the loop at once: ``close`` without ``committed``.
"""

from __future__ import annotations

import logging
import os
import select
import signal as signals
import stat
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from types import FrameType
from typing import Final

from errloop.telegraf import lineproto
from errloop.telegraf.shim.plugin import InputPlugin, Point
from errloop.telegraf.shim.writer import PipeClosed, StdoutWriter, protect_stdout

log = logging.getLogger("errloop.shim")

SIGNAL_MODES: Final = ("none", "STDIN", "SIGHUP", "SIGUSR1", "SIGUSR2")

_Handler = Callable[[int, FrameType | None], object] | int | None


@dataclass
class RunResult:
    """How the loop ended (``exit_code`` is what the process should return)."""

    exit_code: int = 0
    reason: str = ""
    batches: int = 0
    lines: int = 0
    dropped: int = 0  # points the encoder refused
    plugin_errors: int = 0
    extra: dict[str, int] = field(default_factory=dict)


class _Loop:
    def __init__(
        self,
        plugin: InputPlugin,
        writer: StdoutWriter,
        *,
        mode: str,
        interval_s: float,
        stop_timeout_s: float,
        in_fd: int | None,
        watch_stdin: bool,
    ) -> None:
        self.plugin = plugin
        self.writer = writer
        self.mode = mode
        self.interval_s = interval_s
        self.stop_timeout_s = stop_timeout_s
        self.in_fd = in_fd
        self.watch_stdin = watch_stdin and in_fd is not None
        self.result = RunResult()
        self.stop_reason = ""
        self.stop_deadline = 0.0
        self.signal_triggers = 0
        self.stdin_triggers = 0
        self.wake_r, self.wake_w = os.pipe()
        os.set_blocking(self.wake_r, False)
        os.set_blocking(self.wake_w, False)

    # -- signals -------------------------------------------------------------------------
    def request_stop(self, reason: str) -> None:
        if not self.stop_reason:
            self.stop_reason = reason
            self.stop_deadline = time.monotonic() + self.stop_timeout_s
        self._wake()

    def _wake(self) -> None:
        try:
            os.write(self.wake_w, b"x")
        except OSError:
            pass

    def on_signal(self, signum: int, _frame: FrameType | None) -> None:
        name = signals.Signals(signum).name
        if name == self.mode:
            self.signal_triggers += 1
            self._wake()
        else:
            self.request_stop(name)

    # -- one batch ----------------------------------------------------------------------
    def give_up(self) -> bool:
        """Asked while the reader does not read: has a stop been requested, its grace passed, and
        the reader taken nothing for as long (a slow reader that still reads is waited for)?"""
        if self.watch_stdin and self.in_fd is not None:
            readable, _, _ = select.select([self.in_fd], [], [], 0)
            if readable:
                self.read_stdin()
        if not self.stop_reason:
            return False
        now = time.monotonic()
        return now > self.stop_deadline and now > self.writer.last_progress + self.stop_timeout_s

    def cycle(self) -> bool:
        """One gather → write → committed; True when a non-empty batch went out."""
        try:
            items = list(self.plugin.gather())
        except Exception:
            self.result.plugin_errors += 1
            log.exception("gather failed")
            return False
        lines: list[str] = []
        for item in items:
            if isinstance(item, Point):
                try:
                    lines.append(item.encode())
                except lineproto.LineProtocolError as exc:
                    self.result.dropped += 1
                    log.error("dropped a point: %s", exc)
            else:
                lines.append(item)
        if lines:
            if not self.writer.write_lines(lines, self.give_up):
                log.warning("stdout reader blocked past the stop timeout; %d lines not confirmed", len(lines))
                raise _GaveUp
            self.result.batches += 1
            self.result.lines += len(lines)
        try:
            self.plugin.committed()
        except Exception:
            self.result.plugin_errors += 1
            log.exception("committed failed")
        return bool(lines)

    # -- stdin --------------------------------------------------------------------------
    def read_stdin(self) -> None:
        assert self.in_fd is not None
        try:
            data = os.read(self.in_fd, 65536)
        except BlockingIOError:
            return
        except OSError as exc:
            self.request_stop(f"stdin error: {exc}")
            return
        if not data:
            self.watch_stdin = False
            self.request_stop("stdin closed")
        elif self.mode == "STDIN":
            self.stdin_triggers += data.count(b"\n")

    def drain_wake(self) -> None:
        try:
            while os.read(self.wake_r, 4096):
                pass
        except BlockingIOError:
            pass

    # -- the loop -----------------------------------------------------------------------
    def loop(self) -> None:
        next_gather = time.monotonic()
        while not self.stop_reason:
            now = time.monotonic()
            if self.mode == "none":
                timeout = max(0.0, next_gather - now)
            else:
                timeout = 1.0
            rlist = [self.wake_r] + ([self.in_fd] if self.watch_stdin and self.in_fd is not None else [])
            readable, _, _ = select.select(rlist, [], [], timeout)
            if self.wake_r in readable:
                self.drain_wake()
            if self.in_fd is not None and self.in_fd in readable:
                self.read_stdin()
            if self.stop_reason:
                break
            if self.mode == "none":
                if time.monotonic() >= next_gather:
                    wrote = self.cycle()
                    # more may be waiting after a non-empty batch: ask again at once
                    next_gather = time.monotonic() + (0.0 if wrote else self.interval_s)
            elif self.mode == "STDIN":
                if self.stdin_triggers:
                    self.stdin_triggers = 0
                    self.cycle()
            elif self.signal_triggers:
                self.signal_triggers = 0
                self.cycle()

    def close(self) -> None:
        for fd in (self.wake_r, self.wake_w):
            try:
                os.close(fd)
            except OSError:
                pass


class _GaveUp(Exception):
    pass


def _is_pipe_or_socket(fd: int) -> bool:
    try:
        mode = os.fstat(fd).st_mode
    except OSError:
        return False
    return stat.S_ISFIFO(mode) or stat.S_ISSOCK(mode)


def run(
    plugin: InputPlugin,
    *,
    signal: str = "none",
    interval_s: float = 0.1,
    stop_timeout_s: float = 4.0,
    out_fd: int | None = None,
    in_fd: int | None = 0,
    watch_stdin: bool | None = None,
    install_signals: bool = True,
) -> RunResult:
    """Run ``plugin`` until a stop; returns how it ended (``exit_code`` 0 for every clean end).

    ``out_fd=None`` protects the real stdout (:func:`protect_stdout`) and writes there.
    ``watch_stdin=None`` watches stdin for EOF only when it is a pipe or socket (as under
    Telegraf), so running by hand with stdin on a terminal or /dev/null keeps going;
    ``"STDIN"`` mode always watches it. Signal handlers are installed only in the main
    thread and restored on return.
    """
    if signal not in SIGNAL_MODES:
        raise ValueError(f"signal must be one of {', '.join(SIGNAL_MODES)}, got {signal!r}")
    if not interval_s > 0:
        raise ValueError(f"interval_s must be > 0, got {interval_s!r}")
    fd = protect_stdout() if out_fd is None else out_fd
    writer = StdoutWriter(fd)
    if watch_stdin is None:
        watch_stdin = signal == "STDIN" or (in_fd is not None and _is_pipe_or_socket(in_fd))
    loop = _Loop(
        plugin,
        writer,
        mode=signal,
        interval_s=interval_s,
        stop_timeout_s=stop_timeout_s,
        in_fd=in_fd,
        watch_stdin=watch_stdin,
    )
    previous: dict[signals.Signals, _Handler] = {}
    old_wakeup = -1
    use_signals = install_signals and threading.current_thread() is threading.main_thread()
    if use_signals:
        wanted = [signals.SIGTERM, signals.SIGINT, signals.SIGHUP]
        if signal.startswith("SIG"):
            wanted.append(signals.Signals[signal])
        for sig in dict.fromkeys(wanted):
            previous[sig] = signals.signal(sig, loop.on_signal)
        old_wakeup = signals.set_wakeup_fd(loop.wake_w, warn_on_full_buffer=False)
    result = loop.result
    try:
        try:
            loop.loop()
            log.info("stopping: %s", loop.stop_reason)
            loop.cycle()  # flush what is ready
            result.reason = loop.stop_reason
        except PipeClosed:
            result.reason = "stdout closed"
            log.info("stdout closed by the reader; stopping")
        except _GaveUp:
            result.reason = f"{loop.stop_reason}; reader blocked"
        try:
            plugin.close()
        except Exception:
            result.plugin_errors += 1
            log.exception("close failed")
    finally:
        if use_signals:
            signals.set_wakeup_fd(old_wakeup)
            for signum, handler in previous.items():
                signals.signal(signum, handler)
        loop.close()
        if out_fd is None:
            writer.close()
    return result
