"""errloop_classify: classify each errloop_events point and emit it enriched.

For each point the handler rebuilds the event (tags + all four field maps), asks the rule
engine (:mod:`errloop.rules.classify`) for a :class:`Classification`, and emits the same
point renamed to ``errloop_classified`` with the classification as tags (error_class,
category, retryable, severity, rule_id) and fields (suggestion, error_code,
retry_after_s when set), plus:

- ``classified_ns``: wall clock when the UDF handled the event (trace stage "classified");
- ``fp_count``: events with this fingerprint seen by this classifier (kept across restarts
  through Kapacitor snapshots; only when the point has a fingerprint tag);
- ``window_count``: events with the same Kapacitor group and category whose point time
  lies in ``(t - window, t]``, this one included (only with ``.window(DURATION)``).

Names already present on the incoming point with one of these names are replaced, wherever
they were (a name lives in exactly one of tags / the four field maps). Empty tag values are
left out (InfluxDB has no empty tags).
"""

from __future__ import annotations

import logging
import time
from typing import Final

from errloop.rules import contract
from errloop.rules.classify import Classification, RuleError, RuleSet, default_rules, load_rules
from errloop.udf.agent import Edge, Handler, Info, InitError, Options, OptionSpec, ValueType, udf_pb2
from errloop.udf.agent.output import Emitter
from errloop.udf.classify.state import FINGERPRINT_CAPACITY, FingerprintTable, SnapshotError, WindowCounter

log = logging.getLogger("errloop.udf")

# what the UDF adds, taken from the contract (never retyped): tags and fields of
# errloop_classified that errloop_events does not have
ADDED_TAGS: Final = tuple(t for t in contract.CLASSIFIED_TAGS if t not in contract.EVENT_TAGS)
ADDED_FIELDS: Final = tuple(f for f in contract.CLASSIFIED_FIELDS if f not in contract.EVENT_FIELDS)
# the added fields this UDF computes itself; the others are Classification attributes
_COMPUTED: Final = ("classified_ns", "fp_count", "window_count")
_FROM_CLASSIFICATION: Final = tuple(f for f in ADDED_FIELDS if f not in _COMPUTED)
_FINGERPRINT_TAG: Final = "fingerprint"
if not (set(_COMPUTED) <= set(ADDED_FIELDS) and _FINGERPRINT_TAG in contract.EVENT_TAGS):
    raise ImportError("errloop.rules.contract no longer names the classify UDF's fields; update udf/classify")
CLASSIFIED_NS, FP_COUNT, WINDOW_COUNT = _COMPUTED
_OUTPUT_NAMES: Final = frozenset((*ADDED_TAGS, *ADDED_FIELDS))
_STR_FIELDS: Final = tuple(f for f in _FROM_CLASSIFICATION if contract.CLASSIFIED_FIELDS[f] is str)
_FLOAT_FIELDS: Final = tuple(f for f in _FROM_CLASSIFICATION if contract.CLASSIFIED_FIELDS[f] is float)

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
            "window",
            (ValueType.DURATION,),
            doc="adds window_count: events of the same group and category within this trailing window",
        ),
    ),
)


def read_rules(path: str) -> RuleSet:
    """Load a rule file; any problem becomes an :class:`InitError` with a readable text."""
    try:
        with open(path, encoding="utf-8") as f:
            text = f.read()
    except (OSError, UnicodeDecodeError) as exc:
        raise InitError(f"cannot read rules file {path}: {exc}") from None
    try:
        return load_rules(text, source=path)
    except RuleError as exc:
        raise InitError(str(exc)) from None


class ClassifyHandler(Handler):
    """One errloop_classify node: rules, the fingerprint table, the optional window."""

    def __init__(self, emitter: Emitter, fingerprint_capacity: int = FINGERPRINT_CAPACITY) -> None:
        super().__init__(emitter)
        self.rules: RuleSet | None = None
        self.fingerprints = FingerprintTable(fingerprint_capacity)
        self.window: WindowCounter | None = None

    @classmethod
    def info(cls) -> Info:
        return INFO

    def init(self, options: Options) -> None:
        path = options.get_str("rules")
        window = options.get_duration("window")
        if window is not None and window <= 0:
            raise InitError(f"window must be positive, got {window}ns")
        self.rules = read_rules(path) if path else default_rules()
        self.window = WindowCounter(window) if window is not None else None
        log.info(
            "errloop_classify %s/%s: %d rules from %s, window=%s",
            self.task_id,
            self.node_id,
            len(self.rules),
            self.rules.source,
            f"{window}ns" if window else "off",
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

    def point(self, point: udf_pb2.Point) -> None:
        rules = self.rules
        if rules is None:  # data without init: Kapacitor always inits, but stay usable
            rules = self.rules = default_rules()
        tags = point.tags
        event: contract.Event = dict(tags)
        for name, text in point.fieldsString.items():  # match on the text as the service wrote it
            event[name] = text.translate(contract.RESTORE_TABLE)
        event.update(point.fieldsInt)
        event.update(point.fieldsDouble)
        event.update(point.fieldsBool)
        result = rules.classify(event)
        if not event.keys().isdisjoint(_OUTPUT_NAMES):
            _clear(point)
        self._enrich(point, event, result)
        point.name = contract.CLASSIFIED
        self.emitter.point(point)

    def _enrich(self, point: udf_pb2.Point, event: contract.Event, result: Classification) -> None:
        tags = point.tags
        for name in ADDED_TAGS:
            value = getattr(result, name)
            text = ("true" if value else "false") if isinstance(value, bool) else str(value)
            if text:
                tags[name] = text
        strings = point.fieldsString
        for name in _STR_FIELDS:
            strings[name] = getattr(result, name)
        for name in _FLOAT_FIELDS:
            value = getattr(result, name)
            if value is not None:
                point.fieldsDouble[name] = float(value)
        ints = point.fieldsInt
        ints[CLASSIFIED_NS] = time.time_ns()
        fingerprint = event.get(_FINGERPRINT_TAG)
        if isinstance(fingerprint, str) and fingerprint:
            ints[FP_COUNT] = self.fingerprints.see(fingerprint, point.time)
        if self.window is not None:
            ints[WINDOW_COUNT] = self.window.add((point.group, result.category), point.time)


def _clear(point: udf_pb2.Point) -> None:
    """Remove every tag/field named like an output, so each name lives in one map only."""
    for values in (point.tags, point.fieldsString, point.fieldsInt, point.fieldsDouble, point.fieldsBool):
        for name in _OUTPUT_NAMES:
            if name in values:
                del values[name]
