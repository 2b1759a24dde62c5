"""Follow log files: complete lines only, rotation-aware, positions saved only once delivered.

Behaviour (each point is tested in tests/telegraf/test_errlog_tailer.py):

- **Files** are paths and globs (``**`` allowed), matched again every
  ``discover_interval_s``; a file is identified by (device, inode), so two globs
  matching one file read it once.
- **Start**: a file with a saved position resumes there. A file at a saved path with
  another inode was replaced while we were down and is read from its start; the old
  inode is looked for beside its old path (``app.log`` renamed to ``app.log.1``) and
  read to its end. On the very first run (no offsets file yet) a file starts at its end
  (at the start of its last, unfinished line), or at its beginning with
  ``from_beginning``. A file without a saved position once offsets exist, or one that
  appears while we run, is new and is read from its beginning.
- **Lines** end with ``\\n``. A partial last line waits for its newline. A line longer
  than ``max_line_bytes`` is kept cut to that length and flagged ``truncated``; the
  rest up to its newline is dropped.
- **Rotation**: rename-and-create (the path shows another inode, or is gone) keeps the
  old file open and reads it until it has not grown for ``rotate_wait_s``; a final
  line without newline is then delivered too. copytruncate (same inode, size below our
  position, or the first bytes changed — also when a read found them changed) reads the
  copy beside the file (same first bytes, newest first; at least as long as our position,
  else the newest shorter one: lines read between the copy and the truncate) on from our
  position, then the file again from 0. Each counts one rotation.
- **Unseen generations**: at a rotation (and at a start that finds the saved file moved
  or truncated), rotated siblings (``app.log.N``, ``app.log-…``; not compressed) last
  written after the followed generation and not followed yet are read from 0 under the
  path's name (``recovered`` counts them): they came and went between two looks.
  While the file's content is unknown (just truncated, or empty) a floor time is kept
  (and saved): once the file has data, siblings last written since then are read first,
  so a generation written and copied away before errlog read a byte of it is not lost.
  First bytes are compared on the very file listed (opened, inode checked): a name
  shifted by logrotate meanwhile makes errlog list again.
- **Positions**: :meth:`Tailer.poll` returns lines; :meth:`Tailer.commit` declares
  them delivered (the shim calls it after the batch is on stdout) and saves positions
  at most every ``save_interval_s``; :meth:`Tailer.close` saves the delivered
  positions. A restart therefore loses nothing, and repeats at most the lines of the
  last ``save_interval_s`` after a hard kill (they keep their event ids).
- **Bounds**: at most ``max_batch_lines`` lines per poll, and per file one
  ``read_chunk`` of bytes (more only to finish a line, up to 64 MiB); memory holds one
  partial line (at most ``max_line_bytes``) per file.
"""

from __future__ import annotations

import glob
import hashlib
import logging
import os
import stat
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Final

from errloop.telegraf.errlog.offsets import FileOffset, OffsetStore

log = logging.getLogger("errloop.errlog.tailer")

HEAD_BYTES: Final = 1024
TAIL_SCAN_BYTES: Final = 65_536
READ_CHUNK: Final = 1 << 20
MAX_READ_PER_POLL: Final = 64 << 20
DONE_MEMORY: Final = 4096  # closed files remembered so a rotated sibling is not read twice
GONE_MEMORY_S: Final = 60.0  # how long a vanished path is watched for its successor
COMPRESSED: Final = (".gz", ".bz2", ".xz", ".zst", ".zip", ".lz4", ".z", ".Z")

FileKey = tuple[int, int]


@dataclass(frozen=True, slots=True)
class Line:
    """One line as read: ``data`` without its ``\\n``; ``offset`` of its first byte in ``source``."""

    source: str
    offset: int
    data: bytes
    truncated: bool = False


@dataclass
class _Tracked:
    source: str  # the name the file was first read under (part of its event ids)
    path: str | None  # the path it is watched under; None once rotated away or deleted
    key: FileKey
    fd: int
    pos: int  # next byte to read
    delivered: int  # end of the last line handed out
    pending: bytearray = field(default_factory=bytearray)
    discarding: bool = False  # inside an over-long line: drop bytes up to its newline
    kept: bytes = b""  # the kept head of that over-long line
    head_len: int = 0
    head: str = ""
    size_seen: int = -1
    last_growth: float = 0.0
    retired_at: float | None = None
    mtime_seen: int = -1
    # while what the watched file holds is unknown (just truncated, or seen empty): rotated copies
    # last written at or after this may hold generations never seen; looked for once it has data
    floor_ns: int | None = None


def _hash(data: bytes) -> str:
    return hashlib.blake2b(data, digest_size=16).hexdigest()


class Tailer:
    """See the module docstring."""

    def __init__(
        self,
        patterns: Sequence[str],
        *,
        from_beginning: bool = False,
        max_line_bytes: int = 65_536,
        store: OffsetStore | None = None,
        max_batch_lines: int = 5000,
        discover_interval_s: float = 1.0,
        rotate_wait_s: float = 5.0,
        save_interval_s: float = 1.0,
        read_chunk: int = READ_CHUNK,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.patterns = tuple(patterns)
        self.from_beginning = from_beginning
        self.max_line_bytes = max_line_bytes
        self.store = store
        self.max_batch_lines = max_batch_lines
        self.discover_interval_s = discover_interval_s
        self.rotate_wait_s = rotate_wait_s
        self.save_interval_s = save_interval_s
        self.read_chunk = read_chunk
        self.clock = clock
        self.rotations = 0
        self.errors = 0
        self._files: dict[FileKey, _Tracked] = {}
        self._by_path: dict[str, FileKey] = {}
        self._saved_by_key: dict[FileKey, FileOffset] = {}
        self._saved_by_path: dict[str, FileOffset] = {}
        self._started = False
        self._next_discover = 0.0
        self._acked: list[FileOffset] | None = None
        self._last_saved: list[FileOffset] | None = None
        self._next_save = 0.0
        self._warned: set[str] = set()
        self._save_failures = 0
        self._had_state = store is not None and store.path.exists()
        self._saved_ns = (store.saved_ns() if store is not None else None) or 0
        # live files resumed on a weak identity (fewer than HEAD_BYTES known): (path, source)
        self._weak: list[tuple[str, str]] = []
        self._unresolved: list[FileOffset] = []  # saved files not found where they were
        self._done: dict[FileKey, tuple[int, str]] = {}  # closed files: key → (head length, head hash)
        self._gone: dict[str, tuple[str, int, float]] = {}  # vanished path → (source, mtime_ns, since)
        self.recovered = 0  # rotated files found and read that were never seen at their path
        if store is not None:
            for entry in store.load():
                self._saved_by_key[(entry.dev, entry.ino)] = entry
                self._saved_by_path[entry.path] = entry

    # -- public --------------------------------------------------------------------------
    def poll(self) -> list[Line]:
        """Lines that are complete now, oldest file data first (rotated-away files before their successors)."""
        now = self.clock()
        if not self._started or now >= self._next_discover:
            self._discover(now)
            self._next_discover = now + self.discover_interval_s
        self._check_paths(now)
        out: list[Line] = []
        done: set[FileKey] = set()
        while len(out) < self.max_batch_lines:  # again for files found while reading (see _look_for_unseen)
            todo = [t for t in self._files.values() if t.key not in done]
            if not todo:
                break
            for tracked in sorted(todo, key=lambda t: t.retired_at is None):
                if len(out) >= self.max_batch_lines:
                    break
                done.add(tracked.key)
                self._read(tracked, out, now)
        self._retire_idle(now, out)
        return out

    def positions(self, hold: Mapping[str, int] | None = None) -> list[FileOffset]:
        """The positions after every line handed out so far; ``hold``: source → an offset not to pass
        (the first line of a multi-line record still being joined, see errlog.group)."""
        hold = hold or {}
        return [
            FileOffset(
                path=t.source if t.path is None else t.path,
                dev=t.key[0],
                ino=t.key[1],
                offset=min(t.delivered, hold.get(t.source, t.delivered)),
                head_len=t.head_len,
                head=t.head,
                retired=t.path is None,
                floor_ns=t.floor_ns or 0,
            )
            for t in self._files.values()
        ]

    def commit(self, force: bool = False, hold: Mapping[str, int] | None = None) -> None:
        """The lines handed out so far are delivered (those from ``hold``'s offsets on are not yet);
        save positions (throttled unless ``force``)."""
        self._acked = self.positions(hold)
        now = self.clock()
        if force or now >= self._next_save:
            self._save(self._acked)
            self._next_save = now + self.save_interval_s

    def close(self) -> None:
        """Save the delivered positions (not lines handed out but never committed) and close the files."""
        if self._acked is not None:
            self._save(self._acked)
        for tracked in self._files.values():
            self._close_fd(tracked)
        self._files.clear()
        self._by_path.clear()

    @property
    def watched(self) -> list[str]:
        return sorted(self._by_path)

    # -- discovery -----------------------------------------------------------------------
    def _warn_once(self, key: str, msg: str, *args: object) -> None:
        """Log and count a problem once per file and kind (a retry every poll would flood both)."""
        if key not in self._warned:
            self._warned.add(key)
            self.errors += 1
            log.warning(msg, *args)

    def _glob(self) -> list[str]:
        paths: dict[str, None] = {}
        for pattern in self.patterns:
            expanded = os.path.expanduser(pattern)
            if glob.has_magic(expanded):
                for p in sorted(glob.glob(expanded, recursive=True)):
                    paths[p] = None
            else:
                paths[expanded] = None
        return [p for p in paths if os.path.isfile(p)]

    def _discover(self, now: float) -> None:
        first = not self._started
        self._started = True
        for path in self._glob():
            if path in self._by_path:
                continue
            if path in self._gone:
                self._reappeared(path, now)
                continue
            self._open(path, now, first=first)
        if first:
            self._unresolved.extend(self._saved_by_key.values())
            self._saved_by_key.clear()
            if self._unresolved:
                self._find_moved(now)
            for path, source in self._weak:  # after every saved file is followed again
                self._catch_up(path, source, self._saved_ns, now)
            self._weak.clear()

    def _find_moved(self, now: float) -> None:
        """Saved files no longer at their path (rotated while we were down): find them beside it —
        by inode (renamed) or by their first bytes (copied, then truncated) — and read them on from
        their saved offset; then read the rotated files made since, which we never saw."""
        catch_up: dict[str, int] = {}
        for entry in self._unresolved:
            if self._still_there(entry):
                log.info("%s is no longer among the files to follow; not read", entry.path)
                continue
            tracked = None
            for _ in range(5):
                found = self._locate(entry)
                if found is None:
                    break
                path, st = found
                key = (st.st_dev, st.st_ino)
                tracked = self._open(path, now, first=True, watch=False, source=entry.path, resume=entry, expect=key)
                if tracked is not None:
                    break
            if found is None:
                self._warn_once(
                    entry.path + ":lost",
                    "%s (inode %d) was rotated away while errlog was down and is not found beside it; "
                    "its lines from byte %d on are lost",
                    entry.path,
                    entry.ino,
                    entry.offset,
                )
                continue
            if tracked is None:
                continue
            tracked.retired_at = now
            log.info("reading %s on from byte %d (was %s)", path, entry.offset, entry.path)
            if not entry.retired:
                catch_up[entry.path] = max(catch_up.get(entry.path, 0), st.st_mtime_ns)
        self._unresolved.clear()
        for source, after_ns in catch_up.items():
            self._catch_up(source, source, after_ns, now)

    def _still_there(self, entry: FileOffset) -> bool:
        """The saved file is at its path, unchanged: the patterns no longer match it."""
        try:
            st = os.stat(entry.path)
        except OSError:
            return False
        key = (entry.dev, entry.ino)
        return (st.st_dev, st.st_ino) == key and self._key_head_matches(
            entry.path, key, entry.head_len, entry.head
        ) is True

    def _locate(self, entry: FileOffset) -> tuple[str, os.stat_result] | None:
        """The saved file beside its path: by inode, else a rotated copy with its first bytes (newest)."""
        for _ in range(5):
            copies: list[tuple[str, os.stat_result]] = []
            shifted = False
            for path, st in self._siblings(entry.path, rotated_only=False):
                key = (st.st_dev, st.st_ino)
                if key in self._files or st.st_size < entry.offset:
                    continue
                same = key == (entry.dev, entry.ino)
                if not same and (entry.head_len <= 0 or not self._is_rotated_name(entry.path, path)):
                    continue
                matches = self._key_head_matches(path, key, entry.head_len, entry.head)
                if matches is None:
                    shifted = True  # a name changed its file while we looked: list again
                    break
                if matches and same:
                    return path, st
                if matches:
                    copies.append((path, st))
            if not shifted:
                return max(copies, key=lambda c: c[1].st_mtime_ns) if copies else None
        return None

    @staticmethod
    def _is_rotated_name(path: str, candidate: str) -> bool:
        """``app.log.1``, ``app.log-20241127``, ``app.log_old`` beside ``app.log``; not compressed ones."""
        directory, base = os.path.split(path)
        cdir, name = os.path.split(candidate)
        return (
            cdir == directory
            and len(name) > len(base) + 1
            and name.startswith(base)
            and name[len(base)] in ".-_"
            and not name.endswith(COMPRESSED)
        )

    def _siblings(self, path: str, *, rotated_only: bool = True) -> list[tuple[str, os.stat_result]]:
        """Regular files in ``path``'s directory (only its rotated names when ``rotated_only``), oldest first.

        Listed until two listings agree: a logrotate shifting ``app.log.N`` → ``app.log.N+1``
        while we list would otherwise hide a file from us."""
        previous: list[tuple[str, FileKey]] | None = None
        scan: list[tuple[str, os.stat_result]] = []
        for _ in range(5):
            scan = self._list_siblings(path, rotated_only)
            names = [(p, (st.st_dev, st.st_ino)) for p, st in scan]
            if names == previous:
                break
            previous = names
        return scan

    def _list_siblings(self, path: str, rotated_only: bool) -> list[tuple[str, os.stat_result]]:
        directory = os.path.dirname(path) or "."
        try:
            names = os.listdir(directory)
        except OSError:
            return []
        out: list[tuple[str, os.stat_result]] = []
        for name in names:
            candidate = os.path.join(directory, name)
            if candidate == path or (rotated_only and not self._is_rotated_name(path, candidate)):
                continue
            try:
                st = os.stat(candidate)
            except OSError:
                continue
            if stat.S_ISREG(st.st_mode):
                out.append((candidate, st))
        out.sort(key=lambda c: (c[1].st_mtime_ns, c[0]))
        return out

    @staticmethod
    def _open_key(path: str, key: FileKey) -> int | None:
        """A descriptor of ``path`` if it still holds the file ``key`` (None: renamed away or gone since listed)."""
        try:
            fd = os.open(path, os.O_RDONLY | getattr(os, "O_CLOEXEC", 0))
        except OSError:
            return None
        try:
            st = os.fstat(fd)
        except OSError:
            st = None
        if st is None or (st.st_dev, st.st_ino) != key:
            os.close(fd)
            return None
        return fd

    def _key_head_matches(self, path: str, key: FileKey, head_len: int, head: str) -> bool | None:
        """Whether the file ``key`` listed at ``path`` starts with ``head``; None when ``path`` holds another
        file by now (a rotation shifting names while we look: the caller lists again). Checking by name
        alone would compare the head of the file shifted into that name, and take a copy for another."""
        fd = self._open_key(path, key)
        if fd is None:
            return None
        try:
            return self._head_matches(fd, head_len, head)
        finally:
            os.close(fd)

    def _skip_sibling(self, candidate: str, key: FileKey, size: int, live: _Tracked | None) -> bool | None:
        """A rotated sibling not to read: read and closed already, empty, or a copy (perhaps still being
        written) of the generation ``path`` holds and we read (the copytruncate step reads it on when the
        truncation comes). None: the name holds another file by now."""
        fd = self._open_key(candidate, key)
        if fd is None:
            return None
        try:
            done = self._done.get(key)
            if done is not None and self._head_matches(fd, *done):
                return True
            if size == 0:
                return True
            return live is not None and live.head_len > 0 and self._head_matches(fd, live.head_len, live.head)
        finally:
            os.close(fd)

    def _catch_up(self, path: str, source: str, after_ns: int, now: float) -> int:
        """Read the rotated files beside ``path`` last written at or after ``after_ns`` that we do not
        follow: generations that came and were rotated away between two looks (or while we were down).
        Returns how many were found."""
        live_key = self._by_path.get(path)
        live = self._files.get(live_key) if live_key is not None else None
        if live is not None:
            self._update_head(live)  # what it holds now; a copy of that is read when its truncation is seen
        found = 0
        for _ in range(5):
            moved = False
            for candidate, st in self._siblings(path):
                key = (st.st_dev, st.st_ino)
                if st.st_mtime_ns < after_ns or key in self._files:
                    continue
                skip = self._skip_sibling(candidate, key, st.st_size, live)
                if skip:
                    continue
                tracked = None
                if skip is not None:
                    tracked = self._open(
                        candidate, now, first=False, watch=False, source=source, resume=None, expect=key
                    )
                if tracked is None:
                    moved = True  # renamed again since we listed it: list again
                    continue
                tracked.retired_at = now
                self.recovered += 1
                found += 1
                log.info("%s was rotated before errlog saw it at %s; reading it", candidate, path)
            if not moved:
                break
        return found

    def _look_for_unseen(self, tracked: _Tracked, now: float) -> int:
        """Read what was rotated away since ``tracked.floor_ns`` (see :class:`_Tracked`); the floor is
        dropped once the watched file's head is known (a copy of it is then found by that head)."""
        if tracked.floor_ns is None or tracked.path is None:
            return 0
        found = self._catch_up(tracked.path, tracked.source, tracked.floor_ns, now)
        if tracked.head_len > 0:
            tracked.floor_ns = None
        return found

    def _open(
        self,
        path: str,
        now: float,
        *,
        first: bool,
        watch: bool = True,
        source: str | None = None,
        resume: FileOffset | bool | None = True,
        expect: FileKey | None = None,
    ) -> _Tracked | None:
        """Follow ``path``. ``resume``: True = where a saved position says (see ``_start_position``);
        an entry = at its offset; None = from the start. ``expect``: the file's key as listed (None
        when ``path`` holds another file by now)."""
        try:
            fd = os.open(path, os.O_RDONLY | getattr(os, "O_CLOEXEC", 0))
        except FileNotFoundError:
            return None  # gone since it was listed (rotated): not an error
        except OSError as exc:
            self._warn_once(path + ":open", "cannot open %s: %s", path, exc.strerror)
            return None
        st = os.fstat(fd)
        key = (st.st_dev, st.st_ino)
        if expect is not None and key != expect:
            os.close(fd)
            return None
        if key in self._files:  # the same file under a second name
            os.close(fd)
            existing = self._files[key]
            if watch and existing.path is None:
                existing.path = path
                existing.retired_at = None
                self._by_path[path] = key
            return existing
        entry: FileOffset | None
        if resume is True:
            start, entry = self._start_position(path, fd, st.st_size, key, first)
        elif isinstance(resume, FileOffset):
            start, entry = resume.offset, resume
        else:
            start, entry = 0, None
        tracked = _Tracked(
            source=source or (entry.path if entry is not None else path),
            path=path if watch else None,
            key=key,
            fd=fd,
            pos=start,
            delivered=start,
            last_growth=now,
        )
        if entry is not None and start == entry.offset:
            tracked.head_len, tracked.head = entry.head_len, entry.head
            if entry.floor_ns > 0 and watch:
                tracked.floor_ns = entry.floor_ns
        self._files[key] = tracked
        if watch:
            self._by_path[path] = key
        log.info("following %s from byte %d", path, start)
        return tracked

    def _start_position(
        self, path: str, fd: int, size: int, key: FileKey, first: bool
    ) -> tuple[int, FileOffset | None]:
        entry = self._saved_by_key.pop(key, None)
        if entry is not None:
            if entry.offset <= size and self._head_matches(fd, entry.head_len, entry.head):
                if entry.head_len < HEAD_BYTES and not entry.retired:
                    # a short head (none at all just after a copytruncate) cannot tell that the
                    # file was truncated and rotated while we were down: look for what was rotated
                    self._weak.append((path, entry.path))
                return entry.offset, entry
            self._unresolved.append(entry)  # same inode, other content: truncated, or a new file
            return 0, None
        if path in self._saved_by_path or not first or self._had_state:
            return 0, None  # replaced or created since the last run, or appeared while we run: all of it is new
        if self.from_beginning:
            return 0, None
        return self._tail_start(fd, size), None

    @staticmethod
    def _head_matches(fd: int, head_len: int, head: str) -> bool:
        if head_len <= 0:
            return True
        try:
            data = os.pread(fd, head_len, 0)
        except OSError:
            return False
        return len(data) == head_len and _hash(data) == head

    @staticmethod
    def _tail_start(fd: int, size: int) -> int:
        """The start of the last unfinished line, or the end when the file ends with a newline."""
        if size == 0:
            return 0
        back = min(size, TAIL_SCAN_BYTES)
        try:
            data = os.pread(fd, back, size - back)
        except OSError:
            return size
        i = data.rfind(b"\n")
        if i >= 0:
            return size - back + i + 1
        return 0 if back == size else size

    # -- rotation ------------------------------------------------------------------------
    def _retire(self, tracked: _Tracked, now: float) -> None:
        if tracked.path is not None:
            self._by_path.pop(tracked.path, None)
        tracked.path = None
        tracked.retired_at = now
        tracked.last_growth = now

    def _mtime_ns(self, tracked: _Tracked) -> int:
        try:
            return os.fstat(tracked.fd).st_mtime_ns
        except OSError:
            return 0

    def _reappeared(self, path: str, now: float) -> None:
        """A path that vanished (renamed away) exists again: read what was rotated in between, then it."""
        source, after_ns, since = self._gone.pop(path)
        if self._open(path, now, first=False) is None:
            self._gone[path] = (source, after_ns, since)
        self._catch_up(path, source, after_ns, now)

    def _check_paths(self, now: float) -> None:
        for path, (_, _, since) in list(self._gone.items()):
            if os.path.isfile(path):
                self._reappeared(path, now)
            elif now - since > GONE_MEMORY_S:
                del self._gone[path]
        for path, key in list(self._by_path.items()):
            tracked = self._files[key]
            try:
                st = os.stat(path)
            except FileNotFoundError:
                self._retire(tracked, now)
                self.rotations += 1
                self._gone[path] = (tracked.source, self._mtime_ns(tracked), now)
                log.info("%s is gone; reading the rest of the old file", path)
                continue
            except OSError as exc:
                self._warn_once(path + ":stat", "cannot stat %s: %s", path, exc.strerror)
                continue
            if (st.st_dev, st.st_ino) != key:
                self._retire(tracked, now)
                self.rotations += 1
                log.info("%s was rotated; following the new file from its start", path)
                mtime_ns = self._mtime_ns(tracked)
                # open first: what is rotated away after this is then found by the catch-up
                if self._open(path, now, first=False) is None:  # renamed away again, not created yet
                    self._gone[path] = (tracked.source, mtime_ns, now)
                self._catch_up(path, tracked.source, mtime_ns, now)
                continue
            if st.st_size < tracked.pos or (
                (st.st_size != tracked.size_seen or st.st_mtime_ns != tracked.mtime_seen)
                and not self._head_matches(tracked.fd, tracked.head_len, tracked.head)
            ):
                self.rotations += 1
                self._truncated(path, tracked, now)

    def _find_copy(self, path: str, tracked: _Tracked) -> tuple[tuple[str, os.stat_result] | None, bool]:
        """The copy of the generation ``tracked`` was reading (its first bytes), newest first; and whether
        to list again (a name changed its file while we looked). A copy shorter than our position is
        taken when no other is: the lines written between the copy and the truncation were read from
        the file itself (they are in no file now)."""
        short = None
        for candidate, st in reversed(self._siblings(path)):
            key = (st.st_dev, st.st_ino)
            if key in self._files or st.st_size < tracked.head_len:
                continue
            matches = self._key_head_matches(candidate, key, tracked.head_len, tracked.head)
            if matches is None:
                return None, True
            if not matches:
                continue
            if st.st_size >= tracked.pos:
                return (candidate, st), False
            if short is None:
                short = candidate, st
        return short, False

    def _truncated(self, path: str, tracked: _Tracked, now: float) -> None:
        """copytruncate: go on reading the copy (``app.log.1``) from our position, read any
        generation copied away since, and read the file again from its start."""
        copy = None
        moved: _Tracked | None = None
        for _ in range(5) if tracked.head_len > 0 else ():
            copy, relist = self._find_copy(path, tracked)
            if copy is None:
                if relist:
                    continue
                break
            key = (copy[1].st_dev, copy[1].st_ino)
            moved = self._open(copy[0], now, first=False, watch=False, source=tracked.source, resume=None, expect=key)
            if moved is not None:
                break
            copy = None  # renamed again since we listed it: list again
        if copy is not None:
            if moved is not None and moved.pos == 0 and moved.key != tracked.key:
                moved.pos, moved.delivered = tracked.pos, tracked.delivered
                moved.pending, tracked.pending = tracked.pending, bytearray()
                moved.discarding, moved.kept = tracked.discarding, tracked.kept
                moved.head_len, moved.head = tracked.head_len, tracked.head
                moved.retired_at = now
                log.info(
                    "%s was truncated (copytruncate); reading its copy %s on from byte %d", path, copy[0], moved.pos
                )
        elif tracked.pos > 0:
            log.warning(
                "%s was truncated and no copy of it is found beside it; lines after byte %d may be lost",
                path,
                tracked.pos,
            )
        tracked.pos = tracked.delivered = 0
        tracked.pending.clear()
        tracked.discarding = False
        tracked.kept = b""
        tracked.head_len, tracked.head = 0, ""
        tracked.size_seen = -1
        # generations copied away after ours (after our last look when no copy is found), before what
        # the file holds now; looked for now and, while the file is empty, again once it is written
        if copy is not None:
            tracked.floor_ns = copy[1].st_mtime_ns
        elif tracked.mtime_seen >= 0:
            tracked.floor_ns = tracked.mtime_seen + 1
        self._look_for_unseen(tracked, now)

    # -- reading -------------------------------------------------------------------------
    def _update_head(self, tracked: _Tracked) -> bool:
        """Extend the known head to HEAD_BYTES; False when the file no longer starts with it."""
        if tracked.head_len >= HEAD_BYTES:
            return self._head_matches(tracked.fd, tracked.head_len, tracked.head)
        try:
            data = os.pread(tracked.fd, HEAD_BYTES, 0)
        except OSError:
            return True
        if tracked.head_len > 0 and (len(data) < tracked.head_len or _hash(data[: tracked.head_len]) != tracked.head):
            return False  # truncated since we looked: keep the old head so that _check_paths sees it
        if len(data) > tracked.head_len:
            tracked.head_len, tracked.head = len(data), _hash(data)
        return True

    def _read(self, tracked: _Tracked, out: list[Line], now: float) -> None:
        try:
            st = os.fstat(tracked.fd)
        except OSError:
            return
        size = st.st_size
        tracked.mtime_seen = st.st_mtime_ns
        if size != tracked.size_seen:
            tracked.size_seen = size
            tracked.last_growth = now
            if not self._update_head(tracked) and tracked.path is not None:
                # truncated since _check_paths looked: it finds that next time (not by the size and
                # time, which may not change again when the writer goes quiet)
                tracked.size_seen = -1
                return
        if tracked.path is not None and tracked.head_len == 0:
            if size == 0 and tracked.floor_ns is None:
                # empty: a whole generation may be written and copied away (copytruncate) before the
                # next look, with nothing left in the file to tell its truncation by
                tracked.floor_ns = st.st_mtime_ns + 1
        elif tracked.floor_ns is not None and self._look_for_unseen(tracked, now):
            return  # generations rotated away before what the file holds now: read them first
        before = len(out)
        read = 0
        while tracked.pos < size and len(out) < self.max_batch_lines:
            try:
                chunk = os.pread(tracked.fd, min(self.read_chunk, size - tracked.pos), tracked.pos)
            except OSError as exc:
                self._warn_once(tracked.source + ":read", "cannot read %s: %s", tracked.source, exc.strerror)
                return
            if not chunk:
                return
            if tracked.path is not None and not self._head_matches(tracked.fd, tracked.head_len, tracked.head):
                tracked.size_seen = -1  # truncated (and written again) since _check_paths: the chunk may be new data
                return
            self._split(tracked, chunk, out)
            read += len(chunk)
            # one chunk per file per poll keeps the other files going, but always finish a line
            if read >= self.read_chunk and (len(out) > before or read >= MAX_READ_PER_POLL):
                return

    def _split(self, tracked: _Tracked, chunk: bytes, out: list[Line]) -> None:
        base = tracked.pos
        start = 0
        while True:
            if len(out) >= self.max_batch_lines:
                tracked.pos = base + start  # the rest is read again next time
                return
            nl = chunk.find(b"\n", start)
            if nl < 0:
                rest = chunk[start:]
                if not tracked.discarding:
                    tracked.pending += rest
                    if len(tracked.pending) > self.max_line_bytes:
                        tracked.kept = bytes(tracked.pending[: self.max_line_bytes])
                        tracked.pending.clear()
                        tracked.discarding = True
                tracked.pos = base + len(chunk)
                return
            if tracked.discarding:
                data, truncated = tracked.kept, True
                tracked.discarding, tracked.kept = False, b""
            else:
                tracked.pending += chunk[start:nl]
                data = bytes(tracked.pending)
                truncated = len(data) > self.max_line_bytes
                if truncated:
                    data = data[: self.max_line_bytes]
            tracked.pending.clear()
            out.append(Line(tracked.source, tracked.delivered, data, truncated))
            tracked.delivered = base + nl + 1
            start = nl + 1

    def _retire_idle(self, now: float, out: list[Line]) -> None:
        """Close rotated-away files that are read to the end and quiet for ``rotate_wait_s``."""
        for key, tracked in list(self._files.items()):
            if tracked.retired_at is None or len(out) >= self.max_batch_lines:
                continue
            if tracked.pos < tracked.size_seen or now - tracked.last_growth < self.rotate_wait_s:
                continue
            if tracked.pending or tracked.discarding:  # its writer is gone: the unfinished line is final
                data = tracked.kept if tracked.discarding else bytes(tracked.pending)
                out.append(Line(tracked.source, tracked.delivered, data, tracked.discarding))
                tracked.delivered = tracked.pos
                tracked.pending.clear()
            self._close_fd(tracked)
            del self._files[key]
            self._remember_done(tracked)

    def _remember_done(self, tracked: _Tracked) -> None:
        if tracked.head_len > 0:
            self._done[tracked.key] = tracked.head_len, tracked.head
            while len(self._done) > DONE_MEMORY:
                del self._done[next(iter(self._done))]

    @staticmethod
    def _close_fd(tracked: _Tracked) -> None:
        try:
            os.close(tracked.fd)
        except OSError:
            pass

    # -- saving --------------------------------------------------------------------------
    def _save(self, entries: list[FileOffset]) -> None:
        if self.store is None or entries == self._last_saved:
            return
        try:
            self.store.save(entries)
            self._last_saved = entries
            self._save_failures = 0
        except OSError as exc:
            self.errors += 1
            self._save_failures += 1
            if self._save_failures == 1 or self._save_failures % 60 == 0:
                log.error("cannot save offsets to %s (%d times): %s", self.store.path, self._save_failures, exc)
