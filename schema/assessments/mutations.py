"""Mutation ``recordAssessment`` and query ``assessmentScale``.

FACULTY scores are recorded by faculty and staff (``program:write``, not team-bound); SELF
scores by them or by a team-bound client for its own team (``data:write``), see
:mod:`schema.team_access`. One score per (team, period, rater): recording again replaces it,
and the audit trail keeps the one replaced.
"""

from __future__ import annotations

from typing import Annotated

import strawberry

from db.enums import AssessmentRater
from db.errors import DomainError
from db.queries.content import AssessmentInput, record_assessment
from schema.assessments.types import ASSESSMENT_SCALE, Assessment, AssessmentLevel
from schema.context import Info
from schema.errors import ConflictError, ForbiddenError, NotFoundError, ValidationError
from schema.permissions import HasScope, require_principal
from schema.scalars import Period
from schema.team_access import (
    TEAM_WRITE_SCOPES,
    HasAnyScope,
    content_error,
    require_staff,
    writable_team_ids,
)
from schema.validation import check_text

JUSTIFICATION_MAX = 5_000


@strawberry.input(description="A team's score for one month on the IHI Assessment Scale.")
class RecordAssessmentInput:
    team: str = strawberry.field(description="Code of the team.")
    period: Period = strawberry.field(description="The month scored (not a future one).")
    rater: AssessmentRater = strawberry.field(description="FACULTY or SELF.")
    score: float = strawberry.field(
        description=(
            "1.0 (forming team) to 5.0 (outstanding sustainable results) in steps of 0.5; 0.5 "
            "for a team that has only signed up (intent to participate)."
        )
    )
    justification: str = strawberry.field(
        default="", description="Why this score: evidence and progress, up to 5,000 characters."
    )


@strawberry.type(description="The score was recorded.")
class RecordAssessmentSuccess:
    assessment: Assessment = strawberry.field(description="The score as stored.")
    replaced: bool = strawberry.field(
        description="True when it replaced an earlier score for the same team, month and rater."
    )


RecordAssessmentResult = Annotated[
    RecordAssessmentSuccess | ValidationError | NotFoundError | ForbiddenError | ConflictError,
    strawberry.union("RecordAssessmentResult"),
]


@strawberry.type
class AssessmentQueries:
    @strawberry.field(
        description="The levels of the IHI Assessment Scale with their labels, lowest first.",
        permission_classes=[HasScope("program:read")],
    )
    def assessment_scale(self) -> list[AssessmentLevel]:
        return list(ASSESSMENT_SCALE)


@strawberry.type
class AssessmentMutations:
    @strawberry.mutation(
        description=(
            "Score a team for a month on the IHI Assessment Scale, as faculty (program:write) or "
            "as the team itself (SELF; team-bound clients for their own teams). Recording the "
            "same team, month and rater again replaces the score."
        ),
        permission_classes=[HasAnyScope(*TEAM_WRITE_SCOPES)],
    )
    async def record_assessment(
        self, info: Info, input: RecordAssessmentInput
    ) -> RecordAssessmentResult:
        try:
            principal = require_principal(info)
            team_ids = writable_team_ids(principal)
            if input.rater is AssessmentRater.FACULTY:
                require_staff(principal)
            check_text(input.team, "team", max_length=64, required=True)
            check_text(input.justification, "justification", max_length=JUSTIFICATION_MAX)
            async with info.context.db.begin() as session:
                row, replaced = await record_assessment(
                    session,
                    info.context.actor(),
                    AssessmentInput(
                        team_code=input.team,
                        period=input.period,
                        rater=input.rater,
                        score=input.score,
                        justification=input.justification.strip(),
                    ),
                    team_ids=team_ids,
                )
        except DomainError as exc:
            return content_error(exc)
        return RecordAssessmentSuccess(assessment=Assessment.from_model(row), replaced=replaced)
