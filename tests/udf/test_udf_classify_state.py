"""The classify UDF's bounded state: fingerprint LRU with snapshots, trailing windows."""

from __future__ import annotations

import json

import pytest

from errloop.udf.classify.state import FingerprintTable, SnapshotError, WindowCounter

S = 1_000_000_000


def test_fingerprint_counts_and_seen_times() -> None:
    table = FingerprintTable()
    assert table.see("a", 10) == 1
    assert table.see("a", 5) == 2  # late event: first_seen moves back
    assert table.see("b", 7) == 1
    assert table.see("a", 20) == 3
    assert table.get("a") == (5, 20, 3)
    assert table.get("missing") is None


def test_fingerprint_lru_evicts_least_recently_seen() -> None:
    table = FingerprintTable(capacity=2)
    table.see("old", 1)
    table.see("hot", 2)
    table.see("old", 3)  # "hot" is now the least recently seen
    table.see("new", 4)
    assert "hot" not in table and "old" in table and "new" in table
    assert len(table) == 2 and table.evicted == 1


def test_snapshot_round_trip_keeps_counts_and_lru_order() -> None:
    table = FingerprintTable(capacity=3)
    for fp, t in [("a", 1), ("b", 2), ("a", 3), ("c", 4), ("ü-unicode", 5)]:
        table.see(fp, t)
    restored = FingerprintTable.from_snapshot(table.to_snapshot(), capacity=3)
    assert restored is not None
    for fp in ("a", "c", "ü-unicode"):
        assert restored.get(fp) == table.get(fp)
    restored.see("d", 6)  # evicts the least recently seen: "a" (seen at 3), not "c"
    assert "a" not in restored and "c" in restored


def test_restore_into_smaller_capacity_keeps_most_recent() -> None:
    table = FingerprintTable(capacity=10)
    for i in range(10):
        table.see(f"fp{i}", i)
    restored = FingerprintTable.from_snapshot(table.to_snapshot(), capacity=3)
    assert restored is not None
    assert [fp for fp in (f"fp{i}" for i in range(10)) if fp in restored] == ["fp7", "fp8", "fp9"]


def test_unknown_version_means_start_empty() -> None:
    data = json.dumps({"format": "errloop_classify", "version": 99, "whatever": []}).encode()
    assert FingerprintTable.from_snapshot(data) is None


@pytest.mark.parametrize(
    "data",
    [
        b"\xff\xfe",
        b"not json",
        b"[]",
        json.dumps({"format": "other", "version": 1}).encode(),
        json.dumps({"format": "errloop_classify", "version": 1, "fingerprints": "x"}).encode(),
        json.dumps({"format": "errloop_classify", "version": 1, "fingerprints": [["a", 1, 2]]}).encode(),
        json.dumps({"format": "errloop_classify", "version": 1, "fingerprints": [["a", 1, 2, "3"]]}).encode(),
    ],
)
def test_corrupt_snapshots_raise_snapshot_error(data: bytes) -> None:
    with pytest.raises(SnapshotError):
        FingerprintTable.from_snapshot(data)


def test_window_counts_trailing_window_per_key() -> None:
    w = WindowCounter(10 * S)
    k = ("service=api", "timeout")
    assert w.add(k, 0) == 1
    assert w.add(k, 3 * S) == 2
    assert w.add(("service=api", "db"), 4 * S) == 1  # other category
    assert w.add(("service=web", "timeout"), 4 * S) == 1  # other group
    assert w.add(k, 9 * S) == 3
    assert w.add(k, 10 * S) == 3  # t=0 is exactly one window back: excluded, (t - w, t]
    assert w.add(k, 25 * S) == 1


def test_window_out_of_order_point_counts_its_own_window() -> None:
    w = WindowCounter(10 * S)
    k = ("", "x")
    for t in (0, 5, 12, 14):
        w.add(k, t * S)
    # times held: 5, 12, 14 (0 was dropped when 12 arrived); a late point at 13
    assert w.add(k, 13 * S) == 3  # 5, 12, 13 lie in (3, 13]; 14 is after it
    assert w.add(k, 15 * S) == 4  # 12, 13, 14, 15; 5 is exactly one window back


def test_window_memory_is_bounded() -> None:
    w = WindowCounter(10**12 * S, max_keys=3, max_times=10)
    for i in range(5):
        w.add((str(i), "c"), i)
    assert len(w) == 3
    for t in range(20):
        count = w.add(("hot", "c"), 100 + t)
    assert w.stored_times <= 10
    assert count == 10  # one key alone beyond max_times saturates at max_times


def test_window_must_be_positive() -> None:
    with pytest.raises(ValueError):
        WindowCounter(0)


class CapturingEmitter:
    """Collects what a handler emits (in-process, instead of the protocol writer)."""

    def __init__(self) -> None:
        from errloop.udf.agent import Counters

        self.points: list[object] = []
        self.counters = Counters()

    def point(self, point: object) -> None:
        self.points.append(point)


def test_classify_matches_the_text_with_its_newlines_restored() -> None:
    """The errlog plugin ships newlines as ␊; line-anchored rules must still match."""
    from errloop.udf.agent import udf_pb2
    from errloop.udf.classify.handler import ClassifyHandler

    emitter = CapturingEmitter()
    handler = ClassifyHandler(emitter)  # type: ignore[arg-type]
    point = udf_pb2.Point(name="errloop_events", time=1)
    point.tags["service"] = "orders"
    point.fieldsString["error_chain"] = "goroutine 7 [running]:\u240apanic: something odd happened\u240amain.main()"
    handler.point(point)
    out = emitter.points[0]
    assert out.tags["category"] == "custom_panic", dict(out.tags)  # type: ignore[attr-defined]
    assert out.fieldsString["error_chain"].count("\u240a") == 2  # type: ignore[attr-defined]  # stored unchanged
