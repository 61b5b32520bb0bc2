"""Mutation ``recordSurveyResponse``: a team's answers to an instrument in one wave.

Faculty and staff (``program:write``) record for any team, team-bound clients (``data:write``)
for their own teams (:mod:`schema.team_access`). One response per (team, instrument, wave):
recording the same wave again replaces the answers (audited). Instruments themselves are loaded
from JSON files with ``collabx instruments load``.
"""

from __future__ import annotations

from datetime import date
from typing import Annotated

import strawberry

from db.enums import SurveyWave
from db.errors import DomainError, InvalidInput
from db.instruments import MAX_ITEMS, VERSION_PATTERN
from db.queries.instruments import SurveyResponseInput, record_survey_response
from schema.context import Info
from schema.errors import ConflictError, ForbiddenError, NotFoundError, ValidationError
from schema.instruments.types import SurveyResponse
from schema.permissions import require_principal
from schema.team_access import TEAM_WRITE_SCOPES, HasAnyScope, content_error, writable_team_ids
from schema.validation import check_text

CODE_MAX = 64


@strawberry.input(description="The answer to one item; a null value leaves it unanswered.")
class SurveyAnswerInput:
    item: str = strawberry.field(description="The item's code.")
    value: float | None = strawberry.field(
        description="A number on the item's scale (on its step); null: not answered."
    )


@strawberry.input(description="A team's answers to an instrument in one wave.")
class RecordSurveyResponseInput:
    team: str = strawberry.field(description="Code of the team.")
    instrument: str = strawberry.field(description="Code of the instrument, e.g. 'acic'.")
    version: str | None = strawberry.field(
        default=None, description="Version answered; omitted: the instrument's current one."
    )
    wave: SurveyWave = strawberry.field(description="BASELINE, MIDPOINT, FINAL or DATED.")
    administered_on: date | None = strawberry.field(
        default=None,
        description="When the team answered; required for DATED, which it identifies.",
    )
    answers: list[SurveyAnswerInput] = strawberry.field(
        description="The answers; items left out count as missing."
    )


@strawberry.type(description="The response was recorded.")
class RecordSurveyResponseSuccess:
    survey_response: SurveyResponse = strawberry.field(description="The response, scored.")
    replaced: bool = strawberry.field(
        description="True when it replaced an earlier response for the same wave."
    )


RecordSurveyResponseResult = Annotated[
    RecordSurveyResponseSuccess | ValidationError | NotFoundError | ForbiddenError | ConflictError,
    strawberry.union("RecordSurveyResponseResult"),
]


def _response(input: RecordSurveyResponseInput) -> SurveyResponseInput:
    """The checked input (InvalidInput naming the first bad field)."""
    check_text(input.team, "team", max_length=CODE_MAX, required=True)
    check_text(input.instrument, "instrument", max_length=CODE_MAX, required=True)
    if input.version is not None and not VERSION_PATTERN.fullmatch(input.version):
        raise InvalidInput("not a version label", field="version")
    if len(input.answers) > MAX_ITEMS:
        raise InvalidInput(f"at most {MAX_ITEMS} answers", field="answers")
    for answer in input.answers:
        check_text(answer.item, "answers", max_length=CODE_MAX, required=True)
    return SurveyResponseInput(
        team_code=input.team,
        instrument_code=input.instrument,
        version=input.version,
        wave=input.wave,
        administered_on=input.administered_on,
        answers=[(answer.item, answer.value) for answer in input.answers],
    )


@strawberry.type
class InstrumentMutations:
    @strawberry.mutation(
        description=(
            "Record a team's answers to a survey instrument in one wave (BASELINE, MIDPOINT, "
            "FINAL or a date); the server scores them. The same wave again replaces the answers."
        ),
        permission_classes=[HasAnyScope(*TEAM_WRITE_SCOPES)],
    )
    async def record_survey_response(
        self, info: Info, input: RecordSurveyResponseInput
    ) -> RecordSurveyResponseResult:
        try:
            team_ids = writable_team_ids(require_principal(info))
            response = _response(input)
            async with info.context.db.begin() as session:
                row, replaced = await record_survey_response(
                    session, info.context.actor(), response, team_ids=team_ids
                )
        except DomainError as exc:
            return content_error(exc)
        return RecordSurveyResponseSuccess(
            survey_response=SurveyResponse.from_model(row), replaced=replaced
        )
