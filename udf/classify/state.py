"""The classify UDF's state: per-fingerprint counts (snapshotted) and per-group windows.

Pure data structures, no I/O. Both are bounded:

- :class:`FingerprintTable` keeps at most ``capacity`` fingerprints; the one seen least
  recently is evicted first (LRU), so a flood of one-off fingerprints cannot grow memory and
  the hot ones keep their counts.
- :class:`WindowCounter` keeps the point times of each (group, category) key inside the
  trailing window; at most ``max_keys`` keys (LRU) and ``max_times`` stored times over all
  keys. Beyond that the least recently used keys are dropped, and a single key that alone
  exceeds ``max_times`` forgets its oldest times (its count then saturates at that size).
"""

from __future__ import annotations

import bisect
import json
from collections import OrderedDict, deque
from typing import Final

SNAPSHOT_FORMAT: Final = "errloop_classify"
SNAPSHOT_VERSION: Final = 1
FINGERPRINT_CAPACITY: Final = 10_000
WINDOW_MAX_KEYS: Final = 10_000
WINDOW_MAX_TIMES: Final = 1_000_000


class SnapshotError(ValueError):
    """A snapshot could not be read (corrupt, or not a classify snapshot)."""


class FingerprintTable:
    """``fingerprint -> [first_seen_ns, last_seen_ns, count]``, LRU-bounded.

    Seen times are point times (event time), so replays and restores are deterministic.
    """

    __slots__ = ("_entries", "capacity", "evicted")

    def __init__(self, capacity: int = FINGERPRINT_CAPACITY) -> None:
        if capacity < 1:
            raise ValueError("capacity must be at least 1")
        self.capacity = capacity
        self.evicted = 0
        self._entries: OrderedDict[str, list[int]] = OrderedDict()

    def see(self, fingerprint: str, time_ns: int) -> int:
        """Record one event; return how many events with this fingerprint have been seen."""
        entries = self._entries
        entry = entries.get(fingerprint)
        if entry is None:
            entries[fingerprint] = [time_ns, time_ns, 1]
            if len(entries) > self.capacity:
                entries.popitem(last=False)
                self.evicted += 1
            return 1
        entries.move_to_end(fingerprint)
        if time_ns < entry[0]:
            entry[0] = time_ns
        if time_ns > entry[1]:
            entry[1] = time_ns
        entry[2] += 1
        return entry[2]

    def get(self, fingerprint: str) -> tuple[int, int, int] | None:
        """``(first_seen_ns, last_seen_ns, count)`` or None."""
        entry = self._entries.get(fingerprint)
        return None if entry is None else (entry[0], entry[1], entry[2])

    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, fingerprint: object) -> bool:
        return fingerprint in self._entries

    def to_snapshot(self) -> bytes:
        """Versioned JSON, least recently seen first (restoring keeps the LRU order)."""
        doc = {
            "format": SNAPSHOT_FORMAT,
            "version": SNAPSHOT_VERSION,
            "fingerprints": [[fp, *entry] for fp, entry in self._entries.items()],
        }
        return json.dumps(doc, separators=(",", ":"), ensure_ascii=False).encode("utf-8")

    @classmethod
    def from_snapshot(cls, data: bytes, capacity: int = FINGERPRINT_CAPACITY) -> FingerprintTable | None:
        """Rebuild a table; ``None`` for a snapshot of another version (start empty).

        Raises :class:`SnapshotError` for data that is not a classify snapshot at all. When
        the snapshot holds more fingerprints than ``capacity``, the most recent ones are kept.
        """
        try:
            doc = json.loads(data.decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise SnapshotError(f"snapshot is not JSON: {exc}") from None
        if not isinstance(doc, dict) or doc.get("format") != SNAPSHOT_FORMAT:
            raise SnapshotError("snapshot was not written by errloop_classify")
        if doc.get("version") != SNAPSHOT_VERSION:
            return None
        rows = doc.get("fingerprints")
        if not isinstance(rows, list):
            raise SnapshotError("snapshot has no fingerprint list")
        table = cls(capacity)
        for i, row in enumerate(rows[-capacity:]):
            if (
                not isinstance(row, list)
                or len(row) != 4
                or not isinstance(row[0], str)
                or not all(isinstance(v, int) and not isinstance(v, bool) for v in row[1:])
            ):
                raise SnapshotError(f"snapshot fingerprint entry {i} is malformed: {row!r:.80}")
            table._entries[row[0]] = [row[1], row[2], row[3]]
        return table


class WindowCounter:
    """Counts events per key whose time lies in ``(t - window_ns, t]`` for the event at ``t``."""

    __slots__ = ("_keys", "_total", "max_keys", "max_times", "window_ns")

    def __init__(self, window_ns: int, max_keys: int = WINDOW_MAX_KEYS, max_times: int = WINDOW_MAX_TIMES) -> None:
        if window_ns <= 0:
            raise ValueError("window must be positive")
        self.window_ns = window_ns
        self.max_keys = max_keys
        self.max_times = max_times
        self._keys: OrderedDict[tuple[str, str], deque[int]] = OrderedDict()
        self._total = 0

    def add(self, key: tuple[str, str], time_ns: int) -> int:
        """Record an event of ``key`` at ``time_ns``; return the count in its trailing window.

        In-order events (the usual case) are O(1) amortised. An event older than the newest
        one of its key is inserted in order and counted against the times still held
        (times older than one window behind the newest have been forgotten).
        """
        keys = self._keys
        times = keys.get(key)
        if times is None:
            times = keys[key] = deque()
            if len(keys) > self.max_keys:
                self._total -= len(keys.popitem(last=False)[1])
        else:
            keys.move_to_end(key)
        self._total += 1
        in_order = not times or time_ns >= times[-1]
        if in_order:
            times.append(time_ns)
            cutoff = time_ns - self.window_ns
            while times[0] <= cutoff:
                times.popleft()
                self._total -= 1
        else:
            bisect.insort(times, time_ns)
        while self._total > self.max_times:
            oldest_key = next(iter(keys))
            if oldest_key == key:
                times.popleft()
                self._total -= 1
            else:
                self._total -= len(keys.pop(oldest_key))
        if in_order:
            return len(times)
        count = bisect.bisect_right(times, time_ns) - bisect.bisect_right(times, time_ns - self.window_ns)
        return max(count, 1)  # the event itself, even if the cap just dropped it

    def __len__(self) -> int:
        """Number of keys held."""
        return len(self._keys)

    @property
    def stored_times(self) -> int:
        """Number of event times held over all keys."""
        return self._total
