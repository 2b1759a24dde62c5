"""Regexes that cannot hang the process: RE2 (PyPI ``google-re2``) behind a small typed API.

RE2 runs in time linear in the input for every pattern, so a rule such as ``(a+)+$`` cannot
backtrack catastrophically on a hostile log line. The price is RE2's syntax: no
backreferences and no lookaround (``(?=…)``, ``(?<=…)``); named groups are written
``(?P<name>…)``; ``\\w``, ``\\d`` and ``\\b`` are ASCII. A pattern RE2 refuses is a
:class:`RegexError` at load time, never at match time.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import re2  # google-re2

MAX_PATTERN_CHARS = 4096

_OPTIONS = re2.Options()
_OPTIONS.log_errors = False  # RE2 would print every refused pattern to stderr
_SET_OPTIONS = re2.Options()
_SET_OPTIONS.log_errors = False
_SET_OPTIONS.never_capture = True  # sets and the alternation only answer "which", never "where"
_SET_OPTIONS.max_mem = 64 << 20  # DFA budget of a set of many patterns (an upper bound, not an allocation)


# a named group as written: (?P<name> or (?<name>, not preceded by an escaping backslash
_GROUP_NAME = re.compile(r"(?<!\\)\(\?P?<([A-Za-z_]\w*)>")


_SURROGATE = re.compile("[\ud800-\udfff]")


class RegexError(ValueError):
    """RE2 refused a pattern; the message says why."""


@dataclass(frozen=True, slots=True)
class Pattern:
    """A compiled RE2 pattern and its named groups."""

    source: str
    group_names: tuple[str, ...]
    _compiled: Any = field(repr=False, compare=False)

    def search(self, text: str) -> dict[str, str | None] | None:
        """The named groups of the first match anywhere in ``text`` ({} if it has none), or None."""
        try:
            match = self._compiled.search(text)
        except UnicodeEncodeError:  # lone surrogates (e.g. from JSON "\\ud800") cannot be UTF-8
            match = self._compiled.search(valid_utf8(text))
        if match is None:
            return None
        groups: dict[str, str | None] = match.groupdict()
        return groups

    def finditer(self, text: str) -> Iterator[dict[str, str | None]]:
        """The named groups of every non-overlapping match in ``text``."""
        for match in self._compiled.finditer(valid_utf8(text)):
            groups: dict[str, str | None] = match.groupdict()
            yield groups


class PatternSet:
    """Which of many patterns occur in a text, found in one pass (RE2::Set).

    RE2::Set reports "no match" when its DFA runs out of memory; such an empty answer is
    double-checked with one ordinary search for the alternation of all patterns (which falls
    back to the NFA and is always right), and only if that finds something are the patterns
    searched one by one. Positive answers of the set are complete and exact.
    """

    def __init__(self, patterns: Sequence[Pattern]) -> None:
        self.patterns: tuple[Pattern, ...] = tuple(patterns)
        self._set: Any = None
        self._any: Any = None
        if not self.patterns:
            return
        try:
            rset = re2.Set.SearchSet(_SET_OPTIONS)
            for pattern in self.patterns:
                rset.Add(pattern.source)
            rset.Compile()
            self._set = rset
        except re2.error:  # pragma: no cover - each pattern compiled alone; a set only fails on memory
            self._set = None
        try:
            alternation = "|".join(f"(?:{p.source})" for p in self.patterns)
            self._any = re2.compile(alternation, _SET_OPTIONS)
        except re2.error:  # pragma: no cover - too large a program: search one by one instead
            self._any = None

    def matching(self, text: str) -> frozenset[int]:
        """Indexes (into :attr:`patterns`) of every pattern found in ``text``."""
        if not self.patterns:
            return frozenset()
        text = valid_utf8(text)
        if self._set is not None:
            found = self._set.Match(text)
            if found:
                return frozenset(found)
            if self._any is not None and self._any.search(text) is None:
                return frozenset()
        return frozenset(i for i, p in enumerate(self.patterns) if p.search(text) is not None)


def valid_utf8(text: str) -> str:
    """``text`` with anything UTF-8 cannot encode (lone surrogates) replaced by U+FFFD."""
    if text.isascii():
        return text
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return _SURROGATE.sub("\ufffd", text)
    return text


def compile_regex(source: str) -> Pattern:
    """Compile ``source`` with RE2; :class:`RegexError` says what is wrong with it."""
    if len(source) > MAX_PATTERN_CHARS:
        raise RegexError(f"regex longer than {MAX_PATTERN_CHARS} characters")
    try:
        compiled = re2.compile(source, _OPTIONS)
    except re2.error as exc:
        raise RegexError(_reason(exc)) from None
    except (TypeError, ValueError) as exc:  # pragma: no cover - defensive: odd input to the binding
        raise RegexError(str(exc)) from None
    names = tuple(sorted(compiled.groupindex, key=lambda n: compiled.groupindex[n]))
    written = _GROUP_NAME.findall(source)
    if len(written) != len(set(written)):
        dup = next(n for n in written if written.count(n) > 1)
        raise RegexError(f"duplicate group name {dup!r}")
    return Pattern(source=source, group_names=names, _compiled=compiled)


def _reason(exc: Exception) -> str:
    raw = exc.args[0] if exc.args else exc
    text = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else str(raw)
    hint = ""
    if "(?=" in text or "(?!" in text or "(?<" in text:
        hint = " (RE2 has no lookaround)"
    elif "escape sequence" in text and any(f"\\{d}" in text for d in "123456789"):
        hint = " (RE2 has no backreferences)"
    return f"{text}{hint}"
