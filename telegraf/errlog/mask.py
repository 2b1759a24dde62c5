"""Masking: message → template, URL path → route template.

:func:`mask_message` replaces the parameters of a message with placeholders, in one
left-to-right pass; where two kinds could match at one position the first in this
list wins:

==============  =============================================================  ============
placeholder     what                                                            example
==============  =============================================================  ============
``<str>``       "double", `back` or 'single' quoted text                        ``"bob"``
``<url>``       scheme://…                                                      ``https://x/y``
``<email>``     local@domain.tld                                                ``a@b.io``
``<uuid>``      8-4-4-4-12 hex                                                  ``3f2a…``
``<ts>``        RFC 3339 / ISO 8601 date-time                                   ``2024-11-27T10:00:00Z``
``<date>``      yyyy-mm-dd                                                      ``2024-11-27``
``<time>``      hh:mm:ss[.frac]                                                 ``10:00:01.5``
``<ip>``        IPv4, IPv6 (``[v6]``), an optional ``:port`` becomes ``:<port>``  ``10.0.0.1:5432``
``<hex>``       0x…, or 8+ hex digits holding a digit and a letter               ``0xc000a1``
``<size>``      number with a byte unit                                         ``512KiB``
``<duration>``  Go durations                                                    ``1m2.5s``, ``350µs``
``<num>``       integers and decimals not inside a word                         ``42``, ``-3.5``
==============  =============================================================  ============

Placeholders hold no digits; masking a template again usually changes nothing, but
that is not promised at token edges (``0''`` → ``<num>''`` → ``<num><str>``).
"""

from __future__ import annotations

import re
from functools import lru_cache
from typing import Final

MAX_TEMPLATE_CHARS: Final = 2000

_HEX4: Final = r"[0-9a-fA-F]{1,4}"
_IPV6: Final = (
    rf"(?:(?:{_HEX4}:){{7}}{_HEX4}"
    rf"|(?:{_HEX4}:){{1,6}}:{_HEX4}(?::{_HEX4}){{0,5}}"
    rf"|::{_HEX4}(?::{_HEX4}){{0,6}})"
)

_PATTERNS: Final = [
    ("str", r'"(?:[^"\\\n]|\\.){0,1000}"|`[^`\n]{0,1000}`|(?<![\w\'])\'[^\'\n]{0,1000}\'(?![\w\'])'),
    ("url", r"\b[a-zA-Z][a-zA-Z0-9+.\-]{1,15}://[^\s\"'<>`]+"),
    ("email", r"\b[\w.+\-]+@[\w\-]+(?:\.[\w\-]+)+\b"),
    (
        "uuid",
        r"(?<![0-9a-fA-F])[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}(?![0-9a-fA-F])",
    ),
    ("ts", r"\b\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(?:[.,]\d+)?(?:Z|z|[+\-]\d{2}:?\d{2})?(?![\w])"),
    ("date", r"\b\d{4}-\d{2}-\d{2}\b"),
    ("time", r"\b\d{1,2}:\d{2}:\d{2}(?:\.\d+)?\b"),
    ("ip6b", rf"\[{_IPV6}(?:%\w+)?\](?::(?P<port6>\d{{1,5}}))?"),
    ("ip4", r"(?<![\w.])(?:\d{1,3}\.){3}\d{1,3}(?::(?P<port4>\d{1,5}))?(?![\w]|\.\d)"),
    ("ip6", rf"(?<![\w:]){_IPV6}(?![\w:])"),
    # (?<!\d\.): not the tail of a dotted number such as 1.2.3.4.0000000a, whose IPv4-looking
    # head would otherwise be left unmasked beside the placeholder
    ("hex", r"\b0[xX][0-9a-fA-F]+\b|(?<!\d\.)\b(?=[0-9a-fA-F]*[a-fA-F])(?=[0-9a-fA-F]*\d)[0-9a-fA-F]{8,}\b"),
    ("size", r"(?<![\w.])\d+(?:\.\d+)?\s?(?:[kKMGTP]i?B|B|bytes)\b"),
    ("duration", r"(?<![\w.])(?:\d+(?:\.\d+)?(?:ns|us|µs|μs|ms|s|m|h))+(?![\w])"),
    ("num", r"(?<![\w.])-?\d+(?:\.\d+)?(?:[eE][+\-]?\d+)?(?![\w]|\.\d)"),
]
_TRIGGERS: Final[dict[str, tuple[str, ...]]] = {
    # an alternative can only match when one of its trigger strings occurs in the text
    "str": ('"', "`", "'"),
    "url": ("://",),
    "email": ("@",),
    "uuid": ("-",),
    "ts": ("-",),
    "date": ("-",),
    "time": (":",),
    "ip6b": ("[",),
    "ip4": (".",),
    "ip6": (":",),
    "hex": tuple("0123456789"),
    "size": tuple("0123456789"),
    "duration": tuple("0123456789"),
    "num": tuple("0123456789"),
}
_compiled: dict[tuple[str, ...], re.Pattern[str]] = {}


_ASCII_DIGIT: Final = re.compile(r"[0-9]")
# what every match of a pattern holds (searched for only when its trigger is there)
_DATE_PROBE: Final = re.compile(r"\d-\d\d-\d")  # date, ts: \d{4}-\d{2}-\d{2}
_TIME_PROBE: Final = re.compile(r"\d:\d\d:\d")  # time, ts: \d{2}:\d{2}:\d{2}
_HEX_PROBE: Final = re.compile(r"[0-9a-fA-F]{8}")  # hex without 0x: 8+ hex digits
_DURATION_PROBE: Final = re.compile(r"\d(?:\.\d+)?(?:ns|us|µs|μs|ms|s|m|h)")  # a number and its unit
_NAMES: Final = tuple(name for name, _ in _PATTERNS)
_by_found: dict[tuple[bool, ...], re.Pattern[str]] = {}


def _expression(text: str) -> re.Pattern[str]:
    """The alternation of the patterns that can match in ``text``, in the fixed order (cached).

    A pattern is left out when ``text`` lacks a string every match of it holds (its trigger,
    :data:`_TRIGGERS`), enough of them (a UUID has 4 ``-``, an IPv4 address 3 ``.``, an IPv6 one
    ``::`` or 7 ``:``) or a short part of every match (``d-dd-d`` of a date, ``d:dd:d`` of a
    time, 8 hex digits or ``0x`` of a hex number, ``B``/``bytes`` of a size, a number and its
    unit of a duration). Leaving out a pattern that cannot match anywhere does not change what
    the others match; the alternation is smaller and faster.
    """
    colons = text.count(":")
    dashes = text.count("-")
    ip6 = colons >= 7 or "::" in text
    digit = _ASCII_DIGIT.search(text) is not None
    date = dashes >= 2 and _DATE_PROBE.search(text) is not None
    clock = colons >= 2 and _TIME_PROBE.search(text) is not None
    found = (
        '"' in text or "`" in text or "'" in text,  # str
        "://" in text,  # url
        "@" in text,  # email
        dashes >= 4,  # uuid
        date and clock,  # ts
        date,  # date
        clock,  # time
        ip6 and "[" in text,  # ip6b
        text.count(".") >= 3,  # ip4
        ip6,  # ip6
        digit and ("0x" in text or "0X" in text or _HEX_PROBE.search(text) is not None),  # hex
        digit and ("B" in text or "bytes" in text),  # size
        digit and _DURATION_PROBE.search(text) is not None,  # duration
        digit,  # num
    )
    rx = _by_found.get(found)
    if rx is None:
        names = tuple(name for name, present in zip(_NAMES, found, strict=True) if present)
        rx = _compiled.get(names)
        if rx is None:
            rx = re.compile("|".join(f"(?P<{name}>{pattern})" for name, pattern in _PATTERNS if name in names))
            _compiled[names] = rx
        _by_found[found] = rx
    return rx


_PLACEHOLDER: Final = {
    "str": "<str>",
    "url": "<url>",
    "email": "<email>",
    "uuid": "<uuid>",
    "ts": "<ts>",
    "date": "<date>",
    "time": "<time>",
    "ip6b": "<ip>",
    "ip4": "<ip>",
    "ip6": "<ip>",
    "hex": "<hex>",
    "size": "<size>",
    "duration": "<duration>",
    "num": "<num>",
}


def _replace(m: re.Match[str]) -> str:
    kind = m.lastgroup or "num"
    if (kind == "ip4" and m.group("port4")) or (kind == "ip6b" and m.group("port6")):
        return "<ip>:<port>"
    return _PLACEHOLDER.get(kind, "<num>")


_MAYBE_PARAM: Final = re.compile(r"[0-9\"'`@]|::")


def mask_message(text: str) -> str:
    """The template of a message: parameters replaced by placeholders (see module docstring)."""
    if len(text) <= _CACHED_CHARS:
        return _mask_cached(text)
    return _mask(text)


_CACHED_CHARS: Final = 512


@lru_cache(maxsize=8192)
def _mask_cached(text: str) -> str:
    # error storms repeat the same texts, and a root cause is masked for the template
    # and again for the fingerprint
    return _mask(text)


def _mask(text: str) -> str:
    text = text[: MAX_TEMPLATE_CHARS * 2]
    # every placeholder needs a digit, a quote, "@", "::" or a full 8-group IPv6: most
    # error texts ("context deadline exceeded") have none and skip the big expression
    if _MAYBE_PARAM.search(text) is None and text.count(":") < 7:
        return text[:MAX_TEMPLATE_CHARS]
    return _expression(text).sub(_replace, text)[:MAX_TEMPLATE_CHARS]


# --- routes ------------------------------------------------------------------------------

MAX_ROUTE_SEGMENTS: Final = 8
MAX_SEGMENT_CHARS: Final = 48
MAX_ROUTE_CHARS: Final = 128
HTTP_METHODS: Final = frozenset(("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "CONNECT", "TRACE"))

_ID_SEGMENT: Final = re.compile(
    r"\d+|[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"
    r"|(?=[0-9a-fA-F]*\d)[0-9a-fA-F]{8,}|.*@.*"
)
_URL_PREFIX: Final = re.compile(r"^[a-zA-Z][a-zA-Z0-9+.\-]*://[^/]*")


def _is_id(segment: str) -> bool:
    if _ID_SEGMENT.fullmatch(segment):
        return True
    digits = sum(c.isdigit() for c in segment)
    return digits >= 3 or (digits > 0 and len(segment) >= 16)


def mask_path(path: str) -> str:
    """A URL path as a bounded route template: ``/users/42/orders/9f3c…`` → ``/users/:id/orders/:id``.

    Query, fragment, scheme and host are dropped; a segment that is a number, a UUID, a
    long hex string, an e-mail, or holds 3+ digits (or any digit in 16+ characters)
    becomes ``:id``; at most 8 segments of at most 48 characters are kept (``…`` marks a
    cut) and the route is at most 128 characters. Templated routes (``{id}``, ``:id``)
    pass through.
    """
    path = _URL_PREFIX.sub("", path.strip())
    path = path.split("?", 1)[0].split("#", 1)[0]
    segments = [s for s in path.split("/") if s]
    out: list[str] = []
    for segment in segments[:MAX_ROUTE_SEGMENTS]:
        if _is_id(segment):
            out.append(":id")
        elif len(segment) > MAX_SEGMENT_CHARS:
            out.append(segment[:MAX_SEGMENT_CHARS] + "…")
        else:
            out.append(segment)
    if len(segments) > MAX_ROUTE_SEGMENTS:
        out.append("…")
    route = "/" + "/".join(out)
    return route if len(route) <= MAX_ROUTE_CHARS else route[: MAX_ROUTE_CHARS - 1] + "…"


def operation(method: str, path: str) -> str:
    """``METHOD /route`` from a method and a raw path (either may be empty); unknown methods are ``OTHER``."""
    m = method.strip().upper()
    if m and m not in HTTP_METHODS:
        m = "OTHER"
    route = mask_path(path) if path.strip() else ""
    return f"{m} {route}".strip()
