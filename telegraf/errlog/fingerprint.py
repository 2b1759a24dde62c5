"""Error fingerprints: the same error with other parameters → the same fingerprint.

Versioned like Sentry's grouping configs: a released version never changes its
output; a fix is a new version, selected by config (``fingerprint_version``), and the
old one stays callable. :data:`CURRENT` is what new installs use.

v1 (published in the plugin README)::

    kind  = error_type            the type the line names (``%T``), unless it is one of
                                  GENERIC_ERROR_TYPES (errors.New, fmt.Errorf %w, …): ""
    cause = mask(root_cause)      the innermost link of the error chain, masked ("" if none)
    place = top_frame             function of the top in-app frame of the stack
            caller file           else the logging call's file without ":line"
            ""
    fingerprint = blake2b("\\x1f".join(["errloop-fp", "v1", kind, cause, place, template]),
                          digest_size=8).hexdigest()          # 16 hex characters

where ``template`` is the masked message (mask.mask_message) and the text is UTF-8.
A wrapper type says nothing about the error (every ``fmt.Errorf("…: %w", err)`` is a
``*fmt.wrapError``), so only specific types count, and always beside the cause text.

v2 (the default) is v1, except for errors that name Go struct fields in quotes, as
go-playground/validator does (``Key: 'CreateUserRequest.Name' Error:Field validation for
'Name' failed on the 'required' tag``): masking turns every quoted text into ``<str>``, so
v1 gives a missing name and an invalid e-mail one fingerprint. v2 keeps the quoted
qualified Go identifiers (``'Type.Field'``, ``"pkg.Type.Field"``: an upper-case start and at
least one dot) of the root cause and the message, sorted and without repeats::

    names = sorted(set(qualified identifiers in quotes))     # at most 16, from the first 4096 chars
    fingerprint = v1 fingerprint                              if not names
                  blake2b("\\x1f".join(["errloop-fp", "v2", kind, cause, place, template,
                                        ",".join(names)]), digest_size=8).hexdigest()

so the fingerprints of every other error stay those of v1.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable
from typing import Final

from errloop.telegraf.errlog.mask import mask_message

CURRENT: Final = 2

GENERIC_ERROR_TYPES: Final = frozenset(
    {
        "*errors.errorString",  # errors.New
        "*errors.joinError",  # errors.Join
        "*fmt.wrapError",  # fmt.Errorf with %w
        "*fmt.wrapErrors",  # fmt.Errorf with several %w
        "*errors.fundamental",  # github.com/pkg/errors.New
        "*errors.withStack",  # pkg/errors.Wrap / WithStack
        "*errors.withMessage",  # pkg/errors.WithMessage
    }
)
"""Error types (as ``%T`` prints them) that only carry text or wrap another error."""


def fingerprint_v1(*, error_type: str, root_cause: str, top_frame: str, caller: str, template: str) -> str:
    """Fingerprint v1 (see the module docstring); 16 lower-case hex characters."""
    kind = "" if error_type in GENERIC_ERROR_TYPES else error_type
    cause = mask_message(root_cause) if root_cause else ""
    place = top_frame or (caller.rsplit(":", 1)[0] if caller else "")
    text = "\x1f".join(("errloop-fp", "v1", kind, cause, place, template))
    return hashlib.blake2b(text.encode("utf-8", "surrogatepass"), digest_size=8).hexdigest()


# a quoted qualified Go identifier: 'CreateUserRequest.Name', "api.User.Email" (linear: each repeat starts at a dot)
_QUALIFIED: Final = re.compile(r"""['"`]([A-Z][A-Za-z0-9_]{0,127}(?:\.[A-Za-z_][A-Za-z0-9_]{0,127}){1,8})['"`]""")
_SCAN_CHARS: Final = 4096
_MAX_NAMES: Final = 16


def qualified_names(*texts: str) -> list[str]:
    """The quoted qualified Go identifiers of ``texts`` (first 4096 characters each), sorted, at most 16."""
    found: set[str] = set()
    for text in texts:
        if text and ("'" in text or '"' in text or "`" in text):
            found.update(_QUALIFIED.findall(text, 0, _SCAN_CHARS))
    return sorted(found)[:_MAX_NAMES]


def fingerprint_v2(
    *, error_type: str, root_cause: str, top_frame: str, caller: str, template: str, message: str = ""
) -> str:
    """Fingerprint v2 (see the module docstring): v1, told apart by the Go struct fields an error names."""
    names = qualified_names(root_cause, message)
    if not names:
        return fingerprint_v1(
            error_type=error_type, root_cause=root_cause, top_frame=top_frame, caller=caller, template=template
        )
    kind = "" if error_type in GENERIC_ERROR_TYPES else error_type
    cause = mask_message(root_cause) if root_cause else ""
    place = top_frame or (caller.rsplit(":", 1)[0] if caller else "")
    text = "\x1f".join(("errloop-fp", "v2", kind, cause, place, template, ",".join(names)))
    return hashlib.blake2b(text.encode("utf-8", "surrogatepass"), digest_size=8).hexdigest()


def _v1(*, message: str = "", **inputs: str) -> str:
    return fingerprint_v1(**inputs)


Algorithm = Callable[..., str]
VERSIONS: Final[dict[int, Algorithm]] = {1: _v1, 2: fingerprint_v2}


def fingerprint(
    *,
    error_type: str,
    root_cause: str,
    top_frame: str,
    caller: str,
    template: str,
    message: str = "",
    version: int = CURRENT,
) -> str:
    """The fingerprint by ``version`` (KeyError for an unknown one; config validation catches it first)."""
    return VERSIONS[version](
        error_type=error_type,
        root_cause=root_cause,
        top_frame=top_frame,
        caller=caller,
        template=template,
        message=message,
    )
