"""Go stack traces as printed by zap (``stacktrace``), ``debug.Stack`` and panics.

Text shape: pairs of a function line and a tab-indented ``file:line`` line, e.g.::

    main.(*server).createUser(0xc000123, {0x1, 0x2})
        /src/demo/main.go:88 +0x1d

Arguments and the ``+0x…`` pc offset are dropped; ``goroutine N [running]:`` headers
and ``created by`` lines are understood.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Final

SKIP_PREFIXES: Final = (
    "runtime.",
    "runtime/",
    "go.uber.org/zap",
    "net/http.",
    "testing.",
    "reflect.",
    "internal/",
    "sync.",
    "github.com/sirupsen/logrus",
)
"""Frames never taken as the top frame: Go runtime, logging libraries, net/http plumbing."""

PANIC_PREFIXES: Final = ("runtime.gopanic", "runtime.sigpanic", "runtime.panic", "runtime.goPanic")
"""Functions that raise a panic; frames up to the last of them (``debug.Stack``, the deferred
recover closure, ``panic``) are the panic machinery, not the place of the error."""

_FILE_LINE: Final = re.compile(
    r"^\s+(\S.*?:\d+)(?:\s+\+0x[0-9a-fA-F]+)?(?:\s+fp=0x[0-9a-fA-F]+ sp=0x[0-9a-fA-F]+ pc=0x[0-9a-fA-F]+)?\s*$"
)  # "fp=… sp=… pc=…" follow in dumps of fatal errors and signals (GOTRACEBACK=system)
_VOLATILE: Final = re.compile(
    r"goroutine \d+|\((?:0x|\{|\.\.\.)[^\n]*\)$|\+0x[0-9a-fA-F]+|fp=0x\S+ sp=0x\S+ pc=0x\S+", re.MULTILINE
)
_GOROUTINE: Final = re.compile(r"^goroutine \d+ (?:gp=\S+ m=\S+ (?:mp=\S+ )?)?\[.*\]:?$")
_CREATED_BY: Final = re.compile(r"^created by (\S+)(?: in goroutine \d+)?$")


@dataclass(frozen=True, slots=True)
class Frame:
    function: str
    file_line: str  # "path/to/file.go:88"

    @property
    def file(self) -> str:
        return self.file_line.rsplit(":", 1)[0]


def _strip_args(fn: str) -> str:
    """``pkg.(*T).m(0x1, {…})`` → ``pkg.(*T).m``; receiver parentheses are kept."""
    fn = fn.strip()
    if not fn.endswith(")"):
        return fn
    i = fn.rfind("(")
    if i >= 0 and fn.find(")", i) == len(fn) - 1:
        # the usual case, no parentheses inside the arguments: the last "(" matches the final ")"
        return fn if i > 0 and fn[i - 1] == "." else fn[:i]
    depth = 0
    for i in range(len(fn) - 1, -1, -1):
        c = fn[i]
        if c == ")":
            depth += 1
        elif c == "(":
            depth -= 1
            if depth == 0:
                # a receiver "(*T)" follows a dot; call arguments follow the name
                return fn if i > 0 and fn[i - 1] == "." else fn[:i]
    return fn


def iter_frames(text: str) -> Iterator[Frame]:
    """The frames of a Go stack trace, innermost first, read lazily; unknown lines are skipped."""
    pending: str | None = None
    for line in text.splitlines():
        if not line or line.isspace() or (line.startswith("goroutine ") and _GOROUTINE.match(line)):
            pending = None
            continue
        if line[0].isspace():
            fl = _FILE_LINE.match(line)
            if fl is not None and pending is not None:
                yield Frame(pending, fl.group(1))
            pending = None
            continue
        if line.startswith("created by "):
            created = _CREATED_BY.match(line.strip())
            pending = created.group(1) if created else _strip_args(line)
        else:
            pending = _strip_args(line)


def stack_key(text: str) -> str:
    """The text without what differs between two dumps of the same stack: goroutine ids, call
    arguments, pc offsets and frame pointers. Texts with the same key have the same frames
    (function names and file:line) in the same order, so the key can stand for the text in a memo."""
    return _VOLATILE.sub("", text)


def parse_stack(text: str) -> list[Frame]:
    """All frames of a Go stack trace, innermost first."""
    return list(iter_frames(text))


def _in_app(frame: Frame, prefixes: Sequence[str]) -> bool:
    return any(frame.function.startswith(p) or frame.file.startswith(p) for p in prefixes)


_PANIC_MARKERS: Final = ("panic(", "runtime.gopanic", "runtime.sigpanic", "runtime.panic", "runtime.goPanic")


def stack_top_frame(text: str, in_app_prefixes: Sequence[str] = (), *, skip_stdlib: bool = False) -> Frame | None:
    """:func:`top_frame` of a stack text, reading only as far as needed when it holds no panic.

    ``skip_stdlib`` (without ``in_app_prefixes``): prefer the first frame outside the Go
    standard library (:func:`is_stdlib`); when there is none, the usual rule.
    """
    frames: Sequence[Frame] | Iterator[Frame]
    if any(marker in text for marker in _PANIC_MARKERS):
        frames = parse_stack(text)
    else:
        frames = iter_frames(text)
    if skip_stdlib and not in_app_prefixes:
        listed = list(frames)
        app = [f for f in _after_panic(listed) if not is_stdlib(f.function)]
        return app[0] if app else top_frame(listed)
    return top_frame(frames, in_app_prefixes)


def is_stdlib(function: str) -> bool:
    """A function of the Go standard library (its import path's first element has no dot; ``main`` is not)."""
    path = function.split("(", 1)[0]
    slash = path.rfind("/")
    pkg = path[: path.find(".", slash + 1)] if "." in path[slash + 1 :] else path
    first = pkg.split("/", 1)[0]
    return first != "main" and "." not in first


def _after_panic(frames: Sequence[Frame]) -> Sequence[Frame]:
    for i in range(len(frames) - 1, -1, -1):
        fn = frames[i].function
        if fn == "panic" or fn.startswith(PANIC_PREFIXES):
            return frames[i + 1 :] or frames
    return frames


def top_frame(frames: Iterable[Frame], in_app_prefixes: Sequence[str] = ()) -> Frame | None:
    """The frame that stands for the error's place.

    In a panic's stack only the frames below the last ``panic``/``runtime.gopanic``/
    ``runtime.sigpanic`` count (the ones above it are ``debug.Stack`` and the deferred
    recover). Then, with ``in_app_prefixes``: the first frame whose function or file
    starts with one of them; without (or when none does): the first frame outside
    :data:`SKIP_PREFIXES`.
    """
    if isinstance(frames, Sequence):
        frames = _after_panic(frames)
    first_outside: Frame | None = None
    for frame in frames:
        outside = not frame.function.startswith(SKIP_PREFIXES)
        if not in_app_prefixes:
            if outside:
                return frame
            continue
        if _in_app(frame, in_app_prefixes):
            return frame
        if outside and first_outside is None:
            first_outside = frame
    return first_outside


LOGGING_MODULES: Final = (
    "go.uber.org/zap",
    "github.com/sirupsen/logrus",
    "github.com/rs/zerolog",
    "k8s.io/klog",
    "github.com/go-kit/log",
)
"""Logging libraries: the frames of a logger's own ``Panic`` in the runtime's dump that follows it."""


def _in_logging_library(frame: Frame) -> bool:
    # an inlined closure keeps the caller's name ("main.f.(*Logger).Panic.func1") but not its file
    return frame.function.startswith(LOGGING_MODULES) or any(m + "@" in frame.file for m in LOGGING_MODULES)


def panic_site(text: str) -> Frame | None:
    """Where a panic raised through a logger (``logger.Panic(…)``) was called: the first frame below the
    runtime's panic frames that is neither the Go standard library, a frame :func:`top_frame` skips,
    nor a logging library; None when there is none."""
    for frame in _after_panic(parse_stack(text)):
        if not (is_stdlib(frame.function) or frame.function.startswith(SKIP_PREFIXES) or _in_logging_library(frame)):
            return frame
    return None


def frames_text(frames: Sequence[Frame]) -> str:
    """Frames back in Go's two-line form (``function\\n\\tfile:line``)."""
    return "\n".join(f"{f.function}\n\t{f.file_line}" for f in frames)
