"""Period arithmetic, chart type from scoring, and the qicharts2-style series layout."""

from __future__ import annotations

import pytest

from analytics.charts import (
    ControlChartType,
    Side,
    Variation,
    chart_type_for_scoring,
    series_layout,
    variation_for,
)
from analytics.periods import (
    add_months,
    is_period,
    month_range,
    months_between,
    next_month,
    parse_period,
    previous_month,
)


def test_period_parsing() -> None:
    assert parse_period("2024-03") == (2024, 3)
    for bad in ["2024-13", "2024-3", "24-03", "1899-12", "2024-03-01", ""]:
        assert not is_period(bad)
        with pytest.raises(ValueError):
            parse_period(bad)
    assert not is_period(None)


def test_month_arithmetic() -> None:
    assert next_month("2024-12") == "2025-01"
    assert previous_month("2024-01") == "2023-12"
    assert add_months("2024-03", 18) == "2025-09"
    assert months_between("2024-11", "2025-02") == 3
    assert months_between("2025-02", "2024-11") == -3
    assert month_range("2024-11", "2025-02") == ["2024-11", "2024-12", "2025-01", "2025-02"]
    assert month_range("2025-02", "2024-11") == []
    assert month_range("2024-05", "2024-05") == ["2024-05"]


@pytest.mark.parametrize(
    ("scoring", "chart"),
    [
        ("PROPORTION", ControlChartType.P),
        ("RATE", ControlChartType.U),
        ("COUNT", ControlChartType.C),
        ("MEAN", ControlChartType.I),
        ("RATIO", ControlChartType.I),
        (None, ControlChartType.I),
    ],
)
def test_chart_type_from_scoring(scoring: str | None, chart: ControlChartType) -> None:
    assert chart_type_for_scoring(scoring) is chart


def test_layout_follows_qicharts2_makeparts() -> None:
    layout = series_layout(10, parts=[4, 7, 7, 0, 10, 12])
    assert layout.parts == (range(0, 4), range(4, 7), range(7, 10))
    assert layout.baseline == (True,) * 10
    frozen = series_layout(5, freeze=2, exclude=[1, 9])
    assert frozen.baseline == (True, True, False, False, False)
    assert frozen.included == (False, True, True, True, True)
    assert series_layout(0).parts == ()


def test_variation_from_improvement_direction() -> None:
    assert variation_for(Side.HIGH, "INCREASE") is Variation.IMPROVEMENT
    assert variation_for(Side.HIGH, "DECREASE") is Variation.CONCERN
    assert variation_for(Side.LOW, "DECREASE") is Variation.IMPROVEMENT
    assert variation_for(None, "INCREASE") is None and variation_for(Side.LOW, None) is None
