"""Points handled as bytes: appended fields equal map edits, the runtime's bytes mode, classify's bytes path."""

from __future__ import annotations

import os
import random
import threading
from typing import ClassVar

import pytest
from udf_wire import init, opt_duration, point, restore

from errloop.rules import contract
from errloop.udf.agent import (
    Connection,
    Edge,
    Emitter,
    FrameDecoder,
    Handler,
    Info,
    frame,
    parse_options,
    pointbytes,
    udf_pb2,
)
from errloop.udf.agent.connection import BYTES, FORWARD, PARSE, point_mode
from errloop.udf.agent.output import Counters, Writer
from errloop.udf.classify.handler import ClassifyHandler
from errloop.udf.mirror import MirrorHandler

S = 1_000_000_000


def random_point(rng: random.Random) -> udf_pb2.Point:
    p = udf_pb2.Point(name="m", time=rng.randrange(2**62), group="g", database="db")
    words = ["a", "b", "é", "日本", "x" * 200, ""]
    for _ in range(rng.randrange(0, 5)):
        p.tags[rng.choice(words) + "t"] = rng.choice(words)
    for _ in range(rng.randrange(0, 5)):
        p.fieldsString[rng.choice(words) + "s"] = rng.choice(words)
    for _ in range(rng.randrange(0, 3)):
        p.fieldsInt[rng.choice(words) + "i"] = rng.randrange(-(2**63), 2**63)
    for _ in range(rng.randrange(0, 3)):
        p.fieldsDouble[rng.choice(words) + "d"] = rng.uniform(-1e9, 1e9)
    for _ in range(rng.randrange(0, 3)):
        p.fieldsBool[rng.choice(words) + "b"] = rng.random() < 0.5
    return p


def test_appended_fields_read_back_as_the_same_edits_made_on_the_maps() -> None:
    rng = random.Random(11)
    for _ in range(300):
        p = random_point(rng)
        edited = udf_pb2.Point()
        edited.CopyFrom(p)
        parts = [p.SerializeToString()]
        for _ in range(rng.randrange(1, 6)):
            kind = rng.randrange(6)
            key = rng.choice(["a", "é", "k" * 150, *p.tags, *p.fieldsInt])
            if kind == 0:
                edited.name = value = rng.choice(["n", "日本" * 100])
                parts.append(pointbytes.name(value))
            elif kind == 1 and key not in p.fieldsString and key not in edited.fieldsString:
                edited.tags[key] = value = rng.choice(["v", "w" * 300])
                parts.append(pointbytes.tag(key, value))
            elif kind == 2 and key not in edited.tags:
                edited.fieldsString[key] = value = rng.choice(["s", "é" * 100])
                parts.append(pointbytes.string_field(key, value))
            elif kind == 3:
                edited.fieldsInt[key] = number = rng.choice([0, 1, -1, 2**63 - 1, -(2**63), rng.randrange(2**40)])
                parts.append(pointbytes.int_field(key, number))
            elif kind == 4:
                edited.fieldsDouble[key] = real = rng.choice([0.0, -2.5, 1e300, float("inf")])
                parts.append(pointbytes.double_field(key, real))
            elif kind == 5:
                edited.fieldsBool[key] = flag = rng.random() < 0.5
                parts.append(pointbytes.bool_field(key, flag))
        assert udf_pb2.Point.FromString(b"".join(parts)) == edited


# --- the runtime's bytes mode ------------------------------------------------------------------


class Seen(Handler):
    POINT_BYTES = True
    payloads: ClassVar[list[bytes]] = []

    @classmethod
    def info(cls) -> Info:
        return Info(Edge.STREAM, Edge.STREAM)

    def point_bytes(self, payload: bytes) -> None:
        Seen.payloads.append(payload)
        self.emitter.point_bytes(payload + pointbytes.tag("seen", "yes"))


class ParsedOnly(Handler):
    @classmethod
    def info(cls) -> Info:
        return Info(Edge.STREAM, Edge.STREAM)

    def point(self, p: udf_pb2.Point) -> None:
        p.tags["parsed"] = "yes"
        self.emitter.point(p)


def run(factory: object, reqs: list[udf_pb2.Request]) -> tuple[Connection, list[udf_pb2.Response]]:
    r, w = os.pipe()
    out = bytearray()
    conn = Connection(factory, lambda n: os.read(r, n), out.extend)  # type: ignore[arg-type]
    data = b"".join(frame(x.SerializeToString()) for x in reqs)
    t = threading.Thread(target=lambda: (os.write(w, data), os.close(w)), daemon=True)
    t.start()
    assert conn.run() == 0
    t.join(5)
    os.close(r)
    return conn, [udf_pb2.Response.FromString(b) for b in FrameDecoder().feed(bytes(out))]


def test_point_modes() -> None:
    emitter = Emitter(Writer(lambda b: None, Counters()))
    assert point_mode(MirrorHandler(emitter)) == FORWARD
    assert point_mode(Seen(emitter)) == BYTES
    assert point_mode(ParsedOnly(emitter)) == PARSE
    assert point_mode(ClassifyHandler(emitter)) == BYTES


def test_bytes_handlers_get_each_point_unparsed() -> None:
    Seen.payloads = []
    reqs = [point(i, {"h": "x"}, {"message": "m" * 100 * i}) for i in range(5)]
    conn, out = run(Seen, reqs)
    assert Seen.payloads == [r.point.SerializeToString() for r in reqs]
    assert [r.point.tags["seen"] for r in out] == ["yes"] * 5
    assert (conn.counters.points_in, conn.counters.points_out, conn.counters.errors) == (5, 5, 0)


def test_a_bytes_handler_exception_is_counted_and_the_point_skipped() -> None:
    class Boom(Seen):
        def point_bytes(self, payload: bytes) -> None:
            if udf_pb2.Point.FromString(payload).time == 1:
                raise ValueError("boom")
            super().point_bytes(payload)

    conn, out = run(Boom, [point(i) for i in range(3)])
    assert [r.point.time for r in out] == [0, 2]
    assert (conn.counters.points_in, conn.counters.points_out, conn.counters.errors) == (3, 2, 1)


def test_the_default_point_bytes_parses_and_calls_point() -> None:
    class Both(ParsedOnly):
        POINT_BYTES = True

    _, out = run(Both, [point(i) for i in range(3)])
    assert [(r.point.time, r.point.tags["parsed"]) for r in out] == [(0, "yes"), (1, "yes"), (2, "yes")]


def test_points_after_a_restore_that_changed_the_handler_class_reach_the_new_one() -> None:
    made: list[int] = []

    class BadRestore(Seen):
        def restore(self, data: bytes) -> None:
            raise ValueError("corrupt")

    def factory(emitter: Emitter) -> Handler:
        made.append(1)
        return BadRestore(emitter) if len(made) == 1 else ParsedOnly(emitter)

    _, out = run(factory, [point(0), restore(b"x"), point(1), point(2)])
    points = [r.point for r in out if r.WhichOneof("message") == "point"]
    assert [(p.time, dict(p.tags)) for p in points] == [
        (0, {"seen": "yes"}),
        (1, {"parsed": "yes"}),
        (2, {"parsed": "yes"}),
    ]


# --- classify: the bytes path gives what the edit path gives ----------------------------------


def classify_both(
    reqs: list[udf_pb2.Request], window_ns: int | None = None
) -> tuple[list[udf_pb2.Point], list[udf_pb2.Point]]:
    outs = []
    for use_bytes in (True, False):
        sent: list[bytes] = []
        h = ClassifyHandler(Emitter(Writer(sent.append, Counters())))
        opts = [] if window_ns is None else list(init(("window", [opt_duration(window_ns)])).init.options)
        h.init(parse_options(h.info(), opts))
        for r in reqs:
            fresh = udf_pb2.Request.FromString(r.SerializeToString()).point
            if use_bytes:
                h.point_bytes(fresh.SerializeToString())
            else:
                h.point(fresh)
        pts = [udf_pb2.Response.FromString(b).point for b in FrameDecoder().feed(b"".join(sent))]
        for p in pts:
            assert p.fieldsInt.pop("classified_ns") > 0
        outs.append(pts)
    return outs[0], outs[1]


@pytest.mark.parametrize("window", [None, 60 * S])
def test_classify_bytes_path_equals_the_edit_path(window: int | None) -> None:
    texts = [
        "runtime error: invalid memory address or nil pointer dereference",
        "dial tcp 127.0.0.1:5432: connect: connection refused",
        "Key: 'CreateUserRequest.Name' Error:Field validation for 'Name' failed on the 'required' tag",
        "context deadline exceeded",
        "no rule for this one",
    ]
    reqs = []
    for i in range(40):
        tags = {"service": "api", "level": "error", "host": "é"}
        if i % 3:
            tags["fingerprint"] = f"fp{i % 4}"
        fields: dict[str, str | int | float | bool] = {
            "message": texts[i % len(texts)] + "\u240a\tmain.go:1" * (i % 2),
            "event_id": f"e{i}",
            "http_status": 500 + i % 4,
            "duration_ms": i / 7,
            "truncated": i % 5 == 0,
        }
        if i % 7 == 0:
            fields["category"] = "stale"  # an output name already on the input: the edit path
        if i % 11 == 0:
            fields["retry_after_s"] = 9.0
        reqs.append(point(1_700_000_000 * S + i * S, tags, fields, group=f"service=api{i % 2}"))
    by_bytes, by_edit = classify_both(reqs, window)
    assert len(by_bytes) == len(by_edit) == 40
    for a, b in zip(by_bytes, by_edit, strict=True):
        assert a == b
        assert a.name == contract.CLASSIFIED
    assert any("fp_count" in p.fieldsInt for p in by_bytes)
    assert all(("window_count" in p.fieldsInt) == (window is not None) for p in by_bytes)
    assert all("category" not in p.fieldsString for p in by_bytes)  # stale output names removed


@pytest.mark.parametrize("key", ["classified_ns", "k" * 130])
def test_int_field_encoder_equals_int_field(key: str) -> None:
    encode = pointbytes.IntField(key)
    edges = [v + d for k in (7, 14, 21, 28, 35) for v in (2**k,) for d in (-1, 0, 1)]  # each varint length
    for value in (0, 1, *edges, 2**31, time_ns := 1_764_000_000_123_456_789, -1, -(2**63), 2**63 - 1):
        assert encode(value) == pointbytes.int_field(key, value)
        assert udf_pb2.Point.FromString(encode(value)).fieldsInt[key] == value
    assert time_ns > 0


def test_point_view_reads_each_name_as_the_whole_event_has_it() -> None:
    from errloop.udf.classify.handler import PointView

    p = point(
        1,
        {"dup": "tag", "only_tag": "t", "fingerprint": "fp"},
        {"dup": "string", "text": "a\u240ab", "n": 5, "x": 1.5, "flag": True},
    ).point
    p.fieldsInt["dup"] = 7  # in three maps: the event takes the int (ints come after strings and tags)
    view = PointView(p)
    names = ("dup", "only_tag", "text", "n", "x", "flag", "missing", "fingerprint")
    event = view.event()
    assert tuple(event.get(n) for n in names) == tuple(view.get(n) for n in names)
    assert event["dup"] == 7 and event["text"] == "a\nb"
    assert view.has_any(frozenset({"flag"})) and not view.has_any(frozenset({"category"}))


def test_points_queued_for_forwarding_reach_a_bytes_handler_that_a_restore_brought() -> None:
    made: list[int] = []
    Seen.payloads = []

    class BadRestoreMirror(MirrorHandler):
        def restore(self, data: bytes) -> None:
            raise ValueError("corrupt")

    def factory(emitter: Emitter) -> Handler:
        made.append(1)
        return BadRestoreMirror(emitter) if len(made) == 1 else Seen(emitter)

    reqs = [point(0), restore(b"x"), point(1), point(2)]
    conn, out = run(factory, reqs)
    points = [r.point for r in out if r.WhichOneof("message") == "point"]
    assert [(p.time, dict(p.tags)) for p in points] == [(0, {}), (1, {"seen": "yes"}), (2, {"seen": "yes"})]
    assert Seen.payloads == [reqs[2].point.SerializeToString(), reqs[3].point.SerializeToString()]
    assert (conn.counters.points_in, conn.counters.points_out) == (3, 3)
