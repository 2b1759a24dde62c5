"""Join the lines of one multi-line record before parsing: Go panics and fatal errors, zap console stacks.

A record starts at a line that can be followed by more of it:

- ``panic``: ``panic: …``, ``fatal error: …``, ``runtime: …``, ``[signal …``,
  ``SIGQUIT: …`` (any ``SIGxxx: ``), ``goroutine N [state]:`` or net/http's log line
  ``… http: panic serving ADDR: …`` of a recovered handler panic; it goes on with blank
  lines, indented lines (``\\tfile.go:12 +0x1d``, ``\\tpanic: …`` of a re-panic), further
  ``goroutine`` headers, ``created by`` lines, more ``panic:``/``fatal error:``/
  ``[signal``/``runtime:`` lines, ``...additional frames elided...``, and function
  lines (``main.(*T).m(0xc000, {0x1, 0x2})``, ``panic({…})``). Once a goroutine block
  has begun, a new ``panic:``/``fatal error:``/… line at the start of a line opens the
  next record (a second panic of the same process, or of its restart).
- ``console``: a zap console line at warn level or above (ISO time ⇥ ``WARN``/``ERROR``/
  ``DPANIC``/``PANIC``/``FATAL`` ⇥ …), which zap's development config follows by its
  stack: function lines without arguments and indented ``file:line`` lines.

Any other line passes straight through (a record of one line). A pending record is
handed on when a line of the same file does not continue it, when nothing came for
``idle_s`` (so a panic at the very end of a log is not held), or when it exceeds
``max_lines``/``max_bytes`` (further continuation lines are then dropped and the record
flagged truncated, so a dump of 100,000 goroutines is one event, not 100,000).

A record keeps the offset of its first line and is its lines' bytes joined by ``\\n``,
so a one-line record is exactly the line (its ``event_id`` does not change), and a
re-read record gets the same id. :meth:`Grouper.held` gives, per file, the offset of
the record still pending, so saved positions never pass a line that was not sent.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Final, Literal

from errloop.telegraf.errlog.tailer import Line

DEFAULT_IDLE_S: Final = 1.0
DEFAULT_MAX_LINES: Final = 20_000
DEFAULT_MAX_BYTES: Final = 1 << 20

Kind = Literal["panic", "console"]

_PANIC_START: Final = re.compile(
    rb"^(?:panic: |fatal error: |runtime: |\[signal |SIG[A-Z]{2,8}: |goroutine \d+ (?:gp=\S+ m=\S+ (?:mp=\S+ )?)?\[)"
)
_HTTP_PANIC: Final = re.compile(rb"^[^\n]{0,120}?\bhttp: panic serving ")
_CONSOLE_START: Final = re.compile(rb"^\d{4}-\d{2}-\d{2}T[^\t]*\t(?:WARN|ERROR|DPANIC|PANIC|FATAL)\t")
_PANIC_MORE: Final = re.compile(
    rb"^(?:[ \t]|$|goroutine \d+ |created by |panic: |fatal error: |\[signal |runtime: |\.\.\.|"
    rb"\[originating from goroutine |PC=0x|(?:r[a-z0-9]{1,5}|[cdefgs]s|[a-z]{2,6}) +0x[0-9a-f]+$)"
)
_FUNCTION: Final = re.compile(rb"^[A-Za-z_][^\s]*(?:\(.*\))?\r?$")
_FUNCTION_BARE: Final = re.compile(rb"^[A-Za-z_][^\s]*\r?$")


def starts(data: bytes) -> Kind | None:
    """The kind of multi-line record this line opens, or None for a line that stands alone."""
    if _PANIC_START.match(data) or (data.find(b"http: panic serving ", 0, 160) >= 0 and _HTTP_PANIC.match(data)):
        return "panic"
    if _CONSOLE_START.match(data):
        return "console"
    return None


_GOROUTINE_HEADER: Final = re.compile(rb"^goroutine \d+ ")


def continues(kind: Kind, data: bytes, in_stack: bool = False) -> bool:
    """Whether ``data`` is the next line of a pending record of ``kind``.

    ``in_stack``: the record already holds a goroutine block; a line that opens a dump
    (``panic:``, ``fatal error:``, … but not a further ``goroutine`` header) then starts
    the next record: the same process panicking again, or its restart crashing.
    """
    if kind == "panic":
        if in_stack and data[:1] not in (b"", b"\t", b" ") and starts(data) == "panic":
            return _GOROUTINE_HEADER.match(data) is not None
        if _PANIC_MORE.match(data):
            return True
        return (b"." in data[:256] and _FUNCTION.match(data) is not None) or data.startswith(b"panic(")
    if data[:1] == b"\t":
        return True
    return b"." in data[:256] and _FUNCTION_BARE.match(data) is not None


@dataclass(frozen=True, slots=True)
class Grouped:
    """One record: ``data`` is its lines joined by ``\\n``; ``offset`` that of its first line."""

    source: str
    offset: int
    data: bytes
    lines: int = 1
    truncated: bool = False
    time_ns: int | None = None  # a container wrapper's time of the first line (errlog.container)
    service: str = ""  # a compose service prefix of the first line


@dataclass
class _Pending:
    kind: Kind
    source: str
    offset: int
    parts: list[bytes]
    last: float
    size: int
    truncated: bool = False
    dropped: int = 0
    time_ns: int | None = None
    service: str = ""
    in_stack: bool = False

    def done(self) -> Grouped:
        parts = self.parts
        while len(parts) > 1 and not parts[-1].strip():  # blank lines after a dump belong to it, not to the event
            parts = parts[:-1]
        return Grouped(
            self.source,
            self.offset,
            b"\n".join(parts),
            len(self.parts) + self.dropped,
            self.truncated,
            self.time_ns,
            self.service,
        )


class Grouper:
    """Per-file grouping of lines into records; see the module docstring."""

    def __init__(
        self,
        *,
        idle_s: float = DEFAULT_IDLE_S,
        max_lines: int = DEFAULT_MAX_LINES,
        max_bytes: int = DEFAULT_MAX_BYTES,
    ) -> None:
        self.idle_s = idle_s
        self.max_lines = max_lines
        self.max_bytes = max_bytes
        self._pending: dict[str, _Pending] = {}

    def push(self, line: Line, now: float, time_ns: int | None = None, service: str = "") -> list[Grouped]:
        """Records completed by this line (the pending one it does not continue, itself when it stands alone).

        ``time_ns``/``service``: what a container wrapper said about the line (kept from a record's first line).
        """
        out: list[Grouped] = []
        pending = self._pending.get(line.source)
        if pending is not None:
            if continues(pending.kind, line.data, pending.in_stack):
                pending.last = now
                if not pending.in_stack and _GOROUTINE_HEADER.match(line.data):
                    pending.in_stack = True
                if len(pending.parts) >= self.max_lines or pending.size + len(line.data) + 1 > self.max_bytes:
                    pending.dropped += 1
                    pending.truncated = True
                else:
                    pending.parts.append(line.data)
                    pending.size += len(line.data) + 1
                    pending.truncated |= line.truncated
                return out
            out.append(pending.done())
            del self._pending[line.source]
        kind = starts(line.data)
        if kind == "panic" and _GOROUTINE_HEADER.match(line.data):
            self._pending[line.source] = _Pending(
                kind,
                line.source,
                line.offset,
                [line.data],
                now,
                len(line.data),
                line.truncated,
                0,
                time_ns,
                service,
                True,
            )
            return out
        if kind is None:
            out.append(Grouped(line.source, line.offset, line.data, 1, line.truncated, time_ns, service))
        else:
            self._pending[line.source] = _Pending(
                kind, line.source, line.offset, [line.data], now, len(line.data), line.truncated, 0, time_ns, service
            )
        return out

    def flush_idle(self, now: float) -> list[Grouped]:
        """Records that got no line for ``idle_s``."""
        out: list[Grouped] = []
        for source, pending in list(self._pending.items()):
            if now - pending.last >= self.idle_s:
                out.append(pending.done())
                del self._pending[source]
        return out

    def flush_all(self) -> list[Grouped]:
        """Every pending record (end of input)."""
        out = [p.done() for p in self._pending.values()]
        self._pending.clear()
        return out

    def idle(self) -> bool:
        """Whether no record is pending (a line that :func:`starts` none is then a record of its own)."""
        return not self._pending

    def held(self) -> dict[str, int]:
        """File → offset of its pending record's first line (positions must not be saved past it)."""
        return {source: p.offset for source, p in self._pending.items()}
