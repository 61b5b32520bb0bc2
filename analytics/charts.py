"""The shared vocabulary of run and control charts: enums, signals, and the series layout.

Conventions used by :mod:`analytics.runs` and :mod:`analytics.control`:

* A series is a sequence of values in time order; ``None`` is a missing value (a month without
  data). Missing values are skipped by every rule and get no limits.
* ``freeze``, ``parts`` and ``exclude`` take **1-based positions** exactly like qicharts2's
  ``freeze``, ``part`` and ``exclude`` arguments: ``parts=[24]`` makes part 1 the points 1-24 and
  part 2 the rest; ``freeze=12`` computes the centre line (and limits) from points 1-12 only and
  applies them to the whole series; ``exclude=[5]`` shows point 5 but leaves it out of the centre
  line, the limits and the run rules.
* Everything a chart **returns** (signal indices, ``from_index``/``to_index`` of parts) uses
  **0-based** positions in the series, so the caller can map them straight to its periods.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Sequence
from dataclasses import dataclass


class SignalRule(enum.StrEnum):
    """A rule that found non-random (special cause) variation."""

    SHIFT = "SHIFT"
    """IHI: 6+ useful points on one side of the median; MDC: 7+ points on one side of the mean."""
    TREND = "TREND"
    """IHI: 5+ points all going up or all going down (repeats skipped); MDC: 7+ (ties break)."""
    TOO_FEW_RUNS = "TOO_FEW_RUNS"
    """IHI: fewer runs than the lower limit of the published runs table."""
    TOO_MANY_RUNS = "TOO_MANY_RUNS"
    """IHI: more runs than the upper limit of the published runs table."""
    LONG_RUN = "LONG_RUN"
    """Anhøj: a run longer than round(log2(n)) + 3 useful points."""
    FEW_CROSSINGS = "FEW_CROSSINGS"
    """Anhøj: fewer crossings of the centre line than qbinom(0.05, n - 1, 0.5)."""
    OUTSIDE_LIMITS = "OUTSIDE_LIMITS"
    """A point strictly beyond a control limit (a point exactly on a limit is not a signal)."""
    TWO_OF_THREE_BEYOND_TWO_SIGMA = "TWO_OF_THREE_BEYOND_TWO_SIGMA"
    """MDC: 2 of 3 points between 2 and 3 sigma, all 3 on the same side of the mean."""


class ControlChartType(enum.StrEnum):
    """Shewhart chart types (qicharts2 ``chart`` argument in capitals)."""

    P = "P"
    U = "U"
    C = "C"
    I = "I"  # noqa: E741 - the chart is called I
    MR = "MR"
    P_PRIME = "P_PRIME"
    U_PRIME = "U_PRIME"


class RunChartRules(enum.StrEnum):
    """Which rule set interprets a run chart."""

    ANHOEJ = "ANHOEJ"
    IHI = "IHI"


class ControlChartRules(enum.StrEnum):
    """Which rule set interprets a control chart."""

    ANHOEJ = "ANHOEJ"
    MDC = "MDC"


class Side(enum.StrEnum):
    """Where a signal points: above the centre line or increasing (HIGH), or the opposite."""

    HIGH = "HIGH"
    LOW = "LOW"


class Variation(enum.StrEnum):
    """A special cause judged against the measure's improvement direction."""

    IMPROVEMENT = "IMPROVEMENT"
    CONCERN = "CONCERN"


class Direction(enum.StrEnum):
    """Which way is better (same values as ``db.enums.ImprovementDirection``)."""

    INCREASE = "INCREASE"
    DECREASE = "DECREASE"


@dataclass(frozen=True)
class Signal:
    """One occurrence of a rule: the 0-based positions it covers, its side and its meaning.

    ``side`` is None for rules without a direction (too few/many runs, few crossings);
    ``variation`` is None when the side or the improvement direction is unknown.
    """

    rule: SignalRule
    indices: tuple[int, ...]
    side: Side | None = None
    variation: Variation | None = None


def variation_for(side: Side | None, direction: str | None) -> Variation | None:
    """IMPROVEMENT when the signal points the way that is better, CONCERN when the other way."""
    if side is None or direction is None:
        return None
    better = Side.HIGH if Direction(direction) is Direction.INCREASE else Side.LOW
    return Variation.IMPROVEMENT if side is better else Variation.CONCERN


def make_signal(
    rule: SignalRule,
    indices: Iterable[int],
    side: Side | None,
    direction: str | None,
) -> Signal:
    """A signal over sorted unique ``indices``, tagged from the improvement direction."""
    return Signal(rule, tuple(sorted(set(indices))), side, variation_for(side, direction))


def chart_type_for_scoring(scoring: str | None) -> ControlChartType:
    """The control chart for a measure's scoring: PROPORTION→P, RATE→U, COUNT→C, others→I.

    ``scoring`` is a ``db.enums.Scoring`` value (or its text); MEAN, RATIO, unknown and None all
    get the individuals (XmR) chart, which makes no distributional assumption.
    """
    return {
        "PROPORTION": ControlChartType.P,
        "RATE": ControlChartType.U,
        "COUNT": ControlChartType.C,
    }.get(str(scoring) if scoring is not None else "", ControlChartType.I)


@dataclass(frozen=True)
class SeriesLayout:
    """How a series of ``n`` points splits into parts, baseline and excluded points (0-based)."""

    parts: tuple[range, ...]
    """Consecutive 0-based position ranges covering the series, one per part."""
    baseline: tuple[bool, ...]
    """Whether each point belongs to the frozen baseline (all True when nothing is frozen)."""
    included: tuple[bool, ...]
    """False for excluded points: shown, but left out of centre lines, limits and run rules."""


def series_layout(
    n: int,
    *,
    freeze: int | None = None,
    parts: Sequence[int] = (),
    exclude: Iterable[int] = (),
) -> SeriesLayout:
    """Parts, baseline and exclusions of a series, from qicharts2-style 1-based positions.

    Matches qicharts2: cut positions outside 1..n-1 are ignored, duplicates collapse, and
    ``freeze`` is ignored when ``parts`` are given (qicharts2 sets ``freeze <- Inf`` then).
    ``freeze`` below 1 leaves an empty baseline, so no centre line can be computed; positions in
    ``exclude`` outside 1..n are ignored.
    """
    cuts = sorted({cut for cut in parts if 0 < cut < n})
    bounds = [0, *cuts, n]
    part_ranges = tuple(range(bounds[i], bounds[i + 1]) for i in range(len(bounds) - 1) if n)
    if freeze is None or len(parts) > 0:
        baseline = (True,) * n
    else:
        baseline = tuple(position < freeze for position in range(n))
    excluded = {position - 1 for position in exclude if 1 <= position <= n}
    included = tuple(position not in excluded for position in range(n))
    return SeriesLayout(part_ranges, baseline, included)
