"""The IHI Assessment Scale for collaborative teams, and a collaborative's monthly summary.

Faculty and teams score each team every month from 1.0 ("forming team") to 5.0 ("outstanding
sustainable results") in steps of 0.5; 0.5 ("intent to participate") is used for teams that have
signed up but not yet formed. The collaborative's headline is the share of teams at 4.0
("significant improvement") or above.

Pure functions: no database, no GraphQL.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Hashable, Mapping
from dataclasses import dataclass
from typing import Generic, TypeVar

KeyT = TypeVar("KeyT", bound=Hashable)

LEVELS: dict[float, str] = {
    0.5: "Intent to participate",
    1.0: "Forming team",
    1.5: "Planning begun",
    2.0: "Activity, but no changes",
    2.5: "Changes tested, but no improvement",
    3.0: "Modest improvement",
    3.5: "Improvement",
    4.0: "Significant improvement",
    4.5: "Sustainable improvement",
    5.0: "Outstanding sustainable results",
}
"""Every score of the scale with its level label, lowest first."""

MIN_SCORE = 0.5
MAX_SCORE = 5.0
STEP = 0.5
HEADLINE_THRESHOLD = 4.0
"""Teams at or above this score count towards the collaborative's headline."""


def score_problem(score: float) -> str | None:
    """Why ``score`` is not a score of the scale, or None when it is one."""
    if not math.isfinite(score):
        return "a score is a finite number"
    if not MIN_SCORE <= score <= MAX_SCORE:
        return f"a score is between {MIN_SCORE} and {MAX_SCORE}"
    if score / STEP != round(score / STEP):
        return f"a score is a multiple of {STEP} (1.0, 1.5, 2.0 ...)"
    return None


def label(score: float) -> str:
    """The level label of a valid score (ValueError for anything else)."""
    problem = score_problem(score)
    if problem is not None:
        raise ValueError(problem)
    return LEVELS[round(score / STEP) * STEP]


@dataclass(frozen=True)
class LevelCount:
    """How many teams scored one level of the scale."""

    score: float
    label: str
    teams: int


@dataclass(frozen=True)
class RaterGap(Generic[KeyT]):
    """One team scored by both raters; ``gap`` is self minus faculty (positive: the team rates
    itself higher than faculty do)."""

    team: KeyT
    faculty: float
    self_score: float
    gap: float


@dataclass(frozen=True)
class ScaleSummary(Generic[KeyT]):
    """The scores of one rater for a month, and how the other rater's scores differ."""

    teams_assessed: int
    distribution: tuple[LevelCount, ...]
    mean: float | None
    median: float | None
    teams_at_or_above_threshold: int
    share_at_or_above_threshold: float | None
    gaps: tuple[RaterGap[KeyT], ...]
    mean_gap: float | None
    mean_absolute_gap: float | None


def summarize(
    scores: Mapping[KeyT, float],
    *,
    faculty: Mapping[KeyT, float],
    self_scores: Mapping[KeyT, float],
    threshold: float = HEADLINE_THRESHOLD,
) -> ScaleSummary[KeyT]:
    """Distribution (every level, zeros included), mean, median and the share at or above
    ``threshold`` of ``scores`` (one rater's, by team); gaps for the teams both raters scored.

    The share is of the teams in ``scores`` (the teams assessed), None when there are none.
    Gaps are listed in the order of ``faculty``.
    """
    values = list(scores.values())
    counts = {level: 0 for level in LEVELS}
    for value in values:
        counts[round(value / STEP) * STEP] += 1
    at_or_above = sum(1 for value in values if value >= threshold)
    gaps = tuple(
        RaterGap(team, faculty[team], self_scores[team], self_scores[team] - faculty[team])
        for team in faculty
        if team in self_scores
    )
    return ScaleSummary(
        teams_assessed=len(values),
        distribution=tuple(LevelCount(level, LEVELS[level], counts[level]) for level in LEVELS),
        mean=statistics.fmean(values) if values else None,
        median=statistics.median(values) if values else None,
        teams_at_or_above_threshold=at_or_above,
        share_at_or_above_threshold=at_or_above / len(values) if values else None,
        gaps=gaps,
        mean_gap=statistics.fmean(g.gap for g in gaps) if gaps else None,
        mean_absolute_gap=statistics.fmean(abs(g.gap) for g in gaps) if gaps else None,
    )
