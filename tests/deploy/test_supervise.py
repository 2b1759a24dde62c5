"""errloop supervise: the restart decision and the poll loop against a fake Kapacitor."""

from __future__ import annotations

import itertools
from typing import Any

import pytest

from errloop.deploy.cli import build_parser
from errloop.deploy.kapacitor.client import KapacitorError
from errloop.deploy.supervise import Backoff, History, TaskView, decide, task_views
from errloop.deploy.supervise.loop import poll_once

BACKOFF = Backoff(base=5.0, cap=40.0, healthy_after=60.0)


def stopped(task_id: str, error: str = "boom") -> TaskView:
    return TaskView(task_id, enabled=True, executing=False, error=error)


def test_only_enabled_not_executing_tasks_inside_the_pattern_are_restarted() -> None:
    tasks = [
        stopped("errloop-a", "udf init failed"),
        TaskView("errloop-b", enabled=True, executing=True),
        TaskView("errloop-c", enabled=False, executing=False, error="stopped by hand"),
        stopped("other-task"),
        stopped("errloop-d", ""),
    ]
    decision = decide(tasks, History(), 100.0, "errloop-*", BACKOFF)
    assert decision.restart == (
        ("errloop-a", "udf init failed"),
        ("errloop-d", "not executing (Kapacitor gave no error)"),
    )
    assert decision.waiting == ()


def test_pattern_is_applied_even_if_kapacitor_returned_more() -> None:
    decision = decide([stopped("errloopx"), stopped("my-errloop-1")], History(), 0.0, "errloop-*", BACKOFF)
    assert decision.restart == ()


def test_backoff_doubles_per_restart_in_a_row_up_to_the_cap() -> None:
    assert [BACKOFF.delay(n) for n in range(7)] == [0.0, 5.0, 10.0, 20.0, 40.0, 40.0, 40.0]
    history = History()
    now = 1000.0
    restart_times = []
    while now < 1200.0:
        if decide([stopped("errloop-a")], history, now, "errloop-*", BACKOFF).restart:
            history.record_restart("errloop-a", now)
            restart_times.append(now)
        now += 1.0
    gaps = [b - a for a, b in itertools.pairwise(restart_times)]
    assert gaps[:4] == [5.0, 10.0, 20.0, 40.0]
    assert all(g == 40.0 for g in gaps[4:])
    assert history.of("errloop-a").restarts == len(restart_times) == history.total_restarts


def test_waiting_task_reports_time_left() -> None:
    history = History()
    history.record_restart("errloop-a", 10.0)
    history.record_restart("errloop-a", 20.0)  # streak 2: next after 10 s
    decision = decide([stopped("errloop-a")], history, 23.0, "errloop-*", BACKOFF)
    assert decision.restart == () and decision.waiting == (("errloop-a", 7.0),)


def test_streak_resets_only_after_running_healthily_long_enough() -> None:
    history = History()
    for t in (0.0, 5.0, 15.0):
        history.record_restart("errloop-a", t)
    running = TaskView("errloop-a", enabled=True, executing=True)
    decide([running], history, 30.0, "errloop-*", BACKOFF)  # only 15 s after the restart
    assert history.of("errloop-a").streak == 3
    decide([running], history, 80.0, "errloop-*", BACKOFF)
    assert history.of("errloop-a").streak == 0 and history.of("errloop-a").restarts == 3
    # after recovery a new failure is restarted at once
    assert decide([stopped("errloop-a")], history, 81.0, "errloop-*", BACKOFF).restart


def test_task_views_reads_kapacitor_json() -> None:
    listing = [
        {"id": "errloop-a", "status": "enabled", "executing": False, "error": "x"},
        {"id": "errloop-b", "status": "disabled", "executing": False, "error": ""},
        {"status": "enabled"},  # no id: ignored
    ]
    assert task_views(listing) == [
        TaskView("errloop-a", True, False, "x"),
        TaskView("errloop-b", False, False, ""),
    ]


class FakeKapacitor:
    def __init__(
        self, tasks: list[dict[str, Any]], refuse: set[str] | None = None, dies: set[str] | None = None
    ) -> None:
        self.tasks = {t["id"]: t for t in tasks}
        self.refuse = refuse or set()
        self.dies = dies or set()  # accepted, but the task fails to start (Kapacitor's usual answer)
        self.calls: list[tuple[str, str]] = []

    def list_tasks(self, pattern: str = "*") -> list[dict[str, object]]:
        self.calls.append(("list", pattern))
        return list(self.tasks.values())

    def restart_task(self, task_id: str) -> None:
        self.calls.append(("restart", task_id))
        if task_id in self.refuse:
            raise KapacitorError("PATCH", f"/tasks/{task_id}", 500, "udf init failed again")
        if task_id in self.dies:
            self.tasks[task_id].update(executing=False, error="init failed once more")
            return
        self.tasks[task_id].update(executing=True, error="")

    def get_task(self, task_id: str) -> dict[str, Any] | None:
        return self.tasks.get(task_id)


def test_poll_once_restarts_logs_the_reason_and_counts() -> None:
    api = FakeKapacitor(
        [
            {"id": "errloop-a", "status": "enabled", "executing": False, "error": "cannot read rules file /x"},
            {"id": "errloop-b", "status": "enabled", "executing": False, "error": "bad"},
            {"id": "errloop-c", "status": "enabled", "executing": False, "error": "first"},
            {"id": "other", "status": "enabled", "executing": False, "error": "not ours"},
        ],
        refuse={"errloop-b"},
        dies={"errloop-c"},
    )
    lines: list[str] = []
    history = History()
    clock = iter([0.0, 0.0, 0.0, 0.0])
    result = poll_once(api, history, "errloop-*", BACKOFF, now=lambda: next(clock), say=lines.append, settle=0)
    assert result.restarted == ("errloop-a",)
    assert result.failed == (("errloop-b", "udf init failed again"), ("errloop-c", "init failed once more"))
    assert ("restart", "other") not in api.calls and ("list", "errloop-*") in api.calls
    assert any("errloop-a" in line and "cannot read rules file /x" in line for line in lines)
    assert any("errloop-c did not start again: init failed once more" in line for line in lines)
    assert history.total_restarts == 3
    # errloop-b and -c are still down: the next poll a second later waits instead of hammering them
    result = poll_once(api, history, "errloop-*", BACKOFF, now=lambda: 1.0, say=lines.append, settle=0)
    assert result.restarted == () and [w[0] for w in result.decision.waiting] == ["errloop-b", "errloop-c"]
    assert api.calls.count(("restart", "errloop-b")) == 1 == api.calls.count(("restart", "errloop-c"))
    # after the backoff they are tried again
    result = poll_once(api, history, "errloop-*", BACKOFF, now=lambda: 5.0, say=lines.append, settle=0)
    assert [f[0] for f in result.failed] == ["errloop-b", "errloop-c"]


@pytest.mark.parametrize("argv", [["supervise", "--once"], ["supervise", "--interval", "2s", "--pattern", "x-*"]])
def test_cli_has_supervise(argv: list[str]) -> None:
    args = build_parser().parse_args(argv)
    assert args.fn.__name__ == "cmd_supervise"
    assert args.pattern in ("errloop-*", "x-*")


def test_bad_interval_is_refused(capsys: pytest.CaptureFixture[str]) -> None:
    from errloop.deploy.supervise.loop import main

    assert main("http://127.0.0.1:1", interval="soon") == 2
    assert "--interval" in capsys.readouterr().err
