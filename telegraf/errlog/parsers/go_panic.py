"""Go panics and fatal runtime errors, as the runtime prints them to stderr (a multi-line record).

::

    panic: runtime error: invalid memory address or nil pointer dereference   (or: fatal error: …)
    [signal SIGSEGV: segmentation violation code=0x1 addr=0x0 pc=0x5a2520]

    goroutine 8 [running]:
    main.total(0x0?)
        /src/main.go:144
    created by main.main in goroutine 1
        /src/main.go:189 +0x1a7

    goroutine 1 [chan receive]:
    …

The message is the panic value (the first ``panic:`` line, without `` [recovered…]``;
``fatal error: X`` gives ``X``, with the ``runtime: …`` line before it, if any, as the
error; ``SIGQUIT: quit`` of a signal dump is the message as it is). The first goroutine
block is the one that panicked (with ``GOTRACEBACK=all`` the others follow it): its id
and its frames (with its ``created by`` line) become the record's goroutine id and stack.
Level ``panic`` for a panic, ``fatal`` for a fatal error or a signal dump. The record is
recognised by its first line alone. net/http's log of a recovered handler panic
(``2024/11/27 13:03:45 http: panic serving 10.0.0.9:51234: VALUE`` and the goroutine
under it) is one too: the value is the message, the time that of the log line.
"""

from __future__ import annotations

import re
from typing import Final

from errloop.telegraf.errlog.parsers.base import Record
from errloop.telegraf.errlog.parsers.stdlog import StdlogParser

_GOROUTINE: Final = re.compile(r"^goroutine (\d+)(?: gp=\S+ m=\S+(?: mp=\S+)?)? \[([^\]]*)\]:\s*$")
_RECOVERED: Final = re.compile(r"\s*\[recovered(?:, repanicked)?\]\s*$")
_SIGNAL: Final = re.compile(r"^\[signal (\S+?):? ")
_SIGNAL_DUMP: Final = re.compile(r"^(SIG[A-Z]{2,8}): (.*)$")
_HTTP_PANIC: Final = re.compile(r"\bhttp: panic serving (\S+): (.*)$")
_STDLOG: Final = StdlogParser()
STARTERS: Final = ("panic: ", "fatal error: ", "runtime: ", "[signal ", "goroutine ", "SIG")


class GoPanicParser:
    """Go panic and fatal-error dumps; see the module docstring."""

    name: str = "go_panic"

    def parse(self, line: str) -> Record | None:
        if not line.startswith(STARTERS):
            # the marker within the first 200 characters (found without copying them)
            return self._http_panic(line) if line.find("http: panic serving ", 0, 200) >= 0 else None
        lines = line.splitlines()
        panics: list[str] = []
        fatal = ""
        runtime_notes: list[str] = []
        signal = signal_text = ""
        recovered = False
        goroutine_id: int | None = None
        state = ""
        stack: list[str] = []
        i = 0
        while i < len(lines):
            ln = lines[i]
            g = _GOROUTINE.match(ln)
            if g is not None:
                goroutine_id, state = int(g.group(1)), g.group(2)
                i += 1
                while i < len(lines) and lines[i].strip() and not _GOROUTINE.match(lines[i]):
                    stack.append(lines[i])
                    i += 1
                break
            s = ln.strip()
            if s.startswith("panic: "):
                value = s[len("panic: ") :]
                if _RECOVERED.search(value):
                    recovered = True
                    value = _RECOVERED.sub("", value)
                panics.append(value)
            elif s.startswith("fatal error: "):
                fatal = s[len("fatal error: ") :]
            elif s.startswith("runtime: "):
                runtime_notes.append(s[len("runtime: ") :])
            elif (sig := _SIGNAL.match(s)) is not None:
                signal = sig.group(1)
            elif (dump := _SIGNAL_DUMP.match(s)) is not None and not signal:
                signal, signal_text = dump.group(1), s
            i += 1
        if not panics and not fatal and not signal_text and goroutine_id is None:
            return None
        message = (
            panics[0] if panics else fatal or signal_text or (runtime_notes[0] if runtime_notes else "goroutine dump")
        )
        error = message
        if fatal and runtime_notes and not panics:
            error = runtime_notes[0]  # "out of memory: cannot allocate 67108864-byte block (…)"
        extra: dict[str, object] = {}
        if signal:
            extra["signal"] = signal
        if state:
            extra["goroutine_state"] = state
        if recovered:
            extra["recovered"] = True
        if len(panics) > 1:
            extra["panics"] = panics
        return Record(
            format=self.name,
            level="panic" if panics else "fatal",
            message=message,
            error=error,
            stacktrace="\n".join(stack),
            goroutine_id=goroutine_id,
            extra=extra,
        )

    def _http_panic(self, text: str) -> Record | None:
        """net/http's ``http: panic serving ADDR: VALUE`` (a log-package line) and the stack under it."""
        first, _, rest = text.partition("\n")
        m = _HTTP_PANIC.search(first)
        if m is None:
            return None
        head = _STDLOG.parse(first)
        dump = self.parse(rest) if rest.startswith("goroutine ") else None
        extra: dict[str, object] = {"remote_addr": m.group(1)}
        if dump is not None:
            extra.update(dump.extra)
        return Record(
            format=self.name,
            level="panic",
            message=m.group(2),
            ts_ns=head.ts_ns if head is not None else None,
            caller=head.caller if head is not None else "",
            error=m.group(2),
            stacktrace=dump.stacktrace if dump is not None else "",
            goroutine_id=dump.goroutine_id if dump is not None else None,
            extra=extra,
        )
