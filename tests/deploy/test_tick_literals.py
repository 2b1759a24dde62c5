"""TICKscript literals: user strings become literals of their context, or are refused."""

from __future__ import annotations

import jinja2
import pytest
from hypothesis import given
from hypothesis import strategies as st

from errloop.deploy.generate.tick import (
    UnsafeValue,
    environment,
    tick_dur,
    tick_raw,
    tick_ref,
    tick_str,
)


def unquote_tick(literal: str) -> str:
    """TICKscript's lexer for a single-quoted string (tick/ast/lex.go): only \\' is an escape."""
    assert literal[0] == literal[-1] == "'"
    body, out, i = literal[1:-1], [], 0
    while i < len(body):
        if body[i] == "\\" and i + 1 < len(body) and body[i + 1] == "'":
            out.append("'")
            i += 2
            continue
        assert body[i] != "'", "an unescaped quote would end the string early"
        out.append(body[i])
        i += 1
    return "".join(out)


@given(st.text(alphabet=st.characters(min_codepoint=0x20, blacklist_characters="\x7f", blacklist_categories=("Cs",))))
def test_tick_str_round_trips_through_the_lexer(text: str) -> None:
    if text.endswith("\\"):
        with pytest.raises(UnsafeValue):
            tick_str(text)
        return
    assert unquote_tick(tick_str(text)) == text


@pytest.mark.parametrize("text", ["a\nb", "x\x00", "tab\there", "end\\", "\ud800x"])
def test_tick_str_refuses_control_characters_and_trailing_backslash(text: str) -> None:
    with pytest.raises(UnsafeValue):
        tick_str(text)


@pytest.mark.parametrize("name", ['a"b', "a b", "", "x)|log()"])
def test_tick_ref_refuses_anything_but_names(name: str) -> None:
    with pytest.raises(UnsafeValue):
        tick_ref(name)


def test_durations_use_exact_units() -> None:
    assert [tick_dur(s) for s in (1, 59, 60, 90, 3600, 86400, 604800)] == ["1s", "59s", "1m", "90s", "1h", "1d", "1w"]
    for bad in (0, -5, 1.5, True, "1m"):
        with pytest.raises(UnsafeValue):
            tick_dur(bad)


def test_triple_quoted_text_cannot_close_itself() -> None:
    with pytest.raises(UnsafeValue):
        tick_raw("x''' |log() '''")


def test_environment_refuses_unescaped_strings() -> None:
    env = environment()
    with pytest.raises(UnsafeValue):
        env.from_string("{{ v }}").render(v="x') |log() //")
    assert env.from_string("{{ v | tick_str }}").render(v="x') |log() //") == "'x\\') |log() //'"
    with pytest.raises(jinja2.UndefinedError):
        env.from_string("{{ missing | tick_str }}").render()
