"""Runs of points: the runtime hands them to ``points_bytes``, classify handles a run in one loop."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import ClassVar

import pytest
from udf_wire import init, opt_duration, point

from errloop.rules import contract
from errloop.rules.classify import default_rules, load_rules
from errloop.udf.agent import (
    Connection,
    Edge,
    Emitter,
    FrameDecoder,
    Handler,
    Info,
    encode_uvarint,
    frame,
    parse_options,
    udf_pb2,
)
from errloop.udf.agent.output import Counters, Writer, point_head
from errloop.udf.classify.cache import ClassificationCache, same
from errloop.udf.classify.handler import ClassifyHandler, PointKey, point_key

S = 1_000_000_000
T0 = 1_700_000_000 * S


def run(factory: object, reqs: list[udf_pb2.Request], batch_max: int = 256) -> tuple[Connection, list[udf_pb2.Point]]:
    r, w = os.pipe()
    out = bytearray()
    conn = Connection(factory, lambda n: os.read(r, n), out.extend, batch_max=batch_max)  # type: ignore[arg-type]
    data = b"".join(frame(x.SerializeToString()) for x in reqs)
    t = threading.Thread(target=lambda: (os.write(w, data), os.close(w)), daemon=True)
    t.start()
    assert conn.run() == 0
    t.join(5)
    os.close(r)
    responses = [udf_pb2.Response.FromString(b) for b in FrameDecoder().feed(bytes(out))]
    return conn, [x.point for x in responses if x.WhichOneof("message") == "point"]


class Runs(Handler):
    """Records the runs it gets; raises on points whose time is in ``fail``; tags the rest."""

    POINT_BYTES = True
    runs: ClassVar[list[int]] = []
    fail: ClassVar[set[int]] = set()
    raise_first: ClassVar[bool] = False

    @classmethod
    def info(cls) -> Info:
        return Info(Edge.STREAM, Edge.STREAM)

    def points_bytes(self, payloads: Iterator[bytes]) -> None:
        if Runs.raise_first:  # before taking any point
            Runs.raise_first = False
            raise RuntimeError("not even one")
        taken = 0
        try:
            for payload in payloads:
                taken += 1
                p = udf_pb2.Point.FromString(payload)
                if p.time in Runs.fail:
                    raise ValueError(f"boom at {p.time}")
                p.tags["run"] = "yes"
                self.emitter.point(p)
        finally:
            Runs.runs.append(taken)


def test_points_come_in_runs_bounded_by_the_batch_size() -> None:
    Runs.runs, Runs.fail, Runs.raise_first = [], set(), False
    conn, out = run(Runs, [point(i) for i in range(10)], batch_max=4)
    assert [p.time for p in out] == list(range(10))
    assert all(p.tags["run"] == "yes" for p in out)
    assert sum(Runs.runs) == 10 and max(Runs.runs) <= 4
    assert (conn.counters.points_in, conn.counters.points_out, conn.counters.errors) == (10, 10, 0)


def test_a_point_that_raises_is_skipped_and_the_run_goes_on() -> None:
    Runs.runs, Runs.fail, Runs.raise_first = [], {2, 5}, False
    conn, out = run(Runs, [point(i) for i in range(8)])
    assert [p.time for p in out] == [0, 1, 3, 4, 6, 7]
    assert (conn.counters.points_in, conn.counters.points_out, conn.counters.errors) == (8, 6, 2)


def test_a_run_that_raises_before_taking_a_point_loses_only_the_first() -> None:
    Runs.runs, Runs.fail, Runs.raise_first = [], set(), True
    conn, out = run(Runs, [point(i) for i in range(4)])
    assert [p.time for p in out] == [1, 2, 3]
    assert (conn.counters.points_in, conn.counters.points_out, conn.counters.errors) == (4, 3, 1)


@pytest.mark.parametrize("size", [0, 1, 120, 123, 124, 127, 128, 16379, 16380, 16383, 16384, 70_000, 3_000_000])
def test_point_head_frames_a_point_as_a_response(size: int) -> None:
    payload = udf_pb2.Point(name="x" * size).SerializeToString() if size else b""
    n = len(payload)
    assert point_head(n) + payload == frame(
        udf_pb2.Response(point=udf_pb2.Point.FromString(payload)).SerializeToString()
    )
    assert point_head(n) is point_head(n) or n >= 1 << 14  # remembered for the usual sizes


def test_point_frames_counts_the_points() -> None:
    sent: list[bytes] = []
    counters = Counters()
    emitter = Emitter(Writer(sent.append, counters))
    payloads = [udf_pb2.Point(time=i).SerializeToString() for i in range(3)]
    emitter.point_frames(b"".join(point_head(len(p)) + p for p in payloads), 3)
    assert counters.points_out == 3
    assert [udf_pb2.Response.FromString(b).point.time for b in FrameDecoder().feed(b"".join(sent))] == [0, 1, 2]


# --- classify: a run equals its points one by one ---------------------------------------------


def classify_requests() -> list[udf_pb2.Request]:
    texts = [
        "runtime error: invalid memory address or nil pointer dereference",
        "rpc error: code = Unavailable desc = connection refused",
        "dial tcp 127.0.0.1:5432: connect: connection refused",
        "no rule for this one",
    ]
    reqs = []
    for i in range(30):
        tags = {"service": "api", "level": "error"}
        if i % 3:
            tags["fingerprint"] = f"fp{i % 4}"
        fields: dict[str, str | int | float | bool] = {"message": texts[i % 4], "event_id": f"e{i}"}
        if i % 5 == 0:
            fields["http_status"] = 503  # a match field in the ints map
        if i % 9 == 4:
            fields["severity"] = "stale"  # an output name on the input: the edit path, mid-run
        reqs.append(point(T0 + i * S, tags, fields, group=f"service=api{i % 2}"))
    return reqs


def handler(sent: list[bytes], window_ns: int | None = None) -> ClassifyHandler:
    h = ClassifyHandler(Emitter(Writer(sent.append, Counters())))
    opts = [] if window_ns is None else list(init(("window", [opt_duration(window_ns)])).init.options)
    h.init(parse_options(h.info(), opts))
    return h


def emitted(sent: list[bytes]) -> list[udf_pb2.Point]:
    return [udf_pb2.Response.FromString(b).point for b in FrameDecoder().feed(b"".join(sent))]


@pytest.mark.parametrize("window", [None, 60 * S])
def test_a_run_gives_what_its_points_give_one_at_a_time(window: int | None) -> None:
    reqs = classify_requests()
    payloads = [r.point.SerializeToString() for r in reqs]
    one_sent: list[bytes] = []
    one = handler(one_sent, window)
    for p in payloads:
        one.point_bytes(p)
    run_sent: list[bytes] = []
    many = handler(run_sent, window)
    before = time.time_ns()
    many.points_bytes(iter(payloads[:17]))
    many.points_bytes(iter(payloads[17:]))
    after = time.time_ns()
    by_one, by_run = emitted(one_sent), emitted(run_sent)
    stamps = [p.fieldsInt.pop("classified_ns") for p in by_run]
    assert all(before <= t <= after for t in stamps)  # each at most 1 ms before its point was handled
    for p in by_one:
        del p.fieldsInt["classified_ns"]
    assert by_run == by_one and len(by_run) == 30
    assert [p.time for p in by_run] == [r.point.time for r in reqs]  # edit-path points stay in place
    assert all(p.name == contract.CLASSIFIED for p in by_run)
    assert all("severity" not in p.fieldsString for p in by_run)
    counts = [p.fieldsInt["fp_count"] for p in by_run if p.tags["fingerprint"] == "fp1"]
    assert len(counts) > 3 and counts == list(range(1, len(counts) + 1))
    assert all(("window_count" in p.fieldsInt) == (window is not None) for p in by_run)


def test_the_bytes_path_and_the_edit_path_share_memo_entries() -> None:
    sent: list[bytes] = []
    h = handler(sent)
    req = point(
        T0, {"level": "error", "fingerprint": "f"}, {"message": "context deadline exceeded", "http_status": 504}
    )
    h.point_bytes(req.point.SerializeToString())
    h.point(udf_pb2.Point.FromString(req.point.SerializeToString()))
    assert h.cache is not None and (h.cache.misses, h.cache.hits) == (1, 1)
    a, b = emitted(sent)
    a.fieldsInt.pop("classified_ns"), b.fieldsInt.pop("classified_ns")
    assert a.fieldsInt.pop("fp_count") == 1 and b.fieldsInt.pop("fp_count") == 2
    assert a == b


def test_point_key_is_what_point_key_objects_give() -> None:
    p = point(T0, {"level": "error", "message": "tag"}, {"message": "m", "http_status": 500, "d": 1.0, "b": True}).point
    names = ("b", "http_status", "level", "message", "nope")
    assert point_key(p, names, frozenset(names)) == PointKey(p)(names, frozenset(names))
    texts, numbers = point_key(p, names, frozenset(names))  # type: ignore[misc]
    assert texts == (None, None, ("error",), "m", None)  # a string field wins over a tag; a tag is marked as one
    assert sorted(numbers) == [("b", None, None, True), ("http_status", 500, None, None)]
    assert point_key(p, ("message",), frozenset({"message"}))[1] is None  # type: ignore[index]


RULES = """\
version: 1
rules:
  - id: custom.teapot
    match:
      message: 'teapot'
    set: {error_class: business, category: teapot, retryable: false}
"""


def test_a_run_after_a_rules_reload_uses_the_new_rules_and_their_encoded_fields(tmp_path: Path) -> None:
    sent: list[bytes] = []
    h = handler(sent)
    payload = point(T0, {"level": "error"}, {"message": "a teapot"}).point.SerializeToString()
    h.points_bytes(iter([payload, payload]))
    first = h.cache
    h.rules = load_rules(RULES, str(tmp_path / "r.yaml"))  # what a rules reload does
    h.points_bytes(iter([payload]))
    assert h.cache is not first and h.cache is not None and h.cache.misses == 1
    out = emitted(sent)
    assert out[0].tags["category"] == out[1].tags["category"] != "teapot"
    assert out[2].tags["category"] == "teapot" and out[2].tags["rule_id"] == "custom.teapot"


def test_lookup_keyed_counts_hits_and_refreshes_like_lookup() -> None:
    cache = ClassificationCache(default_rules(), same)
    event = {"message": "context deadline exceeded", "level": "error"}
    p = point(T0, {"level": "error"}, {"message": "context deadline exceeded"}).point
    first = cache.lookup(PointKey(p), lambda: event)
    for _ in range(40):
        key = point_key(p, cache.match_fields, cache.match_set)
        assert cache.lookup_keyed(key, point_key, p, lambda _: {}) is first  # hits never build the event
    assert (cache.hits, cache.misses, len(cache)) == (40, 1, 1)
    other = point(T0, {"level": "error"}, {"message": "rpc error: code = Unavailable desc = x"}).point
    cache.lookup(PointKey(other), lambda: {"message": "rpc error: code = Unavailable desc = x"})
    key, full = next(iter(cache.winners)), next(iter(cache.results))
    assert full[0] == cache.winners[key][2]  # results are keyed by the winner's token
    cache.refresh(key, full)
    assert (next(reversed(cache.winners)), next(reversed(cache.results))) == (key, full)


def _without_stamps(points: list[udf_pb2.Point]) -> list[udf_pb2.Point]:
    for p in points:
        del p.fieldsInt["classified_ns"]
    return points


def test_a_run_looked_at_as_a_whole_gives_what_a_run_taken_blindly_gives() -> None:
    """The whole-run check for output names (lists, list iterators) changes nothing in the output."""
    reqs = classify_requests()
    clean = [r.point.SerializeToString() for r in reqs if "severity" not in r.point.fieldsString]
    tricky = point(T0, {"level": "error"}, {"message": "a value holding \n\x08category, not a name"})
    payloads = [*clean[:5], tricky.point.SerializeToString(), *clean[5:]]
    outputs = []
    for make in (iter, list, lambda ps: (p for p in ps)):  # a generator cannot be looked ahead
        sent: list[bytes] = []
        handler(sent).points_bytes(make(payloads))  # type: ignore[operator]
        outputs.append(_without_stamps(emitted(sent)))
    assert outputs[0] == outputs[1] == outputs[2] and len(outputs[0]) == len(payloads)
    assert outputs[0][5].fieldsString["message"] == tricky.point.fieldsString["message"]
    assert all(p.name == contract.CLASSIFIED and p.tags["category"] for p in outputs[0])


def test_looking_ahead_takes_no_point_so_a_bad_point_costs_only_itself() -> None:
    requests = classify_requests()[:6]
    good = [r.point.SerializeToString() for r in requests]
    bad = udf_pb2.Point(time=1).SerializeToString() + b"\x52\x07\n\x01x\x12\x02\xff\xfe"  # not UTF-8: no Point
    reqs = b"".join(frame(r.SerializeToString()) for r in requests[:3])
    reqs += frame(b"\x8a\x01" + encode_uvarint(len(bad)) + bad)  # a Request holding only that point
    reqs += b"".join(frame(r.SerializeToString()) for r in requests[3:])
    r, w = os.pipe()
    out = bytearray()
    conn = Connection(ClassifyHandler, lambda n: os.read(r, n), out.extend)
    os.write(w, frame(init().SerializeToString()) + reqs)
    os.close(w)
    assert conn.run() == 0
    os.close(r)
    points = [x.point for x in map(udf_pb2.Response.FromString, FrameDecoder().feed(bytes(out))) if x.point.name]
    assert [p.time for p in points] == [udf_pb2.Point.FromString(p).time for p in good]
    assert (conn.counters.points_in, conn.counters.points_out, conn.counters.errors) == (7, 6, 1)
