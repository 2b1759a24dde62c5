"""errloop_classify: classify each errloop_events point and emit it enriched.

For each point the handler rebuilds the event (tags + all four field maps), asks the rule
engine (:mod:`errloop.rules.classify`) for a :class:`Classification`, and emits the same
point renamed to ``errloop_classified`` with the classification as tags (error_class,
category, retryable, severity, rule_id) and fields (suggestion, error_code,
retry_after_s when set), plus:

- ``classified_ns``: wall clock when the UDF handled the event (trace stage "classified"; on
  the bytes path a reading at most 1 ms older than the handling of the point);
- ``fp_count``: events with this fingerprint seen by this classifier (kept across restarts
  through Kapacitor snapshots; only when the point has a fingerprint tag);
- ``window_count``: events with the same Kapacitor group and category whose point time
  lies in ``(t - window, t]``, this one included (only with ``.window(DURATION)``);
- ``sample_weight`` and ``sample_dropped``: only with sampling (``.keep(...)`` /
  ``.sampleRate(...)``, see :mod:`errloop.udf.classify.sampling`); dropped events are not
  emitted but still count in ``fp_count`` and ``window_count``.

Names already present on the incoming point with one of these names are replaced, wherever
they were (a name lives in exactly one of tags / the four field maps). Empty tag values are
left out (InfluxDB has no empty tags).
"""

from __future__ import annotations

import copy
import logging
import operator
import re
import time
from collections.abc import Hashable, Iterable
from typing import Final, NamedTuple

import re2  # google-re2, as the rules use it

from errloop.rules import contract
from errloop.rules.classify import Classification, RuleError, RuleSet, default_rules
from errloop.udf.agent import Edge, Handler, Info, InitError, Options, OptionSpec, ValueType, pointbytes, udf_pb2
from errloop.udf.agent.output import HEADS as _HEADS
from errloop.udf.agent.output import Emitter, point_head
from errloop.udf.classify import reload
from errloop.udf.classify.cache import REFRESH_MASK, ClassificationCache
from errloop.udf.classify.sampling import Kept, Sampler
from errloop.udf.classify.state import FINGERPRINT_CAPACITY, FingerprintTable, SnapshotError, WindowCounter

log = logging.getLogger("errloop.udf")

# what the UDF adds, taken from the contract (never retyped): tags and fields of
# errloop_classified that errloop_events does not have
ADDED_TAGS: Final = tuple(t for t in contract.CLASSIFIED_TAGS if t not in contract.EVENT_TAGS)
ADDED_FIELDS: Final = tuple(f for f in contract.CLASSIFIED_FIELDS if f not in contract.EVENT_FIELDS)
# the added fields this UDF computes itself; the others are Classification attributes
_COMPUTED: Final = ("classified_ns", "fp_count", "window_count", "sample_weight", "sample_dropped")
_FROM_CLASSIFICATION: Final = tuple(f for f in ADDED_FIELDS if f not in _COMPUTED)
_FINGERPRINT_TAG: Final = "fingerprint"
if not (set(_COMPUTED) <= set(ADDED_FIELDS) and _FINGERPRINT_TAG in contract.EVENT_TAGS):
    raise ImportError("errloop.rules.contract no longer names the classify UDF's fields; update udf/classify")
CLASSIFIED_NS, FP_COUNT, WINDOW_COUNT, SAMPLE_WEIGHT, SAMPLE_DROPPED = _COMPUTED
_EVENT_ID: Final = "event_id"
_SERVICE_TAG: Final = "service"
if not (_EVENT_ID in contract.EVENT_FIELDS and _SERVICE_TAG in contract.EVENT_TAGS):
    raise ImportError("errloop.rules.contract no longer names event_id/service; update udf/classify")
_OUTPUT_NAMES: Final = frozenset((*ADDED_TAGS, *ADDED_FIELDS))
_STR_FIELDS: Final = tuple(f for f in _FROM_CLASSIFICATION if contract.CLASSIFIED_FIELDS[f] is str)
_FLOAT_FIELDS: Final = tuple(f for f in _FROM_CLASSIFICATION if contract.CLASSIFIED_FIELDS[f] is float)
# contract.restore_newlines as str.replace calls (C speed; str.translate goes character by
# character): the same result, since every picture maps to one character that is no picture
_RENAMED: Final = pointbytes.name(contract.CLASSIFIED)
_CLASSIFIED_NS_FIELD: Final = pointbytes.IntField(CLASSIFIED_NS)
_FP_COUNT_FIELD: Final = pointbytes.IntField(FP_COUNT)
_WINDOW_COUNT_FIELD: Final = pointbytes.IntField(WINDOW_COUNT)
_SAMPLE_DROPPED_FIELD: Final = pointbytes.IntField(SAMPLE_DROPPED)
_PICTURES: Final = tuple((picture, char) for char, picture in contract.CONTROL_PICTURES.items())
# every map entry of a serialized Point starts with its key as ``0x0a <length> name``: a point
# whose bytes hold none of these holds none of the output names (a false hit only costs time)
# (a fixed pattern of literals: the standard re is linear on it, and faster to call than re2;
# grouped by length byte, which most entry keys already fail on: a quarter faster than flat)
_BY_LENGTH: Final = {len(n): sorted(m for m in _OUTPUT_NAMES if len(m) == len(n)) for n in _OUTPUT_NAMES}
_OUTPUT_KEYS: Final = re.compile(
    b"\\n(?:"
    + b"|".join(
        re.escape(bytes((size,))) + b"(?:" + b"|".join(re.escape(n.encode()) for n in names) + b")"
        for size, names in sorted(_BY_LENGTH.items())
    )
    + b")"
)
if max(map(len, _OUTPUT_NAMES)) >= 0x80:
    raise ImportError("output names must stay shorter than 128 bytes for _OUTPUT_KEYS")
if not all(n.isidentifier() and n.isascii() for n in _OUTPUT_NAMES):
    raise ImportError("output names must be ASCII identifiers for _OUTPUT_KEYS_RUN")
_RE2_LATIN1 = re2.Options()
_RE2_LATIN1.encoding = re2.Options.Encoding.LATIN1  # one byte, one character: the pattern is about bytes
_RE2_LATIN1.never_capture = True
# the same pattern for RE2, run once over a whole run of points joined: RE2's DFA scans a long
# text several times faster than ``re`` (which is faster to call on one point); a hit there
# (one point holds an output name, or a false one across two points) only means each point
# of the run is searched alone
_OUTPUT_KEYS_RUN: Final = re2.compile(
    b"\\n(?:"
    + b"|".join(
        b"\\x%02x(?:" % size + b"|".join(n.encode() for n in names) + b")" for size, names in sorted(_BY_LENGTH.items())
    )
    + b")",
    _RE2_LATIN1,
)
_LIST_ITERATOR: Final[type] = type(iter([]))
_RUN_CHECK_FROM: Final = 8  # points in a run from which the whole-run check is cheaper than point by point
_FROM_STRING: Final = udf_pb2.Point.FromString
_STAMP_NS: Final = 1_000_000  # classified_ns of the bytes path: taken per point, re-encoded when 1 ms old
_TO_PICTURES: Final = str.maketrans(contract.CONTROL_PICTURES)


def restore_newlines(text: str) -> str:
    """``contract.restore_newlines(text)``, fast: ASCII text (most fields) is returned as is."""
    if text.isascii():
        return text
    for picture, char in _PICTURES:
        if picture in text:
            text = text.replace(picture, char)
    return text


class _Added(NamedTuple):
    """What one classification adds to a point, ready to set (kept with it in the cache)."""

    result: Classification
    tags: tuple[tuple[str, str], ...]
    strings: tuple[tuple[str, str], ...]
    floats: tuple[tuple[str, float], ...]
    encoded: bytes | None  # the rename and all of the above as Point fields to append (None: not encodable)


def point_key(point: udf_pb2.Point, names: tuple[str, ...], nameset: frozenset[str]) -> Hashable:
    """The point's key for ``names``: the raw values of each of its maps (see :class:`PointKey`).

    ``(texts, numbers)``: for each name its string field if it has one, else its tag as a
    1-tuple (a tag is not a string field: only string fields get their newlines restored),
    else None; numbers is None when no number field has one of the names, else
    ``(name, int, double, bool)`` (None where absent) for each number field name that is one
    of them, in the order of the point's number maps. ClassifyHandler.points_bytes builds the
    same keys inline.
    """
    strings, tags, ints, doubles, bools = (
        point.fieldsString,
        point.tags,
        point.fieldsInt,
        point.fieldsDouble,
        point.fieldsBool,
    )
    numbers = [*ints, *doubles, *bools]
    return (
        tuple([strings[n] if n in strings else (tags[n],) if n in tags else None for n in names]),
        None
        if nameset.isdisjoint(numbers)
        else tuple(
            [
                (
                    n,
                    ints[n] if n in ints else None,
                    doubles[n] if n in doubles else None,
                    bools[n] if n in bools else None,
                )
                for n in numbers
                if n in nameset
            ]
        ),
    )


def point_event(point: udf_pb2.Point) -> contract.Event:
    """``PointView(point).event()`` (ClassificationCache.lookup_keyed's ``event``)."""
    return PointView(point).event()


class PointKey:
    """A :data:`~errloop.udf.classify.cache.KeyOf` for a point: the raw values of each of its maps.

    Equal keys mean equal values for the rules: the map a value comes from fixes its type
    and its precedence (``PointView.get``), and raw string fields that are equal stay equal
    once their newlines are restored. The number maps take part only when one of them holds
    one of the names. (:func:`point_key`, as a callable of the names.)
    """

    __slots__ = ("_point",)

    def __init__(self, point: udf_pb2.Point) -> None:
        self._point = point

    def __call__(self, names: tuple[str, ...], nameset: frozenset[str]) -> Hashable:
        return point_key(self._point, names, nameset)


def fingerprint_of(point: udf_pb2.Point) -> str | None:
    """``PointView(point).get("fingerprint")`` when it is a non-empty string, else None (faster)."""
    fp = _FINGERPRINT_TAG
    if fp in point.fieldsInt or fp in point.fieldsDouble or fp in point.fieldsBool:
        return None  # a number wins over a string (PointView.get): no fingerprint
    text = point.fieldsString.get(fp)
    if text is None:
        return point.tags.get(fp) or None
    return (text if text.isascii() else restore_newlines(text)) or None


class PointView:
    """An incoming point read as an event, one value at a time (upb maps are slow to copy whole).

    ``get(name)`` gives what ``event()[name]`` gives: a name present in several maps takes
    the value of the last one the event is built from (tags, strings, ints, doubles, bools);
    string fields come with their newlines restored.
    """

    __slots__ = ("_event", "_numbers", "_strings", "_tags", "point")

    def __init__(self, point: udf_pb2.Point) -> None:
        self.point = point
        self._tags = point.tags
        self._strings = point.fieldsString
        numbers: dict[str, contract.Value] = {}  # few: copied at once, in the event's order
        for values in (point.fieldsInt, point.fieldsDouble, point.fieldsBool):
            if values:
                for name in values:
                    numbers[name] = values[name]
        self._numbers = numbers
        self._event: contract.Event | None = None

    def get(self, name: str) -> contract.Value | None:
        number = self._numbers.get(name)
        if number is not None:
            return number
        text = self._strings.get(name)
        if text is not None:
            return text if text.isascii() else restore_newlines(text)
        return self._tags.get(name)

    def event(self) -> contract.Event:
        """The whole event (built once)."""
        if self._event is None:
            # {k: m[k] for k in m} is about twice as fast as dict(m) or dict.update(m) on upb maps
            tags = self._tags
            event: contract.Event = {name: tags[name] for name in tags}
            strings = self._strings
            for name in strings:  # match on the text as the service wrote it
                text = strings[name]
                event[name] = text if text.isascii() else restore_newlines(text)
            event.update(self._numbers)
            self._event = event
        return self._event

    def has_any(self, names: frozenset[str]) -> bool:
        """Whether a tag or field of the point has one of ``names``."""
        if self._event is not None:
            return not self._event.keys().isdisjoint(names)
        return not (
            names.isdisjoint(self._tags) and names.isdisjoint(self._strings) and names.isdisjoint(self._numbers)
        )


INFO: Final = Info(
    wants=Edge.STREAM,
    provides=Edge.STREAM,
    doc="Classifies errloop_events points with the errloop rules and emits errloop_classified points.",
    options=(
        OptionSpec(
            "rules",
            (ValueType.STRING,),
            doc="absolute path of a classification rule file (default: the bundled rules)",
        ),
        OptionSpec(
            "reload",
            (ValueType.DURATION,),
            doc="with .rules: look at the rule file this often and swap in a changed valid one (default 1s, 0s: never)",
        ),
        OptionSpec(
            "window",
            (ValueType.DURATION,),
            doc="adds window_count: events of the same group and category within this trailing window",
        ),
        OptionSpec(
            "keep",
            (ValueType.STRING,),
            repeatable=True,
            doc="with sampling: always keep events of this error_class or category (repeatable)",
        ),
        OptionSpec(
            "sampleRate",
            (ValueType.DOUBLE,),
            doc="keep this fraction (0 < rate <= 1) of the events not kept by .keep, chosen by event_id hash",
        ),
    ),
)


def read_rules(path: str) -> RuleSet:
    """Load a rule file; any problem becomes an :class:`InitError` with a readable text."""
    try:
        return reload.read_rules(path)
    except (OSError, UnicodeDecodeError) as exc:
        raise InitError(f"cannot read rules file {path}: {exc}") from None
    except RuleError as exc:
        raise InitError(str(exc)) from None


class ClassifyHandler(Handler):
    """One errloop_classify node: rules, the fingerprint table, the optional window."""

    POINT_BYTES = True  # points arrive unparsed: see point_bytes

    def __init__(self, emitter: Emitter, fingerprint_capacity: int = FINGERPRINT_CAPACITY) -> None:
        super().__init__(emitter)
        self.rules: RuleSet | None = None
        self.cache: ClassificationCache[_Added] | None = None  # follows self.rules
        self.fingerprints = FingerprintTable(fingerprint_capacity)
        self.window: WindowCounter | None = None
        self.sampler: Sampler | None = None
        self.rule_file: reload.RuleFile | None = None  # watched for changes (only with .rules)
        self._stamp = (0, b"")  # the bytes path's latest classified_ns reading, and its field

    @classmethod
    def info(cls) -> Info:
        return INFO

    def init(self, options: Options) -> None:
        path = options.get_str("rules")
        window = options.get_duration("window")
        if window is not None and window <= 0:
            raise InitError(f"window must be positive, got {window}ns")
        every = options.get_duration("reload")
        if every is not None and every < 0:
            raise InitError(f"reload must not be negative, got {every}ns")
        self.sampler = _sampler(options)
        seen = reload.identity(path) if path else None  # before reading: a change meanwhile is seen later
        self.rules = read_rules(path) if path else default_rules()
        if path and every != 0:
            self.rule_file = reload.RuleFile(path, self.rules, every / 1e9 if every else reload.EVERY_S, seen=seen)
        self.window = WindowCounter(window) if window is not None else None
        log.info(
            "errloop_classify %s/%s: %d rules from %s, window=%s, sampling=%s",
            self.task_id,
            self.node_id,
            len(self.rules),
            self.rules.source,
            f"{window}ns" if window else "off",
            f"rate {self.sampler.rate} keep {sorted(self.sampler.keep)}" if self.sampler else "off",
        )

    def snapshot(self) -> bytes:
        return self.fingerprints.to_snapshot()

    def restore(self, data: bytes) -> None:
        capacity = self.fingerprints.capacity
        if not data:
            self.fingerprints = FingerprintTable(capacity)
            return
        try:
            table = FingerprintTable.from_snapshot(data, capacity)
        except SnapshotError as exc:
            log.warning("errloop_classify: ignoring snapshot (%s); starting empty", exc)
            table = None
        if table is None:
            log.warning("errloop_classify: snapshot of another version; starting empty")
            table = FingerprintTable(capacity)
        self.fingerprints = table

    def close(self) -> None:
        cache = self.cache
        if cache is not None:
            log.info(
                "errloop_classify %s/%s: classification cache hits=%d misses=%d",
                self.task_id,
                self.node_id,
                cache.hits,
                cache.misses,
            )
        sampler = self.sampler
        if sampler is not None:
            log.info(
                "errloop_classify %s/%s: sampling kept=%d dropped=%d (unreported %d)",
                self.task_id,
                self.node_id,
                sampler.kept_total,
                sampler.dropped_total,
                sampler.unreported,
            )

    def _cache(self) -> tuple[RuleSet, ClassificationCache[_Added] | None]:
        """The rules and their memo (None when the rules are not a RuleSet)."""
        rules = self.rules
        if rules is None:  # data without init: Kapacitor always inits, but stay usable
            rules = self.rules = default_rules()
        cache = self.cache
        if cache is None or cache.rules is not rules:
            # a RuleSet gets a memo; anything else standing in for one is asked every time
            cache = self.cache = ClassificationCache(rules, _added) if isinstance(rules, RuleSet) else None
        return rules, cache

    def _classify(self, point: udf_pb2.Point) -> tuple[PointView, _Added]:
        rules, cache = self._cache()
        view = PointView(point)
        if cache is not None:
            return view, cache.lookup(PointKey(point), view.event)
        return view, _added(rules.classify(view.event()))

    def point_bytes(self, payload: bytes) -> None:
        self.points_bytes((payload,))

    def points_bytes(self, payloads: Iterable[bytes]) -> None:
        # the usual case: the output is the input with the classification's fields appended
        # (pointbytes), which skips editing upb maps and serializing the point again; the
        # outputs of a run go out framed and joined, in one write. Everything a point needs
        # is bound to locals once per run, upb map containers are fetched once per point,
        # and a memo hit is read inline: per point, this is the hottest loop of the UDF.
        rules, cache = self._cache()
        emitter = self.emitter
        fingerprints = self.fingerprints
        window = self.window
        sampler = self.sampler
        rule_file = self.rule_file  # looked at once per run (on its first point): at most BATCH_MAX points
        search = _OUTPUT_KEYS.search
        # whether a point may hold an output name: looked at for every point of the run at once
        # when the run can be looked ahead at (a list, or a list iterator: an independent
        # iterator over the points not yet taken), else (a generator, say) point by point
        # (only for runs long enough to pay for RE2's call)
        check = not (
            (type(payloads) is _LIST_ITERATOR or isinstance(payloads, tuple | list))
            and operator.length_hint(payloads) >= _RUN_CHECK_FROM
            and _OUTPUT_KEYS_RUN.search(b"".join(copy.copy(payloads))) is None
        )
        fp_name = _FINGERPRINT_TAG
        time_ns = time.time_ns
        stamp, stamp_field = self._stamp  # (kept across runs: a run of one point should not pay for it)
        heads = _HEADS
        winners_get, results_get = (cache.winners.get, cache.results.get) if cache is not None else (_none, _none)
        out: list[bytes] = []
        emitted = 0
        try:
            for payload in payloads:
                point = _FROM_STRING(payload)
                if rule_file is not None:
                    self._poll_rules(rule_file, point)  # emits its report itself: nothing is held yet
                    rule_file = None
                    rules, cache = self._cache()
                    if cache is not None:
                        winners_get, results_get = cache.winners.get, cache.results.get
                strings = point.fieldsString
                tags = point.tags
                ints, doubles, bools = point.fieldsInt, point.fieldsDouble, point.fieldsBool
                numbers = [*ints, *doubles, *bools]  # the names of the number fields: few
                if cache is None:
                    added = _added(rules.classify(PointView(point).event()))
                else:
                    # point_key(point, names, nameset), inline, and the memo's hit path
                    # (``m[n] if n in m`` rather than ``m.get``: upb's get parses keyword arguments)
                    nameset = cache.match_set
                    key = (
                        tuple(
                            [
                                strings[n] if n in strings else (tags[n],) if n in tags else None
                                for n in cache.match_fields
                            ]
                        ),
                        None
                        if nameset.isdisjoint(numbers)
                        else tuple(
                            [
                                (
                                    n,
                                    ints[n] if n in ints else None,
                                    doubles[n] if n in doubles else None,
                                    bools[n] if n in bools else None,
                                )
                                for n in numbers
                                if n in nameset
                            ]
                        ),
                    )
                    winner = winners_get(key)
                    found = None
                    if winner is not None:
                        names, nameset, token = winner
                        full = (
                            token,
                            (
                                tuple(
                                    [strings[n] if n in strings else (tags[n],) if n in tags else None for n in names]
                                ),
                                None
                                if nameset.isdisjoint(numbers)
                                else tuple(
                                    [
                                        (
                                            n,
                                            ints[n] if n in ints else None,
                                            doubles[n] if n in doubles else None,
                                            bools[n] if n in bools else None,
                                        )
                                        for n in numbers
                                        if n in nameset
                                    ]
                                ),
                            )
                            if names
                            else None,
                        )
                        found = results_get(full)
                    if found is None:
                        added = cache.lookup_keyed(key, point_key, point, point_event)
                    else:
                        added = found
                        cache.hits += 1
                        if not cache.hits & REFRESH_MASK:
                            cache.refresh(key, full)
                encoded = added.encoded
                if encoded is None or sampler is not None or (check and search(payload) is not None):
                    if out:
                        emitter.point_frames(b"".join(out), emitted)
                        out = []
                        emitted = 0
                    if encoded is None or (check and search(payload) is not None):
                        self._emit_edited(point, PointView(point), added)
                    else:
                        self._emit_sampled(payload, point, added)
                    continue
                now = time_ns()
                if not 0 <= now - stamp <= _STAMP_NS:  # (older than 1 ms, or the clock went back)
                    stamp = now
                    stamp_field = _CLASSIFIED_NS_FIELD(now)
                size = len(payload) + len(encoded) + len(stamp_field)
                # fingerprint_of(point), inline
                if fp_name in numbers:
                    fingerprint = None
                else:
                    fingerprint = strings[fp_name] if fp_name in strings else None
                    if fingerprint is None:
                        fingerprint = tags[fp_name] if fp_name in tags else None
                    elif not fingerprint.isascii():
                        fingerprint = restore_newlines(fingerprint)
                if window is None:
                    if fingerprint:
                        count_field = _FP_COUNT_FIELD(fingerprints.see(fingerprint, point.time))
                        size += len(count_field)
                        out += (heads.get(size) or point_head(size), payload, encoded, stamp_field, count_field)
                    else:
                        out += (heads.get(size) or point_head(size), payload, encoded, stamp_field)
                else:
                    time_of = point.time
                    window_field = _WINDOW_COUNT_FIELD(window.add((point.group, added.result.category), time_of))
                    if fingerprint:
                        count_field = _FP_COUNT_FIELD(fingerprints.see(fingerprint, time_of))
                        size += len(count_field) + len(window_field)
                        out += (point_head(size), payload, encoded, stamp_field, count_field, window_field)
                    else:
                        out += (point_head(size + len(window_field)), payload, encoded, stamp_field, window_field)
                emitted += 1
        finally:
            self._stamp = (stamp, stamp_field)
            if out:
                emitter.point_frames(b"".join(out), emitted)

    def _emit_sampled(self, payload: bytes, point: udf_pb2.Point, added: _Added) -> None:
        """The bytes path with a sampler: ``payload`` and its fields, unless the sampler drops it."""
        assert added.encoded is not None
        parts = [payload, added.encoded, _CLASSIFIED_NS_FIELD(time.time_ns())]
        fingerprint = fingerprint_of(point)
        if fingerprint is not None:
            parts.append(_FP_COUNT_FIELD(self.fingerprints.see(fingerprint, point.time)))
        if self.window is not None:
            count = self.window.add((point.group, added.result.category), point.time)
            parts.append(_WINDOW_COUNT_FIELD(count))
        kept = self._sample(point, PointView(point), added)
        if kept is None:
            return
        parts.append(pointbytes.double_field(SAMPLE_WEIGHT, kept.weight))
        parts.append(_SAMPLE_DROPPED_FIELD(kept.dropped))
        self.emitter.point_bytes(b"".join(parts))

    def _poll_rules(self, rule_file: reload.RuleFile, point: udf_pb2.Point) -> None:
        """Swap in a changed rule file, or keep the rules and say why; log it and emit an errloop_rules point."""
        outcome = rule_file.poll()
        if outcome is None:
            return
        report = udf_pb2.Point(
            time=point.time, name=contract.RULES, database=point.database, retentionPolicy=point.retentionPolicy
        )
        report.tags["task"] = self.task_id or "-"
        report.fieldsString["source"] = rule_file.path
        if isinstance(outcome, reload.Loaded):
            self.rules = outcome.rules  # the memo follows (_cache)
            report.tags["status"] = "loaded"
            report.fieldsInt["problems"] = 0
            log.info(
                "errloop_classify %s/%s: reloaded %d rules from %s",
                self.task_id,
                self.node_id,
                len(outcome.rules),
                rule_file.path,
            )
        else:
            report.tags["status"] = "refused"
            report.fieldsInt["problems"] = outcome.problems
            report.fieldsString["error"] = outcome.error.translate(_TO_PICTURES)
            log.error(
                "errloop_classify %s/%s: rules file changed but is refused, keeping the %d rules in force:\n%s",
                self.task_id,
                self.node_id,
                len(self.rules) if self.rules is not None else 0,
                outcome.error,
            )
        report.fieldsInt["rules"] = len(self.rules) if self.rules is not None else 0
        self.emitter.point(report)

    def _sample(self, point: udf_pb2.Point, view: PointView, added: _Added) -> Kept | None:
        """The sampler's verdict on this point (call only with a sampler)."""
        assert self.sampler is not None
        result = added.result
        event_id = view.get(_EVENT_ID)
        if isinstance(event_id, str) and event_id:
            key = event_id
        else:  # no id: the fingerprint and point time decide, which a replay repeats as well
            key = f"{view.get(_FINGERPRINT_TAG) or ''}@{point.time}"
        service = view.get(_SERVICE_TAG)
        return self.sampler.admit(result.error_class, result.category, service if isinstance(service, str) else "", key)

    def point(self, point: udf_pb2.Point) -> None:
        if self.rule_file is not None:
            self._poll_rules(self.rule_file, point)
        view, added = self._classify(point)
        self._emit_edited(point, view, added)

    def _emit_edited(self, point: udf_pb2.Point, view: PointView, added: _Added) -> None:
        if view.has_any(_OUTPUT_NAMES):
            _clear(point)
        self._enrich(point, view, added)
        if self.sampler is not None:
            kept = self._sample(point, view, added)
            if kept is None:
                return
            point.fieldsDouble[SAMPLE_WEIGHT] = kept.weight
            point.fieldsInt[SAMPLE_DROPPED] = kept.dropped
        point.name = contract.CLASSIFIED
        self.emitter.point(point)

    def _enrich(self, point: udf_pb2.Point, view: PointView, added: _Added) -> None:
        tags = point.tags
        for name, text in added.tags:
            tags[name] = text
        strings = point.fieldsString
        for name, text in added.strings:
            strings[name] = text
        for name, number in added.floats:
            point.fieldsDouble[name] = number
        ints = point.fieldsInt
        ints[CLASSIFIED_NS] = time.time_ns()
        fingerprint = view.get(_FINGERPRINT_TAG)
        if isinstance(fingerprint, str) and fingerprint:
            ints[FP_COUNT] = self.fingerprints.see(fingerprint, point.time)
        if self.window is not None:
            ints[WINDOW_COUNT] = self.window.add((point.group, added.result.category), point.time)


def _added(result: Classification) -> _Added:
    tags = []
    for name in ADDED_TAGS:
        value = getattr(result, name)
        text = ("true" if value else "false") if isinstance(value, bool) else str(value)
        if text:
            tags.append((name, text))
    strings = tuple((name, str(getattr(result, name))) for name in _STR_FIELDS)
    floats = tuple((name, float(v)) for name in _FLOAT_FIELDS if (v := getattr(result, name)) is not None)
    try:
        encoded: bytes | None = b"".join(
            (
                _RENAMED,
                *(pointbytes.tag(k, v) for k, v in tags),
                *(pointbytes.string_field(k, v) for k, v in strings),
                *(pointbytes.double_field(k, v) for k, v in floats),
            )
        )
    except UnicodeEncodeError:  # lone surrogates: let protobuf itself refuse them on the slow path
        encoded = None
    return _Added(result, tuple(tags), strings, floats, encoded)


def _none(_: object) -> None:
    """Nothing, for anything (a memo's ``get`` when there is no memo)."""
    return None


def _sampler(options: Options) -> Sampler | None:
    """The sampler the options ask for (None without .keep and .sampleRate)."""
    rate = options.get_float("sampleRate")
    keep_calls = options.get("keep")
    if rate is None and keep_calls is None:
        return None
    keep: list[str] = []
    for call in keep_calls if isinstance(keep_calls, tuple) else (keep_calls,) if keep_calls is not None else ():
        values = call if isinstance(call, tuple) else (call,)
        keep += [str(v) for v in values]
    if rate is None:
        rate = 1.0
    if not 0.0 < rate <= 1.0:
        raise InitError(f"sampleRate must be in (0, 1], got {rate}")
    return Sampler(keep, rate)


def _clear(point: udf_pb2.Point) -> None:
    """Remove every tag/field named like an output, so each name lives in one map only."""
    for values in (point.tags, point.fieldsString, point.fieldsInt, point.fieldsDouble, point.fieldsBool):
        for name in _OUTPUT_NAMES:
            if name in values:
                del values[name]
