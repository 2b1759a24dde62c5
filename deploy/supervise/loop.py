"""The HTTP edge of errloop supervise: poll Kapacitor, restart what :func:`decide` says."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

import httpx

from errloop.deploy.kapacitor.client import KapacitorClient, KapacitorError
from errloop.deploy.supervise.decide import Backoff, Decision, History, decide, task_views
from errloop.rules.classify import parse_duration

DEFAULT_PATTERN = "errloop-*"
SETTLE_S = 1.0  # after a restart, before reading the task back: a UDF failing at init shows up late


class TaskApi(Protocol):
    """The two client calls supervise makes (KapacitorClient has them)."""

    def list_tasks(self, pattern: str = "*") -> list[dict[str, object]]: ...

    def restart_task(self, task_id: str) -> None: ...

    def get_task(self, task_id: str) -> dict[str, Any] | None: ...


@dataclass(frozen=True)
class PollResult:
    decision: Decision
    restarted: tuple[str, ...]  # tasks executing again right after their restart
    failed: tuple[tuple[str, str], ...]  # (task id, why it is still not executing)


def poll_once(
    api: TaskApi,
    history: History,
    pattern: str,
    backoff: Backoff,
    now: Callable[[], float] = time.monotonic,
    say: Callable[[str], None] = lambda line: print(line, file=sys.stderr, flush=True),
    settle: float = SETTLE_S,
) -> PollResult:
    """List the tasks matching ``pattern``, restart (disable, enable) those :func:`decide` picks.

    Kapacitor accepts the enable even when the task fails to start (a UDF failing at init
    leaves it enabled, not executing, with the error, sometimes only a moment later), so
    each restarted task is read back ``settle`` seconds after its restart.
    """
    tasks = task_views(api.list_tasks(pattern))
    decision = decide(tasks, history, now(), pattern, backoff)
    restarted: list[str] = []
    failed: list[tuple[str, str]] = []
    for task_id, reason in decision.restart:
        history.record_restart(task_id, now())
        h = history.of(task_id)
        say(f"errloop supervise: restarting {task_id} (restart {h.restarts}, streak {h.streak}): {reason}")
        try:
            api.restart_task(task_id)
            if settle > 0:
                time.sleep(settle)
            task = api.get_task(task_id) or {}
        except KapacitorError as exc:
            task = {"error": exc.message}
        if task.get("executing") and not task.get("error"):
            restarted.append(task_id)
            say(f"errloop supervise: {task_id} is executing again")
        else:
            why = str(task.get("error") or "not executing")
            failed.append((task_id, why))
            say(f"errloop supervise: {task_id} did not start again: {why}")
    for task_id, left in decision.waiting:
        say(f"errloop supervise: {task_id} still not executing; next restart in {left:.0f} s")
    return PollResult(decision, tuple(restarted), tuple(failed))


def run(url: str, pattern: str, interval: float, once: bool, backoff: Backoff | None = None) -> int:
    """Poll until interrupted (or once). Exit status with ``once``: 1 if a restart was refused."""
    history = History()
    backoff = backoff or Backoff(base=max(interval, 1.0))
    with KapacitorClient(url) as client:
        while True:
            try:
                result = poll_once(client, history, pattern, backoff)
            except (httpx.HTTPError, KapacitorError) as exc:
                print(f"errloop supervise: cannot list tasks at {url}: {exc}", file=sys.stderr, flush=True)
                if once:
                    return 1
            else:
                if once:
                    print(
                        f"errloop supervise: {len(result.restarted)} restarted, {len(result.failed)} failed, "
                        f"{len(result.decision.waiting)} waiting",
                        file=sys.stderr,
                    )
                    return 1 if result.failed else 0
            try:
                time.sleep(interval)
            except KeyboardInterrupt:
                print(f"errloop supervise: {history.total_restarts} restarts in all", file=sys.stderr)
                return 0


def main(url: str, pattern: str = DEFAULT_PATTERN, interval: str = "5s", once: bool = False) -> int:
    """``errloop supervise``."""
    try:
        seconds = parse_duration(interval)
    except ValueError as exc:
        print(f"errloop: --interval: {exc}", file=sys.stderr)
        return 2
    if seconds <= 0:
        print("errloop: --interval must be positive", file=sys.stderr)
        return 2
    try:
        return run(url, pattern, seconds, once)
    except KeyboardInterrupt:
        return 0
