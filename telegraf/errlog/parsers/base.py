"""The shape every parser returns, and the parser protocol."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Protocol


@dataclass(frozen=True, slots=True)
class Record:
    """One log record as the line says it, before normalising.

    ``level`` is lower case as found (the normaliser maps aliases); ``ts_ns`` is None when
    the line has no usable time; ``goroutine_id`` is set by the panic parser. ``extra`` holds
    every other key with its JSON value (str, int, float, bool, None, list or dict), for the
    normaliser's well-known keys.
    """

    format: str
    level: str
    message: str
    ts_ns: int | None = None
    logger: str = ""
    caller: str = ""
    error: str = ""
    error_verbose: str = ""
    stacktrace: str = ""
    goroutine_id: int | None = None
    extra: Mapping[str, object] = field(default_factory=dict)


class LineParser(Protocol):
    """A log format: ``parse`` returns a :class:`Record`, or None when the line is not this format.

    It may raise on a malformed line of its format; the normaliser then stores the line
    as ``format=unparsed`` and counts an error.
    """

    name: str

    def parse(self, line: str) -> Record | None: ...
