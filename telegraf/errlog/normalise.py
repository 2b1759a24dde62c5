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
from functools import lru_cache
from pathlib import PurePath
from typing import Final, Literal

from errloop.rules import contract
from errloop.rules.contract import Event
from errloop.telegraf.errlog import extract, semantics
from errloop.telegraf.errlog.container import Unwrapper, unwrap_once
from errloop.telegraf.errlog.errchain import split_chain
from errloop.telegraf.errlog.fingerprint import CURRENT as FINGERPRINT_CURRENT
from errloop.telegraf.errlog.fingerprint import fingerprint
from errloop.telegraf.errlog.gostack import frames_text, parse_stack, stack_key, stack_top_frame
from errloop.telegraf.errlog.group import Grouped, Grouper, starts
from errloop.telegraf.errlog.mask import mask_message
from errloop.telegraf.errlog.merge import Outgoing, PanicMerger, is_logged_panic
from errloop.telegraf.errlog.parsers import JSON_FORMATS, PARSERS, LineParser, Record
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
    parsers: tuple[tuple[str, LineParser, bool], ...] = field(init=False, default=(), repr=False, compare=False)
    """(name, parser, whether it only takes JSON) of ``formats`` that exist, in order."""
    id_prefix: bytes | None = field(init=False, default=None, repr=False, compare=False)
    """The bytes :func:`event_id` hashes before the offset (None when host or source cannot be encoded)."""

    def __post_init__(self) -> None:
        stem = PurePath(self.source).name.split(".", 1)[0] if self.source not in ("", "-") else ""
        object.__setattr__(self, "default_service", self.service or stem)
        parsers = tuple((name, PARSERS[name], name in JSON_FORMATS) for name in self.formats if name in PARSERS)
        object.__setattr__(self, "parsers", parsers)
        try:
            prefix: bytes | None = f"{self.host}\x1f{self.source}\x1f".encode("utf-8", "surrogateescape")
        except UnicodeEncodeError:
            prefix = None
        object.__setattr__(self, "id_prefix", prefix)


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


def _route(raw_path: str) -> str:
    """The route template of a logged path or URL."""
    return semantics.route_of(_path_only(raw_path))


MEMO_PATH_CHARS: Final = 512
_route_memo = lru_cache(maxsize=1024)(_route)  # a service's paths repeat (/healthz, /api/v1/orders, …)

_Analysis = tuple[str, str, str, str, str, str, str, str, tuple[tuple[str, str], ...]]


def _analysis(
    error: str,
    stacktrace: str,
    error_verbose: str,
    panic: bool,
    message: str,
    in_app_prefixes: tuple[str, ...],
    error_type: str,
    caller: str,
    version: int,
) -> _Analysis:
    """What a record's texts say: (message, template, fingerprint, error chain, root cause, stack, top frame,
    file:line, the dimensions of the error text and message). A pure function of its arguments, so memoised
    (:func:`_analysis_memo`)."""
    chain = split_chain(error)
    root_cause = chain[-1] if chain else ""
    stack = stacktrace or _stack_from_verbose(error_verbose)
    top, file_line = "", ""
    if stack:
        top, file_line = (_top_memo if len(stack) <= MEMO_CHARS else _top)(stack, in_app_prefixes, panic)
    message = message or (chain[0] if chain else "")
    template = mask_message(message)
    fp = fingerprint(
        error_type=error_type,
        root_cause=root_cause,
        top_frame=top,
        caller=caller,
        template=template,
        message=message,
        version=version,
    )
    # what the texts alone say (the record's keys, when it has any of them, are looked at by the caller)
    text_dimensions = tuple(semantics.dimensions({}, error, message).items())
    return (
        message,
        template,
        fp,
        "\n".join(chain),
        root_cause,
        stack,
        top,
        file_line,
        text_dimensions,
    )


def _top(stack: str, in_app_prefixes: tuple[str, ...], panic: bool) -> tuple[str, str]:
    """(function, file:line) of a stack's top frame, ("", "") when it has none."""
    # a panic dump is a new format: its top frame may skip the whole standard library (fingerprint v1 unchanged)
    frame = stack_top_frame(stack, in_app_prefixes, skip_stdlib=panic)
    return (frame.function, frame.file_line) if frame else ("", "")


TOP_MEMO_SIZE: Final = 512
_top_seen: dict[tuple[str, tuple[str, ...], bool], tuple[str, str]] = {}


def _top_memo(stack: str, in_app_prefixes: tuple[str, ...], panic: bool) -> tuple[str, str]:
    """:func:`_top`, remembered by :func:`stack_key` (a service logs the same few stacks under many messages;
    panics and ``debug.Stack`` print them with other goroutine ids and arguments each time)."""
    top = _top_seen.get((stack, in_app_prefixes, panic))  # a stack with nothing volatile is its own key
    if top is not None:
        return top
    key = (stack_key(stack), in_app_prefixes, panic)
    top = _top_seen.get(key)
    if top is None:
        top = _top(stack, in_app_prefixes, panic)
        if len(_top_seen) >= TOP_MEMO_SIZE:
            _top_seen.clear()
        _top_seen[key] = top
    return top


MEMO_CHARS: Final = 4096
"""Records whose texts (message, error, stack) are longer than this are analysed each time (bounded memory)."""
MEMO_SIZE: Final = 1024
"""Analyses kept (least recently used forgotten): error storms repeat the same texts."""
_analysis_memo = lru_cache(maxsize=MEMO_SIZE)(_analysis)


def _event_from_record(
    rec: Record, ctx: Context, base: Event, service_hint: str = "", level: str | None = None
) -> Event | None:
    """The event of a record (None when its level is not wanted); ``level``: its normalised level, if known."""
    if level is None:
        level = normalise_level(rec.level)
    if level not in ctx.levels:
        return None
    flat = extract.flat_view(rec.extra)
    known = bool(flat) and not flat.keys().isdisjoint(extract.KNOWN_KEYS)  # else no key below is there
    service = (
        (extract.first_text(flat, extract.SERVICE_KEYS, MAX_SERVICE_CHARS) if known else "")
        or ctx.service
        or service_hint[:MAX_SERVICE_CHARS]
        or ctx.default_service
    )
    method = route = raw_path = http_path = op = ""
    if known:
        method = extract.first_text(flat, extract.METHOD_KEYS, 16)
        # the route a framework logged wins as given; else the path, templated (bounded cardinality)
        route = extract.first_text(flat, extract.ROUTE_KEYS, 512)
        raw_path = "" if route else extract.first_text(flat, extract.PATH_KEYS, semantics.MAX_PATH_CHARS)
    if route:
        http_path = semantics.bounded_route(route)
    elif raw_path:
        http_path = _route_memo(raw_path) if len(raw_path) <= MEMO_PATH_CHARS else _route(raw_path)
    if method or http_path:
        op = semantics.operation_of(method, http_path)

    error_type = extract.first_text(flat, extract.ERROR_TYPE_KEYS) if known else ""
    inputs = (
        rec.error,
        rec.stacktrace,
        rec.error_verbose,
        rec.format == "go_panic",
        rec.message,
        ctx.in_app_prefixes,
        error_type,
        rec.caller,
        ctx.fingerprint_version,
    )
    small = len(rec.error) + len(rec.stacktrace) + len(rec.error_verbose) + len(rec.message) <= MEMO_CHARS
    message, template, fp, error_chain, root_cause, stack, top, file_line, text_dimensions = (
        _analysis_memo(*inputs) if small else _analysis(*inputs)
    )
    trace_id = span_id = ""
    status: int | None = None
    duration: float | None = None
    if known:
        trace_id, span_id = extract.trace_ids(flat)
        status = extract.http_status(flat)
        duration = extract.duration_ms(flat)

    event: Event = {
        "service": service,
        "env": ctx.env,
        "host": ctx.host,
        "level": level,
        "format": rec.format,
        "operation": op,
        "fingerprint": fp,
        **base,
        "message": message,
        "template": template,
    }
    # the optional fields, in this order, each only when not empty
    if error_type:
        event["error_type"] = error_type
    if error_chain:
        event["error_chain"] = error_chain
    if root_cause:
        event["root_cause"] = root_cause
    if stack:
        event["stack"] = stack
    if top:
        event["top_frame"] = top
    if file_line:
        event["file_line"] = file_line
    if trace_id:
        event["trace_id"] = trace_id
    if span_id:
        event["span_id"] = span_id
    if method:
        event["http_method"] = method.upper()
    if http_path:
        event["http_path"] = http_path
    if rec.caller:
        event["caller"] = rec.caller
    if rec.logger:
        event["logger"] = rec.logger
    # grpc_code, sql_digest, sql_state, db_error_code: keys first, then the error text (outer-most first), the message
    if semantics.has_dimension_keys(flat):
        event.update(semantics.dimensions(flat, rec.error, message))
    elif text_dimensions:
        event.update(text_dimensions)
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
    if not text or text.isspace():  # what "not text.strip()" says, without copying a long record
        return Normalised("blank")
    error = ""
    # the JSON formats answer None for what does not start with "{" (once stripped): not asked then
    json_like = text[:1] == "{" or text.lstrip()[:1] == "{"
    for name, parser, json_only in ctx.parsers:
        if json_only and not json_like:
            continue
        try:
            rec = parser.parse(text)
            if rec is None:
                continue
            level = normalise_level(rec.level)
            wanted = level in ctx.levels
        except Exception as exc:  # a parser bug must not lose the line
            error = f"{name}: {type(exc).__name__}: {exc}"
            break
        ts = rec.ts_ns if rec.ts_ns is not None else fallback_ns if fallback_ns is not None else ingested_ns
        if not wanted:  # a skipped record needs no id (most lines of a log are below the levels)
            return Normalised("skipped", time_ns=ts)
        base = _base(ctx, offset, data, ingested_ns, truncated)
        try:
            event = _event_from_record(rec, ctx, base, service_hint, level)
        except Exception as exc:  # a bug must not lose the line
            error = f"{name}: {type(exc).__name__}: {exc}"
            break
        if event is None:
            return Normalised("skipped", time_ns=ts)
        if ctx.keep_raw:
            event["raw"] = text
        return Normalised("event", event, ts)
    ts = fallback_ns if fallback_ns is not None else ingested_ns
    base = _base(ctx, offset, data, ingested_ns, truncated)
    return Normalised("event", _unparsed_event(text, ctx, base, service_hint), ts, unparsed=True, error=error)


def _base(ctx: Context, offset: int, data: bytes, ingested_ns: int, truncated: bool) -> Event:
    """The fields every event of a record has: its id, source, ingestion time and whether it was cut."""
    prefix = ctx.id_prefix
    return {
        # event_id(): the same bytes hashed, the host and source encoded once per context
        "event_id": hashlib.blake2b(b"%b%d\x1f%b" % (prefix, offset, data), digest_size=10).hexdigest()
        if prefix is not None
        else event_id(ctx.host, ctx.source, offset, data),
        "source": ctx.source,
        "ingested_ns": ingested_ns,
        "truncated": truncated,
    }


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
    """:func:`normalise_line` over text lines, grouped into records and with byte offsets as the plugin has them,
    a logger's panic record and the runtime's dump after it merged into one event (:mod:`.merge`).

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
    merger = PanicMerger()

    def merge(outcome: Normalised, offset: int) -> Iterator[Normalised]:
        if outcome.event is None:
            yield outcome
            return
        for out in merger.push(Outgoing(outcome.event, outcome.time_ns, source, offset), 0.0):
            yield outcome if out.event is outcome.event else Normalised("event", out.event, out.time_ns)

    def emit(rec: Grouped) -> Iterator[Normalised]:
        yield from merge(
            normalise_line(
                rec.data,
                ctx=ctx,
                offset=rec.offset,
                ingested_ns=time.time_ns() if ingested_ns is None else ingested_ns,
                truncated=rec.truncated,
                fallback_ns=rec.time_ns,
                service_hint=rec.service,
            ),
            rec.offset,
        )

    offset = 0
    unwrapper_idle, grouper_idle = unwrapper.idle, grouper.idle
    for line in lines:
        data = line.encode("utf-8", "surrogateescape")
        if data.endswith(b"\n"):
            body, step = data[:-1], len(data)
        else:
            body, step = data, len(data) + 1
        truncated = len(body) > max_line_bytes
        if truncated:
            body = body[:max_line_bytes]
        if unwrapper_idle() and unwrap_once(body) is None:
            # no wrapper and no partial line waiting: the unwrapper would pass the line on as it is
            if grouper_idle() and starts(body) is None:
                # the common case: a record of one line, as the grouper would give it
                outcome = normalise_line(
                    body,
                    ctx=ctx,
                    offset=offset,
                    ingested_ns=time.time_ns() if ingested_ns is None else ingested_ns,
                    truncated=truncated,
                )
                if merger.idle() and (outcome.event is None or not is_logged_panic(outcome.event)):
                    yield outcome  # nothing held, nothing to hold
                else:
                    yield from merge(outcome, offset)
            else:
                for rec in grouper.push(Line(source, offset, body, truncated), 0.0):
                    yield from emit(rec)
        else:
            for inner in unwrapper.push(Line(source, offset, body, truncated)):
                for rec in grouper.push(inner.line, 0.0, inner.time_ns, inner.service):
                    yield from emit(rec)
        offset += step
    for inner in unwrapper.flush_all():
        for rec in grouper.push(inner.line, 0.0, inner.time_ns, inner.service):
            yield from emit(rec)
    for rec in grouper.flush_all():
        yield from emit(rec)
    for out in merger.flush_all():
        yield Normalised("event", out.event, out.time_ns)


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
