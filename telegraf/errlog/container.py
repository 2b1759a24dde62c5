"""Container log wrappers, taken off before the format parsers see a line.

- **CRI** (containerd, CRI-O; Kubernetes' ``/var/log/pods``):
  ``2024-11-27T10:00:00.123456789Z stderr F <line>``; ``P`` marks a partial line whose
  rest follows in the next ``P``/``F`` lines of the file (they are joined).
- **Docker json-file**: ``{"log":"<line>\\n","stream":"stderr","time":"2024-…Z"}``; a
  ``log`` without its ending newline is a partial line (Docker splits at 16 KiB) and is
  joined with the next ones.
- **Compose**: ``docker compose logs`` writes ``<service>  | <line>``.

The wrapper's time is used when the inner line has none (a panic dump has none); the
compose service name when the line names no service and the config sets none. The
joined line keeps the offset of its first piece (and so a stable ``event_id``).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Final

from errloop.telegraf.errlog.tailer import Line
from errloop.telegraf.errlog.timeparse import iso_to_ns

_CRI: Final = re.compile(rb"^(\d{4}-\d{2}-\d{2}T[\d:.]+(?:Z|[+-]\d{2}:?\d{2})) (stdout|stderr) ([FP])(?: (.*))?$", re.S)
_COMPOSE: Final = re.compile(rb"^([A-Za-z0-9][\w.\-]{0,127}?)\s+\| ?(.*)$", re.S)
MAX_JOINED_BYTES: Final = 1 << 20


@dataclass(frozen=True, slots=True)
class Inner:
    """A line without its container wrapper: ``line.data`` is the inner line; time and service from the wrapper."""

    line: Line
    time_ns: int | None = None
    stream: str = ""
    service: str = ""


@dataclass(frozen=True, slots=True)
class _Piece:
    data: bytes
    time_ns: int | None
    stream: str
    partial: bool
    service: str = ""


def _docker(data: bytes) -> _Piece | None:
    try:
        obj = json.loads(data)
    except (json.JSONDecodeError, UnicodeDecodeError, RecursionError):
        return None
    if not isinstance(obj, dict):
        return None
    log = obj.get("log")
    if not isinstance(log, str):
        return None
    stream, ts = obj.get("stream"), obj.get("time")
    partial = not log.endswith("\n")
    inner = log[:-1] if not partial else log
    return _Piece(
        inner.encode("utf-8", "surrogatepass"),
        iso_to_ns(ts) if isinstance(ts, str) else None,
        stream if isinstance(stream, str) else "",
        partial,
    )


def unwrap_once(data: bytes) -> _Piece | None:
    """The inner line of one wrapped line, or None when it carries no container wrapper."""
    if data.startswith(b'{"log":'):
        return _docker(data)
    if data[:1].isdigit():
        m = _CRI.match(data)
        if m is not None:
            ts = iso_to_ns(m.group(1).decode("ascii"))
            return _Piece(m.group(4) or b"", ts, m.group(2).decode("ascii"), m.group(3) == b"P")
    if data.find(b"| ", 0, 160) >= 0 or data.endswith(b"|"):  # "| " within the first 160 bytes
        m = _COMPOSE.match(data)
        if m is not None:
            inner = m.group(2)
            service = m.group(1).decode("ascii")
            # compose names containers <service>-<n>; the event's service is the compose service
            base = re.sub(r"[-_]\d+$", "", service)
            return _Piece(inner, None, "", False, base)
    return None


@dataclass
class _Partial:
    offset: int
    parts: list[bytes]
    size: int
    time_ns: int | None
    stream: str
    truncated: bool
    last: float = 0.0


class Unwrapper:
    """Per file: take off container wrappers and join partial lines; see the module docstring."""

    def __init__(self, *, max_bytes: int = MAX_JOINED_BYTES) -> None:
        self.max_bytes = max_bytes
        self._partial: dict[str, _Partial] = {}

    def push(self, line: Line, now: float = 0.0) -> list[Inner]:
        """The inner lines this line completes (none while a partial line waits for its rest)."""
        piece = unwrap_once(line.data)
        out: list[Inner] = []
        pending = self._partial.get(line.source)
        if piece is None:
            if pending is not None:  # a partial line whose end never came: hand it on as it is
                out.append(self._finish(line.source))
            out.append(Inner(line))
            return out
        if pending is None:
            if not piece.partial:
                out.append(
                    Inner(
                        Line(line.source, line.offset, piece.data, line.truncated),
                        piece.time_ns,
                        piece.stream,
                        piece.service,
                    )
                )
                return out
            pending = self._partial[line.source] = _Partial(line.offset, [], 0, piece.time_ns, piece.stream, False)
        pending.last = now
        if pending.size + len(piece.data) <= self.max_bytes:
            pending.parts.append(piece.data)
            pending.size += len(piece.data)
        else:
            pending.truncated = True
        pending.truncated |= line.truncated
        if not piece.partial:
            out.append(self._finish(line.source))
        return out

    def _finish(self, source: str) -> Inner:
        p = self._partial.pop(source)
        return Inner(Line(source, p.offset, b"".join(p.parts), p.truncated), p.time_ns, p.stream)

    def flush_idle(self, now: float, idle_s: float) -> list[Inner]:
        """Partial lines whose rest did not come for ``idle_s`` (their writer stopped mid-line)."""
        return [self._finish(s) for s, p in list(self._partial.items()) if now - p.last >= idle_s]

    def flush_all(self) -> list[Inner]:
        return [self._finish(s) for s in list(self._partial)]

    def idle(self) -> bool:
        """Whether no partial line waits (a line without a wrapper then passes through unchanged)."""
        return not self._partial

    def held(self) -> dict[str, int]:
        """File → offset of the first piece of a partial line still waiting."""
        return {s: p.offset for s, p in self._partial.items()}
