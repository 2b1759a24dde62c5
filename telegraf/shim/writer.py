"""Stdout for line protocol only: a private descriptor, whole batches, back-pressure, clean EPIPE."""

from __future__ import annotations

import errno
import os
import select
import sys
import time
from collections.abc import Callable, Sequence


class PipeClosed(Exception):
    """The reader of our stdout is gone (EPIPE): Telegraf stopped or restarted us."""


def protect_stdout() -> int:
    """Keep the real stdout for line protocol only; returns its private descriptor.

    fd 1 and ``sys.stdout`` are pointed at stderr afterwards, so a stray ``print`` or a
    library writing to fd 1 ends up in Telegraf's log instead of corrupting the stream.
    """
    sys.stdout.flush()
    private = os.dup(1)  # not inheritable: child processes do not get the pipe
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    return private


class StdoutWriter:
    """Writes batches of lines to a descriptor, blocking while the reader does not read.

    The descriptor is switched to non-blocking mode so that a wait for the reader can be
    abandoned at shutdown (``give_up``); otherwise writing waits as long as needed.
    Nothing is buffered between calls.
    """

    def __init__(self, fd: int, *, poll_s: float = 0.2) -> None:
        self.fd = fd
        self.poll_s = poll_s
        self.bytes_written = 0
        self.lines_written = 0
        self.last_progress = time.monotonic()  # when the reader last took bytes
        os.set_blocking(fd, False)

    def write_lines(self, lines: Sequence[str], give_up: Callable[[], bool] = lambda: False) -> bool:
        """Write ``lines`` (each without newline) and return True once all bytes are out.

        Returns False when ``give_up()`` turns true while the reader is not reading (the
        batch may then be partly written). Raises :class:`PipeClosed` on EPIPE.
        """
        if not lines:
            return True
        data = ("\n".join(lines) + "\n").encode("utf-8", "replace")
        view = memoryview(data)
        while view:
            try:
                n = os.write(self.fd, view)
            except BlockingIOError:
                if give_up():
                    return False
                select.select([], [self.fd], [], self.poll_s)
                continue
            except BrokenPipeError as exc:
                raise PipeClosed(str(exc)) from exc
            except OSError as exc:
                if exc.errno in (errno.EPIPE, errno.EBADF):
                    raise PipeClosed(str(exc)) from exc
                raise
            view = view[n:]
            self.bytes_written += n
            self.last_progress = time.monotonic()
        self.lines_written += len(lines)
        return True

    def close(self) -> None:
        try:
            os.close(self.fd)
        except OSError:
            pass
