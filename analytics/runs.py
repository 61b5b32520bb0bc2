"""Run charts and runs analysis: the Anhøj rules (qicharts2's default) and the IHI rules.

The centre line is the median of the baseline (see :mod:`analytics.charts` for ``freeze``,
``parts`` and ``exclude``). *Useful observations* are the analysed points not on the centre line;
a *run* is a maximal sequence of useful points on the same side, and crossings = runs - 1.
Points on the centre line neither count nor break a run. As in qicharts2's ``runs.analysis``, the
runs analysis of a part covers every included point of that part, after the frozen baseline too.

Anhøj rules (Anhøj & Olesen, PLoS ONE 2014;9:e113825):
``LONG_RUN`` when the longest run > round(log2(n)) + 3 and ``FEW_CROSSINGS`` when crossings <
qbinom(0.05, n - 1, 0.5), computed exactly from binomial coefficients.

IHI rules (Perla, Provost & Murray, BMJ Qual Saf 2011;20:46-51): ``SHIFT`` (6+ useful points on
one side), ``TREND`` (5+ points all increasing or all decreasing, an exact repeat neither makes
nor breaks a trend) and ``TOO_FEW_RUNS``/``TOO_MANY_RUNS`` from the published runs table shipped
as ``analytics/data/ihi_runs_table.csv`` (only for 10-60 useful observations). Astronomical
points are a judgement call in the paper and are left to control charts (``OUTSIDE_LIMITS``).

Differences from qicharts2, all deliberate: non-finite values (NaN, ±inf) count as missing
(qicharts2 keeps +inf from a zero denominator as a useful point above the line); qicharts2 only
says whether a part has a runs signal, this module also names the points (the runs longer than
the limit, or every useful point of the part for ``FEW_CROSSINGS``); qicharts2 has no IHI rules.
"""

from __future__ import annotations

import csv
import math
import statistics
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from fractions import Fraction
from functools import cache
from importlib import resources
from typing import Self

from analytics.charts import (
    RunChartRules,
    Side,
    Signal,
    SignalRule,
    make_signal,
    series_layout,
)

IHI_SHIFT_POINTS = 6
"""IHI shift: this many consecutive useful points on one side of the median."""
IHI_TREND_POINTS = 5
"""IHI trend: this many consecutive points all going up or all going down."""
IHI_RUNS_TABLE_FILE = "ihi_runs_table.csv"

Point = tuple[int, float]
"""An analysed point: its 0-based position in the series and its value."""


def clean(value: float | None) -> float | None:
    """A finite float, or None for a missing (or non-finite) value."""
    if value is None:
        return None
    number = float(value)
    return number if math.isfinite(number) else None


def median(values: Iterable[float | None]) -> float | None:
    """The median of the non-missing values (mean of the middle two for an even count)."""
    present = [number for number in (clean(value) for value in values) if number is not None]
    return statistics.median(present) if present else None


def binomial_half_quantile(probability: Fraction, trials: int) -> int:
    """R's ``qbinom(probability, trials, 0.5)``: the smallest k with P(X <= k) >= probability.

    Exact: compares sums of binomial coefficients with ``probability * 2**trials`` as fractions,
    so no rounding can move a limit.
    """
    if trials <= 0:
        return 0
    target = probability * (2**trials)
    cumulative = 0
    for k in range(trials + 1):
        cumulative += math.comb(trials, k)
        if cumulative >= target:
            return k
    return trials


def longest_run_limit(useful_observations: int) -> int | None:
    """Anhøj upper limit for the longest run: round(log2(n)) + 3 (None when n is 0).

    ``round`` is round-half-even like R's, and log2 of an integer is never exactly x.5.
    """
    if useful_observations < 1:
        return None
    return round(math.log2(useful_observations)) + 3


def crossings_limit(useful_observations: int) -> int | None:
    """Anhøj lower limit for crossings: qbinom(0.05, n - 1, 0.5) (None when n is 0)."""
    if useful_observations < 1:
        return None
    return binomial_half_quantile(Fraction(1, 20), useful_observations - 1)


@cache
def ihi_runs_table() -> dict[int, tuple[int, int]]:
    """The published IHI runs table: useful observations → (lower, upper) limit for runs."""
    text = resources.files("analytics").joinpath("data", IHI_RUNS_TABLE_FILE).read_text("utf-8")
    lines = [line for line in text.splitlines() if line.strip() and not line.startswith("#")]
    table: dict[int, tuple[int, int]] = {}
    for row in csv.DictReader(lines):
        table[int(row["useful_observations"])] = (
            int(row["runs_lower_limit"]),
            int(row["runs_upper_limit"]),
        )
    return table


def ihi_runs_limits(useful_observations: int) -> tuple[int, int] | None:
    """(lower, upper) limit for the number of runs, or None outside the table (10-60)."""
    return ihi_runs_table().get(useful_observations)


@dataclass(frozen=True)
class Run:
    """A maximal sequence of useful points on one side of the centre line."""

    side: Side
    indices: tuple[int, ...]


@dataclass(frozen=True)
class RunsAnalysis:
    """Runs statistics of the analysed points of one part, with both rule sets' limits."""

    useful_observations: int
    longest_run: int | None
    longest_run_limit: int | None
    crossings: int | None
    crossings_limit: int | None
    runs: int | None
    runs_lower_limit: int | None
    runs_upper_limit: int | None
    run_list: tuple[Run, ...]


def analyse_runs(points: Sequence[Point], center_line: float | None) -> RunsAnalysis:
    """Runs, longest run and crossings of ``points`` around ``center_line`` (qicharts2's way).

    With no centre line or no useful observation the statistics are None (qicharts2's NA).
    """
    run_list: list[Run] = []
    if center_line is not None:
        for position, value in points:
            if value == center_line:
                continue
            side = Side.HIGH if value > center_line else Side.LOW
            if run_list and run_list[-1].side is side:
                run_list[-1] = Run(side, (*run_list[-1].indices, position))
            else:
                run_list.append(Run(side, (position,)))
    useful = sum(len(run.indices) for run in run_list)
    if not useful:
        return RunsAnalysis(0, None, None, None, None, None, None, None, ())
    limits = ihi_runs_limits(useful)
    return RunsAnalysis(
        useful_observations=useful,
        longest_run=max(len(run.indices) for run in run_list),
        longest_run_limit=longest_run_limit(useful),
        crossings=len(run_list) - 1,
        crossings_limit=crossings_limit(useful),
        runs=len(run_list),
        runs_lower_limit=limits[0] if limits else None,
        runs_upper_limit=limits[1] if limits else None,
        run_list=tuple(run_list),
    )


def anhoej_signals(analysis: RunsAnalysis, direction: str | None) -> list[Signal]:
    """LONG_RUN for every run longer than the limit; FEW_CROSSINGS over the part's useful points."""
    signals: list[Signal] = []
    limit = analysis.longest_run_limit
    if limit is not None:
        signals.extend(
            make_signal(SignalRule.LONG_RUN, run.indices, run.side, direction)
            for run in analysis.run_list
            if len(run.indices) > limit
        )
    if (
        analysis.crossings is not None
        and analysis.crossings_limit is not None
        and analysis.crossings < analysis.crossings_limit
    ):
        useful = (position for run in analysis.run_list for position in run.indices)
        signals.append(make_signal(SignalRule.FEW_CROSSINGS, useful, None, direction))
    return signals


def trend_signals(
    points: Sequence[Point],
    *,
    min_points: int,
    ties_break: bool,
    direction: str | None,
) -> list[Signal]:
    """TREND for every maximal run of at least ``min_points`` points going one way.

    With ``ties_break`` (NHS Making Data Count) two equal neighbours end a trend. Without it
    (IHI) an exact repeat neither makes nor breaks a trend: repeated values count once, and the
    signal names every point of the trend including the repeats.
    """
    groups: list[list[Point]] = []
    for point in points:
        if not ties_break and groups and groups[-1][-1][1] == point[1]:
            groups[-1].append(point)
        else:
            groups.append([point])
    signals: list[Signal] = []
    start = 0
    while start < len(groups) - 1:
        step = _step(groups[start], groups[start + 1])
        end = start + 1
        while end + 1 < len(groups) and step != 0 and _step(groups[end], groups[end + 1]) == step:
            end += 1
        if step != 0 and end - start + 1 >= min_points:
            side = Side.HIGH if step > 0 else Side.LOW
            indices = (position for group in groups[start : end + 1] for position, _ in group)
            signals.append(make_signal(SignalRule.TREND, indices, side, direction))
        start = end
    return signals


def _step(before: list[Point], after: list[Point]) -> int:
    """+1 when ``after`` is higher than ``before``, -1 when lower, 0 when equal."""
    first, second = before[-1][1], after[0][1]
    return (second > first) - (second < first)


def ihi_signals(
    points: Sequence[Point], analysis: RunsAnalysis, direction: str | None
) -> list[Signal]:
    """SHIFT, TREND, TOO_FEW_RUNS and TOO_MANY_RUNS (Perla, Provost & Murray 2011)."""
    signals = [
        make_signal(SignalRule.SHIFT, run.indices, run.side, direction)
        for run in analysis.run_list
        if len(run.indices) >= IHI_SHIFT_POINTS
    ]
    signals.extend(
        trend_signals(points, min_points=IHI_TREND_POINTS, ties_break=False, direction=direction)
    )
    useful = [position for run in analysis.run_list for position in run.indices]
    runs, lower, upper = analysis.runs, analysis.runs_lower_limit, analysis.runs_upper_limit
    if runs is not None and lower is not None and runs < lower:
        signals.append(make_signal(SignalRule.TOO_FEW_RUNS, useful, None, direction))
    if runs is not None and upper is not None and runs > upper:
        signals.append(make_signal(SignalRule.TOO_MANY_RUNS, useful, None, direction))
    return signals


@dataclass(frozen=True)
class ChartPart:
    """One part of a chart: its 0-based span, centre line, runs statistics and signals."""

    from_index: int
    to_index: int
    center_line: float | None
    useful_observations: int
    longest_run: int | None
    longest_run_limit: int | None
    crossings: int | None
    crossings_limit: int | None
    runs: int | None
    runs_lower_limit: int | None
    runs_upper_limit: int | None
    signals: tuple[Signal, ...]

    @classmethod
    def build(
        cls,
        span: range,
        center_line: float | None,
        analysis: RunsAnalysis,
        signals: Iterable[Signal],
    ) -> Self:
        """A part over ``span`` with the statistics of ``analysis`` and its signals in order."""
        return cls(
            from_index=span.start,
            to_index=span.stop - 1,
            center_line=center_line,
            useful_observations=analysis.useful_observations,
            longest_run=analysis.longest_run,
            longest_run_limit=analysis.longest_run_limit,
            crossings=analysis.crossings,
            crossings_limit=analysis.crossings_limit,
            runs=analysis.runs,
            runs_lower_limit=analysis.runs_lower_limit,
            runs_upper_limit=analysis.runs_upper_limit,
            signals=tuple(sorted(signals, key=signal_order)),
        )


def signal_order(signal: Signal) -> tuple[int, str]:
    """Signals sort by their first point, then by rule name."""
    return (signal.indices[0] if signal.indices else -1, signal.rule.value)


@dataclass(frozen=True)
class RunChartPart(ChartPart):
    """One part of a run chart (its centre line is the median)."""


@dataclass(frozen=True)
class RunChartPoint:
    """One point of a run chart; ``center_line`` is its part's median."""

    value: float | None
    center_line: float | None
    on_center_line: bool
    excluded: bool
    part: int


@dataclass(frozen=True)
class RunChart:
    """A run chart: parts, points and every part's signals in series order."""

    rules: RunChartRules
    parts: tuple[RunChartPart, ...]
    points: tuple[RunChartPoint, ...]
    signals: tuple[Signal, ...]


def run_chart(
    values: Sequence[float | None],
    *,
    rules: RunChartRules | str = RunChartRules.ANHOEJ,
    freeze: int | None = None,
    parts: Sequence[int] = (),
    exclude: Iterable[int] = (),
    improvement_direction: str | None = None,
) -> RunChart:
    """A run chart of ``values`` interpreted by the ANHOEJ (default) or IHI rules.

    ``freeze``/``parts``/``exclude`` are 1-based positions as in qicharts2 (see
    :mod:`analytics.charts`); ``improvement_direction`` (INCREASE/DECREASE) tags signals as
    IMPROVEMENT or CONCERN. Never raises on short, constant, empty or all-missing series.
    """
    rule_set = RunChartRules(rules)
    cleaned = [clean(value) for value in values]
    layout = series_layout(len(cleaned), freeze=freeze, parts=parts, exclude=exclude)
    chart_parts: list[RunChartPart] = []
    points: list[RunChartPoint] = []
    for part_number, span in enumerate(layout.parts):
        center_line = median(cleaned[i] for i in span if layout.baseline[i] and layout.included[i])
        analysed = [
            (i, value) for i in span if layout.included[i] and (value := cleaned[i]) is not None
        ]
        analysis = analyse_runs(analysed, center_line)
        if rule_set is RunChartRules.IHI:
            signals = ihi_signals(analysed, analysis, improvement_direction)
        else:
            signals = anhoej_signals(analysis, improvement_direction)
        chart_parts.append(RunChartPart.build(span, center_line, analysis, signals))
        points.extend(
            RunChartPoint(
                value=cleaned[i],
                center_line=center_line,
                on_center_line=cleaned[i] is not None and cleaned[i] == center_line,
                excluded=not layout.included[i],
                part=part_number,
            )
            for i in span
        )
    return RunChart(
        rules=rule_set,
        parts=tuple(chart_parts),
        points=tuple(points),
        signals=tuple(signal for part in chart_parts for signal in part.signals),
    )
