"""The closed-loop CSV file: header once, rows appended and fsync'ed, read back at start."""

from __future__ import annotations

import csv
import os
import threading
from collections.abc import Mapping, Sequence
from pathlib import Path

from errloop.deploy.serve.actions import header_line, render_csv
from errloop.deploy.serve.model import parse_rfc3339_ns, valid_event_id


class CsvHeaderMismatch(RuntimeError):
    """The CSV file exists with another header: errloop serve will not append to it."""


class ClosedLoopCsv:
    """Appends closed-loop rows to one CSV file; one writer at a time."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()

    def check(self) -> None:
        """Refuse a file whose header is not errloop's (before anything is appended to it)."""
        first = self._first_line()
        if first is not None and first != header_line():
            raise CsvHeaderMismatch(
                f"{self.path}: its header is not errloop's closed-loop header; "
                "give another --csv path or move the file away"
            )

    def _first_line(self) -> str | None:
        try:
            with self.path.open("r", encoding="utf-8", newline="") as f:
                line = f.readline()
        except FileNotFoundError:
            return None
        return line.rstrip("\r\n") if line else None

    def recorded(self) -> dict[str, int]:
        """event_id -> recorded_at (ns) of every row already in the file; unreadable rows are skipped."""
        out: dict[str, int] = {}
        try:
            f = self.path.open("r", encoding="utf-8", errors="replace", newline="")
        except FileNotFoundError:
            return out
        with f:
            try:
                for row in csv.DictReader(f):
                    eid = row.get("event_id")
                    if not valid_event_id(eid):
                        continue
                    assert isinstance(eid, str)
                    try:
                        out[eid] = parse_rfc3339_ns(row.get("recorded_at") or "")
                    except ValueError:
                        out[eid] = 0
            except csv.Error:
                pass  # a torn last row (crash mid-write): what was read before it counts
        return out

    def append(self, rows: Sequence[Mapping[str, str]]) -> None:
        """Append rows (header first if the file is new or empty), then fsync."""
        if not rows:
            return
        with self._lock:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
            try:
                size = os.fstat(fd).st_size
                text = render_csv(rows, header=size == 0)
                if size > 0 and not self._ends_with_newline(size):
                    text = "\n" + text  # never glue a row onto a torn one
                data = text.encode("utf-8")
                view = memoryview(data)
                while view:
                    n = os.write(fd, view)
                    view = view[n:]
                os.fsync(fd)
            finally:
                os.close(fd)
            if size == 0:
                _fsync_dir(self.path.parent)

    def _ends_with_newline(self, size: int) -> bool:
        with self.path.open("rb") as f:
            f.seek(size - 1)
            return f.read(1) == b"\n"


def _fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
