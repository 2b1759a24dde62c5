"""Semantic sampling inside the real Kapacitor of the test stack, down to InfluxDB."""

from __future__ import annotations

import time
import uuid
from typing import Any

import httpx
import pytest

from errloop.deploy.kapacitor import KapacitorClient
from errloop.deploy.stack.run import StackConfig, influx_query
from errloop.rules import contract
from errloop.rules.classify import default_rules
from errloop.telegraf.lineproto import encode
from errloop.udf.classify.sampling import sample_fraction

pytestmark = pytest.mark.stack

REFUSED = "dial tcp 10.0.0.7:5432: connect: connection refused"
UNKNOWN = "something nobody has a rule for"


def write(cfg: StackConfig, lines: list[str]) -> None:
    resp = httpx.post(
        f"{cfg.kapacitor_url}/kapacitor/v1/write",
        params={"db": contract.DATABASE, "rp": contract.RETENTION_POLICY, "precision": "ns"},
        content="\n".join(lines),
        timeout=10,
    )
    assert resp.status_code == 204, resp.text


def rows(cfg: StackConfig, measurement: str) -> list[dict[str, Any]]:
    body = influx_query(cfg, f'SELECT * FROM "{contract.DATABASE}"."autogen"."{measurement}"')
    out: list[dict[str, Any]] = []
    results: Any = body.get("results", [])
    for result in results:
        for series in result.get("series", []):
            out += [dict(zip(series["columns"], v, strict=False)) for v in series["values"]]
    return out


def test_sampling_in_real_kapacitor_keeps_weights_and_counts_drops(tick_stack: StackConfig) -> None:
    rules = default_rules()
    kept_category = rules.classify({"message": REFUSED}).category
    sampled_category = rules.classify({"message": UNKNOWN}).category
    run_id = uuid.uuid4().hex[:8]
    task_id, source, sink = f"test-sampling-{run_id}", f"events_{run_id}", f"sampled_{run_id}"
    rate = 0.3
    script = f"""dbrp "errloop"."autogen"
stream
    |from().measurement('{source}')
    @errloop_classify().keep('{kept_category}').keep('business').sampleRate({rate})
    |influxDBOut().database('errloop').retentionPolicy('autogen').measurement('{sink}').buffer(1).flushInterval(100ms)
"""
    n = 300
    t0 = time.time_ns()
    lines, messages = [], {}
    for i in range(n):
        message = REFUSED if i % 5 == 0 else UNKNOWN
        event_id = f"{run_id}-{i}"
        messages[event_id] = message
        lines.append(
            encode(
                source,
                {"service": "api", "fingerprint": message[:8]},
                {"event_id": event_id, "message": message},
                t0 + i,
            )
        )
    expected = {e for e, m in messages.items() if m == REFUSED or sample_fraction(e) < rate}
    with KapacitorClient(tick_stack.kapacitor_url) as client:
        client.define_task(task_id, script, status="enabled")
        try:
            client.wait_executing(task_id)
            write(tick_stack, lines)
            deadline = time.monotonic() + 20
            got: list[dict[str, Any]] = []
            while time.monotonic() < deadline and len(got) < len(expected):
                got = rows(tick_stack, sink)
                time.sleep(0.2)
        finally:
            client.delete_task(task_id)
    assert {r["event_id"] for r in got} == expected
    assert 0 < len(expected) < n
    for r in got:
        if r["category"] == kept_category:
            assert r["sample_weight"] == 1.0 and r["sample_dropped"] == 0
        else:
            assert r["category"] == sampled_category and r["sample_weight"] == pytest.approx(1 / rate)
    # exact counts from the kept rows: every sampled-category event up to the last kept one
    sampled = sorted(
        (r for r in got if r["category"] == sampled_category), key=lambda r: int(r["event_id"].rsplit("-", 1)[1])
    )
    last = int(sampled[-1]["event_id"].rsplit("-", 1)[1])  # the latest kept one of that category
    assert sum(1 + r["sample_dropped"] for r in sampled) == sum(1 for i in range(last + 1) if i % 5 != 0)
    # and the weights estimate the total of the sampled category
    estimate = sum(r["sample_weight"] for r in sampled)
    assert 0.6 * (n * 4 / 5) < estimate < 1.4 * (n * 4 / 5)
