"""What a Python input plugin gives the shim."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Protocol

from errloop.telegraf import lineproto


@dataclass(frozen=True, slots=True)
class Point:
    """One point before encoding; see :func:`errloop.telegraf.lineproto.encode` for the rules."""

    measurement: str
    tags: Mapping[str, str] = field(default_factory=dict)
    fields: Mapping[str, str | int | float | bool] = field(default_factory=dict)
    time_ns: int | None = None

    def encode(self) -> str:
        return lineproto.encode(self.measurement, self.tags, self.fields, self.time_ns)


class InputPlugin(Protocol):
    """A pull-style input: the shim asks, writes, flushes, then confirms.

    ``gather`` returns what is ready now: :class:`Point` objects or lines already encoded
    (one point each, no newline). It must return promptly and bound its batch, because
    the shim does not call it again until the batch is on stdout; that is the
    back-pressure. ``committed`` follows each batch that was written and flushed in full:
    the moment to persist read positions. ``close`` is the last call, after the final
    flush. None of them should raise; the shim logs and survives if one does.
    """

    def gather(self) -> Iterable[Point | str]: ...

    def committed(self) -> None: ...

    def close(self) -> None: ...
