"""errloop supervise: re-enable errloop's Kapacitor tasks that stopped executing.

:mod:`.decide` holds the pure decision (which tasks to restart, given a listing and the
restart history); :mod:`.loop` is the HTTP edge and the ``errloop supervise`` command.
"""

from errloop.deploy.supervise.decide import Backoff, Decision, History, TaskView, decide, task_views

__all__ = ["Backoff", "Decision", "History", "TaskView", "decide", "task_views"]
