"""Decision trees as pure TICKscript: one alert per action of the tree, over the request metrics.

A tree whose facts all come from the service's request metrics (``policy.metrics``: what
its Telegraf already collects) needs no UDF: a batch task queries, every ``every``, the last
``window`` of those metrics per service (and operation, when the tree tests it), computes
the facts, and each action of the tree becomes one ``alert`` node whose condition is the
path to it (:func:`errloop.rules.decision.leaf_paths`; an ``else`` branch is the negated
condition). So the task decides exactly what :func:`errloop.rules.decision.decide` decides
for the same facts, and Kapacitor's ``stateChangesOnly`` announces a decision once, when it
is taken, and once more when it is withdrawn.

Facts and how they are computed over the window (:data:`METRIC_FACTS`):
``qps`` = requests / window seconds; ``error_rate`` = errors / requests; ``success_rate`` =
1 - error_rate; ``error_count`` = errors; ``latency_p50|p95|p99`` = that percentile of the
latency field; ``service`` and ``operation`` are the group's tags. A window without requests
decides nothing. Trees testing facts of single events (``category``, ``error_class``,
``error_code``, ``grpc_code``, ``http_status``) or ``burn_rate`` are for the decision UDF
(``@errloop_decide``, on the roadmap): :func:`unsupported_facts` names them and the generator
says so instead of writing a task that would decide something else.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Final

from errloop.deploy.generate.tick import TickSafe, tick_float, tick_ref, tick_str
from errloop.rules import contract
from errloop.rules.decision import Action, Condition, Path, Range, Scalar, TreeNode, facts_used, leaf_paths

# fact → the InfluxQL aggregate it needs ("" for the group's tags and what requests/errors give)
METRIC_FACTS: Final[dict[str, str]] = {
    "qps": "",
    "error_rate": "",
    "success_rate": "",
    "error_count": "",
    "latency_p50": "percentile({latency}, 50)",
    "latency_p95": "percentile({latency}, 95)",
    "latency_p99": "percentile({latency}, 99)",
    "service": "",
    "operation": "",
}
NUMERIC_FACTS: Final = contract.DECISION_FACTS
_NEGATED: Final = {">": "<=", ">=": "<", "<": ">=", "<=": ">", "==": "!=", "!=": "=="}
_PLAIN: Final = re.compile(r"[A-Za-z0-9_.:/ -]{1,64}")


@dataclass(frozen=True)
class Cmp:
    fact: str
    op: str  # > >= < <= == !=
    value: Scalar


@dataclass(frozen=True)
class All:
    parts: tuple[Expr, ...]


@dataclass(frozen=True)
class AnyOf:
    parts: tuple[Expr, ...]


@dataclass(frozen=True)
class Const:
    value: bool


Expr = Cmp | All | AnyOf | Const


def unsupported_facts(tree: Sequence[TreeNode]) -> list[str]:
    """The facts of a tree that request metrics cannot give (empty: the tree compiles to TICKscript)."""
    return sorted(facts_used(tree) - set(METRIC_FACTS))


def condition_expr(cond: Condition, holds: bool) -> Expr:
    """The expression true exactly when ``cond.holds(facts) == holds`` (every fact present)."""
    v = cond.value
    if cond.op in ("in", "not in") or isinstance(v, (Range, tuple)):
        members = v if isinstance(v, tuple) else (v,)
        inside = cond.op in ("in", "==")  # Condition.holds: any other operator with a list means "not in"
        want_inside = inside if holds else not inside
        return _membership(cond.field, members, want_inside)
    assert not isinstance(v, (Range, tuple))
    if cond.op in ("==", "!="):
        op = cond.op if holds else _NEGATED[cond.op]
        return Cmp(cond.field, op, v)
    if not isinstance(v, (int, float)) or cond.field not in NUMERIC_FACTS:
        return Const(not holds)  # an ordering of a string never holds
    return Cmp(cond.field, cond.op if holds else _NEGATED[cond.op], v)


def _membership(fact: str, members: Sequence[Scalar | Range], inside: bool) -> Expr:
    parts: list[Expr] = []
    for m in members:
        if isinstance(m, Range):
            if inside:
                parts.append(All((Cmp(fact, ">=", m.low), Cmp(fact, "<=", m.high))))
            else:
                parts.append(AnyOf((Cmp(fact, "<", m.low), Cmp(fact, ">", m.high))))
        else:
            parts.append(Cmp(fact, "==" if inside else "!=", m))
    return AnyOf(tuple(parts)) if inside else All(tuple(parts))


def path_expr(path: Path) -> Expr:
    """All the conditions of a path, each as taken."""
    return All(tuple(condition_expr(cond, holds) for cond, holds in path))


def evaluate(expr: Expr, facts: Mapping[str, object]) -> bool:
    """The expression in Python, as Kapacitor evaluates its TICKscript form (for tests and dry runs)."""
    if isinstance(expr, Const):
        return expr.value
    if isinstance(expr, All):
        return all(evaluate(p, facts) for p in expr.parts)
    if isinstance(expr, AnyOf):
        return any(evaluate(p, facts) for p in expr.parts)
    x, v = facts[expr.fact], expr.value
    if expr.op == "==":
        return x == v
    if expr.op == "!=":
        return x != v
    if not isinstance(x, (int, float)) or not isinstance(v, (int, float)):
        return False
    return {">": x > v, ">=": x >= v, "<": x < v, "<=": x <= v}[expr.op]


def _literal(fact: str, value: Scalar) -> TickSafe:
    if fact in NUMERIC_FACTS:
        if isinstance(value, str):
            raise ValueError(f"{fact} is a number, not {value!r}")
        return tick_float(value)
    return tick_str(value)  # service, operation: tags, compared as strings


def tick_lambda(expr: Expr, names: Mapping[str, str] | None = None) -> TickSafe:
    """The expression as a TICKscript lambda body. Numeric facts are the task's float fields;
    ``service`` and ``operation`` are tags, named by ``names`` (the policy's metrics tags)."""
    if isinstance(expr, Const):
        return TickSafe("TRUE" if expr.value else "FALSE")
    if isinstance(expr, (All, AnyOf)):
        if not expr.parts:
            return TickSafe("TRUE" if isinstance(expr, All) else "FALSE")
        joiner = " AND " if isinstance(expr, All) else " OR "
        inner = joiner.join(tick_lambda(p, names) for p in expr.parts)
        return TickSafe(inner if len(expr.parts) == 1 else f"({inner})")
    ref = tick_ref((names or {}).get(expr.fact, expr.fact))
    return TickSafe(f"{ref} {expr.op} {_literal(expr.fact, expr.value)}")


def describe(expr: Expr) -> str:
    """The expression for a person (alert messages, comments): strings that are not plain are elided."""
    if isinstance(expr, Const):
        return "always" if expr.value else "never"
    if isinstance(expr, (All, AnyOf)):
        if not expr.parts:
            return "always" if isinstance(expr, All) else "never"
        joiner = " and " if isinstance(expr, All) else " or "
        inner = joiner.join(describe(p) for p in expr.parts)
        return inner if len(expr.parts) == 1 or isinstance(expr, All) else f"({inner})"
    v = expr.value
    if isinstance(v, str):
        text = f'"{v}"' if _PLAIN.fullmatch(v) else "(a value of the tree)"
    else:
        text = f"{v:g}"
    return f"{expr.fact} {expr.op} {text}"


@dataclass(frozen=True)
class DecisionLeaf:
    """One action of the tree and the alert condition that takes it."""

    index: int
    action: Action
    condition: TickSafe
    description: str
    config_json: str


def decision_leaves(tree: Sequence[TreeNode], names: Mapping[str, str] | None = None) -> tuple[DecisionLeaf, ...]:
    """Every action of the tree with its alert condition, in tree order (``names``: see :func:`tick_lambda`)."""
    out = []
    for i, (action, path) in enumerate(leaf_paths(tree)):
        expr = path_expr(path)
        config = json.dumps(dict(action.config), sort_keys=True, separators=(",", ":"), ensure_ascii=True)
        out.append(DecisionLeaf(i, action, tick_lambda(expr, names), describe(expr), config))
    return tuple(out)


def aggregates(tree: Sequence[TreeNode], latency: str) -> list[tuple[str, str]]:
    """(InfluxQL aggregate, alias) the tree's facts need, besides sum(requests) and sum(errors)."""
    used = facts_used(tree)
    return [(METRIC_FACTS[f].format(latency=latency), f) for f in NUMERIC_FACTS if f in used and METRIC_FACTS[f]]
