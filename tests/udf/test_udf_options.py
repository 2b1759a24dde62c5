"""Option schema: InfoResponse encoding and InitRequest validation into typed values."""

from __future__ import annotations

import pytest
from udf_test_handlers import PickyHandler
from udf_wire import init, opt_duration, opt_int, opt_str

from errloop.udf.agent import Edge, Info, OptionError, OptionSpec, ValueType, parse_options, udf_pb2

INFO = PickyHandler.INFO


def opts(*options: tuple[str, list[udf_pb2.OptionValue]]) -> list[udf_pb2.Option]:
    return list(init(*options).init.options)


def test_info_to_proto_lists_every_option_with_types() -> None:
    proto = INFO.to_proto()
    assert proto.wants == udf_pb2.STREAM
    assert proto.provides == udf_pb2.BATCH
    assert list(proto.options["pair"].valueTypes) == [udf_pb2.STRING, udf_pb2.INT]
    assert list(proto.options["period"].valueTypes) == [udf_pb2.DURATION]
    assert set(proto.options) == {s.name for s in INFO.options}


def test_values_arrive_as_python_types() -> None:
    options = parse_options(
        INFO,
        opts(
            ("field", [opt_str("value")]),
            ("threshold", [udf_pb2.OptionValue(type=udf_pb2.DOUBLE, doubleValue=2.5)]),
            ("size", [opt_int(10)]),
            ("enabled", [udf_pb2.OptionValue(type=udf_pb2.BOOL, boolValue=True)]),
            ("period", [opt_duration(90_000_000_000)]),
            ("pair", [opt_str("a"), opt_int(1)]),
            ("pair", [opt_str("b"), opt_int(2)]),
        ),
    )
    assert options.get_str("field") == "value"
    assert options.get_float("threshold") == 2.5
    assert options.get_int("size") == 10
    assert options.get_bool("enabled") is True
    assert options.get_duration("period") == 90_000_000_000
    assert options["pair"] == (("a", 1), ("b", 2))
    assert options.given("size") and not options.given("nothing")


def test_absent_option_is_none_or_default() -> None:
    info = Info(
        Edge.STREAM, Edge.STREAM, (OptionSpec("n", (ValueType.INT,), default=7), OptionSpec("s", (ValueType.STRING,)))
    )
    options = parse_options(info, [])
    assert options.get_int("n") == 7
    assert options.get_str("s") is None
    assert not options.given("n")
    assert dict(options) == {"n": 7}


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ([("nope", [opt_str("x")])], "unknown option 'nope'"),
        ([("field", [opt_int(3)])], "option 'field' argument 1: got INT, expected STRING"),
        ([("field", [opt_str("a"), opt_str("b")])], "takes 1 argument"),
        ([("field", [opt_str("a")]), ("field", [opt_str("b")])], "given more than once"),
        ([("size", [opt_int(1)])], "option .field(STRING) is required"),
        ([("field", [opt_str("a")]), ("pair", [opt_int(1), opt_str("a")])], "argument 1: got INT, expected STRING"),
    ],
)
def test_bad_options_name_the_problem(options: list[tuple[str, list[udf_pb2.OptionValue]]], message: str) -> None:
    with pytest.raises(OptionError, match=message.replace("(", r"\(").replace(")", r"\)")):
        parse_options(INFO, opts(*options))


def test_type_tag_and_value_member_must_agree() -> None:
    lying = udf_pb2.OptionValue(type=udf_pb2.STRING, intValue=3)
    with pytest.raises(OptionError, match="carries intValue"):
        parse_options(INFO, opts(("field", [lying])))


def test_schema_declaration_is_checked() -> None:
    with pytest.raises(ValueError, match="identifier"):
        OptionSpec("bad-name", (ValueType.INT,))
    with pytest.raises(ValueError, match="at least one argument"):
        OptionSpec("x", ())
    with pytest.raises(ValueError, match="declared twice"):
        Info(Edge.STREAM, Edge.STREAM, (OptionSpec("x", (ValueType.INT,)), OptionSpec("x", (ValueType.INT,))))
    assert OptionSpec("window", (ValueType.DURATION,)).signature() == ".window(DURATION)"
