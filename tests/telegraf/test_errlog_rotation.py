"""Never lost, never repeated: the shape of the test Telegraf's ``inputs.tail`` fails (issue 4).

A writer puts 20,000 zap error lines at about 2,000 lines/s into ``app.log`` and rotates it
every 200 lines (100 rotations), logrotate-style: the older files are shifted
(``app.log.1`` → ``app.log.2`` …) and then either ``app.log`` is renamed to ``app.log.1`` and
created again, or it is copied to ``app.log.1`` and truncated (copytruncate). Halfway the
plugin (a child process, as Telegraf's execd runs it) gets SIGTERM and is started again on the
same offsets file while the writer goes on. Every line carries a sequence number; each must
arrive exactly once, with the ``event_id`` its place in its file gives.

Run alone: ``/work/venv/bin/pytest -q -m slow tests/telegraf/test_errlog_rotation.py``.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from tg_lp_parser import parse_line

from errloop.rules import contract
from errloop.telegraf.errlog.normalise import event_id

pytestmark = [pytest.mark.slow, pytest.mark.timeout(180)]

TOTAL = 20_000
PER_FILE = 200
RATE = 2_000  # lines per second
HOST = "h1"
SEQ = re.compile(r"^request (\d+) failed$")


def zap(seq: int) -> bytes:
    doc = {"level": "error", "ts": time.time(), "caller": "api/pay.go:42", "msg": f"request {seq} failed"}
    doc["error"] = "charge: card declined"
    return (json.dumps(doc) + "\n").encode()


@dataclass
class Writer:
    """Writes TOTAL lines into ``path`` at RATE, rotating every PER_FILE lines; records each line's offset."""

    path: Path
    kind: str  # "rename", "copytruncate" (done by the writer) or "logrotate" (copytruncate by another thread)
    placed: dict[int, tuple[int, bytes]] = field(default_factory=dict)  # seq → (offset, line bytes)
    written: int = 0
    rotations: int = 0
    error: BaseException | None = None

    def _shift(self) -> None:
        """app.log.N → app.log.N+1, highest first (logrotate's numbered names, none deleted)."""
        for n in range(self.rotations, 0, -1):
            os.rename(f"{self.path}.{n}", f"{self.path}.{n + 1}")

    def run(self) -> None:
        try:
            fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
            offset = os.fstat(fd).st_size
            start = time.monotonic()
            for seq in range(TOTAL):
                if seq and seq % PER_FILE == 0 and self.kind != "logrotate":
                    self._shift()
                    if self.kind == "rename":
                        os.rename(self.path, f"{self.path}.1")
                        os.close(fd)
                        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
                    else:
                        shutil.copyfile(self.path, f"{self.path}.1")
                        os.ftruncate(fd, 0)
                    offset = 0
                    self.rotations += 1
                data = zap(seq)
                os.write(fd, data)
                self.placed[seq] = (offset, data[:-1])
                offset += len(data)
                self.written = seq + 1
                ahead = seq / RATE - (time.monotonic() - start)
                if ahead > 0.005:
                    time.sleep(ahead)
            os.close(fd)
        except BaseException as exc:  # reported by the test
            self.error = exc


def logrotate(writer: Writer) -> None:
    """copytruncate as logrotate does it, beside a writer that goes on: the lines written between
    the copy and the truncate are in neither file — logrotate's own window, no reader can get them."""
    mark = PER_FILE
    try:
        while writer.written < TOTAL and writer.error is None:
            if writer.written < mark:
                time.sleep(0.0005)
                continue
            writer._shift()
            shutil.copyfile(writer.path, f"{writer.path}.1")
            os.truncate(writer.path, 0)
            writer.rotations += 1
            mark += PER_FILE
    except BaseException as exc:
        writer.error = exc


def placed_in_files(app: Path) -> dict[int, tuple[int, bytes]]:
    """seq → (offset, line) of every line the log files hold (the live one and its copies)."""
    placed: dict[int, tuple[int, bytes]] = {}
    for f in [app, *app.parent.glob(app.name + ".*")]:
        offset = 0
        for line in f.read_bytes().splitlines(keepends=True):
            m = re.search(rb'"msg": "request (\d+) failed"', line)
            assert m and line.endswith(b"\n"), (f, offset, line)
            placed[int(m.group(1))] = (offset, line[:-1])
            offset += len(line)
    return placed


class Plugin:
    """The plugin as a child process; a thread collects its stdout."""

    def __init__(self, config: Path, stderr: Path) -> None:
        cmd = [sys.executable, "-m", "errloop.telegraf.errlog.plugin", "--config", str(config)]
        self.err = open(stderr, "ab")
        self.p = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self.err)
        self.lines: list[bytes] = []
        self.cut = b""
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self) -> None:
        assert self.p.stdout is not None
        for raw in self.p.stdout:
            self.lines.append(raw)

    def sigterm(self) -> int:
        self.p.send_signal(signal.SIGTERM)
        rc = self.p.wait(timeout=30)
        self.reader.join(timeout=10)
        self.err.close()
        if self.lines and not self.lines[-1].endswith(b"\n"):
            # the shim gave up its last write (see below): a cut line Telegraf would reject
            self.cut = self.lines.pop()
        return rc

    def kill(self) -> None:
        if self.p.poll() is None:
            self.p.kill()
            self.p.wait()
        self.err.close()


def seqs_of(lines: list[bytes]) -> list[tuple[int, str, str]]:
    """(seq, event_id, source) of every event written."""
    out = []
    for raw in lines:
        pt = parse_line(raw.decode().rstrip("\n"))
        if pt.measurement != contract.EVENTS:
            continue
        m = SEQ.match(str(pt.fields["message"]))
        assert m, pt.fields["message"]
        out.append((int(m.group(1)), str(pt.fields["event_id"]), str(pt.fields["source"])))
    return out


@pytest.mark.parametrize("kind", ["rename", "copytruncate", "logrotate"])
def test_100_rotations_and_a_restart_lose_and_repeat_nothing(tmp_path: Path, kind: str) -> None:
    logs = tmp_path / "logs"
    logs.mkdir()
    app = logs / "app.log"
    app.touch()
    cfg = tmp_path / "errlog.toml"
    cfg.write_text(
        "[[inputs.errlog]]\n"
        f'files = ["{logs}/*.log"]\n'
        f'offsets_file = "{tmp_path}/state/offsets.json"\n'
        "from_beginning = true\n"
        'poll_interval = "100ms"\n'
        f'host = "{HOST}"\n'
        'stats_interval = "1h"\n'
    )
    stderr = tmp_path / "plugin.stderr"
    emitted: list[bytes] = []
    plugin = Plugin(cfg, stderr)
    try:
        deadline = time.monotonic() + 20
        while b"following" not in stderr.read_bytes():
            assert time.monotonic() < deadline and plugin.p.poll() is None, stderr.read_text()
            time.sleep(0.02)
        writer = Writer(app, kind)
        wt = threading.Thread(target=writer.run, daemon=True)
        wt.start()
        rt = threading.Thread(target=logrotate, args=(writer,), daemon=True)
        if kind == "logrotate":
            rt.start()
        while writer.written < TOTAL // 2 and wt.is_alive():
            time.sleep(0.01)
        assert plugin.sigterm() == 0, stderr.read_text()
        emitted += plugin.lines
        plugin = Plugin(cfg, stderr)  # while the writer goes on
        wt.join(timeout=60)
        if kind == "logrotate":
            rt.join(timeout=10)
            writer.placed = placed_in_files(app)
        assert writer.error is None, writer.error
        assert writer.written == TOTAL and TOTAL // PER_FILE - 2 <= writer.rotations <= TOTAL // PER_FILE - 1
        deadline = time.monotonic() + 20
        while len(plugin.lines) + len(emitted) < len(writer.placed) and time.monotonic() < deadline:
            time.sleep(0.1)
        time.sleep(1.5)  # late duplicates would show up here
        assert plugin.sigterm() == 0, stderr.read_text()
        emitted += plugin.lines
    finally:
        plugin.kill()

    (tmp_path / "emitted.lp").write_bytes(b"".join(emitted))  # for a look after a failure
    got = seqs_of(emitted)
    counts = Counter(seq for seq, _, _ in got)
    lost = sorted(set(writer.placed) - set(counts))
    duplicated = sorted(seq for seq, n in counts.items() if n > 1)
    window = TOTAL - len(writer.placed)  # lines in no file at all: logrotate's copy-to-truncate window
    # errlog may have read some of those from app.log before the truncation: delivered, not invented
    in_no_file = set(counts) - set(writer.placed)
    assert kind == "logrotate" or not in_no_file
    print(
        f"{kind}: {TOTAL} lines, {writer.rotations} rotations: lost {len(lost)}, duplicated {len(duplicated)}"
        f" (in no file, lost by the rotation itself: {window}, of which errlog read {len(in_no_file)} before)"
    )
    # The shim gives up writing a batch when a stop came more than its stop timeout (4 s) before and
    # the pipe is full: on a very busy machine the last batch at the SIGTERM is then cut (and sent
    # again after the restart, as after a hard kill). That is the shim's, not the tailer's: say so.
    gave_up = b"blocked past the stop timeout" in stderr.read_bytes()
    assert not lost and not duplicated, (
        f"{kind}: lost {len(lost)} (first {lost[:20]}), duplicated {len(duplicated)} (first {duplicated[:20]})"
        + ("; the shim gave up its last write at the SIGTERM (stop timeout), cutting a line" if gave_up else "")
    )
    wrong_ids = [
        seq
        for seq, eid, source in got
        if source != str(app) or (seq in writer.placed and eid != event_id(HOST, str(app), *writer.placed[seq]))
    ]
    assert not wrong_ids, f"{len(wrong_ids)} events without the id of their place in app.log, first {wrong_ids[:10]}"
