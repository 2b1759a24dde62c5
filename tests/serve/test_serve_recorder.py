"""Recording: action point, CSV row, csv_ns mark — once per event, also across failures."""

from __future__ import annotations

import csv
import itertools
import threading
from collections.abc import Sequence
from pathlib import Path

import pytest
from serve_fakes import LOGGED_NS, InMemoryStoreFake, alert_with_events

from errloop.deploy.serve.actions import CSV_NS, STATE_RECOVERED, VIA_CATCHUP, VIA_POST, ActionRecord
from errloop.deploy.serve.csvlog import ClosedLoopCsv
from errloop.deploy.serve.influx import InfluxError
from errloop.deploy.serve.ledger import Ledger
from errloop.deploy.serve.model import AlertEvent, parse_alert
from errloop.deploy.serve.recorder import Recorder, RecordError, UniqueClock


def events(*ids: str, level: str = "CRITICAL") -> tuple[AlertEvent, ...]:
    evs: tuple[AlertEvent, ...] = parse_alert(alert_with_events(list(ids), level=level)).events
    return evs


def csv_ids(path: Path) -> list[str]:
    if not path.exists():
        return []
    with path.open(newline="") as f:
        return [r["event_id"] for r in csv.DictReader(f)]


@pytest.fixture
def parts(tmp_path: Path) -> tuple[InMemoryStoreFake, ClosedLoopCsv, Ledger, Recorder]:
    store = InMemoryStoreFake()
    log = ClosedLoopCsv(tmp_path / "closed.csv")
    ledger = Ledger()
    clock = itertools.count(LOGGED_NS + 100_000_000, 1_000_000)
    return store, log, ledger, Recorder(store, log, ledger, clock=lambda: next(clock))


def test_record_writes_point_row_and_mark(parts: tuple[InMemoryStoreFake, ClosedLoopCsv, Ledger, Recorder]) -> None:
    store, log, ledger, rec = parts
    res = rec.record(events("e1", "e2"), VIA_POST)
    assert res.recorded == ["e1", "e2"] and res.duplicates == [] and res.mark_failed == 0
    points = store.action_list()
    assert [p["event_id"] for p in points] == ["e1", "e2"]
    for p in points:
        assert p[CSV_NS] > p["time"] == p["recorded_ns"]  # the row was written after the action
    assert csv_ids(log.path) == ["e1", "e2"]
    assert ledger.is_done("e1") and ledger.is_done("e2")


def test_second_time_is_a_duplicate(parts: tuple[InMemoryStoreFake, ClosedLoopCsv, Ledger, Recorder]) -> None:
    store, log, _, rec = parts
    rec.record(events("e1"), VIA_POST)
    res = rec.record(events("e1", "e2"), VIA_CATCHUP)
    assert res.recorded == ["e2"] and res.duplicates == ["e1"]
    assert csv_ids(log.path) == ["e1", "e2"]
    assert len(store.action_list()) == 2


def test_recovery_gets_an_action_but_no_row(parts: tuple[InMemoryStoreFake, ClosedLoopCsv, Ledger, Recorder]) -> None:
    store, log, ledger, rec = parts
    res = rec.record(events("r1", level="OK"), VIA_POST)
    assert res.recovered == ["r1"] and res.recorded == []
    (point,) = store.action_list()
    assert point["state"] == STATE_RECOVERED and CSV_NS not in point
    assert csv_ids(log.path) == []
    assert ledger.is_done("r1")


def test_influx_failure_records_nothing_and_can_be_retried(
    parts: tuple[InMemoryStoreFake, ClosedLoopCsv, Ledger, Recorder],
) -> None:
    store, log, _, rec = parts
    store.fail_writes = 1
    with pytest.raises(RecordError, match="fake outage"):
        rec.record(events("e1"), VIA_POST)
    assert store.action_list() == [] and csv_ids(log.path) == []
    assert rec.record(events("e1"), VIA_CATCHUP).recorded == ["e1"]
    assert csv_ids(log.path) == ["e1"]


def test_csv_failure_then_retry_overwrites_the_same_point(
    parts: tuple[InMemoryStoreFake, ClosedLoopCsv, Ledger, Recorder], tmp_path: Path
) -> None:
    store, log, _, rec = parts
    log.path = tmp_path / "not-a-dir"
    log.path.write_text("")
    log.path = log.path / "closed.csv"  # parent is a file: the append fails
    with pytest.raises(RecordError, match="CSV"):
        rec.record(events("e1"), VIA_POST)
    (first,) = store.action_list()
    assert CSV_NS not in first
    log.path = tmp_path / "closed.csv"
    assert rec.record(events("e1"), VIA_CATCHUP).recorded == ["e1"]
    (point,) = store.action_list()  # still one point: same series, same time
    assert point["time"] == first["time"] and CSV_NS in point
    assert csv_ids(log.path) == ["e1"]


def test_lost_mark_still_counts_as_recorded(parts: tuple[InMemoryStoreFake, ClosedLoopCsv, Ledger, Recorder]) -> None:
    store, log, ledger, rec = parts

    real = store.write_actions
    calls = []

    def second_fails(records: Sequence[ActionRecord]) -> None:
        calls.append(records)
        if len(calls) == 2:
            raise InfluxError("down")
        real(records)

    store.write_actions = second_fails  # type: ignore[method-assign]
    res = rec.record(events("e1"), VIA_POST)
    assert res.recorded == ["e1"] and res.mark_failed == 1
    assert csv_ids(log.path) == ["e1"] and ledger.is_done("e1")
    assert rec.record(events("e1"), VIA_CATCHUP).duplicates == ["e1"]


def test_parallel_paths_record_each_event_once(tmp_path: Path) -> None:
    store = InMemoryStoreFake()
    log = ClosedLoopCsv(tmp_path / "closed.csv")
    rec = Recorder(store, log, Ledger())
    ids = [f"e{i}" for i in range(300)]
    batches = [events(*ids[i : i + 30]) for i in range(0, 300, 30)]
    barrier = threading.Barrier(6)

    def path(order: list[tuple[AlertEvent, ...]], via: str) -> None:
        barrier.wait()
        for b in order:
            rec.record(b, via)

    threads = [
        threading.Thread(target=path, args=(batches if i % 2 else batches[::-1], VIA_POST if i < 3 else VIA_CATCHUP))
        for i in range(6)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(csv_ids(log.path)) == sorted(ids)
    points = store.action_list()
    assert sorted(p["event_id"] for p in points) == sorted(ids)
    assert all(CSV_NS in p for p in points)


def test_unique_clock_never_repeats() -> None:
    clock = UniqueClock(now=lambda: 42)
    assert [clock(), clock(), clock()] == [42, 43, 44]
