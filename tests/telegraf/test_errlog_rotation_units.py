"""Rotations the tailer must not lose lines to, one at a time and fast (the load test is test_errlog_rotation.py).

Rotations are done the way logrotate does them (shift ``app.log.N`` → ``app.log.N+1``, then
rename or copy+truncate ``app.log`` to ``app.log.1``); modification times are set explicitly
so the order of generations does not depend on the clock's granularity.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from errloop.telegraf.errlog.offsets import OffsetStore
from errloop.telegraf.errlog.tailer import HEAD_BYTES, Line, Tailer

T0 = 1_700_000_000 * 10**9


class Clock:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


def append(path: Path, text: str) -> None:
    with open(path, "ab") as fh:
        fh.write(text.encode())


def set_mtime(path: Path, seconds: int) -> None:
    os.utime(path, ns=(T0 + seconds * 10**9, T0 + seconds * 10**9))


def shift(log: Path) -> None:
    n = 1
    while Path(f"{log}.{n}").exists():
        n += 1
    for i in range(n - 1, 0, -1):
        os.rename(f"{log}.{i}", f"{log}.{i + 1}")


def copytruncate(log: Path, mtime: int) -> None:
    shift(log)
    shutil.copyfile(log, f"{log}.1")
    set_mtime(Path(f"{log}.1"), mtime)
    with open(log, "r+b") as fh:
        fh.truncate(0)


def rename(log: Path, mtime_old: int) -> None:
    set_mtime(log, mtime_old)
    shift(log)
    os.rename(log, f"{log}.1")
    log.touch()


def make(tmp: Path, clock: Clock | None = None, **kw: Any) -> Tailer:
    opts: dict[str, Any] = {
        "from_beginning": True,
        "discover_interval_s": 0.0,
        "rotate_wait_s": 1.0,
        "save_interval_s": 0.0,
        "clock": clock or Clock(),
        "store": OffsetStore(tmp / "state" / "offsets.json"),
    }
    opts.update(kw)
    return Tailer([str(tmp / "logs" / "*.log")], **opts)


def drain(t: Tailer) -> list[Line]:
    got: list[Line] = []
    while batch := t.poll():
        got += batch
        t.commit()
    return got


def texts(lines: list[Line]) -> list[str]:
    return sorted(ln.data.decode() for ln in lines)


@pytest.fixture
def log(tmp_path: Path) -> Path:
    (tmp_path / "logs").mkdir()
    old = tmp_path / "logs" / "app.log.1"  # an old rotated file, read long ago: never read again
    old.write_text("ancient\n")
    set_mtime(old, -1000)
    return tmp_path / "logs" / "app.log"


def test_copytruncate_reads_the_copy_from_where_it_stopped(tmp_path: Path, log: Path) -> None:
    append(log, "l1\nl2\n")
    t = make(tmp_path)
    assert texts(t.poll()) == ["l1", "l2"]
    append(log, "l3\nl4\n")  # written after our last look, before the copy: only the copy has them
    copytruncate(log, 10)
    append(log, "n1\n")
    got = drain(t)
    assert texts(got) == ["l3", "l4", "n1"]
    by_text = {ln.data: ln for ln in got}
    assert by_text[b"l3"].offset == 6 and by_text[b"n1"].offset == 0  # the places in their generation
    assert {ln.source for ln in got} == {str(log)}
    assert t.rotations == 1


def test_two_copytruncates_between_two_looks(tmp_path: Path, log: Path) -> None:
    append(log, "a1\n")
    t = make(tmp_path)
    assert texts(t.poll()) == ["a1"]
    append(log, "a2\n")
    copytruncate(log, 10)
    append(log, "b1-longer\n")
    copytruncate(log, 20)  # generation b is now only in app.log.1, a in app.log.2
    append(log, "c1\n")
    assert texts(drain(t)) == ["a2", "b1-longer", "c1"]


def test_a_generation_copied_away_while_the_file_looked_empty(tmp_path: Path, log: Path) -> None:
    log.touch()
    set_mtime(log, 0)
    t = make(tmp_path)
    assert t.poll() == []
    append(log, "g0\n")
    copytruncate(log, 10)  # nothing in app.log tells that it was truncated
    set_mtime(log, 10)
    append(log, "g1\n")
    assert texts(drain(t)) == ["g0", "g1"]


def test_two_renames_between_two_looks(tmp_path: Path, log: Path) -> None:
    append(log, "a1\n")
    t = make(tmp_path)
    assert texts(t.poll()) == ["a1"]
    append(log, "a2\n")
    rename(log, 10)
    append(log, "b1\n")
    rename(log, 20)  # generation b was never seen at app.log
    append(log, "c1\n")
    got = drain(t)
    assert texts(got) == ["a2", "b1", "c1"]
    assert {ln.source for ln in got} == {str(log)}


@pytest.mark.parametrize("kind", ["rename", "copytruncate"])
def test_rotations_while_stopped(tmp_path: Path, log: Path, kind: str) -> None:
    append(log, "a1\n")
    t = make(tmp_path)
    assert texts(drain(t)) == ["a1"]
    t.close()
    append(log, "a2\n")  # not read before the stop
    for i, line in enumerate(["b1\n", "c1\n"]):
        if kind == "rename":
            rename(log, 10 * (i + 1))
        else:
            copytruncate(log, 10 * (i + 1))
        append(log, line)
    t2 = make(tmp_path)
    got = drain(t2)
    assert texts(got) == ["a2", "b1", "c1"]
    assert [ln.offset for ln in got if ln.data == b"a2"] == [3]  # resumed in the old generation
    t2.close()
    t3 = make(tmp_path)  # and a third start reads nothing again
    assert drain(t3) == []


def test_retired_and_closed_copies_are_not_read_again(tmp_path: Path, log: Path) -> None:
    clock = Clock()
    append(log, "a1\n")
    t = make(tmp_path, clock)
    assert texts(t.poll()) == ["a1"]
    copytruncate(log, 10)
    append(log, "b1\n")
    assert texts(drain(t)) == ["b1"]
    clock.t += 5  # the copy is closed
    assert drain(t) == []
    copytruncate(log, 20)
    append(log, "c1\n")
    assert texts(drain(t)) == ["c1"]


def test_a_stop_just_after_a_copytruncate_then_rotations_while_stopped(tmp_path: Path, log: Path) -> None:
    """Stopped when the live file had just been truncated (nothing of its new content known yet):
    the generations copied away while errlog was down must still be read (the logrotate load test
    lost them: the same inode at byte 0 looked unchanged)."""
    append(log, "a1\n")
    t = make(tmp_path)
    assert texts(drain(t)) == ["a1"]
    append(log, "a2\n")
    copytruncate(log, 10)
    assert texts(drain(t)) == ["a2"]  # from the copy; app.log is empty now, its head unknown
    t.close()
    set_mtime(tmp_path / "state" / "offsets.json", 15)  # saved then
    append(log, "b1\n")
    copytruncate(log, 20)
    append(log, "c1\n")
    copytruncate(log, 30)
    append(log, "d1\n")
    t2 = make(tmp_path)
    got = drain(t2)
    assert texts(got) == ["b1", "c1", "d1"]
    assert {ln.source for ln in got} == {str(log)}
    t2.close()
    assert drain(make(tmp_path)) == []  # and nothing twice


def test_a_truncation_handled_in_a_full_batch_then_another_rotation_before_the_file_is_read(
    tmp_path: Path, log: Path
) -> None:
    """After a copytruncate errlog knows nothing of what the file holds until it reads it; when a
    full batch (a lagging reader) postpones that read and the file is rotated again meanwhile,
    the generation copied away must still be read (the logrotate load test lost two this way)."""
    append(log, "a1\n")
    t = make(tmp_path, max_batch_lines=1)
    assert texts(drain(t)) == ["a1"]
    append(log, "a2\n")
    copytruncate(log, 10)
    append(log, "b1\n")
    assert texts(t.poll()) == ["a2"]  # from the copy; the batch is full before app.log is read
    t.commit()
    copytruncate(log, 20)  # b1 is now only in app.log.1
    append(log, "c1\n")
    assert texts(drain(t)) == ["b1", "c1"]


def test_a_generation_written_and_copied_away_before_errlog_knew_the_new_head(tmp_path: Path, log: Path) -> None:
    """After a copytruncate errlog knows nothing of the live file (it was empty at the truncation);
    when the next generation is written and copied away before errlog reads a byte of it, the copy
    must still be read (the logrotate load test lost whole generations this way on a busy machine)."""
    append(log, "a1\n")
    t = make(tmp_path, max_batch_lines=1)
    assert texts(drain(t)) == ["a1"]
    append(log, "a2\n")
    copytruncate(log, 10)  # app.log is empty now
    assert texts(t.poll()) == ["a2"]  # from the copy; the full batch leaves app.log unread, its head unknown
    t.commit()
    append(log, "b1\n")
    copytruncate(log, 20)  # generation b is only in app.log.1 and was never seen
    append(log, "c1\n")
    assert texts(drain(t)) == ["b1", "c1"]


class Hooked(Tailer):
    """A tailer that runs a scripted filesystem step at one point of a poll (a busy machine pausing
    errlog there while logrotate and the writer go on)."""

    def __init__(self, *args: Any, **kw: Any) -> None:
        super().__init__(*args, **kw)
        self.before_live_read: Callable[[], None] | None = None
        self.after_listing: Callable[[], None] | None = None

    def _read(self, tracked: Any, out: list[Line], now: float) -> None:
        step, self.before_live_read = (self.before_live_read, None) if tracked.path else (None, self.before_live_read)
        if step is not None:
            step()
        super()._read(tracked, out, now)

    def _siblings(self, path: str, *, rotated_only: bool = True) -> list[tuple[str, os.stat_result]]:
        scan = super()._siblings(path, rotated_only=rotated_only)
        step, self.after_listing = self.after_listing, None
        if step is not None:
            step()
        return scan


def make_hooked(tmp: Path, **kw: Any) -> Hooked:
    opts: dict[str, Any] = {
        "from_beginning": True,
        "discover_interval_s": 0.0,
        "rotate_wait_s": 1.0,
        "save_interval_s": 0.0,
        "clock": Clock(),
        "store": OffsetStore(tmp / "state" / "offsets.json"),
    }
    opts.update(kw)
    return Hooked([str(tmp / "logs" / "*.log")], **opts)


def test_a_generation_written_and_copied_away_between_the_truncation_and_the_read(tmp_path: Path, log: Path) -> None:
    """The poll that handles a copytruncate finds app.log empty; before it reads app.log, the next
    generation is written and copied away too (the interleaving the logrotate load test lost to)."""
    append(log, "a1\n")
    t = make_hooked(tmp_path)
    assert texts(drain(t)) == ["a1"]
    append(log, "a2\n")
    copytruncate(log, 10)

    def rotate_again() -> None:
        append(log, "b1\n")
        copytruncate(log, 20)
        append(log, "c1\n")

    t.before_live_read = rotate_again
    got = drain(t)
    assert texts(got) == ["a2", "b1", "c1"]
    assert [ln.data for ln in got].index(b"b1") < [ln.data for ln in got].index(b"c1")  # oldest first
    assert {ln.source for ln in got} == {str(log)}
    assert drain(t) == []


def test_truncated_between_the_check_and_the_read_then_the_writer_goes_quiet(tmp_path: Path, log: Path) -> None:
    """A copytruncate after the poll looked at app.log and before it reads it: the read sees another
    file and stops; with no later write the size and time never change again, and the truncation
    must still be found (it was not: the rest of the old generation and the new one were never read)."""
    append(log, "a1\n")
    t = make_hooked(tmp_path)
    assert texts(drain(t)) == ["a1"]
    append(log, "a2\n")

    def rotate() -> None:
        copytruncate(log, 10)
        append(log, "b1-much-longer-than-before\n")  # and past our position: the size tells nothing

    t.before_live_read = rotate
    got = drain(t) + drain(t)
    assert texts(got) == ["a2", "b1-much-longer-than-before"]


def test_a_name_shifted_while_errlog_compares_heads(tmp_path: Path, log: Path) -> None:
    """logrotate shifts app.log.1 → app.log.2 while errlog checks which listed file is the copy of its
    generation: the head must be read from the file listed, not from whatever the name holds by then."""
    Path(f"{log}.1").unlink()  # the copy is the only file listed
    append(log, "a1\n")
    t = make_hooked(tmp_path)
    assert texts(drain(t)) == ["a1"]
    append(log, "a2\n")
    copytruncate(log, 10)  # a → app.log.1
    append(log, "b1\n")

    def rotate_again() -> None:
        copytruncate(log, 20)  # a → app.log.2, b → app.log.1: each listed name holds another file now
        append(log, "c1\n")

    t.after_listing = rotate_again
    got = drain(t)
    assert texts(got) == ["a2", "b1", "c1"]
    assert len(got) == 3


@pytest.mark.parametrize("kind", ["rename", "copytruncate"])
def test_two_rotations_between_two_looks_each_file_longer_than_our_position(
    tmp_path: Path, log: Path, kind: str
) -> None:
    """Both new generations grow past the old position before errlog looks: neither the size nor
    (for copytruncate) the inode tells of the rotations, only the first bytes."""
    append(log, "a1\n")
    t = make(tmp_path)
    assert texts(t.poll()) == ["a1"]
    append(log, "a2\n")
    rotate = rename if kind == "rename" else copytruncate
    rotate(log, 10)
    append(log, "b1-a-longer-line\nb2\n")
    rotate(log, 20)
    append(log, "c1-a-longer-line\nc2\n")
    got = drain(t)
    assert texts(got) == ["a2", "b1-a-longer-line", "b2", "c1-a-longer-line", "c2"]
    offsets = {ln.data: ln.offset for ln in got}
    assert offsets[b"a2"] == 3 and offsets[b"b2"] == offsets[b"c2"] == 17  # places in their own generation
    assert {ln.source for ln in got} == {str(log)}


def test_lines_read_between_the_copy_and_the_truncation_then_two_more_rotations(tmp_path: Path, log: Path) -> None:
    """errlog read lines written after logrotate's copy and before its truncate (in no file now); the
    copy is then shorter than errlog's position, yet it is the generation's copy: it must be taken as
    such, or the generations rotated after it are not looked for. (It is known by its first KiB: a
    generation shorter than that cannot be told from another by a copy that holds less than was read.)"""
    a1 = "a1-" + "x" * HEAD_BYTES
    append(log, a1 + "\n")
    t = make(tmp_path)
    assert texts(drain(t)) == [a1]
    shift(log)
    shutil.copyfile(log, f"{log}.1")
    set_mtime(Path(f"{log}.1"), 10)
    append(log, "a2\n")  # after the copy
    assert texts(drain(t)) == ["a2"]
    with open(log, "r+b") as fh:
        fh.truncate(0)
    append(log, "b1\n")
    copytruncate(log, 20)
    append(log, "c1\n")
    copytruncate(log, 30)
    append(log, "d1\n")
    got = drain(t)
    assert texts(got) == ["b1", "c1", "d1"]


def test_a_generation_copied_away_just_before_a_stop(tmp_path: Path, log: Path) -> None:
    """Stopped while app.log's new content was still unknown and a generation had been written and
    copied away since the last look: the restart must read it although it is older than the saved
    offsets (what errlog did not know yet is saved with them)."""
    append(log, "a1\n")
    t = make(tmp_path)
    assert texts(drain(t)) == ["a1"]
    append(log, "a2\n")
    copytruncate(log, 10)
    assert texts(drain(t)) == ["a2"]  # from the copy; app.log is empty
    append(log, "b1\n")
    copytruncate(log, 20)  # not looked at before the stop
    t.close()
    set_mtime(tmp_path / "state" / "offsets.json", 30)  # saved after b was copied away
    append(log, "c1\n")
    t2 = make(tmp_path)
    got = drain(t2)
    assert texts(got) == ["b1", "c1"]
    assert {ln.source for ln in got} == {str(log)}
    t2.close()
    assert drain(make(tmp_path)) == []


@pytest.mark.parametrize("kind", ["rename", "copytruncate"])
def test_stopped_halfway_through_a_rotated_file_then_two_rotations_while_down(
    tmp_path: Path, log: Path, kind: str
) -> None:
    """Stopped while a rotated-away generation was half read: while errlog is down two more rotations
    shift it from app.log.1 to app.log.3; it is found again by inode and read on, and the two
    generations in between are read once."""
    append(log, "a1\n")
    t = make(tmp_path, max_batch_lines=1)
    assert texts(drain(t)) == ["a1"]
    append(log, "a2\na3\n")
    rotate = rename if kind == "rename" else copytruncate
    rotate(log, 10)
    assert texts(t.poll()) == ["a2"]  # a3 not yet
    t.commit()
    t.close()
    set_mtime(tmp_path / "state" / "offsets.json", 15)
    append(log, "b1\n")
    rotate(log, 20)
    append(log, "c1\n")
    rotate(log, 30)
    append(log, "d1\n")
    t2 = make(tmp_path)
    got = drain(t2)
    assert texts(got) == ["a3", "b1", "c1", "d1"]
    assert [ln.offset for ln in got if ln.data == b"a3"] == [6]
    t2.close()
    assert drain(make(tmp_path)) == []
