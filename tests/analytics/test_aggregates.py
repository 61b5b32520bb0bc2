"""Aggregates of team rates for one period, including PostgreSQL's percentile_cont median."""

from __future__ import annotations

import pytest

from analytics.aggregates import (
    mean_of_rates,
    median_of_rates,
    meets_goal,
    percentile_cont,
    pooled_rate,
    rate,
    teams_meeting_goal,
    teams_reporting,
)


def test_pooled_rate_weighs_teams_by_denominator() -> None:
    assert pooled_rate([1, 30, None], [10, 90, 50], multiplier=100) == pytest.approx(31.0)
    assert pooled_rate([], []) is None
    assert pooled_rate([0, 0], [0, 0]) is None


def test_rate_handles_zero_and_missing_denominators() -> None:
    assert rate(3, 4, 100) == 75.0
    assert rate(3, 0) is None and rate(None, 4) is None


def test_median_is_percentile_cont_half() -> None:
    # PostgreSQL docs: percentile_cont interpolates between adjacent input items.
    assert median_of_rates([0.1, 0.4, 0.2, 0.3]) == pytest.approx(0.25)
    assert median_of_rates([3.0, None, 1.0, 2.0]) == 2.0
    assert median_of_rates([]) is None
    assert percentile_cont([1, 2, 3, 4, 5], 0.25) == 2.0
    assert percentile_cont([10, 20], 0.25) == pytest.approx(12.5)


def test_mean_and_count_of_team_rates() -> None:
    assert mean_of_rates([0.1, None, 0.3]) == pytest.approx(0.2)
    assert mean_of_rates([None]) is None
    assert teams_reporting([0.1, None, 0.3]) == 2


def test_teams_meeting_goal_follow_the_improvement_direction() -> None:
    rates = [0.5, 0.8, 0.9, None]
    assert teams_meeting_goal(rates, 0.8, "INCREASE") == 2  # the goal itself counts
    assert teams_meeting_goal(rates, 0.8, "DECREASE") == 2
    assert teams_meeting_goal(rates, None, "INCREASE") is None
    assert meets_goal(None, 0.8, "INCREASE") is None
