"""Events and counters → line protocol, without two events of one series sharing a timestamp."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Hashable, Mapping
from typing import Final

from errloop.rules import contract
from errloop.telegraf import lineproto

BUMP_WINDOW_NS: Final = 1_000_000
MAX_SERIES: Final = 50_000


class SeriesClock:
    """Point times that never collide inside one series.

    InfluxDB keeps one point per (measurement, tag set, time): a second event of the same
    series at the same nanosecond would overwrite the first. When an event's time is at
    or up to 1 ms before the last time given to its series, it gets that time + 1 ns;
    other times pass unchanged. The last time of at most 50,000 series is remembered
    (least recently used are forgotten).
    """

    def __init__(self, window_ns: int = BUMP_WINDOW_NS, max_series: int = MAX_SERIES) -> None:
        self.window_ns = window_ns
        self.max_series = max_series
        self._last: OrderedDict[Hashable, int] = OrderedDict()
        self.bumped = 0

    def assign(self, series: Hashable, time_ns: int) -> int:
        last = self._last.get(series)
        if last is not None:
            self._last.move_to_end(series)
            if last - self.window_ns < time_ns <= last:
                time_ns = last + 1
                self.bumped += 1
            self._last[series] = max(last, time_ns)
        else:
            self._last[series] = time_ns
            if len(self._last) > self.max_series:
                self._last.popitem(last=False)
        return time_ns


_TAGS: Final = frozenset(contract.EVENT_TAGS)
_EVENTS: Final = lineproto.SeriesEncoder(
    contract.EVENTS,
    contract.EVENT_TAGS,
    # texts that repeat from event to event of one error: their encoded form is remembered
    repeated=("template", "error_type", "error_chain", "root_cause", "stack", "top_frame", "file_line", "source"),
)


def event_line(event: Mapping[str, contract.Value], time_ns: int, clock: SeriesClock) -> str:
    """The line of one event in ``errloop_events`` (raises lineproto.LineProtocolError if unwritable).

    What ``lineproto.encode(contract.EVENTS, *contract.split(event, contract.EVENT_TAGS), t)``
    writes, with ``t`` from ``clock`` for the event's series (its escaped tag set).
    """
    head = _EVENTS.head(event)
    return _EVENTS.line(head, event, clock.assign(head, time_ns), skip=_TAGS)


def stats_line(counters: Mapping[str, int], tags: Mapping[str, str], time_ns: int) -> str:
    """The plugin's counters as one ``errloop_ingest`` point (cumulative since start)."""
    return lineproto.encode(
        contract.INGEST_STATS, tags, {name: int(counters.get(name, 0)) for name in contract.INGEST_COUNTERS}, time_ns
    )
