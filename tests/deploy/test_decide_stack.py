"""A decision tree as pure TICKscript, in the real Kapacitor over real request metrics in InfluxDB.

The design document's tree (circuit-break when p99 > 800 ms, else fall back when the
success rate < 0.95) over four services: one slow, one failing, one fine, and one slow
that recovers while the test runs. The task must take exactly the decisions that
``errloop.rules.decision.decide`` takes on the same facts, announce each once on the
decision topic, and record it (and its withdrawal) in errloop_decisions.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from kapacitor_waits import poll, topic_levels

from errloop.deploy.generate import decide_task_id, decide_topic, generate
from errloop.deploy.kapacitor import KapacitorClient
from errloop.deploy.stack import run
from errloop.deploy.stack.run import StackConfig
from errloop.rules import contract
from errloop.rules.decision import decide
from errloop.rules.policy import Policy, load_policy

pytestmark = pytest.mark.stack

POLICY = """apiVersion: errloop/v1
kind: Policy
metadata: {name: decide-test}
spec:
  service: '*'
  alert: {threshold: 1, window: 1m}
  # the service tag is called app here: errloop_decisions is still tagged service
  metrics: {database: DATABASE, measurement: http_requests, tags: {service: app}}
  mode: {name: shadow}
  decision:
    window: 10s
    every: 1s
    tree:
      - type: condition
        field: latency_p99
        op: ">"
        value: 800
        then:
          - type: action
            name: circuit-break
            config: {strategy: slow_request_ratio, threshold: 0.5, slow_ms: 800, recovery_timeout: 30s, probes: 3}
        else:
          - type: condition
            field: success_rate
            op: "<"
            value: 0.95
            then:
              - type: action
                name: fallback
                config: {service: user-api-readonly, timeout_ms: 200}
"""


@pytest.fixture
def client(tick_stack: StackConfig) -> Iterator[KapacitorClient]:
    with KapacitorClient(tick_stack.kapacitor_url) as c:
        yield c


def decisions(cfg: StackConfig) -> list[dict[str, Any]]:
    body = run.influx_query(
        cfg,
        f'SELECT * FROM "{contract.DATABASE}"."autogen"."{contract.DECISIONS}" WHERE "policy" = \'decide-test\'',
    )
    out = []
    for series in body["results"][0].get("series", []):
        for row in series["values"]:
            out.append(dict(zip(series["columns"], row, strict=True)))
    return out


def test_the_tree_decides_in_kapacitor_as_decide_does(
    client: KapacitorClient, tick_stack: StackConfig, tmp_path: Path
) -> None:
    db = "errloop_decide_test"
    now = int(time.time())
    lines = []
    for t in range(now - 120, now + 120):
        # slow: p99 900 ms, every request fine otherwise -> circuit-break
        lines.append(f"http_requests,app=slow requests=100i,errors=0i,latency_ms=900.0 {t}")
        # failing: fast but 10 % errors -> fallback (the else branch)
        lines.append(f"http_requests,app=failing requests=100i,errors=10i,latency_ms=50.0 {t}")
        # fine: fast, 1 % errors -> nothing
        lines.append(f"http_requests,app=fine requests=100i,errors=1i,latency_ms=50.0 {t}")
        # recovering: slow until 4 s after the start, fast after -> circuit-break taken, then withdrawn
        slow = t <= now + 4
        lines.append(f"http_requests,app=recovering requests=100i,errors=0i,latency_ms={900 if slow else 40}.0 {t}")
    run.influx_query(tick_stack, f'CREATE DATABASE "{db}"', method="POST")
    resp = httpx.post(f"{tick_stack.influx_url}/write", params={"db": db, "precision": "s"}, content="\n".join(lines))
    assert resp.status_code == 204, resp.text
    path = tmp_path / "decide.yaml"
    path.write_text(POLICY.replace("DATABASE", db))
    policy: Policy = load_policy(path.read_text(), str(path))
    bundle = generate([policy])
    task = next(t for t in bundle.tasks if t.id == decide_task_id(policy))
    topic = decide_topic(policy)
    tid = "decidetest"
    # what errloop's own evaluator decides on the same facts
    expected_by_service = {
        "slow": [a.name for a in decide(policy.decision, {"latency_p99": 900.0, "success_rate": 1.0})],
        "failing": [a.name for a in decide(policy.decision, {"latency_p99": 50.0, "success_rate": 0.9})],
        "fine": [a.name for a in decide(policy.decision, {"latency_p99": 50.0, "success_rate": 0.99})],
    }
    assert expected_by_service == {"slow": ["circuit-break"], "failing": ["fallback"], "fine": []}
    try:
        client.define_task(tid, task.script, status="enabled")
        got = client.wait_executing(tid, timeout=20)
        assert got["type"] == "batch" and not got["error"], got
        cb = "errloop:decide-test:decide-0:"
        fb = "errloop:decide-test:decide-1:"
        want = {cb + "slow": "CRITICAL", fb + "failing": "CRITICAL", cb + "recovering": "CRITICAL"}
        seen = poll(lambda: (e := topic_levels(tick_stack, topic)) and want.items() <= e.items() and e, timeout=30)
        assert seen, f"decisions not taken: {topic_levels(tick_stack, topic)}"
        # recovering's 10 s window holds only fast requests some 15 s after the start: the decision is withdrawn
        withdrawn = poll(lambda: topic_levels(tick_stack, topic).get(cb + "recovering") == "OK", timeout=40)
        assert withdrawn, topic_levels(tick_stack, topic)
        events = topic_levels(tick_stack, topic)
        fired = {k for k, v in events.items() if v != "OK"}
        assert fired == {cb + "slow", fb + "failing"}, events  # fine: nothing; slow: no fallback (else branch)
        rows = poll(
            lambda: (
                (r := decisions(tick_stack))
                and any(x["service"] == "recovering" and x.get("level") == "OK" for x in r)
                and r
            ),
            timeout=15,
        )
        assert rows, json.dumps(decisions(tick_stack), indent=1)
        taken = sorted((r["service"], r["action"], r["level"]) for r in rows)
        assert taken == [
            ("failing", "fallback", "CRITICAL"),
            ("recovering", "circuit-break", "CRITICAL"),
            ("recovering", "circuit-break", "OK"),
            ("slow", "circuit-break", "CRITICAL"),
        ], rows
        slow = next(r for r in rows if r["service"] == "slow")
        assert slow["mode"] == "shadow" and slow["decision_id"] == cb + "slow"
        assert json.loads(slow["config"])["probes"] == 3
        assert slow["latency_p99"] == pytest.approx(900.0) and slow["success_rate"] == pytest.approx(1.0)
        assert "decision taken" in slow["message"] and "circuit-break when latency_p99 > 800" in slow["message"]
        failing = next(r for r in rows if r["service"] == "failing")
        assert failing["success_rate"] == pytest.approx(0.9) and failing["qps"] == pytest.approx(100.0)
    finally:
        client.delete_task(tid)
        client.delete_topic(topic)
        run.influx_query(tick_stack, f'DROP DATABASE "{db}"', method="POST")
        httpx.post(
            f"{tick_stack.influx_url}/query",
            params={
                "db": contract.DATABASE,
                "q": f'DELETE FROM "{contract.DECISIONS}" WHERE "policy" = \'decide-test\'',
            },
        )
