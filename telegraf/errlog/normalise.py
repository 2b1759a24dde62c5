"""One log line → one event (or a skip): the normaliser every format shares.

Pure: no I/O and no clock except ``time.time_ns()`` as the default ``ingested_ns``
of :func:`parse_text`. The event holds only names of the data contract
(errloop.rules.contract EVENT_TAGS / EVENT_FIELDS).

event_id (stable across restarts; published in the README)::

    blake2b(host + "\\x1f" + source + "\\x1f" + str(offset) + "\\x1f", then the line's bytes,
            digest_size=10).hexdigest()        # 20 hex characters

``offset`` is the byte offset of the line's first byte in ``source``; the line's bytes
are the raw bytes without the ending ``\\n`` (after the ``max_line_bytes`` cut).
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import PurePath
from typing import Final, Literal

from errloop.rules import contract
from errloop.rules.contract import Event
from errloop.telegraf.errlog import extract, semantics
from errloop.telegraf.errlog.container import Inner, Unwrapper
from errloop.telegraf.errlog.errchain import split_chain
from errloop.telegraf.errlog.fingerprint import CURRENT as FINGERPRINT_CURRENT
from errloop.telegraf.errlog.fingerprint import fingerprint
from errloop.telegraf.errlog.gostack import frames_text, parse_stack, stack_top_frame
from errloop.telegraf.errlog.group import Grouped, Grouper
from errloop.telegraf.errlog.mask import mask_message
from errloop.telegraf.errlog.parsers import PARSERS, Record
from errloop.telegraf.errlog.tailer import Line

DEFAULT_LEVELS: Final = ("error", "dpanic", "panic", "fatal")
DEFAULT_FORMATS: Final = tuple(PARSERS)
"""Every format, in the order of :data:`PARSERS` (cheap and specific checks first)."""
DEFAULT_MAX_LINE_BYTES: Final = 65_536
UNPARSED: Final = "unparsed"
UNPARSED_LEVEL: Final = "unknown"
UNPARSED_MESSAGE_CHARS: Final = 1024
MAX_SERVICE_CHARS: Final = 64
LEVEL_ALIASES: Final = {
    "warning": "warn",
    "err": "error",
    "eror": "error",
    "crit": "fatal",
    "critical": "fatal",
    "emerg": "fatal",
    "emergency": "fatal",
    "alert": "fatal",
    "information": "info",
    "notice": "info",
    "trace": "debug",
}

EVENT_KEYS: Final = frozenset(contract.EVENT_TAGS) | frozenset(contract.EVENT_FIELDS)

Kind = Literal["event", "skipped", "blank"]


@dataclass(frozen=True, slots=True)
class Context:
    """What the normaliser knows besides the line: where it came from and the config."""

    source: str = "-"
    service: str = ""
    env: str = ""
    host: str = ""
    in_app_prefixes: tuple[str, ...] = ()
    levels: frozenset[str] = frozenset(DEFAULT_LEVELS)
    formats: tuple[str, ...] = DEFAULT_FORMATS
    keep_raw: bool = False
    fingerprint_version: int = FINGERPRINT_CURRENT
    default_service: str = field(init=False, default="")

    def __post_init__(self) -> None:
        stem = PurePath(self.source).name.split(".", 1)[0] if self.source not in ("", "-") else ""
        object.__setattr__(self, "default_service", self.service or stem)


@dataclass(frozen=True, slots=True)
class Normalised:
    """The outcome for one line. ``time_ns`` is the point time: the line's own, else ``ingested_ns``."""

    kind: Kind
    event: Event | None = None
    time_ns: int = 0
    unparsed: bool = False
    error: str = ""  # why a parser failed on this line (it was stored as unparsed)


def normalise_level(level: str) -> str:
    """Lower case, with aliases mapped onto zap's names (``warning`` → ``warn``, …)."""
    lv = level.strip().lower()
    return LEVEL_ALIASES.get(lv, lv)


def event_id(host: str, source: str, offset: int, line: bytes) -> str:
    """The stable id of the line at ``offset`` of ``source`` on ``host`` (see module docstring)."""
    h = hashlib.blake2b(digest_size=10)
    h.update(f"{host}\x1f{source}\x1f{offset}\x1f".encode("utf-8", "surrogateescape"))
    h.update(line)
    return h.hexdigest()


def _stack_from_verbose(verbose: str) -> str:
    """pkg/errors' ``%+v`` (zap's ``errorVerbose``): keep its frames in Go's two-line form."""
    return frames_text(parse_stack(verbose)) if verbose else ""


def _path_only(path: str) -> str:
    if "://" in path:
        rest = path.split("://", 1)[1]
        path = "/" + rest.split("/", 1)[1] if "/" in rest else "/"
    return path.split("?", 1)[0].split("#", 1)[0]


def _event_from_record(rec: Record, ctx: Context, base: Event, service_hint: str = "") -> Event | None:
    level = normalise_level(rec.level)
    if level not in ctx.levels:
        return None
    flat = extract.flatten(rec.extra)
    service = (
        extract.first_text(flat, extract.SERVICE_KEYS, MAX_SERVICE_CHARS)
        or ctx.service
        or service_hint[:MAX_SERVICE_CHARS]
        or ctx.default_service
    )
    method = extract.first_text(flat, extract.METHOD_KEYS, 16)
    # the route a framework logged wins as given; else the path, templated (bounded cardinality)
    route = extract.first_text(flat, extract.ROUTE_KEYS, 512)
    raw_path = "" if route else extract.first_text(flat, extract.PATH_KEYS, semantics.MAX_PATH_CHARS)
    http_path = semantics.bounded_route(route) if route else semantics.route_of(_path_only(raw_path))
    op = semantics.operation_of(method, http_path) if (method or http_path) else ""

    chain = split_chain(rec.error)
    root_cause = chain[-1] if chain else ""
    stack = rec.stacktrace or _stack_from_verbose(rec.error_verbose)
    # a panic dump is a new format: its top frame may skip the whole standard library (fingerprint v1 unchanged)
    frame = stack_top_frame(stack, ctx.in_app_prefixes, skip_stdlib=rec.format == "go_panic") if stack else None
    message = rec.message or (chain[0] if chain else "")
    template = mask_message(message)
    error_type = extract.first_text(flat, extract.ERROR_TYPE_KEYS)
    trace_id, span_id = extract.trace_ids(flat)
    status = extract.http_status(flat)
    duration = extract.duration_ms(flat)
    top = frame.function if frame else ""

    event: Event = {
        "service": service,
        "env": ctx.env,
        "host": ctx.host,
        "level": level,
        "format": rec.format,
        "operation": op,
        "fingerprint": fingerprint(
            error_type=error_type,
            root_cause=root_cause,
            top_frame=top,
            caller=rec.caller,
            template=template,
            message=message,
            version=ctx.fingerprint_version,
        ),
        **base,
        "message": message,
        "template": template,
    }
    optional: dict[str, str] = {
        "error_type": error_type,
        "error_chain": "\n".join(chain),
        "root_cause": root_cause,
        "stack": stack,
        "top_frame": top,
        "file_line": frame.file_line if frame else "",
        "trace_id": trace_id,
        "span_id": span_id,
        "http_method": method.upper(),
        "http_path": http_path,
        "caller": rec.caller,
        "logger": rec.logger,
    }
    event.update({k: v for k, v in optional.items() if v})
    # grpc_code, sql_digest, sql_state, db_error_code: keys first, then the error text (outer-most first), the message
    event.update(semantics.dimensions(flat, rec.error, message))
    if rec.goroutine_id is not None:
        event["goroutine_id"] = rec.goroutine_id
    if status is not None:
        event["http_status"] = status
    if duration is not None:
        event["duration_ms"] = duration
    return event


def _unparsed_event(text: str, ctx: Context, base: Event, service_hint: str = "") -> Event:
    message = text[:UNPARSED_MESSAGE_CHARS]
    template = mask_message(message)
    event: Event = {
        "service": ctx.service or service_hint[:MAX_SERVICE_CHARS] or ctx.default_service,
        "env": ctx.env,
        "host": ctx.host,
        "level": UNPARSED_LEVEL,
        "format": UNPARSED,
        "fingerprint": fingerprint(
            error_type="",
            root_cause="",
            top_frame="",
            caller="",
            template=template,
            message=message,
            version=ctx.fingerprint_version,
        ),
        **base,
        "message": message,
        "template": template,
        "raw": text,
    }
    # what grpc-go and the database drivers print is found in any line (substring checks first, scans bounded)
    event.update(semantics.dimensions({}, text))
    return event


def normalise_line(
    data: bytes,
    *,
    ctx: Context,
    offset: int,
    ingested_ns: int,
    truncated: bool = False,
    fallback_ns: int | None = None,
    service_hint: str = "",
) -> Normalised:
    """One record (a line's raw bytes without ``\\n``, or the lines of a multi-line record joined by ``\\n``,
    see :mod:`errloop.telegraf.errlog.group`) → an event, a skip (level below ``ctx.levels``) or a blank.

    ``fallback_ns``/``service_hint``: the time and service a container wrapper gave, used
    when the record has none (before ``ingested_ns``; after the config's ``service``).
    Never raises: a parser that fails makes the line ``format=unparsed`` with ``error`` set.
    """
    text = data.decode("utf-8", "replace")
    if "\r" in text:
        text = text.replace("\r\n", "\n").removesuffix("\r")
    if not text.strip():
        return Normalised("blank")
    base: Event = {
        "event_id": event_id(ctx.host, ctx.source, offset, data),
        "source": ctx.source,
        "ingested_ns": ingested_ns,
        "truncated": truncated,
    }
    error = ""
    for name in ctx.formats:
        parser = PARSERS.get(name)
        if parser is None:
            continue
        try:
            rec = parser.parse(text)
            if rec is None:
                continue
            event = _event_from_record(rec, ctx, base, service_hint)
        except Exception as exc:  # a parser bug must not lose the line
            error = f"{name}: {type(exc).__name__}: {exc}"
            break
        ts = rec.ts_ns if rec.ts_ns is not None else fallback_ns if fallback_ns is not None else ingested_ns
        if event is None:
            return Normalised("skipped", time_ns=ts)
        if ctx.keep_raw:
            event["raw"] = text
        return Normalised("event", event, ts)
    ts = fallback_ns if fallback_ns is not None else ingested_ns
    return Normalised("event", _unparsed_event(text, ctx, base, service_hint), ts, unparsed=True, error=error)


def parse_lines(
    lines: Iterable[str],
    *,
    source: str = "-",
    service: str = "",
    env: str = "",
    host: str = "",
    in_app_prefixes: Sequence[str] = (),
    levels: Sequence[str] = DEFAULT_LEVELS,
    max_line_bytes: int = DEFAULT_MAX_LINE_BYTES,
    ingested_ns: int | None = None,
    fingerprint_version: int = FINGERPRINT_CURRENT,
) -> Iterator[Normalised]:
    """:func:`normalise_line` over text lines, grouped into records and with byte offsets as the plugin has them.

    Lines may keep their ``\\n`` or not (each counts one newline byte); text decoded
    with ``errors="surrogateescape"`` gives the file's exact bytes and so the plugin's
    event ids. A ``str`` is split into lines first.
    """
    ctx = Context(
        source=source,
        service=service,
        env=env,
        host=host,
        in_app_prefixes=tuple(in_app_prefixes),
        levels=frozenset(normalise_level(lv) for lv in levels),
        fingerprint_version=fingerprint_version,
    )
    if isinstance(lines, str):
        lines = lines.splitlines(keepends=True)
    unwrapper = Unwrapper()
    grouper = Grouper()

    def group(inner: list[Inner]) -> list[Grouped]:
        return [rec for i in inner for rec in grouper.push(i.line, 0.0, i.time_ns, i.service)]

    def emit(records: list[Grouped]) -> Iterator[Normalised]:
        for rec in records:
            yield normalise_line(
                rec.data,
                ctx=ctx,
                offset=rec.offset,
                ingested_ns=time.time_ns() if ingested_ns is None else ingested_ns,
                truncated=rec.truncated,
                fallback_ns=rec.time_ns,
                service_hint=rec.service,
            )

    offset = 0
    for line in lines:
        data = line.encode("utf-8", "surrogateescape")
        body = data[:-1] if data.endswith(b"\n") else data
        truncated = len(body) > max_line_bytes
        line_ = Line(source, offset, body[:max_line_bytes] if truncated else body, truncated)
        yield from emit(group(unwrapper.push(line_)))
        offset += len(body) + 1
    yield from emit(group(unwrapper.flush_all()))
    yield from emit(grouper.flush_all())


def parse_text(
    lines: Iterable[str],
    *,
    source: str = "-",
    service: str = "",
    env: str = "",
    host: str = "",
    in_app_prefixes: Sequence[str] = (),
    fingerprint_version: int = FINGERPRINT_CURRENT,
) -> Iterator[Event]:
    """The events of some log text (what ``errloop parse`` prints); skipped and blank lines give none."""
    for outcome in parse_lines(
        lines,
        source=source,
        service=service,
        env=env,
        host=host,
        in_app_prefixes=in_app_prefixes,
        fingerprint_version=fingerprint_version,
    ):
        if outcome.event is not None:
            yield outcome.event
