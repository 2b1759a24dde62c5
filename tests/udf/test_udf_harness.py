"""benchmarks/udf_harness.py: its points are errloop_events, and it counts what a UDF really returns."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from errloop.rules import contract
from errloop.udf.agent import FrameDecoder, udf_pb2

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))
import udf_harness as harness


def test_points_are_errloop_events_from_the_errlog_normaliser() -> None:
    chunks, size = harness.point_chunks(pool=64, chunk=16)
    assert len(chunks) == 4 and size > 300
    bodies = [b for c in chunks for b in FrameDecoder().feed(c)]
    assert len(bodies) == 64
    points = [udf_pb2.Request.FromString(b).point for b in bodies]
    for p in points:
        assert p.name == contract.EVENTS
        assert set(p.tags) <= set(contract.EVENT_TAGS) and {"service", "fingerprint", "level"} <= set(p.tags)
        assert {"event_id", "message", "stack", "top_frame"} <= set(p.fieldsString)
        assert all("\n" not in v for v in p.fieldsString.values())  # newlines travel as control pictures
    assert len({p.tags["fingerprint"] for p in points}) > 5
    assert len({p.fieldsString["message"] for p in points}) > 5


def test_a_run_counts_every_emitted_point_and_answers_to_keepalives(tmp_path: Path) -> None:
    chunks, _ = harness.point_chunks(pool=256)
    target = next(t for t in harness.errloop_targets() if t.name == "errloop_classify")
    res = harness.run_one(target, chunks, 3000, tmp_path)
    assert res.errors == [] and res.exit_code == 0
    assert res.emitted == res.points == 3008  # rounded up to whole chunks of 16
    assert res.first_name == contract.CLASSIFIED
    assert res.rate > 0 and res.hwm_kb > 10_000
    assert res.keepalives_unanswered == 0
    [note] = res.notes  # the classifier's cache report, from its stderr
    hits, misses = (int(x.split("=")[1]) for x in note.split()[-2:])
    assert hits + misses == 3008 and hits > misses  # a pool of 256 cycled: mostly repeats
    if res.seconds > 0.3:
        assert res.keepalive_ms, "a keepalive goes out every 100 ms"
    assert "ratio" not in harness.describe(res) and "points/s" in harness.describe(res)


def test_a_udf_that_dies_is_reported_not_hung(tmp_path: Path) -> None:
    chunks, _ = harness.point_chunks(pool=32)
    target = harness.Target("dies", [sys.executable, "-c", "import os, sys; os.read(0, 10); sys.exit(3)"])
    res = harness.run_one(target, chunks, 100, tmp_path)
    assert res.exit_code == 3
    assert res.errors and res.emitted == 0


@pytest.mark.parametrize("n", [0, 5])
def test_rss_trend_reports_each_tenth_once(n: int) -> None:
    res = harness.Result("x", 100, rss_kb=[(i * 10, 1000 + i) for i in range(n)])
    trend = harness.rss_trend(res)
    assert len(trend) == len(set(trend)) <= n
