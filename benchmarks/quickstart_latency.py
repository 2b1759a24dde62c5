"""Request → closed-loop CSV row latency of the quick-start scenario on the real stack.

    .venv/bin/python benchmarks/quickstart_latency.py [--requests 20]

Starts a private TICK stack (free loopback ports, temporary state), errloop serve,
FakeWeCom and the demo Go service, deploys the bundled policy, sends the scenario's
request N times one after the other and reports p50 / p95 / max of request → CSV row,
plus the median time spent in each stage (from the CSV row's stage times). The design
document promises ≤ 3 s; the official parts alone did the same path in ~0.1 s here
(TICK-STACK.md). A benchmark measures; nothing here asserts.
"""

from __future__ import annotations

import argparse
import itertools
import platform
import statistics
import tempfile
from datetime import datetime
from pathlib import Path

from errloop.deploy.demo import build_service, serve
from errloop.deploy.demo.receiver import FakeWeCom
from errloop.deploy.demo.scenario import close_one_loop
from errloop.deploy.generate import bundled_httppost_conf, generate
from errloop.deploy.install import deploy, load_policies
from errloop.deploy.kapacitor import KapacitorClient
from errloop.deploy.serve.app import ServeConfig, Server
from errloop.deploy.stack import run
from errloop.rules.policy import quickstart_policy_path

STAGES = ("logged_at", "ingested_at", "classified_at", "alerted_at", "recorded_at")


def ms_between(row: dict[str, str], a: str, b: str) -> float:
    return (datetime.fromisoformat(row[b]) - datetime.fromisoformat(row[a])).total_seconds() * 1000


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--requests", type=int, default=20)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="errloop-bench-") as tmp:
        cfg = run.StackConfig.private(
            Path(tmp) / "stack",
            kapacitor_extra=bundled_httppost_conf(),
        )
        run.up(cfg, say=lambda _: None)
        wecom = FakeWeCom().start()
        server = Server(ServeConfig(port=0, influx_url=cfg.influx_url, csv_path=Path(tmp) / "closed.csv"))
        server.start()
        try:
            with serve(build_service(say=lambda _: None), cfg.applog_dir / "user-api.log") as service:
                bundle = generate(load_policies([quickstart_policy_path()]), serve_url=server.url)
                with KapacitorClient(cfg.kapacitor_url) as client:
                    deploy(client, bundle, env={"ERRLOOP_WECOM_URL": wecom.url}, say=lambda _: None)
                close_one_loop(service.url, server.config.csv_path)  # warm-up: UDF process, connections
                loops = [close_one_loop(service.url, server.config.csv_path) for _ in range(args.requests)]
        finally:
            server.stop()
            wecom.stop()
            run.down(cfg, say=lambda _: None)
    ms = sorted(lp.request_to_csv_ms for lp in loops)
    p95 = ms[min(len(ms) - 1, round(0.95 * (len(ms) - 1)))]
    print(f"machine: {platform.machine()} {platform.system()} {platform.release()}, python {platform.python_version()}")
    p50 = statistics.median(ms)
    print(f"request -> CSV row over {len(ms)} requests: p50 {p50:.0f} ms, p95 {p95:.0f} ms, max {ms[-1]:.0f} ms")
    print("median time per stage (from the CSV row's stage times):")
    for a, b in itertools.pairwise(STAGES):
        print(f"  {a[:-3]:>10} -> {b[:-3]:<10} {statistics.median(ms_between(lp.row, a, b) for lp in loops):7.1f} ms")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
