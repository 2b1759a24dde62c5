"""Position-aware YAML: compose a document with a SafeLoader and keep every node's place.

A rule file is validated on this tree instead of on ``yaml.safe_load``'s plain values, so
each problem can name its ``line:col``. Only the safe YAML tags exist (SafeLoader); aliases
are expanded but bounded (``MAX_NODES``, ``MAX_DEPTH``), so an alias bomb is an error, not
an out-of-memory. Duplicate mapping keys are kept in :attr:`Map.items` for the caller to
report (:func:`duplicate_keys`).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import yaml

MAX_NODES = 100_000  # nodes after alias expansion
MAX_DEPTH = 64  # nesting of mappings and sequences
PLAIN_TAGS = frozenset(
    f"tag:yaml.org,2002:{t}" for t in ("str", "int", "float", "bool", "null", "map", "seq", "timestamp")
)


@dataclass(frozen=True, slots=True)
class Pos:
    """A place in the source text, both numbers 1-based."""

    line: int
    col: int


@dataclass(frozen=True, slots=True)
class Scalar:
    """A scalar with the value ``yaml.safe_load`` would give and its source text."""

    value: object  # str | int | float | bool | None | date/datetime
    text: str  # the scalar's text as written (after YAML unquoting / folding)
    pos: Pos
    style: str | None  # None (plain), "'", '"', "|" or ">"


@dataclass(frozen=True, slots=True)
class Seq:
    items: tuple[Node, ...]
    pos: Pos


@dataclass(frozen=True, slots=True)
class Map:
    items: tuple[tuple[Scalar, Node], ...]  # in file order, duplicates kept
    pos: Pos

    def keys(self) -> Iterator[Scalar]:
        return (k for k, _ in self.items)

    def get(self, key: str) -> Node | None:
        """The value of the first entry whose key text is ``key``."""
        for k, v in self.items:
            if k.text == key:
                return v
        return None


Node = Scalar | Seq | Map


class YamlSyntaxError(Exception):
    """The text is not one well-formed YAML document (or breaks a size limit)."""

    def __init__(self, message: str, pos: Pos) -> None:
        super().__init__(message)
        self.message = message
        self.pos = pos


class PositionLoader(yaml.SafeLoader):
    """SafeLoader that composes the node tree; :func:`compose` turns it into positioned nodes."""


def _pos(node: yaml.Node) -> Pos:
    return Pos(node.start_mark.line + 1, node.start_mark.column + 1)


def _mark_pos(mark: yaml.Mark | None) -> Pos:
    return Pos(mark.line + 1, mark.column + 1) if mark is not None else Pos(1, 1)


def compose(text: str) -> Node | None:
    """Compose ``text`` (one YAML document) into positioned nodes; None for an empty document."""
    try:
        loader = PositionLoader(text)  # the reader checks for unprintable characters here
    except yaml.reader.ReaderError as exc:
        raise YamlSyntaxError(_reader_message(exc), _offset_pos(text, exc.position)) from None
    try:
        try:
            root = loader.get_single_node()
        except yaml.MarkedYAMLError as exc:
            mark = exc.problem_mark or exc.context_mark
            parts = [part for part in (exc.context, exc.problem) if part]
            problem = ", ".join(parts) or "malformed document"
            raise YamlSyntaxError(f"invalid YAML: {problem}", _mark_pos(mark)) from None
        except yaml.reader.ReaderError as exc:
            raise YamlSyntaxError(_reader_message(exc), _offset_pos(text, exc.position)) from None
        except yaml.YAMLError as exc:  # pragma: no cover - every other PyYAML error is marked
            raise YamlSyntaxError(f"invalid YAML: {exc}", Pos(1, 1)) from None
        if root is None:
            return None
        return _Converter(loader).convert(root, 0)
    finally:
        loader.dispose()


def _reader_message(exc: yaml.reader.ReaderError) -> str:
    char = exc.character
    code = f"#x{char:04x}" if isinstance(char, int) else repr(char)
    return f"invalid YAML: unacceptable character {code} ({exc.reason})"


def _offset_pos(text: str, offset: int) -> Pos:
    before = text[:offset]
    line = before.count("\n") + 1
    return Pos(line, offset - (before.rfind("\n") + 1) + 1)


class _Converter:
    def __init__(self, loader: PositionLoader) -> None:
        self._loader = loader
        self._count = 0

    def convert(self, node: yaml.Node, depth: int) -> Node:
        self._count += 1
        if self._count > MAX_NODES:
            raise YamlSyntaxError(f"document too large: more than {MAX_NODES} nodes after aliases", _pos(node))
        if depth > MAX_DEPTH:
            raise YamlSyntaxError(f"document nested deeper than {MAX_DEPTH} levels", _pos(node))
        if node.tag not in PLAIN_TAGS:  # only plain YAML: no !!python/… or application tags
            raise YamlSyntaxError(f"invalid YAML: tag {node.tag!r} is not allowed", _pos(node))
        if isinstance(node, yaml.ScalarNode):
            return self._scalar(node)
        if isinstance(node, yaml.SequenceNode):
            return Seq(tuple(self.convert(item, depth + 1) for item in node.value), _pos(node))
        if isinstance(node, yaml.MappingNode):
            items: list[tuple[Scalar, Node]] = []
            for key_node, value_node in node.value:
                if not isinstance(key_node, yaml.ScalarNode):
                    raise YamlSyntaxError("mapping keys must be plain scalars", _pos(key_node))
                items.append((self._scalar(key_node), self.convert(value_node, depth + 1)))
            return Map(tuple(items), _pos(node))
        raise YamlSyntaxError(f"unsupported YAML node {type(node).__name__}", _pos(node))  # pragma: no cover

    def _scalar(self, node: yaml.ScalarNode) -> Scalar:
        try:
            value = self._loader.construct_object(node, deep=True)
        except yaml.MarkedYAMLError as exc:  # e.g. a bad !!timestamp or an unknown tag
            problem = exc.problem or "cannot construct value"
            raise YamlSyntaxError(f"invalid YAML: {problem}", _pos(node)) from None
        return Scalar(value=value, text=str(node.value), pos=_pos(node), style=node.style)


def duplicate_keys(node: Map) -> list[Scalar]:
    """Keys that appear a second (third, …) time in ``node``, in file order."""
    seen: set[str] = set()
    dups: list[Scalar] = []
    for key in node.keys():
        if key.text in seen:
            dups.append(key)
        seen.add(key.text)
    return dups


def kind(node: Node | None) -> str:
    """A short human name of a node's type, for 'expected X, got Y' messages."""
    if node is None:
        return "nothing"
    if isinstance(node, Map):
        return "a mapping"
    if isinstance(node, Seq):
        return "a list"
    value = node.value
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int):
        return "an integer"
    if isinstance(value, float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    return f"a {type(value).__name__}"
