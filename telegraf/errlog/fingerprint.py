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
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from typing import Final

from errloop.telegraf.errlog.mask import mask_message

CURRENT: Final = 1

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


Algorithm = Callable[..., str]
VERSIONS: Final[dict[int, Algorithm]] = {1: fingerprint_v1}


def fingerprint(
    *, error_type: str, root_cause: str, top_frame: str, caller: str, template: str, version: int = CURRENT
) -> str:
    """The fingerprint by ``version`` (KeyError for an unknown one; config validation catches it first)."""
    return VERSIONS[version](
        error_type=error_type, root_cause=root_cause, top_frame=top_frame, caller=caller, template=template
    )
