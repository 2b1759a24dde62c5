"""Logs for Telegraf: one stderr line per record, prefixed with Telegraf's level letters.

Telegraf logs every stderr line of an execd program; a line starting with ``E! ``,
``W! ``, ``I! `` or ``D! `` gets that level. Records are folded onto one line (a
traceback would otherwise become many error lines) and cut well below the 64 KiB
line limit of Telegraf's stderr reader.
"""

from __future__ import annotations

import logging
import sys
from typing import Final, TextIO

MAX_LOG_LINE: Final = 16_000

_PREFIX: Final = {
    logging.CRITICAL: "E! ",
    logging.ERROR: "E! ",
    logging.WARNING: "W! ",
    logging.INFO: "I! ",
    logging.DEBUG: "D! ",
}


class TelegrafLogFormatter(logging.Formatter):
    """``<level letter>! [logger] message``, on one line."""

    def __init__(self) -> None:
        super().__init__("[%(name)s] %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        text = super().format(record).replace("\r", "").replace("\n", " | ")
        prefix = _PREFIX.get(record.levelno, "E! " if record.levelno > logging.ERROR else "D! ")
        return prefix + text[:MAX_LOG_LINE]


def setup_logging(level: int = logging.INFO, stream: TextIO | None = None) -> None:
    """Send the root logger to stderr (or ``stream``) in Telegraf's format; stdout stays clean."""
    handler = logging.StreamHandler(stream if stream is not None else sys.stderr)
    handler.setFormatter(TelegrafLogFormatter())
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level)
