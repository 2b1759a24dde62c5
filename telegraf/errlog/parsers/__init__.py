"""One parser module per log format; each turns a line into a format-neutral :class:`Record`.

A parser answers ``None`` for a line that is not in its format, so formats can be tried
in turn (:data:`PARSERS` is the one table from config name to parser). Parsers only
read the line: names, masking, fingerprints and the event itself are the normaliser's.
"""

from __future__ import annotations

from typing import Final

from errloop.telegraf.errlog.parsers.base import LineParser, Record
from errloop.telegraf.errlog.parsers.zap_json import ZapJsonParser

PARSERS: Final[dict[str, LineParser]] = {
    ZapJsonParser.name: ZapJsonParser(),
}
"""Format name (config ``formats``, the event's ``format`` tag) → parser."""

__all__ = ["PARSERS", "LineParser", "Record", "ZapJsonParser"]
