"""The second path: alerts a POST never delivered are read back from ``errloop_alerts``.

Kapacitor's ``post`` handler never retries (TICK-STACK.md), so the generated TICKscript also
writes the alert node's output to ``errloop_alerts``. At start errloop serve loads the ids
already recorded (``errloop_actions`` + the CSV) into the ledger; then, on start and every
interval, it reads ``errloop_alerts`` points newer than ``watermark - overlap`` and records
every event the ledger does not know. The watermark is the wall clock of the last complete
pass, kept in a small JSON state file written atomically.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import tempfile
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from errloop.deploy.serve.actions import CSV_NS, STATE_RECOVERED, VIA_CATCHUP, ActionRecord
from errloop.deploy.serve.csvlog import ClosedLoopCsv
from errloop.deploy.serve.influx import ActionStore, Row
from errloop.deploy.serve.ledger import Ledger
from errloop.deploy.serve.model import LEVELS, AlertEvent, make_events, valid_event_id
from errloop.deploy.serve.recorder import Recorder
from errloop.rules import contract
from errloop.rules.contract import Event

log = logging.getLogger("errloop.serve")

S = 1_000_000_000
LOAD_MARGIN_NS = 3600 * S  # actions recorded this long before the window are loaded too (clock skew)
PRUNE_EVERY_NS = 60 * S
ALERT_ID, ALERT_LEVEL, ALERT_MESSAGE = contract.ALERT_FIELDS


# ---------------------------------------------------------------------------------------------
# pure parts


def events_from_alert_rows(rows: Iterable[Row]) -> tuple[list[AlertEvent], list[str]]:
    """errloop_alerts points -> events, grouped into their alerts by (alert_id, time).

    Each point is the alert node's output for one event: the classified event's tags and
    fields plus alert_id, alert_level, alert_message and alerted_ns. Unusable points are
    returned as reasons in the second list.
    """
    groups: dict[tuple[str, str, str, int], list[tuple[Event, int]]] = {}
    rejected: list[str] = []
    for i, row in enumerate(rows):
        t = row.get("time")
        alert_id = row.get(ALERT_ID)
        level = row.get(ALERT_LEVEL)
        message = row.get(ALERT_MESSAGE, "")
        if not isinstance(t, int) or isinstance(t, bool):
            rejected.append(f"point {i}: no integer time")
            continue
        if not isinstance(alert_id, str) or not alert_id:
            rejected.append(f"point {i}: no {ALERT_ID}")
            continue
        if level not in LEVELS:
            rejected.append(f"point {i}: {ALERT_LEVEL} {str(level)[:20]!r} is not a level")
            continue
        assert isinstance(level, str)
        event: Event = {}
        for k, v in row.items():
            if k in ("time", ALERT_ID, ALERT_LEVEL, ALERT_MESSAGE):
                continue
            if isinstance(v, str | int | float | bool):
                event[k] = v
        groups.setdefault((alert_id, level, str(message), t), []).append((event, t))
    events: list[AlertEvent] = []
    for (alert_id, level, message, t), members in groups.items():
        evs, bad = make_events(members, alert_id, level, message, t)
        events += evs
        rejected += [f"alert {alert_id} at {t}: {b}" for b in bad]
    return events, rejected


@dataclass
class LedgerSeed:
    """What earlier runs recorded, as found in errloop_actions and the CSV."""

    done: dict[str, int] = field(default_factory=dict)
    pending: dict[str, int] = field(default_factory=dict)
    repairs: list[ActionRecord] = field(default_factory=list)  # csv_ns marks lost after the CSV write


def ledger_seed(action_rows: Iterable[Row], csv_recorded: Mapping[str, int]) -> LedgerSeed:
    """Done, pending and repairable ids from action points and the CSV's (event_id -> recorded_at).

    Done: a recovery, an action with ``csv_ns``, or a row in the CSV. Pending: an action point
    without ``csv_ns`` and without a CSV row (the CSV write failed; the retry reuses its time).
    Repair: an action point without ``csv_ns`` whose CSV row exists (the mark write failed).
    """
    seed = LedgerSeed(done=dict(csv_recorded))
    marked: set[str] = set()
    half: dict[str, Row] = {}
    for row in action_rows:
        eid, t = row.get("event_id"), row.get("time")
        if not valid_event_id(eid) or not isinstance(t, int):
            continue
        assert isinstance(eid, str)
        if row.get("state") == STATE_RECOVERED or CSV_NS in row:
            marked.add(eid)
            seed.done[eid] = max(t, seed.done.get(eid, 0))
        else:
            half.setdefault(eid, row)
    for eid, row in half.items():
        t = row["time"]
        assert isinstance(t, int)
        if eid in marked:
            continue
        if eid in csv_recorded:
            if csv_recorded[eid] > 0:
                tags: dict[str, str] = {k: str(row[k]) for k in contract.ACTION_TAGS if k in row}
                seed.repairs.append(ActionRecord(eid, tags, {CSV_NS: csv_recorded[eid]}, t))
        else:
            seed.pending[eid] = t
    return seed


# ---------------------------------------------------------------------------------------------
# the watermark state file


class WatermarkFile:
    """``{"watermark_ns": N}`` in a JSON file, replaced atomically."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def load(self) -> int | None:
        """The saved watermark, or None when there is none (or the file is unreadable)."""
        try:
            doc = json.loads(self.path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return None
        except (OSError, ValueError) as exc:
            log.warning("state file %s unreadable (%s): catching up from the lookback", self.path, exc)
            return None
        value = doc.get("watermark_ns") if isinstance(doc, dict) else None
        return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else None

    def save(self, watermark_ns: int) -> None:
        """Write the watermark: temp file, fsync, rename."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".errloop-serve-", dir=self.path.parent)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                json.dump({"watermark_ns": int(watermark_ns)}, f)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, self.path)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise


# ---------------------------------------------------------------------------------------------
# the loop's work


@dataclass
class CatchUpResult:
    """One catch-up pass."""

    scanned: int = 0  # event ids found in errloop_alerts
    recorded: list[str] = field(default_factory=list)
    recovered: list[str] = field(default_factory=list)
    duplicates: int = 0
    rejected: list[str] = field(default_factory=list)


class CatchUp:
    """Loads the ledger, then records what only errloop_alerts knows about."""

    def __init__(
        self,
        store: ActionStore,
        recorder: Recorder,
        ledger: Ledger,
        csv: ClosedLoopCsv,
        state: WatermarkFile,
        overlap_ns: int,
        lookback_ns: int,
        clock: Callable[[], int] = time.time_ns,
    ) -> None:
        self.store = store
        self.recorder = recorder
        self.ledger = ledger
        self.csv = csv
        self.state = state
        self.overlap_ns = overlap_ns
        self.lookback_ns = lookback_ns
        self.clock = clock
        self.ready = False
        self._watermark = state.load()
        self._lock = threading.Lock()
        self._pruned = 0

    @property
    def watermark(self) -> int | None:
        """Wall clock (ns) of the last complete pass, if any."""
        return self._watermark

    def window_start(self) -> int:
        """Points newer than this are read: ``watermark - overlap`` (or ``now - lookback - overlap``)."""
        base = self._watermark if self._watermark is not None else self.clock() - self.lookback_ns
        return base - self.overlap_ns

    def bootstrap(self) -> LedgerSeed:
        """Fill the ledger from errloop_actions and the CSV; raises InfluxError while InfluxDB is away."""
        with self._lock:
            since = self.window_start() - LOAD_MARGIN_NS
            seed = ledger_seed(self.store.action_rows(since), self.csv.recorded())
            self.ledger.load(seed.done, seed.pending)
            if seed.repairs:
                try:
                    self.store.write_actions(seed.repairs)
                except Exception as exc:
                    log.warning("could not restore csv_ns of %d action(s): %s", len(seed.repairs), exc)
            self.ready = True
            return seed

    def run_once(self) -> CatchUpResult:
        """One pass; the watermark advances only when every event found was handled."""
        if not self.ready:
            self.bootstrap()
        with self._lock:
            started = self.clock()
            since = self.window_start()
            ids = self.store.alert_event_ids(since)
            unknown = self.ledger.unknown(ids)
            rows = self.store.alert_rows(since, unknown) if unknown else []
            events, rejected = events_from_alert_rows(rows)
            rec = self.recorder.record(events, VIA_CATCHUP)
            self._watermark = started
            self.state.save(started)
            if started - self._pruned > PRUNE_EVERY_NS:
                self.ledger.prune(self.window_start() - LOAD_MARGIN_NS)
                self._pruned = started
            return CatchUpResult(
                scanned=len(ids),
                recorded=rec.recorded,
                recovered=rec.recovered,
                duplicates=len(ids) - len(unknown) + len(rec.duplicates),
                rejected=rejected,
            )
