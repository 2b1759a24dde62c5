"""The UDFs errloop ships, by the name used in kapacitor.conf and TICKscript (``@NAME()``).

``main(name, socket)`` is what ``errloop udf NAME [--socket PATH]`` and
``python -m errloop.udf NAME`` call. :func:`info` and :func:`kapacitor_conf` give the
deploy code what it needs to write ``[udf.functions.NAME]`` sections and TICKscripts
without starting a UDF.
"""

from __future__ import annotations

import importlib
import sys
from dataclasses import dataclass
from typing import Final

from errloop.udf.agent import Handler, Info, run
from errloop.udf.agent.serve import EXIT_USAGE, setup_logging


@dataclass(frozen=True)
class UDF:
    """One shipped UDF: its config name and where its handler class lives."""

    name: str
    module: str  # imported only when the UDF is used
    cls: str
    summary: str

    def handler(self) -> type[Handler]:
        """The handler class (imports its module)."""
        handler: type[Handler] = getattr(importlib.import_module(self.module), self.cls)
        return handler


_UDFS: Final = (
    UDF(
        "errloop_classify",
        "errloop.udf.classify.handler",
        "ClassifyHandler",
        "classify errloop_events points into errloop_classified points",
    ),
    UDF("errloop_mirror", "errloop.udf.mirror.handler", "MirrorHandler", "pass every point through unchanged"),
)
UDFS: Final = {u.name: u for u in _UDFS}
NAMES: Final = [u.name for u in _UDFS]

DEFAULT_TIMEOUT: Final = "10s"


def get(name: str) -> UDF:
    """The UDF called ``name``; KeyError with the known names otherwise."""
    try:
        return UDFS[name]
    except KeyError:
        raise KeyError(f"unknown UDF {name!r}; known: {', '.join(NAMES)}") from None


def info(name: str) -> Info:
    """Edge types and options of UDF ``name`` (what it answers to Kapacitor's InfoRequest)."""
    return get(name).handler().info()


def _toml_str(value: str) -> str:
    escaped = value.replace("\\", "\\\\").replace('"', '\\"')
    return f'"{escaped}"'


def kapacitor_conf(
    name: str,
    python: str | None = None,
    socket: str | None = None,
    timeout: str = DEFAULT_TIMEOUT,
) -> str:
    """The ``[udf.functions.NAME]`` section for kapacitor.conf (without the ``[udf]`` header).

    Process form runs ``<python> -m errloop.udf NAME`` (``python`` defaults to the current
    interpreter; give an absolute path); with ``socket`` the section points at a running
    ``errloop udf NAME --socket PATH`` server instead.
    """
    get(name)
    lines = [f"[udf.functions.{name}]"]
    if socket:
        lines.append(f"  socket = {_toml_str(socket)}")
    else:
        lines.append(f"  prog = {_toml_str(python or sys.executable)}")
        lines.append(f'  args = ["-m", "errloop.udf", {_toml_str(name)}]')
    lines.append(f"  timeout = {_toml_str(timeout)}")
    return "\n".join(lines) + "\n"


def main(name: str, socket: str | None = None) -> int:
    """Serve UDF ``name`` over stdin/stdout, or on a Unix socket; return the exit status."""
    setup_logging()
    try:
        udf = get(name)
    except KeyError as exc:
        print(f"errloop udf: {exc.args[0]}", file=sys.stderr)
        return EXIT_USAGE
    return run(udf.handler(), socket_path=socket, name=name)
