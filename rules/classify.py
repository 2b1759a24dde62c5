"""The classification engine: YAML rules -> a compiled :class:`RuleSet` -> one :class:`Classification` per event.

Pure: no I/O except reading this package's own ``default/classify.yaml``
(:func:`default_rules`). The rule file format (version 1) is described in
``rules/README.md`` ("Classification rules"); in short::

    version: 1
    rules:
      - id: validation.field_required      # unique, [a-z0-9_.-]+
        priority: 100                      # higher first; ties keep file order; first match wins
        description: …
        match:                             # every condition must hold (AND)
          message: 'regex'                 # RE2 regex, searched; a list = any of them
          message|error_chain: 'regex'     # several fields: any of them (error_text = message|error_chain|root_cause)
          when: 'http_status in 500..599'  # a structural expression (errloop.rules.expr), one more condition
        set: {error_class, category, retryable, severity, error_code, retry_after}
        suggestion: "Jinja2 (sandboxed), sees the event fields and the named groups"

Every mistake in a file is reported at once, each as ``source:line:col: message (path)``.
"""

from __future__ import annotations

import difflib
import functools
import importlib.resources
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from errloop.rules import contract
from errloop.rules.expr import (
    ERROR_TEXT_FIELDS,
    EVENT_NAMES,
    FIELD_ALIASES,
    ExprError,
    Expression,
    compile_expression,
)
from errloop.rules.safe_regex import Pattern, PatternSet, RegexError, compile_regex, valid_utf8
from errloop.rules.suggest import EMPTY, Suggestion, TemplateProblem, compile_suggestion
from errloop.rules.yamlpos import Map, Node, Pos, Scalar, Seq, YamlSyntaxError, compose, duplicate_keys, kind

__all__ = [
    "ERROR_TEXT_FIELDS",
    "FALLBACK",
    "FALLBACK_RULE_ID",
    "FORMAT_VERSION",
    "SEVERITIES",
    "Classification",
    "Condition",
    "ExprCondition",
    "Rule",
    "RuleError",
    "RuleProblem",
    "RuleSet",
    "default_rules",
    "load_rules",
    "parse_duration",
]

FORMAT_VERSION = 1
SEVERITIES = ("info", "warning", "error", "critical")
FALLBACK_RULE_ID = "fallback.other"
MAX_RULE_FILE_CHARS = 2_000_000

# match pseudo-field error_text: the places Go error text ends up (message, error_chain, root_cause)
_FIELD_ALIASES: dict[str, tuple[str, ...]] = dict(FIELD_ALIASES)
_EVENT_NAMES = frozenset((*contract.EVENT_TAGS, *contract.EVENT_FIELDS))
_MATCHABLE = tuple(sorted(_EVENT_NAMES | set(_FIELD_ALIASES)))
WHEN_KEY = "when"  # the match key of a structural expression

_ID = re.compile(r"[a-z0-9_.-]+")
_CATEGORY = re.compile(r"[a-z][a-z0-9_]*")
_ERROR_CODE = re.compile(r"[A-Za-z0-9_.-]+")
_DURATION_PART = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|ms|s|m|h)")
_DURATION_UNITS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}
_RESERVED_VARIABLES = frozenset({"matches"})
MAX_MATCHES = 20

_TOP_KEYS = ("version", "rules")
_RULE_KEYS = ("id", "priority", "description", "match", "set", "suggestion")
_SET_KEYS = ("error_class", "category", "retryable", "severity", "error_code", "retry_after")
_SET_REQUIRED = ("error_class", "category", "retryable")


# --- public types ----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Classification:
    """The outcome of classifying one event."""

    rule_id: str
    error_class: str  # contract.ERROR_CLASSES: business | system | transient | unknown
    category: str
    retryable: bool
    severity: str  # info | warning | error | critical
    error_code: str
    retry_after_s: float | None
    suggestion: str


FALLBACK = Classification(
    rule_id=FALLBACK_RULE_ID,
    error_class="unknown",
    category="other",
    retryable=False,
    severity="error",
    error_code="OTHER",
    retry_after_s=None,
    suggestion="",
)


@dataclass(frozen=True, slots=True)
class RuleProblem:
    """One mistake in a rule file."""

    source: str
    line: int
    col: int
    message: str
    path: str = ""

    def __str__(self) -> str:
        where = f"{self.source}:{self.line}:{self.col}: {self.message}"
        return f"{where} ({self.path})" if self.path else where


class RuleError(Exception):
    """A rule file was refused. ``problems`` lists every mistake found, in file order;
    ``source``/``line``/``col``/``message``/``path`` are those of the first, and ``str()``
    is one ``source:line:col: message (path)`` line per problem."""

    def __init__(self, problems: Sequence[RuleProblem]) -> None:
        if not problems:
            raise ValueError("RuleError needs at least one problem")
        self.problems: tuple[RuleProblem, ...] = tuple(sorted(problems, key=lambda p: (p.line, p.col)))
        first = self.problems[0]
        self.source = first.source
        self.line = first.line
        self.col = first.col
        self.message = first.message
        self.path = first.path
        super().__init__("\n".join(str(p) for p in self.problems))


@dataclass(frozen=True, slots=True)
class Condition:
    """``fields`` (any of them) must be present and match one of ``patterns`` (searched)."""

    key: str  # as written in the file, e.g. "message" or "error_text"
    fields: tuple[str, ...]
    patterns: tuple[Pattern, ...]

    def search(self, view: _EventView) -> tuple[str, Pattern, dict[str, str | None]] | None:
        """The first (field, pattern) that matches, in file order, with its named groups."""
        for name in self.fields:
            text = view.text(name)
            if text is None:
                continue
            found = view.found(name)
            for pattern in self.patterns:
                if pattern.source in found:
                    groups = pattern.search(text)
                    if groups is not None:
                        return name, pattern, groups
        return None


@dataclass(frozen=True, slots=True)
class ExprCondition:
    """``when: <expression>``: a structural condition (:mod:`errloop.rules.expr`) on the event.

    ``fields`` are every event field the expression may read (aliases expanded), so that whoever
    keys a memo on the fields the rules see (udf/classify/cache.py) stays exact. It has no
    ``patterns``: it takes no part in the one-pass regex sets and is evaluated after them.
    """

    key: str  # "when"
    fields: tuple[str, ...]
    expression: Expression
    patterns: tuple[Pattern, ...] = ()

    def holds(self, event: Mapping[str, contract.Value]) -> bool:
        return self.expression(event.get)


@dataclass(frozen=True, slots=True)
class Rule:
    """One compiled rule."""

    id: str
    priority: int
    description: str
    conditions: tuple[Condition | ExprCondition, ...]  # all must hold
    error_class: str
    category: str
    retryable: bool
    severity: str
    error_code: str
    retry_after_s: float | None
    suggestion: Suggestion = field(repr=False)
    line: int = 0  # where the rule starts in its file
    index: int = 0  # position in its file


class RuleSet:
    """Compiled rules in evaluation order (priority descending, ties in file order)."""

    def __init__(self, rules: Iterable[Rule], source: str = "<string>") -> None:
        self.source = source
        self.rules: tuple[Rule, ...] = tuple(sorted(rules, key=lambda r: (-r.priority, r.index)))
        # One RE2 set per event field: one pass over a field tells which patterns occur in it,
        # and so which conditions hold; a rule matches when all its conditions hold.
        patterns_of: dict[str, dict[str, Pattern]] = {}
        conditions_of: dict[tuple[str, str], set[int]] = {}
        plan: list[tuple[Rule, frozenset[int], tuple[Condition, ...], Expression | None]] = []
        cid = 0
        for rule in self.rules:
            ids: set[int] = set()
            regexes: list[Condition] = []
            when: Expression | None = None  # a rule has at most one (duplicate keys are refused)
            for condition in rule.conditions:
                if isinstance(condition, ExprCondition):
                    when = condition.expression
                    continue
                regexes.append(condition)
                for name in condition.fields:
                    for pattern in condition.patterns:
                        patterns_of.setdefault(name, {}).setdefault(pattern.source, pattern)
                        conditions_of.setdefault((name, pattern.source), set()).add(cid)
                ids.add(cid)
                cid += 1
            plan.append((rule, frozenset(ids), tuple(regexes), when))
        self._plan = tuple(plan)
        self._sets: dict[str, tuple[PatternSet, tuple[frozenset[int], ...]]] = {}
        for name, patterns in patterns_of.items():
            pset = PatternSet(tuple(patterns.values()))
            holds = tuple(frozenset(conditions_of[(name, p.source)]) for p in pset.patterns)
            self._sets[name] = (pset, holds)

    def __len__(self) -> int:
        return len(self.rules)

    def __repr__(self) -> str:
        return f"RuleSet(source={self.source!r}, rules={len(self.rules)})"

    def rule(self, rule_id: str) -> Rule | None:
        return next((r for r in self.rules if r.id == rule_id), None)

    def classify(self, event: Mapping[str, contract.Value]) -> Classification:
        """Classify ``event``: the first matching rule wins, else :data:`FALLBACK`. Never raises
        on event content; a suggestion that fails to render says so in its text."""
        view = _EventView(event)
        holding: set[int] = set()
        for name, (pset, holds) in self._sets.items():
            text = view.text(name)
            if text is None:
                continue
            found = pset.matching(text)
            view.record(name, frozenset(pset.patterns[i].source for i in found))
            for i in found:
                holding.update(holds[i])
        get = event.get
        for rule, ids, regexes, when in self._plan:
            if not ids <= holding:
                continue
            if when is not None and not when(get):  # structure, after the regexes that already hold
                continue
            hits: list[tuple[str, Pattern, dict[str, str | None]]] = []
            for condition in regexes:
                hit = condition.search(view)  # re-run the one pattern that holds, for its groups
                if hit is None:  # pragma: no cover - the set and the pattern disagree; trust the pattern
                    break
                hits.append(hit)
            else:
                return _outcome(rule, event, view, hits)
        return FALLBACK


def load_rules(text: str, source: str = "<string>") -> RuleSet:
    """Parse and compile a rule file (version 1). Pure; raises :class:`RuleError` with every problem."""
    if len(text) > MAX_RULE_FILE_CHARS:
        raise RuleError([RuleProblem(source, 1, 1, f"rule file larger than {MAX_RULE_FILE_CHARS} characters")])
    try:
        root = compose(text)
    except YamlSyntaxError as exc:
        raise RuleError([RuleProblem(source, exc.pos.line, exc.pos.col, exc.message)]) from None
    loader = _Loader(source, text)
    rules = loader.load(root)
    if loader.problems:
        raise RuleError(loader.problems)
    return RuleSet(rules, source)


DEFAULT_RULES_RESOURCE = "default/classify.yaml"


@functools.lru_cache(maxsize=1)
def default_rules() -> RuleSet:
    """The bundled rules, ``errloop/rules/default/classify.yaml`` (compiled once, then cached)."""
    resource = importlib.resources.files("errloop.rules").joinpath(DEFAULT_RULES_RESOURCE)
    return load_rules(resource.read_text(encoding="utf-8"), source=f"errloop.rules/{DEFAULT_RULES_RESOURCE}")


def parse_duration(text: str) -> float:
    """A Go duration (``"1m30s"``, ``"250ms"``, ``"0s"``, ``"0"``) in seconds; ValueError if malformed or negative."""
    s = text.strip()
    if s == "0":
        return 0.0
    if s == "" or s.startswith("-"):
        raise ValueError(f"not a duration: {text!r}")
    total = 0.0
    pos = 0
    for m in _DURATION_PART.finditer(s):
        if m.start() != pos:
            break
        total += float(m.group(1)) * _DURATION_UNITS[m.group(2)]
        pos = m.end()
    if pos != len(s) or pos == 0:
        raise ValueError(f"not a duration: {text!r} (use Go form like 500ms, 2s, 1m30s)")
    return total


# --- classification --------------------------------------------------------------------


class _EventView:
    """One event as the rules see it: field texts and the patterns found in them, each computed once.

    Field values become text this way:
    str as is (lone surrogates replaced: RE2 reads UTF-8); bool -> "true"/"false"; int -> decimal;
    float -> decimal, integral floats without ".0" (503.0 -> "503"). A missing field, None or any
    other type -> None (no match).
    """

    __slots__ = ("_event", "_found", "_texts")

    def __init__(self, event: Mapping[str, contract.Value]) -> None:
        self._event = event
        self._texts: dict[str, str | None] = {}
        self._found: dict[str, frozenset[str]] = {}

    def text(self, name: str) -> str | None:
        try:
            return self._texts[name]
        except KeyError:
            pass
        text = _as_text(self._event.get(name))
        self._texts[name] = text
        return text

    def record(self, name: str, sources: frozenset[str]) -> None:
        self._found[name] = sources

    def found(self, name: str) -> frozenset[str]:
        """Sources of the patterns (of any rule) that occur in field ``name``."""
        return self._found.get(name, frozenset())


def _as_text(value: object) -> str | None:
    if isinstance(value, str):
        return value if value.isascii() else valid_utf8(value)
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if value.is_integer() and abs(value) < 1e15:
            return str(int(value))
        return repr(value)
    return None


def _outcome(
    rule: Rule,
    event: Mapping[str, contract.Value],
    view: _EventView,
    hits: list[tuple[str, Pattern, dict[str, str | None]]],
) -> Classification:
    suggestion = ""
    if rule.suggestion is not EMPTY:
        variables: dict[str, object] = {k: v for k, v in event.items() if isinstance(k, str)}
        for _, _, groups in hits:
            variables.update({k: v for k, v in groups.items() if v is not None})
        if "matches" in rule.suggestion.variables:
            variables["matches"] = _all_matches(view, hits)
        suggestion = rule.suggestion.render(variables)
    return Classification(
        rule_id=rule.id,
        error_class=rule.error_class,
        category=rule.category,
        retryable=rule.retryable,
        severity=rule.severity,
        error_code=rule.error_code,
        retry_after_s=rule.retry_after_s,
        suggestion=suggestion,
    )


def _all_matches(view: _EventView, hits: list[tuple[str, Pattern, dict[str, str | None]]]) -> list[dict[str, str]]:
    """Named groups of every match of the winning patterns (only those with named groups)."""
    out: list[dict[str, str]] = []
    for name, pattern, _ in hits:
        if not pattern.group_names:
            continue
        text = view.text(name) or ""
        for groups in pattern.finditer(text):
            out.append({k: v for k, v in groups.items() if v is not None})
            if len(out) >= MAX_MATCHES:
                return out
    return out


# --- loading ---------------------------------------------------------------------------


class _Loader:
    """Walks the positioned YAML tree, collecting every problem instead of stopping at the first."""

    def __init__(self, source: str, text: str) -> None:
        self.source = source
        self.lines = text.splitlines()
        self.problems: list[RuleProblem] = []

    def problem(self, pos: Pos, message: str, path: str) -> None:
        self.problems.append(RuleProblem(self.source, pos.line, pos.col, message, path))

    def load(self, root: Node | None) -> list[Rule]:
        if root is None:
            self.problem(Pos(1, 1), "empty rule file: expected a mapping with 'version' and 'rules'", "")
            return []
        if not isinstance(root, Map):
            self.problem(root.pos, f"expected a mapping with 'version' and 'rules', got {kind(root)}", "")
            return []
        self.keys(root, _TOP_KEYS, ("version", "rules"), "")
        version = root.get("version")
        if isinstance(version, Scalar) and not (
            isinstance(version.value, int) and not isinstance(version.value, bool) and version.value == FORMAT_VERSION
        ):
            self.problem(version.pos, f"unsupported version {version.text!r}: this errloop reads version 1", "version")
        elif version is not None and not isinstance(version, Scalar):
            self.problem(version.pos, f"version must be 1, got {kind(version)}", "version")
        rules_node = root.get("rules")
        if rules_node is None:
            return []
        if isinstance(rules_node, Scalar) and rules_node.value is None:
            return []  # "rules:" with nothing: no rules, only the fallback
        if not isinstance(rules_node, Seq):
            self.problem(rules_node.pos, f"rules must be a list, got {kind(rules_node)}", "rules")
            return []
        rules: list[Rule] = []
        first_line: dict[str, int] = {}
        for index, item in enumerate(rules_node.items):
            path = f"rules[{index}]"
            rule = self.rule(item, index, path)
            if rule is None:
                continue
            if rule.id in first_line:
                id_node = item.get("id") if isinstance(item, Map) else None
                pos = id_node.pos if id_node is not None else item.pos
                self.problem(
                    pos, f"duplicate rule id {rule.id!r} (first defined on line {first_line[rule.id]})", path + ".id"
                )
                continue
            first_line[rule.id] = rule.line
            rules.append(rule)
        return rules

    def keys(self, node: Map, allowed: Sequence[str], required: Sequence[str], path: str) -> None:
        """Unknown, duplicate and missing keys of ``node``."""
        for key in node.keys():
            if key.text not in allowed:
                self.problem(
                    key.pos, f"unknown key {key.text!r}{_did_you_mean(key.text, allowed)}", _join(path, key.text)
                )
        for key in duplicate_keys(node):
            self.problem(key.pos, f"duplicate key {key.text!r}", _join(path, key.text))
        present = {k.text for k in node.keys()}
        for name in required:
            if name not in present:
                self.problem(node.pos, f"missing required key {name!r}", _join(path, name))

    def rule(self, node: Node, index: int, path: str) -> Rule | None:
        if not isinstance(node, Map):
            self.problem(node.pos, f"a rule must be a mapping, got {kind(node)}", path)
            return None
        before = len(self.problems)
        self.keys(node, _RULE_KEYS, ("id", "match", "set"), path)

        rule_id = self.string(node.get("id"), _join(path, "id"))
        if rule_id is not None:
            id_node = node.get("id")
            assert id_node is not None
            if not _ID.fullmatch(rule_id):
                self.problem(id_node.pos, f"rule id {rule_id!r} must match [a-z0-9_.-]+", _join(path, "id"))
            elif rule_id == FALLBACK_RULE_ID:
                self.problem(
                    id_node.pos,
                    f"rule id {FALLBACK_RULE_ID!r} is reserved for the built-in fallback",
                    _join(path, "id"),
                )

        priority = 0
        priority_node = node.get("priority")
        if priority_node is not None:
            if (
                isinstance(priority_node, Scalar)
                and isinstance(priority_node.value, int)
                and not isinstance(priority_node.value, bool)
            ):
                priority = priority_node.value
            else:
                self.problem(
                    priority_node.pos,
                    f"priority must be an integer, got {kind(priority_node)}",
                    _join(path, "priority"),
                )

        description = ""
        description_node = node.get("description")
        if description_node is not None:
            description = self.string(description_node, _join(path, "description")) or ""

        conditions = self.match(node.get("match"), _join(path, "match"))
        outcome = self.outcome(node.get("set"), _join(path, "set"))
        suggestion = self.suggestion(node.get("suggestion"), _join(path, "suggestion"), conditions)

        if len(self.problems) != before or rule_id is None or conditions is None or outcome is None:
            return None
        error_class, category, retryable, severity, error_code, retry_after_s = outcome
        return Rule(
            id=rule_id,
            priority=priority,
            description=description,
            conditions=conditions,
            error_class=error_class,
            category=category,
            retryable=retryable,
            severity=severity,
            error_code=error_code,
            retry_after_s=retry_after_s,
            suggestion=suggestion,
            line=node.pos.line,
            index=index,
        )

    def string(self, node: Node | None, path: str) -> str | None:
        if node is None:
            return None
        if isinstance(node, Scalar) and isinstance(node.value, str):
            return node.value
        self.problem(node.pos, f"expected a string, got {kind(node)}", path)
        return None

    def match(self, node: Node | None, path: str) -> tuple[Condition | ExprCondition, ...] | None:
        if node is None:
            return None
        if isinstance(node, Scalar) and node.value is None:
            return ()  # "match:" with nothing: the rule matches every event
        if not isinstance(node, Map):
            self.problem(node.pos, f"match must be a mapping of event field -> regex, got {kind(node)}", path)
            return None
        for key in duplicate_keys(node):
            self.problem(key.pos, f"duplicate key {key.text!r}", _join(path, key.text))
        conditions: list[Condition | ExprCondition] = []
        ok = True
        for key, value in node.items:
            if key.text == WHEN_KEY:
                when = self.when(value, _join(path, key.text))
                if when is None:
                    ok = False
                else:
                    conditions.append(when)
                continue
            fields = self.fields(key, _join(path, key.text))
            patterns = self.patterns(value, _join(path, key.text))
            if fields is None or patterns is None:
                ok = False
                continue
            conditions.append(Condition(key=key.text, fields=fields, patterns=patterns))
        return tuple(conditions) if ok else None

    def fields(self, key: Scalar, path: str) -> tuple[str, ...] | None:
        names: list[str] = []
        ok = True
        for part in key.text.split("|"):
            name = part.strip()
            if name in _FIELD_ALIASES:
                names.extend(_FIELD_ALIASES[name])
            elif name in _EVENT_NAMES:
                names.append(name)
            elif name == WHEN_KEY:
                self.problem(key.pos, f"{WHEN_KEY!r} is a key of its own, not a field to combine with '|'", path)
                ok = False
            else:
                hint = _did_you_mean(name, (*_MATCHABLE, WHEN_KEY))
                self.problem(key.pos, f"unknown event field {name!r}{hint} (see errloop.rules.contract)", path)
                ok = False
        return tuple(dict.fromkeys(names)) if ok else None

    def when(self, node: Node, path: str) -> ExprCondition | None:
        """``when: <expression>``, compiled; a refused expression is a problem at its own column."""
        if not (isinstance(node, Scalar) and isinstance(node.value, str)):
            self.problem(node.pos, f"when must be an expression (a string), got {kind(node)}", path)
            return None
        try:
            expression = compile_expression(node.value, EVENT_NAMES)
        except ExprError as exc:
            pos = self.offset_pos(node, exc.offset)
            where = "" if pos is not None else f" (column {exc.column} of the expression)"
            self.problem(pos or node.pos, f"{exc.message}{where}", path)
            return None
        return ExprCondition(key=WHEN_KEY, fields=expression.fields, expression=expression)

    def offset_pos(self, node: Scalar, offset: int) -> Pos | None:
        """Where character ``offset`` of a string scalar's value was written, or None if unsure.

        Exact for one-line plain and quoted scalars, multi-line plain scalars and block
        scalars (``|``, ``>``) whose text the file shows as is; None otherwise (a multi-line
        quoted scalar, a scalar the mapping cannot verify)."""
        value = node.value
        if not isinstance(value, str) or not value:
            return None
        spots = self.scalar_spots(node, value)
        if spots is None:
            return None
        if offset < len(spots):
            return spots[offset]
        last = spots[-1]
        return Pos(last.line, last.col + 1)  # at the end: just after the last character

    def scalar_spots(self, node: Scalar, value: str) -> list[Pos] | None:
        """The file position of every character of ``value``, or None when it cannot be verified."""
        row = node.pos.line - 1
        if not 0 <= row < len(self.lines):
            return None
        line = self.lines[row]
        start = node.pos.col - 1
        if node.style is None:
            if line[start : start + len(value)] == value:
                return [Pos(row + 1, start + 1 + k) for k in range(len(value))]
            segments = [(row + 1, start + 1, _plain_part(line[start:]))]
            for r in range(row + 1, len(self.lines)):
                text = self.lines[r]
                stripped = text.lstrip(" \t")
                segments.append((r + 1, len(text) - len(stripped) + 1, _plain_part(stripped)))
            return _align(value, segments)
        if node.style in ("'", '"'):
            return _quoted_spots(line, start, node.style, row + 1, value)
        if node.style in ("|", ">"):
            segments = []
            indent: int | None = None
            for r in range(row + 1, len(self.lines)):
                text = self.lines[r]
                if not text.strip():
                    continue
                width = len(text) - len(text.lstrip(" "))
                if indent is None:
                    indent = width
                if width < indent:
                    break
                segments.append((r + 1, indent + 1, text[indent:]))
            return _align(value, segments)
        return None  # pragma: no cover - PyYAML has no other scalar style

    def patterns(self, node: Node, path: str) -> tuple[Pattern, ...] | None:
        items: list[tuple[Node, str]]
        if isinstance(node, Seq):
            if not node.items:
                self.problem(node.pos, "empty list of regexes: it would never match", path)
                return None
            items = [(item, f"{path}[{i}]") for i, item in enumerate(node.items)]
        else:
            items = [(node, path)]
        patterns: list[Pattern] = []
        ok = True
        for item, item_path in items:
            if not isinstance(item, Scalar) or item.value is None:
                self.problem(item.pos, f"expected a regex (string), got {kind(item)}", item_path)
                ok = False
                continue
            try:
                pattern = compile_regex(item.text)  # numbers and booleans count as their text
            except RegexError as exc:
                self.problem(item.pos, f"bad regex {item.text!r}: {exc}", item_path)
                ok = False
                continue
            reserved = _RESERVED_VARIABLES.intersection(pattern.group_names)
            if reserved:
                self.problem(item.pos, f"group name {sorted(reserved)[0]!r} is reserved", item_path)
                ok = False
                continue
            patterns.append(pattern)
        return tuple(patterns) if ok else None

    def outcome(self, node: Node | None, path: str) -> tuple[str, str, bool, str, str, float | None] | None:
        if node is None:
            return None
        if not isinstance(node, Map):
            self.problem(node.pos, f"set must be a mapping, got {kind(node)}", path)
            return None
        before = len(self.problems)
        self.keys(node, _SET_KEYS, _SET_REQUIRED, path)

        error_class = self.choice(node.get("error_class"), contract.ERROR_CLASSES, _join(path, "error_class"))
        severity = self.choice(node.get("severity"), SEVERITIES, _join(path, "severity")) or "error"

        category = self.string(node.get("category"), _join(path, "category"))
        category_node = node.get("category")
        if category is not None and category_node is not None and not _CATEGORY.fullmatch(category):
            self.problem(
                category_node.pos, f"category {category!r} must match [a-z][a-z0-9_]*", _join(path, "category")
            )

        retryable: bool | None = None
        retryable_node = node.get("retryable")
        if retryable_node is not None:
            if isinstance(retryable_node, Scalar) and isinstance(retryable_node.value, bool):
                retryable = retryable_node.value
            else:
                self.problem(
                    retryable_node.pos,
                    f"retryable must be true or false, got {kind(retryable_node)}",
                    _join(path, "retryable"),
                )

        error_code: str | None = None
        code_node = node.get("error_code")
        if code_node is not None:
            error_code = self.string(code_node, _join(path, "error_code"))
            if error_code is not None and not _ERROR_CODE.fullmatch(error_code):
                self.problem(
                    code_node.pos, f"error_code {error_code!r} must match [A-Za-z0-9_.-]+", _join(path, "error_code")
                )

        retry_after_s: float | None = None
        retry_node = node.get("retry_after")
        if retry_node is not None:
            retry_after_s = self.duration(retry_node, _join(path, "retry_after"))

        if len(self.problems) != before or error_class is None or category is None or retryable is None:
            return None
        return error_class, category, retryable, severity, error_code or category.upper(), retry_after_s

    def choice(self, node: Node | None, allowed: Sequence[str], path: str) -> str | None:
        if node is None:
            return None
        value = self.string(node, path)
        if value is None:
            return None
        if value not in allowed:
            field_name = path.rsplit(".", 1)[-1]
            self.problem(node.pos, f"{field_name} must be one of {', '.join(allowed)}; got {value!r}", path)
            return None
        return value

    def duration(self, node: Node, path: str) -> float | None:
        if isinstance(node, Scalar) and isinstance(node.value, int | float) and not isinstance(node.value, bool):
            if node.value < 0:
                self.problem(node.pos, "retry_after must not be negative", path)
                return None
            return float(node.value)  # a bare number is seconds
        if isinstance(node, Scalar) and isinstance(node.value, str):
            try:
                return parse_duration(node.value)
            except ValueError as exc:
                self.problem(node.pos, str(exc), path)
                return None
        self.problem(node.pos, f"retry_after must be a duration like 2s or 500ms, got {kind(node)}", path)
        return None

    def suggestion(
        self, node: Node | None, path: str, conditions: tuple[Condition | ExprCondition, ...] | None
    ) -> Suggestion:
        if node is None:
            return EMPTY
        if not (isinstance(node, Scalar) and isinstance(node.value, str)):
            self.problem(node.pos, f"suggestion must be a string (a Jinja2 template), got {kind(node)}", path)
            return EMPTY
        try:
            return compile_suggestion(node.value)
        except TemplateProblem as exc:
            self.problem(self.template_pos(node, exc.lineno), exc.message, path)
            return EMPTY

    def template_pos(self, node: Scalar, lineno: int) -> Pos:
        """Map a 1-based line inside a template back to the file."""
        if node.style in ("|", ">"):
            line = node.pos.line + lineno  # block content starts on the line after the indicator
            text = self.lines[line - 1] if 0 < line <= len(self.lines) else ""
            return Pos(line, len(text) - len(text.lstrip()) + 1)
        if lineno <= 1:
            return node.pos
        return Pos(node.pos.line + lineno - 1, 1)


def _plain_part(text: str) -> str:
    """A line of a plain scalar without its comment and trailing blanks."""
    cut = text.find(" #")
    return (text if cut < 0 else text[:cut]).rstrip(" \t")


def _align(value: str, segments: Sequence[tuple[int, int, str]]) -> list[Pos] | None:
    """Lay ``value`` over source line pieces ``(line, col, text)``; the blanks and newlines YAML
    folds lines into map to the end of the line before. None when the pieces do not spell it."""
    spots: list[Pos] = []
    v = 0
    end: Pos | None = None
    for line, col, text in segments:
        if v >= len(value):
            break
        if not text:
            continue
        while v < len(value) and value[v] in " \n" and not value.startswith(text, v):
            spots.append(end or Pos(line, col))  # folded line breaks (or leading blank lines)
            v += 1
        if not value.startswith(text, v):
            return None
        spots.extend(Pos(line, col + k) for k in range(len(text)))
        v += len(text)
        end = Pos(line, col + len(text))
    if end is None or value[v:].strip(" \n"):
        return None
    spots.extend(end for _ in range(len(value) - v))
    return spots


_ESCAPE_WIDTH = {"x": 4, "u": 6, "U": 10}


def _quoted_spots(line: str, start: int, quote: str, lineno: int, value: str) -> list[Pos] | None:
    """Positions of the characters of a one-line quoted scalar starting at ``line[start]``."""
    if line[start : start + 1] != quote:
        return None
    cols: list[int] = []
    j = start + 1
    while j < len(line):
        c = line[j]
        if c == quote:
            if quote == "'" and line[j + 1 : j + 2] == "'":  # '' is one quote
                cols.append(j)
                j += 2
                continue
            break
        cols.append(j)
        j += _ESCAPE_WIDTH.get(line[j + 1 : j + 2], 2) if quote == '"' and c == "\\" else 1
    else:
        return None  # the scalar goes on on the next line
    if len(cols) != len(value):
        return None
    return [Pos(lineno, j + 1) for j in cols]


def _join(path: str, name: str) -> str:
    return f"{path}.{name}" if path else name


def _did_you_mean(name: str, candidates: Iterable[str]) -> str:
    close = difflib.get_close_matches(name, list(candidates), n=1, cutoff=0.7)
    return f" (did you mean {close[0]!r}?)" if close else ""
