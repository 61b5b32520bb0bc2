"""Helpers for text filters shared by the query modules."""

from __future__ import annotations

from typing import Any

from sqlalchemy import ColumnElement, or_

LIKE_ESCAPE = "\\"


def contains_pattern(term: str) -> str:
    """A LIKE pattern matching ``term`` anywhere, with LIKE's metacharacters escaped."""
    escaped = term.replace(LIKE_ESCAPE, LIKE_ESCAPE * 2).replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def matches_any(term: str, *columns: Any) -> ColumnElement[bool]:
    """Case-insensitive substring match of ``term`` in any of ``columns`` (both backends)."""
    pattern = contains_pattern(term)
    return or_(*(column.ilike(pattern, escape=LIKE_ESCAPE) for column in columns))
