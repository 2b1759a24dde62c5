"""The plugin's own counters (contract.INGEST_COUNTERS), cumulative since start."""

from __future__ import annotations

from errloop.rules import contract


class IngestCounters:
    """``lines_read`` every line read (blank and skipped ones too), ``events`` events written,
    ``unparsed`` lines stored as format=unparsed, ``truncated`` lines cut at max_line_bytes,
    ``rotations`` rotations and truncations seen, ``errors`` internal failures (a parser
    exception, an unwritable point, a file that cannot be read, offsets that cannot be saved),
    ``merged`` runtime panic dumps merged into the panic-level record logged just before
    them (:mod:`errloop.telegraf.errlog.merge`).
    """

    def __init__(self) -> None:
        self.values: dict[str, int] = dict.fromkeys(contract.INGEST_COUNTERS, 0)

    def add(self, name: str, n: int = 1) -> None:
        if name not in self.values:
            raise KeyError(f"{name!r} is not one of contract.INGEST_COUNTERS")
        self.values[name] += n

    def snapshot(self) -> dict[str, int]:
        return dict(self.values)
