"""Every single-line format, parsed from what a real Go program printed (tests/golog).

The quick tests read the captures in data/golog/ (made by ``python tests/golog/golog.py``,
see data/golog/VERSIONS.txt); the slow ones build tests/golog and parse what it prints
now. Expectations come from the program's own constants (message, trace id, the wrapped
chain), never from a hand-written line.
"""

from __future__ import annotations

import json
import re
import sys
import time
from pathlib import Path

import pytest

from errloop.deploy import gobuild
from errloop.rules.contract import Event
from errloop.telegraf.errlog.normalise import Normalised, parse_lines
from errloop.telegraf.errlog.parsers import PARSERS

sys.path.insert(0, str(Path(__file__).parents[1] / "golog"))
import golog

DATA = Path(__file__).parent / "data" / "golog"
TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
SPAN_ID = "00f067aa0ba902b7"
CHAINS = {
    "wrapped": ["handle request", "load user 42", "query users", "record not found"],
    "plain": ["connection refused"],
}
# format the program was asked for → format tag the event must carry
FORMAT_TAG = {f: ("stdlog" if f.startswith("stdlog") else f) for f in golog.LOG_FORMATS}
STRUCTURED = {
    "zap_json",
    "zap_console",
    "logrus_json",
    "logrus_text",
    "slog_json",
    "slog_text",
    "zerolog_json",
    "logfmt",
}
WITH_SPAN = {"zap_json", "zap_console", "logrus_json", "logrus_text", "slog_json", "slog_text", "zerolog_json"}
WITH_CALLER = STRUCTURED | {"klog", "stdlog_shortfile", "stdlog_longfile"}


def outcomes(text: str, source: str = "/var/log/golog.log") -> list[Normalised]:
    return list(parse_lines(text.splitlines(keepends=True), source=source, host="h1"))


def events(text: str) -> list[Event]:
    return [o.event for o in outcomes(text) if o.event is not None]


def reference_ns(text_of: dict[str, str]) -> int:
    """The time of the capture, from zap's epoch ``ts`` (no zone, no year to guess)."""
    ts = json.loads(text_of["zap_json.wrapped"].splitlines()[0])["ts"]
    return int(ts * 1e9)


def check_format(fmt: str, case: str, text: str, ref_ns: int) -> None:
    """What every event of one capture must hold, whatever the format."""
    outs = outcomes(text)
    evs = [o.event for o in outs if o.event is not None]
    assert evs, f"{fmt}.{case}: no event from {text!r}"
    assert not any(o.unparsed for o in outs), f"{fmt}.{case}: unparsed line in {text!r}"
    chain = CHAINS[case]
    for i, ev in enumerate(evs):
        assert ev["format"] == FORMAT_TAG[fmt], (fmt, ev)
        assert ev["level"] == "error"
        assert ev["root_cause"] == chain[-1]
        assert str(ev["error_chain"]).split("\n")[-len(chain) :] == chain
        assert "request failed" in str(ev["message"])
        assert abs(o_time(outs, i) - ref_ns) < 120 * 10**9, (fmt, o_time(outs, i), ref_ns)
        if fmt in WITH_CALLER:
            assert re.search(r"(^|/)main\.go:\d+$", str(ev["caller"])), ev["caller"]
    first = evs[0]
    if fmt in STRUCTURED or fmt == "klog":
        assert first["message"] == "request failed"
        assert first["trace_id"] == TRACE_ID
        assert first["http_method"] == "GET" and first["http_path"] == "/users/:id"  # templated: bounded cardinality
        assert first["http_status"] == 500
        assert first["operation"] == "GET /users/:id"
        assert str(first["error_chain"]).split("\n") == chain
    if fmt in WITH_SPAN:
        assert first["span_id"] == SPAN_ID
    if fmt == "zap_json" or fmt == "zap_console":
        assert first["logger"] == "api"
        assert first["top_frame"] == "main.logLine"  # zap's stack, from the line (JSON) or the lines under it
        assert len(evs) == 1
    if fmt.startswith("stdlog"):
        assert len(evs) == 2  # "ERROR: …" and the same without a level word: both errors
        assert evs[0]["message"] == evs[1]["message"]  # the level word is not part of the message
        assert evs[0]["fingerprint"] == evs[1]["fingerprint"]


def o_time(outs: list[Normalised], i: int) -> int:
    return [o for o in outs if o.event is not None][i].time_ns


def captured() -> dict[str, str]:
    return {p.name.removesuffix(".log"): p.read_text(encoding="utf-8") for p in DATA.glob("*.log")}


@pytest.mark.parametrize("fmt", golog.LOG_FORMATS)
@pytest.mark.parametrize("case", golog.LOG_CASES)
def test_captured_output_of_each_format(fmt: str, case: str) -> None:
    text_of = captured()
    check_format(fmt, case, text_of[f"{fmt}.{case}"], reference_ns(text_of))


def test_every_format_has_its_parser_and_a_capture() -> None:
    assert set(FORMAT_TAG.values()) <= set(PARSERS)
    assert {f"{f}.{c}" for f in golog.LOG_FORMATS for c in golog.LOG_CASES} <= set(captured())


def test_each_parser_claims_only_its_own_format() -> None:
    """Every parser tried on every captured line: it accepts its own lines and refuses the others."""
    text_of = captured()
    for fmt in golog.LOG_FORMATS:
        first_line = text_of[f"{fmt}.wrapped"].splitlines()[0]
        claimed = {name for name, p in PARSERS.items() if p.parse(first_line) is not None}
        tag = FORMAT_TAG[fmt]
        assert tag in claimed, (fmt, claimed)
        # zap_json is the fallback for any JSON with a level; stdlog the fallback for timestamped text
        assert claimed - {tag, "zap_json", "stdlog", "logfmt"} == set(), (fmt, claimed)
        assert next(iter(n for n in PARSERS if n in claimed)) == tag  # the default order picks the right one


def test_same_error_same_fingerprint_across_runs_different_for_other_error() -> None:
    text_of = captured()
    for fmt in ("zap_json", "slog_json", "klog", "logfmt", "stdlog"):
        a = events(text_of[f"{fmt}.wrapped"])[0]["fingerprint"]
        b = events(text_of[f"{fmt}.plain"])[0]["fingerprint"]
        assert a != b, fmt


@pytest.mark.parametrize(
    ("line", "keys"),
    [
        ('{"level":"error","ts":1,"msg":"m","traceID":"t1","spanID":"s1"}', ("t1", "s1")),
        ('{"level":"error","ts":1,"msg":"m","dd.trace_id":"t2","dd.span_id":"s2"}', ("t2", "s2")),
        (
            '{"level":"error","ts":1,"msg":"m","traceparent":"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"}',
            (TRACE_ID, SPAN_ID),
        ),
        ("time=2024-01-01T00:00:00Z level=ERROR msg=m traceId=t3 spanId=s3", ("t3", "s3")),
    ],
)
def test_trace_id_spellings(line: str, keys: tuple[str, str]) -> None:
    (ev,) = events(line)
    assert (ev["trace_id"], ev["span_id"]) == keys


def test_slog_levels_with_offsets_and_logrus_warning() -> None:
    (ev,) = events('time=2024-01-01T00:00:00Z level=ERROR+2 msg="disk full" err="write /d: no space left on device"')
    assert ev["level"] == "error" and ev["format"] == "slog_text" and ev["root_cause"] == "no space left on device"
    assert next(iter(parse_lines(['time="2024-01-01T00:00:00Z" level=warning msg="slow"']))).kind == "skipped"


@pytest.mark.slow
@pytest.mark.parametrize("case", golog.LOG_CASES)
def test_live_output_of_each_format(case: str) -> None:
    """Build tests/golog with the machine's Go and check what it prints now, format by format."""
    bin_dir = golog.build()
    now = time.time_ns()
    for fmt in golog.LOG_FORMATS:
        out = golog.run(bin_dir, fmt, case)
        assert out.returncode == 0, out.text
        check_format(fmt, case, out.text, now)


def test_all_captures_in_one_stream_give_the_same_events_as_apart() -> None:
    """Every format and every dump one after the other in one file (as a mixed container log):
    grouping neither swallows the line after a dump nor splits a dump."""
    text_of = captured()
    names = sorted(text_of)
    apart = [ev for name in names for ev in events(text_of[name])]
    together = events(
        "".join(text_of[name] if text_of[name].endswith("\n") else text_of[name] + "\n" for name in names)
    )
    keys = ("format", "level", "message", "root_cause", "top_frame", "goroutine_id", "fingerprint")
    assert [tuple(e.get(k) for k in keys) for e in together] == [tuple(e.get(k) for k in keys) for e in apart]
    assert all(e["format"] != "unparsed" for e in together)


def test_golog_build_is_keyed_by_its_sources() -> None:
    files = golog.sources()
    assert {"go.mod", "go.sum", "main.go", "deadlock/main.go"} <= set(files)
    edited = {**files, "main.go": files["main.go"] + b"\n// edit\n"}
    assert gobuild.source_hash(edited) != gobuild.source_hash(files)
