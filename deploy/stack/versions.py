"""Pinned versions of the TICK programs errloop is tested with (TICK-STACK.md).

Changing a pin here is the only thing that triggers a rebuild: binaries are cached
under ``cache_dir()/<program>-<version>/``.
"""

from __future__ import annotations

import os
from pathlib import Path

TELEGRAF = "1.37.2"
INFLUXDB = "1.13.2"
KAPACITOR = "1.8.3"
PKG_CONFIG = "0.3.0"

# Only the Telegraf plugins errloop uses or tests against ("custom" drops every other one).
TELEGRAF_TAGS = ",".join(
    [
        "custom",
        "inputs.execd",
        "inputs.exec",
        "inputs.tail",
        "inputs.internal",
        "processors.execd",
        "outputs.influxdb",
        "outputs.influxdb_v2",
        "outputs.file",
        "outputs.http",
        "parsers.json",
        "parsers.influx",
    ]
)


def cache_dir() -> Path:
    """Where built binaries live; shared by a developer's machine and its CI runs."""
    env = os.environ.get("ERRLOOP_CACHE")
    base = Path(env) if env else Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "errloop"
    return base / "tick"
