"""UDF throughput inside the real Kapacitor: errloop's UDFs against Kapacitor's own Python mirror.

    .venv/bin/python benchmarks/udf_kapacitor.py [--points 200000] [--batch 5000]

Starts a private Kapacitor (and the InfluxDB it needs) on free loopback ports whose
``kapacitor.conf`` declares errloop's UDFs and, as the baseline, Kapacitor v1.8.3's own
Python agent with its mirror example (from the Go module cache, in the venv that
benchmarks/udf_harness.py creates with the protobuf version the agent pins; nothing is
copied). For each UDF, and for no UDF at all, it defines the stream task
``from → [@udf] → count``, writes the same errloop_events points to
``/kapacitor/v1/write`` in batches, and times until the node before ``count`` has
emitted every point (the task's node stats); it also reads the CPU per point of
kapacitord and of the UDF process (/proc). TICK-STACK.md measured ~100k points/s
with a do-nothing framing-level UDF and ~82k with the official mirror on this kind of
machine. The issue's goal: the task with ``@errloop_classify`` and the default rules at
least as fast as the same task with the official mirror. A benchmark measures; nothing
here asserts.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import NamedTuple

import httpx

sys.path.insert(0, str(Path(__file__).parent))
import udf_harness

from errloop.deploy.kapacitor import KapacitorClient
from errloop.deploy.stack import run
from errloop.rules import contract
from errloop.telegraf.lineproto import encode

UDFS = ("none", "errloop_mirror", "errloop_classify", "official_mirror")


def official_conf() -> str:
    target, _pin = udf_harness.official_target(say=lambda line: print(line, flush=True))
    return f"""
[udf.functions.official_mirror]
  prog = {json.dumps(target.argv[0])}
  args = {json.dumps(target.argv[1:])}
  timeout = "10s"
"""


def payloads(points: int, batch: int, pool: int, measurement: str) -> list[bytes]:
    events = udf_harness.make_events(pool)
    t0 = time.time_ns() - points * 1000
    lines = []
    for i in range(points):
        tags, fields = contract.split(events[i % pool], contract.EVENT_TAGS)
        lines.append(encode(measurement, tags, fields, t0 + i * 1000))
    return ["\n".join(lines[i : i + batch]).encode() for i in range(0, points, batch)]


def _children(pid: int) -> list[int]:
    """Processes whose parent is ``pid`` (the UDF processes Kapacitor started)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                found.append(int(entry.name))
    return found


class Run(NamedTuple):
    rate: float  # points per second through the UDF node
    kapacitor_us: float  # kapacitord's CPU per point (all its threads)
    udf_us: float  # the UDF process's CPU per point (0 without a UDF)


def run_one(client: KapacitorClient, cfg: run.StackConfig, udf: str, bodies: list[bytes], points: int) -> Run:
    measurement = f"bench_{udf}"
    node = f"@{udf}()\n    " if udf != "none" else ""
    task_id = f"bench-{udf}"
    script = f"""dbrp "errloop"."autogen"
stream
    |from().measurement('{measurement}')
    {node}|count('event_id')
"""
    client.define_task(task_id, script, status="enabled")
    client.wait_executing(task_id)
    watch = udf if udf != "none" else "from"
    kapacitord = run.running_pid(cfg, "kapacitord")
    assert kapacitord is not None
    udf_pids = _children(kapacitord)
    udf_cpu0 = sum(udf_harness.cpu_seconds(pid) for pid in udf_pids)
    kap_cpu0 = udf_harness.cpu_seconds(kapacitord)
    start = time.monotonic()
    with httpx.Client(timeout=60) as http:
        for body in bodies:
            resp = http.post(
                f"{cfg.kapacitor_url}/kapacitor/v1/write",
                params={"db": contract.DATABASE, "rp": contract.RETENTION_POLICY, "precision": "ns"},
                content=body.replace(b"errloop_events", measurement.encode()),
            )
            resp.raise_for_status()
    emitted = 0
    deadline = time.monotonic() + 600
    while emitted < points and time.monotonic() < deadline:
        task = client.get_task(task_id) or {}
        if not task.get("executing", True):
            print(f"  {udf}: the task stopped: {task.get('error', '')}", flush=True)
            break
        for name, stats in task.get("stats", {}).get("node-stats", {}).items():
            if name.startswith(watch):
                emitted = int(stats.get("emitted", 0))
        time.sleep(0.02)
    elapsed = time.monotonic() - start
    kap_cpu = udf_harness.cpu_seconds(kapacitord) - kap_cpu0
    udf_cpu = sum(udf_harness.cpu_seconds(pid) for pid in udf_pids) - udf_cpu0
    client.delete_task(task_id)
    if emitted < points:
        print(f"  {udf}: only {emitted} of {points} points came out", flush=True)
    per = 1e6 / max(emitted, 1)
    return Run(emitted / elapsed, kap_cpu * per, udf_cpu * per)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--points", type=int, default=200_000)
    ap.add_argument("--batch", type=int, default=5000)
    ap.add_argument("--pool", type=int, default=udf_harness.POOL, help="distinct events, cycled")
    ap.add_argument("--rounds", type=int, default=1)
    args = ap.parse_args()
    extra = official_conf()
    bodies = payloads(args.points, args.batch, args.pool, "errloop_events")
    runs: dict[str, list[Run]] = {u: [] for u in UDFS}
    with tempfile.TemporaryDirectory(prefix="errloop-bench-") as tmp:
        cfg = run.StackConfig.private(
            Path(tmp) / "stack",
            with_telegraf=False,
            kapacitor_extra=extra,
            # the official agent's mirror.py fails Kapacitor's snapshot request under Python 3
            # ("expected bytes, str found"), which stops its task: no snapshot while measuring
            snapshot_interval="1h",
        )
        run.up(cfg, say=lambda _: None)
        try:
            with KapacitorClient(cfg.kapacitor_url, timeout=60) as client:
                for _ in range(args.rounds):
                    for udf in UDFS:
                        one = run_one(client, cfg, udf, bodies, args.points)
                        runs[udf].append(one)
                        print(
                            f"  {udf:17} {one.rate:10,.0f} points/s   CPU per point: kapacitord "
                            f"{one.kapacitor_us:5.1f} us, UDF {one.udf_us:5.1f} us",
                            flush=True,
                        )
        finally:
            run.down(cfg, say=lambda _: None)
    med = {u: statistics.median(r.rate for r in rs) for u, rs in runs.items()}
    print(
        f"machine: {udf_harness.cpu_model()}, nproc {len(__import__('os').sched_getaffinity(0))}, "
        f"python {platform.python_version()}"
    )
    print(f"command: {' '.join(sys.argv)}")
    print(f"{args.points} points, batches of {args.batch}, pool {args.pool}, median of {args.rounds} round(s):")
    for u in UDFS:
        kap = statistics.median(r.kapacitor_us for r in runs[u])
        cpu = statistics.median(r.udf_us for r in runs[u])
        print(f"  {u:17} {med[u]:10,.0f} points/s   CPU per point: kapacitord {kap:5.1f} us, UDF {cpu:5.1f} us")
    base = med["official_mirror"]
    for u in ("errloop_mirror", "errloop_classify"):
        print(f"ratio {u} / official_mirror: {med[u] / base:.2f}x")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
