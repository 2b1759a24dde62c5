"""Read positions that survive a restart: one JSON file, replaced atomically.

Format (``version`` 1)::

    {"version": 1, "files": [{"path": "/var/log/app.log", "dev": 2049, "ino": 131,
      "offset": 18234, "head_len": 1024, "head": "<blake2b hex of the first head_len bytes>",
      "retired": false, "floor_ns": 0}]}

``offset`` is the end of the last line that was written to stdout and flushed; bytes
after it (a partial line, lines not yet confirmed) are read again after a restart.
``retired`` marks a file already rotated away (still read to its end); ``path`` is then the
name it was followed under. Files written before ``retired`` existed load as not retired.
``floor_ns`` (0: none) is set while the content of a followed file is unknown (just truncated by a
copytruncate, or empty): rotated copies beside it last written at or after that time (ns since the
epoch) may hold generations never read, and are looked for after a restart too. Files written before
``floor_ns`` existed load with 0.
The file is written to a temporary file in the same directory, fsynced, renamed over
the old one, and the directory is fsynced: a crash leaves the old or the new version,
never a torn one.
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Final

log = logging.getLogger("errloop.errlog.offsets")

VERSION: Final = 1


@dataclass(frozen=True, slots=True)
class FileOffset:
    path: str
    dev: int
    ino: int
    offset: int
    head_len: int = 0
    head: str = ""
    retired: bool = False
    floor_ns: int = 0


class OffsetStore:
    """Loads and saves :class:`FileOffset` entries at ``path``."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.saves = 0

    def load(self) -> list[FileOffset]:
        """The saved entries; an absent file gives none, a damaged one is set aside and gives none."""
        try:
            raw = self.path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return []
        except OSError as exc:
            log.warning("cannot read offsets %s: %s; starting without them", self.path, exc)
            return []
        try:
            doc = json.loads(raw)
            if not isinstance(doc, dict) or doc.get("version") != VERSION:
                raise ValueError(f"unknown version {doc.get('version') if isinstance(doc, dict) else doc!r}")
            entries = [
                FileOffset(
                    path=str(e["path"]),
                    dev=int(e["dev"]),
                    ino=int(e["ino"]),
                    offset=int(e["offset"]),
                    head_len=int(e.get("head_len", 0)),
                    head=str(e.get("head", "")),
                    retired=bool(e.get("retired", False)),
                    floor_ns=int(e.get("floor_ns", 0)),
                )
                for e in doc["files"]
            ]
        except (ValueError, KeyError, TypeError) as exc:
            aside = self.path.with_name(self.path.name + ".damaged")
            log.error("offsets file %s is damaged (%s); moved to %s, starting without it", self.path, exc, aside)
            try:
                os.replace(self.path, aside)
            except OSError:
                pass
            return []
        return [e for e in entries if e.offset >= 0]

    def saved_ns(self) -> int | None:
        """When the entries were last saved (the file's mtime), None without a file."""
        try:
            return self.path.stat().st_mtime_ns
        except OSError:
            return None

    def save(self, entries: Iterable[FileOffset]) -> None:
        """Replace the file with ``entries`` atomically (raises OSError when the disk refuses)."""
        doc = {"version": VERSION, "files": [asdict(e) for e in entries]}
        data = json.dumps(doc, separators=(",", ":"), sort_keys=True).encode("utf-8")
        directory = self.path.parent
        directory.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{self.path.name}.", suffix=".tmp", dir=directory)
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(data)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, self.path)
        except BaseException:
            try:
                os.unlink(tmp)
            except OSError:
                pass
            raise
        try:
            dfd = os.open(directory, os.O_RDONLY)
        except OSError:
            pass
        else:
            try:
                os.fsync(dfd)
            except OSError:
                pass
            finally:
                os.close(dfd)
        self.saves += 1
