"""The one rule every identifier follows (SKU, order id, assembly, collection, partner-side ids), wherever it
comes from: files, feed pages, the command line and the platform API.

An identifier is 1 to 128 characters, holds no control character (C0, DEL, C1, U+2028 and U+2029) and has no
leading or trailing whitespace. It is taken as given: nothing is trimmed or folded, so what the partner sent is
what the store keeps, and a padded or dirty value is refused with a reason instead of silently becoming
another SKU.
"""

from __future__ import annotations

import re

MAX_LENGTH = 128

# C0 controls, DEL, C1 controls, LINE SEPARATOR and PARAGRAPH SEPARATOR
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029]")
# the same set, for a JSON Schema / pydantic pattern (a whole value free of them)
PATTERN = r"^[^\x00-\x1f\x7f-\x9f\u2028\u2029]+$"
# a code point of a UTF-16 pair on its own: JSON's "\ud800" decodes to one, and no encoder can write it back
_SURROGATE = re.compile("[\ud800-\udfff]")
# what a terminal must never receive raw: the controls, lone surrogates, and the marks and overrides that
# reorder what it shows (U+200E/F, U+202A-E, U+2066-9)
_UNSHOWABLE = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029\ud800-\udfff\u200e\u200f\u202a-\u202e\u2066-\u2069]")


def problem(value: str) -> str | None:
    """Why `value` is not an identifier (one short phrase), or None when it is one."""
    if not value:
        return "must not be empty"
    if len(value) > MAX_LENGTH:
        return f"longer than {MAX_LENGTH} characters"
    if _CONTROL.search(value):
        return "contains control characters"
    if _SURROGATE.search(value):
        return "contains an unpaired surrogate"
    if value != value.strip():
        return "has leading or trailing whitespace"
    return None


def has_controls(text: str) -> bool:
    """Whether `text` holds a control character of the rule's set (C0, DEL, C1, U+2028, U+2029)."""
    return _CONTROL.search(text) is not None


def is_valid(value: str) -> bool:
    """Whether `value` follows the identifier rule."""
    return problem(value) is None


def escape_controls(text: str) -> str:
    """`text` fit for a terminal: every control character, lone surrogate and direction mark or override shown
    as an escape (\\x00, \\u2028, \\u202e), never sent raw."""
    return _UNSHOWABLE.sub(_escaped, text)


def _escaped(match: re.Match[str]) -> str:
    char = match.group()
    code = ord(char)
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def channel_problem(assembly: str | None, collection: str | None) -> str | None:
    """Why an (assembly, collection) pair naming a channel is not one, or None: both given (each an identifier)
    or neither."""
    if (assembly is None) != (collection is None):
        return "assembly and collection go together"
    for field, value in (("assembly", assembly), ("collection", collection)):
        why = None if value is None else problem(value)
        if why is not None:
            return f"{field}: {why}"
    return None
