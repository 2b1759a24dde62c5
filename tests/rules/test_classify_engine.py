"""The classification engine: rule file format, validation with line:col, matching, templates."""

from __future__ import annotations

import dataclasses
import random
import textwrap
import time

import pytest

from errloop.rules import suggest
from errloop.rules.classify import (
    FALLBACK_RULE_ID,
    Classification,
    RuleError,
    RuleSet,
    default_rules,
    load_rules,
    parse_duration,
)
from errloop.rules.safe_regex import PatternSet, compile_regex


def rules_yaml(body: str) -> str:
    return "version: 1\nrules:\n" + textwrap.indent(textwrap.dedent(body).strip("\n"), "  ") + "\n"


def one_rule(match: str = "message: boom", extra: str = "", set_: str = "") -> str:
    set_block = set_ or "{error_class: system, category: other, retryable: false}"
    return rules_yaml(
        f"""
        - id: r.one
          match: {{{match}}}
          set: {set_block}
        {extra}
        """
    )


def load_error(text: str, source: str = "rules.yaml") -> RuleError:
    with pytest.raises(RuleError) as info:
        load_rules(text, source=source)
    return info.value


# --- loading and matching ----------------------------------------------------------------


def test_minimal_rule_classifies_and_fills_defaults() -> None:
    rs = load_rules(one_rule())
    c = rs.classify({"message": "a boom happened"})
    assert c == Classification(
        rule_id="r.one",
        error_class="system",
        category="other",
        retryable=False,
        severity="error",  # default
        error_code="OTHER",  # default: category upper-cased
        retry_after_s=None,
        suggestion="",
    )


def test_no_match_gives_the_builtin_fallback() -> None:
    rs = load_rules(one_rule())
    c = rs.classify({"message": "all fine"})
    assert c.rule_id == FALLBACK_RULE_ID == "fallback.other"
    assert (c.category, c.error_class, c.retryable) == ("other", "unknown", False)
    assert load_rules("version: 1\nrules: []\n").classify({}).rule_id == FALLBACK_RULE_ID


def test_classification_is_frozen() -> None:
    c = load_rules(one_rule()).classify({"message": "boom"})
    with pytest.raises(dataclasses.FrozenInstanceError):
        c.category = "x"


def test_missing_field_is_no_match_and_all_conditions_must_hold() -> None:
    rs = load_rules(one_rule(match="message: boom, level: '^error$'"))
    assert rs.classify({"message": "boom", "level": "error"}).rule_id == "r.one"
    assert rs.classify({"message": "boom", "level": "warn"}).rule_id == FALLBACK_RULE_ID
    assert rs.classify({"message": "boom"}).rule_id == FALLBACK_RULE_ID  # level missing
    assert rs.classify({"level": "error"}).rule_id == FALLBACK_RULE_ID


def test_a_list_of_regexes_matches_any_of_them() -> None:
    rs = load_rules(one_rule(match="error_type: ['^\\*net\\.OpError$', '^\\*url\\.Error$']"))
    assert rs.classify({"error_type": "*url.Error"}).rule_id == "r.one"
    assert rs.classify({"error_type": "*net.OpError"}).rule_id == "r.one"
    assert rs.classify({"error_type": "*os.PathError"}).rule_id == FALLBACK_RULE_ID


def test_several_fields_in_one_key_and_the_error_text_alias() -> None:
    rs = load_rules(one_rule(match="'message|root_cause': refused"))
    assert rs.classify({"message": "x", "root_cause": "connection refused"}).rule_id == "r.one"
    assert rs.classify({"error_chain": "connection refused"}).rule_id == FALLBACK_RULE_ID
    alias = load_rules(one_rule(match="error_text: refused"))
    for name in ("message", "error_chain", "root_cause"):
        assert alias.classify({name: "dial tcp: connect: connection refused"}).rule_id == "r.one"
    assert alias.classify({"stack": "connection refused"}).rule_id == FALLBACK_RULE_ID


def test_numbers_and_booleans_match_as_text() -> None:
    rs = load_rules(one_rule(match="http_status: '^5\\d\\d$'"))
    assert rs.classify({"http_status": 503}).rule_id == "r.one"
    assert rs.classify({"http_status": 503.0}).rule_id == "r.one"  # integral float -> "503"
    assert rs.classify({"http_status": 404}).rule_id == FALLBACK_RULE_ID
    assert rs.classify({"http_status": "502"}).rule_id == "r.one"
    flag = load_rules(one_rule(match="truncated: '^true$'"))
    assert flag.classify({"truncated": True}).rule_id == "r.one"
    assert flag.classify({"truncated": False}).rule_id == FALLBACK_RULE_ID
    plain_int = load_rules(one_rule(match="http_status: 503"))  # an unquoted number is its text
    assert plain_int.classify({"http_status": 503}).rule_id == "r.one"


def test_odd_event_values_do_not_raise() -> None:
    rs = load_rules(one_rule())
    odd = {"message": None, "level": ["x"], 3: "y"}
    assert rs.classify(odd).rule_id == FALLBACK_RULE_ID


def test_empty_match_matches_every_event() -> None:
    rs = load_rules(
        rules_yaml("- id: catch.all\n  match: {}\n  set: {error_class: unknown, category: other, retryable: false}")
    )
    assert rs.classify({}).rule_id == "catch.all"


def test_priority_then_file_order_first_match_wins() -> None:
    text = rules_yaml(
        """
        - id: low
          priority: 1
          match: {message: timeout}
          set: {error_class: system, category: other, retryable: false}
        - id: high
          priority: 10
          match: {message: timeout}
          set: {error_class: transient, category: io_timeout, retryable: true}
        - id: high.second
          priority: 10
          match: {message: timeout}
          set: {error_class: system, category: other, retryable: false}
        - id: default.priority
          match: {message: other}
          set: {error_class: system, category: other, retryable: false}
        """
    )
    rs = load_rules(text)
    assert [(r.id, r.priority) for r in rs.rules] == [
        ("high", 10),
        ("high.second", 10),
        ("low", 1),
        ("default.priority", 0),
    ]
    c = rs.classify({"message": "i/o timeout"})
    assert (c.rule_id, c.category, c.retryable) == ("high", "io_timeout", True)
    assert rs.classify({"message": "other"}).rule_id == "default.priority"


def test_set_fields_and_durations() -> None:
    rs = load_rules(
        one_rule(
            set_="{error_class: transient, category: conn_refused, retryable: true, severity: critical, "
            "error_code: DIAL_REFUSED, retry_after: 1m30s}"
        )
    )
    c = rs.classify({"message": "boom"})
    assert (c.severity, c.error_code, c.retry_after_s) == ("critical", "DIAL_REFUSED", 90.0)
    bare = load_rules(one_rule(set_="{error_class: transient, category: x, retryable: true, retry_after: 2}"))
    assert bare.classify({"message": "boom"}).retry_after_s == 2.0


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("0s", 0.0), ("0", 0.0), ("250ms", 0.25), ("1m30s", 90.0), ("1.5h", 5400.0), ("2s500ms", 2.5), ("10us", 1e-5)],
)
def test_parse_duration(text: str, seconds: float) -> None:
    assert parse_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize("text", ["", "5", "-1s", "1x", "s", "1s 2s", "1d"])
def test_parse_duration_refuses(text: str) -> None:
    with pytest.raises(ValueError, match="duration"):
        parse_duration(text)


def test_ruleset_is_reusable_and_ruleset_api() -> None:
    rs = load_rules(one_rule(), source="mine.yaml")
    assert isinstance(rs, RuleSet) and len(rs) == 1 and rs.source == "mine.yaml"
    rule = rs.rule("r.one")
    assert rule is not None and rule.line == 3 and rs.rule("nope") is None
    assert [rs.classify({"message": "boom"}).rule_id for _ in range(3)] == ["r.one"] * 3


# --- errors with line:col --------------------------------------------------------------------

BASE = """\
version: 1
rules:
  - id: ok.rule
    priority: 5
    match:
      message: 'fine'
    set: {error_class: system, category: other, retryable: false}
"""


def test_unknown_key_has_line_col_and_path_and_exact_str() -> None:
    text = BASE.replace("    priority: 5\n", "    priority: 5\n    prority: 7\n")
    err = load_error(text)
    assert (err.source, err.line, err.col, err.path) == ("rules.yaml", 5, 5, "rules[0].prority")
    assert str(err) == "rules.yaml:5:5: unknown key 'prority' (did you mean 'priority'?) (rules[0].prority)"


def test_unknown_top_level_and_set_keys() -> None:
    err = load_error(BASE + "extra: 1\n")
    assert (err.line, err.col, err.path) == (8, 1, "extra")
    err = load_error(BASE.replace("retryable: false}", "retryable: false, colour: red}"))
    assert (err.line, err.col, err.path) == (7, 67, "rules[0].set.colour")


def test_bad_regex_has_line_col() -> None:
    err = load_error(BASE.replace("'fine'", "'(unclosed'"))
    assert (err.line, err.col, err.path) == (6, 16, "rules[0].match.message")
    assert "bad regex" in err.message and "missing )" in err.message


def test_bad_regex_in_a_list_names_its_index() -> None:
    # the brief's own example: an unescaped leading '*' is not a regex
    text = BASE.replace("message: 'fine'", "error_type: ['ok', '*validator.ValidationErrors']")
    err = load_error(text)
    assert (err.line, err.col, err.path) == (6, 26, "rules[0].match.error_type[1]")


def test_regex_features_outside_re2_are_refused_at_load() -> None:
    for pattern in ["(?<=a)b", "(x)\\1"]:
        err = load_error(BASE.replace("'fine'", f"'{pattern}'"))
        assert err.line == 6 and "bad regex" in err.message


def test_wrong_types_are_reported() -> None:
    err = load_error(BASE.replace("priority: 5", "priority: high"))
    assert (err.line, err.col, err.path) == (4, 15, "rules[0].priority")
    assert err.message == "priority must be an integer, got a string"
    err = load_error(BASE.replace("retryable: false", "retryable: 'no'"))
    assert err.path == "rules[0].set.retryable" and "true or false" in err.message
    err = load_error(BASE.replace("priority: 5", "priority: true"))
    assert err.path == "rules[0].priority" and "boolean" in err.message
    err = load_error(BASE.replace("    match:\n      message: 'fine'\n", "    match: [message]\n"))
    assert err.path == "rules[0].match" and err.line == 5


def test_bad_class_severity_and_category() -> None:
    err = load_error(BASE.replace("error_class: system", "error_class: fatal"))
    assert (err.line, err.col, err.path) == (7, 24, "rules[0].set.error_class")
    assert "business, system, transient, unknown" in err.message
    err = load_error(BASE.replace("retryable: false}", "retryable: false, severity: loud}"))
    assert err.path == "rules[0].set.severity"
    err = load_error(BASE.replace("category: other", "category: Not-Snake"))
    assert err.path == "rules[0].set.category"


def test_duplicate_id_points_at_the_second() -> None:
    text = BASE + BASE.split("rules:\n", 1)[1]
    err = load_error(text)
    assert (err.line, err.col, err.path) == (8, 9, "rules[1].id")
    assert err.message == "duplicate rule id 'ok.rule' (first defined on line 3)"


def test_bad_template_maps_to_the_file_line() -> None:
    text = BASE + "    suggestion: |\n      line one {{ message }}\n      line two {% if %}\n"
    err = load_error(text)
    assert (err.line, err.col, err.path) == (10, 7, "rules[0].suggestion")
    assert "template syntax error" in err.message
    flow = load_error(BASE + "    suggestion: 'broken {{ message '\n")
    assert (flow.line, flow.col) == (8, 17)


def test_every_problem_is_reported_at_once() -> None:
    text = """\
version: 1
rules:
  - id: Bad Id
    match: {mesage: x}
    set: {error_class: nope, category: other, retryable: false}
  - id: second
    match: {message: '(x'}
    set: {category: other, retryable: 1}
"""
    err = load_error(text, source="f.yaml")
    found = [(p.line, p.path) for p in err.problems]
    assert found == [
        (3, "rules[0].id"),
        (4, "rules[0].match.mesage"),
        (5, "rules[0].set.error_class"),
        (7, "rules[1].match.message"),
        (8, "rules[1].set.error_class"),  # missing required key
        (8, "rules[1].set.retryable"),
    ]
    lines = str(err).splitlines()
    assert len(lines) == 6 and all(line.startswith("f.yaml:") for line in lines)
    assert "did you mean 'message'" in err.problems[1].message


def test_structural_problems() -> None:
    assert "empty rule file" in load_error("").message
    assert load_error("- a\n").message.startswith("expected a mapping")
    assert load_error("rules: []\n").path == "version"
    assert "unsupported version" in load_error("version: 2\nrules: []\n").message
    assert load_error("version: 1\nrules: {}\n").path == "rules"
    missing = load_error("version: 1\nrules:\n  - id: x\n")
    assert {p.path for p in missing.problems} == {"rules[0].match", "rules[0].set"}
    reserved = load_error(BASE.replace("id: ok.rule", "id: fallback.other"))
    assert "reserved" in reserved.message
    dup_key = load_error(BASE.replace("    priority: 5\n", "    priority: 5\n    priority: 6\n"))
    assert (dup_key.line, dup_key.message) == (5, "duplicate key 'priority'")
    dup_field = load_error(BASE.replace("      message: 'fine'\n", "      message: a\n      message: b\n"))
    assert dup_field.path == "rules[0].match.message" and dup_field.line == 7


def test_yaml_syntax_error_has_position() -> None:
    err = load_error("version: 1\nrules:\n  - id: x\n    match: {message: [unclosed\n")
    assert err.source == "rules.yaml" and err.line >= 4 and err.message.startswith("invalid YAML")
    tag = load_error("version: !!python/object:os.system 1\nrules: []\n")
    assert tag.line == 1 and "invalid YAML" in tag.message
    control = load_error("version: 1\nrules: []\nx: \x07\n")
    assert (control.line, control.col) == (3, 4) and "#x0007" in control.message
    two = load_error("version: 1\n---\nversion: 1\n")
    assert two.line == 2 and "single document" in two.message


def test_alias_bomb_is_refused() -> None:
    bomb = "a: &a [x, x, x, x, x, x, x, x, x, x]\n"
    for i in range(1, 8):
        prev = chr(ord("a") + i - 1)
        cur = chr(ord("a") + i)
        bomb += f"{cur}: &{cur} [{', '.join('*' + prev for _ in range(10))}]\n"
    started = time.perf_counter()
    err = load_error(bomb)
    assert "too large" in err.message and time.perf_counter() - started < 5


# --- suggestions -------------------------------------------------------------------------


def with_suggestion(template: str, match: str = "message: '(?P<word>\\w+) failed'") -> RuleSet:
    body = one_rule(match=match) + "    suggestion: " + repr_yaml(template) + "\n"
    return load_rules(body)


def repr_yaml(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def test_suggestion_sees_event_fields_and_named_groups() -> None:
    rs = with_suggestion("{{ word }} broke in {{ service }} ({{ http_status }}){{ nothing }}")
    c = rs.classify({"message": "payment failed", "service": "billing", "http_status": 502})
    assert c.suggestion == "payment broke in billing (502)"


def test_matches_lists_every_match_of_the_winning_pattern() -> None:
    rs = with_suggestion("{% for m in matches %}{{ m.word }};{% endfor %}")
    assert rs.classify({"message": "a failed\nb failed\nc ok"}).suggestion == "a;b;"


def test_event_text_is_data_not_template() -> None:
    rs = with_suggestion("got: {{ message }}")
    c = rs.classify({"message": "{{ 7 * 7 }} it failed {% raw %}"})
    assert c.rule_id == "r.one"
    assert c.suggestion == "got: {{ 7 * 7 }} it failed {% raw %}"


@pytest.mark.parametrize(
    "template",
    [
        "{{ ''.__class__ }}",
        "{{ ''.__class__.__mro__[1].__subclasses__() }}",
        "{{ cycler.__init__.__globals__.os }}",
        "{{ message['__class__'] }}",
        "{% for x in a %}{% for y in b %}{% for z in c %}{% endfor %}{% endfor %}{% endfor %}",
    ],
)
def test_hostile_templates_are_refused_at_load(template: str) -> None:
    err = load_error(one_rule() + "    suggestion: " + repr_yaml(template) + "\n")
    assert err.path == "rules[0].suggestion"


@pytest.mark.parametrize(
    "template",
    [
        "{{ message | attr(word) }}",  # word = "__class__" from the event: no static check can see it
        "{{ message | attr(word) | attr('__mro__') }}",
        "{{ (message | attr(word)).mro() }}",
        "{{ '{0.__class__.__mro__}'.format(message) }}",
        "{{ range | attr('__self__') }}",
        "{% set l = [] %}{{ l.append(word) }}{{ l }}",
        "{{ {}.update(a=1) }}",
        "{{ lipsum | attr('__globals__') }}",
        "{{ lipsum(100000) }}",
        "{{ cycler }}{{ joiner }}",
    ],
)
def test_sandbox_holds_at_render_time(template: str) -> None:
    rs = with_suggestion(template, match="message: '(?P<word>__\\w+__)'")
    c = rs.classify({"message": "__class__"})
    assert c.rule_id == "r.one"
    for leak in ("<class", "<built-in", "<function", "<module", "<bound", "<method", "<Template", "Lorem", "[1]"):
        assert leak not in c.suggestion
    if "append" in template or "update" in template:  # mutation is refused, not performed
        assert c.suggestion.startswith("<suggestion unavailable: SecurityError")


def test_render_errors_do_not_raise() -> None:
    for template in ["{{ nothing.deeper.deepest }}", "{{ 1 / 0 }}", "{{ word + 1 }}", "{{ range(10 ** 7) | list }}"]:
        c = with_suggestion(template).classify({"message": "x failed"})
        assert c.rule_id == "r.one" and c.category == "other"
        assert c.suggestion.startswith("<suggestion unavailable: ") and c.suggestion.endswith(">")


def test_expensive_templates_stop_quickly() -> None:
    started = time.perf_counter()
    big = with_suggestion("{{ 'a' * 1000000000 }}").classify({"message": "x failed"})
    assert big.suggestion.startswith("<suggestion unavailable")
    power = with_suggestion("{{ 9 ** 999999 }}").classify({"message": "x failed"})
    assert power.suggestion.startswith("<suggestion unavailable")
    wide = with_suggestion("{{ word | center(1000000000) }}").classify({"message": "x failed"})
    assert wide.suggestion.startswith("<suggestion unavailable")
    assert time.perf_counter() - started < 2


def test_suggestion_length_is_capped() -> None:
    rs = with_suggestion("{% for i in range(1000) %}{{ message }}{% endfor %}")
    c = rs.classify({"message": "y failed " * 20})
    assert len(c.suggestion) == suggest.MAX_SUGGESTION_CHARS and c.suggestion.endswith("…")


def test_template_helpers() -> None:
    assert suggest.snake_case("UserID") == "user_id"
    assert suggest.snake_case("CreatedAt") == "created_at"
    assert suggest.snake_case("Name") == "name"
    assert suggest.lower_camel("HTTPServer") == "httpServer"
    assert suggest.exported("user_id") == "UserId"


# --- regexes cannot hang ---------------------------------------------------------------------


def test_pathological_regex_returns_quickly() -> None:
    rs = load_rules(one_rule(match="message: '(a+)+$'"))
    hostile = "a" * 50 + "b"
    started = time.perf_counter()
    c = rs.classify({"message": hostile})
    assert time.perf_counter() - started < 0.5
    assert c.rule_id == FALLBACK_RULE_ID
    nested = load_rules(one_rule(match="message: '^(\\w+\\s?)*$'"))
    started = time.perf_counter()
    assert nested.classify({"message": "word " * 5000 + "!"}).rule_id == FALLBACK_RULE_ID
    assert time.perf_counter() - started < 0.5


def test_text_that_is_not_valid_utf8_still_classifies() -> None:
    rs = with_suggestion("{{ word }} / {{ message }}")
    c = rs.classify({"message": "x failed \ud800\x00"})  # a lone surrogate, as json.loads can produce
    assert c.rule_id == "r.one"
    assert c.suggestion.encode("utf-8") and "\ufffd" in c.suggestion


# --- the one-pass pattern set agrees with pattern-by-pattern search ------------------------------


def test_pattern_set_agrees_with_single_searches() -> None:
    patterns = [p for r in default_rules().rules for c in r.conditions for p in c.patterns]
    unique = list({p.source: p for p in patterns}.values())
    pset = PatternSet(unique)
    rng = random.Random(7)
    words = [
        "panic: ",
        "EOF",
        "context canceled",
        "i/o timeout",
        "rpc error: code = Unavailable desc = x",
        "\n",
        "x509: ",
    ]
    words += ["no rows in result set", "Key: 'A.B' Error:Field validation for 'B' failed on the 'min' tag", "503", "é"]
    texts = ["", "nothing here"] + [
        "".join(rng.choice(words) + " " for _ in range(rng.randint(1, 6))) for _ in range(300)
    ]
    for text in texts:
        expected = {i for i, p in enumerate(pset.patterns) if p.search(text) is not None}
        assert pset.matching(text) == expected, text


def test_pattern_set_survives_a_failed_set_match() -> None:
    pset = PatternSet([compile_regex("a+b"), compile_regex("zzz")])

    class FailingSet:  # RE2::Set answers "nothing" when its DFA runs out of memory
        def Match(self, text: str) -> None:
            return None

    pset._set = FailingSet()
    assert pset.matching("xxaab") == {0}  # the alternation notices and the patterns are searched one by one
    assert pset.matching("none") == set()
