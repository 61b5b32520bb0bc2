"""Shewhart control charts (P, U, C, I, MR, P', U') with the qicharts2 formulas and two rule sets.

Formulas, per part, from the baseline points that are not excluded (qicharts2's ``qic.*``):

* **P**: p̄ = Σnum / Σden, limits p̄ ± 3·√(p̄(1 - p̄)/nᵢ) clipped to [0, 1].
* **U**: ū = Σnum / Σden, limits ū ± 3·√(ū/nᵢ), lower limit clipped at 0.
* **C**: c̄ = mean count, limits c̄ ± 3·√c̄, lower limit clipped at 0.
* **I** (XmR): x̄ = mean, MR̄ = mean moving range of consecutive baseline points; with
  ``screen_moving_ranges`` (default, as qicharts2 once loaded, NHSRplotthedots and PowerBI-SPC)
  moving ranges ≥ 3.267·MR̄ are dropped and MR̄ recomputed once. Limits x̄ ± 3·MR̄/1.128 under
  the ANHOEJ rules (qicharts2) and exactly x̄ ± 2.66·MR̄ under MDC (NHS Making Data Count).
* **MR**: the moving ranges |xᵢ - xᵢ₋₁| within a part, centre MR̄, upper limit 3.267·MR̄, lower 0.
* **P' / U'** (Laney): the P or U sigma of each point times sigma_z = MR̄(z)/1.128, where z are the
  baseline points' z-scores (screened like the I chart when ``screen_moving_ranges``).

Values of P, U, P' and U' charts are numerator/denominator x ``multiplier``; centre lines and
limits are computed on the unscaled ratio and then multiplied (qicharts2's ``multiply``). The
multiplier also scales C charts of numerators and I/MR charts computed from numerators and
denominators; ``values`` given directly are taken to be in the measure's units already.

Signals: ``OUTSIDE_LIMITS`` when a point is strictly beyond a limit (excluded points included,
as in qicharts2). ANHOEJ adds the Anhøj runs rules around the centre line (``LONG_RUN``,
``FEW_CROSSINGS``); MDC adds NHS Making Data Count's rules as NHSRplotthedots implements them:
``SHIFT`` (7+ points on one side of the mean, a point on the mean breaks it), ``TREND`` (7+
points each higher, or each lower, than the one before; a tie breaks it) and
``TWO_OF_THREE_BEYOND_TWO_SIGMA`` (of 3 consecutive points all on one side of the mean, 2 or
more lie beyond 2-sigma but within the limits; those points are named). An MR chart gets
``OUTSIDE_LIMITS`` only (qicharts2 does no runs analysis on it). With an improvement direction,
every signal that has a side is tagged IMPROVEMENT or CONCERN.

Differences from qicharts2 and NHSRplotthedots, all deliberate: a point whose denominator is
zero or missing has no value and no limits and takes no part in any sum (qicharts2 adds its
numerator to the centre line and plots +inf); a missing value breaks the moving ranges around it
(qicharts2 does the same for an NA row) and gets no limits (qicharts2 draws the I chart's
constant limits there); the MDC rules are applied to P, U, C and Laney charts too, using each
chart's own 2-sigma lines, and skip missing and excluded points (NHSRplotthedots has no exclusion).
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from itertools import pairwise

from analytics.charts import (
    ControlChartRules,
    ControlChartType,
    Side,
    Signal,
    SignalRule,
    make_signal,
    series_layout,
)
from analytics.runs import (
    ChartPart,
    Point,
    analyse_runs,
    anhoej_signals,
    clean,
    trend_signals,
)

D2 = 1.128
"""d₂ for moving ranges of two points: sigma = MR̄ / d₂."""
D4 = 3.267
"""D₄ for moving ranges of two points: MR chart upper limit and screening threshold."""
MDC_LIMIT = 2.66
"""NHS Making Data Count's process-limit constant for XmR charts (≈ 3/1.128, but exactly)."""
MDC_RUN_POINTS = 7
"""MDC shift and trend length."""

SIGMA_CHARTS_ON_RAW_SCALE = frozenset(
    {ControlChartType.P, ControlChartType.U, ControlChartType.P_PRIME, ControlChartType.U_PRIME}
)


@dataclass(frozen=True)
class ControlChartPart(ChartPart):
    """One part of a control chart; ``moving_range_mean`` is the (screened) MR̄ of I/MR charts,
    or of the z-scores of P'/U' charts, and None for the others."""

    moving_range_mean: float | None = None


@dataclass(frozen=True)
class ControlChartPoint:
    """One point: value, inputs, centre line, 3-sigma limits and 2-sigma lines (None if unknown)."""

    value: float | None
    numerator: float | None
    denominator: float | None
    center_line: float | None
    lower_limit: float | None
    upper_limit: float | None
    lower_two_sigma: float | None
    upper_two_sigma: float | None
    outside_limits: bool
    excluded: bool
    part: int


@dataclass(frozen=True)
class ControlChart:
    """A control chart: its type, rule set, parts, points and every part's signals."""

    chart: ControlChartType
    rules: ControlChartRules
    parts: tuple[ControlChartPart, ...]
    points: tuple[ControlChartPoint, ...]
    signals: tuple[Signal, ...]


@dataclass
class _Lines:
    """Centre line, limits and 2-sigma lines of one part on the computation scale."""

    center_line: float | None = None
    lower: dict[int, float] = field(default_factory=dict)
    upper: dict[int, float] = field(default_factory=dict)
    lower2: dict[int, float] = field(default_factory=dict)
    upper2: dict[int, float] = field(default_factory=dict)
    moving_range_mean: float | None = None

    def set(self, position: int, lines: tuple[float, float, float, float]) -> None:
        """Record the lower, upper, lower-2-sigma and upper-2-sigma lines of one point."""
        self.lower[position], self.upper[position], self.lower2[position], self.upper2[position] = (
            lines
        )


def control_chart(
    chart: ControlChartType | str,
    *,
    values: Sequence[float | None] | None = None,
    numerators: Sequence[float | None] | None = None,
    denominators: Sequence[float | None] | None = None,
    multiplier: float = 1.0,
    freeze: int | None = None,
    parts: Sequence[int] = (),
    exclude: Iterable[int] = (),
    screen_moving_ranges: bool = True,
    rules: ControlChartRules | str = ControlChartRules.ANHOEJ,
    improvement_direction: str | None = None,
) -> ControlChart:
    """A control chart of a series, interpreted by the ANHOEJ (default) or MDC rule set.

    P, U, P' and U' need ``numerators`` and ``denominators``; C uses ``numerators`` (counts) or
    else ``values``; I and MR use ``values`` or else numerator/denominator x multiplier.
    ``freeze``/``parts``/``exclude`` are 1-based positions as in qicharts2 (see
    :mod:`analytics.charts`). Raises ``ValueError`` only when the inputs a chart needs are
    missing or of different lengths; short, constant, empty or all-missing series never raise.
    """
    chart_type = ControlChartType(chart)
    rule_set = ControlChartRules(rules)
    nums = _optional(numerators)
    dens = _optional(denominators)
    y, scale = _computation_values(chart_type, _optional(values), nums, dens, multiplier)
    n = len(y)
    if nums is None:
        nums = [None] * n
    if dens is None:
        dens = [None] * n
    if len(nums) != n or len(dens) != n:
        raise ValueError("numerators, denominators and values must have the same length")
    layout = series_layout(n, freeze=freeze, parts=parts, exclude=exclude)
    chart_parts: list[ControlChartPart] = []
    points: list[ControlChartPoint] = []
    for part_number, span in enumerate(layout.parts):
        part_y = y
        if chart_type is ControlChartType.MR:
            part_y = _moving_ranges_of_part(y, span)
        base = [i for i in span if layout.baseline[i] and layout.included[i]]
        part_input = _PartInput(part_y, nums, dens, span, base, screen_moving_ranges, rule_set)
        lines = _LINE_FUNCTIONS[chart_type](part_input)
        part_points = [
            _point(
                i, part_y[i], nums[i], dens[i], lines, scale, not layout.included[i], part_number
            )
            for i in span
        ]
        points.extend(part_points)
        center_line = _scaled(lines.center_line, scale)
        analysed: list[Point] = [
            (i, point.value)
            for i, point in zip(span, part_points, strict=True)
            if layout.included[i] and point.value is not None
        ]
        analysis = analyse_runs(analysed, center_line)
        signals = _outside_signals(span, part_points, improvement_direction)
        if chart_type is not ControlChartType.MR:
            if rule_set is ControlChartRules.MDC:
                signals += _mdc_signals(
                    analysed, center_line, part_points, span, improvement_direction
                )
            else:
                signals += anhoej_signals(analysis, improvement_direction)
        part = ControlChartPart.build(span, center_line, analysis, signals)
        mr_scale = 1.0 if chart_type in SIGMA_CHARTS_ON_RAW_SCALE else scale
        chart_parts.append(
            replace(part, moving_range_mean=_scaled(lines.moving_range_mean, mr_scale))
        )
    return ControlChart(
        chart=chart_type,
        rules=rule_set,
        parts=tuple(chart_parts),
        points=tuple(points),
        signals=tuple(signal for part in chart_parts for signal in part.signals),
    )


def _optional(series: Sequence[float | None] | None) -> list[float | None] | None:
    """A list of finite floats or None, or None when the series was not given."""
    return None if series is None else [clean(value) for value in series]


def _ratio(numerator: float | None, denominator: float | None) -> float | None:
    """numerator / denominator, or None when either is missing or the denominator is not > 0."""
    if numerator is None or denominator is None or denominator <= 0:
        return None
    return numerator / denominator


def _computation_values(
    chart: ControlChartType,
    values: list[float | None] | None,
    numerators: list[float | None] | None,
    denominators: list[float | None] | None,
    multiplier: float,
) -> tuple[list[float | None], float]:
    """The values limits are computed on, and the scale that turns them into shown values."""
    if chart in SIGMA_CHARTS_ON_RAW_SCALE:
        if numerators is None or denominators is None:
            raise ValueError(f"a {chart} chart needs numerators and denominators")
        if len(numerators) != len(denominators):
            raise ValueError("numerators and denominators must have the same length")
        return [_ratio(a, b) for a, b in zip(numerators, denominators, strict=True)], multiplier
    if chart is ControlChartType.C:
        if numerators is not None:
            return list(numerators), multiplier
        if values is not None:
            return list(values), 1.0
        raise ValueError("a C chart needs numerators (counts) or values")
    if values is not None:
        return list(values), 1.0
    if numerators is not None and denominators is not None:
        if len(numerators) != len(denominators):
            raise ValueError("numerators and denominators must have the same length")
        ratios = [_ratio(a, b) for a, b in zip(numerators, denominators, strict=True)]
        return [None if r is None else r * multiplier for r in ratios], 1.0
    raise ValueError(f"an {chart} chart needs values or numerators and denominators")


def _moving_ranges_of_part(y: list[float | None], span: range) -> list[float | None]:
    """|yᵢ - yᵢ₋₁| within the part (None for its first point and next to a missing value)."""
    result: list[float | None] = list(y)
    for i in span:
        before = y[i - 1] if i > span.start else None
        current = y[i]
        result[i] = None if before is None or current is None else abs(current - before)
    return result


def _mean(values: Iterable[float | None]) -> float | None:
    """Mean of the non-missing values, or None when there are none."""
    present = [value for value in values if value is not None]
    return statistics.fmean(present) if present else None


def _moving_range_mean(sequence: Sequence[float | None], screen: bool) -> float | None:
    """MR̄ of consecutive values (a missing value breaks two ranges), screened once if asked.

    Screening keeps the moving ranges strictly below 3.267·MR̄ (Nelson 1982, as qicharts2 and
    NHSRplotthedots); when none is left (all ranges zero) there is no MR̄ and so no limits.
    """
    ranges = [abs(b - a) for a, b in pairwise(sequence) if a is not None and b is not None]
    average = _mean(ranges)
    if screen and average is not None:
        average = _mean(r for r in ranges if r < D4 * average)
    return average


@dataclass(frozen=True)
class _PartInput:
    """What a line function needs: the part's values and inputs, span and baseline positions."""

    y: list[float | None]
    nums: list[float | None]
    dens: list[float | None]
    span: range
    base: list[int]
    screen: bool
    rules: ControlChartRules


def _pooled(part: _PartInput) -> float | None:
    """Σnum / Σden over the baseline points that have a value (P and U centre lines)."""
    used = [i for i in part.base if part.y[i] is not None]
    total = math.fsum(part.dens[i] or 0.0 for i in used)
    if not used or total <= 0:
        return None
    return math.fsum(part.nums[i] or 0.0 for i in used) / total


def _sigma_p(center_line: float, denominator: float) -> float:
    """Binomial sigma of a proportion (0 when p̄ is outside [0, 1] on bad data)."""
    return math.sqrt(max(center_line * (1.0 - center_line), 0.0) / denominator)


def _sigma_u(center_line: float, denominator: float) -> float:
    """Poisson sigma of a rate."""
    return math.sqrt(max(center_line, 0.0) / denominator)


def _around(
    center: float, sigma: float, *, floor: bool = False, ceiling: bool = False
) -> tuple[float, float, float, float]:
    """Lower and upper 3-sigma limits, then 2-sigma lines; clipped at 0 and/or 1 if asked."""

    def bound(value: float) -> float:
        if floor:
            value = max(value, 0.0)
        if ceiling:
            value = min(value, 1.0)
        return value

    return (
        bound(center - 3 * sigma),
        bound(center + 3 * sigma),
        bound(center - 2 * sigma),
        bound(center + 2 * sigma),
    )


def _attribute_lines(
    part: _PartInput, sigma: Callable[[float, float], float], *, ceiling: bool, laney: bool
) -> _Lines:
    """P, U, P' and U' lines: pooled centre line and per-point sigma (x sigma_z for Laney)."""
    lines = _Lines(center_line=_pooled(part))
    center = lines.center_line
    if center is None:
        return lines
    factor = 1.0
    if laney:
        z: list[float | None] = []
        for i in part.base:
            value, denominator = part.y[i], part.dens[i]
            s = sigma(center, denominator) if value is not None and denominator else 0.0
            z.append((value - center) / s if value is not None and s > 0 else None)
        lines.moving_range_mean = _moving_range_mean(z, part.screen)
        if lines.moving_range_mean is None:
            return lines
        factor = lines.moving_range_mean / D2
    for i in part.span:
        denominator = part.dens[i]
        if part.y[i] is None or denominator is None:
            continue
        lines.set(
            i, _around(center, sigma(center, denominator) * factor, floor=True, ceiling=ceiling)
        )
    return lines


def _p_lines(part: _PartInput) -> _Lines:
    return _attribute_lines(part, _sigma_p, ceiling=True, laney=False)


def _u_lines(part: _PartInput) -> _Lines:
    return _attribute_lines(part, _sigma_u, ceiling=False, laney=False)


def _p_prime_lines(part: _PartInput) -> _Lines:
    return _attribute_lines(part, _sigma_p, ceiling=True, laney=True)


def _u_prime_lines(part: _PartInput) -> _Lines:
    return _attribute_lines(part, _sigma_u, ceiling=False, laney=True)


def _c_lines(part: _PartInput) -> _Lines:
    """C chart: mean count ± 3√c̄, lower limit clipped at 0."""
    lines = _Lines(center_line=_mean(part.y[i] for i in part.base))
    center = lines.center_line
    if center is not None:
        for i in part.span:
            if part.y[i] is not None:
                lines.set(i, _around(center, math.sqrt(max(center, 0.0)), floor=True))
    return lines


def _i_lines(part: _PartInput) -> _Lines:
    """I chart: mean ± 3·MR̄/1.128 (ANHOEJ) or ± 2.66·MR̄ (MDC), no clipping."""
    lines = _Lines(center_line=_mean(part.y[i] for i in part.base))
    lines.moving_range_mean = _moving_range_mean([part.y[i] for i in part.base], part.screen)
    center, average = lines.center_line, lines.moving_range_mean
    if center is None or average is None:
        return lines
    sigma = MDC_LIMIT * average / 3 if part.rules is ControlChartRules.MDC else average / D2
    for i in part.span:
        if part.y[i] is not None:
            lines.set(i, _around(center, sigma))
    return lines


def _mr_lines(part: _PartInput) -> _Lines:
    """MR chart (values are already moving ranges): centre MR̄, limits 0 and 3.267·MR̄."""
    lines = _Lines(center_line=_mean(part.y[i] for i in part.base))
    center = lines.center_line
    lines.moving_range_mean = center
    if center is not None:
        for i in part.span:
            if part.y[i] is not None:
                lines.set(i, (0.0, D4 * center, 0.0, D4 / 3 * 2 * center))
    return lines


_LINE_FUNCTIONS: dict[ControlChartType, Callable[[_PartInput], _Lines]] = {
    ControlChartType.P: _p_lines,
    ControlChartType.U: _u_lines,
    ControlChartType.P_PRIME: _p_prime_lines,
    ControlChartType.U_PRIME: _u_prime_lines,
    ControlChartType.C: _c_lines,
    ControlChartType.I: _i_lines,
    ControlChartType.MR: _mr_lines,
}


def _scaled(value: float | None, scale: float) -> float | None:
    """``value x scale``, keeping None."""
    return None if value is None else value * scale


def _point(
    i: int,
    y: float | None,
    numerator: float | None,
    denominator: float | None,
    lines: _Lines,
    scale: float,
    excluded: bool,
    part: int,
) -> ControlChartPoint:
    """A shown point: scaled value and lines, and whether it is strictly beyond a limit."""
    value = _scaled(y, scale)
    lower, upper = _scaled(lines.lower.get(i), scale), _scaled(lines.upper.get(i), scale)
    outside = value is not None and (
        (upper is not None and value > upper) or (lower is not None and value < lower)
    )
    return ControlChartPoint(
        value=value,
        numerator=numerator,
        denominator=denominator,
        center_line=_scaled(lines.center_line, scale),
        lower_limit=lower,
        upper_limit=upper,
        lower_two_sigma=_scaled(lines.lower2.get(i), scale),
        upper_two_sigma=_scaled(lines.upper2.get(i), scale),
        outside_limits=outside,
        excluded=excluded,
        part=part,
    )


def _side(value: float, center_line: float | None) -> Side | None:
    """HIGH above the centre line, LOW below, None on it (or without a centre line)."""
    if center_line is None or value == center_line:
        return None
    return Side.HIGH if value > center_line else Side.LOW


def _group(
    rule: SignalRule,
    flagged: Sequence[tuple[int, Side]],
    gap: int,
    direction: str | None,
) -> list[Signal]:
    """One signal per stretch of flagged items on one side, ``gap`` apart at most.

    ``flagged`` holds (number, side) pairs in increasing number: series positions for
    OUTSIDE_LIMITS (gap 1: consecutive points), indices into the analysed points for 2 of 3
    (gap 2: points of overlapping windows), mapped to positions by the caller.
    """
    signals: list[Signal] = []
    current: list[int] = []
    current_side: Side | None = None
    last = 0
    for order, side in flagged:
        if current and (side is not current_side or order - last > gap):
            signals.append(make_signal(rule, current, current_side, direction))
            current = []
        current.append(order)
        current_side, last = side, order
    if current:
        signals.append(make_signal(rule, current, current_side, direction))
    return signals


def _outside_signals(
    span: range, points: Sequence[ControlChartPoint], direction: str | None
) -> list[Signal]:
    """OUTSIDE_LIMITS, one signal per stretch of consecutive points beyond the same limit."""
    flagged = [
        (
            i,
            Side.LOW
            if point.lower_limit is not None and point.value < point.lower_limit
            else Side.HIGH,
        )
        for i, point in zip(span, points, strict=True)
        if point.outside_limits and point.value is not None
    ]
    return _group(SignalRule.OUTSIDE_LIMITS, flagged, 1, direction)


def same_side_runs(sides: Sequence[Side | None], min_points: int) -> list[range]:
    """Stretches of at least ``min_points`` consecutive equal sides; None (on the line) breaks.

    NHSRplotthedots' ``ptd_seven_point_one_side_mean`` + ``ptd_part_of_seven_trend``: every
    point of such a stretch is part of the signal.
    """
    stretches: list[range] = []
    start = 0
    while start < len(sides):
        end = start
        while sides[start] is not None and end + 1 < len(sides) and sides[end + 1] is sides[start]:
            end += 1
        if sides[start] is not None and end - start + 1 >= min_points:
            stretches.append(range(start, end + 1))
        start = end + 1
    return stretches


def two_of_three(sides: Sequence[Side | None], close: Sequence[bool]) -> list[int]:
    """Points flagged by MDC's "2 of 3 beyond 2 sigma" (NHSRplotthedots' ``ptd_two_in_three``).

    For every 3 consecutive points that are all on the same side of the mean with 2 or more of
    them ``close`` (beyond 2 sigma, within the limits), the close ones are flagged.
    """
    flagged: set[int] = set()
    for k in range(len(sides) - 2):
        window = range(k, k + 3)
        first = sides[k]
        if first is None or any(sides[j] is not first for j in window):
            continue
        if sum(close[j] for j in window) >= 2:
            flagged.update(j for j in window if close[j])
    return sorted(flagged)


def _mdc_signals(
    analysed: Sequence[Point],
    center_line: float | None,
    points: Sequence[ControlChartPoint],
    span: range,
    direction: str | None,
) -> list[Signal]:
    """NHS Making Data Count: 7-point shift and trend, 2 of 3 beyond 2-sigma on one side."""
    if center_line is None:
        return []
    signals = trend_signals(
        analysed, min_points=MDC_RUN_POINTS, ties_break=True, direction=direction
    )
    sides = [_side(value, center_line) for _, value in analysed]
    for stretch in same_side_runs(sides, MDC_RUN_POINTS):
        positions = [analysed[j][0] for j in stretch]
        signals.append(make_signal(SignalRule.SHIFT, positions, sides[stretch.start], direction))
    by_position = dict(zip(span, points, strict=True))
    close = [_beyond_two_sigma(by_position[position]) for position, _ in analysed]
    flagged = [(j, side) for j in two_of_three(sides, close) if (side := sides[j]) is not None]
    for signal in _group(SignalRule.TWO_OF_THREE_BEYOND_TWO_SIGMA, flagged, 2, direction):
        positions = [analysed[j][0] for j in signal.indices]
        signals.append(replace(signal, indices=tuple(positions)))
    return signals


def _beyond_two_sigma(point: ControlChartPoint) -> bool:
    """Beyond a 2-sigma line but not outside the limits (NHSRplotthedots' ``close_to_limits``)."""
    value = point.value
    if value is None or point.outside_limits:
        return False
    above = point.upper_two_sigma is not None and value > point.upper_two_sigma
    below = point.lower_two_sigma is not None and value < point.lower_two_sigma
    return above or below
