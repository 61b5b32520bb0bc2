"""Control charts against published values.

Sources:
* qicharts2 vignette (ANALYTICS.md): I chart of 24 values and the P' chart figure of
  ``nhs_accidents`` (docs/articles/qicharts2.html, labels to 3 decimals).
* NHSRplotthedots ``deviations`` vignette: screened and unscreened XmR limits (MDC, 2.66).
* Montgomery, Introduction to Statistical Quality Control, Example 7.1 (orange-juice cans,
  n = 50): p̄ = 0.2313, LCL 0.0524, UCL 0.4102; revised without samples 15 and 23:
  p̄ = 0.2150, LCL 0.0407, UCL 0.3893.
* qicharts2's own regression references (anhoej/qicharts2 tests/testthat/*.rds at commit
  1b9487e, data tbl_* in R/sysdata.rda = Montgomery's tables): values copied from the rds files
  to the 6-9 significant digits they print.
"""

from __future__ import annotations

import math

import pytest

from analytics.charts import ControlChartRules, ControlChartType, Side, SignalRule, Variation
from analytics.control import ControlChart, control_chart, same_side_runs, two_of_three

VIGNETTE_Y = [
    -1.189454, 0.388581, -0.344333, -0.547896, 0.980662, -0.236646, 0.809740, -0.744780,
    -0.259787, -0.183084, 0.518630, 0.883465, 0.589829, -0.196705, 0.659594, -0.260585,
    -0.572506, 1.406558, 0.504271, -0.700281, 1.423423, -1.042658, 0.001169, 1.090455,
]  # fmt: skip

DEVIATIONS = [1.0, 2, 1, 2, 10, 1, 2, 1, 2, 1, 2, 1, 2, 1, 2, 1, 2, 1]

# Montgomery Table 7.1 / 7.2 (qicharts2 tbl_07.03): nonconforming cans in samples of 50;
# samples 1-30 before, 31-94 after the machine adjustment.
ORANGE_JUICE = [
    12, 15, 8, 10, 4, 7, 16, 9, 14, 10, 5, 6, 17, 12, 22, 8, 10, 5, 13, 11, 20, 18, 24, 15, 9,
    12, 7, 13, 9, 6, 9, 6, 12, 5, 6, 4, 6, 3, 7, 6, 2, 4, 3, 6, 5, 4, 8, 5, 6, 7, 5, 6, 3, 5, 8,
    7, 5, 6, 4, 5, 2, 3, 4, 7, 6, 5, 5, 3, 7, 9, 6, 10, 4, 3, 5, 8, 11, 9, 7, 3, 5, 2, 1, 4, 5,
    3, 7, 6, 4, 4, 6, 8, 5, 6,
]  # fmt: skip

# qicharts2 tbl_07.04 (Montgomery Table 7.4, varying sample sizes).
TBL_07_04_N = [100, 80, 80, 100, 110, 110, 100, 100, 90, 90, 110, 120, 120, 120, 110, 80, 80, 80,
               90, 100, 100, 100, 100, 90, 90]  # fmt: skip
TBL_07_04_D = [12, 8, 6, 9, 10, 12, 11, 16, 10, 6, 20, 15, 9, 8, 6, 8, 10, 7, 5, 8, 5, 8, 10, 6, 9]

# qicharts2 tbl_07.08 (Montgomery Example 7.3, nonconformities per 100 boards).
TBL_07_08 = [21, 24, 16, 12, 15, 5, 28, 20, 31, 25, 20, 24, 16, 19, 10, 17, 13, 22, 18, 39, 30,
             24, 16, 19, 17, 15, 16, 18, 12, 15, 24, 21, 28, 20, 25, 19, 18, 21, 16, 22, 19, 12,
             14, 9, 16, 21]  # fmt: skip

# qicharts2 tbl_06.07 (Montgomery Example 6.5, weekly cost).
TBL_06_07 = [310, 288, 297, 298, 307, 303, 294, 297, 308, 306, 294, 299, 297, 299, 314, 295, 293,
             306, 301, 304, 305, 282, 305, 296, 314, 295, 287, 301, 298, 311, 310, 292, 305, 299,
             304, 310, 304, 305, 333, 328]  # fmt: skip

# qicharts2 data nhs_accidents (Mohammed et al. 2013): patients seen within 4 h / attendances.
NHS_R = [266501, 264225, 276532, 281461, 269071, 261215, 270409, 279778, 270483, 270320, 267923,
         271478, 255353, 256820, 261835, 259144, 255910, 260863, 264465, 260989]  # fmt: skip
NHS_N = [280443, 276823, 291681, 296155, 282343, 275888, 283867, 295251, 284468, 282529, 279618,
         283932, 266629, 268091, 276803, 271578, 266005, 273520, 278574, 273772]  # fmt: skip


def outside_positions(chart: ControlChart) -> list[int]:
    """1-based positions flagged OUTSIDE_LIMITS (qicharts2's ``sigma.signal``)."""
    return [
        i + 1
        for signal in chart.signals
        if signal.rule is SignalRule.OUTSIDE_LIMITS
        for i in signal.indices
    ]


def test_vignette_i_chart_matches_qicharts2() -> None:
    chart = control_chart(ControlChartType.I, values=VIGNETTE_Y)
    for point in chart.points:
        assert point.center_line == pytest.approx(0.1240693, abs=1e-6)
        assert point.lower_limit == pytest.approx(-2.589494, abs=1e-6)
        assert point.upper_limit == pytest.approx(2.837633, abs=1e-6)
    (part,) = chart.parts
    assert (part.longest_run, part.longest_run_limit, part.crossings, part.crossings_limit) == (
        3,
        8,
        15,
        8,
    )
    assert chart.signals == ()


def test_deviations_vignette_screened_mdc_limits() -> None:
    chart = control_chart(
        "I", values=DEVIATIONS, rules=ControlChartRules.MDC, improvement_direction="INCREASE"
    )
    point = chart.points[0]
    assert point.center_line == pytest.approx(1.9444444, abs=1e-6)
    assert point.lower_limit == pytest.approx(-0.7155556, abs=1e-6)
    assert point.upper_limit == pytest.approx(4.6044444, abs=1e-6)
    # "a single blue special cause improvement point" - point 5, and only it.
    special = [signal for signal in chart.signals]
    assert [(s.rule, s.indices, s.variation) for s in special] == [
        (SignalRule.OUTSIDE_LIMITS, (4,), Variation.IMPROVEMENT)
    ]


def test_deviations_vignette_unscreened_like_the_excel_tool() -> None:
    chart = control_chart("I", values=DEVIATIONS, rules="MDC", screen_moving_ranges=False)
    point = chart.points[0]
    assert point.center_line == pytest.approx(1.9444444, abs=1e-6)
    assert point.lower_limit == pytest.approx(-3.0626144, abs=1e-6)
    assert point.upper_limit == pytest.approx(6.9515033, abs=1e-6)
    assert outside_positions(chart) == [5]


def test_montgomery_example_7_1_p_chart() -> None:
    chart = control_chart("P", numerators=ORANGE_JUICE[:30], denominators=[50] * 30)
    point = chart.points[0]
    assert round(point.center_line or 0, 4) == 0.2313
    assert round(point.lower_limit or 0, 4) == 0.0524
    assert round(point.upper_limit or 0, 4) == 0.4102
    assert outside_positions(chart) == [15, 23]
    revised = control_chart(
        "P", numerators=ORANGE_JUICE[:30], denominators=[50] * 30, exclude=[15, 23]
    )
    point = revised.points[0]
    assert round(point.center_line or 0, 4) == 0.2150
    assert round(point.lower_limit or 0, 4) == 0.0407
    assert round(point.upper_limit or 0, 4) == 0.3893


def test_qicharts2_reference_p_chart_with_exclude_and_part() -> None:
    # tests/testthat/ex_7.1_5.rds: qic(sample, count, size, data = tbl_07.03, chart = 'p',
    # exclude = c(15, 23), part = 30)
    chart = control_chart(
        "P", numerators=ORANGE_JUICE, denominators=[50] * 94, exclude=[15, 23], parts=[30]
    )
    first, second = chart.parts
    assert (first.from_index, first.to_index, second.from_index, second.to_index) == (0, 29, 30, 93)
    assert first.center_line == pytest.approx(0.215, abs=1e-9)
    assert chart.points[0].lower_limit == pytest.approx(0.04070284, abs=1e-8)
    assert chart.points[0].upper_limit == pytest.approx(0.38929716, abs=1e-8)
    assert second.center_line == pytest.approx(0.1096875, abs=1e-9)
    assert chart.points[50].lower_limit == 0.0
    assert chart.points[50].upper_limit == pytest.approx(0.242269955, abs=1e-9)
    assert outside_positions(chart) == [15, 21, 23]  # excluded points are still flagged
    assert (first.useful_observations, first.longest_run, first.longest_run_limit) == (28, 5, 8)
    assert (first.crossings, first.crossings_limit) == (13, 9)
    assert (second.useful_observations, second.longest_run, second.longest_run_limit) == (64, 7, 9)
    assert (second.crossings, second.crossings_limit) == (30, 25)
    assert chart.points[14].excluded and not chart.points[13].excluded


def test_qicharts2_reference_p_chart_with_varying_sizes() -> None:
    # tests/testthat/tbl_7.4_1.rds: qic(sample, count, size, data = tbl_07.04, chart = 'p')
    chart = control_chart("P", numerators=TBL_07_04_D, denominators=TBL_07_04_N)
    expected = {
        100: (0.00733469473, 0.183685713),
        80: (0.0, 0.194093421),
        110: (0.0114381546, 0.179582254),
        90: (0.00256505628, 0.188455352),
        120: (0.0150173449, 0.176003063),
    }
    for point, size in zip(chart.points, TBL_07_04_N, strict=True):
        assert point.center_line == pytest.approx(0.0955102041, abs=1e-10)
        lower, upper = expected[size]
        assert point.lower_limit == pytest.approx(lower, abs=1e-9)
        assert point.upper_limit == pytest.approx(upper, abs=1e-9)
    assert outside_positions(chart) == [11]
    part = chart.parts[0]
    assert (part.useful_observations, part.longest_run, part.crossings) == (25, 5, 10)


def test_qicharts2_reference_c_chart_with_exclude_and_freeze() -> None:
    # tests/testthat/ex_7.3_3.rds: qic(sample, count, data = tbl_07.08, chart = 'c',
    # exclude = c(6, 20), freeze = 26); Montgomery's revised c̄ = 19.67.
    chart = control_chart("C", numerators=TBL_07_08, exclude=[6, 20], freeze=26)
    (part,) = chart.parts
    assert part.center_line == pytest.approx(19.666667, abs=1e-6)
    assert chart.points[0].lower_limit == pytest.approx(6.362532, abs=1e-6)
    assert chart.points[0].upper_limit == pytest.approx(32.970801, abs=1e-6)
    assert outside_positions(chart) == [6, 20]
    assert (part.useful_observations, part.longest_run, part.longest_run_limit) == (44, 8, 8)
    assert (part.crossings, part.crossings_limit) == (14, 16)
    assert SignalRule.FEW_CROSSINGS in {signal.rule for signal in chart.signals}  # runs.signal


def test_qicharts2_reference_i_and_mr_charts_with_freeze() -> None:
    # tests/testthat/ex_6.5_3.rds and ex_6.5_4.rds: qic(weeks, cost, data = tbl_06.07,
    # chart = 'i' / 'mr', freeze = 20)
    chart = control_chart("I", values=TBL_06_07, freeze=20)
    (part,) = chart.parts
    assert part.center_line == pytest.approx(300.5, abs=1e-9)
    assert chart.points[30].lower_limit == pytest.approx(279.783315, abs=1e-6)
    assert chart.points[30].upper_limit == pytest.approx(321.216685, abs=1e-6)
    assert outside_positions(chart) == [39, 40]
    assert (part.useful_observations, part.longest_run, part.crossings) == (40, 6, 20)
    mr = control_chart("MR", values=TBL_06_07, freeze=20)
    (mr_part,) = mr.parts
    assert mr.points[0].value is None
    assert mr.points[1].value == 22.0
    assert mr_part.center_line == pytest.approx(7.789474, abs=1e-6)
    assert mr.points[1].lower_limit == 0.0
    assert mr.points[1].upper_limit == pytest.approx(25.448211, abs=1e-6)
    assert outside_positions(mr) == [39]
    assert (mr_part.useful_observations, mr_part.longest_run, mr_part.crossings) == (39, 7, 21)
    assert all(signal.rule is SignalRule.OUTSIDE_LIMITS for signal in mr.signals)


def test_qicharts2_reference_u_charts_and_multiplier() -> None:
    # tests/testthat/ex_7.4_1.rds: qic(sample, count, size, data = tbl_07.10, chart = 'u')
    counts = [2, 3, 8, 1, 1, 4, 1, 4, 5, 1, 8, 2, 4, 3, 4, 1, 8, 3, 7, 4]
    chart = control_chart("U", numerators=counts, denominators=[50] * 20)
    assert chart.points[0].center_line == pytest.approx(0.074, abs=1e-12)
    assert chart.points[0].lower_limit == 0.0
    assert chart.points[0].upper_limit == pytest.approx(0.189412304, abs=1e-9)
    assert (chart.parts[0].longest_run, chart.parts[0].crossings) == (2, 15)
    # tests/testthat/ex_7.5_1.rds: qic(roll, count, meters, data = tbl_07.11, chart = 'u',
    # multiply = 50)
    meters = [500, 400, 650, 500, 475, 500, 600, 525, 600, 625]
    defects = [14, 12, 20, 11, 7, 10, 21, 16, 19, 23]
    scaled = control_chart("U", numerators=defects, denominators=meters, multiplier=50)
    assert scaled.points[0].center_line == pytest.approx(1.42325581, abs=1e-8)
    limits = [(0.29147393, 2.5550377), (0.1578852, 2.68862643), (0.430617437, 2.41589419)]
    for point, (lower, upper) in zip(scaled.points, limits, strict=False):
        assert point.lower_limit == pytest.approx(lower, abs=1e-8)
        assert point.upper_limit == pytest.approx(upper, abs=1e-8)
    assert scaled.points[4].value == pytest.approx(0.736842105, abs=1e-9)


def test_p_prime_chart_matches_the_vignette_figure() -> None:
    # qicharts2 vignette, "Case 5: Prime charts": labels at week 20 (percent, 3 decimals):
    # UCL 96.582, CL 95.290, LCL 93.997.
    chart = control_chart("P_PRIME", numerators=NHS_R, denominators=NHS_N, multiplier=100)
    last = chart.points[-1]
    assert last.center_line == pytest.approx(95.290, abs=5e-4)
    assert last.lower_limit == pytest.approx(93.997, abs=5e-4)
    assert last.upper_limit == pytest.approx(96.582, abs=5e-4)
    assert chart.signals == ()
    # The P chart of the same data is over-dispersed: most points fall outside its limits.
    assert len(outside_positions(control_chart("P", numerators=NHS_R, denominators=NHS_N))) > 10


@pytest.mark.parametrize("chart", [ControlChartType.P_PRIME, ControlChartType.U_PRIME])
def test_prime_chart_with_equal_sizes_is_the_i_chart(chart: ControlChartType) -> None:
    # Laney (2002): with equal subgroup sizes the z-scores are the values rescaled, so the
    # prime chart's limits equal the XmR (I chart) limits of the proportions or rates.
    counts = [40, 47, 39, 52, 45, 41, 50, 44, 38, 49, 46, 43]
    prime = control_chart(chart, numerators=counts, denominators=[100] * 12)
    individuals = control_chart("I", numerators=counts, denominators=[100] * 12)
    for a, b in zip(prime.points, individuals.points, strict=True):
        assert a.center_line == pytest.approx(b.center_line, abs=1e-12)
        assert a.lower_limit == pytest.approx(b.lower_limit, abs=1e-12)
        assert a.upper_limit == pytest.approx(b.upper_limit, abs=1e-12)


def test_anhoej_and_mdc_i_chart_constants_differ() -> None:
    # qicharts2: 3 / 1.128 = 2.6596 x MR-bar; MDC: exactly 2.66 x MR-bar (ANALYTICS.md).
    anhoej = control_chart("I", values=[1.0, 3.0, 2.0, 4.0, 3.0], screen_moving_ranges=False)
    mdc = control_chart(
        "I", values=[1.0, 3.0, 2.0, 4.0, 3.0], rules="MDC", screen_moving_ranges=False
    )
    assert anhoej.parts[0].moving_range_mean == 1.5  # |3-1|, |2-3|, |4-2|, |3-4|
    assert anhoej.points[0].upper_limit == pytest.approx(2.6 + 3 * 1.5 / 1.128, abs=1e-12)
    assert mdc.points[0].upper_limit == pytest.approx(2.6 + 2.66 * 1.5, abs=1e-12)


def test_mdc_shift_and_two_of_three_cases_from_nhsrplotthedots_tests() -> None:
    # NHSRplotthedots tests/testthat/test-ptd_calculate_point_type.R
    up, down = Side.HIGH, Side.LOW
    # ptd_seven_point_one_side_mean: 6 above then below -> nothing; 8 above -> all 8.
    assert same_side_runs([up] * 6 + [down], 7) == []
    assert same_side_runs([up] * 8 + [down], 7) == [range(0, 8)]
    assert same_side_runs([down] * 8 + [up], 7) == [range(0, 8)]
    # ptd_two_in_three / ptd_part_of_two_in_three
    assert two_of_three([up] * 3, [True, False, True]) == [0, 2]
    assert two_of_three([up] * 3, [False, True, True]) == [1, 2]
    assert two_of_three([up] * 7, [False, False, True, False, True, False, False]) == [2, 4]
    assert two_of_three([up] * 7, [False, False, True, True, False, False, False]) == [2, 3]
    assert two_of_three([up] * 4, [True, False, False, True]) == []
    assert two_of_three([up] * 5, [True, False, False, True, True]) == [3, 4]
    assert two_of_three([up, down, up], [True, False, True]) == []
    assert (
        two_of_three([down, up, down, up, down, up, down], [False, False, True, True] + [False] * 3)
        == []
    )
    assert same_side_runs([up] * 3 + [None] + [up] * 4, 7) == []  # a point on the mean breaks it


def test_mdc_rules_on_a_chart() -> None:
    # Seven points in a row above the mean after seven below: two SHIFTs, tagged by direction.
    values = [1.0, 2.0, 1.5, 1.0, 2.0, 1.5, 1.0, 9.0, 8.0, 9.5, 8.5, 9.0, 8.0, 9.5]
    chart = control_chart("I", values=values, rules="MDC", improvement_direction="DECREASE")
    shifts = [s for s in chart.signals if s.rule is SignalRule.SHIFT]
    assert [(s.indices, s.side, s.variation) for s in shifts] == [
        (tuple(range(7)), Side.LOW, Variation.IMPROVEMENT),
        (tuple(range(7, 14)), Side.HIGH, Variation.CONCERN),
    ]
    assert all(s.rule is not SignalRule.LONG_RUN for s in chart.signals)


def test_outside_limits_is_strict() -> None:
    # A C chart with c-bar = 4 has UCL 4 + 3 x 2 = 10 exactly: a count of 10 is not a signal.
    counts = [4.0] * 15 + [10.0]
    chart = control_chart("C", numerators=counts, freeze=15)
    assert chart.points[-1].upper_limit == 10.0
    assert not chart.points[-1].outside_limits
    assert outside_positions(chart) == []


def test_zero_and_missing_denominators_have_no_value_and_no_limits() -> None:
    chart = control_chart("P", numerators=[5, 3, 4, 6, None], denominators=[10, 0, 10, 10, 10])
    assert chart.points[1].value is None and chart.points[1].upper_limit is None
    assert chart.points[4].value is None and chart.points[4].lower_limit is None
    assert chart.parts[0].center_line == pytest.approx(15 / 30)
    assert chart.points[1].numerator == 3 and chart.points[1].denominator == 0


def test_missing_value_breaks_moving_ranges() -> None:
    chart = control_chart("I", values=[1.0, 3.0, None, 10.0, 12.0], screen_moving_ranges=False)
    assert chart.parts[0].moving_range_mean == 2.0  # |3-1| and |12-10| only
    assert chart.points[2].lower_limit is None and chart.points[2].center_line == 6.5


@pytest.mark.parametrize("chart", list(ControlChartType))
@pytest.mark.parametrize(
    "series",
    [[], [5.0], [None, None], [3.0, 3.0, 3.0, 3.0], [0.0, 0.0, 0.0], [1.0, math.nan, 2.0]],
)
def test_edge_cases_do_not_raise(chart: ControlChartType, series: list[float | None]) -> None:
    for rules in ControlChartRules:
        result = control_chart(
            chart,
            values=series,
            numerators=series,
            denominators=[10.0 if value is not None else None for value in series],
            rules=rules,
            freeze=1,
            exclude=[7],
        )
        assert len(result.points) == len(series)
        assert not any(point.outside_limits for point in result.points)


def test_constant_series_has_no_limits_after_screening() -> None:
    # Every moving range is 0, so none is strictly below 3.267 x 0 (qicharts2 gives NA limits).
    chart = control_chart("I", values=[3.0, 3.0, 3.0, 3.0])
    assert chart.points[0].center_line == 3.0 and chart.points[0].upper_limit is None
    unscreened = control_chart("I", values=[3.0, 3.0, 3.0], screen_moving_ranges=False)
    assert unscreened.points[0].upper_limit == 3.0 and unscreened.signals == ()


def test_missing_inputs_raise_value_error() -> None:
    with pytest.raises(ValueError, match="numerators and denominators"):
        control_chart("P", values=[1.0])
    with pytest.raises(ValueError, match="same length"):
        control_chart("U", numerators=[1.0, 2.0], denominators=[3.0])
