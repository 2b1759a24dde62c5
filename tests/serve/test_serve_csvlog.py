"""The closed-loop CSV file: header once, append, read back, refuse a foreign file."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest
from serve_fakes import LOGGED_NS, alert_with_events

from errloop.deploy.serve.actions import CSV_COLUMNS, csv_row
from errloop.deploy.serve.csvlog import ClosedLoopCsv, CsvHeaderMismatch
from errloop.deploy.serve.model import parse_alert


def rows(*ids: str, at: int = LOGGED_NS + 50_000_000) -> list[dict[str, str]]:
    return [csv_row(e, "notify", at) for e in parse_alert(alert_with_events(list(ids))).events]


def test_header_written_once_and_rows_appended(tmp_path: Path) -> None:
    path = tmp_path / "sub" / "closed.csv"
    log = ClosedLoopCsv(path)
    log.check()  # no file yet: fine
    log.append(rows("a1", "a2"))
    log.append(rows("a3"))
    log.append([])
    with path.open(newline="") as f:
        read = list(csv.reader(f))
    assert read[0] == list(CSV_COLUMNS)
    assert [r[0] for r in read[1:]] == ["a1", "a2", "a3"]
    log.check()


def test_recorded_reads_ids_and_times_back(tmp_path: Path) -> None:
    log = ClosedLoopCsv(tmp_path / "c.csv")
    assert log.recorded() == {}
    log.append(rows("a1", "a2", at=LOGGED_NS + 7_000_000))
    at_ms = (LOGGED_NS + 7_000_000) // 1_000_000 * 1_000_000  # the CSV holds milliseconds
    assert log.recorded() == {"a1": at_ms, "a2": at_ms}


def test_foreign_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "c.csv"
    path.write_text("id,name\n1,x\n")
    with pytest.raises(CsvHeaderMismatch, match="header"):
        ClosedLoopCsv(path).check()


def test_torn_last_line_is_not_glued_to_the_next_row(tmp_path: Path) -> None:
    path = tmp_path / "c.csv"
    log = ClosedLoopCsv(path)
    log.append(rows("a1"))
    with path.open("a") as f:
        f.write("a2,checkout,*net.Op")  # a crash mid-row
    log.append(rows("a3"))
    recorded = log.recorded()
    assert "a1" in recorded and "a3" in recorded
    with path.open(newline="") as f:
        ids = [r[0] for r in csv.reader(f)]
    assert ids[-1] == "a3"
