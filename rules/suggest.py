"""Fix-suggestion templates: Jinja2 in an immutable sandbox, compiled once, rendered never raising.

Security model. Suggestion templates come from rule files (operator configuration); the
values they see come from logged events (attacker-controllable text). Event text is only
ever *data* passed to a compiled template, never compiled itself. Templates run in
:class:`jinja2.sandbox.ImmutableSandboxedEnvironment`: no access to ``_``-prefixed
attributes (``''.__class__`` …), no mutation of lists/dicts, no unsafe callables. On top
of that, at load time a template that names an ``_``-attribute is refused outright, and
``for`` loops may nest at most :data:`MAX_LOOP_DEPTH` deep.

Cost limits. Each variable handed to a template is cut to :data:`MAX_VALUE_CHARS`;
``range`` yields at most :data:`MAX_RANGE` items; ``*`` and ``**`` refuse results beyond
:data:`MAX_PRODUCT_CHARS` / small exponents; ``center`` and ``indent`` widths are capped;
output is generated lazily and stops after :data:`MAX_SUGGESTION_CHARS`. These bound the
accidents an honest author can make; they are not a complete CPU bound against a hostile
rule author (rule files must be as trusted as any other configuration).

A template that fails while rendering yields ``<suggestion unavailable: …>``.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import jinja2
from jinja2 import meta, nodes
from jinja2.exceptions import SecurityError
from jinja2.sandbox import ImmutableSandboxedEnvironment

from errloop.rules.safe_regex import valid_utf8

MAX_TEMPLATE_CHARS = 16_000
MAX_SUGGESTION_CHARS = 4_000
MAX_VALUE_CHARS = 2_000
MAX_RANGE = 1_000
MAX_PRODUCT_CHARS = 10_000
MAX_EXPONENT = 64
MAX_WIDTH = 200
MAX_LOOP_DEPTH = 2
UNAVAILABLE_PREFIX = "<suggestion unavailable: "


class TemplateProblem(ValueError):
    """A template that cannot be compiled or is refused; ``lineno`` is 1-based in the template."""

    def __init__(self, message: str, lineno: int = 1) -> None:
        super().__init__(message)
        self.message = message
        self.lineno = lineno


@dataclass(frozen=True, slots=True)
class Suggestion:
    """A compiled suggestion template."""

    source: str
    variables: frozenset[str]  # names the template reads from its context
    _template: jinja2.Template | None = field(repr=False, compare=False)

    def render(self, variables: Mapping[str, object]) -> str:
        """Render with ``variables``; never raises. Long output is cut with '…'."""
        if self._template is None:
            return ""
        try:
            text = _collect(self._template.generate(_limited(variables)))
        except Exception as exc:  # a suggestion must never take classification down
            reason = f"{type(exc).__name__}: {exc}"
            if len(reason) > 200:
                reason = reason[:199] + "…"
            return f"{UNAVAILABLE_PREFIX}{reason}>"
        return text


EMPTY = Suggestion(source="", variables=frozenset(), _template=None)


def compile_suggestion(source: str) -> Suggestion:
    """Compile a suggestion template; :class:`TemplateProblem` if it is invalid or refused."""
    if source.strip() == "":
        return EMPTY
    if len(source) > MAX_TEMPLATE_CHARS:
        raise TemplateProblem(f"template longer than {MAX_TEMPLATE_CHARS} characters")
    env = _environment()
    try:
        tree = env.parse(source)
    except jinja2.TemplateSyntaxError as exc:
        raise TemplateProblem(f"template syntax error: {exc.message}", exc.lineno or 1) from None
    _check(tree, 0)
    try:
        template = env.from_string(tree)
    except jinja2.TemplateError as exc:  # pragma: no cover - parse() already caught syntax errors
        raise TemplateProblem(f"template error: {exc}") from None
    return Suggestion(source=source, variables=frozenset(meta.find_undeclared_variables(tree)), _template=template)


def _check(node: nodes.Node, loop_depth: int) -> None:
    """Refuse ``_``-attributes and deeply nested loops before anything runs."""
    if isinstance(node, nodes.Getattr) and node.attr.startswith("_"):
        raise TemplateProblem(f"template reads the private attribute {node.attr!r}", node.lineno)
    if (
        isinstance(node, nodes.Getitem)
        and isinstance(node.arg, nodes.Const)
        and isinstance(node.arg.value, str)
        and node.arg.value.startswith("_")
    ):
        raise TemplateProblem(f"template reads the private attribute {node.arg.value!r}", node.lineno)
    if isinstance(node, nodes.For):
        loop_depth += 1
        if loop_depth > MAX_LOOP_DEPTH:
            raise TemplateProblem(f"for loops nested deeper than {MAX_LOOP_DEPTH}", node.lineno)
    for child in node.iter_child_nodes():
        _check(child, loop_depth)


def _collect(chunks: Iterator[str]) -> str:
    parts: list[str] = []
    size = 0
    for chunk in chunks:
        parts.append(chunk)
        size += len(chunk)
        if size > MAX_SUGGESTION_CHARS:
            break
    text = "".join(parts).strip()
    if len(text) > MAX_SUGGESTION_CHARS:
        text = text[: MAX_SUGGESTION_CHARS - 1] + "…"
    return text


def _limited(variables: Mapping[str, object]) -> dict[str, object]:
    out: dict[str, object] = {}
    for name, value in variables.items():
        out[name] = _cut(value)
    return out


def _cut(value: object) -> object:
    if isinstance(value, str):
        text = value if value.isascii() else valid_utf8(value)
        return text if len(text) <= MAX_VALUE_CHARS else text[: MAX_VALUE_CHARS - 1] + "…"
    if isinstance(value, list | tuple):
        return [_cut(v) for v in value[:100]]
    if isinstance(value, Mapping):
        return {str(k): _cut(v) for k, v in list(value.items())[:100]}
    return value


# --- the environment -------------------------------------------------------------------


class _Sandbox(ImmutableSandboxedEnvironment):
    intercepted_binops = frozenset({"*", "**"})

    def call_binop(self, context: Any, operator: str, left: Any, right: Any) -> Any:
        if operator == "*":
            for seq, times in ((left, right), (right, left)):
                if isinstance(seq, str | list | tuple) and isinstance(times, int):
                    if len(seq) * times > MAX_PRODUCT_CHARS:
                        raise SecurityError(f"repetition result longer than {MAX_PRODUCT_CHARS}")
        if operator == "**" and isinstance(right, int | float) and abs(right) > MAX_EXPONENT:
            raise SecurityError(f"exponent larger than {MAX_EXPONENT}")
        return super().call_binop(context, operator, left, right)


def _range(*args: int) -> range:
    rng = range(*args)
    if len(rng) > MAX_RANGE:
        raise SecurityError(f"range longer than {MAX_RANGE}")
    return rng


def _width(value: int) -> int:
    if not isinstance(value, int) or abs(value) > MAX_WIDTH:
        raise SecurityError(f"width larger than {MAX_WIDTH}")
    return value


def _center(value: str, width: int = 80) -> str:
    return str(value).center(_width(width))


def _indent(value: str, width: int | str = 4, first: bool = False, blank: bool = False) -> str:
    if isinstance(width, str):
        if len(width) > MAX_WIDTH:
            raise SecurityError(f"indent longer than {MAX_WIDTH}")
        prefix = width
    else:
        prefix = " " * _width(width)
    lines = str(value).split("\n")
    out = [(prefix + line) if (i > 0 or first) and (blank or line.strip()) else line for i, line in enumerate(lines)]
    return "\n".join(out)


_CAMEL_BOUNDARY = re.compile(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])")


def snake_case(value: str) -> str:
    """Go field name to the usual JSON key: ``UserID`` -> ``user_id``, ``Name`` -> ``name``."""
    text = str(value)[:MAX_WIDTH]
    return _CAMEL_BOUNDARY.sub("_", text).lower()


def lower_camel(value: str) -> str:
    """Go field name to lowerCamel: ``UserID`` -> ``userID``, ``HTTPServer`` -> ``httpServer``."""
    text = str(value)[:MAX_WIDTH]
    upper = 0
    while upper < len(text) and text[upper].isupper():
        upper += 1
    if upper <= 1 or upper == len(text):
        return text[:upper].lower() + text[upper:]
    return text[: upper - 1].lower() + text[upper - 1 :]


def exported(value: str) -> str:
    """A JSON key to an exported Go field name: ``age`` -> ``Age``, ``user_id`` -> ``UserId``."""
    text = str(value)[:MAX_WIDTH]
    return "".join(part[:1].upper() + part[1:] for part in re.split(r"[_\-\s]+", text) if part)


_ENV: _Sandbox | None = None


def _environment() -> _Sandbox:
    global _ENV
    if _ENV is None:
        env = _Sandbox(
            autoescape=False,  # plain text (Go code), not HTML
            trim_blocks=True,
            lstrip_blocks=True,
            keep_trailing_newline=False,
            undefined=jinja2.Undefined,  # a field the event lacks renders empty
        )
        for name in ("lipsum", "cycler", "joiner"):  # not needed for suggestions; lipsum(n) is costly
            env.globals.pop(name, None)
        env.globals["range"] = _range
        env.filters["center"] = _center
        env.filters["indent"] = _indent
        env.filters["snake_case"] = snake_case
        env.filters["lower_camel"] = lower_camel
        env.filters["exported"] = exported
        _ENV = env
    return _ENV
