"""Run charts against published values: qicharts2's vignette, the Anhøj critical-values tables,
the IHI runs table, and the published run-rule definitions on hand-checkable series."""

from __future__ import annotations

import math

import pytest

from analytics.charts import RunChartRules, Side, SignalRule, Variation
from analytics.runs import (
    analyse_runs,
    crossings_limit,
    ihi_runs_limits,
    ihi_runs_table,
    longest_run_limit,
    median,
    run_chart,
    trend_signals,
)

# qicharts2 vignette (anhoej/qicharts2 vignettes/qicharts2.Rmd), the 24 values of `y`, as quoted
# in ANALYTICS.md: median -0.0909573, longest run 3 (limit 8), crossings 15 (limit 8), no signal.
VIGNETTE_Y = [
    -1.189454, 0.388581, -0.344333, -0.547896, 0.980662, -0.236646, 0.809740, -0.744780,
    -0.259787, -0.183084, 0.518630, 0.883465, 0.589829, -0.196705, 0.659594, -0.260585,
    -0.572506, 1.406558, 0.504271, -0.700281, 1.423423, -1.042658, 0.001169, 1.090455,
]  # fmt: skip

# Anhøj & Mohammed, "Mastering Statistical Process Control Charts in Healthcare", Appendix D
# "Critical Values for Longest Runs and Number of Crossings" (anhoej/spc4hc 95_runs_limits.Rmd,
# rendered by R's round(log2(n) + 3) and qbinom(0.05, n - 1, 0.5)): n, longest run, crossings.
ANHOEJ_BOOK_TABLE = """
10 6 2 11 6 2 12 7 3 13 7 3 14 7 4 15 7 4 16 7 4 17 7 5 18 7 5 19 7 6 20 7 6 21 7 6 22 7 7
23 8 7 24 8 8 25 8 8 26 8 8 27 8 9 28 8 9 29 8 10 30 8 10 31 8 11 32 8 11 33 8 11 34 8 12
35 8 12 36 8 13 37 8 13 38 8 14 39 8 14 40 8 14 41 8 15 42 8 15 43 8 16 44 8 16 45 8 17
46 9 17 47 9 17 48 9 18 49 9 18 50 9 19 51 9 19 52 9 20 53 9 20 54 9 21 55 9 21 56 9 21
57 9 22 58 9 22 59 9 23 60 9 23 61 9 24 62 9 24 63 9 25 64 9 25 65 9 25 66 9 26 67 9 26
68 9 27 69 9 27 70 9 28 71 9 28 72 9 29 73 9 29 74 9 29 75 9 30 76 9 30 77 9 31 78 9 31
79 9 32 80 9 32 81 9 33 82 9 33 83 9 34 84 9 34 85 9 34 86 9 35 87 9 35 88 9 36 89 9 36
90 9 37 91 10 37 92 10 38 93 10 38 94 10 39 95 10 39 96 10 39 97 10 40 98 10 40 99 10 41
100 10 41
"""


def book_rows() -> list[tuple[int, int, int]]:
    numbers = [int(token) for token in ANHOEJ_BOOK_TABLE.split()]
    return [(numbers[i], numbers[i + 1], numbers[i + 2]) for i in range(0, len(numbers), 3)]


def test_vignette_run_chart_matches_qicharts2() -> None:
    chart = run_chart(VIGNETTE_Y)
    (part,) = chart.parts
    assert part.center_line == pytest.approx(-0.0909573, abs=1e-6)
    assert (part.longest_run, part.longest_run_limit) == (3, 8)
    assert (part.crossings, part.crossings_limit) == (15, 8)
    assert part.useful_observations == 24
    assert (part.from_index, part.to_index) == (0, 23)
    assert chart.signals == ()
    assert all(point.center_line == part.center_line for point in chart.points)


@pytest.mark.parametrize(
    ("n", "longest", "crossings"),
    [
        # ANALYTICS.md (Anhøj & Olesen, PLoS ONE 2014, Table 1): n: max longest run / min crossings
        (10, 6, 2), (12, 7, 3), (14, 7, 4), (17, 7, 5), (20, 7, 6), (22, 7, 7), (24, 8, 8),
        (27, 8, 9), (30, 8, 10), (36, 8, 13), (40, 8, 14), (46, 9, 17), (50, 9, 19), (60, 9, 23),
    ],
)  # fmt: skip
def test_anhoej_critical_values_from_the_paper(n: int, longest: int, crossings: int) -> None:
    assert longest_run_limit(n) == longest
    assert crossings_limit(n) == crossings


def test_anhoej_critical_values_from_the_book_for_10_to_100() -> None:
    rows = book_rows()
    assert [row[0] for row in rows] == list(range(10, 101))
    for n, longest, crossings in rows:
        assert (longest_run_limit(n), crossings_limit(n)) == (longest, crossings), n


def test_limits_for_tiny_counts_do_not_raise() -> None:
    assert longest_run_limit(0) is None and crossings_limit(0) is None
    assert longest_run_limit(1) == 3 and crossings_limit(1) == 0
    assert crossings_limit(2) == 0  # qbinom(0.05, 1, 0.5) = 0


@pytest.mark.parametrize(
    ("n", "lower", "upper"),
    [
        # Rows of the IHI runs table that the Swed & Eisenhart (Ann Math Stat 1943) 5% two-sided
        # critical values for two halves of n/2 reproduce (reject at <= lower-1 or >= upper+1 runs):
        # (5,5): 2/10, (6,7): 3/12, (7,7): 3/13, (8,8): 4/14, (9,9): 5/15.
        (10, 3, 9), (13, 4, 11), (14, 4, 12), (16, 5, 13), (18, 6, 14),
    ],
)  # fmt: skip
def test_ihi_runs_table_rows(n: int, lower: int, upper: int) -> None:
    assert ihi_runs_limits(n) == (lower, upper)


def test_ihi_runs_table_covers_10_to_60_and_nothing_else() -> None:
    table = ihi_runs_table()
    assert sorted(table) == list(range(10, 61))
    assert ihi_runs_limits(9) is None and ihi_runs_limits(61) is None
    for lower, upper in table.values():
        assert 2 <= lower < upper


def test_median_of_even_and_odd_counts_skips_missing() -> None:
    assert median([3.0, None, 1.0, 2.0]) == 2.0
    assert median([4.0, 1.0, 3.0, 2.0]) == 2.5
    assert median([None, math.nan]) is None


def test_points_on_the_median_neither_count_nor_break_a_run() -> None:
    # 1,1,2,1 around median 2: the point on the line is skipped, one run of 3 below.
    analysis = analyse_runs([(0, 1.0), (1, 1.0), (2, 2.0), (3, 1.0)], 2.0)
    assert analysis.useful_observations == 3
    assert (analysis.runs, analysis.longest_run, analysis.crossings) == (1, 3, 0)


def test_long_run_and_few_crossings_name_their_points() -> None:
    # 9 points below then 9 above the median: longest run 9 > round(log2(18)) + 3 = 7, and
    # 1 crossing < qbinom(0.05, 17, 0.5) = 5.
    values = [1.0] * 9 + [5.0] * 9
    chart = run_chart(values, improvement_direction="INCREASE")
    rules = [(signal.rule, signal.side, signal.variation) for signal in chart.signals]
    assert (SignalRule.LONG_RUN, Side.LOW, Variation.CONCERN) in rules
    assert (SignalRule.LONG_RUN, Side.HIGH, Variation.IMPROVEMENT) in rules
    few = [signal for signal in chart.signals if signal.rule is SignalRule.FEW_CROSSINGS]
    assert few[0].indices == tuple(range(18)) and few[0].side is None


def test_ihi_shift_is_six_useful_points_on_one_side() -> None:
    # Perla et al. 2011 rule 1: 6+ consecutive points on one side; a point on the median neither
    # counts nor breaks it. The median of these 13 values is 5 (position 8): six points below
    # (0-5) and six above (6, 7, 9-12) around the point on the median.
    values = [1.0, 2.0, 3.0, 4.0, 1.0, 0.0, 9.0, 8.0, 5.0, 9.0, 7.0, 8.0, 9.0]
    chart = run_chart(values, rules=RunChartRules.IHI)
    assert chart.parts[0].center_line == 5.0
    shifts = [signal for signal in chart.signals if signal.rule is SignalRule.SHIFT]
    assert [(signal.indices, signal.side) for signal in shifts] == [
        ((0, 1, 2, 3, 4, 5), Side.LOW),
        ((6, 7, 9, 10, 11, 12), Side.HIGH),
    ]


def test_ihi_trend_skips_repeats_and_needs_five_points() -> None:
    # Perla et al. 2011 rule 2: 5+ points all going up; like values are not counted.
    up_with_repeat = [(0, 1.0), (1, 2.0), (2, 2.0), (3, 3.0), (4, 4.0), (5, 5.0)]
    (trend,) = trend_signals(up_with_repeat, min_points=5, ties_break=False, direction=None)
    assert trend.indices == (0, 1, 2, 3, 4, 5) and trend.side is Side.HIGH
    four_distinct = [(0, 1.0), (1, 2.0), (2, 2.0), (3, 3.0), (4, 4.0)]
    assert trend_signals(four_distinct, min_points=5, ties_break=False, direction=None) == []


def test_mdc_trend_cases_from_nhsrplotthedots_tests() -> None:
    # NHSRplotthedots tests/testthat/test-ptd_calculate_point_type.R, ptd_seven_point_trend:
    # 1:6 no trend; c(1:3, 3:6) no trend (a tie breaks it); 1:7 a trend; c(2, 1:7, 3) a trend
    # of the points 2-8; 7:1 a decreasing trend.
    def trends(values: list[float]) -> list[tuple[tuple[int, ...], Side | None]]:
        points = list(enumerate(values))
        found = trend_signals(points, min_points=7, ties_break=True, direction=None)
        return [(signal.indices, signal.side) for signal in found]

    assert trends([1, 2, 3, 4, 5, 6]) == []
    assert trends([1, 2, 3, 3, 4, 5, 6]) == []
    assert trends([1, 2, 3, 4, 5, 6, 7]) == [(tuple(range(7)), Side.HIGH)]
    assert trends([2, 1, 2, 3, 4, 5, 6, 7, 3]) == [(tuple(range(1, 8)), Side.HIGH)]
    assert trends([7, 6, 5, 4, 3, 2, 1]) == [(tuple(range(7)), Side.LOW)]


def test_ihi_runs_rule_uses_the_table() -> None:
    # 10 useful points alternating around the median: 10 runs > upper limit 9 (too many).
    alternating = [1.0, 3.0] * 5
    chart = run_chart(alternating, rules="IHI")
    (part,) = chart.parts
    assert (part.runs, part.runs_lower_limit, part.runs_upper_limit) == (10, 3, 9)
    assert [signal.rule for signal in chart.signals] == [SignalRule.TOO_MANY_RUNS]
    # Fewer than 10 useful observations: the table does not apply.
    short = run_chart([1.0, 3.0] * 4, rules="IHI")
    assert short.parts[0].runs_lower_limit is None and short.signals == ()


def test_freeze_parts_and_exclude_use_qicharts2_positions() -> None:
    values = [1.0, 2.0, 3.0, 10.0, 20.0, 30.0, 40.0]
    frozen = run_chart(values, freeze=3)
    assert frozen.parts[0].center_line == 2.0  # median of points 1-3 only
    assert frozen.parts[0].useful_observations == 6  # runs analysis covers every point
    split = run_chart(values, parts=[3])
    assert [(p.from_index, p.to_index, p.center_line) for p in split.parts] == [
        (0, 2, 2.0),
        (3, 6, 25.0),
    ]
    assert [point.part for point in split.points] == [0, 0, 0, 1, 1, 1, 1]
    # qicharts2 ignores freeze when parts are given.
    assert run_chart(values, parts=[3], freeze=1).parts == split.parts
    excluded = run_chart([1.0, 2.0, 100.0, 3.0], exclude=[3])
    assert excluded.parts[0].center_line == 2.0
    assert excluded.points[2].excluded and excluded.parts[0].useful_observations == 2


@pytest.mark.parametrize(
    "values",
    [[], [1.0], [None], [None, None, None], [2.0, 2.0, 2.0, 2.0], [1.0, None, math.inf]],
)
def test_edge_cases_do_not_raise(values: list[float | None]) -> None:
    for rules in RunChartRules:
        chart = run_chart(values, rules=rules, freeze=2, exclude=[9])
        assert chart.signals == ()
        assert len(chart.points) == len(values)


def test_all_on_the_median_has_no_useful_observations() -> None:
    chart = run_chart([2.0, 2.0, 2.0, 2.0])
    (part,) = chart.parts
    assert part.center_line == 2.0 and part.useful_observations == 0
    assert part.longest_run is None and part.crossings_limit is None
    assert all(point.on_center_line for point in chart.points)


def test_missing_values_are_shown_without_taking_part() -> None:
    chart = run_chart([1.0, None, 3.0, 5.0])
    assert chart.parts[0].center_line == 3.0
    assert chart.points[1].value is None and not chart.points[1].on_center_line
    assert chart.parts[0].useful_observations == 2
