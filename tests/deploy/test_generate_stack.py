"""Generated metric and SLO tasks against the real Kapacitor and InfluxDB.

Every script the generator writes is defined, enabled and seen executing; request
metrics written into InfluxDB make the multi-window burn-rate alert fire for a busy
service burning its budget, and stay silent for a quiet one (the minimum-request guard)
and for one burning below the factor; classified events written through Kapacitor
become errors_total and error_duration_ms percentiles in errloop_metrics.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from kapacitor_waits import poll, topic_levels

from errloop.deploy.generate import (
    BURN_RATE,
    ERROR_DURATION_PERCENTILES,
    ERRORS_TOTAL,
    SLI_TOTAL,
    generate,
    metrics_task_id,
    slo_task_id,
    slo_topic,
)
from errloop.deploy.install import load_policies
from errloop.deploy.kapacitor import KapacitorClient
from errloop.deploy.stack import run
from errloop.deploy.stack.run import StackConfig
from errloop.rules import contract
from errloop.rules.policy import Policy, bundled_policy_paths, load_policy

pytestmark = pytest.mark.stack

SLO_POLICY = """apiVersion: errloop/v1
kind: Policy
metadata: {name: NAME}
spec:
  service: 'SERVICE'
  alert: {threshold: 1, window: 1m}
  metrics:
    database: DATABASE
    measurement: http_requests
  slo:
    window: WINDOW
    success_rate: 99
    latency: {objective: 99, threshold: 300ms}
    min_requests: 100
"""


def slo_policy(tmp_path: Path, name: str, database: str, window: str = "1d", service: str = "*") -> Policy:
    text = SLO_POLICY.replace("NAME", name).replace("DATABASE", database).replace("WINDOW", window)
    path = tmp_path / f"{name}.yaml"
    path.write_text(text.replace("SERVICE", service))
    return load_policy(path.read_text(), str(path))


@pytest.fixture
def client(tick_stack: StackConfig) -> Iterator[KapacitorClient]:
    with KapacitorClient(tick_stack.kapacitor_url) as c:
        yield c


def test_every_generated_script_is_accepted_and_executes(
    client: KapacitorClient, tick_stack: StackConfig, tmp_path: Path
) -> None:
    policies = [
        *load_policies(bundled_policy_paths()),
        slo_policy(tmp_path, "gen-month", "telegraf", "30d", service="orders"),
        slo_policy(tmp_path, "gen-day", "telegraf", "1d"),
        slo_policy(tmp_path, "gen-glob", "telegraf", "1d", service="check*-v2"),  # a glob: regexes everywhere
    ]
    bundle = generate(policies)
    kinds = {t.id.rsplit("-", 1)[-1] for t in bundle.tasks}
    assert {"metrics", "slo"} <= kinds
    slo_ids = {slo_task_id(p) for p in policies if p.slo is not None}
    assert len(slo_ids) == 4  # the bundled example and the three above
    defined = []
    try:
        for task in bundle.tasks:
            tid = f"gentest-{task.id}"
            client.define_task(tid, task.script, status="enabled")
            defined.append(tid)
            got = client.wait_executing(tid, timeout=20)
            assert got["executing"] and not got["error"], (task.id, got["error"])
            assert got["type"] == (
                "batch" if task.id in slo_ids or task.id.endswith(("-decide", "-rate")) else "stream"
            ), task.id
    finally:
        for tid in defined:
            client.delete_task(tid)


def _write_influx(cfg: StackConfig, db: str, lines: list[str]) -> None:
    run.influx_query(cfg, f'CREATE DATABASE "{db}"', method="POST")
    for i in range(0, len(lines), 5000):
        resp = httpx.post(
            f"{cfg.influx_url}/write", params={"db": db, "precision": "s"}, content="\n".join(lines[i : i + 5000])
        )
        assert resp.status_code == 204, resp.text


def test_a_burn_above_the_factor_fires_and_a_quiet_service_does_not_page(
    client: KapacitorClient, tick_stack: StackConfig, tmp_path: Path
) -> None:
    db = "errloop_slo_test"
    now = int(time.time())
    lines = []
    # points until 5 minutes from now: the short windows stay full while the test waits
    for i, t in enumerate(range(now - 4 * 3600, now + 300, 10)):
        # busy: 10 % of its requests fail (a burn of 10x the 1 % budget); every 5th latency is slow (20x)
        lines.append(
            f"http_requests,service=busy requests=100i,errors=10i,latency_ms={900 if i % 5 == 0 else 20}.0 {t}"
        )
        # steady: 0.5 % fail, a burn of 0.5x: below every factor
        lines.append(f"http_requests,service=steady requests=200i,errors=1i,latency_ms=20.0 {t}")
        # quiet: one request every 5 minutes, and it fails: a burn of 100x on far too few requests
        if i % 30 == 0:
            lines.append(f"http_requests,service=quiet requests=1i,errors=1i,latency_ms=20.0 {t}")
    _write_influx(tick_stack, db, lines)
    # a 1-day SLO: the workbook's windows scaled by 1/30 (2m/10s x14.4, 12m/1m x6, 48m/4m x3, 144m/12m x1),
    # queried every 10 s
    policy = slo_policy(tmp_path, "gen-burn", db, "1d")
    task = next(t for t in generate([policy]).tasks if t.id == slo_task_id(policy))
    topic = slo_topic(policy)
    tid = "gentest-burn"
    try:
        client.define_task(tid, task.script, status="enabled")
        client.wait_executing(tid, timeout=20)
        expected = {
            "errloop:gen-burn:slo-success:12m:busy": "CRITICAL",  # 6h/30m x6 scaled
            "errloop:gen-burn:slo-success:48m:busy": "WARNING",  # 1d/2h x3
            "errloop:gen-burn:slo-success:144m:busy": "WARNING",  # 3d/6h x1
            "errloop:gen-burn:slo-latency:48m:busy": "WARNING",  # 20 % slow against a 1 % budget
            "errloop:gen-burn:slo-latency:144m:busy": "WARNING",
            # SLI deviation: 10 % bad over the last 10 s, above the 1 % the objective allows (info)
            "errloop:gen-burn:sli-success:busy": "INFO",
        }
        got = poll(lambda: (e := topic_levels(tick_stack, topic)) and expected.items() <= e.items() and e, timeout=60)
        assert got, f"the expected SLO alerts did not fire: {topic_levels(tick_stack, topic)}"
        time.sleep(11)  # one more query tick: every service has been evaluated at least twice
        got = topic_levels(tick_stack, topic)
        fired = {k: v for k, v in got.items() if v != "OK"}
        assert expected.items() <= fired.items(), got
        assert "errloop:gen-burn:slo-success:2m:busy" not in fired, got  # 10x is below the 1h/5m pair's 14.4
        # 20x burns past 6x, but the latency SLI counts measurements: 72 in 12 minutes is under min_requests
        assert "errloop:gen-burn:slo-latency:12m:busy" not in fired, got
        # one latency measurement per 10 s is under the deviation guard (min_requests scaled: 9)
        assert "errloop:gen-burn:sli-latency:busy" not in fired, got
        assert not [k for k in fired if k.endswith(":quiet")], got  # the guard: too few requests
        assert not [k for k in fired if k.endswith(":steady")], got  # below every factor
        # every window's burn rate is written for dashboards: busy burns 10x its success budget
        body = run.influx_query(
            tick_stack,
            f'SELECT last("{BURN_RATE}") AS burn, last("{SLI_TOTAL}") AS total FROM "{contract.DATABASE}"."autogen".'
            f"\"{contract.METRICS}\" WHERE sli = 'success' AND service = 'busy' GROUP BY slo_window",
        )
        burns = {
            series["tags"]["slo_window"]: series["values"][0][1:] for series in body["results"][0].get("series", [])
        }
        assert set(burns) == {"10s", "1m", "2m", "4m", "12m", "48m", "144m"}, burns
        assert burns["12m"] == [pytest.approx(10.0), 72 * 100]
    finally:
        client.delete_task(tid)
        client.delete_topic(topic)
        run.influx_query(tick_stack, f'DROP DATABASE "{db}"', method="POST")


def test_classified_events_become_error_metrics(
    client: KapacitorClient, tick_stack: StackConfig, tmp_path: Path
) -> None:
    svc = f"metrics-svc-{int(time.time())}"
    path = tmp_path / "m.yaml"
    path.write_text(SLO_POLICY.replace("NAME", "gen-metrics").replace("SERVICE", svc).split("  metrics:")[0])
    policy = load_policy(path.read_text(), str(path))
    task = next(t for t in generate([policy]).tasks if t.id == metrics_task_id(policy))
    tid = "gentest-metrics"
    base = (int(time.time()) // 60 - 30) * 60  # a whole minute, half an hour ago (windows run on data time)
    points = []
    for i in range(30):  # 30 events in the first minute: codes E1 (20) and E2 (10), durations 1..30 ms
        code = "E2" if i % 3 == 0 else "E1"
        # as the classifier's sampling says: 2 events of the group were dropped before this one
        dropped = ",sample_dropped=2i" if i % 5 == 1 else ""  # E1: i = 1, 11, 16, 26; E2: 6, 21
        points.append(
            f"{contract.CLASSIFIED},service={svc},operation=get,category=db_timeout,error_class=transient "
            f'event_id="e{i}",error_code="{code}",duration_ms={i + 1}.0{dropped} {base + i}'
        )
    # a later event of each group closes the first minute's windows at once (data time); without one,
    # the task's barrier closes them after a minute of wall-clock quiet
    for code in ("E1", "E2"):
        points.append(
            f"{contract.CLASSIFIED},service={svc},operation=get "
            f'event_id="close-{code}",error_code="{code}",duration_ms=1.0 {base + 120}'
        )
    try:
        run.influx_query(tick_stack, f'CREATE DATABASE "{contract.DATABASE}"', method="POST")
        client.define_task(tid, task.script, status="enabled")
        client.wait_executing(tid, timeout=20)
        resp = httpx.post(
            f"{tick_stack.kapacitor_url}/kapacitor/v1/write",
            params={"db": contract.DATABASE, "rp": contract.RETENTION_POLICY, "precision": "s"},
            content="\n".join(points),
        )
        assert resp.status_code == 204, resp.text

        def rows() -> list[dict[str, Any]]:
            body = run.influx_query(
                tick_stack,
                f'SELECT * FROM "{contract.DATABASE}"."autogen"."{contract.METRICS}" WHERE service = \'{svc}\'',
            )
            series = body["results"][0].get("series", [])
            if not series:
                return []
            cols = series[0]["columns"]
            return [dict(zip(cols, v, strict=True)) for v in series[0]["values"]]

        first_minute = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(base + 60))  # a window is stamped with its end

        def first() -> list[dict[str, Any]]:
            return [r for r in rows() if r["time"] == first_minute]

        got = poll(lambda: (r := first()) and len(r) >= 3 and r, timeout=20)
        assert got, f"no errloop_metrics rows for {first_minute}: {rows()}"
        totals = {r["error_code"]: r[ERRORS_TOTAL] for r in got if r.get(ERRORS_TOTAL) is not None}
        assert totals == {"E1": 20 + 4 * 2, "E2": 10 + 2 * 2}  # each event counts 1 + sample_dropped
        pct = [r for r in got if r.get(ERROR_DURATION_PERCENTILES[0][0]) is not None]
        assert len(pct) == 1  # the three percentiles share one point
        p50, p95, p99 = (pct[0][f] for f, _ in ERROR_DURATION_PERCENTILES)
        assert (p50, p95, p99) == (15.0, 29.0, 30.0)
        assert "category" not in pct[0] or pct[0]["category"] is None  # only service and operation tag it
    finally:
        client.delete_task(tid)
