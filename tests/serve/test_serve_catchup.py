"""The second path: errloop_alerts points -> events, the ledger seed, the watermark, a pass."""

from __future__ import annotations

import csv
import itertools
import json
from pathlib import Path

import pytest
from serve_fakes import LOGGED_NS, InMemoryStoreFake, alert_point

from errloop.deploy.serve.actions import CSV_NS, STATE_RECORDED, STATE_RECOVERED, ActionRecord
from errloop.deploy.serve.catchup import (
    LOAD_MARGIN_NS,
    CatchUp,
    WatermarkFile,
    events_from_alert_rows,
    ledger_seed,
)
from errloop.deploy.serve.csvlog import ClosedLoopCsv
from errloop.deploy.serve.influx import InfluxError
from errloop.deploy.serve.ledger import Ledger
from errloop.deploy.serve.recorder import Recorder

S = 1_000_000_000


def test_alert_points_become_events_grouped_by_alert() -> None:
    rows = [
        alert_point("a1", LOGGED_NS),
        alert_point("a2", LOGGED_NS),  # same alert id and time: one alert, two events
        alert_point("b1", LOGGED_NS + S, level="OK"),
    ]
    events, rejected = events_from_alert_rows(rows)
    assert rejected == []
    assert [(e.event_id, e.level, e.event_ids) for e in events] == [
        ("a1", "CRITICAL", ("a1", "a2")),
        ("a2", "CRITICAL", ("a1", "a2")),
        ("b1", "OK", ("b1",)),
    ]
    a1 = events[0]
    assert a1.policy == "checkout-slo"
    assert a1.time_ns == a1.alert_ns == LOGGED_NS
    assert a1.ns("alerted_ns") == LOGGED_NS + 78_000_000
    assert "alert_id" not in a1.event and "time" not in a1.event
    assert a1.text("service") == "checkout"


def test_unusable_alert_points_are_reported() -> None:
    no_id = alert_point("x1", LOGGED_NS)
    del no_id["alert_id"]
    bad_level = alert_point("x2", LOGGED_NS, level="LOUD")
    bad_event = alert_point("bad id", LOGGED_NS)
    no_time = alert_point("x3", LOGGED_NS)
    no_time["time"] = "2026-11-27T12:00:00Z"
    events, rejected = events_from_alert_rows([no_id, bad_level, bad_event, no_time, alert_point("ok1", LOGGED_NS)])
    assert [e.event_id for e in events] == ["ok1"]
    assert len(rejected) == 4


def action_row(eid: str, t: int, state: str = STATE_RECORDED, csv_ns: int | None = None) -> dict[str, object]:
    row: dict[str, object] = {"time": t, "event_id": eid, "service": "checkout", "policy": "p", "action": "notify"}
    row["state"] = state
    if csv_ns is not None:
        row[CSV_NS] = csv_ns
    return row


def test_ledger_seed_sorts_done_pending_and_repairs() -> None:
    rows = [
        action_row("done1", 10, csv_ns=11),
        action_row("rec1", 20, state=STATE_RECOVERED),
        action_row("half_no_csv", 30),
        action_row("half_in_csv", 40),
        action_row("bad id!", 50),
    ]
    seed = ledger_seed(rows, {"half_in_csv": 45, "csv_only": 60})
    assert set(seed.done) == {"done1", "rec1", "half_in_csv", "csv_only"}
    assert seed.pending == {"half_no_csv": 30}
    (repair,) = seed.repairs
    assert (repair.event_id, repair.time_ns, repair.fields) == ("half_in_csv", 40, {CSV_NS: 45})
    assert repair.tags == {"service": "checkout", "policy": "p", "action": "notify", "state": STATE_RECORDED}


def test_watermark_file_round_trip_and_garbage(tmp_path: Path) -> None:
    wm = WatermarkFile(tmp_path / "state" / "c.csv.state.json")
    assert wm.load() is None
    wm.save(123456789)
    assert wm.load() == 123456789
    assert json.loads(wm.path.read_text()) == {"watermark_ns": 123456789}
    assert list(wm.path.parent.iterdir()) == [wm.path]  # no temp file left behind
    wm.path.write_text("{not json")
    assert wm.load() is None
    wm.path.write_text('{"watermark_ns": "soon"}')
    assert wm.load() is None


class Rig:
    """A CatchUp over the fake store, with a hand-driven clock."""

    def __init__(self, tmp_path: Path, now: int = LOGGED_NS + 10 * S) -> None:
        self.now = now
        self.store = InMemoryStoreFake()
        self.csv = ClosedLoopCsv(tmp_path / "closed.csv")
        self.ledger = Ledger()
        ticks = itertools.count(1)
        self.recorder = Recorder(self.store, self.csv, self.ledger, clock=lambda: self.now + next(ticks))
        self.state = WatermarkFile(tmp_path / "closed.csv.state.json")
        self.catchup = self.make()

    def make(self) -> CatchUp:
        return CatchUp(
            self.store,
            self.recorder,
            self.ledger,
            self.csv,
            self.state,
            overlap_ns=60 * S,
            lookback_ns=3600 * S,
            clock=lambda: self.now,
        )

    def csv_ids(self) -> list[str]:
        if not self.csv.path.exists():
            return []
        with self.csv.path.open(newline="") as f:
            return [r["event_id"] for r in csv.DictReader(f)]


def test_first_pass_reads_the_lookback_then_the_watermark(tmp_path: Path) -> None:
    rig = Rig(tmp_path)
    assert rig.catchup.window_start() == rig.now - 3600 * S - 60 * S
    rig.store.alerts = [alert_point("a1", LOGGED_NS), alert_point("old", rig.now - 2 * 3600 * S)]
    res = rig.catchup.run_once()
    assert res.recorded == ["a1"]
    assert rig.csv_ids() == ["a1"]
    assert rig.state.load() == rig.now
    rig.now += 5 * S
    assert rig.catchup.window_start() == rig.now - 5 * S - 60 * S


def test_pass_never_records_twice_and_catches_up_a_missed_post(tmp_path: Path) -> None:
    rig = Rig(tmp_path)
    rig.store.alerts = [alert_point("a1", LOGGED_NS)]
    rig.recorder.record(events_from_alert_rows(rig.store.alerts)[0], "post")  # the POST got there
    rig.store.alerts.append(alert_point("a2", LOGGED_NS + S))  # this POST was lost
    res = rig.catchup.run_once()
    assert res.recorded == ["a2"] and res.duplicates == 1 and res.scanned == 2
    reads = rig.store.alert_row_reads
    again = rig.catchup.run_once()
    assert again.recorded == [] and again.duplicates == 2
    assert rig.store.alert_row_reads == reads  # every id known: only the cheap id query ran
    assert rig.csv_ids() == ["a1", "a2"]


def test_restart_loads_the_ledger_from_actions_and_csv(tmp_path: Path) -> None:
    rig = Rig(tmp_path)
    rig.store.alerts = [alert_point("a1", LOGGED_NS), alert_point("a2", LOGGED_NS)]
    rig.catchup.run_once()
    # a new process: empty ledger, same InfluxDB, CSV and state file
    rig.ledger = Ledger()
    rig.recorder = Recorder(rig.store, rig.csv, rig.ledger, clock=lambda: rig.now + 1)
    rig.catchup = rig.make()
    assert not rig.catchup.ready
    seed = rig.catchup.bootstrap()
    assert set(seed.done) == {"a1", "a2"}
    rig.now += 30 * S
    assert rig.catchup.run_once().duplicates == 2
    assert rig.csv_ids() == ["a1", "a2"]
    assert len(rig.store.action_list()) == 2


def test_watermark_does_not_move_when_influx_fails(tmp_path: Path) -> None:
    rig = Rig(tmp_path)
    rig.catchup.run_once()
    before = rig.state.load()
    rig.now += 10 * S
    rig.store.fail_reads = True
    with pytest.raises(InfluxError):
        rig.catchup.run_once()
    assert rig.state.load() == before
    rig.store.fail_reads = False
    rig.store.alerts = [alert_point("late", rig.now - 20 * S)]  # inside the overlap of the old watermark
    assert rig.catchup.run_once().recorded == ["late"]


def test_bootstrap_fails_while_influx_is_away(tmp_path: Path) -> None:
    rig = Rig(tmp_path)
    rig.store.fail_reads = True
    with pytest.raises(InfluxError):
        rig.catchup.bootstrap()
    assert not rig.catchup.ready


def test_bootstrap_loads_actions_from_before_the_window(tmp_path: Path) -> None:
    rig = Rig(tmp_path)
    rig.state.save(rig.now)
    rig.catchup = rig.make()
    start = rig.catchup.window_start()
    tags = {"service": "checkout", "policy": "p", "action": "notify", "state": STATE_RECORDED}
    early = ActionRecord("early", tags, {"event_id": "early", CSV_NS: start - 1}, start - LOAD_MARGIN_NS + S)
    too_early = ActionRecord("ancient", tags, {"event_id": "ancient", CSV_NS: 1}, start - LOAD_MARGIN_NS - S)
    rig.store.write_actions([early, too_early])
    seed = rig.catchup.bootstrap()
    assert "early" in seed.done and "ancient" not in seed.done
