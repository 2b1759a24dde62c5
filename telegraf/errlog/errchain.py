"""Go error chains: ``fmt.Errorf("op: %w", err)`` text split back into its links."""

from __future__ import annotations

import re
from typing import Final

MAX_LINKS: Final = 32
_LABEL: Final = re.compile(r"[A-Z][A-Za-z]*")  # "Key: 'X' Error:…" (validator), "Error: …": a label, not a link
_OPEN: Final = {"(": ")", "[": "]", "{": "}"}
_CLOSE: Final = frozenset(_OPEN.values())


_NESTING: Final = re.compile(r"[\"`(\[{]")


def _plain_split(text: str) -> list[str]:
    pieces = text.split(": ")
    links: list[str] = []
    pending = ""
    for piece in pieces:
        if pending:
            piece = pending + ": " + piece
            pending = ""
        if _LABEL.fullmatch(piece.strip()) and len(links) < MAX_LINKS - 1:
            pending = piece
            continue
        links.append(piece)
    if pending:
        links.append(pending)
    if len(links) > MAX_LINKS:
        links = [*links[: MAX_LINKS - 1], ": ".join(links[MAX_LINKS - 1 :])]
    return [link.strip() for link in links if link.strip()]


def split_chain(error_text: str) -> list[str]:
    """The links of a wrapped error, outermost first.

    Splits on ``": "`` outside double quotes, backquotes and brackets, so a quoted URL
    or a map literal stays whole, and not after a single Capitalised word such as
    ``Key:`` (Go's wrapping ops are lower case; such a word is a label). Only the first
    line is read: ``errors.Join`` puts further errors on further lines, and the first
    one stands for the chain. At most 32 links; an empty text gives no links.
    """
    text = next((line for line in error_text.splitlines() if line.strip()), "")
    if not _NESTING.search(text):  # the common case: a plain split, in C
        return _plain_split(text)
    return _scan_split(text)


def _scan_split(text: str) -> list[str]:
    """The general case, character by character (quotes and brackets)."""
    links: list[str] = []
    start = 0
    depth = 0
    quote = ""
    i = 0
    n = len(text)
    while i < n:
        c = text[i]
        if quote:
            if c == "\\" and quote == '"':
                i += 2
                continue
            if c == quote:
                quote = ""
        elif c in ('"', "`"):
            quote = c
        elif c in _OPEN:
            depth += 1
        elif c in _CLOSE:
            depth = max(0, depth - 1)
        elif c == ":" and depth == 0 and i + 1 < n and text[i + 1] == " " and len(links) < MAX_LINKS - 1:
            link = text[start:i].strip()
            if _LABEL.fullmatch(link):
                i += 2
                continue
            if link:
                links.append(link)
            start = i + 2
            i += 2
            continue
        i += 1
    last = text[start:].strip()
    if last:
        links.append(last)
    return links
