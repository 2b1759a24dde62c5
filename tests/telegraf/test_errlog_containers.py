"""Container wrappers (CRI, Docker json-file, compose prefixes) around real Go output (data/golog/).

The wrappers are written here after their specifications (CRI logging format, Docker's
json-file driver, ``docker compose logs``); what they wrap is what tests/golog printed.
Each wrapped capture must give the same events as the bare one, plus the wrapper's time
where the inner line has none.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from errloop.rules.contract import Event
from errloop.telegraf.errlog.config import Config
from errloop.telegraf.errlog.container import Unwrapper, unwrap_once
from errloop.telegraf.errlog.normalise import Normalised, event_id, parse_lines
from errloop.telegraf.errlog.plugin import ErrlogPlugin
from errloop.telegraf.errlog.tailer import Line
from errloop.telegraf.errlog.timeparse import iso_to_ns

DATA = Path(__file__).parent / "data" / "golog"
T0 = "2026-11-27T13:03:45.123456789Z"
SAMPLES = (
    "zap_json.wrapped",
    "zap_console.wrapped",
    "slog_text.wrapped",
    "klog.plain",
    "stdlog_micro.wrapped",
    "panic_nil",
    "concurrent_map_all",
)
SAME = (
    "format",
    "level",
    "message",
    "root_cause",
    "error_chain",
    "top_frame",
    "goroutine_id",
    "trace_id",
    "caller",
    "fingerprint",
)


def capture(name: str) -> list[str]:
    return (DATA / f"{name}.log").read_text(encoding="utf-8").splitlines()


def cri(lines: list[str], stream: str = "stderr", split: int = 0) -> str:
    out = []
    for ln in lines:
        pieces = [ln[i : i + split] for i in range(0, len(ln), split)] if split and len(ln) > split else [ln]
        for i, piece in enumerate(pieces):
            out.append(f"{T0} {stream} {'F' if i == len(pieces) - 1 else 'P'} {piece}")
    return "\n".join(out) + "\n"


def docker(lines: list[str], split: int = 0) -> str:
    out = []
    for ln in lines:
        pieces = [ln[i : i + split] for i in range(0, len(ln), split)] if split and len(ln) > split else [ln]
        for i, piece in enumerate(pieces):
            end = "\n" if i == len(pieces) - 1 else ""
            out.append(json.dumps({"log": piece + end, "stream": "stderr", "time": T0}))
    return "\n".join(out) + "\n"


def compose(lines: list[str], name: str = "orders-1") -> str:
    return "".join(f"{name}  | {ln}\n" for ln in lines)


def run(text: str, **kw: str) -> list[Normalised]:
    return [
        o for o in parse_lines(text.splitlines(keepends=True), source="/var/log/pods/x.log", host="h", **kw) if o.event
    ]


def ev(o: Normalised) -> Event:
    assert o.event is not None
    return o.event


@pytest.mark.parametrize("name", SAMPLES)
@pytest.mark.parametrize("wrap", ["cri", "cri_partial", "docker", "docker_partial", "compose"])
def test_wrapped_capture_gives_the_bare_events(name: str, wrap: str) -> None:
    lines = capture(name)
    bare = run("\n".join(lines) + "\n")
    text = {
        "cri": lambda: cri(lines),
        "cri_partial": lambda: cri(lines, split=40),
        "docker": lambda: docker(lines),
        "docker_partial": lambda: docker(lines, split=40),
        "compose": lambda: compose(lines),
    }[wrap]()
    wrapped = run(text)
    assert len(wrapped) == len(bare) and not any(o.unparsed for o in wrapped)
    for b, w in zip(bare, wrapped, strict=True):
        assert {k: ev(b).get(k) for k in SAME} == {k: ev(w).get(k) for k in SAME}
        if name.startswith(("panic", "concurrent")):
            if wrap != "compose":
                assert w.time_ns == iso_to_ns(T0)  # a dump has no time of its own: the wrapper's
        else:
            assert w.time_ns == b.time_ns  # the line's own time wins
    if wrap == "compose":
        assert {ev(w)["service"] for w in wrapped} == {"orders"}


def test_partial_cri_line_keeps_its_first_offset_and_joined_bytes() -> None:
    line = capture("zap_json.wrapped")[0]
    text = cri([line], split=50)
    (o,) = run(text)
    assert ev(o)["format"] == "zap_json" and ev(o)["message"] == "request failed"
    assert ev(o)["event_id"] == event_id("h", "/var/log/pods/x.log", 0, line.encode())


def test_unwrap_once_shapes() -> None:
    p = unwrap_once(f"{T0} stdout P abc".encode())
    assert p is not None and (p.data, p.stream, p.partial, p.time_ns) == (b"abc", "stdout", True, iso_to_ns(T0))
    d = unwrap_once(b'{"log":"x\\n","stream":"stderr","time":"2026-11-27T13:03:45Z"}')
    assert d is not None and (d.data, d.stream, d.partial) == (b"x", "stderr", False)
    c = unwrap_once(b'api_1   | {"level":"error"}')
    assert c is not None and (c.data, c.service) == (b'{"level":"error"}', "api")
    for plain in (
        b'{"level":"error","msg":"m"}',
        b"2026/11/27 13:03:45 x",
        b"E1127 13:03:45.517696 1 a.go:1] m",
        b"panic: x",
    ):
        assert unwrap_once(plain) is None, plain


def test_partial_line_without_its_end_is_handed_on() -> None:
    u = Unwrapper()
    assert u.push(Line("f", 0, f"{T0} stderr P half a".encode()), 1.0) == []
    assert u.held() == {"f": 0}
    assert u.flush_idle(1.5, 1.0) == []
    (inner,) = u.flush_idle(2.0, 1.0)
    assert inner.line.data == b"half a" and inner.line.offset == 0 and u.held() == {}
    u.push(Line("f", 100, f"{T0} stderr P x".encode()))
    out = u.push(Line("f", 150, b"not wrapped"))
    assert [i.line.offset for i in out] == [100, 150]


def test_plugin_reads_a_cri_log_with_a_panic(tmp_path: Path) -> None:
    log = tmp_path / "pod.log"
    log.write_text(cri(capture("zap_json.wrapped"), split=64) + cri(capture("panic_value")))
    mono = [100.0]
    p = ErrlogPlugin(
        Config(files=(str(log),), from_beginning=True, host="h", discover_interval_s=0.0, multiline_wait_s=1.0),
        monotonic=lambda: mono[0],
    )
    first = [x for x in p.gather() if x.startswith("errloop_events")]
    mono[0] += 2.0
    second = [x for x in p.gather() if x.startswith("errloop_events")]
    assert len(first) == 1 and "format=zap_json" in first[0]
    assert len(second) == 1 and "format=go_panic" in second[0] and second[0].endswith(str(iso_to_ns(T0)))
    assert p.counters.snapshot()["unparsed"] == 0
    p.close()
