"""The plugin's own config file: TOML with one ``[[inputs.errlog]]`` block (Telegraf's external-plugin form).

Every key is optional except ``files``; unknown keys are refused (as Telegraf refuses
them) so a typo does not pass silently. Durations are Go-style strings (``"100ms"``,
``"10s"``) or numbers of seconds. Errors name the file and the key.
"""

from __future__ import annotations

import socket
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

from errloop.telegraf.errlog.extract import parse_go_duration
from errloop.telegraf.errlog.fingerprint import CURRENT as FINGERPRINT_CURRENT
from errloop.telegraf.errlog.fingerprint import VERSIONS as FINGERPRINT_VERSIONS
from errloop.telegraf.errlog.group import DEFAULT_IDLE_S
from errloop.telegraf.errlog.normalise import DEFAULT_FORMATS, DEFAULT_LEVELS, DEFAULT_MAX_LINE_BYTES
from errloop.telegraf.errlog.parsers import PARSERS

LOG_LEVELS: Final = ("debug", "info", "warn", "error")


class ConfigError(ValueError):
    """A config file that cannot be used; the message is ``file: key: what is wrong``."""


@dataclass(frozen=True)
class Config:
    files: tuple[str, ...]
    from_beginning: bool = False
    poll_interval_s: float = 0.1
    offsets_file: str = ""
    max_line_bytes: int = DEFAULT_MAX_LINE_BYTES
    levels: tuple[str, ...] = DEFAULT_LEVELS
    formats: tuple[str, ...] = DEFAULT_FORMATS
    service: str = ""
    env: str = ""
    host: str = field(default_factory=socket.gethostname)
    in_app_prefixes: tuple[str, ...] = ()
    stats_interval_s: float = 10.0
    keep_raw: bool = False
    fingerprint_version: int = FINGERPRINT_CURRENT
    max_batch_lines: int = 5000
    discover_interval_s: float = 1.0
    rotate_wait_s: float = 5.0
    multiline_wait_s: float = DEFAULT_IDLE_S
    log_level: str = "info"


def parse_duration(value: object) -> float:
    """``"100ms"``/``"10s"``/``"1m30s"`` or a number of seconds → seconds (ValueError otherwise)."""
    if isinstance(value, bool):
        raise ValueError('expected a duration like "100ms" or "10s"')
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        ms = parse_go_duration(value)
        if ms is not None:
            return ms / 1000.0
    raise ValueError(f'expected a duration like "100ms" or "10s", got {value!r}')


def _str_list(key: str, value: object) -> tuple[str, ...]:
    if isinstance(value, str):
        return (value,)
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ValueError("expected a list of strings")
    return tuple(value)


def from_mapping(block: Mapping[str, object], origin: str = "<config>") -> Config:
    """Validate one ``[[inputs.errlog]]`` table into a :class:`Config`."""

    def fail(key: str, msg: str) -> ConfigError:
        return ConfigError(f"{origin}: {key}: {msg}")

    known = {
        "files",
        "from_beginning",
        "poll_interval",
        "offsets_file",
        "max_line_bytes",
        "levels",
        "formats",
        "service",
        "env",
        "host",
        "in_app_prefixes",
        "stats_interval",
        "keep_raw",
        "fingerprint_version",
        "max_batch_lines",
        "discover_interval",
        "rotate_wait",
        "multiline_wait",
        "log_level",
    }
    for key in block:
        if key not in known:
            raise fail(key, f"unknown key (known: {', '.join(sorted(known))})")
    values: dict[str, Any] = {}
    try:
        files = _str_list("files", block.get("files", []))
    except ValueError as exc:
        raise fail("files", str(exc)) from None
    if not files or not all(f.strip() for f in files):
        raise fail("files", "give at least one path or glob")

    for key in ("from_beginning", "keep_raw"):
        if key in block:
            if not isinstance(block[key], bool):
                raise fail(key, "expected true or false")
            values[key] = block[key]
    for key in ("offsets_file", "service", "env", "host"):
        if key in block:
            if not isinstance(block[key], str):
                raise fail(key, "expected a string")
            values[key] = block[key]
    for key, attr, low in (
        ("poll_interval", "poll_interval_s", 0.001),
        ("stats_interval", "stats_interval_s", 0.1),
        ("discover_interval", "discover_interval_s", 0.01),
        ("rotate_wait", "rotate_wait_s", 0.0),
        ("multiline_wait", "multiline_wait_s", 0.0),
    ):
        if key in block:
            try:
                seconds = parse_duration(block[key])
            except ValueError as exc:
                raise fail(key, str(exc)) from None
            if seconds < low:
                raise fail(key, f"must be at least {low}s")
            values[attr] = seconds
    for key, low in (("max_line_bytes", 256), ("max_batch_lines", 1), ("fingerprint_version", 1)):
        if key in block:
            value = block[key]
            if isinstance(value, bool) or not isinstance(value, int) or value < low:
                raise fail(key, f"expected an integer >= {low}")
            values[key] = value
    if values.get("fingerprint_version", FINGERPRINT_CURRENT) not in FINGERPRINT_VERSIONS:
        raise fail("fingerprint_version", f"known versions: {sorted(FINGERPRINT_VERSIONS)}")
    for key in ("levels", "formats", "in_app_prefixes"):
        if key in block:
            try:
                values[key] = _str_list(key, block[key])
            except ValueError as exc:
                raise fail(key, str(exc)) from None
    if "levels" in values:
        values["levels"] = tuple(v.strip().lower() for v in values["levels"])
    if "formats" in values:
        for name in values["formats"]:
            if name not in PARSERS:
                raise fail("formats", f"unknown format {name!r} (known: {', '.join(PARSERS)})")
    if "log_level" in block:
        level = block["log_level"]
        if level not in LOG_LEVELS:
            raise fail("log_level", f"one of {', '.join(LOG_LEVELS)}")
        values["log_level"] = level
    if values.get("host") == "":
        del values["host"]  # empty = the machine's name
    return Config(files=files, **values)


def load_config(path: str | Path) -> Config:
    """Read and validate the plugin's TOML config file."""
    origin = str(path)
    try:
        with open(path, "rb") as fh:
            doc = tomllib.load(fh)
    except OSError as exc:
        raise ConfigError(f"{origin}: cannot read: {exc.strerror or exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{origin}: not valid TOML: {exc}") from None
    inputs = doc.get("inputs")
    if not isinstance(inputs, dict):
        raise ConfigError(f"{origin}: expected exactly one [[inputs.errlog]] block")
    blocks = inputs.get("errlog")
    if not isinstance(blocks, list) or len(blocks) != 1 or not isinstance(blocks[0], dict):
        raise ConfigError(f"{origin}: expected exactly one [[inputs.errlog]] block")
    others = sorted((set(doc) - {"inputs"}) | {f"inputs.{k}" for k in inputs if k != "errlog"})
    if others:
        raise ConfigError(f"{origin}: only [[inputs.errlog]] belongs in this file, found {', '.join(others)}")
    return from_mapping(blocks[0], origin)
