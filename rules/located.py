"""Validating YAML documents whose every value knows where it was written.

Policies are validated the way a compiler checks a program: every problem is reported
at once as ``file:line:col: message (field.path)``. Documents are composed by
:mod:`errloop.rules.yamlpos` (safe loader, plain tags only, bounded aliases); each node
is given its dotted path here, and :class:`Checker` collects problems while a typed
model is built from the nodes.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from errloop.rules import yamlpos

_BAD_TEXT = re.compile("[\x00-\x08\x0b-\x1f\x7f\ud800-\udfff]")  # tab and newline are text
_DURATION = re.compile(r"^(\d+)(ms|s|m|h|d|w)$")
_UNIT_S = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


@dataclass(frozen=True)
class Problem:
    source: str
    line: int
    col: int
    message: str
    path: str

    def __str__(self) -> str:
        where = f" ({self.path})" if self.path else ""
        return f"{self.source}:{self.line}:{self.col}: {self.message}{where}"


class SpecError(ValueError):
    """One or more problems in a document; ``str()`` lists them one per line."""

    def __init__(self, problems: list[Problem]) -> None:
        super().__init__("\n".join(str(p) for p in problems))
        self.problems = problems


@dataclass(frozen=True)
class Node:
    """A YAML node: its plain value, 1-based position and dotted path."""

    value: Any
    line: int
    col: int
    path: str
    kind: str  # "map", "seq" or "scalar"
    children: tuple[tuple[str, Node], ...] = ()  # for maps: (key, node); for seqs: ("[i]", node)

    def items(self) -> Iterator[tuple[str, Node]]:
        return iter(self.children)

    def get(self, key: str) -> Node | None:
        for k, n in self.children:
            if k == key:
                return n
        return None


def _wrap(node: yamlpos.Node, path: str) -> Node:
    line, col = node.pos.line, node.pos.col
    if isinstance(node, yamlpos.Map):
        kids = tuple((k.text, _wrap(v, f"{path}.{k.text}" if path else k.text)) for k, v in node.items)
        return Node({k: n.value for k, n in kids}, line, col, path, "map", kids)
    if isinstance(node, yamlpos.Seq):
        items = tuple((f"[{i}]", _wrap(v, f"{path}[{i}]")) for i, v in enumerate(node.items))
        return Node([n.value for _, n in items], line, col, path, "seq", items)
    return Node(node.value, line, col, path, "scalar")


def parse(text: str, source: str) -> Node | None:
    """Compose one YAML document (errloop.rules.yamlpos); a syntax error becomes a SpecError."""
    try:
        root = yamlpos.compose(text)
    except yamlpos.YamlSyntaxError as e:
        raise SpecError([Problem(source, e.pos.line, e.pos.col, e.message, "")]) from None
    return None if root is None else _wrap(root, "")


@dataclass
class Checker:
    """Collects problems while a model is built; helpers return None on a bad value."""

    source: str
    problems: list[Problem] = field(default_factory=list)

    def error(self, node: Node, message: str) -> None:
        self.problems.append(Problem(self.source, node.line, node.col, message, node.path))

    def done(self) -> None:
        if self.problems:
            raise SpecError(sorted(self.problems, key=lambda p: (p.line, p.col)))

    def mapping(self, node: Node | None, allowed: set[str], required: set[str] = frozenset()) -> Node | None:  # type: ignore[assignment]
        if node is None:
            return None
        if node.kind != "map":
            self.error(node, f"expected a mapping, got {_kind(node)}")
            return None
        seen: set[str] = set()
        for key, child in node.items():
            if key in seen:
                self.error(child, f"duplicate key {key!r}")
            seen.add(key)
            if key not in allowed:
                self.error(child, f"unknown key {key!r} (allowed: {', '.join(sorted(allowed))})")
        for key in sorted(required - seen):
            self.error(node, f"missing required key {key!r}")
        return node

    def string(self, node: Node | None, pattern: re.Pattern[str] | None = None, what: str = "") -> str | None:
        if node is None:
            return None
        if node.kind != "scalar" or not isinstance(node.value, str):
            self.error(node, f"expected a string, got {_kind(node)}")
            return None
        if _BAD_TEXT.search(node.value):
            self.error(node, f"{node.value!r} holds a control character or a lone surrogate")
            return None
        if pattern is not None and not pattern.fullmatch(node.value):
            self.error(node, f"{node.value!r} is not a valid {what or 'value'} (must match {pattern.pattern})")
            return None
        return node.value

    def integer(self, node: Node | None, lo: int, hi: int) -> int | None:
        if node is None:
            return None
        if node.kind != "scalar" or isinstance(node.value, bool) or not isinstance(node.value, int):
            self.error(node, f"expected an integer, got {_kind(node)}")
            return None
        if not lo <= node.value <= hi:
            self.error(node, f"{node.value} is out of range [{lo}, {hi}]")
            return None
        return node.value

    def boolean(self, node: Node | None) -> bool | None:
        if node is None:
            return None
        if node.kind != "scalar" or not isinstance(node.value, bool):
            self.error(node, f"expected true or false, got {_kind(node)}")
            return None
        return node.value

    def choice(self, node: Node | None, choices: tuple[str, ...]) -> str | None:
        value = self.string(node)
        if value is None or node is None:
            return None
        if value not in choices:
            self.error(node, f"{value!r} is not one of {', '.join(choices)}")
            return None
        return value

    def duration(self, node: Node | None, lo_s: float, hi_s: float) -> int | None:
        """A duration like ``30s``, ``5m``, ``1h`` → whole seconds (ms rounded up)."""
        value = self.string(node) if node is not None and isinstance(node.value, str) else None
        if node is None:
            return None
        if value is None:
            if not self.problems or self.problems[-1].path != node.path:
                self.error(node, f"expected a duration like 30s or 5m, got {_kind(node)}")
            return None
        m = _DURATION.match(value)
        if not m:
            self.error(node, f"{value!r} is not a duration (an integer and one of ms, s, m, h, d, w)")
            return None
        seconds = int(m.group(1)) * _UNIT_S[m.group(2)]
        if not lo_s <= seconds <= hi_s:
            self.error(node, f"{value} is out of range [{lo_s:g}s, {hi_s:g}s]")
            return None
        return max(1, int(seconds + 0.999))

    def seq(self, node: Node | None, min_len: int = 0) -> list[Node]:
        if node is None:
            return []
        if node.kind != "seq":
            self.error(node, f"expected a list, got {_kind(node)}")
            return []
        if len(node.children) < min_len:
            self.error(node, f"expected at least {min_len} item(s)")
        return [n for _, n in node.items()]

    def strings(self, node: Node | None, pattern: re.Pattern[str] | None = None, what: str = "") -> tuple[str, ...]:
        """A string or a list of strings."""
        if node is None:
            return ()
        nodes = [node] if node.kind == "scalar" else self.seq(node, 1)
        out = [self.string(n, pattern, what) for n in nodes]
        return tuple(s for s in out if s is not None)


def _kind(node: Node) -> str:
    if node.kind != "scalar":
        return {"map": "a mapping", "seq": "a list"}[node.kind]
    v = node.value
    if v is None:
        return "nothing (null)"
    return f"{type(v).__name__} {v!r}"
