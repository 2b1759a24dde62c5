"""The errlog plugin end to end: files in, line protocol out (in-process and as Telegraf would run it)."""

from __future__ import annotations

import json
import os
import select
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from tg_lp_parser import ParsedPoint, parse_line

from errloop.rules import contract
from errloop.telegraf.errlog.config import Config
from errloop.telegraf.errlog.normalise import parse_text
from errloop.telegraf.errlog.plugin import ErrlogPlugin
from errloop.telegraf.errlog.points import SeriesClock
from errloop.telegraf.errlog.tailer import Line

pytestmark = pytest.mark.timeout(120)
DATA = Path(__file__).parent / "data" / "zap_production.jsonl"


def zap_line(msg: str, ts: float = 1732700000.5, level: str = "error", **extra: object) -> str:
    return json.dumps({"level": level, "ts": ts, "caller": "a/b.go:1", "msg": msg, **extra}) + "\n"


class Mono:
    def __init__(self) -> None:
        self.t = 100.0

    def __call__(self) -> float:
        return self.t


def plugin_for(tmp_path: Path, mono: Mono | None = None, **kw: object) -> ErrlogPlugin:
    opts: dict[str, Any] = {
        "files": (str(tmp_path / "*.log"),),
        "from_beginning": True,
        "offsets_file": str(tmp_path / "offsets.json"),
        "host": "h1",
        "env": "test",
        "discover_interval_s": 0.0,
    }
    opts.update(kw)
    return ErrlogPlugin(Config(**opts), monotonic=mono or Mono())


def points(lines: list[str]) -> list[ParsedPoint]:
    return [parse_line(ln) for ln in lines]


def test_gather_turns_the_fixture_into_events_and_counts(tmp_path: Path) -> None:
    (tmp_path / "orders.log").write_bytes(DATA.read_bytes())
    mono = Mono()
    p = plugin_for(tmp_path, mono, stats_interval_s=10.0, multiline_wait_s=0.0)
    pts = points(p.gather())
    assert [pt.measurement for pt in pts] == [contract.EVENTS] * 6
    assert {pt.tags["host"] for pt in pts} == {"h1"} and {pt.tags["env"] for pt in pts} == {"test"}
    assert pts[0].time_ns == 1732700000123456000
    stack = pts[0].fields["stack"]
    assert isinstance(stack, str) and "\u240a\t/src/demo/main.go:88" in stack  # one line per point
    assert p.counters.snapshot() == {
        "lines_read": 9,
        "events": 6,
        "unparsed": 0,  # the plain-text line is net/http's log of a recovered panic (go_panic)
        "truncated": 0,
        "rotations": 0,
        "errors": 0,
        "merged": 0,  # the dpanic line (zap production: no panic follows) and net/http's panic are two failures
    }
    mono.t += 11
    (stats,) = points(p.gather())
    assert stats.measurement == contract.INGEST_STATS
    assert stats.tags == {"host": "h1", "env": "test"}
    assert stats.fields == {**p.counters.snapshot()}
    p.committed()
    p.close()


def test_event_ids_match_parse_text(tmp_path: Path) -> None:
    log = tmp_path / "orders.log"
    log.write_bytes(DATA.read_bytes())
    p = plugin_for(tmp_path, multiline_wait_s=0.0)  # the last line (net/http's panic) may open a dump: no wait
    ids = [pt.fields["event_id"] for pt in points(p.gather()) if pt.measurement == contract.EVENTS]
    want = [e["event_id"] for e in parse_text(log.read_text().splitlines(keepends=True), source=str(log), host="h1")]
    assert ids == want


def test_same_timestamp_in_one_series_is_bumped(tmp_path: Path) -> None:
    (tmp_path / "a.log").write_text(zap_line("same") * 3 + zap_line("other", service="x"))
    pts = points(plugin_for(tmp_path).gather())
    assert [pt.time_ns for pt in pts] == [1732700000500000000 + i for i in range(3)] + [1732700000500000000]


def test_truncated_lines_are_flagged_and_counted(tmp_path: Path) -> None:
    (tmp_path / "a.log").write_text(zap_line("x" * 2000) + zap_line("ok"))
    p = plugin_for(tmp_path, max_line_bytes=300)
    first, second = points(p.gather())
    assert first.fields["truncated"] is True and first.tags["format"] == "unparsed"
    assert len(str(first.fields["raw"]).encode()) <= 300
    assert second.fields["truncated"] is False and second.fields["message"] == "ok"
    assert p.counters.values["truncated"] == 1 and p.counters.values["unparsed"] == 1


def test_unwritable_event_is_counted_not_raised(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from errloop.telegraf.errlog import plugin as plugin_mod

    (tmp_path / "a.log").write_text(zap_line("one") + zap_line("two"))
    real = plugin_mod.event_line

    def flaky(event: dict[str, Any], time_ns: int, clock: SeriesClock) -> str:
        if event["message"] == "one":
            raise plugin_mod.lineproto.LineProtocolError("nope")
        line: str = real(event, time_ns, clock)
        return line

    monkeypatch.setattr(plugin_mod, "event_line", flaky)
    p = plugin_for(tmp_path)
    (pt,) = points(p.gather())
    assert pt.fields["message"] == "two"
    assert p.counters.values["errors"] == 1 and p.counters.values["events"] == 1


def test_a_broken_tailer_is_counted_not_raised(tmp_path: Path) -> None:
    p = plugin_for(tmp_path)

    def boom() -> list[Line]:
        raise OSError("disk on fire")

    p.tailer.poll = boom
    assert p.gather() == []
    assert p.counters.values["errors"] == 1


# --- as Telegraf runs it -----------------------------------------------------------------------


def write_config(tmp_path: Path, **extra: str) -> Path:
    logs = tmp_path / "logs"
    logs.mkdir(exist_ok=True)
    cfg = tmp_path / "errlog.toml"
    lines = [
        "[[inputs.errlog]]",
        f'files = ["{logs}/*.log"]',
        f'offsets_file = "{tmp_path}/state/offsets.json"',
        'poll_interval = "20ms"',
        'host = "h1"',
        'stats_interval = "1h"',
    ] + [f"{k} = {v}" for k, v in extra.items()]
    cfg.write_text("\n".join(lines) + "\n")
    return cfg


class Proc:
    """The plugin as a child process, as inputs.execd starts it."""

    def __init__(self, config: Path, *argv: str) -> None:
        cmd = [sys.executable, "-m", "errloop.telegraf.errlog.plugin", "--config", str(config), *argv]
        self.p = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        assert self.p.stdout is not None
        self.buf = b""

    def read_points(self, n: int, timeout: float = 15.0) -> list[ParsedPoint]:
        assert self.p.stdout is not None
        fd = self.p.stdout.fileno()
        deadline = time.monotonic() + timeout
        while self.buf.count(b"\n") < n:
            left = deadline - time.monotonic()
            assert left > 0, f"fewer than {n} lines: {self.buf[-500:]!r}"
            r, _, _ = select.select([fd], [], [], left)
            if r:
                chunk = os.read(fd, 65536)
                assert chunk, "stdout closed early"
                self.buf += chunk
        lines = self.buf.split(b"\n")
        got, self.buf = lines[:n], b"\n".join(lines[n:])
        return [parse_line(x.decode()) for x in got]

    def stop(self) -> tuple[bytes, bytes]:
        """Like Telegraf: close stdin, then wait."""
        assert self.p.stdin is not None and self.p.stdout is not None and self.p.stderr is not None
        self.p.stdin.close()
        out = self.buf + self.p.stdout.read()
        err = self.p.stderr.read()
        self.p.wait(timeout=15)
        return out, err

    def kill(self) -> None:
        if self.p.poll() is None:
            self.p.kill()
            self.p.wait()


def test_subprocess_reads_a_file_and_restarts_without_loss_or_duplicates(tmp_path: Path) -> None:
    cfg = write_config(tmp_path, from_beginning="true")
    log = tmp_path / "logs" / "user-api.log"
    log.write_text(zap_line("first 1") + zap_line("skipped", level="info") + zap_line("first 2"))
    proc = Proc(cfg)
    try:
        pts = proc.read_points(2)
        assert [pt.fields["message"] for pt in pts] == ["first 1", "first 2"]
        assert pts[0].tags["service"] == "user-api" and pts[0].fields["source"] == str(log)
        with open(log, "a") as fh:  # appended while running, partial line at first
            fh.write(zap_line("live")[:20])
            fh.flush()
            time.sleep(0.3)
            fh.write(zap_line("live")[20:])
        (live,) = proc.read_points(1)
        assert live.fields["message"] == "live"
        out, err = proc.stop()
    finally:
        proc.kill()
    assert proc.p.returncode == 0, err.decode()
    assert out.strip() == b"", out  # nothing more, and nothing but line protocol
    assert b"I! [errloop.errlog] errlog started" in err
    saved = json.loads((tmp_path / "state" / "offsets.json").read_text())
    assert saved["files"][0]["offset"] == log.stat().st_size

    # while stopped: more lines, then a rename rotation
    with open(log, "a") as fh:
        fh.write(zap_line("while down"))
    os.rename(log, tmp_path / "logs" / "user-api.log.1")
    log.write_text(zap_line("after rotation"))
    proc = Proc(cfg)
    try:
        pts = proc.read_points(2)
        out, err = proc.stop()
    finally:
        proc.kill()
    assert sorted(str(pt.fields["message"]) for pt in pts) == ["after rotation", "while down"]
    assert proc.p.returncode == 0 and out.strip() == b"", err.decode()


def test_subprocess_sigterm_is_a_clean_stop(tmp_path: Path) -> None:
    cfg = write_config(tmp_path, from_beginning="true")
    (tmp_path / "logs" / "a.log").write_text(zap_line("x"))
    proc = Proc(cfg)
    try:
        proc.read_points(1)
        proc.p.send_signal(signal.SIGTERM)
        proc.p.wait(timeout=15)
        assert proc.p.stderr is not None
        err = proc.p.stderr.read()
    finally:
        proc.kill()
    assert proc.p.returncode == 0
    assert b"stopping: SIGTERM" in err
    assert (tmp_path / "state" / "offsets.json").exists()


def test_subprocess_bad_config_exits_2_with_a_telegraf_error_line(tmp_path: Path) -> None:
    cfg = tmp_path / "bad.toml"
    cfg.write_text("[[inputs.errlog]]\nfiles = ['/x']\npoll_intervall = '1s'\n")
    proc = subprocess.run(
        [sys.executable, "-m", "errloop.telegraf.errlog", "--config", str(cfg)],
        capture_output=True,
        timeout=30,
        stdin=subprocess.DEVNULL,
    )
    assert proc.returncode == 2
    assert proc.stdout == b""
    assert proc.stderr.startswith(b"E! ") and b"poll_intervall: unknown key" in proc.stderr


def test_level_aliases_in_the_config(tmp_path: Path) -> None:
    (tmp_path / "a.log").write_text(zap_line("w", level="warn") + zap_line("i", level="info"))
    (pt,) = points(plugin_for(tmp_path, levels=("warning",)).gather())
    assert pt.tags["level"] == "warn"


def test_offsets_that_cannot_be_saved_are_counted(tmp_path: Path) -> None:
    (tmp_path / "a.log").write_text(zap_line("x"))
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("")
    p = plugin_for(tmp_path, offsets_file=str(blocker / "offsets.json"))
    assert len(p.gather()) == 1
    p.committed()
    p.gather()
    assert p.counters.values["errors"] == 1
