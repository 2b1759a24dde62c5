"""A UDF's declared interface (edge types, options) and the typed options it receives.

A handler declares its :class:`Info` once: the edges it wants and provides and an
:class:`OptionSpec` per TICKscript property (``.rules('path')`` is the option ``rules`` with
one STRING argument). The same declaration answers Kapacitor's ``InfoRequest``, renders the
kapacitor.conf / TICKscript documentation, and validates the ``InitRequest``:
:func:`parse_options` turns the wire options into an :class:`Options` mapping of plain Python
values or raises :class:`OptionError` with a message naming the option.

Python types per Kapacitor ``ValueType``: BOOL -> bool, INT -> int, DOUBLE -> float,
STRING -> str, DURATION -> int **nanoseconds** (the wire unit; point times are ns too, so a
handler compares them without conversion; :data:`DurationNs` marks them in type hints).
"""

from __future__ import annotations

import enum
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Final, NewType, TypeAlias

from errloop.udf.agent import udf_pb2

DurationNs = NewType("DurationNs", int)
Scalar = bool | int | float | str
OptionValue: TypeAlias = "Scalar | tuple[OptionValue, ...]"
"""An option's value: the bare value of a one-argument option, else a tuple (of arguments,
or of calls for a repeatable option)."""


class Edge(enum.IntEnum):
    """Kapacitor's EdgeType."""

    STREAM = udf_pb2.STREAM
    BATCH = udf_pb2.BATCH


class ValueType(enum.IntEnum):
    """Kapacitor's ValueType of one option argument."""

    BOOL = udf_pb2.BOOL
    INT = udf_pb2.INT
    DOUBLE = udf_pb2.DOUBLE
    STRING = udf_pb2.STRING
    DURATION = udf_pb2.DURATION


_NAME_RE: Final = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
# the oneof member of OptionValue that carries each type
_VALUE_FIELD: Final = {
    ValueType.BOOL: "boolValue",
    ValueType.INT: "intValue",
    ValueType.DOUBLE: "doubleValue",
    ValueType.STRING: "stringValue",
    ValueType.DURATION: "durationValue",
}


class OptionError(ValueError):
    """An InitRequest does not match the UDF's declared options (sent back as InitResponse.error)."""


@dataclass(frozen=True)
class OptionSpec:
    """One TICKscript property of the UDF node: ``.name(arg, ...)``.

    ``types`` has one entry per positional argument. ``repeatable`` allows the property to be
    called more than once (each call adds one value, delivered as a tuple of calls).
    ``required`` makes init fail when it is absent. ``default`` is what :class:`Options`
    returns for an absent optional option.
    """

    name: str
    types: tuple[ValueType, ...]
    doc: str = ""
    required: bool = False
    repeatable: bool = False
    default: OptionValue | None = None

    def __post_init__(self) -> None:
        if not _NAME_RE.match(self.name):
            raise ValueError(f"option name {self.name!r} is not a TICKscript identifier")
        if not self.types:
            raise ValueError(f"option {self.name!r} must take at least one argument")
        if self.required and self.default is not None:
            raise ValueError(f"option {self.name!r} cannot be both required and defaulted")

    def signature(self) -> str:
        """TICKscript form, e.g. ``.window(DURATION)``."""
        return f".{self.name}({', '.join(t.name for t in self.types)})"


@dataclass(frozen=True)
class Info:
    """What a UDF tells Kapacitor about itself (InfoResponse), declared once per handler class."""

    wants: Edge
    provides: Edge
    options: tuple[OptionSpec, ...] = ()
    doc: str = ""
    _by_name: dict[str, OptionSpec] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        by_name: dict[str, OptionSpec] = {}
        for spec in self.options:
            if spec.name in by_name:
                raise ValueError(f"option {spec.name!r} declared twice")
            by_name[spec.name] = spec
        object.__setattr__(self, "_by_name", by_name)

    def option(self, name: str) -> OptionSpec | None:
        """The declaration of option ``name``, if any."""
        return self._by_name.get(name)

    def to_proto(self) -> udf_pb2.InfoResponse:
        """The InfoResponse message."""
        resp = udf_pb2.InfoResponse(wants=int(self.wants), provides=int(self.provides))  # type: ignore[arg-type]
        for spec in self.options:
            resp.options[spec.name].valueTypes.extend(int(t) for t in spec.types)  # type: ignore[misc]
        return resp


class Options(Mapping[str, OptionValue]):
    """Validated options of one InitRequest; absent optional options give their default.

    Single-argument options map to the bare value, multi-argument ones to a tuple, and
    repeatable ones to a tuple with one entry per call. Typed getters return ``None`` when
    the option is absent and has no default.
    """

    __slots__ = ("_info", "_values")

    def __init__(self, info: Info, values: Mapping[str, OptionValue]) -> None:
        self._info = info
        self._values = dict(values)

    def __getitem__(self, name: str) -> OptionValue:
        if name in self._values:
            return self._values[name]
        spec = self._info.option(name)
        if spec is not None and spec.default is not None:
            return spec.default
        raise KeyError(name)

    def __iter__(self) -> Iterator[str]:
        names = dict.fromkeys(self._values)
        names.update(dict.fromkeys(s.name for s in self._info.options if s.default is not None))
        return iter(names)

    def __len__(self) -> int:
        return sum(1 for _ in self)

    def given(self, name: str) -> bool:
        """True when the TICKscript called this property (defaults do not count)."""
        return name in self._values

    def _typed(self, name: str, kind: type) -> object:
        value = self.get(name)
        if value is not None and not isinstance(value, kind):
            raise TypeError(f"option {name!r} is {type(value).__name__}, not {kind.__name__}")
        return value

    def get_str(self, name: str) -> str | None:
        """A one-argument STRING option."""
        value = self._typed(name, str)
        return value if isinstance(value, str) else None

    def get_bool(self, name: str) -> bool | None:
        """A one-argument BOOL option."""
        value = self._typed(name, bool)
        return value if isinstance(value, bool) else None

    def get_int(self, name: str) -> int | None:
        """A one-argument INT option."""
        value = self._typed(name, int)
        return value if isinstance(value, int) and not isinstance(value, bool) else None

    def get_float(self, name: str) -> float | None:
        """A one-argument DOUBLE option."""
        value = self._typed(name, float)
        return value if isinstance(value, float) else None

    def get_duration(self, name: str) -> DurationNs | None:
        """A one-argument DURATION option, in nanoseconds."""
        value = self.get_int(name)
        return None if value is None else DurationNs(value)

    def __repr__(self) -> str:
        return f"Options({self._values!r})"


def _value(name: str, index: int, expected: ValueType, wire: udf_pb2.OptionValue) -> Scalar:
    got = int(wire.type)
    if got != int(expected):
        got_name = ValueType(got).name if got in ValueType._value2member_map_ else str(got)
        raise OptionError(f"option {name!r} argument {index + 1}: got {got_name}, expected {expected.name}")
    member = wire.WhichOneof("value")
    if member is not None and member != _VALUE_FIELD[expected]:
        raise OptionError(f"option {name!r} argument {index + 1}: declared {expected.name} but carries {member}")
    value: Scalar = getattr(wire, _VALUE_FIELD[expected])
    return value


def parse_options(info: Info, wire_options: list[udf_pb2.Option] | tuple[udf_pb2.Option, ...]) -> Options:
    """Validate InitRequest options against ``info`` and convert them to Python values.

    Raises :class:`OptionError` for an unknown option, a wrong number or type of arguments,
    a repeated non-repeatable option, or a missing required option; the message names the
    first problem found and the expected TICKscript form.
    """
    values: dict[str, OptionValue] = {}
    repeated: dict[str, list[OptionValue]] = {}
    for opt in wire_options:
        spec = info.option(opt.name)
        if spec is None:
            known = ", ".join(s.signature() for s in info.options) or "none"
            raise OptionError(f"unknown option {opt.name!r} (known: {known})")
        if len(opt.values) != len(spec.types):
            raise OptionError(
                f"option {opt.name!r} takes {len(spec.types)} argument(s) {spec.signature()}, got {len(opt.values)}"
            )
        args = tuple(_value(spec.name, i, t, v) for i, (t, v) in enumerate(zip(spec.types, opt.values, strict=True)))
        value: OptionValue = args[0] if len(args) == 1 else args
        if spec.repeatable:
            repeated.setdefault(spec.name, []).append(value)
        elif spec.name in values:
            raise OptionError(f"option {spec.name!r} given more than once")
        else:
            values[spec.name] = value
    for name, calls in repeated.items():
        values[name] = tuple(calls)
    for spec in info.options:
        if spec.required and spec.name not in values:
            raise OptionError(f"option {spec.signature()} is required")
    return Options(info, values)
