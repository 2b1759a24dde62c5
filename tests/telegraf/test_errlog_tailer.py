"""The tailer: appends, partial lines, rotation (rename+create, copytruncate), offsets across restarts."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from errloop.telegraf.errlog.offsets import FileOffset, OffsetStore
from errloop.telegraf.errlog.tailer import Line, Tailer


class Clock:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


def append(path: Path, text: str | bytes) -> None:
    with open(path, "ab") as fh:
        fh.write(text.encode() if isinstance(text, str) else text)


def texts(lines: list[Line]) -> list[str]:
    return [ln.data.decode() for ln in lines]


def make(tmp: Path, clock: Clock | None = None, store: bool = True, **kw: Any) -> Tailer:
    opts: dict[str, Any] = {
        "from_beginning": True,
        "discover_interval_s": 0.0,
        "rotate_wait_s": 1.0,
        "save_interval_s": 0.0,
        "clock": clock or Clock(),
        "store": OffsetStore(tmp / "state" / "offsets.json") if store else None,
    }
    opts.update(kw)
    return Tailer([str(tmp / "logs" / "*.log")], **opts)


@pytest.fixture
def logs(tmp_path: Path) -> Path:
    (tmp_path / "logs").mkdir()
    return tmp_path / "logs"


def test_append_and_partial_line(tmp_path: Path, logs: Path) -> None:
    log = logs / "app.log"
    append(log, "one\ntwo\nthr")
    t = make(tmp_path)
    got = t.poll()
    assert texts(got) == ["one", "two"]
    assert [ln.offset for ln in got] == [0, 4]
    assert t.poll() == []  # "thr" waits for its newline
    append(log, "ee\nfour\n")
    got = t.poll()
    assert texts(got) == ["three", "four"]
    assert got[0].offset == 8 and got[0].source == str(log)


def test_from_end_starts_at_the_last_unfinished_line(tmp_path: Path, logs: Path) -> None:
    log = logs / "app.log"
    append(log, "old1\nold2\npart")
    t = make(tmp_path, from_beginning=False, store=False)
    assert t.poll() == []
    append(log, "ial\nnew\n")
    assert texts(t.poll()) == ["partial", "new"]


def test_file_created_later_is_read_from_its_start(tmp_path: Path, logs: Path) -> None:
    t = make(tmp_path, from_beginning=False, store=False)
    assert t.poll() == []
    append(logs / "late.log", "a\nb\n")
    assert texts(t.poll()) == ["a", "b"]


def test_rename_and_create_rotation(tmp_path: Path, logs: Path) -> None:
    clock = Clock()
    log = logs / "app.log"
    append(log, "1\n2\n")
    t = make(tmp_path, clock)
    assert texts(t.poll()) == ["1", "2"]
    # the writer still holds the old file: lines after the rename land in it
    with open(log, "ab") as old_writer:
        os.rename(log, logs / "app.log.1")
        old_writer.write(b"3\n")
        old_writer.flush()
        append(log, "4\n5\n")
        assert texts(t.poll()) == ["3", "4", "5"]
        assert t.rotations == 1
        old_writer.write(b"6\nunfinished")
    assert texts(t.poll()) == ["6"]
    clock.t += 2.0  # rotate_wait passes: the old file is done, its last line is final
    assert texts(t.poll()) == ["unfinished"]
    assert t.watched == [str(log)]
    append(log, "7\n")
    assert texts(t.poll()) == ["7"]


def test_deleted_file_is_read_to_its_end(tmp_path: Path, logs: Path) -> None:
    clock = Clock()
    log = logs / "app.log"
    append(log, "1\n")
    t = make(tmp_path, clock)
    t.poll()
    with open(log, "ab") as writer:
        os.unlink(log)
        writer.write(b"2\n")
    assert texts(t.poll()) == ["2"]
    assert t.rotations == 1


def test_copytruncate(tmp_path: Path, logs: Path) -> None:
    log = logs / "app.log"
    append(log, "a-long-first-line\nsecond\n")
    t = make(tmp_path)
    assert len(t.poll()) == 2
    with open(log, "r+b") as fh:
        fh.truncate(0)
    append(log, "x\n")
    got = t.poll()
    assert texts(got) == ["x"] and got[0].offset == 0
    assert t.rotations == 1


def test_copytruncate_that_regrew_past_our_position(tmp_path: Path, logs: Path) -> None:
    log = logs / "app.log"
    append(log, "aaaa\n")
    t = make(tmp_path)
    assert texts(t.poll()) == ["aaaa"]
    with open(log, "r+b") as fh:
        fh.truncate(0)
    append(log, "bbbbbbbb\ncccc\n")  # already longer than before when we look again
    assert texts(t.poll()) == ["bbbbbbbb", "cccc"]
    assert t.rotations == 1


def test_long_line_truncated_and_flagged(tmp_path: Path, logs: Path) -> None:
    log = logs / "app.log"
    append(log, "short\n" + "x" * 1000 + "\nafter\n")
    t = make(tmp_path, max_line_bytes=300, read_chunk=128)  # the long line spans many reads
    got: list[Line] = []
    while batch := t.poll():
        got += batch
    assert texts(got) == ["short", "x" * 300, "after"]
    assert [ln.truncated for ln in got] == [False, True, False]
    assert got[2].offset == 6 + 1001


def test_invalid_utf8_is_passed_through_as_bytes(tmp_path: Path, logs: Path) -> None:
    append(logs / "app.log", b"ok \xff\xfe\n")
    (line,) = make(tmp_path).poll()
    assert line.data == b"ok \xff\xfe"


def test_batches_are_bounded(tmp_path: Path, logs: Path) -> None:
    append(logs / "app.log", "".join(f"{i}\n" for i in range(10)))
    t = make(tmp_path, max_batch_lines=3)
    sizes = []
    seen: list[str] = []
    while got := t.poll():
        sizes.append(len(got))
        seen += texts(got)
    assert sizes == [3, 3, 3, 1]
    assert seen == [str(i) for i in range(10)]


def test_two_globs_one_file(tmp_path: Path, logs: Path) -> None:
    append(logs / "app.log", "a\n")
    t = Tailer([str(logs / "*.log"), str(logs / "app.*")], from_beginning=True, discover_interval_s=0)
    assert texts(t.poll()) == ["a"]


# --- offsets across restarts ---------------------------------------------------------------


def drain(t: Tailer) -> list[str]:
    out: list[str] = []
    while got := t.poll():
        out += texts(got)
        t.commit()
    return out


def test_restart_resumes_without_loss_or_duplicates(tmp_path: Path, logs: Path) -> None:
    log = logs / "app.log"
    append(log, "1\n2\n3")
    t1 = make(tmp_path)
    first = drain(t1)
    t1.close()
    append(log, "\n4\n")
    t2 = make(tmp_path, from_beginning=False)  # saved state wins over from_beginning
    second = drain(t2)
    t2.close()
    assert first + second == ["1", "2", "3", "4"]
    saved = json.loads((tmp_path / "state" / "offsets.json").read_text())
    assert saved["version"] == 1 and saved["files"][0]["offset"] == log.stat().st_size


def test_lines_not_committed_are_read_again(tmp_path: Path, logs: Path) -> None:
    log = logs / "app.log"
    append(log, "1\n2\n")
    t1 = make(tmp_path)
    assert texts(t1.poll()) == ["1", "2"]
    t1.commit()
    append(log, "3\n")
    assert texts(t1.poll()) == ["3"]  # handed out, but the batch never reached stdout
    t1.close()
    t2 = make(tmp_path)
    assert drain(t2) == ["3"]


def test_rotation_while_stopped(tmp_path: Path, logs: Path) -> None:
    log = logs / "app.log"
    append(log, "1\n2\n")
    t1 = make(tmp_path)
    assert drain(t1) == ["1", "2"]
    t1.close()
    append(log, "3\n")  # written before the rotation, never read
    os.rename(log, logs / "app.log.1")  # no longer matches *.log
    append(log, "4\n")
    t2 = make(tmp_path)
    got = t2.poll()
    assert sorted(texts(got)) == ["3", "4"]
    by_source = {ln.data.decode(): ln.source for ln in got}
    assert by_source["3"] == str(log)  # the old file keeps its name (and so its event ids)


def test_replaced_file_at_a_saved_path_is_read_from_its_start(tmp_path: Path, logs: Path) -> None:
    log = logs / "app.log"
    append(log, "1\n")
    t1 = make(tmp_path)
    drain(t1)
    t1.close()
    os.unlink(log)
    append(log, "new\n")
    t2 = make(tmp_path, from_beginning=False)
    assert drain(t2) == ["new"]


def test_new_file_since_the_last_run_is_read_whole(tmp_path: Path, logs: Path) -> None:
    append(logs / "a.log", "a\n")
    t1 = make(tmp_path, from_beginning=False)
    drain(t1)
    t1.commit(force=True)
    t1.close()
    append(logs / "b.log", "b1\nb2\n")
    t2 = make(tmp_path, from_beginning=False)
    assert drain(t2) == ["b1", "b2"]


def test_offsets_file_is_atomic_and_damage_is_survived(tmp_path: Path) -> None:
    store = OffsetStore(tmp_path / "o" / "offsets.json")
    entries = [FileOffset("/a", 1, 2, 30, 4, "ab")]
    store.save(entries)
    assert store.load() == entries
    assert [p.name for p in (tmp_path / "o").iterdir()] == ["offsets.json"]  # no temp file left
    (tmp_path / "o" / "offsets.json").write_text("{broken")
    assert store.load() == []
    assert (tmp_path / "o" / "offsets.json.damaged").exists()


def test_offsets_keep_the_floor_and_read_files_saved_without_it(tmp_path: Path) -> None:
    store = OffsetStore(tmp_path / "offsets.json")
    entries = [FileOffset("/a", 1, 2, 0, floor_ns=1_700_000_000_123_456_789), FileOffset("/b", 1, 3, 5, 5, "cd")]
    store.save(entries)
    assert store.load() == entries
    old = {"version": 1, "files": [{"path": "/a", "dev": 1, "ino": 2, "offset": 7, "head_len": 7, "head": "x"}]}
    (tmp_path / "offsets.json").write_text(json.dumps(old))
    assert store.load() == [FileOffset("/a", 1, 2, 7, 7, "x", retired=False, floor_ns=0)]


def test_unreadable_file_is_counted_once(tmp_path: Path, logs: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    real_open = os.open

    def deny(path: str, flags: int, *args: int) -> int:
        if str(path).endswith("secret.log"):
            raise PermissionError(13, "Permission denied")
        return real_open(path, flags, *args)

    append(logs / "secret.log", "x\n")
    append(logs / "ok.log", "fine\n")
    monkeypatch.setattr(os, "open", deny)
    t = make(tmp_path, store=False)
    assert texts(t.poll()) == ["fine"]
    t.poll()
    assert t.errors == 1  # one problem, counted once although every discovery retries
