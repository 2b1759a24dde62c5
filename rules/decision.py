"""Decision trees in the design document's form (chapter 4.1): validated model and evaluation.

A tree is a YAML list of nodes::

    - type: condition
      field: latency_p99
      op: ">"
      value: 800
      then:
        - type: action
          name: circuit-break
          config: { timeout_ms: 30000, half_open_after: "60s" }

``condition`` nodes test one *fact* (``error_code``, ``latency_p99``, ``success_rate``,
``qps``, ``error_rate``, ``category``, …) with an operator and a value — a number, a
string, a list (``[429, 503]``) or an inclusive range (``500..599``) — and hold ``then``
(and optionally ``else``) subtrees. ``action`` nodes name an action (``fallback``,
``circuit-break``, ``rate-limit``, ``notify``) and its typed ``config``. A file holding
only such a list is a valid input to ``errloop validate``; :func:`decide` evaluates a
tree over a mapping of facts (pure, no I/O) and returns the actions it reaches, in order.

Circuit-breaker settings follow Sentinel's semantics: ``strategy`` (``slow_request_ratio``,
``error_ratio``, ``error_count``), ``threshold``, ``min_request_amount``, ``stat_interval``,
``recovery_timeout`` and ``probes`` (half-open requests); the document's ``timeout_ms`` and
``half_open_after`` are accepted as written there.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

from errloop.rules.located import Checker, Node, Problem, SpecError, parse

Number = int | float
Scalar = Number | str

_RANGE: Final = re.compile(r"^\s*(-?\d+(?:\.\d+)?)\s*\.\.\s*(-?\d+(?:\.\d+)?)\s*$")
_GO_DURATION: Final = re.compile(r"^(?:(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h))+$")
_GO_PART: Final = re.compile(r"(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h)")
_GO_UNIT_S: Final = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}
_IDENT: Final = re.compile(r"[a-z][a-z0-9_]{0,63}")

OPS: Final = (">", ">=", "<", "<=", "==", "!=", "in", "not in")
ORDER_OPS: Final = (">", ">=", "<", "<=")

# fact name → (kind, low, high): kind "number" (range-checked) or "string"
FACTS: Final[dict[str, tuple[str, float, float]]] = {
    "error_code": ("number", 0, 999_999),
    "http_status": ("number", 100, 599),
    "latency_p99": ("number", 0, 86_400_000),  # milliseconds
    "latency_p95": ("number", 0, 86_400_000),
    "latency_p50": ("number", 0, 86_400_000),
    "success_rate": ("number", 0.0, 1.0),
    "error_rate": ("number", 0.0, 1.0),
    "qps": ("number", 0, 1e9),
    "error_count": ("number", 0, 1e12),
    "burn_rate": ("number", 0, 1e6),
    "category": ("string", 0, 0),
    "error_class": ("string", 0, 0),
    "grpc_code": ("string", 0, 0),
    "service": ("string", 0, 0),
    "operation": ("string", 0, 0),
}


@dataclass(frozen=True)
class Range:
    low: float
    high: float  # inclusive

    def __contains__(self, x: object) -> bool:
        return isinstance(x, (int, float)) and not isinstance(x, bool) and self.low <= x <= self.high


Value = Scalar | Range | tuple[Scalar | Range, ...]


@dataclass(frozen=True)
class Condition:
    field: str
    op: str
    value: Value
    then: tuple[TreeNode, ...]
    otherwise: tuple[TreeNode, ...] = ()
    line: int = 0

    def holds(self, facts: Mapping[str, object]) -> bool:
        """Whether the condition is true for these facts; a missing fact is never true."""
        if self.field not in facts:
            return False
        x = facts[self.field]
        v = self.value
        if self.op in ("in", "not in") or isinstance(v, (Range, tuple)):
            members = v if isinstance(v, tuple) else (v,)
            inside = any(x in m if isinstance(m, Range) else x == m for m in members)
            return inside if self.op in ("in", "==") else not inside
        if self.op == "==":
            return x == v
        if self.op == "!=":
            return x != v
        if not isinstance(x, (int, float)) or isinstance(x, bool) or not isinstance(v, (int, float)):
            return False
        if isinstance(x, float) and math.isnan(x):
            return False
        return {">": x > v, ">=": x >= v, "<": x < v, "<=": x <= v}[self.op]


@dataclass(frozen=True)
class Action:
    name: str
    config: Mapping[str, Any]
    line: int = 0


TreeNode = Condition | Action

# action name → {config key: (kind, low, high)}; kind: int, number, duration, string, choice:<a|b>
ACTIONS: Final[dict[str, dict[str, tuple[str, float, float]]]] = {
    "fallback": {"service": ("string", 0, 0), "timeout_ms": ("int", 1, 3_600_000), "response": ("string", 0, 0)},
    "rate-limit": {"qps": ("number", 0.001, 1e9), "burst": ("int", 1, 1_000_000_000)},
    "circuit-break": {
        "strategy": ("choice:slow_request_ratio|error_ratio|error_count", 0, 0),
        "threshold": ("number", 0, 1e12),
        "slow_ms": ("int", 1, 3_600_000),
        "min_request_amount": ("int", 1, 1_000_000_000),
        "stat_interval": ("duration", 0.001, 86_400),
        "recovery_timeout": ("duration", 0.001, 86_400),
        "probes": ("int", 1, 10_000),
        "timeout_ms": ("int", 1, 86_400_000),  # the document's spelling of the recovery timeout
        "half_open_after": ("duration", 0.001, 86_400),
    },
    "notify": {"target": ("string", 0, 0), "message": ("string", 0, 0)},
}
ACTION_NAMES: Final = tuple(ACTIONS)
MAX_NODES: Final = 1000


def go_duration_seconds(text: str) -> float | None:
    """Seconds of a Go duration string (``"60s"``, ``"1m30s"``, ``"500ms"``); None if it is not one."""
    if not _GO_DURATION.fullmatch(text):
        return None
    return sum(float(n) * _GO_UNIT_S[u] for n, u in _GO_PART.findall(text))


def load_tree(text: str, source: str) -> tuple[TreeNode, ...]:
    """Parse and validate a file holding only a decision tree; SpecError lists every problem."""
    root = parse(text, source)
    c = Checker(source)
    if root is None:
        raise SpecError([Problem(source, 1, 1, "empty document: expected a decision tree (a list of nodes)", "")])
    tree = check_tree(c, root)
    c.done()
    return tree


def check_tree(c: Checker, node: Node) -> tuple[TreeNode, ...]:
    """Validate a tree (a list of nodes) found at ``node``, reporting into ``c``."""
    counter = [0]
    return _nodes(c, node, counter)


def _nodes(c: Checker, node: Node, counter: list[int]) -> tuple[TreeNode, ...]:
    items = c.seq(node, 1)
    out = []
    for item in items:
        counter[0] += 1
        if counter[0] > MAX_NODES:
            c.error(item, f"decision tree too large (more than {MAX_NODES} nodes)")
            break
        built = _node(c, item, counter)
        if built is not None:
            out.append(built)
    return tuple(out)


def _node(c: Checker, node: Node, counter: list[int]) -> TreeNode | None:
    if node.kind != "map":
        c.mapping(node, set())
        return None
    kind = c.choice(node.get("type"), ("condition", "action")) if node.get("type") else None
    if node.get("type") is None:
        c.error(node, "missing required key 'type' (condition or action)")
        return None
    if kind == "action":
        return _action(c, node)
    if kind == "condition":
        return _condition(c, node, counter)
    return None


def _condition(c: Checker, node: Node, counter: list[int]) -> Condition | None:
    m = c.mapping(node, {"type", "field", "op", "value", "then", "else"}, {"type", "field", "op", "value", "then"})
    if m is None:
        return None
    field_node = m.get("field")
    field = c.string(field_node)
    if field is not None and field_node is not None and field not in FACTS:
        c.error(field_node, f"unknown field {field!r} (known: {', '.join(FACTS)})")
        field = None
    op_node = m.get("op")
    op = c.choice(op_node, OPS) if op_node is not None else None
    value = _value(c, m.get("value"), field, op)
    then_node, else_node = m.get("then"), m.get("else")
    then = _nodes(c, then_node, counter) if then_node is not None else ()
    otherwise = _nodes(c, else_node, counter) if else_node is not None else ()
    if field is None or op is None or value is None:
        return None
    return Condition(field, op, value, then, otherwise, node.line)


def _value(c: Checker, node: Node | None, field: str | None, op: str | None) -> Value | None:
    if node is None:
        return None
    kind, lo, hi = FACTS.get(field or "", ("any", 0, 0))
    if node.kind == "seq":
        if op not in (None, "in", "not in", "==", "!="):
            c.error(node, f"a list of values needs op 'in' or 'not in', not {op!r}")
            return None
        members = [_scalar(c, n, kind, lo, hi, allow_range=True) for n in c.seq(node, 1)]
        if any(v is None for v in members):
            return None
        return tuple(v for v in members if v is not None)
    single = _scalar(c, node, kind, lo, hi, allow_range=True)
    if isinstance(single, Range) and op in ORDER_OPS:
        c.error(node, f"a range needs op 'in', 'not in', '==' or '!=', not {op!r}")
        return None
    if isinstance(single, str) and op in ORDER_OPS:
        c.error(node, f"op {op!r} compares numbers, got a string")
        return None
    return single


def _scalar(c: Checker, node: Node, kind: str, lo: float, hi: float, allow_range: bool) -> Scalar | Range | None:
    v = node.value
    if node.kind != "scalar" or v is None or isinstance(v, bool):
        c.error(node, "expected a number, a string or a range like 500..599")
        return None
    if isinstance(v, str) and allow_range and (m := _RANGE.match(v)):
        low, high = float(m.group(1)), float(m.group(2))
        if low > high:
            c.error(node, f"empty range {v!r}: the low end is above the high end")
            return None
        if kind == "number" and (low < lo or high > hi):
            c.error(node, f"range {v!r} is outside [{lo:g}, {hi:g}]")
            return None
        return Range(low, high)
    if kind == "number":
        if not isinstance(v, (int, float)) or (isinstance(v, float) and not math.isfinite(v)):
            c.error(node, f"expected a number, got {v!r}")
            return None
        if not lo <= v <= hi:
            c.error(node, f"{v} is out of range [{lo:g}, {hi:g}]")
            return None
        return v
    if kind == "string" and not isinstance(v, str):
        c.error(node, f"expected a string, got {v!r}")
        return None
    if isinstance(v, (int, float, str)):
        return v
    c.error(node, f"unsupported value {v!r}")
    return None


def _action(c: Checker, node: Node) -> Action | None:
    m = c.mapping(node, {"type", "name", "config"}, {"type", "name"})
    if m is None:
        return None
    name_node = m.get("name")
    name = c.choice(name_node, ACTION_NAMES) if name_node is not None else None
    config: dict[str, Any] = {}
    cfg_node = m.get("config")
    if name is not None and cfg_node is not None:
        schema = ACTIONS[name]
        cfg = c.mapping(cfg_node, set(schema))
        for key, child in cfg.items() if cfg is not None else ():
            if key in schema:
                val = _config_value(c, child, *schema[key])
                if val is not None:
                    config[key] = val
    if name is None:
        return None
    return Action(name, config, node.line)


def _config_value(c: Checker, node: Node, kind: str, lo: float, hi: float) -> Any:
    v = node.value
    if kind.startswith("choice:"):
        return c.choice(node, tuple(kind.split(":", 1)[1].split("|")))
    if kind == "string":
        return c.string(node)
    if kind == "duration":
        if isinstance(v, str) and (secs := go_duration_seconds(v)) is not None:
            if not lo <= secs <= hi:
                c.error(node, f"{v} is out of range [{lo:g}s, {hi:g}s]")
                return None
            return v
        c.error(node, f"expected a Go duration like 60s, 1m30s or 500ms, got {v!r}")
        return None
    if isinstance(v, bool) or not isinstance(v, (int, float)) or (kind == "int" and not isinstance(v, int)):
        c.error(node, f"expected {'an integer' if kind == 'int' else 'a number'}, got {v!r}")
        return None
    if not lo <= v <= hi:
        c.error(node, f"{v} is out of range [{lo:g}, {hi:g}]")
        return None
    return v


def decide(tree: Sequence[TreeNode], facts: Mapping[str, object]) -> list[Action]:
    """The actions a tree reaches for these facts, in tree order (pure)."""
    out: list[Action] = []
    for node in tree:
        if isinstance(node, Action):
            out.append(node)
        elif node.holds(facts):
            out += decide(node.then, facts)
        else:
            out += decide(node.otherwise, facts)
    return out


Path = tuple[tuple[Condition, bool], ...]  # the conditions on the way to a node, each with the outcome taken


def leaf_paths(tree: Sequence[TreeNode], path: Path = ()) -> list[tuple[Action, Path]]:
    """Every action of a tree with the path to it: ``decide`` returns an action exactly when
    each condition on its path holds (``True``) or does not (``False``, an ``else`` branch).

    Pure; the generator compiles each path into one alert condition (deploy/generate).
    """
    out: list[tuple[Action, Path]] = []
    for node in tree:
        if isinstance(node, Action):
            out.append((node, path))
        else:
            out += leaf_paths(node.then, (*path, (node, True)))
            out += leaf_paths(node.otherwise, (*path, (node, False)))
    return out


def facts_used(tree: Sequence[TreeNode]) -> frozenset[str]:
    """The fact names a tree tests."""
    return frozenset(cond.field for _, path in leaf_paths(tree) for cond, _ in path)
