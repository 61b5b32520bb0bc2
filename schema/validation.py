"""Input checks shared by every mutation: codes, text (no NUL bytes, bounded length)."""

from __future__ import annotations

import re

from db.errors import InvalidInput

CONTROL_CHARACTERS = re.compile(r"[\x01-\x08\x0b\x0c\x0e-\x1f\x7f]")
"""C0 controls and DEL, except tab, line feed and carriage return (NUL is reported apart)."""
CODE_PATTERN = re.compile(r"^[a-z0-9][a-z0-9._-]{0,63}$")
"""Codes are lower-case, 1-64 characters: letters, digits, dot, dash, underscore."""


def check_code(value: str, field: str) -> str:
    """A valid code, or InvalidInput naming ``field``."""
    if not CODE_PATTERN.match(value):
        raise InvalidInput(
            "a code is 1-64 characters of a-z, 0-9, '.', '-', '_' and starts with a letter or"
            " digit",
            field=field,
        )
    return value


def check_text(value: str | None, field: str, *, max_length: int, required: bool = False) -> None:
    """Text without NUL bytes (PostgreSQL rejects them) or other control characters (terminal
    escapes in names end up in exports and logs), and within ``max_length``."""
    if value is None:
        if required:
            raise InvalidInput(f"{field} is required", field=field)
        return
    if "\x00" in value:
        raise InvalidInput("text must not contain NUL bytes", field=field)
    if CONTROL_CHARACTERS.search(value):
        raise InvalidInput(
            "text must not contain control characters (tab and line breaks are fine)",
            field=field,
        )
    if len(value) > max_length:
        raise InvalidInput(f"text is longer than {max_length} characters", field=field)
    if required and not value.strip():
        raise InvalidInput(f"{field} must not be empty", field=field)
