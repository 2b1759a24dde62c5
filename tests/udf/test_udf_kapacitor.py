"""Our UDF runtime inside the real Kapacitor of the test stack."""

from __future__ import annotations

import time
import uuid
from typing import Any

import httpx
import pytest

from errloop.deploy.kapacitor import KapacitorClient
from errloop.deploy.stack.run import StackConfig
from errloop.rules import contract
from errloop.telegraf.lineproto import encode

pytestmark = pytest.mark.stack


def write(cfg: StackConfig, lines: list[str]) -> None:
    resp = httpx.post(
        f"{cfg.kapacitor_url}/kapacitor/v1/write",
        params={"db": contract.DATABASE, "rp": contract.RETENTION_POLICY, "precision": "ns"},
        content="\n".join(lines),
        timeout=10,
    )
    assert resp.status_code == 204, resp.text


def node_stats(client: KapacitorClient, task_id: str, node_prefix: str) -> dict[str, Any]:
    task = client.get_task(task_id) or {}
    for name, stats in task.get("stats", {}).get("node-stats", {}).items():
        if name.startswith(node_prefix):
            return dict(stats)
    return {}


def wait_stat(client: KapacitorClient, task_id: str, node: str, key: str, want: int, timeout: float = 10) -> int:
    deadline = time.monotonic() + timeout
    got = 0
    while time.monotonic() < deadline:
        got = int(node_stats(client, task_id, node).get(key, 0))
        if got >= want:
            return got
        time.sleep(0.1)
    return got


def test_a_raising_handler_does_not_stop_the_task(tick_stack: StackConfig) -> None:
    task_id = f"test-flaky-{uuid.uuid4().hex[:8]}"
    script = f"""dbrp "errloop"."autogen"
stream
    |from().measurement('{task_id}')
    @errloop_test_flaky()
    |count('v')
"""
    with KapacitorClient(tick_stack.kapacitor_url) as client:
        client.define_task(task_id, script, status="enabled")
        try:
            client.wait_executing(task_id)
            t0 = time.time_ns()
            lines = [
                encode(task_id, {"boom": "yes" if i % 3 == 0 else "no"}, {"v": float(i)}, t0 + i) for i in range(30)
            ]
            write(tick_stack, lines)
            # 10 of the 30 points make the handler raise: they are skipped, the other 20 come out
            assert wait_stat(client, task_id, "errloop_test_flaky", "emitted", 20) == 20
            time.sleep(0.5)
            task = client.get_task(task_id) or {}
            assert task["executing"] is True and task["error"] == ""
            assert int(node_stats(client, task_id, "errloop_test_flaky").get("emitted", 0)) == 20
        finally:
            client.delete_task(task_id)


def test_classify_enriches_events_in_real_kapacitor(tick_stack: StackConfig) -> None:
    task_id = f"test-classify-{uuid.uuid4().hex[:8]}"
    measurement = f"events_{uuid.uuid4().hex[:8]}"
    script = f"""dbrp "errloop"."autogen"
stream
    |from().measurement('{measurement}').groupBy('service')
    @errloop_classify().window(1m)
    |httpOut('out')
"""
    fields = {
        "event_id": "e" * 20,
        "message": "create user failed",
        "error_chain": "Key: 'CreateUserRequest.Name' Error:Field validation for 'Name' failed on the 'required' tag",
        "top_frame": "main.(*app).createUser",
    }
    with KapacitorClient(tick_stack.kapacitor_url) as client:
        client.define_task(task_id, script, status="enabled")
        try:
            client.wait_executing(task_id)
            write(
                tick_stack, [encode(measurement, {"service": "user-api", "fingerprint": "f1"}, fields, time.time_ns())]
            )
            deadline = time.monotonic() + 10
            series: list[dict[str, Any]] = []
            while time.monotonic() < deadline and not series:
                body = httpx.get(f"{tick_stack.kapacitor_url}/kapacitor/v1/tasks/{task_id}/out").json()
                series = body.get("series") or []
                time.sleep(0.1)
            assert series, "the classify UDF emitted nothing"
            row = dict(zip(series[0]["columns"], series[0]["values"][0], strict=False))
            tags = series[0]["tags"]
            assert series[0]["name"] == contract.CLASSIFIED
            assert tags["rule_id"] == "validation.field_required"
            assert (tags["error_class"], tags["category"], tags["retryable"]) == ("business", "validation", "false")
            assert "CreateUserRequest.Name" in row["suggestion"]
            assert row["event_id"] == "e" * 20 and row["window_count"] == 1 and row["fp_count"] == 1
        finally:
            client.delete_task(task_id)


def test_socket_mode_udf_serves_a_task(tick_stack: StackConfig) -> None:
    """One long-lived `errloop udf errloop_mirror --socket PATH`, one connection per task."""
    task_ids = [f"test-sock-{uuid.uuid4().hex[:8]}" for _ in range(2)]
    with KapacitorClient(tick_stack.kapacitor_url) as client:
        try:
            for task_id in task_ids:
                script = f"""dbrp "errloop"."autogen"
stream
    |from().measurement('{task_id}')
    @errloop_test_mirror_socket()
    |count('v')
"""
                client.define_task(task_id, script, status="enabled")
                client.wait_executing(task_id)
            t0 = time.time_ns()
            for task_id in task_ids:
                write(tick_stack, [encode(task_id, {"k": "v"}, {"v": float(i)}, t0 + i) for i in range(25)])
            for task_id in task_ids:
                assert wait_stat(client, task_id, "errloop_test_mirror_socket", "emitted", 25) == 25
        finally:
            for task_id in task_ids:
                client.delete_task(task_id)


def _influx_rows(cfg: StackConfig, q: str) -> list[dict[str, Any]]:
    body = httpx.get(f"{cfg.influx_url}/query", params={"db": contract.DATABASE, "q": q}, timeout=5).json()
    rows: list[dict[str, Any]] = []
    for result in body.get("results", []):
        for series in result.get("series") or []:
            rows += [dict(zip(series["columns"], values, strict=True)) for values in series["values"]]
    return rows


def test_classify_reloads_its_rule_file_inside_kapacitor(tick_stack: StackConfig, tmp_path: Any) -> None:
    """A changed rule file takes effect without touching the task; a broken one is refused, as a point in InfluxDB."""
    rules = tmp_path / "rules.yaml"
    text = "version: 1\nrules:\n  - id: custom.a\n    match: {message: 'boom'}\n    set: {error_class: business, category: cat_a, retryable: false}\n"
    rules.write_text(text)
    task_id = f"test-reload-{uuid.uuid4().hex[:8]}"
    measurement = f"events_{uuid.uuid4().hex[:8]}"
    service = f"svc-{uuid.uuid4().hex[:8]}"
    script = f"""dbrp "errloop"."autogen"
stream
    |from().measurement('{measurement}')
    @errloop_classify().rules('{rules}').reload(100ms)
    |influxDBOut().database('errloop').retentionPolicy('autogen').flushInterval(100ms)
"""

    def categories_after(text_now: str, want_status: str) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        rules.write_text(text_now)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            write(tick_stack, [encode(measurement, {"service": service}, {"message": "boom"}, time.time_ns())])
            reports = _influx_rows(tick_stack, f"SELECT * FROM {contract.RULES} WHERE \"task\" = '{task_id}'")
            if any(r["status"] == want_status for r in reports):
                time.sleep(0.5)
                write(tick_stack, [encode(measurement, {"service": service}, {"message": "boom"}, time.time_ns())])
                time.sleep(1.0)
                events = _influx_rows(
                    tick_stack, f"SELECT * FROM {contract.CLASSIFIED} WHERE \"service\" = '{service}' ORDER BY time"
                )
                return reports, events
            time.sleep(0.2)
        raise AssertionError(f"no {want_status} errloop_rules point for {task_id}")

    with KapacitorClient(tick_stack.kapacitor_url) as client:
        client.define_task(task_id, script, status="enabled")
        try:
            client.wait_executing(task_id)
            reports, events = categories_after(text.replace("cat_a", "cat_b"), "loaded")
            assert events[-1]["category"] == "cat_b" and events[0]["category"] == "cat_a"
            reports, events = categories_after(text.replace("retryable: false", "retryable: 7"), "refused")
            refused = next(r for r in reports if r["status"] == "refused")
            assert contract.restore_newlines(refused["error"]).startswith(f"{rules}:5:")
            assert refused["problems"] == 1 and refused["rules"] == 1
            assert events[-1]["category"] == "cat_b"  # the rules in force stayed
            assert (client.get_task(task_id) or {}).get("executing") is True
        finally:
            client.delete_task(task_id)
