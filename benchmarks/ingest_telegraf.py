"""Lines/s into InfluxDB under real Telegraf: the errlog plugin against Telegraf's own inputs.tail + json.

    .venv/bin/python benchmarks/ingest_telegraf.py [--lines 100000] [--tail-strings] [--replay]
        [--content-encoding identity]

Starts a private stack (InfluxDB and Kapacitor on free loopback ports, temporary state,
no stack Telegraf), writes one file of N zap JSON error lines (the real error lines of
tests/telegraf/data/demo_service.jsonl and golog/zap_json.*, parameters varied, every
``ts`` distinct), then runs the stack's own Telegraf binary twice, one after the other,
each with its own config and into its own database:

- errlog: ``[[inputs.execd]]`` running ``python -m errloop.telegraf.errlog.plugin`` (full
  normalisation, one event per line), ``data_format = "influx"``;
- tail: ``[[inputs.tail]]`` with ``data_format = "json"`` (``json_time_key = "ts"``, numbers
  only unless ``--tail-strings`` adds msg/error/caller/level/trace_id as string fields) and
  ``max_undelivered_lines = 20000`` (TICK-STACK.md: ~82k lines/s; ~9.9k with the default 1000).

With ``--replay``, a third run shows what Telegraf and InfluxDB alone take to store the very
points errlog makes: ``[[inputs.execd]]`` running a copy of the events errlog wrote for this
file (encoded beforehand, in this process) to stdout, no Python work per line. errlog can be
no faster than that.

All: ``metric_batch_size = 5000``, ``flush_interval = "100ms"``, a metric buffer that holds
all N. The time is from Telegraf's start until a ``count`` query finds all N points
(polled every 100 ms); "steady" is from the first stored point to the last. A benchmark
measures; nothing here asserts.
"""

from __future__ import annotations

import argparse
import json
import random
import shlex
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import httpx
from ingest_normaliser import load_blocks, machine, variations

from errloop.deploy.stack import build, run
from errloop.rules import contract
from errloop.telegraf.errlog.config import load_config
from errloop.telegraf.errlog.plugin import ErrlogPlugin

SOURCES = ("demo_service:", "zap_json.")
BATCH = 5000


def zap_error_lines(n: int, seed: int) -> list[str]:
    """N real zap JSON error lines with their parameters varied and ``ts`` 1 ms apart (distinct points)."""
    rng = random.Random(seed)  # noqa: S311 - test data, not secrets
    templates = []
    for block in load_blocks():
        one_line = "\n" not in block.text.rstrip("\n")  # not the captures of a logger's Panic and its dump
        if block.name.startswith(SOURCES) and one_line and json.loads(block.text).get("level") == "error":
            templates.append(block.text.rstrip("\n"))
    rules = variations(rng)
    base = 1_795_000_000.0
    out = []
    for i in range(n):
        text = rng.choice(templates)
        for pattern, new in rules:
            text = pattern.sub(new, text)
        record = json.loads(text)
        record["ts"] = round(base + i / 1000, 3)
        out.append(json.dumps(record, separators=(",", ":")) + "\n")
    return out


def agent_conf(influx_url: str, database: str, buffer: int, encoding: str) -> str:
    return f"""[agent]
  interval = "10s"
  flush_interval = "100ms"
  flush_jitter = "0s"
  metric_batch_size = {BATCH}
  metric_buffer_limit = {buffer}
  omit_hostname = true

[[outputs.influxdb]]
  urls = ["{influx_url}"]
  database = "{database}"
  skip_database_creation = true
  timeout = "10s"
  content_encoding = "{encoding}"
"""


def errlog_confs(tmp: Path, log: Path, influx_url: str, database: str, buffer: int, encoding: str) -> tuple[str, str]:
    errlog_toml = f"""[[inputs.errlog]]
  files = [{json.dumps(str(log))}]
  from_beginning = true
  poll_interval = "50ms"
  env = "bench"
  host = "bench"
  offsets_file = {json.dumps(str(tmp / "errlog-offsets.json"))}
  stats_interval = "1h"
"""
    cmd = [sys.executable, "-m", "errloop.telegraf.errlog.plugin", "--config", str(tmp / "errlog.toml")]
    return errlog_toml, agent_conf(influx_url, database, buffer, encoding) + execd_conf(cmd, "1s")


def execd_conf(cmd: list[str], restart_delay: str) -> str:
    """An ``[[inputs.execd]]`` running ``cmd`` in push mode, line protocol on its stdout."""
    return f"""
[[inputs.execd]]
  command = {json.dumps(cmd)}
  signal = "none"
  restart_delay = "{restart_delay}"
  data_format = "influx"
"""


REPLAY = """import shutil, sys
with open(sys.argv[1], "rb") as f:
    shutil.copyfileobj(f, sys.stdout.buffer)
sys.stdout.flush()
sys.stdin.read()
"""


def replay_conf(tmp: Path, influx_url: str, database: str, buffer: int, encoding: str) -> str:
    """execd copying the pre-encoded events to Telegraf, then waiting for the stop (EOF on stdin)."""
    cmd = [sys.executable, "-c", REPLAY, str(tmp / "events.lp")]
    return agent_conf(influx_url, database, buffer, encoding) + execd_conf(cmd, "1h")


def encode_events(log: Path, tmp: Path, n: int) -> Path:
    """The lines errlog writes for ``log``, made in this process (for ``--replay``)."""
    conf = tmp / "replay-errlog.toml"
    conf.write_text(
        f"[[inputs.errlog]]\nfiles = [{json.dumps(str(log))}]\nfrom_beginning = true\n"
        'env = "bench"\nhost = "bench"\nstats_interval = "1h"\n'
    )
    plugin = ErrlogPlugin(load_config(str(conf)))
    out = tmp / "events.lp"
    written = 0
    with out.open("w") as f:
        while written < n:
            lines = [line for line in plugin.gather() if line.startswith(contract.EVENTS + ",")]
            if not lines:
                break
            f.writelines(line + "\n" for line in lines)
            written += len(lines)
    plugin.close()
    return out


def tail_conf(log: Path, influx_url: str, database: str, buffer: int, encoding: str, strings: bool) -> str:
    string_fields = '\n  json_string_fields = ["msg", "error", "caller", "level", "trace_id"]' if strings else ""
    return (
        agent_conf(influx_url, database, buffer, encoding)
        + f"""
[[inputs.tail]]
  files = [{json.dumps(str(log))}]
  initial_read_offset = "beginning"
  max_undelivered_lines = 20000
  path_tag = ""
  data_format = "json"
  json_time_key = "ts"
  json_time_format = "unix"{string_fields}
"""
    )


@dataclass(frozen=True)
class Result:
    name: str
    stored: int
    total_s: float  # Telegraf start → all N stored
    first_s: float  # Telegraf start → first point stored

    def line(self, n: int) -> str:
        steady = self.total_s - self.first_s
        return (
            f"{self.name:<7} {self.stored}/{n} stored  {n / self.total_s:>9,.0f} lines/s from start "
            f"({self.total_s:.2f} s; first point after {self.first_s:.2f} s, "
            f"{n / steady if steady > 0 else float('inf'):,.0f} lines/s from then)"
        )


def count(influx_url: str, database: str, query: str) -> int:
    resp = httpx.get(f"{influx_url}/query", params={"db": database, "q": query}, timeout=30.0)
    resp.raise_for_status()
    series = resp.json()["results"][0].get("series")
    return int(series[0]["values"][0][1]) if series else 0


def run_telegraf(
    name: str, telegraf: Path, conf: Path, influx_url: str, database: str, query: str, n: int, timeout_s: float
) -> Result:
    with (conf.parent / f"{name}.telegraf.log").open("w") as log:
        t0 = time.monotonic()
        proc = subprocess.Popen([str(telegraf), "--config", str(conf)], stdout=log, stderr=subprocess.STDOUT)
        first = 0.0
        stored = 0
        try:
            while time.monotonic() - t0 < timeout_s:
                stored = count(influx_url, database, query)
                now = time.monotonic() - t0
                if stored and not first:
                    first = now
                if stored >= n:
                    return Result(name, stored, now, first)
                if proc.poll() is not None:
                    break
                time.sleep(0.1)
            return Result(name, stored, time.monotonic() - t0, first)
        finally:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--lines", type=int, default=100_000)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--timeout", type=float, default=300.0, help="seconds to wait for each run")
    ap.add_argument("--tail-strings", action="store_true", help="tail+json also stores msg/error/caller/… strings")
    ap.add_argument(
        "--content-encoding",
        default="gzip",
        choices=("gzip", "identity"),
        help="content_encoding of outputs.influxdb in every run (default: Telegraf's own, gzip)",
    )
    ap.add_argument("--replay", action="store_true", help="also time Telegraf + InfluxDB on errlog's own points")
    ap.add_argument("--keep", type=Path, help="keep the logs and configs in this directory")
    args = ap.parse_args()
    n = args.lines

    print(f"command: {shlex.join([Path(sys.executable).name, *sys.argv])}")
    print(f"machine: {machine()}")
    with tempfile.TemporaryDirectory(prefix="errloop-ingest-") as tmp_:
        tmp = args.keep or Path(tmp_)
        tmp.mkdir(parents=True, exist_ok=True)
        cfg = run.StackConfig.private(
            tmp / "stack",
            with_telegraf=False,
        )
        log = tmp / "zap-errors.log"
        log.write_text("".join(zap_error_lines(n, args.seed)))
        print(f"file: {n} zap JSON error lines, {log.stat().st_size / n:.0f} bytes/line on average")
        telegraf = build.binaries().telegraf
        buffer = max(100_000, n + BATCH)
        run.up(cfg, say=lambda _: None)
        try:
            results = []
            for db in ("bench_tail", "bench_errlog", "bench_replay"):
                run.influx_query(cfg, f'CREATE DATABASE "{db}"', method="POST")

            conf = tmp / "tail.conf"
            conf.write_text(
                tail_conf(log, cfg.influx_url, "bench_tail", buffer, args.content_encoding, args.tail_strings)
            )
            results.append(
                run_telegraf(
                    "tail",
                    telegraf,
                    conf,
                    cfg.influx_url,
                    "bench_tail",
                    'SELECT count("status") FROM "tail"',
                    n,
                    args.timeout,
                )
            )

            errlog_toml, telegraf_conf = errlog_confs(
                tmp, log, cfg.influx_url, "bench_errlog", buffer, args.content_encoding
            )
            (tmp / "errlog.toml").write_text(errlog_toml)
            conf = tmp / "errlog.conf"
            conf.write_text(telegraf_conf)
            query = f'SELECT count("event_id") FROM "{contract.EVENTS}"'  # noqa: S608 - a constant name
            results.append(
                run_telegraf("errlog", telegraf, conf, cfg.influx_url, "bench_errlog", query, n, args.timeout)
            )
            if args.replay:
                encode_events(log, tmp, n)
                conf = tmp / "replay.conf"
                conf.write_text(replay_conf(tmp, cfg.influx_url, "bench_replay", buffer, args.content_encoding))
                results.append(
                    run_telegraf("replay", telegraf, conf, cfg.influx_url, "bench_replay", query, n, args.timeout)
                )
        finally:
            run.down(cfg, say=lambda _: None)

    for r in results:
        print(r.line(n))
    tail, errlog = results[:2]
    print(f"ratio errlog / tail+json: {tail.total_s / errlog.total_s:.2f}x from start (goal >= 0.5x)")
    steady_tail, steady_errlog = tail.total_s - tail.first_s, errlog.total_s - errlog.first_s
    if steady_tail > 0 and steady_errlog > 0:
        print(f"ratio errlog / tail+json: {steady_tail / steady_errlog:.2f}x from the first stored point")
    if args.replay:
        replay = results[2]
        print(f"ratio replay / tail+json: {tail.total_s / replay.total_s:.2f}x from start (Telegraf + InfluxDB alone)")
        print(f"errlog / replay: {replay.total_s / errlog.total_s:.2f}x (1.0 = errlog costs nothing)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
