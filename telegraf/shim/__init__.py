"""The execd shim for Python input plugins: stdout carries line protocol only, logs go to stderr.

Telegraf starts the program with ``[[inputs.execd]]`` and reads line protocol from its
stdout. :func:`run` drives an :class:`InputPlugin` (``gather`` → write and flush →
``committed``), answers SIGTERM/SIGINT/SIGHUP and stdin EOF with a graceful stop, ends
cleanly when Telegraf closes the pipe, and never buffers more than one batch.
"""

from errloop.telegraf.shim.logs import TelegrafLogFormatter, setup_logging
from errloop.telegraf.shim.plugin import InputPlugin, Point
from errloop.telegraf.shim.runner import SIGNAL_MODES, RunResult, run
from errloop.telegraf.shim.writer import PipeClosed, StdoutWriter, protect_stdout

__all__ = [
    "SIGNAL_MODES",
    "InputPlugin",
    "PipeClosed",
    "Point",
    "RunResult",
    "StdoutWriter",
    "TelegrafLogFormatter",
    "protect_stdout",
    "run",
    "setup_logging",
]
