"""errloop supervise against the real Kapacitor of the test stack: a task whose UDF fails at init."""

from __future__ import annotations

import importlib.resources
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import pytest

from errloop.deploy.kapacitor import KapacitorClient
from errloop.deploy.stack.run import StackConfig

pytestmark = pytest.mark.stack


def classify_script(rules: Path) -> str:
    return f"""dbrp "errloop"."autogen"
stream
    |from().measurement('supervise_{uuid.uuid4().hex[:8]}')
    @errloop_classify().rules('{rules}')
    |httpOut('out')
"""


def wait_failed(client: KapacitorClient, task_id: str, timeout: float = 15.0) -> dict[str, Any]:
    """The task once Kapacitor reports it not executing with an error."""
    deadline = time.monotonic() + timeout
    task: dict[str, Any] = {}
    while time.monotonic() < deadline:
        task = client.get_task(task_id) or {}
        if not task.get("executing") and task.get("error"):
            return task
        time.sleep(0.1)
    raise AssertionError(f"{task_id} did not fail: {task}")


def supervise_once(cfg: StackConfig, pattern: str) -> subprocess.CompletedProcess[str]:
    argv = [sys.executable, "-m", "errloop.deploy.cli", "supervise", "--once"]
    argv += ["--kapacitor", cfg.kapacitor_url, "--pattern", pattern]
    return subprocess.run(argv, capture_output=True, text=True, timeout=60, check=False)


def test_supervise_re_enables_a_task_whose_udf_failed(tick_stack: StackConfig, tmp_path: Path) -> None:
    bundled = importlib.resources.files("errloop.rules").joinpath("default/classify.yaml").read_text(encoding="utf-8")
    run_id = uuid.uuid4().hex[:8]
    ours, outsider = f"errloop-suptest-{run_id}", f"suptest-outsider-{run_id}"
    pattern = f"errloop-suptest-{run_id}*"
    files = {ours: tmp_path / "ours.yaml", outsider: tmp_path / "outsider.yaml"}
    with KapacitorClient(tick_stack.kapacitor_url) as client:
        try:
            for task_id, path in files.items():
                path.write_text(bundled, encoding="utf-8")
                client.define_task(task_id, classify_script(path), status="enabled")
                client.wait_executing(task_id)
            # the rules file vanishes and the task is restarted: its UDF fails at init
            for task_id, path in files.items():
                hidden = path.with_suffix(".gone")
                path.rename(hidden)
                client.restart_task(task_id)
                task = wait_failed(client, task_id)
                assert (task["status"], task["executing"]) == ("enabled", False)
                assert "cannot read rules file" in task["error"]
                hidden.rename(path)  # back, but Kapacitor never retries by itself
            assert (client.get_task(ours) or {})["executing"] is False

            done = supervise_once(tick_stack, pattern)
            assert done.returncode == 0, done.stderr
            assert f"restarting {ours}" in done.stderr and "cannot read rules file" in done.stderr
            assert outsider not in done.stderr
            assert "1 restarted, 0 failed" in done.stderr
            task = client.wait_executing(ours)
            assert task["status"] == "enabled" and task["error"] == ""
            # a task outside the pattern was left as it was
            left = client.get_task(outsider) or {}
            assert left["executing"] is False and "cannot read rules file" in left["error"]

            # nothing left to do: a second pass restarts nothing
            again = supervise_once(tick_stack, pattern)
            assert again.returncode == 0 and "0 restarted, 0 failed" in again.stderr

            # still broken: the restart is reported as failed, exit status 1
            files[ours].unlink()
            client.restart_task(ours)
            wait_failed(client, ours)
            broken = supervise_once(tick_stack, pattern)
            assert broken.returncode == 1 and f"{ours} did not start again" in broken.stderr
        finally:
            for task_id in files:
                client.delete_task(task_id)
