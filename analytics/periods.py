"""Calendar months written ``YYYY-MM``: parsing and month arithmetic for series of periods.

A period is kept as its text everywhere (it sorts in time order); these helpers convert it to a
month number (``year * 12 + month - 1``) when arithmetic is needed. The accepted range matches the
GraphQL ``Period`` scalar: years 1900-9999, months 01-12. Nothing here raises on a valid period;
invalid text raises ``ValueError`` from :func:`parse_period` only.
"""

from __future__ import annotations

import re

PERIOD_PATTERN = re.compile(r"(\d{4})-(\d{2})")
"""``YYYY-MM`` with exactly four year digits and two month digits (use with ``fullmatch``)."""

MIN_YEAR = 1900
MAX_YEAR = 9999


def parse_period(text: str) -> tuple[int, int]:
    """``(year, month)`` of a ``YYYY-MM`` period, or ``ValueError`` saying what is wrong."""
    match = PERIOD_PATTERN.fullmatch(text)
    if match is None:
        raise ValueError(f"{text!r} is not a period 'YYYY-MM'")
    year, month = int(match.group(1)), int(match.group(2))
    if not MIN_YEAR <= year <= MAX_YEAR:
        raise ValueError(f"the year of a period is between {MIN_YEAR} and {MAX_YEAR}")
    if not 1 <= month <= 12:
        raise ValueError("the month of a period is between 01 and 12")
    return year, month


def is_period(text: object) -> bool:
    """Whether ``text`` is a valid ``YYYY-MM`` period (never raises)."""
    if not isinstance(text, str):
        return False
    try:
        parse_period(text)
    except ValueError:
        return False
    return True


def format_period(year: int, month: int) -> str:
    """The ``YYYY-MM`` text of a month; ``ValueError`` outside the accepted range."""
    if not (MIN_YEAR <= year <= MAX_YEAR and 1 <= month <= 12):
        raise ValueError(f"no period for year {year} month {month}")
    return f"{year:04d}-{month:02d}"


def month_index(period: str) -> int:
    """A month number that increases by one per month (``year * 12 + month - 1``)."""
    year, month = parse_period(period)
    return year * 12 + month - 1


def period_from_index(index: int) -> str:
    """The period of a month number made by :func:`month_index`."""
    year, month0 = divmod(index, 12)
    return format_period(year, month0 + 1)


def add_months(period: str, months: int) -> str:
    """The period ``months`` months after ``period`` (before it when negative)."""
    return period_from_index(month_index(period) + months)


def next_month(period: str) -> str:
    """The month after ``period``."""
    return add_months(period, 1)


def previous_month(period: str) -> str:
    """The month before ``period``."""
    return add_months(period, -1)


def months_between(start: str, end: str) -> int:
    """How many months ``end`` is after ``start`` (0 for the same month, negative if before)."""
    return month_index(end) - month_index(start)


def month_range(start: str, end: str) -> list[str]:
    """Every month from ``start`` to ``end`` inclusive, in order; empty when ``end`` < ``start``."""
    first, last = month_index(start), month_index(end)
    return [period_from_index(index) for index in range(first, last + 1)]
