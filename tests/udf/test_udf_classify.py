"""errloop_classify as Kapacitor runs it: a child process fed errloop_events points.

Expected classifications come from the same engine called in-process, so these tests check
what the UDF adds (wiring, enrichment, state, options), not the rules themselves.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from udf_wire import (
    UdfProcess,
    info,
    init,
    opt_duration,
    opt_str,
    point,
    restore,
    snapshot,
    udf_command,
)

from errloop.rules import contract
from errloop.rules.classify import default_rules, load_rules
from errloop.udf.agent import Connection, udf_pb2
from errloop.udf.classify.handler import ADDED_FIELDS, ADDED_TAGS, ClassifyHandler

S = 1_000_000_000
T0 = 1_700_000_000 * S

CUSTOM_RULES = """\
version: 1
rules:
  - id: custom.teapot
    priority: 10
    match:
      message: 'teapot'
    set:
      {error_class: business, category: teapot, retryable: true, severity: warning, error_code: TEAPOT, retry_after: 5s}
    suggestion: "Brew coffee elsewhere ({{ service }})."
"""


@pytest.fixture
def udf() -> Iterator[UdfProcess]:
    p = UdfProcess(udf_command("errloop_classify"))
    yield p
    p.kill()


def event_point(
    t: int, message: str, fingerprint: str | None = "fpA", group: str = "service=api", **extra: str | int | float | bool
) -> udf_pb2.Request:
    tags = {"service": "api", "env": "prod", "host": "h1", "level": "error", "format": "json"}
    if fingerprint:
        tags["fingerprint"] = fingerprint
    fields: dict[str, str | int | float | bool] = {"event_id": f"ev-{t}", "message": message, "http_status": 503}
    fields.update(extra)
    return point(t, tags, fields, group=group)


def event_of(p: udf_pb2.Point) -> contract.Event:
    ev: contract.Event = dict(p.tags)
    for m in (p.fieldsString, p.fieldsInt, p.fieldsDouble, p.fieldsBool):
        ev.update(m)
    return ev


def test_info_declares_the_options(udf: UdfProcess) -> None:
    udf.send(info())
    resp = udf.reader.expect("info").info
    assert (resp.wants, resp.provides) == (udf_pb2.STREAM, udf_pb2.STREAM)
    assert list(resp.options["rules"].valueTypes) == [udf_pb2.STRING]
    assert list(resp.options["window"].valueTypes) == [udf_pb2.DURATION]
    assert udf.close() == 0


def test_points_come_out_enriched_with_the_engines_classification(udf: UdfProcess) -> None:
    sent = [
        event_point(T0 + 1, "dial tcp 10.0.0.7:8080: connect: connection refused", "fpA"),
        event_point(T0 + 2, "runtime error: invalid memory address or nil pointer dereference", "fpB"),
        event_point(T0 + 3, "something nobody has a rule for", "fpA"),
        event_point(T0 + 4, "connection refused", None),
    ]
    before = time.time_ns()
    udf.send(init(), *sent)
    assert udf.reader.expect("init").init.success
    got = udf.reader.points(len(sent))
    after = time.time_ns()
    rules = default_rules()
    for req, out in zip(sent, got, strict=True):
        src = req.point
        expected = rules.classify(event_of(src))
        assert out.name == contract.CLASSIFIED
        assert (out.time, out.database, out.retentionPolicy, out.group) == (src.time, "errloop", "autogen", src.group)
        assert list(out.dimensions) == list(src.dimensions)
        for k, v in src.tags.items():
            assert out.tags[k] == v
        assert out.fieldsString["message"] == src.fieldsString["message"]
        assert out.fieldsInt["http_status"] == 503
        assert out.tags["rule_id"] == expected.rule_id
        assert out.tags["error_class"] == expected.error_class
        assert out.tags["category"] == expected.category
        assert out.tags["severity"] == expected.severity
        assert out.tags["retryable"] == ("true" if expected.retryable else "false")
        assert out.fieldsString["suggestion"] == expected.suggestion
        assert out.fieldsString["error_code"] == expected.error_code
        if expected.retry_after_s is None:
            assert "retry_after_s" not in out.fieldsDouble
        else:
            assert out.fieldsDouble["retry_after_s"] == expected.retry_after_s
        assert before <= out.fieldsInt["classified_ns"] <= after
        assert "window_count" not in out.fieldsInt
        # every name the contract says the UDF adds is present (fp_count/retry_after_s/window_count and
        # the sampling fields may be absent)
        names = set(out.tags) | set(out.fieldsString) | set(out.fieldsInt) | set(out.fieldsDouble)
        assert set(ADDED_TAGS) <= names
        optional = {"fp_count", "retry_after_s", "window_count", "sample_weight", "sample_dropped"}
        assert set(ADDED_FIELDS) - optional <= names
        assert not {"sample_weight", "sample_dropped"} & names  # no sampling options: no sampling fields
    assert got[0].tags["rule_id"] == "net.conn_refused" and got[0].tags["retryable"] == "true"
    assert got[1].tags["retryable"] == "false"
    assert [p.fieldsInt.get("fp_count") for p in got] == [1, 1, 2, None]
    assert udf.close() == 0


def test_window_counts_per_group_and_category(udf: UdfProcess) -> None:
    refused = "dial tcp 10.0.0.7:5432: connect: connection refused"
    sent = [
        event_point(T0, refused),
        event_point(T0 + 2 * S, refused),
        event_point(T0 + 3 * S, "context deadline exceeded"),  # other category
        event_point(T0 + 4 * S, refused, group="service=web"),  # other group
        event_point(T0 + 9 * S, refused),
        event_point(T0 + 10 * S, refused),  # T0 is exactly one window back: out
        event_point(T0 + 30 * S, refused),
    ]
    udf.send(init(("window", [opt_duration(10 * S)])), *sent)
    assert udf.reader.expect("init").init.success
    counts = [p.fieldsInt["window_count"] for p in udf.reader.points(len(sent))]
    assert counts == [1, 2, 1, 1, 3, 3, 1]
    assert udf.close() == 0


def test_rules_option_loads_a_rule_file(udf: UdfProcess, tmp_path: Path) -> None:
    path = tmp_path / "teapot.yaml"
    path.write_text(CUSTOM_RULES)
    udf.send(init(("rules", [opt_str(str(path))])), event_point(T0, "I am a teapot"), event_point(T0 + 1, "nope"))
    assert udf.reader.expect("init").init.success
    teapot, other = udf.reader.points(2)
    assert teapot.tags["rule_id"] == "custom.teapot" and teapot.tags["category"] == "teapot"
    assert teapot.tags["error_class"] == "business" and teapot.tags["severity"] == "warning"
    assert teapot.fieldsDouble["retry_after_s"] == 5.0
    assert teapot.fieldsString["suggestion"] == "Brew coffee elsewhere (api)."
    assert other.tags["rule_id"] == load_rules(CUSTOM_RULES).classify({"message": "nope"}).rule_id
    assert udf.close() == 0


def test_bad_rule_file_fails_init_with_its_position(udf: UdfProcess, tmp_path: Path) -> None:
    path = tmp_path / "broken.yaml"
    text = CUSTOM_RULES.replace("error_class: business", "error_class: bogus")
    path.write_text(text)
    line = next(i for i, src in enumerate(text.splitlines(), 1) if "bogus" in src)
    udf.send(init(("rules", [opt_str(str(path))])))
    resp = udf.reader.expect("init").init
    assert not resp.success
    assert resp.error.startswith(f"{path}:{line}:") and "bogus" in resp.error
    udf.send(init(("rules", [opt_str(str(tmp_path / "missing.yaml"))])))
    resp = udf.reader.expect("init").init
    assert not resp.success and resp.error.startswith("cannot read rules file")
    udf.send(init(("window", [opt_duration(0)])))
    resp = udf.reader.expect("init").init
    assert not resp.success and "window must be positive" in resp.error
    assert udf.close() == 0


def test_fingerprint_counts_survive_snapshot_and_restore(tmp_path: Path) -> None:
    first = UdfProcess(udf_command("errloop_classify"))
    second = UdfProcess(udf_command("errloop_classify"))
    try:
        first.send(init(), *(event_point(T0 + i, "boom", "fpA") for i in range(3)), event_point(T0 + 5, "x", "fpB"))
        first.send(snapshot())
        assert first.reader.expect("init").init.success
        assert [p.fieldsInt["fp_count"] for p in first.reader.points(4)] == [1, 2, 3, 1]
        saved = first.reader.expect("snapshot").snapshot.snapshot
        assert first.close() == 0

        second.send(init(), restore(saved), event_point(T0 + 10, "boom", "fpA"), event_point(T0 + 11, "n", "fpC"))
        assert second.reader.expect("init").init.success
        assert second.reader.expect("restore").restore.success
        assert [p.fieldsInt["fp_count"] for p in second.reader.points(2)] == [4, 1]
        # a corrupt snapshot: still success, counting starts over
        second.send(restore(b"{not json"), event_point(T0 + 12, "boom", "fpA"))
        assert second.reader.expect("restore").restore.success
        assert second.reader.expect("point").point.fieldsInt["fp_count"] == 1
        assert second.close() == 0
    finally:
        first.kill()
        second.kill()


def test_incoming_names_that_clash_with_outputs_are_replaced(udf: UdfProcess) -> None:
    req = event_point(T0, "connection refused", category="stale-field", fp_count="not an int")
    req.point.tags["severity"] = "stale-tag"
    udf.send(init(), req)
    assert udf.reader.expect("init").init.success
    out = udf.reader.expect("point").point
    assert out.tags["category"] == "conn_refused" and "category" not in out.fieldsString
    assert out.tags["severity"] != "stale-tag"
    assert out.fieldsInt["fp_count"] == 1 and "fp_count" not in out.fieldsString
    assert udf.close() == 0


def test_a_classifier_exception_skips_the_point_only() -> None:
    """In-process: swap in rules that raise on one message; the runtime counts and skips it."""
    sent: list[bytes] = []

    class Exploding:
        source = "test"

        def __len__(self) -> int:
            return 1

        def classify(self, event: contract.Event) -> object:
            if event.get("message") == "poison":
                raise RuntimeError("classifier bug")
            return default_rules().classify(event)

    def factory(emitter):  # type: ignore[no-untyped-def]
        h = ClassifyHandler(emitter)
        h.rules = Exploding()  # type: ignore[assignment]
        return h

    import os

    r, w = os.pipe()
    conn = Connection(factory, lambda n: os.read(r, n), sent.append)
    from errloop.udf.agent import frame

    reqs = [event_point(T0, "poison"), event_point(T0 + 1, "connection refused")]
    os.write(w, b"".join(frame(x.SerializeToString()) for x in reqs))
    os.close(w)
    assert conn.run() == 0
    assert (conn.counters.points_in, conn.counters.points_out, conn.counters.errors) == (2, 1, 1)
