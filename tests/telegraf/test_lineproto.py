"""Line protocol encoding: escaping rules, hostile strings, and a round trip through a Telegraf-like parser."""

from __future__ import annotations

import math
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from tg_lp_parser import LPSyntaxError, parse_line

from errloop.telegraf import lineproto
from errloop.telegraf.lineproto import MAX_STRING_BYTES, LineProtocolError, encode, restore_newlines

HOSTILE = [
    'say "hi"',
    "back\\slash",
    "trailing\\",
    "\\",
    '\\"',
    "a,b=c d",
    "line1\nline2\r\nline3\rx\fy",
    "tab\there",
    "ünïcødé ✓ 日本語 🙂",
    "=,  ,=",
    '"',
    "",
    " leading and trailing ",
]


def expected_tag(value: str) -> str:
    pictures = {"\t": "\u2409", "\n": "\u240a", "\v": "\u240b", "\f": "\u240c", "\r": "\u240d", "\\": "/"}
    return "".join(pictures.get(c, c) for c in value)


def expected_string(value: str) -> str:
    out = value.replace("\n", "\u240a").replace("\r", "\u240d").replace("\f", "\u240c")
    data = out.encode("utf-8")
    return data[:MAX_STRING_BYTES].decode("utf-8", "ignore") if len(data) > MAX_STRING_BYTES else out


def test_basic_shape_and_types() -> None:
    line = encode("cpu", {"host": "a", "dc": "x"}, {"f": 1.5, "i": 42, "b": True, "s": "ok", "n": False}, 1700)
    assert line == 'cpu,dc=x,host=a f=1.5,i=42i,b=true,s="ok",n=false 1700'


def test_tags_sorted_and_empty_tag_values_dropped() -> None:
    line = encode("m", {"z": "1", "a": "", "m": "2"}, {"v": 1})
    assert line.startswith("m,m=2,z=1 ")
    assert ",a=" not in line


def test_no_timestamp_when_none() -> None:
    assert encode("m", {}, {"v": 1}) == "m v=1i"


@pytest.mark.parametrize("value", HOSTILE)
def test_hostile_string_fields_round_trip_on_one_line(value: str) -> None:
    line = encode("m", {}, {"s": value}, 1)
    assert "\n" not in line and "\r" not in line and "\f" not in line
    point = parse_line(line)
    assert point.fields["s"] == expected_string(value)
    assert restore_newlines(str(point.fields["s"])) == value


@pytest.mark.parametrize("value", HOSTILE)
def test_hostile_tag_values_round_trip(value: str) -> None:
    line = encode("m", {"t": value}, {"v": 1})
    point = parse_line(line)
    want = expected_tag(value)
    assert point.tags == ({"t": want} if want else {})


@pytest.mark.parametrize("name", ["my meas", "a,b", "x=y", "ünï"])
def test_special_characters_in_names_are_escaped(name: str) -> None:
    point = parse_line(encode(name, {name: "v"}, {name: 1}))
    assert point.measurement == name
    assert point.tags == {name: "v"}
    assert point.fields == {name: 1}


@pytest.mark.parametrize(
    ("measurement", "tags", "fields", "needle"),
    [
        ("", {}, {"v": 1}, "empty"),
        ("#m", {}, {"v": 1}, "comment"),
        ("m\\", {}, {"v": 1}, "backslash"),
        ("m\n", {}, {"v": 1}, "control"),
        ("m", {"k\\": "v"}, {"v": 1}, "backslash"),
        ("m", {"time": "v"}, {"v": 1}, "reserved"),
        ("m", {}, {"time": 1}, "reserved"),
        ("m", {}, {"a\tb": 1}, "control"),
        ("m", {}, {}, "no fields"),
        ("m", {}, {"v": math.nan}, "finite"),
        ("m", {}, {"v": math.inf}, "finite"),
        ("m", {}, {"v": -math.inf}, "finite"),
        ("m", {}, {"v": 2**63}, "64 bits"),
        ("m", {}, {"v": -(2**63) - 1}, "64 bits"),
        ("m", {}, {"v": None}, "unsupported"),
        ("m", {}, {"v": b"bytes"}, "unsupported"),
        (["m"], {}, {"v": 1}, "must be a str"),
        ("m", {}, {("k",): 1}, "must be a str"),
    ],
)
def test_refusals_name_the_problem(measurement: Any, tags: dict[str, str], fields: dict[Any, Any], needle: str) -> None:
    with pytest.raises(LineProtocolError, match=needle):
        encode(measurement, tags, fields, 1)


def test_bad_timestamps_refused() -> None:
    for t in (True, 2**63, 1.5):
        with pytest.raises(LineProtocolError):
            encode("m", {}, {"v": 1}, t)


def test_int_bounds_are_accepted() -> None:
    point = parse_line(encode("m", {}, {"lo": -(2**63), "hi": 2**63 - 1}, -5))
    assert point.fields == {"lo": -(2**63), "hi": 2**63 - 1}
    assert point.time_ns == -5


def test_bool_is_not_written_as_int() -> None:
    assert encode("m", {}, {"b": True}) == "m b=true"


def test_long_string_cut_on_character_boundary() -> None:
    value = "é" * MAX_STRING_BYTES  # 2 bytes each
    point = parse_line(encode("m", {}, {"s": value}))
    got = point.fields["s"]
    assert isinstance(got, str)
    assert len(got.encode("utf-8")) <= MAX_STRING_BYTES
    assert got == "é" * (MAX_STRING_BYTES // 2)


def test_long_string_with_newlines_counts_pictures() -> None:
    value = "\n" * MAX_STRING_BYTES
    got = parse_line(encode("m", {}, {"s": value})).fields["s"]
    assert isinstance(got, str) and set(got) == {"\u240a"}
    assert len(got.encode("utf-8")) <= MAX_STRING_BYTES


def test_reference_parser_rejects_what_telegraf_rejects() -> None:
    # sanity of the test parser itself: these are errors in Telegraf's grammar
    for bad in ['m s="a\\nb"', 'm s="a\nb"', "m,t=a b v=1", "m v=1 x", "m"]:
        with pytest.raises(LPSyntaxError):
            parse_line(bad)


# --- properties ------------------------------------------------------------------------

_names = st.text(min_size=1, max_size=20).filter(
    lambda s: "\\" not in s and not set("\t\n\v\f\r") & set(s) and s != "time"
)
_measurements = _names.filter(lambda s: not s.startswith("#"))
_field_values = st.one_of(
    st.text(max_size=200),
    st.integers(min_value=-(2**63), max_value=2**63 - 1),
    st.floats(allow_nan=False, allow_infinity=False),
    st.booleans(),
)


@settings(max_examples=400, deadline=None)
@given(
    measurement=_measurements,
    tags=st.dictionaries(_names, st.text(max_size=40), max_size=5),
    fields=st.dictionaries(_names, _field_values, min_size=1, max_size=6),
    time_ns=st.one_of(st.none(), st.integers(min_value=-(2**63), max_value=2**63 - 1)),
)
def test_round_trip_property(
    measurement: str, tags: dict[str, str], fields: dict[str, str | int | float | bool], time_ns: int | None
) -> None:
    line = encode(measurement, tags, fields, time_ns)
    assert "\n" not in line
    point = parse_line(line)
    assert point.measurement == measurement
    assert point.tags == {k: expected_tag(v) for k, v in tags.items() if expected_tag(v)}
    assert list(point.fields) == list(fields)
    for key, value in fields.items():
        got = point.fields[key]
        if isinstance(value, str):
            assert got == expected_string(value)
        elif isinstance(value, bool):
            assert got is value
        elif isinstance(value, int):
            assert got == value and isinstance(got, int) and not isinstance(got, bool)
        else:
            assert isinstance(got, float) and got == value
    assert point.time_ns == time_ns


@settings(max_examples=200, deadline=None)
@given(st.text())
def test_restore_newlines_inverts_the_substitution(value: str) -> None:
    if not set(value) & set(lineproto.CONTROL_PICTURES.values()):
        assert restore_newlines(expected_string(value[:1000])) == value[:1000]


_TAG_KEYS = ("service", "a b", "k=v", "host")


@settings(max_examples=300, deadline=None)
@given(
    points=st.lists(
        st.tuples(
            st.fixed_dictionaries(
                {}, optional={k: st.sampled_from(["", "api", "x y", "a\\b", "é,="]) for k in _TAG_KEYS}
            ),
            st.dictionaries(st.sampled_from(["msg", "stack", "n", "f x", "ok"]), _field_values, min_size=1, max_size=5),
            st.one_of(st.none(), st.integers(min_value=-(2**63), max_value=2**63 - 1)),
        ),
        min_size=1,
        max_size=12,
    ),
)
def test_series_encoder_writes_what_encode_writes(
    points: list[tuple[dict[str, str], dict[str, str | int | float | bool], int | None]],
) -> None:
    # tiny memo bounds: the clearing paths run too; repeated values hit the remembered fragments
    enc = lineproto.SeriesEncoder("m e", _TAG_KEYS, repeated=("stack", "msg"), max_series=2, max_repeated=3)
    for tags, fields, time_ns in points * 2:
        point = {**tags, **fields}
        assert enc.line(enc.head(point), point, time_ns, skip=set(_TAG_KEYS)) == encode("m e", tags, fields, time_ns)


def test_series_encoder_refuses_what_encode_refuses() -> None:
    enc = lineproto.SeriesEncoder("m", ("t",), repeated=("s",))
    with pytest.raises(LineProtocolError, match="tag 't'"):
        enc.head({"t": 5})
    with pytest.raises(LineProtocolError, match="no fields"):
        enc.line("m", {"t": "x"}, None, skip={"t"})
    with pytest.raises(LineProtocolError, match="outside signed 64 bits"):
        enc.line("m", {"n": 2**63}, None)
    with pytest.raises(LineProtocolError, match="not a finite number"):
        enc.line("m", {"f": math.nan}, None)
    with pytest.raises(LineProtocolError, match="timestamp"):
        enc.line("m", {"n": 1}, 2**63)
    with pytest.raises(LineProtocolError, match="reserved"):
        enc.line("m", {"time": 1}, None)
