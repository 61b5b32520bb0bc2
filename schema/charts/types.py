"""``runChart`` and ``controlChart`` of any series, computed by :mod:`analytics` in Python.

A series type that can be charted implements the interface :class:`ChartedSeries` and provides
its points with :meth:`ChartedSeries.chart_input`; the charts are then computed from points the
series has already loaded (no SQL per chart). Two conventions every chart follows:

* **Gapless months.** A chart's points are every month from the series' first to its last period
  with data; a month without a value is a point with ``value: null``. The rules therefore see the
  gaps (a missing month is skipped by every rule and gets no limits, as ``analytics`` documents),
  and the 1-based positions of ``freeze``, ``parts`` and ``exclude`` count those months too.
* **Units.** Values, centre lines and limits are in the measure's displayed unit (x its
  multiplier); P, U, P' and U' charts are computed on numerator / denominator and then multiplied
  by the multiplier of the measure's current definition (qicharts2's ``multiply``).

Arguments are checked before anything is computed: ``freeze`` within 1..n, ``parts`` within
1..n-1 and ``exclude`` within 1..n (n = number of chart points), both lists strictly increasing
(sorted, no duplicates), ``freeze`` and ``parts`` not together (qicharts2 silently ignores
``freeze`` then), and P, U, P', U' charts only for measures scored with a numerator and a
denominator. A bad argument is a top-level VALIDATION error.

A chart that cannot be computed says so rather than computing something else: ``computable:
false`` with a ``reason`` (NO_DATA, or SUPPRESSED when the reader's suppression policy hides any of
the series' values) and empty parts, points and signals.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass
from itertools import pairwise
from typing import Annotated

import strawberry

from analytics import charts as analytics_charts
from analytics.charts import (
    ControlChartRules,
    ControlChartType,
    RunChartRules,
    Side,
    Signal,
    SignalRule,
    Variation,
    chart_type_for_scoring,
)
from analytics.control import ControlChartPart as AnalyticsControlPart
from analytics.control import control_chart
from analytics.periods import month_range
from analytics.runs import ChartPart, run_chart
from db.enums import Scoring
from schema.context import Info
from schema.errors import invalid_argument
from schema.scalars import Count, Period

strawberry.enum(
    analytics_charts.SignalRule,
    description="A rule that found special-cause (non-random) variation.",
)
strawberry.enum(
    analytics_charts.ControlChartType,
    description=(
        "Shewhart chart: P (proportions), U (rates), C (counts), I (individuals, XmR), MR "
        "(moving ranges), P_PRIME and U_PRIME (Laney's P' and U' for very large denominators)."
    ),
)
strawberry.enum(
    analytics_charts.RunChartRules,
    description="Rules of a run chart: ANHOEJ (qicharts2's default) or IHI (Perla et al. 2011).",
)
strawberry.enum(
    analytics_charts.ControlChartRules,
    description=(
        "Rules of a control chart: ANHOEJ (qicharts2: limits at 3 sigma with MR/1.128, Anhøj run "
        "rules) or MDC (NHS Making Data Count: 2.66 x MR, 7-point shift and trend, 2 of 3 "
        "beyond 2 sigma)."
    ),
)
strawberry.enum(
    analytics_charts.Variation,
    description="A special cause judged against the measure's improvement direction.",
)
strawberry.enum(
    analytics_charts.Side,
    name="SignalSide",
    description="HIGH: above the centre line or going up; LOW: below it or going down.",
)

RATIO_SCORINGS = frozenset({Scoring.PROPORTION, Scoring.RATE, Scoring.RATIO})
"""Scorings whose points carry a numerator and a denominator."""
COUNT_CHARTS = frozenset(
    {ControlChartType.P, ControlChartType.U, ControlChartType.P_PRIME, ControlChartType.U_PRIME}
)
"""Charts computed from numerators and denominators."""


@strawberry.enum(description="Why a chart could not be computed.")
class ChartUnavailableReason(enum.Enum):
    NO_DATA = "NO_DATA"
    SUPPRESSED = "SUPPRESSED"


@dataclass(frozen=True)
class ChartPointInput:
    """One period of a series as charts read it."""

    period: str
    value: float | None
    numerator: int | None = None
    denominator: int | None = None


@dataclass(frozen=True)
class ChartInput:
    """A series laid out as gapless months, with what its measure says about it."""

    periods: tuple[str, ...]
    values: tuple[float | None, ...]
    numerators: tuple[int | None, ...]
    denominators: tuple[int | None, ...]
    scoring: Scoring
    multiplier: float
    direction: str | None
    unavailable: ChartUnavailableReason | None = None


def chart_input(
    points: Sequence[ChartPointInput],
    *,
    scoring: Scoring,
    multiplier: float,
    direction: str | None,
    unavailable: ChartUnavailableReason | None = None,
) -> ChartInput:
    """Every month from the first to the last period of ``points`` (missing months as None).

    Without points the chart is unavailable (NO_DATA); ``unavailable`` forces a reason.
    """
    ordered = sorted(points, key=lambda point: point.period)
    if not ordered:
        unavailable = unavailable or ChartUnavailableReason.NO_DATA
        return ChartInput((), (), (), (), scoring, multiplier, direction, unavailable)
    by_period = {point.period: point for point in ordered}
    periods = tuple(month_range(ordered[0].period, ordered[-1].period))
    found = [by_period.get(period) for period in periods]
    return ChartInput(
        periods=periods,
        values=tuple(None if p is None else p.value for p in found),
        numerators=tuple(None if p is None else p.numerator for p in found),
        denominators=tuple(None if p is None else p.denominator for p in found),
        scoring=scoring,
        multiplier=multiplier,
        direction=direction,
        unavailable=unavailable,
    )


@strawberry.type(description="One occurrence of a rule: the periods it covers and what it means.")
class ChartSignal:
    rule: SignalRule = strawberry.field(description="The rule that fired.")
    periods: list[Period] = strawberry.field(description="The periods that make the signal.")
    side: Side | None = strawberry.field(
        description="Above (HIGH) or below (LOW) the centre line; null for rules without a side."
    )
    variation: Variation | None = strawberry.field(
        description=(
            "IMPROVEMENT when the signal points the way the measure's improvement direction says "
            "is better, CONCERN when the other way; null for rules without a side."
        )
    )


@strawberry.type(description="Runs statistics shared by run-chart and control-chart parts.")
class RunStatistics:
    from_period: Period = strawberry.field(description="First period of the part.")
    to_period: Period = strawberry.field(description="Last period of the part.")
    center_line: float | None = strawberry.field(
        description="Centre line of the part (null without a value in its baseline)."
    )
    useful_observations: int = strawberry.field(
        description="Analysed points not on the centre line."
    )
    longest_run: int | None = strawberry.field(
        description="Longest run of useful points on one side of the centre line."
    )
    longest_run_limit: int | None = strawberry.field(
        description="Anhøj: a longer run than this is a signal (round(log2(n)) + 3)."
    )
    crossings: int | None = strawberry.field(description="How often the line is crossed.")
    crossings_limit: int | None = strawberry.field(
        description="Anhøj: fewer crossings than this are a signal (qbinom(0.05, n - 1, 0.5))."
    )
    runs: int | None = strawberry.field(description="Number of runs (crossings + 1).")
    runs_lower_limit: int | None = strawberry.field(
        description="IHI runs table: fewer runs are a signal (10-60 useful observations)."
    )
    runs_upper_limit: int | None = strawberry.field(
        description="IHI runs table: more runs are a signal (10-60 useful observations)."
    )
    signals: list[ChartSignal] = strawberry.field(description="The part's signals, in order.")


@strawberry.type(description="A part of a run chart (before/after a change), with its median.")
class RunChartPart(RunStatistics):
    pass


@strawberry.type(description="One month of a run chart.")
class RunChartPoint:
    period: Period = strawberry.field(description="The month.")
    value: float | None = strawberry.field(description="The value; null for a month without.")
    center_line: float | None = strawberry.field(description="The median of the point's part.")
    on_center_line: bool = strawberry.field(
        description="Exactly on the median (neither counts nor breaks a run)."
    )
    excluded: bool = strawberry.field(description="Shown but left out of the analysis.")
    part: int = strawberry.field(description="Index of the point's part, from 0.")


@strawberry.type(
    description=(
        "A run chart: parts with their medians and runs statistics, gapless monthly points and "
        "the signals of the chosen rules."
    )
)
class RunChart:
    rules: RunChartRules = strawberry.field(description="The rule set that read the chart.")
    computable: bool = strawberry.field(
        description="False when the chart cannot be computed (see reason); lists are then empty."
    )
    reason: ChartUnavailableReason | None = strawberry.field(
        description="Why the chart is not computable; null when it is."
    )
    parts: list[RunChartPart] = strawberry.field(description="The parts, in time order.")
    points: list[RunChartPoint] = strawberry.field(
        description="Every month from the first to the last period with data."
    )
    signals: list[ChartSignal] = strawberry.field(description="Every part's signals, in order.")


@strawberry.type(description="A part of a control chart, with its centre line and statistics.")
class ControlChartPart(RunStatistics):
    moving_range_mean: float | None = strawberry.field(
        description=(
            "Mean moving range (screened when asked) of I and MR charts, of the z-scores of P' "
            "and U' charts; null for the others."
        )
    )


@strawberry.type(description="One month of a control chart.")
class ControlChartPoint:
    period: Period = strawberry.field(description="The month.")
    value: float | None = strawberry.field(description="The plotted value; null without one.")
    numerator: Count | None = strawberry.field(description="The numerator, when there is one.")
    denominator: Count | None = strawberry.field(description="The denominator, when there is one.")
    center_line: float | None = strawberry.field(description="Centre line of the point's part.")
    lower_limit: float | None = strawberry.field(description="Lower 3-sigma limit.")
    upper_limit: float | None = strawberry.field(description="Upper 3-sigma limit.")
    lower_two_sigma: float | None = strawberry.field(description="Lower 2-sigma line.")
    upper_two_sigma: float | None = strawberry.field(description="Upper 2-sigma line.")
    outside_limits: bool = strawberry.field(
        description="Strictly beyond a limit (a point exactly on a limit is not a signal)."
    )
    excluded: bool = strawberry.field(description="Shown but left out of the centre line.")
    part: int = strawberry.field(description="Index of the point's part, from 0.")


@strawberry.type(
    description=(
        "A Shewhart control chart: parts with centre lines, gapless monthly points with limits, "
        "and the signals of the chosen rules."
    )
)
class ControlChart:
    chart: ControlChartType = strawberry.field(description="The chart type computed.")
    rules: ControlChartRules = strawberry.field(description="The rule set that read the chart.")
    screen_moving_ranges: bool = strawberry.field(
        description="Whether moving ranges >= 3.267 x MR were dropped before the limits."
    )
    computable: bool = strawberry.field(
        description="False when the chart cannot be computed (see reason); lists are then empty."
    )
    reason: ChartUnavailableReason | None = strawberry.field(
        description="Why the chart is not computable; null when it is."
    )
    parts: list[ControlChartPart] = strawberry.field(description="The parts, in time order.")
    points: list[ControlChartPoint] = strawberry.field(
        description="Every month from the first to the last period with data."
    )
    signals: list[ChartSignal] = strawberry.field(description="Every part's signals, in order.")


def check_positions(
    n: int,
    *,
    computable: bool,
    freeze: int | None,
    parts: Sequence[int] | None,
    exclude: Sequence[int] | None,
) -> None:
    """VALIDATION error for positions a chart of ``n`` points cannot take (module docstring).

    The upper bounds are checked only for a computable chart (an empty or hidden series has no
    positions to count).
    """
    if freeze is not None and parts:
        raise invalid_argument("give freeze or parts, not both")
    for name, positions in (("parts", parts), ("exclude", exclude)):
        if positions and any(after <= before for before, after in pairwise(positions)):
            raise invalid_argument(f"{name} must be increasing positions without duplicates")
    bounds = (
        ("freeze", [] if freeze is None else [freeze], n),
        ("parts", parts or [], n - 1),
        ("exclude", exclude or [], n),
    )
    for name, positions, highest in bounds:
        for position in positions:
            if position < 1 or (computable and position > highest):
                limit = f"1 and {highest}" if computable else "1 and the number of points"
                raise invalid_argument(
                    f"{name} positions are between {limit} (1-based months of the chart); "
                    f"got {position}"
                )


def _signals(signals: Sequence[Signal], periods: Sequence[str]) -> list[ChartSignal]:
    return [
        ChartSignal(
            rule=signal.rule,
            periods=[Period(periods[i]) for i in signal.indices],
            side=signal.side,
            variation=signal.variation,
        )
        for signal in signals
    ]


def _run_part(part: ChartPart, periods: Sequence[str]) -> RunChartPart:
    return RunChartPart(
        from_period=Period(periods[part.from_index]),
        to_period=Period(periods[part.to_index]),
        center_line=part.center_line,
        useful_observations=part.useful_observations,
        longest_run=part.longest_run,
        longest_run_limit=part.longest_run_limit,
        crossings=part.crossings,
        crossings_limit=part.crossings_limit,
        runs=part.runs,
        runs_lower_limit=part.runs_lower_limit,
        runs_upper_limit=part.runs_upper_limit,
        signals=_signals(part.signals, periods),
    )


def _control_part(part: AnalyticsControlPart, periods: Sequence[str]) -> ControlChartPart:
    return ControlChartPart(
        from_period=Period(periods[part.from_index]),
        to_period=Period(periods[part.to_index]),
        center_line=part.center_line,
        useful_observations=part.useful_observations,
        longest_run=part.longest_run,
        longest_run_limit=part.longest_run_limit,
        crossings=part.crossings,
        crossings_limit=part.crossings_limit,
        runs=part.runs,
        runs_lower_limit=part.runs_lower_limit,
        runs_upper_limit=part.runs_upper_limit,
        signals=_signals(part.signals, periods),
        moving_range_mean=part.moving_range_mean,
    )


def build_run_chart(
    series: ChartInput,
    *,
    rules: RunChartRules,
    freeze: int | None,
    parts: Sequence[int] | None,
    exclude: Sequence[int] | None,
) -> RunChart:
    """The run chart of ``series`` (or an empty, non-computable one)."""
    n = len(series.periods)
    computable = series.unavailable is None
    check_positions(n, computable=computable, freeze=freeze, parts=parts, exclude=exclude)
    if not computable:
        return RunChart(
            rules=rules,
            computable=False,
            reason=series.unavailable,
            parts=[],
            points=[],
            signals=[],
        )
    chart = run_chart(
        series.values,
        rules=rules,
        freeze=freeze,
        parts=parts or (),
        exclude=exclude or (),
        improvement_direction=series.direction,
    )
    periods = series.periods
    return RunChart(
        rules=rules,
        computable=True,
        reason=None,
        parts=[_run_part(part, periods) for part in chart.parts],
        points=[
            RunChartPoint(
                period=Period(period),
                value=point.value,
                center_line=point.center_line,
                on_center_line=point.on_center_line,
                excluded=point.excluded,
                part=point.part,
            )
            for period, point in zip(periods, chart.points, strict=True)
        ],
        signals=_signals(chart.signals, periods),
    )


def build_control_chart(
    series: ChartInput,
    *,
    chart: ControlChartType | None,
    freeze: int | None,
    parts: Sequence[int] | None,
    exclude: Sequence[int] | None,
    screen_moving_ranges: bool,
    rules: ControlChartRules,
) -> ControlChart:
    """The control chart of ``series`` (type from the measure's scoring unless asked)."""
    chart_type = chart or chart_type_for_scoring(series.scoring)
    if chart_type in COUNT_CHARTS and series.scoring not in RATIO_SCORINGS:
        raise invalid_argument(
            f"a {chart_type.value} chart needs numerators and denominators; this measure is "
            f"scored {series.scoring.value} (use I or C)"
        )
    n = len(series.periods)
    computable = series.unavailable is None
    check_positions(n, computable=computable, freeze=freeze, parts=parts, exclude=exclude)
    if not computable:
        return ControlChart(
            chart=chart_type,
            rules=rules,
            screen_moving_ranges=screen_moving_ranges,
            computable=False,
            reason=series.unavailable,
            parts=[],
            points=[],
            signals=[],
        )
    counts = chart_type in COUNT_CHARTS
    result = control_chart(
        chart_type,
        values=None if counts else series.values,
        numerators=series.numerators if counts else None,
        denominators=series.denominators if counts else None,
        multiplier=series.multiplier if counts else 1.0,
        freeze=freeze,
        parts=parts or (),
        exclude=exclude or (),
        screen_moving_ranges=screen_moving_ranges,
        rules=rules,
        improvement_direction=series.direction,
    )
    periods = series.periods
    return ControlChart(
        chart=chart_type,
        rules=rules,
        screen_moving_ranges=screen_moving_ranges,
        computable=True,
        reason=None,
        parts=[_control_part(part, periods) for part in result.parts],
        points=[
            ControlChartPoint(
                period=Period(periods[i]),
                value=point.value,
                numerator=_count(series.numerators[i]),
                denominator=_count(series.denominators[i]),
                center_line=point.center_line,
                lower_limit=point.lower_limit,
                upper_limit=point.upper_limit,
                lower_two_sigma=point.lower_two_sigma,
                upper_two_sigma=point.upper_two_sigma,
                outside_limits=point.outside_limits,
                excluded=point.excluded,
                part=point.part,
            )
            for i, point in enumerate(result.points)
        ],
        signals=_signals(result.signals, periods),
    )


def _count(value: int | None) -> Count | None:
    return None if value is None else Count(value)


RULES_DESCRIPTION = "ANHOEJ (default, as qicharts2; also when null) or IHI."
FREEZE_DESCRIPTION = (
    "Compute the centre line (and limits) from months 1..freeze only (1-based positions in the "
    "chart's gapless months) and apply it to all."
)
PARTS_DESCRIPTION = (
    "Split the chart after these 1-based positions, increasing (qicharts2's `part`): [12] makes "
    "part 1 the months 1-12; each part gets its own centre line, limits and signals."
)
EXCLUDE_DESCRIPTION = (
    "1-based positions, increasing, shown but left out of centre lines, limits and run rules."
)


@strawberry.interface(
    description=(
        "A monthly series that can be read as a run chart or a control chart. Charts are "
        "computed from the series' points over gapless months: every month from its first to "
        "its last period with data, a month without data being a null value that the rules see "
        "as a gap. Values are in the measure's displayed unit (x its multiplier)."
    )
)
class ChartedSeries:
    async def chart_input(self, info: Info) -> ChartInput:
        """The series as charts read it (implemented by each series type)."""
        raise NotImplementedError

    @strawberry.field(
        description=(
            "Run chart of the series: medians, runs statistics and signals (ANHOEJ: LONG_RUN, "
            "FEW_CROSSINGS; IHI: SHIFT, TREND, TOO_FEW_RUNS, TOO_MANY_RUNS)."
        )
    )
    async def run_chart(
        self,
        info: Info,
        rules: Annotated[
            RunChartRules | None, strawberry.argument(description=RULES_DESCRIPTION)
        ] = RunChartRules.ANHOEJ,
        freeze: Annotated[int | None, strawberry.argument(description=FREEZE_DESCRIPTION)] = None,
        parts: Annotated[
            list[int] | None, strawberry.argument(description=PARTS_DESCRIPTION)
        ] = None,
        exclude: Annotated[
            list[int] | None, strawberry.argument(description=EXCLUDE_DESCRIPTION)
        ] = None,
    ) -> RunChart:
        series = await self.chart_input(info)
        return build_run_chart(
            series,
            rules=rules or RunChartRules.ANHOEJ,
            freeze=freeze,
            parts=parts,
            exclude=exclude,
        )

    @strawberry.field(
        description=(
            "Shewhart control chart of the series (qicharts2's formulas) with OUTSIDE_LIMITS and "
            "the run rules of the chosen rule set."
        )
    )
    async def control_chart(
        self,
        info: Info,
        chart: Annotated[
            ControlChartType | None,
            strawberry.argument(
                description=(
                    "Chart type; by default from the measure's scoring: PROPORTION P, RATE U, "
                    "COUNT C, others I."
                )
            ),
        ] = None,
        freeze: Annotated[int | None, strawberry.argument(description=FREEZE_DESCRIPTION)] = None,
        parts: Annotated[
            list[int] | None, strawberry.argument(description=PARTS_DESCRIPTION)
        ] = None,
        exclude: Annotated[
            list[int] | None, strawberry.argument(description=EXCLUDE_DESCRIPTION)
        ] = None,
        screen_moving_ranges: Annotated[
            bool | None,
            strawberry.argument(
                description=(
                    "Drop moving ranges >= 3.267 x their mean before computing I-chart (and "
                    "Laney) limits, as qicharts2 and NHSRplotthedots do; false as the NHS Excel "
                    "tool. Null means true."
                )
            ),
        ] = True,
        rules: Annotated[
            ControlChartRules | None,
            strawberry.argument(
                description="ANHOEJ (default, as qicharts2; also when null) or MDC."
            ),
        ] = ControlChartRules.ANHOEJ,
    ) -> ControlChart:
        series = await self.chart_input(info)
        return build_control_chart(
            series,
            chart=chart,
            freeze=freeze,
            parts=parts,
            exclude=exclude,
            screen_moving_ranges=screen_moving_ranges is not False,
            rules=rules or ControlChartRules.ANHOEJ,
        )
