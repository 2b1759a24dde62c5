"""Recording events: claim in the ledger, write the action points, append the CSV, mark csv_ns.

Used by both paths (POST and catch-up); the ledger's claim makes each event recorded once.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from errloop.deploy.serve.actions import ACTION_NOTIFY, ActionRecord, action_record, csv_row
from errloop.deploy.serve.csvlog import ClosedLoopCsv
from errloop.deploy.serve.influx import ActionStore, InfluxError
from errloop.deploy.serve.ledger import Ledger
from errloop.deploy.serve.model import AlertEvent

log = logging.getLogger("errloop.serve")


class RecordError(RuntimeError):
    """Nothing was recorded for the claimed events (InfluxDB or the CSV failed); they can be retried."""


class UniqueClock:
    """Wall clock in ns that never returns the same value twice.

    Two action points of the same series (service, policy, action, state) must never share a
    timestamp, or InfluxDB keeps only one of them.
    """

    def __init__(self, now: Callable[[], int] = time.time_ns) -> None:
        self._now = now
        self._last = 0
        self._lock = threading.Lock()

    def __call__(self) -> int:
        with self._lock:
            t = max(self._now(), self._last + 1)
            self._last = t
            return t


@dataclass
class RecordResult:
    """What one call to :meth:`Recorder.record` did."""

    recorded: list[str] = field(default_factory=list)  # non-OK events: action + CSV row
    recovered: list[str] = field(default_factory=list)  # OK events: action only
    duplicates: list[str] = field(default_factory=list)  # already recorded or being recorded
    mark_failed: int = 0  # CSV written but the csv_ns mark could not be stored


Notify = Callable[[AlertEvent], None]


class Recorder:
    """Records events once: ledger claim -> action points -> CSV rows (fsync) -> csv_ns marks."""

    def __init__(
        self,
        store: ActionStore,
        csv: ClosedLoopCsv,
        ledger: Ledger,
        clock: Callable[[], int] | None = None,
        notify: Notify | None = None,
        action: str = ACTION_NOTIFY,
    ) -> None:
        self.store = store
        self.csv = csv
        self.ledger = ledger
        self.clock = clock or UniqueClock()
        self.notify = notify
        self.action = action

    def record(self, events: Sequence[AlertEvent], via: str) -> RecordResult:
        """Record every event not recorded yet; raises RecordError (claims released) on failure."""
        result = RecordResult()
        by_id: dict[str, AlertEvent] = {}
        for ev in events:
            by_id.setdefault(ev.event_id, ev)
        claimed = self.ledger.claim(by_id)
        taken = set(claimed)
        result.duplicates = [eid for eid in by_id if eid not in taken]
        if not claimed:
            return result
        try:
            self._record(claimed, by_id, via, result)
        except BaseException:
            self.ledger.release(claimed)
            raise
        return result

    def _record(self, claimed: list[str], by_id: dict[str, AlertEvent], via: str, result: RecordResult) -> None:
        records: list[tuple[AlertEvent, ActionRecord]] = []
        for eid in claimed:
            ev = by_id[eid]
            t = self.ledger.pending_time(eid) or self.clock()
            records.append((ev, action_record(ev, t, via, self.action)))
        try:
            self.store.write_actions([r for _, r in records])
        except InfluxError as exc:
            raise RecordError(str(exc)) from None
        for ev, r in records:
            self.ledger.written(ev.event_id, r.time_ns)

        alerting = [(ev, r) for ev, r in records if not ev.recovery]
        marks: list[ActionRecord] = []
        if alerting:
            rows = []
            for ev, r in alerting:
                csv_ns = self.clock()
                rows.append(csv_row(ev, self.action, csv_ns))
                marks.append(r.mark(csv_ns))
            try:
                self.csv.append(rows)
            except OSError as exc:
                raise RecordError(f"closed-loop CSV not written: {exc.strerror or exc}") from None
        # from here on the CSV holds the rows: the events are recorded whatever follows
        now = self.clock()
        self.ledger.commit({ev.event_id: max(now, ev.time_ns, ev.alert_ns) for ev, _ in records})
        result.recorded = [ev.event_id for ev, _ in alerting]
        result.recovered = [ev.event_id for ev, _ in records if ev.recovery]
        if marks:
            try:
                self.store.write_actions(marks)
            except InfluxError as exc:
                result.mark_failed = len(marks)
                log.warning("csv_ns not stored for %d action(s) (trace lacks 'recorded'): %s", len(marks), exc)
        if self.notify is not None:
            for ev, _ in alerting:
                self.notify(ev)
