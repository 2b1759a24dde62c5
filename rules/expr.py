"""Structural expressions of classification rules (``match: {when: …}``): parsed once, run as closures.

An expression is a small boolean language over the fields of one event::

    http_status in 500..599 and not (grpc_code in ["Canceled", "OK"])
    top_frame glob "github.com/acme/*/db.*" or error_chain contains "sql: no rows in result set"
    exists(sql_digest) and duration_ms >= 250.5

Grammar (``rules/README.md`` "Structural expressions" is the user's reference)::

    expr       := or
    or         := and ("or" and)*
    and        := unary ("and" unary)*
    unary      := "not" unary | "(" expr ")" | "exists" "(" FIELD ")" | comparison
    comparison := FIELD op value
    op         := "==" | "!=" | "<" | "<=" | ">" | ">=" | "in" | "not" "in"
                | "matches" | "glob" | "contains" | "startswith" | "endswith"
    value      := scalar | "[" [scalar ("," scalar)* [","]] "]" | INT ".." INT
    scalar     := STRING | INT | FLOAT | "true" | "false"

Text is parsed once into a typed tree (:data:`Node`), checked (field names, operand kinds,
regexes, limits) and compiled into nested closures ``(get) -> bool``; user text is never
handed to ``eval``/``exec`` or Python's ``ast``. Evaluation never raises: a missing field,
or a value of another kind than the literal (string / number / boolean), makes a
comparison false, whatever its operator.

Why hand-written: the grammar is a dozen rules, and a tokenizer plus recursive descent
gives exact columns and tailored messages ("'=' is not an operator, did you mean '=='?")
without a dependency; ``lark`` would add an import of tens of milliseconds to every
classifier start and its error reports would still need translating.
"""

from __future__ import annotations

import difflib
import re
import string
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field

from errloop.rules import contract
from errloop.rules.safe_regex import Pattern, RegexError, compile_regex

__all__ = [
    "ERROR_TEXT_FIELDS",
    "EVENT_NAMES",
    "FIELD_ALIASES",
    "KEYWORDS",
    "MAX_DEPTH",
    "MAX_EXPR_CHARS",
    "MAX_LIST_ITEMS",
    "OPERATORS",
    "And",
    "Compare",
    "Exists",
    "ExprError",
    "Expression",
    "FieldRef",
    "Getter",
    "Literal",
    "Node",
    "Not",
    "Or",
    "Range",
    "Scalar",
    "compile_expression",
    "glob_to_regex",
    "parse",
    "unparse",
]

MAX_EXPR_CHARS = 4096
MAX_DEPTH = 32  # nested "(" and "not"
MAX_LIST_ITEMS = 1000
MAX_NUMBER_CHARS = 40

KEYWORDS = frozenset(
    {"and", "or", "not", "in", "matches", "glob", "contains", "startswith", "endswith", "exists", "true", "false"}
)
STRING_OPERATORS = ("matches", "glob", "contains", "startswith", "endswith")
OPERATORS = ("==", "!=", "<", "<=", ">", ">=", "in", "not in", *STRING_OPERATORS)

# the places Go error text ends up, tried in this order; "error_text" stands for any of them
ERROR_TEXT_FIELDS = ("message", "error_chain", "root_cause")
FIELD_ALIASES: Mapping[str, tuple[str, ...]] = {"error_text": ERROR_TEXT_FIELDS}
# every event name of the contract, each standing for itself, and the aliases
EVENT_NAMES: Mapping[str, tuple[str, ...]] = {
    **{name: (name,) for name in (*contract.EVENT_TAGS, *contract.EVENT_FIELDS)},
    **FIELD_ALIASES,
}

Getter = Callable[[str], object]  # an event's value of a name, None when absent


class ExprError(ValueError):
    """An expression was refused. ``offset`` is 0-based in the expression text, ``column`` 1-based."""

    def __init__(self, message: str, offset: int) -> None:
        super().__init__(f"column {offset + 1}: {message}")
        self.message = message
        self.offset = offset

    @property
    def column(self) -> int:
        return self.offset + 1


# --- the tree --------------------------------------------------------------------------

Scalar = str | int | float | bool


@dataclass(frozen=True, slots=True)
class Range:
    """An inclusive integer range ``lo..hi``."""

    lo: int
    hi: int


@dataclass(frozen=True, slots=True)
class Literal:
    """The right-hand side of a comparison: a scalar, a list of scalars or a range."""

    value: Scalar | tuple[Scalar, ...] | Range
    offset: int


@dataclass(frozen=True, slots=True)
class FieldRef:
    name: str  # as written, e.g. "http_status" or the alias "error_text"
    fields: tuple[str, ...]  # the event fields it stands for (any of them)
    offset: int


@dataclass(frozen=True, slots=True)
class Compare:
    op: str  # one of OPERATORS
    left: FieldRef
    right: Literal
    offset: int  # of the operator


@dataclass(frozen=True, slots=True)
class Exists:
    field: FieldRef


@dataclass(frozen=True, slots=True)
class Not:
    operand: Node


@dataclass(frozen=True, slots=True)
class And:
    operands: tuple[Node, ...]  # two or more


@dataclass(frozen=True, slots=True)
class Or:
    operands: tuple[Node, ...]  # two or more


Node = Compare | Exists | Not | And | Or


def unparse(node: Node) -> str:
    """The tree as text, every compound fully parenthesised (parses back to the same tree)."""
    if isinstance(node, Compare):
        return f"{node.left.name} {node.op} {_literal_text(node.right.value)}"
    if isinstance(node, Exists):
        return f"exists({node.field.name})"
    if isinstance(node, Not):
        return f"not ({unparse(node.operand)})"
    joiner = " and " if isinstance(node, And) else " or "
    return "(" + joiner.join(unparse(o) for o in node.operands) + ")"


def _literal_text(value: Scalar | tuple[Scalar, ...] | Range) -> str:
    if isinstance(value, Range):
        return f"{value.lo}..{value.hi}"
    if isinstance(value, tuple):
        return "[" + ", ".join(_literal_text(v) for v in value) + "]"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        escaped = value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
        return '"' + escaped.replace("\t", "\\t").replace("\r", "\\r") + '"'
    return repr(value)


# --- tokens ----------------------------------------------------------------------------

_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_NUMBER = re.compile(r"-?[0-9]+(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?")
_DIGITS = frozenset("0123456789")  # not str.isdigit: that takes other scripts' digits too
_ESCAPES = {'"': '"', "'": "'", "\\": "\\", "n": "\n", "t": "\t", "r": "\r"}
_TWO_CHAR = ("==", "!=", "<=", ">=", "..")
_ONE_CHAR = "<>()[],"
_MISTAKES = {
    "=": "'=' is not an operator; did you mean '=='?",
    "!": "'!' is not an operator; use 'not' or '!='",
    "&&": "'&&' is not an operator; use 'and'",
    "||": "'||' is not an operator; use 'or'",
    "&": "'&' is not an operator; use 'and'",
    "|": "'|' is not an operator; use 'or'",
    "=~": "'=~' is not an operator; use 'matches'",
    "~": "'~' is not an operator; use 'matches'",
    "<>": "'<>' is not an operator; use '!='",
}


@dataclass(frozen=True, slots=True)
class _Token:
    kind: str  # "ident", "keyword", "string", "int", "float", "op", "end"
    text: str  # as written (for a string: the decoded value)
    offset: int
    value: Scalar | None = None


def _tokens(text: str) -> list[_Token]:
    out: list[_Token] = []
    i, n = 0, len(text)
    while i < n:
        c = text[i]
        if c in " \t\r\n":
            i += 1
            continue
        if c in "\"'":
            value, i2 = _string(text, i)
            out.append(_Token("string", value, i, value))
            i = i2
            continue
        m = _IDENT.match(text, i)
        if m:
            word = m.group()
            out.append(_Token("keyword" if word in KEYWORDS else "ident", word, i))
            i = m.end()
            continue
        if c in _DIGITS or (c == "-" and i + 1 < n and text[i + 1] in _DIGITS):
            token, i = _number(text, i)
            out.append(token)
            continue
        pair = text[i : i + 2]
        if pair in _MISTAKES:
            raise ExprError(_MISTAKES[pair], i)
        if pair in _TWO_CHAR:
            out.append(_Token("op", pair, i))
            i += 2
            continue
        if c in _ONE_CHAR:
            out.append(_Token("op", c, i))
            i += 1
            continue
        if c in _MISTAKES:
            raise ExprError(_MISTAKES[c], i)
        raise ExprError(f"unexpected character {c!r}", i)
    out.append(_Token("end", "", len(text.rstrip(" \t\r\n"))))  # just after the last non-blank
    return out


def _string(text: str, start: int) -> tuple[str, int]:
    quote = text[start]
    parts: list[str] = []
    i, n = start + 1, len(text)
    while i < n:
        c = text[i]
        if c == quote:
            return "".join(parts), i + 1
        if c == "\\":
            nxt = text[i + 1] if i + 1 < n else ""
            if nxt not in _ESCAPES:
                shown = "\\" + nxt if nxt else "\\"
                raise ExprError(
                    f"unknown escape '{shown}' in a string (escapes: \\\" \\' \\\\ \\n \\t \\r; "
                    "write \\\\ for a backslash)",
                    i,
                )
            parts.append(_ESCAPES[nxt])
            i += 2
            continue
        parts.append(c)
        i += 1
    raise ExprError(f"unterminated string: no closing {quote}", start)


def _number(text: str, start: int) -> tuple[_Token, int]:
    m = _NUMBER.match(text, start)
    assert m is not None  # the caller saw a digit (after an optional "-")
    end = m.end()
    written = m.group()
    after = text[end : end + 2]
    if after[:1].isalnum() or after[:1] == "_" or (after[:1] == "." and after != ".."):
        bad = re.match(r"[-0-9A-Za-z_.]*", text[start:])
        shown = bad.group() if bad else written
        if ".." in shown:
            shown = shown[: shown.index("..")]
        if len(shown) > 30:
            shown = shown[:29] + "…"
        raise ExprError(f"malformed number {shown!r}", start)
    if len(written) > MAX_NUMBER_CHARS:
        raise ExprError(f"number longer than {MAX_NUMBER_CHARS} characters", start)
    if "." in written or "e" in written or "E" in written:
        value = float(written)
        if value in (float("inf"), float("-inf")):
            raise ExprError(f"number {written} is out of range", start)
        return _Token("float", written, start, value), end
    return _Token("int", written, start, int(written)), end


def _describe(token: _Token) -> str:
    if token.kind == "end":
        return "the end of the expression"
    if token.kind == "string":
        shown = token.text if len(token.text) <= 30 else token.text[:29] + "…"
        return f"the string {shown!r}"
    if token.kind in ("int", "float"):
        return f"the number {token.text}"
    return repr(token.text)


# --- the parser ------------------------------------------------------------------------

_OPS_HINT = "==, !=, <, <=, >, >=, in, not in, matches, glob, contains, startswith, endswith"


class _Parser:
    def __init__(self, text: str, names: Mapping[str, tuple[str, ...]]) -> None:
        self.tokens = _tokens(text)
        self.i = 0
        self.names = names
        self.depth = 0

    @property
    def tok(self) -> _Token:
        return self.tokens[self.i]

    def take(self) -> _Token:
        token = self.tokens[self.i]
        if token.kind != "end":
            self.i += 1
        return token

    def at(self, text: str) -> bool:
        token = self.tokens[self.i]
        return token.kind in ("keyword", "op") and token.text == text

    def expect(self, text: str, what: str) -> _Token:
        if not self.at(text):
            raise ExprError(f"expected {what}, got {_describe(self.tok)}", self.tok.offset)
        return self.take()

    def parse(self) -> Node:
        if self.tok.kind == "end":
            raise ExprError("empty expression", 0)
        node = self.or_()
        if self.tok.kind != "end":
            token = self.tok
            if token.text == ")":
                raise ExprError("unbalanced ')': no '(' to close", token.offset)
            hint = ""
            if token.kind == "ident" and token.text.lower() in ("and", "or"):
                hint = f" (keywords are lower case: {token.text.lower()!r})"
            raise ExprError(
                f"expected 'and', 'or' or the end of the expression, got {_describe(token)}{hint}", token.offset
            )
        return node

    def or_(self) -> Node:
        operands = [self.and_()]
        while self.at("or"):
            self.take()
            operands.append(self.and_())
        return operands[0] if len(operands) == 1 else Or(tuple(operands))

    def and_(self) -> Node:
        operands = [self.unary()]
        while self.at("and"):
            self.take()
            operands.append(self.unary())
        return operands[0] if len(operands) == 1 else And(tuple(operands))

    def deeper(self, token: _Token) -> None:
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise ExprError(f"expression nested deeper than {MAX_DEPTH} levels", token.offset)

    def unary(self) -> Node:
        token = self.tok
        if self.at("not"):
            self.take()
            self.deeper(token)
            operand = self.unary()
            self.depth -= 1
            return Not(operand)
        if self.at("("):
            self.take()
            self.deeper(token)
            if self.at(")"):
                raise ExprError("empty parentheses", self.tok.offset)
            node = self.or_()
            if not self.at(")"):
                got = self.tok
                if got.kind == "end":
                    raise ExprError("unclosed '(': expected ')'", token.offset)
                raise ExprError(f"expected 'and', 'or' or ')', got {_describe(got)}", got.offset)
            self.take()
            self.depth -= 1
            return node
        if self.at("exists"):
            self.take()
            self.expect("(", "'(' after exists, as in exists(sql_digest)")
            ref = self.field_ref()
            self.expect(")", "')' closing exists(")
            return Exists(ref)
        return self.comparison()

    def field_ref(self) -> FieldRef:
        token = self.tok
        if token.kind == "ident":
            self.take()
            fields = self.names.get(token.text)
            if fields is None:
                raise ExprError(_unknown(token.text, self.names), token.offset)
            return FieldRef(token.text, fields, token.offset)
        if token.kind == "keyword":
            raise ExprError(f"expected an event field name, got the keyword {token.text!r}", token.offset)
        if token.kind in ("string", "int", "float"):
            raise ExprError(
                f"expected an event field name, got {_describe(token)} (the field comes first: http_status == 503)",
                token.offset,
            )
        raise ExprError(f"expected an event field name, got {_describe(token)}", token.offset)

    def comparison(self) -> Node:
        ref = self.field_ref()
        token = self.tok
        if self.at("not"):
            self.take()
            if not self.at("in"):
                got = self.tok
                hint = ""
                if got.text in (*STRING_OPERATORS, "==", "<", "<=", ">", ">="):
                    hint = f" (to negate, put 'not' first: not ({ref.name} {got.text} …))"
                raise ExprError(f"expected 'in' after 'not', got {_describe(got)}{hint}", got.offset)
            self.take()
            op = "not in"
        elif (token.kind == "op" and token.text in ("==", "!=", "<", "<=", ">", ">=")) or (
            token.kind == "keyword" and token.text in ("in", *STRING_OPERATORS)
        ):
            self.take()
            op = token.text
        elif self.at("exists"):
            raise ExprError(f"write exists({ref.name}), not '{ref.name} exists'", token.offset)
        else:
            raise ExprError(
                f"expected an operator ({_OPS_HINT}) after {ref.name!r}, got {_describe(token)}", token.offset
            )
        right = self.value(op)
        _check_operand(op, right)
        return Compare(op, ref, right, token.offset)

    def value(self, op: str) -> Literal:
        token = self.tok
        if self.at("["):
            self.take()
            items: list[Scalar] = []
            while not self.at("]"):
                item = self.tok
                if len(items) >= MAX_LIST_ITEMS:
                    raise ExprError(f"list longer than {MAX_LIST_ITEMS} items", item.offset)
                if self.at("["):
                    raise ExprError("lists hold strings, numbers and booleans, not lists", item.offset)
                scalar = self.scalar("a list item after '[' or ','")
                if self.at(".."):
                    raise ExprError("a range cannot be a list item; write 500..599 without brackets", self.tok.offset)
                items.append(scalar)
                if self.at(","):
                    self.take()
                elif not self.at("]"):
                    got = self.tok
                    if got.kind == "end":
                        raise ExprError("unclosed '[': expected ']'", token.offset)
                    raise ExprError(f"expected ',' or ']' in a list, got {_describe(got)}", got.offset)
            self.take()
            if not items:
                raise ExprError("empty list: it would never match", token.offset)
            return Literal(tuple(items), token.offset)
        scalar = self.scalar(f"a value after {op!r}")
        if self.at(".."):
            self.take()
            hi_token = self.tok
            if token.kind != "int":
                raise ExprError("range bounds must be integers, as in 500..599", token.offset)
            if hi_token.kind != "int":
                what = "integers, as in 500..599" if hi_token.kind == "float" else "an integer after '..'"
                raise ExprError(f"range bounds must be {what}", hi_token.offset)
            self.take()
            lo, hi = int(scalar), hi_token.value
            assert isinstance(hi, int)
            if lo > hi:
                raise ExprError(f"empty range {lo}..{hi}: the lower bound is larger", token.offset)
            return Literal(Range(lo, hi), token.offset)
        return Literal(scalar, token.offset)

    def scalar(self, what: str) -> Scalar:
        token = self.tok
        if token.kind in ("string", "int", "float"):
            self.take()
            assert token.value is not None
            return token.value
        if token.kind == "keyword" and token.text in ("true", "false"):
            self.take()
            return token.text == "true"
        if token.kind == "ident":
            raise ExprError(
                f'expected {what}, got the name {token.text!r} (values are literals; quote a string: "{token.text}")',
                token.offset,
            )
        raise ExprError(f"expected {what}, got {_describe(token)}", token.offset)


def _unknown(name: str, names: Mapping[str, tuple[str, ...]]) -> str:
    if name.lower() in KEYWORDS:
        return f"unknown event field {name!r} (keywords are lower case: {name.lower()!r})"
    close = difflib.get_close_matches(name, list(names), n=1, cutoff=0.7)
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    return f"unknown event field {name!r}{hint} (see errloop.rules.contract)"


def _kind(value: Scalar) -> str:
    if isinstance(value, str):
        return "string"
    if isinstance(value, bool):
        return "boolean"
    return "number"


def _check_operand(op: str, right: Literal) -> None:
    value = right.value
    if op in ("in", "not in"):
        if not isinstance(value, tuple | Range):
            raise ExprError(f"{op!r} needs a list [a, b] or a range 500..599, got a {_kind(value)}", right.offset)
        return
    if isinstance(value, Range):
        raise ExprError(f"a range goes with 'in' or 'not in', not {op!r}", right.offset)
    if op in STRING_OPERATORS:
        items = value if isinstance(value, tuple) else (value,)
        for item in items:
            if not isinstance(item, str):
                raise ExprError(f"{op!r} needs a string (or a list of strings), got a {_kind(item)}", right.offset)
        return
    if isinstance(value, tuple):
        raise ExprError(f"{op!r} compares with one value; use 'in' for a list", right.offset)
    if op in ("<", "<=", ">", ">=") and isinstance(value, bool):
        raise ExprError(f"{op!r} needs a number or a string, got a boolean", right.offset)


def parse(text: str, names: Mapping[str, tuple[str, ...]] = EVENT_NAMES) -> Node:
    """Parse ``text`` into a checked tree; :class:`ExprError` (with the column) if it is malformed.

    ``names`` maps each field name the expression may use to the event fields it stands
    for (an alias such as ``error_text`` stands for several: any of them).
    """
    if len(text) > MAX_EXPR_CHARS:
        raise ExprError(f"expression longer than {MAX_EXPR_CHARS} characters", 0)
    return _Parser(text, names).parse()


# --- compiling -------------------------------------------------------------------------

Predicate = Callable[[object], bool]  # one value (possibly None or of any type) -> bool
Evaluator = Callable[[Getter], bool]
_NUMBER_TYPES = (int, float)


def _is_number(v: object) -> bool:
    return isinstance(v, _NUMBER_TYPES) and not isinstance(v, bool)


@dataclass(frozen=True, slots=True)
class Expression:
    """A compiled expression: call it with a getter (``event.get``) for True/False; never raises."""

    source: str
    tree: Node = field(repr=False)
    fields: tuple[str, ...]  # every event field it may read, sorted (aliases expanded)
    _run: Evaluator = field(repr=False, compare=False)

    def __call__(self, get: Getter) -> bool:
        return self._run(get)

    def evaluate(self, event: Mapping[str, object]) -> bool:
        """The value of the expression on ``event`` (a mapping of field name -> value)."""
        return self._run(event.get)


def compile_expression(text: str, names: Mapping[str, tuple[str, ...]] = EVENT_NAMES) -> Expression:
    """Parse, check and compile ``text``; :class:`ExprError` with the column if it is refused."""
    tree = parse(text, names)
    run = _compile(tree)
    return Expression(source=text, tree=tree, fields=tuple(sorted(set(_fields(tree)))), _run=run)


def _fields(node: Node) -> Iterable[str]:
    if isinstance(node, Compare):
        yield from node.left.fields
    elif isinstance(node, Exists):
        yield from node.field.fields
    elif isinstance(node, Not):
        yield from _fields(node.operand)
    else:
        for operand in node.operands:
            yield from _fields(operand)


def _compile(node: Node) -> Evaluator:
    if isinstance(node, Compare):
        return _on_field(node.left.fields, _predicate(node.op, node.right))
    if isinstance(node, Exists):
        return _on_field(node.field.fields, _present)
    if isinstance(node, Not):
        inner = _compile(node.operand)
        return lambda get: not inner(get)
    parts = tuple(_compile(o) for o in node.operands)
    if isinstance(node, And):
        if len(parts) == 2:
            a, b = parts
            return lambda get: a(get) and b(get)
        return lambda get: all(p(get) for p in parts)
    if len(parts) == 2:
        a, b = parts
        return lambda get: a(get) or b(get)
    return lambda get: any(p(get) for p in parts)


def _on_field(names: tuple[str, ...], test: Predicate) -> Evaluator:
    if len(names) == 1:
        (name,) = names
        return lambda get: test(get(name))
    return lambda get: any(test(get(name)) for name in names)


def _present(v: object) -> bool:
    return isinstance(v, str | int | float)  # bool is an int


def _predicate(op: str, right: Literal) -> Predicate:
    value = right.value
    if isinstance(value, Range):
        return _range_test(op, value.lo, value.hi)
    if op in ("in", "not in"):
        assert isinstance(value, tuple)
        return _list_test(op == "in", value)
    if op in STRING_OPERATORS:
        items = tuple(str(v) for v in (value if isinstance(value, tuple) else (value,)))
        return _string_test(op, items, right.offset)
    assert not isinstance(value, tuple)
    return _scalar_test(op, value)


def _range_test(op: str, lo: int, hi: int) -> Predicate:
    if op == "in":
        return lambda v: _is_number(v) and lo <= v <= hi  # type: ignore[operator]
    return lambda v: _is_number(v) and (v < lo or v > hi)  # type: ignore[operator]


def _list_test(inside: bool, items: tuple[Scalar, ...]) -> Predicate:
    strings = frozenset(v for v in items if isinstance(v, str))
    bools = frozenset(v for v in items if isinstance(v, bool))
    numbers = frozenset(v for v in items if _is_number(v))

    def members(v: object) -> frozenset[Scalar] | None:
        """The items of ``v``'s kind, or None when ``v`` is missing or of another kind."""
        if isinstance(v, str):
            return strings or None
        if isinstance(v, bool):
            return bools or None
        if isinstance(v, _NUMBER_TYPES):
            return numbers or None
        return None

    if inside:

        def test_in(v: object) -> bool:
            same = members(v)
            return same is not None and v in same

        return test_in

    def test_not_in(v: object) -> bool:
        same = members(v)
        return same is not None and v not in same

    return test_not_in


_ORDER: dict[str, Callable[[object, object], bool]] = {
    "==": lambda a, b: a == b,
    "!=": lambda a, b: a != b,
    "<": lambda a, b: a < b,  # type: ignore[operator]
    "<=": lambda a, b: a <= b,  # type: ignore[operator]
    ">": lambda a, b: a > b,  # type: ignore[operator]
    ">=": lambda a, b: a >= b,  # type: ignore[operator]
}


def _scalar_test(op: str, value: Scalar) -> Predicate:
    compare = _ORDER[op]
    if isinstance(value, str):
        return lambda v: isinstance(v, str) and compare(v, value)
    if isinstance(value, bool):
        return lambda v: isinstance(v, bool) and compare(v, value)
    return lambda v: _is_number(v) and compare(v, value)


def _string_test(op: str, items: tuple[str, ...], offset: int) -> Predicate:
    if op == "contains":
        if len(items) == 1:
            (needle,) = items
            return lambda v: isinstance(v, str) and needle in v
        return lambda v: isinstance(v, str) and any(n in v for n in items)
    if op == "startswith":
        return lambda v: isinstance(v, str) and v.startswith(items)
    if op == "endswith":
        return lambda v: isinstance(v, str) and v.endswith(items)
    tests: list[Callable[[str], bool]] = []
    for item in items:
        try:
            if op == "glob" and "?" not in item and "[" not in item:
                tests.append(_star_glob(item))  # the usual glob: literals and stars, matched with str methods
            elif op == "glob":
                tests.append(_searcher(compile_regex(glob_to_regex(item))))
            else:
                tests.append(_searcher(compile_regex(item)))
        except (RegexError, ValueError) as exc:
            what = "glob" if op == "glob" else "regex"
            raise ExprError(f"bad {what} {item!r}: {exc}", offset) from None
    if len(tests) == 1:
        (one,) = tests
        return lambda v: isinstance(v, str) and one(v)
    found = tuple(tests)
    return lambda v: isinstance(v, str) and any(t(v) for t in found)


def _searcher(pattern: Pattern) -> Callable[[str], bool]:
    return lambda text: pattern.search(text) is not None


def _star_glob(glob: str) -> Callable[[str], bool]:
    """A glob of literals and ``*`` only: the head and tail are fixed, each middle piece is found
    leftmost with ``str.find`` (taking the earliest place never loses a match). Linear in the text."""
    pieces = glob.split("*")
    if len(pieces) == 1:
        return lambda text: text == glob
    head, *middle, tail = pieces
    inner = tuple(p for p in middle if p)
    fixed = len(head) + len(tail)

    def test(text: str) -> bool:
        if len(text) < fixed or not text.startswith(head) or not text.endswith(tail):
            return False
        pos, end = len(head), len(text) - len(tail)
        for piece in inner:
            found = text.find(piece, pos, end)
            if found < 0:
                return False
            pos = found + len(piece)
        return True

    return test


_PUNCTUATION = frozenset(string.punctuation)


def _glob_char(c: str) -> str:
    return "\\" + c if c in _PUNCTUATION else c


def glob_to_regex(pattern: str) -> str:
    """A shell glob as an anchored RE2 regex: ``*`` any run of characters (``/`` and newlines
    too), ``?`` one character, ``[abc]``, ``[a-z]``, ``[!abc]`` one of / none of; everything
    else literal (a backslash too), case-sensitive. ValueError for a reversed range ``[z-a]``."""
    out: list[str] = []
    i, n = 0, len(pattern)
    while i < n:
        c = pattern[i]
        i += 1
        if c == "*":
            while i < n and pattern[i] == "*":
                i += 1
            out.append(".*")
        elif c == "?":
            out.append(".")
        elif c == "[":
            j = i
            if j < n and pattern[j] == "!":
                j += 1
            if j < n and pattern[j] == "]":
                j += 1
            while j < n and pattern[j] != "]":
                j += 1
            if j >= n:  # no closing bracket: a literal "[" (as fnmatch does)
                out.append("\\[")
                continue
            body = pattern[i:j]
            i = j + 1
            negate = body.startswith("!")
            if negate:
                body = body[1:]
            parts: list[str] = []
            k = 0
            while k < len(body):
                if k + 2 < len(body) and body[k + 1] == "-":
                    lo, hi = body[k], body[k + 2]
                    if lo > hi:
                        raise ValueError(f"reversed range {lo}-{hi} in [{body}]")
                    parts.append(f"{_glob_char(lo)}-{_glob_char(hi)}")
                    k += 3
                else:
                    parts.append(_glob_char(body[k]))
                    k += 1
            out.append("[" + ("^" if negate else "") + "".join(parts) + "]")
        else:
            out.append(_glob_char(c))
    return "(?s)^" + "".join(out) + "$"
