"""A rule file watched for changes: validated, then swapped in whole, or refused with its positions.

:meth:`RuleFile.poll` is cheap enough to call for every point: it looks at the clock, and
at most every ``every_s`` seconds at the file's ``stat``. A file whose identity (device,
inode, size, mtime) differs from the loaded one is read only once it has kept the same
identity over two looks, so a file still being written is not loaded half way (an editor
that renames a finished file into place is seen at once, on the next look). Then:

- it loads: the new :class:`RuleSet` replaces the old one as a whole (:class:`Loaded`);
- it does not (unreadable, YAML or rule errors): the old rules stay in force and every
  problem is reported with its ``file:line:col`` (:class:`Refused`), once per version of
  the file, not at every look.

No I/O but ``os.stat`` and reading the file; the caller logs and emits what it gets.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final

from errloop.rules.classify import RuleError, RuleSet, load_rules

EVERY_S: Final = 1.0
Identity = tuple[int, int, int, int]  # st_dev, st_ino, st_size, st_mtime_ns
_GONE: Final[Identity] = (-1, -1, -1, -1)  # no file there (or not stat-able)
_UNSURE: Final[Identity] = (-2, -2, -2, -2)  # what is in force may not be what is there now


@dataclass(frozen=True)
class Loaded:
    """The file changed and its rules are now in force."""

    rules: RuleSet


@dataclass(frozen=True)
class Refused:
    """The file changed but cannot be used; the rules in force did not change."""

    error: str  # one "file:line:col: message (path)" line per problem, or why it could not be read
    problems: int


def read_rules(path: str) -> RuleSet:
    """Load a rule file; raises :class:`RuleError` or ``OSError``/``UnicodeDecodeError``."""
    with open(path, encoding="utf-8") as f:
        text = f.read()
    return load_rules(text, source=path)


def identity(path: str) -> Identity:
    """What tells one version of the file from another (or that it is gone)."""
    try:
        st = os.stat(path)
    except OSError:
        return _GONE
    return (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)


class RuleFile:
    """The rule file at ``path``, loaded as ``rules``, watched every ``every_s`` seconds."""

    __slots__ = ("_clock", "_due", "_pending", "_seen", "every_s", "path", "rules")

    def __init__(
        self,
        path: str,
        rules: RuleSet,
        every_s: float = EVERY_S,
        clock: Callable[[], float] = time.monotonic,
        seen: Identity | None = None,
    ) -> None:
        """``seen``: the file's :func:`identity` taken *before* ``rules`` were read from it (else now:
        a change between that read and this call would go unnoticed until the next one)."""
        if every_s <= 0:
            raise ValueError("every_s must be positive")
        self.path = path
        self.rules = rules
        self.every_s = every_s
        self._clock = clock
        self._due = clock() + every_s
        self._seen = identity(path) if seen is None else seen  # the version in force (or last refused)
        self._pending: Identity | None = None  # a new version seen once, read when it holds still

    def poll(self) -> Loaded | Refused | None:
        """None unless the file changed since the last load or refusal (see the module)."""
        now = self._clock()
        if now < self._due:
            return None
        self._due = now + self.every_s
        now_id = identity(self.path)
        if now_id == self._seen:
            self._pending = None
            return None
        if now_id != self._pending:
            self._pending = now_id  # changed since the last look: maybe still being written
            return None
        self._pending = None
        self._seen = now_id
        if now_id == _GONE:
            return Refused(f"{self.path}: cannot read rules file: it is gone (keeping {len(self.rules)} rules)", 1)
        try:
            rules = read_rules(self.path)
        except RuleError as exc:
            return Refused(str(exc), len(exc.problems))
        except (OSError, UnicodeDecodeError) as exc:
            return Refused(f"{self.path}: cannot read rules file: {exc}", 1)
        if identity(self.path) != now_id:  # replaced while it was read: read it again when it holds still
            self._seen = _UNSURE
        self.rules = rules
        return Loaded(rules)
