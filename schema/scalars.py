"""Custom scalars: ``Period`` (a calendar month, ``YYYY-MM``) and ``Count`` (a 53-bit count),
registered through ``SCALAR_MAP``.

Fields and arguments are annotated with the ``NewType``s below; :data:`SCALAR_MAP` (passed to the
schema's ``StrawberryConfig``) tells strawberry how each one crosses the wire. Passing the type to
``strawberry.scalar`` directly is deprecated in strawberry 0.341 (and a warning is an error in
the tests).

A period travels as its ``YYYY-MM`` text, which is also how it is stored and sorts in time order.
Parsing rejects anything else (month 01-12, year 1900-9999) so that a bad period is a GraphQL
validation error before any resolver runs, for variables and literals alike. The parser raises a
``GraphQLError`` with ``extensions.code = "VALIDATION"`` rather than a ``ValueError``: graphql-core
keeps a ``ValueError`` as ``original_error``, and error masking would hide it.

``DateTime`` is strawberry's, plus a range check: an offset that moves the instant out of the
years 1-9999 in UTC (``9999-12-31T23:59:59-14:00``) is a VALIDATION error here instead of an
``OverflowError`` when the value is converted to UTC for the database.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, NewType

import strawberry
from graphql import GraphQLError
from strawberry.schema.types.base_scalars import DateTimeDefinition
from strawberry.types.scalar import ScalarDefinition

Period = NewType("Period", str)
"""A calendar month ``YYYY-MM``; the Python value is the text itself."""

PERIOD_PATTERN = re.compile(r"(\d{4})-(\d{2})")
"""``YYYY-MM`` with exactly four year digits and two month digits (use with ``fullmatch``)."""

MIN_YEAR = 1900
MAX_YEAR = 9999


def period_problem(value: Any) -> str | None:
    """Why ``value`` is not a period, or None when it is one."""
    if not isinstance(value, str):
        return "a Period is a string 'YYYY-MM'"
    match = PERIOD_PATTERN.fullmatch(value)
    if match is None:
        return f"{value!r} is not a Period 'YYYY-MM'"
    year, month = int(match.group(1)), int(match.group(2))
    if not MIN_YEAR <= year <= MAX_YEAR:
        return f"the year of a Period is between {MIN_YEAR} and {MAX_YEAR}"
    if not 1 <= month <= 12:
        return "the month of a Period is between 01 and 12"
    return None


def parse_period(value: Any) -> Period:
    """An input period, or a public VALIDATION error saying what is wrong with it."""
    problem = period_problem(value)
    if problem is not None:
        raise GraphQLError(problem, extensions={"code": "VALIDATION"})
    return Period(value)


def serialize_period(value: Any) -> str:
    """Periods leave as their stored ``YYYY-MM`` text (checked, so a bad row never leaks out)."""
    problem = period_problem(value)
    if problem is not None:
        raise ValueError(problem)
    return str(value)


Count = NewType("Count", int)
"""A numerator or denominator. On input it is any JSON number, so that a fraction or a negative
number can be reported for its own row (INVALID_COUNT) instead of failing the whole request; on
output a whole number up to 2^53 - 1 (GraphQL ``Int`` stops at 2^31 - 1)."""


def parse_count(value: Any) -> Any:
    """An input count: any JSON number (checked per row later), else a VALIDATION error."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise GraphQLError("a Count is a JSON number", extensions={"code": "VALIDATION"})
    return value


def serialize_count(value: Any) -> int:
    """Counts leave as JSON integers."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError("a Count is a whole number")
    return value


def parse_datetime(value: Any) -> datetime:
    """strawberry's ISO 8601 parsing, refusing instants that cannot be expressed in UTC."""
    assert DateTimeDefinition.parse_value is not None
    parsed = DateTimeDefinition.parse_value(value)
    assert isinstance(parsed, datetime)
    try:
        parsed.astimezone(UTC) if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)
    except OverflowError:
        raise GraphQLError(
            "a DateTime lies between 0001-01-01 and 9999-12-31 in UTC",
            extensions={"code": "VALIDATION"},
        ) from None
    return parsed


SCALAR_MAP: Mapping[object, ScalarDefinition] = {
    datetime: dataclasses.replace(DateTimeDefinition, parse_value=parse_datetime),
    Period: strawberry.scalar(
        name="Period",
        description="A calendar month written 'YYYY-MM' (e.g. '2024-03').",
        serialize=serialize_period,
        parse_value=parse_period,
    ),
    Count: strawberry.scalar(
        name="Count",
        description=(
            "A count: a whole number from 0 to 9007199254740991 (2^53 - 1), written as a JSON "
            "number. Inputs accept any number; mutations report values that are not counts per "
            "row (INVALID_COUNT)."
        ),
        serialize=serialize_count,
        parse_value=parse_count,
    ),
}
"""Every custom scalar of the schema, for ``StrawberryConfig(scalar_map=...)``."""
