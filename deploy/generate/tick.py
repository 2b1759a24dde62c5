"""Literals for generated TICKscript: every interpolated value goes through one of these.

The Jinja environment of the generator refuses to print anything that did not pass
through a filter below (see :func:`environment`), so a policy string can only ever reach
a script as an escaped literal of its context, or be refused.
"""

from __future__ import annotations

import functools
import math
import re
from importlib import resources

import jinja2

_DUR = {1: "s", 60: "m", 3600: "h", 86400: "d", 604800: "w"}
_IDENT_REF = re.compile(r"[A-Za-z_][A-Za-z0-9_.-]{0,127}")


class TickSafe(str):
    """A string already rendered as a TICKscript literal."""

    __slots__ = ()


class UnsafeValue(ValueError):
    """A value that cannot be written into a TICKscript safely."""


def _check_text(value: str) -> None:
    if any(ord(ch) < 0x20 or ord(ch) == 0x7F for ch in value):
        raise UnsafeValue(f"control character in {value!r}")
    if any(0xD800 <= ord(ch) <= 0xDFFF for ch in value):  # YAML "\ud800" escapes: not encodable text
        raise UnsafeValue(f"lone surrogate in {value!r}")


def tick_str(value: object) -> TickSafe:
    """A single-quoted string literal; the only escape TICKscript knows is ``\\'``."""
    text = str(value)
    _check_text(text)
    if text.endswith("\\"):
        raise UnsafeValue(f"a TICKscript string cannot end with a backslash: {text!r}")
    return TickSafe("'" + text.replace("'", "\\'") + "'")


def tick_ref(value: object) -> TickSafe:
    """A double-quoted reference (tag, field, database or retention policy name)."""
    text = str(value)
    if not _IDENT_REF.fullmatch(text):
        raise UnsafeValue(f"not a valid reference name: {text!r}")
    return TickSafe('"' + text + '"')


def tick_int(value: object) -> TickSafe:
    if isinstance(value, bool) or not isinstance(value, int):
        raise UnsafeValue(f"not an integer: {value!r}")
    return TickSafe(str(value))


def tick_float(value: object) -> TickSafe:
    """A float literal: always a decimal point, never an exponent (TICKscript knows neither ``1e3`` nor ``nan``)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise UnsafeValue(f"not a finite number: {value!r}")
    if value < 0:
        raise UnsafeValue(f"negative numbers are not literals in TICKscript: {value!r}")
    text = f"{float(value):.12f}".rstrip("0")
    return TickSafe(text + "0" if text.endswith(".") else text)


def iql_ident(value: object) -> TickSafe:
    """A double-quoted InfluxQL identifier (measurement, database, field or tag name), for a query text."""
    text = str(value)
    if not _IDENT_REF.fullmatch(text):
        raise UnsafeValue(f"not a valid InfluxQL name: {text!r}")
    return TickSafe('"' + text + '"')


def iql_str(value: object) -> TickSafe:
    """A single-quoted InfluxQL string inside a triple-quoted TICKscript string: quotes and backslashes are refused."""
    text = str(value)
    _check_text(text)
    if "'" in text or "\\" in text:
        raise UnsafeValue(f"a string inside a query cannot hold a quote or a backslash: {text!r}")
    return TickSafe("'" + text + "'")


def tick_dur(seconds: object) -> TickSafe:
    """Whole seconds as the largest exact TICKscript duration unit (``90`` → ``90s``, ``120`` → ``2m``)."""
    if isinstance(seconds, bool) or not isinstance(seconds, int) or seconds <= 0:
        raise UnsafeValue(f"not a positive whole number of seconds: {seconds!r}")
    for unit_s, unit in sorted(_DUR.items(), reverse=True):
        if seconds % unit_s == 0:
            return TickSafe(f"{seconds // unit_s}{unit}")
    raise AssertionError("unreachable: 1s divides every integer")


def tick_level(value: object) -> TickSafe:
    if value not in ("info", "warn", "crit"):
        raise UnsafeValue(f"not an alert level: {value!r}")
    return TickSafe(str(value))


def tick_raw(value: object) -> TickSafe:
    """Text for a triple-quoted string: no escapes exist there, so ``'''`` is refused."""
    text = str(value)
    if "'''" in text or text.endswith("'"):
        raise UnsafeValue("text for a triple-quoted TICKscript string cannot contain ''' or end with '")
    return TickSafe(text)


def tick_comment(value: object) -> TickSafe:
    """Text inside a ``//`` comment: one line, no control characters."""
    text = str(value)
    _check_text(text)
    return TickSafe(text)


def toml_str(value: object) -> TickSafe:
    """A TOML basic string (for the kapacitor.conf / telegraf.conf snippets)."""
    text = str(value)
    out = text.replace("\\", "\\\\").replace('"', '\\"')
    out = "".join(ch if ord(ch) >= 0x20 and ord(ch) != 0x7F else f"\\u{ord(ch):04x}" for ch in out)
    return TickSafe(f'"{out}"')


def _finalize(value: object) -> object:
    if isinstance(value, (TickSafe, int)) and not isinstance(value, bool):
        return value
    raise UnsafeValue(f"refusing to write an unescaped value into generated output: {value!r}")


@functools.cache
def environment() -> jinja2.Environment:
    """The generator's Jinja environment (one per process, so each template is compiled once):
    templates from errloop.templates, strict, escaping enforced."""
    env = jinja2.Environment(
        loader=jinja2.FunctionLoader(_load),
        undefined=jinja2.StrictUndefined,
        autoescape=False,  # noqa: S701 -- not HTML: finalize() below only lets escaped literals through
        keep_trailing_newline=True,
        finalize=_finalize,
    )
    env.filters.update(
        tick_str=tick_str,
        tick_ref=tick_ref,
        tick_int=tick_int,
        tick_dur=tick_dur,
        tick_float=tick_float,
        iql_ident=iql_ident,
        iql_str=iql_str,
        tick_level=tick_level,
        tick_raw=tick_raw,
        tick_comment=tick_comment,
        toml_str=toml_str,
        safe_text=lambda v: TickSafe(str(v)),
    )
    return env


def template_text(name: str) -> str:
    """A file of errloop's templates package (``templates/<name>``)."""
    return resources.files("errloop.templates").joinpath(name).read_text(encoding="utf-8")


def _load(name: str) -> str:
    return template_text(name)
