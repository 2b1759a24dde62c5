"""One parser module per log format; each turns a line into a format-neutral :class:`Record`.

A parser answers ``None`` for a line that is not in its format, so formats can be tried
in turn (:data:`PARSERS` is the one table from config name to parser, in the default
order: cheap first-character checks, JSON formats told apart by their key names, the
generic ones last). Parsers only read the line: names, masking, fingerprints and the
event itself are the normaliser's. A record may span lines (a panic, zap's console
stack): the grouping stage (:mod:`errloop.telegraf.errlog.group`) joins them first.
"""

from __future__ import annotations

from typing import Final

from errloop.telegraf.errlog.parsers.base import LineParser, Record
from errloop.telegraf.errlog.parsers.go_panic import GoPanicParser
from errloop.telegraf.errlog.parsers.klog import KlogParser
from errloop.telegraf.errlog.parsers.logfmt import LogfmtParser
from errloop.telegraf.errlog.parsers.logrus_json import LogrusJsonParser
from errloop.telegraf.errlog.parsers.logrus_text import LogrusTextParser
from errloop.telegraf.errlog.parsers.slog_json import SlogJsonParser
from errloop.telegraf.errlog.parsers.slog_text import SlogTextParser
from errloop.telegraf.errlog.parsers.stdlog import StdlogParser
from errloop.telegraf.errlog.parsers.zap_console import ZapConsoleParser
from errloop.telegraf.errlog.parsers.zap_json import ZapJsonParser
from errloop.telegraf.errlog.parsers.zerolog_json import ZerologJsonParser

_ALL: Final[tuple[LineParser, ...]] = (
    GoPanicParser(),  # "panic: ", "fatal error: ", "goroutine N [" …
    ZerologJsonParser(),  # "{" + "message", no "msg"/"ts"
    SlogJsonParser(),  # "{" + "msg" + upper-case slog level, no "ts"
    LogrusJsonParser(),  # "{" + "msg" + "time", keys sorted, no "ts"
    ZapJsonParser(),  # "{" + any level key: zap, and the JSON the others did not claim
    ZapConsoleParser(),  # ISO time ⇥ LEVEL ⇥ …
    KlogParser(),  # "E1127 13:03:45.517696 …] "
    SlogTextParser(),  # time=… level=ERROR …
    LogrusTextParser(),  # time="…" level=error …
    LogfmtParser(),  # level=error … msg=…
    StdlogParser(),  # 2024/11/27 13:03:45 …
)

PARSERS: Final[dict[str, LineParser]] = {p.name: p for p in _ALL}
"""Format name (config ``formats``, the event's ``format`` tag) → parser, in the default order."""

JSON_FORMATS: Final = frozenset(("zerolog_json", "slog_json", "logrus_json", "zap_json"))
"""The formats that only take a JSON object: a line that does not start with ``{`` (stripped) is none of them."""

__all__ = ["JSON_FORMATS", "PARSERS", "LineParser", "Record", "ZapJsonParser"]
