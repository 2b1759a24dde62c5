"""Semantic sampling for the classify UDF: keep chosen classes/categories, sample the rest.

Pure logic, no I/O. An event whose ``error_class`` or ``category`` is in ``keep`` is always
kept with weight 1. Any other event is kept when a hash of its sample key (the event_id)
falls below ``rate``, with weight ``1 / rate``: the same event is sampled the same way in
every process and on every replay. Dropped events are counted per (service, category); the
next kept event of that key carries the count (``sample_dropped``) and the count restarts,
so ``sum(1 + sample_dropped)`` over the kept events is the exact number of events up to
the last kept one of each key, and ``sum(sample_weight)`` is an unbiased estimate at any time.

At most ``max_keys`` (service, category) counters are held (LRU); a counter evicted with
drops pending adds them to ``lost``.
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict
from collections.abc import Iterable
from typing import Final, NamedTuple

MAX_KEYS: Final = 10_000
_SCALE: Final = float(1 << 64)


def sample_fraction(key: str) -> float:
    """A stable number in [0, 1) for ``key`` (BLAKE2b, so not salted per process like ``hash``)."""
    digest = hashlib.blake2b(key.encode("utf-8", "surrogatepass"), digest_size=8).digest()
    return int.from_bytes(digest, "big") / _SCALE


class Kept(NamedTuple):
    weight: float  # how many events this one stands for (1 for kept classes)
    dropped: int  # events of its (service, category) dropped since the last kept one


class Sampler:
    """The sampling decision of one classify node."""

    __slots__ = ("_pending", "dropped_total", "keep", "kept_total", "lost", "max_keys", "rate", "weight")

    def __init__(self, keep: Iterable[str] = (), rate: float = 1.0, max_keys: int = MAX_KEYS) -> None:
        if not 0.0 < rate <= 1.0:
            raise ValueError(f"sample rate must be in (0, 1], got {rate}")
        self.keep = frozenset(keep)
        self.rate = rate
        self.weight = 1.0 / rate
        self.max_keys = max_keys
        self._pending: OrderedDict[tuple[str, str], int] = OrderedDict()
        self.dropped_total = 0
        self.kept_total = 0
        self.lost = 0

    def admit(self, error_class: str, category: str, service: str, sample_key: str) -> Kept | None:
        """Kept (with its weight and the drops it reports) or None (dropped and counted)."""
        if error_class in self.keep or category in self.keep:
            weight = 1.0
        elif self.rate >= 1.0 or sample_fraction(sample_key) < self.rate:
            weight = self.weight
        else:
            self._drop((service, category))
            return None
        self.kept_total += 1
        dropped = self._pending.pop((service, category), 0)
        return Kept(weight, dropped)

    def _drop(self, key: tuple[str, str]) -> None:
        self.dropped_total += 1
        pending = self._pending
        count = pending.pop(key, 0)
        pending[key] = count + 1  # most recent last
        if len(pending) > self.max_keys:
            self.lost += pending.popitem(last=False)[1]

    @property
    def unreported(self) -> int:
        """Drops not (or no longer) reported on a kept event: pending ones plus lost ones."""
        return sum(self._pending.values()) + self.lost

    def pending(self, service: str, category: str) -> int:
        """Drops of this key not yet reported on a kept event."""
        return self._pending.get((service, category), 0)
