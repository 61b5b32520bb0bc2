"""The IHI Assessment Scale: valid scores, level labels, and the monthly summary."""

from __future__ import annotations

import math

import pytest

from analytics.assessment_scale import LEVELS, label, score_problem, summarize


def test_every_half_step_from_half_to_five_is_a_level() -> None:
    assert list(LEVELS) == [x / 2 for x in range(1, 11)]
    assert label(0.5) == "Intent to participate"
    assert label(1.0) == "Forming team"
    assert label(2.5) == "Changes tested, but no improvement"
    assert label(4.0) == "Significant improvement"
    assert label(5.0) == "Outstanding sustainable results"


@pytest.mark.parametrize("score", [0.0, 0.25, 1.2, 4.75, 5.5, -1.0, math.nan, math.inf])
def test_scores_off_the_scale_are_refused(score: float) -> None:
    assert score_problem(score) is not None
    with pytest.raises(ValueError):
        label(score)


def test_summary_counts_levels_share_and_gaps() -> None:
    faculty = {"a": 4.0, "b": 3.5, "c": 4.5, "d": 2.0}
    self_scores = {"a": 4.5, "b": 3.5, "c": 4.0, "e": 3.0}
    summary = summarize(faculty, faculty=faculty, self_scores=self_scores)
    assert summary.teams_assessed == 4
    counts = {level.score: level.teams for level in summary.distribution}
    assert len(counts) == 10 and sum(counts.values()) == 4
    assert counts[4.0] == counts[3.5] == counts[4.5] == counts[2.0] == 1
    assert summary.teams_at_or_above_threshold == 2
    assert summary.share_at_or_above_threshold == 0.5
    assert summary.mean == 3.5 and summary.median == 3.75
    assert [(g.team, g.gap) for g in summary.gaps] == [("a", 0.5), ("b", 0.0), ("c", -0.5)]
    assert summary.mean_gap == 0.0
    assert summary.mean_absolute_gap == pytest.approx(1 / 3)


def test_summary_of_nothing_is_empty_not_zero() -> None:
    nothing: dict[str, float] = {}
    summary = summarize(nothing, faculty=nothing, self_scores=nothing)
    assert summary.teams_assessed == 0
    assert summary.share_at_or_above_threshold is None
    assert summary.mean is None and summary.median is None and summary.mean_gap is None
