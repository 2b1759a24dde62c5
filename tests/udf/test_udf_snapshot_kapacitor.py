"""The classifier's per-fingerprint counts survive a real Kapacitor restart (snapshot/restore).

Restarting Kapacitor would disturb the session's shared stack, so this test starts a
private one (InfluxDB + Kapacitor, no Telegraf) on its own ports and state directory.
Its kapacitord snapshots tasks every 10 s (``[task] snapshot-interval``), but the first
snapshot of a task comes a random 0-10 s splay *plus* one interval after its start
(kapacitor task.go runSnapshotter), so the test waits until both 20 s have passed since the
start and 10 s since the last count, with a margin.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from errloop.deploy.kapacitor import KapacitorClient
from errloop.deploy.stack import run
from errloop.rules import contract
from errloop.telegraf.lineproto import encode

pytestmark = pytest.mark.stack

SNAPSHOT_INTERVAL_S = 10.0  # [task] snapshot-interval of the stack's kapacitord.conf
MARGIN_S = 2.0


@pytest.fixture
def private_stack(tmp_path: Path) -> Iterator[run.StackConfig]:
    cfg = run.StackConfig.private(
        tmp_path / "stack",
        with_telegraf=False,
    )
    try:
        run.up(cfg, say=lambda line: None)
        yield cfg
    finally:
        run.down(cfg, say=lambda line: None)


def write(cfg: run.StackConfig, lines: list[str]) -> None:
    resp = httpx.post(
        f"{cfg.kapacitor_url}/kapacitor/v1/write",
        params={"db": contract.DATABASE, "rp": contract.RETENTION_POLICY, "precision": "ns"},
        content="\n".join(lines),
        timeout=10,
    )
    assert resp.status_code == 204, resp.text


def last_fp_count(cfg: run.StackConfig, task_id: str, event_id: str, timeout: float = 15.0) -> int:
    """fp_count of the point with this event_id at the task's httpOut, once it is there."""
    deadline = time.monotonic() + timeout
    seen: Any = None
    while time.monotonic() < deadline:
        resp = httpx.get(f"{cfg.kapacitor_url}/kapacitor/v1/tasks/{task_id}/out", timeout=5)
        if resp.status_code == 200:
            for series in resp.json().get("series") or []:
                for values in series.get("values", []):
                    row = dict(zip(series["columns"], values, strict=False))
                    seen = row
                    if row.get("event_id") == event_id:
                        return int(row["fp_count"])
        time.sleep(0.1)
    raise AssertionError(f"no output point for {event_id} (last seen: {seen})")


def test_fingerprint_counts_survive_a_kapacitor_restart(private_stack: run.StackConfig) -> None:
    cfg = private_stack
    task_id = f"errloop-snapshot-{uuid.uuid4().hex[:8]}"
    measurement = f"events_{uuid.uuid4().hex[:8]}"
    script = f"""dbrp "errloop"."autogen"
stream
    |from().measurement('{measurement}')
    @errloop_classify()
    |httpOut('out')
"""
    fingerprint = f"fp-{uuid.uuid4().hex[:8]}"
    n = 7

    def event(i: int) -> str:
        fields = {"event_id": f"ev-{i}", "message": "dial tcp 10.0.0.7:5432: connect: connection refused"}
        return str(encode(measurement, {"service": "api", "fingerprint": fingerprint}, fields, time.time_ns()))

    with KapacitorClient(cfg.kapacitor_url) as client:
        client.define_task(task_id, script, status="enabled")
        client.wait_executing(task_id)
        started = time.monotonic()  # the task started before this
        for i in range(n):  # one at a time: httpOut holds the last point only
            write(cfg, [event(i)])
            assert last_fp_count(cfg, task_id, f"ev-{i}") == i + 1
        counted = time.monotonic()

        snapshot_done = max(started + 2 * SNAPSHOT_INTERVAL_S, counted + SNAPSHOT_INTERVAL_S) + MARGIN_S
        time.sleep(max(0.0, snapshot_done - time.monotonic()))
        run.stop(cfg, "kapacitord")
        assert run.running_pid(cfg, "kapacitord") is None
        run.up(cfg, say=lambda line: None)  # only kapacitord is down: it alone starts, same state dir

        client.wait_executing(task_id)
        write(cfg, [event(n)])
        assert last_fp_count(cfg, task_id, f"ev-{n}") == n + 1, "the count started over: no snapshot restored"
        # a new fingerprint still starts at 1 (the restored table is not simply shifted)
        other = encode(measurement, {"service": "api", "fingerprint": f"{fingerprint}-new"}, {"event_id": "ev-x"}, 0)
        write(cfg, [other.rsplit(" ", 1)[0] + f" {time.time_ns()}"])
        assert last_fp_count(cfg, task_id, "ev-x") == 1
