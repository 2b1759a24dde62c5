"""Which tasks to restart: pure logic over a task listing and the restart history.

A task needs a restart when Kapacitor says it is ``enabled`` but not ``executing`` (its
UDF died or failed at init, or Kapacitor could not start it after its own restart);
Kapacitor itself never retries. Only tasks whose id matches the pattern are considered.

Backoff: after the n-th restart in a row of one task, the next one waits
``min(base * 2**(n-1), cap)`` seconds. A task counts as recovered (its streak ends) once it
has been seen executing ``healthy_after`` seconds after its last restart, so a task that
starts and dies at once is not restarted more often than the backoff allows.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class TaskView:
    """What supervise needs of one task from ``GET /kapacitor/v1/tasks``."""

    id: str
    enabled: bool
    executing: bool
    error: str = ""


def task_views(listing: Iterable[Mapping[str, Any]]) -> list[TaskView]:
    """TaskViews from Kapacitor's task JSON (missing keys read as disabled / not executing)."""
    return [
        TaskView(
            id=str(t.get("id", "")),
            enabled=t.get("status") == "enabled",
            executing=bool(t.get("executing")),
            error=str(t.get("error") or ""),
        )
        for t in listing
        if t.get("id")
    ]


@dataclass(frozen=True)
class Backoff:
    """Restart pacing, in seconds."""

    base: float = 5.0
    cap: float = 300.0
    healthy_after: float = 60.0

    def delay(self, streak: int) -> float:
        """Wait before the next restart after ``streak`` restarts in a row (0: none)."""
        if streak <= 0:
            return 0.0
        return float(min(self.base * 2 ** min(streak - 1, 32), self.cap))


@dataclass
class TaskHistory:
    restarts: int = 0  # all restarts of this task by this supervisor
    streak: int = 0  # restarts since it last ran healthily
    last_restart: float | None = None  # monotonic seconds


@dataclass
class History:
    """Restart history per task id (kept by the loop between polls)."""

    tasks: dict[str, TaskHistory] = field(default_factory=dict)

    def of(self, task_id: str) -> TaskHistory:
        return self.tasks.setdefault(task_id, TaskHistory())

    def record_restart(self, task_id: str, now: float) -> None:
        h = self.of(task_id)
        h.restarts += 1
        h.streak += 1
        h.last_restart = now

    @property
    def total_restarts(self) -> int:
        return sum(h.restarts for h in self.tasks.values())


@dataclass(frozen=True)
class Decision:
    """One poll's outcome: restart these (id, reason); these wait (id, seconds left)."""

    restart: tuple[tuple[str, str], ...] = ()
    waiting: tuple[tuple[str, float], ...] = ()


def decide(tasks: Iterable[TaskView], history: History, now: float, pattern: str, backoff: Backoff) -> Decision:
    """Pick the tasks to restart now. Updates ``history`` for tasks seen healthy (streak reset)."""
    restart: list[tuple[str, str]] = []
    waiting: list[tuple[str, float]] = []
    for task in sorted(tasks, key=lambda t: t.id):
        if not fnmatch.fnmatchcase(task.id, pattern) or not task.enabled:
            continue
        h = history.tasks.get(task.id)
        if task.executing:
            if h is not None and h.streak and (h.last_restart is None or now - h.last_restart >= backoff.healthy_after):
                h.streak = 0
            continue
        if h is not None and h.last_restart is not None:
            left = h.last_restart + backoff.delay(h.streak) - now
            if left > 0:
                waiting.append((task.id, left))
                continue
        restart.append((task.id, task.error or "not executing (Kapacitor gave no error)"))
    return Decision(tuple(restart), tuple(waiting))
