"""Aggregates over the teams of one period: pooled rate, mean and median of team rates, goals.

The SQL layer computes most aggregates in the database (GROUP BY period); these helpers do the
same on small per-period lists in Python, and are the reference the SQL must agree with. A
missing value (None) is skipped everywhere; an empty input gives None (or 0 for counts).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence

from analytics.charts import Direction


def rate(
    numerator: float | None, denominator: float | None, multiplier: float = 1.0
) -> float | None:
    """numerator / denominator x multiplier; None when either is missing or denominator ≤ 0."""
    if numerator is None or denominator is None or denominator <= 0:
        return None
    return numerator / denominator * multiplier


def pooled_rate(
    numerators: Sequence[float | None],
    denominators: Sequence[float | None],
    multiplier: float = 1.0,
) -> float | None:
    """Σ numerators / Σ denominators x multiplier over the teams that reported both.

    Teams weigh by their denominators (unlike the mean of team rates). None when nothing was
    reported or the denominators add up to zero.
    """
    pairs = [
        (numerator, denominator)
        for numerator, denominator in zip(numerators, denominators, strict=True)
        if numerator is not None and denominator is not None
    ]
    total = math.fsum(denominator for _, denominator in pairs)
    if not pairs or total <= 0:
        return None
    return math.fsum(numerator for numerator, _ in pairs) / total * multiplier


def _present(values: Iterable[float | None]) -> list[float]:
    """The non-missing values."""
    return [value for value in values if value is not None]


def teams_reporting(rates: Iterable[float | None]) -> int:
    """How many teams have a value."""
    return len(_present(rates))


def mean_of_rates(rates: Iterable[float | None]) -> float | None:
    """Unweighted mean of the team rates (each team counts once)."""
    present = _present(rates)
    return math.fsum(present) / len(present) if present else None


def percentile_cont(values: Iterable[float | None], fraction: float) -> float | None:
    """PostgreSQL's ``percentile_cont(fraction)``: linear interpolation between sorted values.

    The value at position ``fraction x (n - 1)`` of the sorted values, interpolating between
    its neighbours; for 0.5 and an even count that is the mean of the two middle values.
    """
    ordered = sorted(_present(values))
    if not ordered:
        return None
    fraction = min(max(fraction, 0.0), 1.0)
    position = fraction * (len(ordered) - 1)
    below = math.floor(position)
    above = math.ceil(position)
    if below == above:
        return ordered[below]
    return ordered[below] + (ordered[above] - ordered[below]) * (position - below)


def median_of_rates(rates: Iterable[float | None]) -> float | None:
    """The median team rate exactly as ``percentile_cont(0.5)`` computes it."""
    return percentile_cont(rates, 0.5)


def meets_goal(value: float | None, goal: float | None, direction: str) -> bool | None:
    """Whether ``value`` reaches ``goal`` in the improvement direction (the goal itself counts).

    INCREASE: value ≥ goal; DECREASE: value ≤ goal. None when the value or the goal is missing.
    """
    if value is None or goal is None:
        return None
    if Direction(direction) is Direction.INCREASE:
        return value >= goal
    return value <= goal


def teams_meeting_goal(
    rates: Iterable[float | None], goal: float | None, direction: str
) -> int | None:
    """How many team rates reach the goal; None when the measure has no goal."""
    if goal is None:
        return None
    return sum(1 for value in rates if meets_goal(value, goal, direction))
