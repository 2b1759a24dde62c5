"""A logger's Panic and the runtime's dump after it are one failure: one event (telegraf/errlog/merge.py).

The captures ``data/golog/<format>.log_panic.log`` are what tests/golog printed for
``zap.Logger.Panic`` (JSON and console), ``logrus.Panic`` (JSON and text) and zerolog's
``Panic()``: the record, then ``panic: …`` and the goroutine dump.
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import pytest

from errloop.rules import contract
from errloop.telegraf.errlog.config import Config
from errloop.telegraf.errlog.merge import Outgoing, PanicMerger, dump_of
from errloop.telegraf.errlog.normalise import parse_lines, parse_text
from errloop.telegraf.errlog.plugin import ErrlogPlugin

sys.path.insert(0, str(Path(__file__).parents[1] / "golog"))
import golog

DATA = Path(__file__).parent / "data" / "golog"
_DUMP_START = re.compile(r"^panic: ", re.M)


def capture(fmt: str) -> str:
    return (DATA / f"{fmt}.log_panic.log").read_text()


def record_part(text: str) -> str:
    """The logger's record alone: everything before the runtime's ``panic: `` line."""
    m = _DUMP_START.search(text)
    assert m is not None
    return text[: m.start()]


def check_one_event(fmt: str, text: str) -> None:
    (event,) = list(parse_text(text, source="/var/log/app.log", host="h"))
    (alone,) = list(parse_text(record_part(text), source="/var/log/app.log", host="h"))
    assert event["format"] == fmt and event["level"] == "panic"  # each of these formats is its own format tag
    assert event["message"] == "request failed"
    assert event["error_chain"] == alone["error_chain"] and event["root_cause"] == "record not found"
    # the record's identity: its id and fingerprint do not depend on whether the dump was seen
    assert event["event_id"] == alone["event_id"] and event["fingerprint"] == alone["fingerprint"]
    # the dump adds the goroutine, and where the record had no stack, the stack and the logger's caller
    assert event["goroutine_id"] == 1 and "goroutine_id" not in alone
    assert event["top_frame"] == "main.logPanic"
    assert re.fullmatch(r".*golog/main\.go:\d+", str(event["file_line"]))
    assert "main.logPanic" in str(event["stack"])


@pytest.mark.parametrize("fmt", golog.LOG_PANIC_FORMATS)
def test_logged_panic_and_its_dump_are_one_event(fmt: str) -> None:
    check_one_event(fmt, capture(fmt))


@pytest.mark.slow
@pytest.mark.parametrize("fmt", golog.LOG_PANIC_FORMATS)
def test_live_logged_panic_is_one_event(fmt: str) -> None:
    out = golog.run(golog.build(), fmt, "log_panic")
    assert out.returncode == 2, out.text
    check_one_event(fmt, out.text)


def _events(text: str) -> list[dict[str, object]]:
    return [dict(e) for e in parse_text(text, source="s")]


def test_a_dump_of_another_panic_value_stays_its_own_event() -> None:
    zap = capture("zap_json")
    record, dump = record_part(zap), zap[len(record_part(zap)) :]
    other = dump.replace("panic: request failed", "panic: something else", 1)
    evs = _events(record + other)
    assert [e["format"] for e in evs] == ["zap_json", "go_panic"]
    assert "goroutine_id" not in evs[0]
    # logrus's "(*logrus.Entry) 0x…" value belongs to a logrus record only
    logrus_dump = capture("logrus_json")[len(record_part(capture("logrus_json"))) :]
    assert [e["format"] for e in _events(record + logrus_dump)] == ["zap_json", "go_panic"]


def test_a_fatal_error_after_a_logged_panic_is_not_its_dump() -> None:
    record = record_part(capture("zap_json"))
    fatal = "fatal error: concurrent map writes\n\ngoroutine 7 [running]:\nmain.w()\n\t/m.go:3 +0x1\n"
    assert [e["level"] for e in _events(record + fatal)] == ["panic", "fatal"]


def test_an_event_in_between_sends_the_held_one_first() -> None:
    zap = capture("zap_json")
    record, dump = record_part(zap), zap[len(record_part(zap)) :]
    between = json.dumps({"level": "error", "ts": 1.0, "msg": "other failure"}) + "\n"
    evs = _events(record + between + dump)
    assert [(e["format"], e["message"]) for e in evs] == [
        ("zap_json", "request failed"),
        ("zap_json", "other failure"),
        ("go_panic", "request failed"),
    ]


def test_a_line_below_the_levels_in_between_changes_nothing() -> None:
    zap = capture("zap_json")
    record, dump = record_part(zap), zap[len(record_part(zap)) :]
    info = json.dumps({"level": "info", "ts": 1.0, "msg": "another goroutine"}) + "\n"
    outs = list(parse_lines((record + info + dump).splitlines(keepends=True), source="s"))
    assert [o.kind for o in outs] == ["skipped", "event"]
    assert outs[1].event is not None and outs[1].event["goroutine_id"] == 1


def test_merger_keeps_files_apart_and_flushes_idle_ones() -> None:
    m = PanicMerger(idle_s=1.0)
    logged = Outgoing({"level": "panic", "format": "zap_json", "message": "x"}, 5, "a", 10)
    dump = Outgoing({"level": "panic", "format": "go_panic", "message": "x", "goroutine_id": 3}, 6, "b", 0)
    assert m.push(logged, 0.0) == [] and m.held() == {"a": 10}
    assert m.push(dump, 0.1) == [dump]  # another file's dump: not this record's
    assert m.flush_idle(0.5) == [] and m.flush_idle(2.0, busy={"a"}) == []  # a record of "a" still open
    assert m.flush_idle(2.0) == [logged] and m.idle() and m.merged == 0
    assert m.push(logged, 3.0) == []
    (one,) = m.push(Outgoing({**dump.event}, 7, "a", 99), 3.1)
    assert one.offset == 10 and one.time_ns == 5 and one.event["goroutine_id"] == 3 and m.merged == 1
    assert dump_of(logged.event, dump.event) and not dump_of(logged.event, {**dump.event, "level": "fatal"})


def _plugin(tmp_path: Path, mono: list[float]) -> ErrlogPlugin:
    cfg = Config(
        files=(str(tmp_path / "app.log"),),
        from_beginning=True,
        offsets_file=str(tmp_path / "offsets.json"),
        host="h",
        discover_interval_s=0.0,
        multiline_wait_s=1.0,
    )
    return ErrlogPlugin(cfg, monotonic=lambda: mono[0])


def _sent(lines: list[str]) -> list[str]:
    return [ln for ln in lines if ln.startswith(contract.EVENTS + ",")]


def test_plugin_holds_the_record_for_its_dump_and_sends_one_event(tmp_path: Path) -> None:
    log = tmp_path / "app.log"
    zap = capture("zap_json")
    record, dump = record_part(zap), zap[len(record_part(zap)) :]
    log.write_text(record)
    mono = [100.0]
    p = _plugin(tmp_path, mono)
    assert _sent(p.gather()) == []
    assert p.held() == {str(log): 0}  # saved positions do not pass the held record
    with log.open("a") as f:
        f.write(dump)
    mono[0] += 0.5
    assert _sent(p.gather()) == []  # the dump is still open (it may have more goroutines)
    mono[0] += 1.5
    (line,) = _sent(p.gather())
    assert "format=zap_json" in line and "goroutine_id=1i" in line and "level=panic" in line
    assert p.counters.snapshot()["merged"] == 1 and p.counters.snapshot()["events"] == 1
    assert p.held() == {}
    p.close()


def test_plugin_sends_a_logged_panic_without_dump_once_idle(tmp_path: Path) -> None:
    log = tmp_path / "app.log"
    log.write_text(record_part(capture("zerolog_json")))
    mono = [100.0]
    p = _plugin(tmp_path, mono)
    assert _sent(p.gather()) == []
    mono[0] += 1.5
    (line,) = _sent(p.gather())
    assert "format=zerolog_json" in line and "goroutine_id" not in line
    assert p.counters.snapshot()["merged"] == 0
    p.close()
