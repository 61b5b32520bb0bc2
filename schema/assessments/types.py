"""GraphQL projections of IHI Assessment Scale scores, the scale itself, and a collaborative's
monthly summary (distribution, share of teams at 4.0 or above, faculty-versus-self gaps)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import TYPE_CHECKING, Annotated

import strawberry

from analytics.assessment_scale import HEADLINE_THRESHOLD, LEVELS, summarize
from analytics.assessment_scale import label as level_label
from db.enums import AssessmentRater
from db.models import Assessment as AssessmentModel
from schema.context import Info
from schema.errors import forbidden
from schema.ids import encode_global_id
from schema.node import Node
from schema.permissions import require_principal
from schema.scalars import Period
from schema.team_access import check_team_read

if TYPE_CHECKING:
    from schema.teams.types import Team


@strawberry.type(description="A level of the IHI Assessment Scale.")
class AssessmentLevel:
    score: float = strawberry.field(description="The score, 0.5 to 5.0 in steps of 0.5.")
    label: str = strawberry.field(description="What the level means, e.g. 'Modest improvement'.")


ASSESSMENT_SCALE = [AssessmentLevel(score=score, label=text) for score, text in LEVELS.items()]
"""Every level, lowest first."""


@strawberry.type(description="A team's score for one month on the IHI Assessment Scale.")
class Assessment(Node):
    period: Period = strawberry.field(description="The month scored.")
    rater: AssessmentRater = strawberry.field(description="FACULTY or SELF (the team).")
    score: float = strawberry.field(description="The score, 0.5 to 5.0 in steps of 0.5.")
    label: str = strawberry.field(description="The level's label, e.g. 'Modest improvement'.")
    justification: str = strawberry.field(description="Why this score (evidence, progress).")
    recorded_at: datetime = strawberry.field(description="When the score was last recorded.")
    recorded_by: str = strawberry.field(description="Client that recorded it last.")
    row_id: strawberry.Private[uuid.UUID]
    team_id: strawberry.Private[uuid.UUID]

    @classmethod
    def from_model(cls, row: AssessmentModel) -> Assessment:
        return cls(
            id=strawberry.ID(encode_global_id("Assessment", row.id)),
            period=Period(row.period),
            rater=row.rater,
            score=row.score,
            label=level_label(row.score),
            justification=row.justification,
            recorded_at=row.updated_at,
            recorded_by=row.recorded_by,
            row_id=row.id,
            team_id=row.team_id,
        )

    @strawberry.field(description="The team scored.")
    async def team(self, info: Info) -> Annotated[Team, strawberry.lazy("schema.teams.types")]:
        from schema.teams.types import Team  # teams.types imports this module

        row = await info.context.loaders.team_by_id.load(self.team_id)
        assert row is not None, "assessments reference teams of the same sponsor"
        return Team.from_model(row)


@strawberry.type(description="How many teams scored one level of the scale.")
class AssessmentLevelCount:
    score: float = strawberry.field(description="The level's score.")
    label: str = strawberry.field(description="The level's label.")
    teams: int = strawberry.field(description="Teams with this score (0 included).")


@strawberry.type(description="A team scored by both faculty and itself in the month.")
class AssessmentGap:
    faculty_score: float = strawberry.field(description="The faculty's score.")
    self_score: float = strawberry.field(description="The team's own score.")
    gap: float = strawberry.field(
        description="Self minus faculty: positive when the team rates itself higher."
    )
    team_id: strawberry.Private[uuid.UUID]

    @strawberry.field(description="The team.")
    async def team(self, info: Info) -> Annotated[Team, strawberry.lazy("schema.teams.types")]:
        from schema.teams.types import Team  # teams.types imports this module

        row = await info.context.loaders.team_by_id.load(self.team_id)
        assert row is not None, "summaries list teams of the same sponsor"
        return Team.from_model(row)


@strawberry.type(
    description=(
        "A collaborative's IHI Assessment Scale scores for one month: the distribution, the "
        "share of teams at 4.0 (significant improvement) or above, and where the teams' own "
        "scores differ from the faculty's."
    )
)
class AssessmentSummary:
    period: Period = strawberry.field(description="The month.")
    rater: AssessmentRater = strawberry.field(
        description="Whose scores the distribution, mean and share count."
    )
    teams_assessed: int = strawberry.field(description="Teams with a score by that rater.")
    distribution: list[AssessmentLevelCount] = strawberry.field(
        description="Every level of the scale, lowest first, with its number of teams."
    )
    mean_score: float | None = strawberry.field(description="Mean score; null without scores.")
    median_score: float | None = strawberry.field(description="Median; null without scores.")
    teams_at_four_or_above: int = strawberry.field(
        description="Teams scoring 4.0 (significant improvement) or above."
    )
    share_at_four_or_above: float | None = strawberry.field(
        description="Those teams as a share (0-1) of the teams assessed; null without scores."
    )
    gaps: list[AssessmentGap] = strawberry.field(
        description="Teams scored by both faculty and themselves, by team code."
    )
    mean_gap: float | None = strawberry.field(
        description="Mean of self minus faculty over those teams; null when there are none."
    )
    mean_absolute_gap: float | None = strawberry.field(
        description="Mean size of the gap, whichever the direction; null when there are none."
    )


async def team_assessments(
    info: Info,
    team_id: uuid.UUID,
    *,
    rater: AssessmentRater | None,
    from_: str | None,
    to: str | None,
) -> list[Assessment]:
    """``Team.assessments``: the team's scores by month (FACULTY before SELF), filtered."""
    check_team_read(info, team_id)
    rows = await info.context.loaders.assessments_by_team_id.load(team_id)
    return [
        Assessment.from_model(row)
        for row in rows
        if (rater is None or row.rater is rater)
        and (from_ is None or row.period >= from_)
        and (to is None or row.period <= to)
    ]


async def assessment_summary(
    info: Info, collaborative_id: uuid.UUID, period: str, rater: AssessmentRater
) -> AssessmentSummary:
    """``Collaborative.assessmentSummary``: it names teams, so team-bound clients may not read
    it (top-level FORBIDDEN)."""
    if require_principal(info).is_team_bound:
        raise forbidden("this client may read the content of its own teams only")
    rows = await info.context.loaders.assessments_by_collaborative_period.load(
        (collaborative_id, period)
    )
    faculty = {row.team_id: row.score for row in rows if row.rater is AssessmentRater.FACULTY}
    self_scores = {row.team_id: row.score for row in rows if row.rater is AssessmentRater.SELF}
    summary = summarize(
        faculty if rater is AssessmentRater.FACULTY else self_scores,
        faculty=faculty,
        self_scores=self_scores,
        threshold=HEADLINE_THRESHOLD,
    )
    return AssessmentSummary(
        period=Period(period),
        rater=rater,
        teams_assessed=summary.teams_assessed,
        distribution=[
            AssessmentLevelCount(score=level.score, label=level.label, teams=level.teams)
            for level in summary.distribution
        ],
        mean_score=summary.mean,
        median_score=summary.median,
        teams_at_four_or_above=summary.teams_at_or_above_threshold,
        share_at_four_or_above=summary.share_at_or_above_threshold,
        gaps=[
            AssessmentGap(
                faculty_score=gap.faculty,
                self_score=gap.self_score,
                gap=gap.gap,
                team_id=gap.team,
            )
            for gap in summary.gaps
        ],
        mean_gap=summary.mean_gap,
        mean_absolute_gap=summary.mean_absolute_gap,
    )
