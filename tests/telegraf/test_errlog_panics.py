"""Go panics and fatal errors: the lines of a dump joined into one event (format=go_panic).

Quick tests read the real dumps in data/golog/ (see data/README.md); the slow one builds
tests/golog and makes it panic now. Expected values come from the program's source
(its panic values and functions), and the goroutine id from the dump's own header.
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from errloop.rules.contract import Event
from errloop.telegraf.errlog.config import Config
from errloop.telegraf.errlog.group import Grouper, continues, starts
from errloop.telegraf.errlog.normalise import Context, event_id, normalise_line, parse_lines
from errloop.telegraf.errlog.plugin import ErrlogPlugin
from errloop.telegraf.errlog.tailer import Line

sys.path.insert(0, str(Path(__file__).parents[1] / "golog"))
import golog

DATA = Path(__file__).parent / "data" / "golog"
# case → (level, message, root cause, top in-app frame)
EXPECTED: dict[str, tuple[str, str, str | re.Pattern[str], str]] = {
    "panic_nil": (
        "panic",
        "runtime error: invalid memory address or nil pointer dereference",
        "invalid memory address or nil pointer dereference",
        "main.total",
    ),
    "panic_value": ("panic", "invariant broken: balance -7 < 0", "balance -7 < 0", "main.work"),
    "panic_custom": ("panic", "query orders: record not found", "record not found", "main.work"),
    "panic_recovered": ("panic", "boom: config missing", "config missing", "main.work"),
    "concurrent_map": ("fatal", "concurrent map writes", "concurrent map writes", "main.work.func2"),
    "concurrent_map_all": ("fatal", "concurrent map writes", "concurrent map writes", "main.work.func2"),
    "deadlock": (
        "fatal",
        "all goroutines are asleep - deadlock!",
        "all goroutines are asleep - deadlock!",
        "main.main",
    ),
    "oom": ("fatal", "out of memory", re.compile(r"cannot allocate \d+-byte block \(\d+ in use\)"), "main.work"),
    "sigquit": ("fatal", "SIGQUIT: quit", "SIGQUIT: quit", "main.work"),  # below syscall.Kill: stdlib skipped
    "http_panic": (  # net/http's log line of a recovered handler panic, then the goroutine
        "panic",
        "runtime error: invalid memory address or nil pointer dereference",
        "invalid memory address or nil pointer dereference",
        "main.total",
    ),
}
_FIRST_GOROUTINE = re.compile(r"^goroutine (\d+) (?:gp=\S+ m=\S+ (?:mp=\S+ )?)?\[", re.M)


def dump(case: str) -> str:
    return (DATA / f"{case}.log").read_text(encoding="utf-8")


def check_dump(case: str, text: str) -> Event:
    outs = list(parse_lines(text.splitlines(keepends=True), source="/var/log/app.log", host="h1"))
    assert len(outs) == 1, [o.event and o.event.get("message") for o in outs]
    ev = outs[0].event
    assert ev is not None and not outs[0].unparsed
    level, message, root, top = EXPECTED[case]
    assert ev["format"] == "go_panic"
    assert (ev["level"], ev["message"], ev["top_frame"]) == (level, message, top)
    assert root.fullmatch(str(ev["root_cause"])) if isinstance(root, re.Pattern) else ev["root_cause"] == root
    first = _FIRST_GOROUTINE.search(text)
    assert first is not None and ev["goroutine_id"] == int(first.group(1))
    stack = str(ev["stack"])
    assert top in stack and ":" in str(ev["file_line"])
    assert not _FIRST_GOROUTINE.search(stack)  # only the panicking goroutine's frames, without its header
    assert str(ev["file_line"]).startswith("github.com/errloop/golog/")
    # the whole dump is one record: its id is the hash over the first line's offset and all its bytes
    body = text.rstrip("\n").encode()
    assert ev["event_id"] == event_id("h1", "/var/log/app.log", 0, body)
    return ev


@pytest.mark.parametrize("case", sorted(EXPECTED))
def test_captured_dump_is_one_event(case: str) -> None:
    check_dump(case, dump(case))


def test_recovered_repanic_and_created_by_are_understood() -> None:
    text = dump("panic_recovered")
    assert "[recovered" in text  # what Go printed
    ev = check_dump("panic_recovered", text)
    assert "[recovered" not in str(ev["message"])
    assert "created by main.main" in str(ev["stack"])


def test_goroutines_of_a_full_dump_stay_in_one_event() -> None:
    text = dump("concurrent_map_all")
    assert len(_FIRST_GOROUTINE.findall(text)) > 2  # GOTRACEBACK=all printed several goroutines
    ev = check_dump("concurrent_map_all", text)
    assert "main.main()" not in str(ev["stack"])  # goroutine 1's frames are not the panicking one's


def test_same_panic_twice_gets_one_fingerprint_other_panic_another() -> None:
    a = check_dump("panic_nil", dump("panic_nil"))
    b = check_dump("panic_nil", dump("panic_nil").replace("goroutine 21 ", "goroutine 77 ").replace("+0x", "+0x1"))
    c = check_dump("panic_value", dump("panic_value"))
    assert a["fingerprint"] == b["fingerprint"] != c["fingerprint"]


def test_dump_between_log_lines_keeps_offsets_and_line_ids() -> None:
    zap = json.dumps({"level": "error", "ts": 1.5, "caller": "a/b.go:1", "msg": "before"})
    after = json.dumps({"level": "error", "ts": 2.5, "caller": "a/b.go:1", "msg": "after"})
    panic = dump("panic_nil")
    text = f"{zap}\n{panic}{after}\n"
    outs = list(parse_lines(text.splitlines(keepends=True), source="s", host="h"))
    evs = [o.event for o in outs if o.event is not None]
    assert [e["format"] for e in evs] == ["zap_json", "go_panic", "zap_json"]
    ctx = Context(source="s", host="h")
    # a one-line record has exactly the id it had before grouping existed
    assert evs[0]["event_id"] == normalise_line(zap.encode(), ctx=ctx, offset=0, ingested_ns=1).event["event_id"]  # type: ignore[index]
    assert evs[1]["event_id"] == event_id("h", "s", len(zap) + 1, panic.rstrip("\n").encode())
    assert evs[2]["event_id"] == event_id("h", "s", len(zap) + 1 + len(panic), after.encode())


def lines_of(text: str, source: str = "f") -> list[Line]:
    out, offset = [], 0
    for raw in text.encode().split(b"\n")[:-1]:
        out.append(Line(source, offset, raw))
        offset += len(raw) + 1
    return out


def test_grouper_holds_a_dump_until_a_new_record_or_idle() -> None:
    g = Grouper(idle_s=1.0)
    lines = lines_of(dump("panic_value"))
    got = [r for ln in lines for r in g.push(ln, 10.0)]
    assert got == [] and g.held() == {"f": 0}  # still open: more goroutines could follow
    assert g.flush_idle(10.5) == []
    (rec,) = g.flush_idle(11.0)
    assert rec.offset == 0 and rec.lines == len(lines) and g.held() == {}
    # a following log line closes it at once
    g2 = Grouper()
    for ln in lines:
        g2.push(ln, 0.0)
    done = g2.push(Line("f", 9999, b'{"level":"error","msg":"x"}'), 0.0)
    assert [r.offset for r in done] == [0, 9999]


def test_grouper_keeps_files_apart_and_caps_huge_dumps() -> None:
    g = Grouper(max_lines=5)
    for ln in lines_of(dump("concurrent_map_all"), "a"):
        g.push(ln, 0.0)
    assert g.push(Line("b", 0, b"plain line"), 0.0)[0].source == "b"  # another file does not close a's dump
    (rec,) = g.flush_all()
    assert rec.truncated and rec.data.count(b"\n") == 4 and rec.lines > 5


def test_continuation_rules() -> None:
    assert starts(b"panic: x") == starts(b"fatal error: y") == starts(b"goroutine 1 [running]:") == "panic"
    assert starts(b"2024-11-27T10:00:00.000Z\tERROR\tmain.go:1\tm") == "console"
    assert starts(b"2024-11-27T10:00:00.000Z\tINFO\tmain.go:1\tm") is None
    assert starts(b'{"level":"error"}') is None
    for more in (
        b"",
        b"\t/src/x.go:1 +0x1d",
        b"main.(*T).m(0xc000, {0x1, 0x2})",
        b"created by main.main in goroutine 1",
    ):
        assert continues("panic", more), more
    for other in (
        b'{"level":"error"}',
        b"E1127 10:00:00.000000 1 x.go:1] m",
        b"2024/11/27 10:00:00 m",
        b"next request",
    ):
        assert not continues("panic", other), other


def test_plugin_sends_a_dump_once_complete_and_does_not_save_past_it(tmp_path: Path) -> None:
    log = tmp_path / "app.log"
    head = json.dumps({"level": "error", "ts": 1.5, "caller": "a/b.go:1", "msg": "before"}) + "\n"
    log.write_text(head + dump("panic_nil"))
    mono = [100.0]
    p = ErrlogPlugin(
        Config(
            files=(str(log),),
            from_beginning=True,
            offsets_file=str(tmp_path / "o.json"),
            host="h",
            discover_interval_s=0.0,
            multiline_wait_s=1.0,
        ),
        monotonic=lambda: mono[0],
    )
    first = p.gather()
    assert len([x for x in first if x.startswith("errloop_events")]) == 1  # the dump is still open
    p.committed()
    p.tailer.commit(force=True, hold=p.grouper.held())
    (saved,) = json.loads((tmp_path / "o.json").read_text())["files"]
    assert saved["offset"] == len(head)  # not past the dump's first line: a restart reads the dump again
    mono[0] += 1.5
    second = [x for x in p.gather() if x.startswith("errloop_events")]
    assert len(second) == 1 and "format=go_panic" in second[0]
    assert p.counters.snapshot()["events"] == 2 and p.counters.snapshot()["unparsed"] == 0
    p.close()


@pytest.mark.slow
@pytest.mark.parametrize("case", [c for c in golog.PANIC_CASES])
def test_live_dump_is_one_event(case: str) -> None:
    out = golog.run(golog.build(), case=case)
    assert out.returncode == (0 if case == "http_panic" else 2), out.text
    check_dump(case, out.text)


_PIECES = [
    "panic: ",
    "fatal error: ",
    "goroutine 1 [running]:",
    "\t/x.go:1 +0x1",
    "main.f(0x1, {0x2})",
    "created by main.main in goroutine 1",
    "[signal SIGSEGV: x]",
    "2024-11-27T10:00:00.000Z\tERROR\t",
    '{"log":"',
    "2024-11-27T10:00:00Z stderr P ",
    "svc-1  | ",
    '{"level":"error","msg":',
    "time=",
    'level=ERROR msg="',
    "E1127 10:00:00.000000 1 a.go:1] ",
    "2024/11/27 10:00:00 ",
    '"',
    "\\",
    "\r",
    "\x00",
    "\ufffd",
]


@given(st.lists(st.lists(st.sampled_from(_PIECES) | st.text(max_size=8), max_size=6).map("".join), max_size=30))
@settings(max_examples=300, deadline=None)
def test_no_input_raises_and_every_line_is_accounted(lines: list[str]) -> None:
    outs = list(parse_lines([ln.replace("\n", " ") + "\n" for ln in lines], source="s", host="h"))
    assert all(o.error == "" for o in outs)  # no parser raised
    assert len(outs) <= len(lines)


_BYTE_PIECES = [p.encode() for p in _PIECES] + [
    b"\xff\xfe",  # invalid UTF-8
    b"\xc3",  # a cut multi-byte character
    b'{"level":"panic","msg":"x"}',
    b"panic: x",
    b'{"log":"panic: x\\n","stream":"stderr","time":"2024-11-27T10:00:00Z"}',
    b"x" * 300,  # past the test's max_line_bytes
]


@given(
    st.lists(st.lists(st.sampled_from(_BYTE_PIECES) | st.binary(max_size=12), max_size=6).map(b"".join), max_size=25)
)
@settings(max_examples=150, deadline=None)
def test_no_bytes_raise_out_of_the_plugin_and_every_line_is_counted(lines: list[bytes]) -> None:
    """Raw bytes through the whole plugin (tailer, containers, grouping, parsers, merger, encoder)."""
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        log = Path(tmp) / "app.log"
        data = b"".join(ln.replace(b"\n", b" ") + b"\n" for ln in lines)
        log.write_bytes(data)
        cfg = Config(
            files=(str(log),),
            from_beginning=True,
            host="h",
            discover_interval_s=0.0,
            multiline_wait_s=0.0,
            max_line_bytes=256,
        )
        mono = [100.0]
        p = ErrlogPlugin(cfg, monotonic=lambda: mono[0])
        sent: list[str] = []
        for _ in range(4):
            sent += p.gather()
            mono[0] += 5.0
        counters = p.counters.snapshot()
        p.close()
    assert counters["errors"] == 0  # nothing failed inside: every line was parsed or stored as unparsed
    assert counters["lines_read"] == len(lines)
    assert counters["truncated"] == sum(1 for ln in lines if len(ln) > 256)
    assert counters["events"] == len([s for s in sent if s.startswith("errloop_events,")]) <= len(lines)
    assert all("\n" not in s for s in sent)


def test_restart_while_a_dump_is_open_sends_it_once_with_its_id(tmp_path: Path) -> None:
    log = tmp_path / "app.log"
    head = json.dumps({"level": "error", "ts": 1.5, "caller": "a/b.go:1", "msg": "before"}) + "\n"
    panic = dump("panic_custom")
    log.write_text(head + panic)
    mono = [100.0]

    def plugin() -> ErrlogPlugin:
        cfg = Config(
            files=(str(log),),
            from_beginning=True,
            offsets_file=str(tmp_path / "o.json"),
            host="h",
            discover_interval_s=0.0,
            multiline_wait_s=1.0,
        )
        return ErrlogPlugin(cfg, monotonic=lambda: mono[0])

    p1 = plugin()
    assert len(p1.gather()) == 1  # the line before; the dump is still open
    p1.committed()
    p1.close()  # stopped before the dump was complete: nothing of it sent
    p2 = plugin()
    assert p2.gather() == []  # the line before is not sent again; the dump is open again
    mono[0] += 2.0
    (sent,) = p2.gather()
    expected = event_id("h", str(log), len(head), panic.rstrip("\n").encode())
    assert "format=go_panic" in sent and f'event_id="{expected}"' in sent
    p2.close()


def test_two_dumps_back_to_back_are_two_events() -> None:
    """A crash-looping service writes one dump after the other, with no line between them."""
    a, b = dump("panic_nil"), dump("oom")
    text = a + ("" if a.endswith("\n") else "\n") + b
    evs = [o.event for o in parse_lines(text.splitlines(keepends=True), source="s") if o.event]
    assert [(e["message"], e["top_frame"]) for e in evs] == [
        (EXPECTED["panic_nil"][1], "main.total"),
        ("out of memory", "main.work"),
    ]
    # but the header lines of one dump stay together, and an indented re-panic continues it
    nested = "panic: first [recovered]\n\tpanic: second\n\ngoroutine 1 [running]:\nmain.main()\n\t/m.go:3 +0x1\n"
    (ev,) = [o.event for o in parse_lines(nested.splitlines(keepends=True), source="s") if o.event]
    assert ev["message"] == "first" and ev["goroutine_id"] == 1 and ev["top_frame"] == "main.main"


def _vary_dump(text: str, n: int) -> str:
    """The same stack as another run prints it: other goroutine ids, call arguments and pc offsets."""

    def other_hex(m: re.Match[str]) -> str:
        return hex(int(m.group(0), 16) + n + 1)

    text = re.sub(r"goroutine \d+", f"goroutine {n + 7}", text)
    text = re.sub(r"(?<=\+)0x[0-9a-f]+", other_hex, text)
    return re.sub(r"(?m)\((0x|\{)[^\n]*\)$", lambda m: re.sub(r"0x[0-9a-f]+", other_hex, m.group(0)), text)


@pytest.mark.parametrize("case", sorted(EXPECTED))
def test_stack_key_is_the_same_for_the_same_stack_and_the_memo_agrees(case: str) -> None:
    from errloop.telegraf.errlog import normalise
    from errloop.telegraf.errlog.gostack import stack_key

    text = dump(case)
    other = _vary_dump(text, 3)
    assert other != text
    assert stack_key(other) == stack_key(text)
    normalise._top_seen.clear()
    for stack in (text, other):
        for panic in (True, False):
            assert normalise._top_memo(stack, (), panic) == normalise._top(stack, (), panic)


def test_stack_key_tells_other_frames_apart() -> None:
    from errloop.telegraf.errlog.gostack import stack_key

    a = "main.handler(0xc000012345)\n\t/src/app/h.go:42 +0x1d\n"
    assert stack_key(a) == stack_key("main.handler(0xc000099999)\n\t/src/app/h.go:42 +0x2f\n")
    assert stack_key(a) != stack_key("main.handler(0xc000012345)\n\t/src/app/h.go:43 +0x1d\n")
    assert stack_key(a) != stack_key("main.other(0xc000012345)\n\t/src/app/h.go:42 +0x1d\n")
    assert stack_key("main.(*T).m(...)\n\t/a.go:1\n") != stack_key("main.(*U).m(...)\n\t/a.go:1\n")
