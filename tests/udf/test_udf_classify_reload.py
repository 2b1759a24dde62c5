"""Hot reload of the classify UDF's rule file: swapped in whole when valid, refused with positions when not."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from udf_wire import UdfProcess, init, opt_duration, opt_str, point, udf_command

from errloop.rules import contract
from errloop.rules.classify import load_rules
from errloop.udf.agent import udf_pb2
from errloop.udf.classify.reload import Loaded, Refused, RuleFile

S = 1_000_000_000
T0 = 1_700_000_000 * S

TEAPOT = """\
version: 1
rules:
  - id: custom.teapot
    match:
      message: 'teapot'
    set: {error_class: business, category: teapot, retryable: false}
"""
KETTLE = TEAPOT.replace("teapot", "kettle")
BROKEN = TEAPOT.replace("retryable: false", "retryable: maybe")


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def _write(path: Path, text: str) -> None:
    """Write ``text`` with a new mtime even on a coarse clock (same size rewrites included)."""
    before = path.stat().st_mtime_ns if path.exists() else 0
    path.write_text(text)
    st = path.stat()
    if st.st_mtime_ns == before:
        os.utime(path, ns=(st.st_atime_ns, before + 1_000_000))


@pytest.fixture
def watched(tmp_path: Path) -> tuple[Path, RuleFile, Clock]:
    path = tmp_path / "rules.yaml"
    path.write_text(TEAPOT)
    clock = Clock()
    return path, RuleFile(str(path), load_rules(TEAPOT, str(path)), every_s=1.0, clock=clock), clock


def _look(rule_file: RuleFile, clock: Clock) -> Loaded | Refused | None:
    clock.now += 1.0
    return rule_file.poll()


def test_an_unchanged_file_is_never_read_again(watched: tuple[Path, RuleFile, Clock]) -> None:
    _, rule_file, clock = watched
    rules = rule_file.rules
    assert [_look(rule_file, clock) for _ in range(5)] == [None] * 5
    assert rule_file.rules is rules


def test_a_changed_file_is_loaded_once_it_holds_still(watched: tuple[Path, RuleFile, Clock]) -> None:
    path, rule_file, clock = watched
    _write(path, KETTLE)
    assert _look(rule_file, clock) is None  # seen changed once: maybe still being written
    outcome = _look(rule_file, clock)
    assert isinstance(outcome, Loaded) and outcome.rules is rule_file.rules
    assert outcome.rules.classify({"message": "a kettle"}).category == "kettle"
    assert _look(rule_file, clock) is None


def test_a_file_that_keeps_changing_is_not_read_half_written(watched: tuple[Path, RuleFile, Clock]) -> None:
    path, rule_file, clock = watched
    for i in range(4):
        _write(path, KETTLE + "#" * (i + 1))  # another size at every look
        assert _look(rule_file, clock) is None
    assert isinstance(_look(rule_file, clock), Loaded)


def test_looks_at_the_file_only_every_interval(watched: tuple[Path, RuleFile, Clock]) -> None:
    path, rule_file, clock = watched
    _write(path, KETTLE)
    for _ in range(10):
        clock.now += 0.3
        if rule_file.poll() is not None:
            break
    assert clock.now - 100.0 >= 2.0  # two looks, a second apart


def test_a_broken_file_is_refused_with_positions_once_and_the_rules_stay(watched: tuple[Path, RuleFile, Clock]) -> None:
    path, rule_file, clock = watched
    before = rule_file.rules
    _write(path, BROKEN)
    _look(rule_file, clock)
    outcome = _look(rule_file, clock)
    line = next(i for i, src in enumerate(BROKEN.splitlines(), 1) if "maybe" in src)
    assert isinstance(outcome, Refused) and outcome.problems == 1
    assert outcome.error.startswith(f"{path}:{line}:") and "retryable" in outcome.error
    assert rule_file.rules is before
    assert [_look(rule_file, clock) for _ in range(3)] == [None] * 3  # said once, not at every look
    _write(path, KETTLE)  # fixed: loaded
    _look(rule_file, clock)
    assert isinstance(_look(rule_file, clock), Loaded)


def test_a_vanished_file_keeps_the_rules_and_its_return_is_loaded(watched: tuple[Path, RuleFile, Clock]) -> None:
    path, rule_file, clock = watched
    path.unlink()
    _look(rule_file, clock)
    outcome = _look(rule_file, clock)
    assert isinstance(outcome, Refused) and "gone" in outcome.error
    assert _look(rule_file, clock) is None
    path.write_text(KETTLE)
    _look(rule_file, clock)
    assert isinstance(_look(rule_file, clock), Loaded)


def test_undecodable_bytes_are_refused(watched: tuple[Path, RuleFile, Clock]) -> None:
    path, rule_file, clock = watched
    path.write_bytes(b"version: 1\nrules: \xff\xfe\n")
    _look(rule_file, clock)
    outcome = _look(rule_file, clock)
    assert isinstance(outcome, Refused) and "cannot read" in outcome.error


# ------------------------------------------------------------------ the UDF process


@pytest.fixture
def udf() -> Iterator[UdfProcess]:
    p = UdfProcess(udf_command("errloop_classify"))
    yield p
    p.kill()


def _event(t: int, message: str) -> udf_pb2.Request:
    return point(
        t, {"service": "api", "level": "error", "fingerprint": "fp"}, {"event_id": f"ev{t}", "message": message}
    )


def _until_report(udf: UdfProcess, t: int, message: str) -> tuple[udf_pb2.Point, list[udf_pb2.Point]]:
    """Send events until the UDF emits an errloop_rules point; return it and the events before it."""
    events: list[udf_pb2.Point] = []
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        t += 1
        udf.send(_event(t, message))
        for p in udf.reader.points(1):
            if p.name == contract.RULES:
                return p, events
            events.append(p)
        time.sleep(0.02)
    raise AssertionError("no errloop_rules point within 10s")


def test_the_udf_swaps_rules_in_and_refuses_broken_ones_with_a_point(udf: UdfProcess, tmp_path: Path) -> None:
    path = tmp_path / "rules.yaml"
    path.write_text(TEAPOT)
    udf.send(init(("rules", [opt_str(str(path))]), ("reload", [opt_duration(S // 20)])), _event(T0, "a teapot"))
    assert udf.reader.expect("init").init.success
    (first,) = udf.reader.points(1)
    assert first.tags["category"] == "teapot"

    _write(path, KETTLE)
    report, before = _until_report(udf, T0 + 10, "a kettle")
    assert all(p.tags["category"] != "kettle" for p in before)
    assert report.tags["status"] == "loaded" and report.fieldsString["source"] == str(path)
    assert report.fieldsInt["rules"] == 1 and report.fieldsInt["problems"] == 0
    udf.send(_event(T0 + 1000, "a kettle"))
    (after,) = udf.reader.points(1)
    assert after.name == contract.CLASSIFIED and after.tags["category"] == "kettle"

    _write(path, BROKEN)
    report, _ = _until_report(udf, T0 + 2000, "a kettle")
    assert report.tags["status"] == "refused" and report.fieldsInt["problems"] == 1
    error = contract.restore_newlines(report.fieldsString["error"])
    assert error.startswith(f"{path}:") and "retryable" in error
    udf.send(_event(T0 + 3000, "a kettle"))
    (kept,) = udf.reader.points(1)
    assert kept.tags["category"] == "kettle"  # the previous rules stay in force
    assert udf.close() == 0
    assert f"{path}:" in udf.stderr and "refused" in udf.stderr


def test_reload_zero_never_looks_again(udf: UdfProcess, tmp_path: Path) -> None:
    path = tmp_path / "rules.yaml"
    path.write_text(TEAPOT)
    udf.send(init(("rules", [opt_str(str(path))]), ("reload", [opt_duration(0)])))
    assert udf.reader.expect("init").init.success
    _write(path, KETTLE)
    for i in range(20):
        udf.send(_event(T0 + i, "a teapot"))
        time.sleep(0.01)
    points = udf.reader.points(20)
    assert {p.name for p in points} == {contract.CLASSIFIED}
    assert {p.tags["category"] for p in points} == {"teapot"}
    assert udf.close() == 0


def test_a_change_between_reading_the_rules_and_watching_them_is_seen(tmp_path: Path) -> None:
    from errloop.udf.classify.reload import identity

    path = tmp_path / "rules.yaml"
    path.write_text(TEAPOT)
    seen = identity(str(path))  # taken before the rules are read, as the handler does
    rules = load_rules(path.read_text(), str(path))
    _write(path, KETTLE)  # changed before the watch starts
    clock = Clock()
    rule_file = RuleFile(str(path), rules, every_s=1.0, clock=clock, seen=seen)
    _look(rule_file, clock)
    outcome = _look(rule_file, clock)
    assert isinstance(outcome, Loaded) and outcome.rules.classify({"message": "a kettle"}).category == "kettle"
