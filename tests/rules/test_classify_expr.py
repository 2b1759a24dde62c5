"""Structural expressions in classification rules: parser, evaluation, error positions, fuzzing, the memo."""

from __future__ import annotations

import fnmatch
import math
import random
import re
import textwrap
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from errloop.rules import contract
from errloop.rules.classify import (
    ERROR_TEXT_FIELDS,
    FALLBACK_RULE_ID,
    ExprCondition,
    RuleError,
    load_rules,
)
from errloop.rules.expr import (
    MAX_DEPTH,
    MAX_EXPR_CHARS,
    MAX_LIST_ITEMS,
    And,
    Compare,
    Exists,
    ExprError,
    Not,
    Or,
    Range,
    compile_expression,
    glob_to_regex,
    parse,
    unparse,
)
from errloop.rules.safe_regex import compile_regex
from errloop.udf.classify.cache import ClassificationCache, same

DATA = Path(__file__).parent / "data" / "expr_rules.yaml"
README = Path(__file__).parents[2] / "rules" / "README.md"


def holds(text: str, event: Mapping[str, object]) -> bool:
    return compile_expression(text).evaluate(event)


def refused(text: str) -> ExprError:
    with pytest.raises(ExprError) as info:
        compile_expression(text)
    return info.value


def rules_with_when(expression_yaml: str, extra_match: str = "") -> str:
    """One rule whose match holds ``when:`` followed by ``expression_yaml`` (as written after the key)."""
    return (
        "version: 1\n"
        "rules:\n"
        "  - id: r.one\n"
        "    match:\n"
        f"{extra_match}"
        f"      when: {expression_yaml}\n"
        "    set: {error_class: system, category: other, retryable: false}\n"
    )


def load_error(text: str) -> RuleError:
    with pytest.raises(RuleError) as info:
        load_rules(text, source="rules.yaml")
    return info.value


# --- parsing: precedence, literals, the tree -----------------------------------------------


@pytest.mark.parametrize(
    ("text", "tree"),
    [
        ('level == "a" or level == "b" and level == "c"', '(level == "a" or (level == "b" and level == "c"))'),
        ('level == "a" and level == "b" or level == "c"', '((level == "a" and level == "b") or level == "c")'),
        ('not level == "a" and level == "b"', '(not (level == "a") and level == "b")'),
        ('not level == "a" or level == "b"', '(not (level == "a") or level == "b")'),
        ('not (level == "a" or level == "b")', 'not ((level == "a" or level == "b"))'),
        ('(level == "a" or level == "b") and level == "c"', '((level == "a" or level == "b") and level == "c")'),
        ("not not exists(level)", "not (not (exists(level)))"),
        ("exists(a_b) or exists(level)", None),  # a_b is not a field: refused below
        (
            "exists(level) and exists(host) and exists(env) or exists(service)",
            "((exists(level) and exists(host) and exists(env)) or exists(service))",
        ),
        ("level not in ['x', 'y']", 'level not in ["x", "y"]'),
        ("not level in ['x']", 'not (level in ["x"])'),
        ("((((http_status > 1))))", "http_status > 1"),
    ],
)
def test_precedence_is_not_then_and_then_or(text: str, tree: str | None) -> None:
    if tree is None:
        assert "unknown event field 'a_b'" in refused(text).message
        return
    assert unparse(parse(text)) == tree
    assert unparse(parse(unparse(parse(text)))) == tree  # the fully parenthesised form parses back the same


def test_the_tree_is_typed_and_flat_for_chains() -> None:
    node = parse('http_status in 500..599 and grpc_code in ["A", "B",] and not exists(sql_digest)')
    assert isinstance(node, And) and len(node.operands) == 3
    first, second, third = node.operands
    assert isinstance(first, Compare) and first.op == "in" and first.right.value == Range(500, 599)
    assert first.left.name == "http_status" and first.left.fields == ("http_status",)
    assert isinstance(second, Compare) and second.right.value == ("A", "B")
    assert isinstance(third, Not) and isinstance(third.operand, Exists)
    alias = parse('error_text contains "x" or level == "y"')
    assert isinstance(alias, Or) and isinstance(alias.operands[0], Compare)
    assert alias.operands[0].left.fields == ERROR_TEXT_FIELDS  # with the rule engine's names


@pytest.mark.parametrize(
    ("literal", "value"),
    [
        ('"plain"', "plain"),
        ("'single'", "single"),
        (r'"a \"quoted\" word"', 'a "quoted" word'),
        (r"'it\'s'", "it's"),
        (r'"back\\slash"', "back\\slash"),
        (r'"two\nlines"', "two\nlines"),
        (r'"tab\there\r"', "tab\there\r"),
        ('"single \' inside double"', "single ' inside double"),
        ("'double \" inside single'", 'double " inside single'),
        ('""', ""),
        ('"café ☕"', "café ☕"),
        ("503", 503),
        ("-7", -7),
        ("0", 0),
        ("2.5", 2.5),
        ("-0.25", -0.25),
        ("1e3", 1000.0),
        ("2.5E-1", 0.25),
        ("true", True),
        ("false", False),
    ],
)
def test_literals_and_escapes(literal: str, value: object) -> None:
    node = parse(f"level == {literal}")
    assert isinstance(node, Compare)
    assert node.right.value == value and type(node.right.value) is type(value)


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("http_status in [1, 2.5, 'x', true]", (1, 2.5, "x", True)),
        ("http_status in [1,]", (1,)),
        ("http_status in [ 1 , 2 ]", (1, 2)),
        ("http_status in 500..599", Range(500, 599)),
        ("http_status in 500 .. 599", Range(500, 599)),
        ("http_status in -5..-1", Range(-5, -1)),
        ("http_status in 7..7", Range(7, 7)),
        ("http_status not in 0..99", Range(0, 99)),
    ],
)
def test_lists_and_ranges(text: str, value: object) -> None:
    node = parse(text)
    assert isinstance(node, Compare) and node.right.value == value


def test_fields_are_every_field_read_with_aliases_expanded() -> None:
    e = compile_expression('http_status > 1 or (error_text contains "x" and not exists(trace_id))')
    assert e.fields == tuple(sorted({"http_status", "trace_id", *ERROR_TEXT_FIELDS}))
    rules = load_rules(rules_with_when("'error_text contains \"x\" and http_status > 1'"))
    (condition,) = rules.rules[0].conditions
    assert isinstance(condition, ExprCondition) and condition.key == "when"
    assert set(condition.fields) == {"http_status", *ERROR_TEXT_FIELDS}
    assert condition.patterns == ()


# --- evaluation ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "event", "expected"),
    [
        # == and != on each kind
        ('level == "error"', {"level": "error"}, True),
        ('level == "error"', {"level": "warn"}, False),
        ('level != "error"', {"level": "warn"}, True),
        ('level != "error"', {"level": "error"}, False),
        ("http_status == 503", {"http_status": 503}, True),
        ("http_status == 503", {"http_status": 503.0}, True),  # numbers compare numerically
        ("http_status == 503.0", {"http_status": 503}, True),
        ("http_status != 503", {"http_status": 500}, True),
        ("truncated == true", {"truncated": True}, True),
        ("truncated == false", {"truncated": True}, False),
        ("truncated != false", {"truncated": True}, True),
        # ordering: numbers numerically, strings as strings
        ("http_status >= 500", {"http_status": 500}, True),
        ("http_status >= 500", {"http_status": 499}, False),
        ("http_status > 500", {"http_status": 500.5}, True),
        ("http_status < 500", {"http_status": 404}, True),
        ("http_status <= 404", {"http_status": 404}, True),
        ("duration_ms > 2.5", {"duration_ms": 3}, True),
        ("duration_ms > 1e3", {"duration_ms": 999.9}, False),
        ("http_status > 100", {"http_status": 99}, False),  # not "99" > "100" as text
        ('env < "prod"', {"env": "dev"}, True),
        ('env >= "prod"', {"env": "staging"}, True),
        # in / not in: lists and ranges
        ('grpc_code in ["Unavailable", "DeadlineExceeded"]', {"grpc_code": "Unavailable"}, True),
        ('grpc_code in ["Unavailable", "DeadlineExceeded"]', {"grpc_code": "Internal"}, False),
        ('grpc_code not in ["OK", "Canceled"]', {"grpc_code": "Internal"}, True),
        ('grpc_code not in ["OK", "Canceled"]', {"grpc_code": "OK"}, False),
        ("http_status in [502, 503, 504]", {"http_status": 503}, True),
        ("http_status in [502, 503, 504]", {"http_status": 504.0}, True),
        ("http_status in [502, 503, 504]", {"http_status": 500}, False),
        ("http_status in 500..599", {"http_status": 500}, True),
        ("http_status in 500..599", {"http_status": 599}, True),
        ("http_status in 500..599", {"http_status": 600}, False),
        ("http_status in 500..599", {"http_status": 499}, False),
        ("http_status in 500..599", {"http_status": 599.5}, False),
        ("http_status not in 500..599", {"http_status": 404}, True),
        ("http_status not in 500..599", {"http_status": 503}, False),
        ("truncated in [true]", {"truncated": True}, True),
        ("truncated in [1]", {"truncated": True}, False),  # a boolean is not a number
        ("http_status in [true]", {"http_status": 1}, False),
        # string operators
        ('message matches "conn(ection)? refused"', {"message": "dial: connection refused"}, True),
        ('message matches "^refused"', {"message": "dial: connection refused"}, False),
        ('message matches ["^x", "refused$"]', {"message": "dial: connection refused"}, True),
        ('top_frame glob "github.com/acme/*/db.*"', {"top_frame": "github.com/acme/users/db.(*Repo).Find"}, True),
        ('top_frame glob "github.com/acme/*/db.*"', {"top_frame": "github.com/acme/users/http.Serve"}, False),
        ('top_frame glob "github.com/acme/*/db.*"', {"top_frame": "x/github.com/acme/u/db.F"}, False),  # anchored
        ('top_frame glob "main.?andler"', {"top_frame": "main.handler"}, True),
        ('top_frame glob "main.[hH]andler"', {"top_frame": "main.Handler"}, True),
        ('top_frame glob "main.[!hH]andler"', {"top_frame": "main.Handler"}, False),
        ('top_frame glob "*.(*DB).Query"', {"top_frame": "sql.(*DB).Query"}, True),  # ( ) . * literal or star
        (
            'error_chain contains "sql: no rows in result set"',
            {"error_chain": "find: sql: no rows in result set"},
            True,
        ),
        (
            'error_chain contains "sql: no rows in result set"',
            {"error_chain": "find user\nsql: no rows in result set"},
            True,
        ),
        ('error_chain contains "sql: no rows in result set"', {"error_chain": "sql: no rows"}, False),
        ('error_chain contains ["a", "EOF"]', {"error_chain": "read: unexpected EOF"}, True),
        ('http_path startswith "/api/"', {"http_path": "/api/users"}, True),
        ('http_path startswith ["/healthz", "/metrics"]', {"http_path": "/api/users"}, False),
        ('http_path endswith "/users"', {"http_path": "/api/users"}, True),
        # exists
        ("exists(sql_digest)", {"sql_digest": "SELECT ?"}, True),
        ("exists(sql_digest)", {"sql_digest": ""}, True),
        ("exists(sql_digest)", {}, False),
        ("not exists(sql_digest)", {}, True),
        # aliases: any of the fields
        ('error_text contains "refused"', {"root_cause": "connection refused"}, True),
        ('error_text contains "refused"', {"stack": "connection refused"}, False),
    ],
)
def test_every_operator(text: str, event: dict[str, object], expected: bool) -> None:
    assert holds(text, event) is expected


@pytest.mark.parametrize(
    "text",
    [
        "http_status == 500",
        "http_status != 500",
        "http_status < 500",
        "http_status >= 500",
        "http_status in [500, 503]",
        "http_status not in [500, 503]",
        "http_status in 500..599",
        "http_status not in 500..599",
        'message matches "x"',
        'message glob "*"',
        'message contains ""',
        'message startswith ""',
        'message endswith ""',
        'error_text contains ""',
    ],
)
def test_a_missing_field_makes_every_comparison_false_and_its_negation_true(text: str) -> None:
    assert holds(text, {}) is False
    assert holds(text, {"http_status": None, "message": None}) is False  # None is missing too
    assert holds(f"not ({text})", {}) is True


@pytest.mark.parametrize(
    ("text", "event"),
    [
        ("http_status >= 500", {"http_status": "503"}),  # a string field compared with a number
        ("http_status == 503", {"http_status": "503"}),
        ("http_status != 503", {"http_status": "503"}),
        ("http_status in 500..599", {"http_status": "503"}),
        ("http_status not in 500..599", {"http_status": "200"}),
        ("http_status in [503]", {"http_status": "503"}),
        ("http_status not in [200]", {"http_status": "503"}),
        ('level == "1"', {"level": 1}),
        ('level > "a"', {"level": 5}),
        ('level not in ["x"]', {"level": 5}),
        ("truncated == 1", {"truncated": True}),
        ("truncated > 0", {"truncated": True}),
        ("truncated == true", {"truncated": 1}),
        ("truncated == true", {"truncated": "true"}),
        ('message contains "1"', {"message": 123}),
        ('message matches "1"', {"message": 1.5}),
        ('message glob "*"', {"message": True}),
        ('message startswith "b"', {"message": b"bytes"}),
        ("http_status == 1", {"http_status": [1]}),
        ("http_status == 1", {"http_status": {"a": 1}}),
    ],
)
def test_a_value_of_another_kind_makes_the_comparison_false_without_raising(
    text: str, event: dict[str, object]
) -> None:
    assert holds(text, event) is False


def test_exists_counts_only_values_the_rules_can_see() -> None:
    values: tuple[object, ...] = ("", "x", 0, 0.0, False, True, -1)
    for value in values:
        assert holds("exists(http_status)", {"http_status": value}) is True
    others: tuple[object, ...] = (None, b"x", [1], {}, object())
    for value in others:
        assert holds("exists(http_status)", {"http_status": value}) is False


def test_numeric_comparison_of_http_status_on_a_range_of_values() -> None:
    e = compile_expression("http_status >= 500 and http_status < 600")
    r = compile_expression("http_status in 500..599")
    for status in range(0, 700, 7):
        for value in (status, float(status)):
            assert e.evaluate({"http_status": value}) is (500 <= status < 600)
            assert r.evaluate({"http_status": value}) is (500 <= status < 600)


def test_odd_numbers_never_raise() -> None:
    for value in (math.nan, math.inf, -math.inf, 10**400, -(10**400), 1e308):
        for text in ("http_status == 5", "http_status < 5", "http_status in 1..9", "http_status not in [1, 2.5]"):
            assert holds(text, {"http_status": value}) in (True, False)
    assert holds("http_status > 5", {"http_status": math.inf}) is True
    assert holds("http_status in 1..9", {"http_status": math.nan}) is False
    assert holds("http_status not in 1..9", {"http_status": math.nan}) is False


def test_text_with_lone_surrogates_still_matches() -> None:
    ev = {"message": "bad \ud800 text: connection refused"}
    assert holds('message matches "connection refused$"', ev) is True
    assert holds('message glob "bad * refused"', ev) is True
    assert holds('message contains "\ud800 text"', ev) is True


def test_the_getter_form_is_what_the_engine_calls() -> None:
    e = compile_expression('grpc_code == "Unavailable"')
    seen: list[str] = []

    def get(name: str) -> object:
        seen.append(name)
        return "Unavailable"

    assert e(get) is True and seen == ["grpc_code"]


# --- error positions -------------------------------------------------------------------------------

# (expression, column of the problem (1-based, inside the expression), a fragment of the message)
BROKEN: list[tuple[str, int, str]] = [
    ("", 1, "empty expression"),
    ("   ", 1, "empty expression"),
    ("http_status = 500", 13, "did you mean '=='"),
    ("http_status == ", 15, "expected a value after '=='"),
    ("http_status >= 500 and", 23, "expected an event field name, got the end"),
    ("http_status >= 500 or or", 23, "got the keyword 'or'"),
    ("mesage == 'x'", 1, "did you mean 'message'"),
    ("http_status >= 500 and grpc_cod == 'x'", 24, "did you mean 'grpc_code'"),
    ("500 <= http_status", 1, "the field comes first"),
    ("(http_status > 1", 1, "unclosed '('"),
    ("http_status > 1)", 16, "unbalanced ')'"),
    ("()", 2, "empty parentheses"),
    ('message == "abc', 12, "unterminated string"),
    ("message == 'abc", 12, "unterminated string"),
    (r'message == "a\d"', 14, "unknown escape"),
    ('message == "a\\', 14, "unknown escape"),
    ("http_status == 5xx", 16, "malformed number '5xx'"),
    ("http_status == 1.2.3", 16, "malformed number"),
    ("http_status == 5.", 16, "malformed number"),
    ("http_status in 599..500", 16, "empty range"),
    ("http_status in 1.5..3", 16, "range bounds must be integers"),
    ("http_status in 1..3.5", 19, "range bounds must be integers"),
    ("http_status in 1..", 19, "an integer after '..'"),
    ("http_status in 500", 16, "'in' needs a list"),
    ("http_status == [1, 2]", 16, "use 'in' for a list"),
    ("http_status == 1..5", 16, "a range goes with 'in'"),
    ("http_status in []", 16, "empty list"),
    ("http_status in [1, [2]]", 20, "not lists"),
    ("http_status in [1 2]", 19, "expected ',' or ']'"),
    ("http_status in [1, 2", 16, "unclosed '['"),
    ("http_status in [1..2]", 18, "a range cannot be a list item"),
    ("http_status in [status]", 17, "quote a string"),
    ("message matches 5", 17, "'matches' needs a string"),
    ("message contains [1]", 18, "'contains' needs a string"),
    ('message matches "(unclosed"', 17, "bad regex"),
    ('message matches "(?=look)"', 17, "bad regex"),
    ('top_frame glob "[z-a]"', 16, "bad glob"),
    ("truncated < true", 13, "needs a number or a string"),
    ("message", 8, "expected an operator"),
    ("message exists", 9, "write exists(message)"),
    ("exists message", 8, "expected '(' after exists"),
    ("exists(message", 15, "')' closing exists("),
    ("exists(nope)", 8, "unknown event field 'nope'"),
    ("level == 'a' && level == 'b'", 14, "use 'and'"),
    ("level == 'a' || level == 'b'", 14, "use 'or'"),
    ("message =~ 'x'", 9, "use 'matches'"),
    ("!exists(level)", 1, "use 'not'"),
    ("level <> 'a'", 7, "use '!='"),
    ("level == 'a' AND level == 'b'", 14, "keywords are lower case: 'and'"),
    ("level == 'a' level == 'b'", 14, "expected 'and', 'or' or the end"),
    ("level == 'a' @", 14, "unexpected character '@'"),
    ("level not 'a'", 11, "expected 'in' after 'not'"),
    ("message not matches 'x'", 13, "put 'not' first: not (message matches"),
    ("level == and", 10, "expected a value after '=='"),
    ("level in ['a' 'b']", 15, "expected ',' or ']'"),
    ("http_status == 1" + "0" * 45, 16, "number longer than"),
    ("http_status == 1e999", 16, "out of range"),
    ("not", 4, "expected an event field name, got the end"),
    ("level == 'x' or (", 18, "expected an event field name, got the end"),
    ("level ==\n  'x' and\n  nope == 1", 22, "unknown event field 'nope'"),
]


def test_at_least_thirty_broken_expressions_are_listed() -> None:
    assert len(BROKEN) >= 30
    assert len({text for text, _, _ in BROKEN}) == len(BROKEN)


@pytest.mark.parametrize(("text", "column", "fragment"), BROKEN)
def test_each_broken_expression_is_refused_at_its_column(text: str, column: int, fragment: str) -> None:
    err = refused(text)
    assert fragment in err.message, err.message
    assert err.column == column, (err.column, err.message)
    assert str(err) == f"column {column}: {err.message}"


@pytest.mark.parametrize(("text", "column", "fragment"), [b for b in BROKEN if b[0].strip() and "\n" not in b[0]])
def test_each_broken_expression_is_reported_at_its_file_position(text: str, column: int, fragment: str) -> None:
    # in a literal block: content on line 6, indented 8 columns
    block = rules_with_when("|\n" + textwrap.indent(text, " " * 8))
    err = load_error(block)
    assert len(err.problems) == 1
    p = err.problems[0]
    assert (p.source, p.line, p.col, p.path) == ("rules.yaml", 6, 8 + column, "rules[0].match.when")
    assert fragment in p.message
    # in single quotes (YAML doubles a single quote): the expression starts at column 13 of line 5
    quoted = "'" + text.replace("'", "''") + "'"
    p = load_error(rules_with_when(quoted)).problems[0]
    before = text[: column - 1]
    assert (p.line, p.col) == (5, 13 + column + before.count("'")), p


def test_positions_in_every_yaml_scalar_style() -> None:
    # plain, one line: "      when: " is 12 characters
    p = load_error(rules_with_when("http_status >= 500 and grpc_cod == 1")).problems[0]
    assert (p.line, p.col) == (5, 13 + 23) and "grpc_cod" in p.message
    # plain, over several lines (YAML folds them with a space)
    p = load_error(rules_with_when("http_status >= 500 and\n        grpc_cod == 1")).problems[0]
    assert (p.line, p.col) == (6, 9)
    # double quotes with escapes before the problem
    p = load_error(rules_with_when(r'"level == \"a\" and \t nope == 1"')).problems[0]
    assert (p.line, p.col) == (5, 13 + len(r'"level == \"a\" and \t ')), p
    # a folded block
    p = load_error(rules_with_when(">-\n        http_status >= 500 and\n          nope == 1")).problems[0]
    assert (p.line, p.col) == (7, 11)
    # a literal block, more indented continuation lines, a problem at the very end
    p = load_error(rules_with_when("|\n        http_status >= 500\n          and level ==\n")).problems[0]
    assert (p.line, p.col) == (7, 23) and "expected a value after '=='" in p.message
    # a flow mapping: the scalar is followed by "}" on its line
    text = "version: 1\nrules:\n  - id: r.one\n    match: {when: level == 1 and nope == 2}\n    set: {error_class: system, category: other, retryable: false}\n"
    p = load_error(text).problems[0]
    assert (p.line, p.col) == (4, 34)  # "    match: {when: " is 18 characters
    # a multi-line double-quoted scalar: the scalar's start, and the column inside the expression
    p = load_error(rules_with_when('"level == 1 and\n        nope == 2"')).problems[0]
    assert (p.line, p.col) == (5, 13) and "(column 16 of the expression)" in p.message


def test_every_problem_of_the_file_is_reported_with_the_others() -> None:
    text = textwrap.dedent(
        """\
        version: 1
        rules:
          - id: a
            match:
              when: mesage == 'x'
            set: {error_class: system, category: other, retryable: false}
          - id: b
            match:
              wen: level == 'x'
              level|when: x
            set: {error_class: system, category: other, retryable: false}
          - id: c
            match:
              when: [level == 'x']
            set: {error_class: system, category: other, retryable: nope}
          - id: d
            match:
              when: true
            set: {error_class: system, category: other, retryable: false}
        """
    )
    err = load_error(text)
    lines = str(err).splitlines()
    assert lines[0] == (
        "rules.yaml:5:13: unknown event field 'mesage' (did you mean 'message'?) "
        "(see errloop.rules.contract) (rules[0].match.when)"
    )
    assert "rules.yaml:9:7: unknown event field 'wen' (did you mean 'when'?)" in lines[1]
    assert "rules.yaml:10:7: 'when' is a key of its own" in lines[2]
    assert "rules.yaml:14:13: when must be an expression (a string), got a list" in lines[3]
    assert "rules.yaml:15:" in lines[4] and "retryable" in lines[4]
    assert "rules.yaml:18:13: when must be an expression (a string), got a boolean" in lines[5]
    assert len(lines) == 6


# --- limits ----------------------------------------------------------------------------------------


def test_limits_are_load_errors_at_the_offending_place() -> None:
    longest = "level == '" + "x" * (MAX_EXPR_CHARS - 11) + "'"
    assert len(longest) == MAX_EXPR_CHARS
    compile_expression(longest)
    err = refused(longest + " ")
    assert "longer than 4096" in err.message and err.column == 1

    deep = "(" * MAX_DEPTH + "exists(level)" + ")" * MAX_DEPTH
    assert compile_expression(deep).evaluate({"level": "x"}) is True
    err = refused("(" * (MAX_DEPTH + 1) + "exists(level)" + ")" * (MAX_DEPTH + 1))
    assert "nested deeper than 32" in err.message and err.column == MAX_DEPTH + 1
    nots = "not " * MAX_DEPTH + "exists(level)"
    assert compile_expression(nots).evaluate({"level": "x"}) is True  # 32 is even
    err = refused("not " * (MAX_DEPTH + 1) + "exists(level)")
    assert "nested deeper" in err.message and err.column == 4 * MAX_DEPTH + 1
    mixed = "not (" * 20 + "exists(level)" + ")" * 20
    assert "nested deeper" in refused(mixed).message

    items = ",".join(str(i % 10) for i in range(MAX_LIST_ITEMS))
    big = compile_expression(f"http_status in [{items}]")
    assert big.evaluate({"http_status": 9}) is True and big.evaluate({"http_status": 10}) is False
    err = refused(f"http_status in [{items},7]")
    assert "longer than 1000 items" in err.message
    assert err.column == len(f"http_status in [{items},") + 1

    long_chain = " or ".join(f"http_status == {i}" for i in range(150))  # flat, not deep
    assert compile_expression(long_chain).evaluate({"http_status": 149}) is True


# --- the rule engine -------------------------------------------------------------------------------


def test_the_example_rule_file_classifies_by_structure() -> None:
    rules = load_rules(DATA.read_text(encoding="utf-8"), source=str(DATA))
    classify = rules.classify
    no_rows: dict[str, Any] = {
        "error_chain": "get user 42\nsql: no rows in result set",
        "top_frame": "github.com/acme/users/db.(*Repo).Find",
    }
    c = classify(no_rows)
    assert (c.rule_id, c.category, c.severity) == ("db.no_rows_in_repo", "db_no_rows", "info")
    assert c.suggestion == "github.com/acme/users/db.(*Repo).Find: map sql.ErrNoRows to a 404 with errors.Is."
    assert classify({**no_rows, "top_frame": "github.com/acme/users/http.Serve"}).rule_id == FALLBACK_RULE_ID

    rpc: dict[str, Any] = {"message": "rpc error: code = Unavailable", "grpc_code": "Unavailable", "http_status": 503}
    assert classify(rpc).rule_id == "grpc.overloaded"
    assert classify({**rpc, "message": "upstream failed"}).rule_id == "http.5xx"  # the regex must hold too
    assert classify({**rpc, "http_status": 429}).rule_id == FALLBACK_RULE_ID  # 4xx excluded; has a status
    assert classify({**rpc, "grpc_code": "Internal"}).rule_id == "http.5xx"

    slow: dict[str, Any] = {"http_status": 502, "duration_ms": 1500.0, "trace_id": "t1", "http_path": "/api/pay"}
    assert classify(slow).rule_id == "http.slow_5xx"
    assert classify({**slow, "http_path": "/healthz"}).rule_id == "http.5xx"
    assert classify({**slow, "duration_ms": 999.0}).rule_id == "http.5xx"
    assert classify({k: v for k, v in slow.items() if k != "trace_id"}).rule_id == "http.5xx"
    assert classify({**slow, "http_status": "502"}).rule_id == FALLBACK_RULE_ID  # a string is not a number
    assert classify({**slow, "http_status": 404}).rule_id == FALLBACK_RULE_ID

    assert classify({"message": "panic: boom", "level": "panic", "http_status": 200}).rule_id == "level.panic_text"
    assert classify({"root_cause": "panic: x", "truncated": True, "http_status": 200}).rule_id == "level.panic_text"
    assert classify({"message": "panic: boom", "level": "error", "http_status": 200}).rule_id == FALLBACK_RULE_ID
    assert classify({"message": "nothing", "service": "api"}).rule_id == "missing.status"
    assert classify({"message": "nothing", "service": "internal"}).rule_id == FALLBACK_RULE_ID
    assert classify({"message": "nothing"}).rule_id == FALLBACK_RULE_ID  # service != "internal" needs a service
    assert classify({"message": "nothing", "service": "api", "http_status": 0}).rule_id == FALLBACK_RULE_ID


def test_the_readme_examples_load_and_classify() -> None:
    text = README.read_text(encoding="utf-8")
    section = text[text.index("### Structural expressions") :]
    block = re.search(r"```yaml\n(.*?)```", section, re.S)
    assert block is not None
    rules = load_rules("version: 1\nrules:\n" + block.group(1), source="README.md")
    assert [r.id for r in rules.rules] == ["grpc.overloaded", "db.no_rows_in_repo", "http.slow_5xx"]
    ev = {"error_chain": "x\nsql: no rows in result set", "top_frame": "github.com/acme/orders/db.Get"}
    assert rules.classify(ev).rule_id == "db.no_rows_in_repo"


def test_a_rule_with_only_when_and_regex_rules_keep_working_together() -> None:
    text = textwrap.dedent(
        """\
        version: 1
        rules:
          - id: text.refused
            priority: 50
            match: {message: 'connection refused'}
            set: {error_class: transient, category: conn_refused, retryable: true}
          - id: status.server
            priority: 60
            match: {when: 'http_status in 500..599'}
            set: {error_class: system, category: http_5xx, retryable: true}
          - id: both
            priority: 70
            match:
              message: 'refused (?P<port>\\d+)'
              when: 'http_status == 502'
            set: {error_class: transient, category: conn_refused, retryable: true}
            suggestion: "port {{ port }}"
        """
    )
    rules = load_rules(text)
    assert rules.classify({"message": "connection refused"}).rule_id == "text.refused"
    assert rules.classify({"message": "connection refused", "http_status": 503}).rule_id == "status.server"
    c = rules.classify({"message": "connection refused 5432", "http_status": 502})
    assert (c.rule_id, c.suggestion) == ("both", "port 5432")
    assert rules.classify({"message": "x", "http_status": 502}).rule_id == "status.server"
    assert rules.classify({"message": "x", "http_status": 200}).rule_id == FALLBACK_RULE_ID


# --- the classification memo stays exact ---------------------------------------------------------


def test_the_memo_keys_on_the_fields_expressions_read() -> None:
    rules = load_rules(DATA.read_text(encoding="utf-8"))
    cache = ClassificationCache(rules, same)
    read = {"error_chain", "top_frame", "message", "grpc_code", "http_status", "duration_ms", "trace_id"}
    read |= {"http_path", "level", "truncated", "service", *ERROR_TEXT_FIELDS}
    assert set(cache.match_fields) == read

    rng = random.Random(11)
    choices: dict[str, list[object]] = {
        "message": ["rpc error: code = Unavailable", "panic: boom", "upstream failed"],
        "error_chain": ["a\nsql: no rows in result set", "b"],
        "top_frame": ["github.com/acme/u/db.Find", "main.main"],
        "grpc_code": ["Unavailable", "Internal"],
        "http_status": [200, 429, 502, 503, 503.0, "503", True],
        "duration_ms": [10.0, 1500.0, 1500],
        "trace_id": ["t"],
        "http_path": ["/api", "/healthz"],
        "level": ["panic", "error"],
        "truncated": [True, False, 1],
        "service": ["api", "internal"],
    }
    pool: list[dict[str, Any]] = [
        {k: rng.choice(v) for k, v in choices.items() if rng.random() < 0.6} for _ in range(300)
    ]
    outcomes = set()
    for _ in range(3000):
        ev = rng.choice(pool)
        expected = rules.classify(ev)
        assert cache.classify(ev) == expected, ev
        outcomes.add(expected.rule_id)
    assert cache.hits > 1000 and cache.misses >= 100
    assert len(outcomes) >= 5  # the stream reaches most rules, so the memo is tested on them


# --- fuzzing ---------------------------------------------------------------------------------------

TOKENS = [
    *("and", "or", "not", "in", "not in", "matches", "glob", "contains", "startswith", "endswith", "exists"),
    *("true", "false", "(", ")", "[", "]", ",", "..", "==", "!=", "<", "<=", ">", ">=", "=", "!", "-"),
    *("http_status", "message", "error_text", "grpc_code", "truncated", "duration_ms", "nope"),
    *('"x"', "'y'", '"a\\"b"', '"', "'", "\\", "500", "599", "-1", "2.5", "1e3", "5.", "1..", " ", "\n"),
]


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.text(max_size=200))
def test_random_text_is_refused_only_with_an_expr_error(text: str) -> None:
    try:
        compile_expression(text)
    except ExprError as exc:
        assert 0 <= exc.offset <= len(text)


@settings(max_examples=600, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.sampled_from(TOKENS), max_size=25).map(" ".join))
def test_random_token_soup_is_refused_only_with_an_expr_error(text: str) -> None:
    try:
        e = compile_expression(text)
    except ExprError as exc:
        assert 0 <= exc.offset <= len(text)
        return
    assert unparse(parse(unparse(e.tree))) == unparse(e.tree)
    assert e.evaluate({}) in (True, False)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.one_of(st.text(max_size=120), st.lists(st.sampled_from(TOKENS), max_size=20).map(" ".join)))
def test_random_text_in_a_rule_file_raises_only_rule_errors(text: str) -> None:
    for scalar in ('"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"', "|\n" + textwrap.indent(text, " " * 8)):
        try:
            load_rules(rules_with_when(scalar))
        except RuleError as err:
            assert all(p.line >= 1 and p.col >= 1 for p in err.problems)


VALUES = st.one_of(
    st.none(),
    st.text(max_size=40),
    st.integers(),
    st.floats(allow_nan=True, allow_infinity=True),
    st.booleans(),
    st.binary(max_size=5),
    st.lists(st.integers(), max_size=2),
)
NAMES = st.sampled_from([*contract.EVENT_TAGS, *contract.EVENT_FIELDS])
FUZZ_EXPRESSIONS = [
    compile_expression(t)
    for t in (
        "http_status in 500..599 or http_status not in [1, 2.5, 'x', true] or http_status < 'm'",
        "not (error_text matches '(?i)refused|timeout') and error_text glob '*[!a-c]?x*'",
        "top_frame startswith ['a', 'b'] or top_frame endswith 'z' or top_frame contains ''",
        "duration_ms >= 2.5 and duration_ms != -1 or truncated == true or truncated != false",
        "exists(level) and not exists(trace_id) or level > 'e' or level <= 'a'",
        "http_status not in -10..10 and goroutine_id == 7.5 or grpc_code == 'OK' or grpc_code != 1",
    )
]

FUZZ_RULES = load_rules(DATA.read_text(encoding="utf-8"))


@settings(max_examples=500, deadline=None)
@given(st.dictionaries(NAMES, VALUES, max_size=12))
def test_random_events_never_make_evaluation_raise(event: dict[str, object]) -> None:
    for e in FUZZ_EXPRESSIONS:
        assert e.evaluate(event) in (True, False)
    assert FUZZ_RULES.classify(event).rule_id  # type: ignore[arg-type]  # values of any type, on purpose


@settings(max_examples=800, deadline=None)
@given(
    st.one_of(st.text(alphabet="ab*?[]!-/.\\x", max_size=10), st.text(alphabet="ab*", max_size=10)),
    st.text(alphabet="ab-/.!\\x[]", max_size=12),
)
def test_glob_agrees_with_fnmatch(pattern: str, text: str) -> None:
    try:
        regex = glob_to_regex(pattern)
    except ValueError:
        assert "bad glob" in refused(f"message glob {unparse_string(pattern)}").message
        return  # a reversed range: refused when loading
    expected = fnmatch.fnmatchcase(text, pattern)
    assert (compile_regex(regex).search(text) is not None) is expected, regex
    assert holds(f"message glob {unparse_string(pattern)}", {"message": text}) is expected  # star-only: str methods


def unparse_string(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'
