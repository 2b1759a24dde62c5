"""One failure, one event: a logger's panic-level record and the runtime's dump that follows it.

zap (``Logger.Panic``, and ``DPanic`` in development), logrus (``Panic``) and zerolog
(``Panic()``) write the record, then call ``panic``: the runtime prints ``panic: …`` and
the goroutines right after it (the message, or ``(*logrus.Entry) 0x…`` for logrus). Both
are one failure. :class:`PanicMerger` holds each event logged at ``panic``/``dpanic``
until the next record of its file shows whether that dump follows:

- the next event of that file is a ``go_panic`` dump of a panic (not a ``fatal error``)
  of the same value (its message is the record's, or logrus's ``(*logrus.Entry) 0x…``): one event,
  the logged one (its id, fingerprint, message, fields), with the dump's ``goroutine_id``
  and, when the record had no stack (logrus, zerolog), the dump's stack and as top frame
  the one that called the logger. The dump adds no event of its own; it is counted in
  ``merged``.
- another event, or none until the file is idle (``idle_s`` after the record was held,
  and no multi-line record of that file still open): the held event goes out as it is,
  before what follows it. Lines below the plugin's levels (another goroutine's info
  line between the record and the dump) change nothing.

The fingerprint is always the logged record's own, so an event gets the same one
whether its dump was seen or not (it went to another file, the process was killed).
A held record is not yet sent: :meth:`held` gives its offset so saved positions never
pass it (a restart reads it again, with the same ``event_id``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Final

from errloop.rules.contract import Event
from errloop.telegraf.errlog.gostack import panic_site
from errloop.telegraf.errlog.group import DEFAULT_IDLE_S

LOGGED_PANIC_LEVELS: Final = frozenset(("panic", "dpanic"))
DUMP_FORMAT: Final = "go_panic"


@dataclass(frozen=True, slots=True)
class Outgoing:
    """An event leaving the merger, with the time and offset it came in with."""

    event: Event
    time_ns: int
    source: str
    offset: int


@dataclass(slots=True)
class _Held:
    out: Outgoing
    since: float


def is_logged_panic(event: Event) -> bool:
    """An event a logger wrote at its panic level (the runtime's dump may follow)."""
    return event.get("level") in LOGGED_PANIC_LEVELS and event.get("format") != DUMP_FORMAT


def is_panic_dump(event: Event) -> bool:
    """The runtime's dump of a panic (``panic: …``), not of a fatal error or a signal."""
    return event.get("format") == DUMP_FORMAT and event.get("level") == "panic"


_LOGRUS_ENTRY: Final = re.compile(r"\(\*logrus\.Entry\) 0x[0-9a-f]+")


def dump_of(logged: Event, dump: Event) -> bool:
    """Is ``dump`` the runtime's dump of the panic that ``logged`` announced (same panic value)?"""
    if not is_panic_dump(dump):
        return False
    message = str(dump.get("message", ""))
    if message == logged.get("message"):
        return True
    return str(logged.get("format", "")).startswith("logrus") and _LOGRUS_ENTRY.fullmatch(message) is not None


def merged(logged: Event, dump: Event) -> Event:
    """The logged event completed by its dump: goroutine id, and when it had no stack the dump's, with
    the frame that called the logger as its top frame (:func:`~errloop.telegraf.errlog.gostack.panic_site`)."""
    event = dict(logged)
    if "goroutine_id" not in event and "goroutine_id" in dump:
        event["goroutine_id"] = dump["goroutine_id"]
    stack = dump.get("stack")
    if "stack" not in event and isinstance(stack, str) and stack:
        event["stack"] = stack
        site = panic_site(stack)
        if site is not None:
            event["top_frame"], event["file_line"] = site.function, site.file_line
    return event


class PanicMerger:
    """See the module docstring. Pure: time comes in as ``now`` (monotonic seconds)."""

    def __init__(self, idle_s: float = DEFAULT_IDLE_S) -> None:
        self.idle_s = idle_s
        self._held: dict[str, _Held] = {}
        self.merged = 0

    def push(self, out: Outgoing, now: float) -> list[Outgoing]:
        """The events to send now, in order, once ``out`` (the next event of its file) came in."""
        held = self._held.pop(out.source, None)
        if held is not None and dump_of(held.out.event, out.event):
            self.merged += 1
            return [Outgoing(merged(held.out.event, out.event), held.out.time_ns, held.out.source, held.out.offset)]
        ready = [held.out] if held is not None else []
        if is_logged_panic(out.event):
            self._held[out.source] = _Held(out, now)
        else:
            ready.append(out)
        return ready

    def flush_idle(self, now: float, busy: frozenset[str] | set[str] = frozenset()) -> list[Outgoing]:
        """Held events of files idle for ``idle_s`` (files in ``busy`` still have a record open: not yet)."""
        due = [s for s, h in self._held.items() if now - h.since >= self.idle_s and s not in busy]
        return [self._held.pop(s).out for s in due]

    def flush_all(self) -> list[Outgoing]:
        """Every held event (end of input)."""
        out = [h.out for h in self._held.values()]
        self._held.clear()
        return out

    def idle(self) -> bool:
        return not self._held

    def held(self) -> dict[str, int]:
        """File → offset of the event held there."""
        return {s: h.out.offset for s, h in self._held.items()}
