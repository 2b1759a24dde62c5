"""The in-memory ledger of recorded event ids: the dedupe between the POST and catch-up paths.

An event id is in one of three states:

- *done*: its action (and, for a non-OK alert, its CSV row) is recorded; never again;
- *in flight*: one path has claimed it and is recording it; the other path skips it;
- *pending*: its action point was written but its CSV row was not (a failure between the
  two); whoever records it next reuses the point's time, so InfluxDB overwrites that point
  instead of getting a second one.

Every method takes the one lock, so :meth:`claim` is the single decision point: of two
paths that see the same event at the same moment, exactly one gets it.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Mapping


class Ledger:
    """Thread-safe set of recorded event ids with in-flight claims."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._done: dict[str, int] = {}  # event_id -> when recorded (ns)
        self._inflight: set[str] = set()
        self._pending: dict[str, int] = {}  # event_id -> time of its already written action point

    def load(self, done: Mapping[str, int], pending: Mapping[str, int] | None = None) -> None:
        """Add what earlier runs recorded (from errloop_actions and the CSV)."""
        with self._lock:
            self._done.update(done)
            for eid, t in (pending or {}).items():
                if eid not in self._done:
                    self._pending[eid] = t

    def claim(self, event_ids: Iterable[str]) -> list[str]:
        """Claim the ids neither done nor in flight; returns them in order, each once."""
        claimed: list[str] = []
        with self._lock:
            for eid in event_ids:
                if eid in self._done or eid in self._inflight:
                    continue
                self._inflight.add(eid)
                claimed.append(eid)
        return claimed

    def unknown(self, event_ids: Iterable[str]) -> list[str]:
        """The ids not done yet (in flight ones included: their attempt may still fail), each once."""
        with self._lock:
            return [eid for eid in dict.fromkeys(event_ids) if eid not in self._done]

    def pending_time(self, event_id: str) -> int | None:
        """Time of the action point already written for this id, if a previous attempt stopped half-way."""
        with self._lock:
            return self._pending.get(event_id)

    def written(self, event_id: str, action_ns: int) -> None:
        """The action point is in InfluxDB; the CSV row is not yet."""
        with self._lock:
            self._pending[event_id] = action_ns

    def commit(self, done: Mapping[str, int]) -> None:
        """These claimed ids are recorded: done for good.

        Each maps to the time it is kept by (see :meth:`prune`): when it was recorded, or its
        event's time if that is later (a service clock running ahead).
        """
        with self._lock:
            for eid, t in done.items():
                self._inflight.discard(eid)
                self._pending.pop(eid, None)
                self._done[eid] = t

    def release(self, event_ids: Iterable[str]) -> None:
        """Recording failed: give the claims back (pending times are kept) so a later pass retries."""
        with self._lock:
            for eid in event_ids:
                self._inflight.discard(eid)

    def prune(self, before_ns: int) -> int:
        """Forget done ids kept by a time before ``before_ns``; returns how many.

        The catch-up loop calls it with a bound below its query window, so a forgotten id can
        no longer come back.
        """
        with self._lock:
            old = [eid for eid, t in self._done.items() if t < before_ns]
            for eid in old:
                del self._done[eid]
            return len(old)

    def is_done(self, event_id: str) -> bool:
        """True once the id is recorded."""
        with self._lock:
            return event_id in self._done

    def counts(self) -> dict[str, int]:
        """Sizes of the three sets (for /healthz)."""
        with self._lock:
            return {"done": len(self._done), "inflight": len(self._inflight), "pending": len(self._pending)}
