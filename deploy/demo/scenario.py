"""The quick-start scenario of the design document, end to end through a real TICK stack.

``errloop demo`` = :func:`main`: the local stack, errloop serve, FakeWeCom and the demo
Go service are started, the bundled quick-start policy is deployed, and the scenario's
request is sent; the loop is then followed stage by stage until its row is in the CSV.
The end-to-end test drives the same pieces (:func:`errloop.deploy.demo.serve`, :func:`close_one_loop`).
"""

from __future__ import annotations

import contextlib
import csv
import io
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from errloop.deploy.demo.receiver import FakeWeCom, Message
from errloop.rules.contract import STAGES

SCENARIO_PATH = "/api/v1/users"
SCENARIO_BODY = {"name": "", "email": "invalid"}
SERVICE = "user-api"
DEFAULT_CSV = Path("/tmp/errloop-closed.csv")


class DemoError(RuntimeError):
    pass


def csv_rows(path: Path) -> list[dict[str, str]]:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return []
    return list(csv.DictReader(io.StringIO(text)))


@dataclass
class Loop:
    """One scenario request followed through the loop."""

    trace_id: str
    status: int
    sent_ns: int
    row: dict[str, str] = field(default_factory=dict)
    row_ns: int = 0

    @property
    def event_id(self) -> str:
        return self.row.get("event_id", "")

    @property
    def request_to_csv_ms(self) -> float:
        return (self.row_ns - self.sent_ns) / 1e6


def close_one_loop(service_url: str, csv_path: Path, timeout: float = 10.0) -> Loop:
    """Send the scenario's request; wait until errloop serve has appended its CSV row."""
    before = len(csv_rows(csv_path))
    sent = time.time_ns()
    resp = httpx.post(f"{service_url}{SCENARIO_PATH}", json=SCENARIO_BODY, timeout=5.0)
    loop = Loop(resp.headers.get("X-Trace-Id", ""), resp.status_code, sent)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        rows = csv_rows(csv_path)
        if len(rows) > before:
            loop.row_ns = time.time_ns()
            loop.row = rows[before]
            return loop
        time.sleep(0.002)
    raise DemoError(f"no closed-loop row appeared in {csv_path} within {timeout:.0f} s")


def _show(say: Callable[[str], None], title: str, body: str = "") -> None:
    say(f"\n== {title}")
    for line in body.splitlines():
        say(f"   {line}")


def main(keep: bool = False, requests: int = 1, say: Callable[[str], None] = print) -> int:
    """``errloop demo``: run the quick-start scenario; leave nothing running unless ``keep``."""
    from errloop.deploy.demo import build_service
    from errloop.deploy.demo import serve as serve_service
    from errloop.deploy.generate import bundled_httppost_conf, generate
    from errloop.deploy.install import DeployError, deploy, load_policies
    from errloop.deploy.kapacitor import KapacitorClient
    from errloop.deploy.serve.app import ServeConfig, Server
    from errloop.deploy.serve.trace import fetch_trace, format_trace
    from errloop.deploy.stack import run
    from errloop.rules.policy import quickstart_policy_path

    cfg = run.StackConfig(kapacitor_extra=bundled_httppost_conf())
    csv_path = Path(os.environ.get("ERRLOOP_CSV", str(DEFAULT_CSV)))
    started: list[Callable[[], None]] = []
    stack = contextlib.ExitStack()
    started.append(stack.close)
    try:
        say('errloop demo — the quick start: POST /api/v1/users {"name":"","email":"invalid"}')
        _show(say, "1. TICK stack (InfluxDB, Kapacitor, Telegraf) on loopback")
        already_up = all(run.running_pid(cfg, program) is not None for program in run.PROGRAMS)
        run.up(cfg, say=say)
        if not keep and not already_up:  # a stack someone else started stays up
            started.append(lambda: run.down(cfg, say=lambda _: None))
        wecom = FakeWeCom().start()
        started.append(wecom.stop)
        serve = Server(
            ServeConfig(port=9100, influx_url=cfg.influx_url, csv_path=csv_path, state_dir=cfg.state_dir / "serve")
        )
        serve.start()
        started.append(serve.stop)
        say(f"   errloop serve   {serve.url}   (CSV {csv_path})")
        say(f"   FakeWeCom       {wecom.url}")
        _show(say, "2. demo Go service (zap + go-playground/validator)")
        binary = build_service(say=lambda line: say(f"   {line}"))
        service = stack.enter_context(serve_service(binary, cfg.applog_dir / f"{SERVICE}.log", addr="127.0.0.1:8080"))
        say(f"   {SERVICE} on {service.url}, logging to {service.log_file}")
        _show(say, "3. deploy the bundled policy through Kapacitor's API")
        bundle = generate(load_policies([quickstart_policy_path()]), serve_url=serve.url)
        with KapacitorClient(cfg.kapacitor_url) as client:
            deploy(client, bundle, env={**os.environ, "ERRLOOP_WECOM_URL": wecom.url}, say=lambda s: say(f"   {s}"))
        for i in range(max(1, requests)):
            loop = close_one_loop(service.url, csv_path)
            if i == 0 or i == requests - 1:
                _report(say, loop, wecom, serve.url, fetch_trace, format_trace, cfg.influx_url)
        if keep:
            say("\neverything is still running (--keep); stop it with: errloop stack down, and Ctrl-C here")
            _wait_forever()
        return 0
    except (DemoError, DeployError, run.StackError, RuntimeError, TimeoutError) as e:
        say(f"\ndemo failed: {e}")
        return 1
    finally:
        for stop in reversed(started):
            try:
                stop()
            except Exception as e:
                say(f"   (while stopping: {e})")


def _report(
    say: Callable[[str], None],
    loop: Loop,
    wecom: FakeWeCom,
    serve_url: str,
    fetch_trace: Callable[[str, str], dict[str, Any]],
    format_trace: Callable[[dict[str, Any]], str],
    influx_url: str,
) -> None:
    row = loop.row
    _show(say, "4. request", f"POST {SCENARIO_PATH} -> {loop.status}   trace_id {loop.trace_id}")
    _show(
        say,
        "5. captured, classified",
        f"event_id   {row.get('event_id')}\n"
        f"error_type {row.get('error_type')}\n"
        f"top frame  {row.get('top_frame')}\n"
        f"class      {row.get('error_class')} / {row.get('category')}   rule {row.get('rule_id')}",
    )
    _show(say, "6. fix suggestion", row.get("suggestion", ""))
    msg: Message | None = wecom.wait_for(row.get("event_id", "?"), timeout=5.0)
    _show(say, "7. WeCom message (as FakeWeCom received it)", msg.content if msg else "(none arrived)")
    _show(say, f"8. closed-loop CSV row ({DEFAULT_CSV.name})", "\n".join(f"{k:14} {v}" for k, v in row.items()))
    trace: dict[str, Any] = {}
    deadline = time.monotonic() + 5.0  # influxDBOut flushes classified/alert points every second
    while time.monotonic() < deadline:
        try:
            trace = fetch_trace(influx_url, loop.event_id)
        except (LookupError, ValueError, httpx.HTTPError):
            trace = {}
        if trace and not trace.get("missing") and len(trace.get("stages", [])) == len(STAGES):
            break
        time.sleep(0.2)
    title = f"9. trace   (also GET {serve_url}/api/v1/events/{loop.event_id}/trace)"
    _show(say, title, format_trace(trace) if trace else "(not readable yet)")
    say(f"\nrequest -> CSV row: {loop.request_to_csv_ms:.0f} ms (the design document promises ≤ 3000 ms)")


def _wait_forever() -> None:
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        pass
