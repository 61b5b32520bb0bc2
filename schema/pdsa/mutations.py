"""Mutations: ``recordPdsaCycle`` and ``updatePdsaCycle``.

Faculty and staff (``program:write``) write for any team of their sponsor; team-bound EHR
clients (``data:write`` or ``program:write``) for their own teams only — see
:mod:`schema.team_access`. A cycle is usually recorded at planning time and updated as the team
runs it: what happened, the study, then the act decision.
"""

from __future__ import annotations

import uuid
from datetime import date
from typing import Annotated

import strawberry

from db.enums import PdsaAct
from db.errors import DomainError, InvalidInput, NotFound
from db.queries.content import (
    PdsaCycleChanges,
    record_pdsa_cycle,
    update_pdsa_cycle,
)
from schema.context import Info
from schema.errors import ConflictError, ForbiddenError, NotFoundError, ValidationError
from schema.ids import row_id_of
from schema.pdsa.types import PdsaCycle
from schema.permissions import require_principal
from schema.team_access import TEAM_WRITE_SCOPES, HasAnyScope, content_error, writable_team_ids
from schema.validation import check_text

TITLE_MAX = 300
TEXT_MAX = 20_000
CODE_MAX = 64


@strawberry.input(description="A PDSA cycle a team plans, runs or has finished.")
class RecordPdsaCycleInput:
    team: str = strawberry.field(description="Code of the team running the cycle.")
    title: str = strawberry.field(description="Short name of the test, 1-300 characters.")
    change_idea: strawberry.ID | None = strawberry.field(
        default=None,
        description="Global id of the change idea tested (from the collaborative's package).",
    )
    follows: strawberry.ID | None = strawberry.field(
        default=None, description="Global id of the team's earlier cycle this one builds on."
    )
    aim: str = strawberry.field(default="", description="What the cycle is for; its question.")
    prediction: str = strawberry.field(default="", description="What the team expects.")
    plan: str = strawberry.field(default="", description="Who does what, when and where.")
    start_date: date = strawberry.field(description="First day of the test.")
    end_date: date | None = strawberry.field(default=None, description="Last day of the test.")
    what_happened: str = strawberry.field(default="", description="Do: what happened.")
    study: str = strawberry.field(
        default="", description="Study: the result compared with the prediction."
    )
    act: PdsaAct | None = strawberry.field(default=None, description="Act: the decision.")
    act_notes: str = strawberry.field(default="", description="Act: the next step.")
    measures: list[str] = strawberry.field(
        default_factory=list,
        description="Codes of the measures the cycle should move (its run-chart marks).",
    )


@strawberry.input(description="Changes to a PDSA cycle; omitted fields stay as they are.")
class UpdatePdsaCycleInput:
    id: strawberry.ID = strawberry.field(description="Global id of the cycle.")
    title: str | None = strawberry.field(default=None, description="New title.")
    change_idea: strawberry.ID | None = strawberry.field(
        default=None, description="Global id of the change idea tested."
    )
    follows: strawberry.ID | None = strawberry.field(
        default=None, description="Global id of the earlier cycle this one builds on."
    )
    aim: str | None = strawberry.field(default=None, description="New aim.")
    prediction: str | None = strawberry.field(default=None, description="New prediction.")
    plan: str | None = strawberry.field(default=None, description="New plan.")
    start_date: date | None = strawberry.field(default=None, description="New first day.")
    end_date: date | None = strawberry.field(default=None, description="New last day.")
    what_happened: str | None = strawberry.field(default=None, description="What happened.")
    study: str | None = strawberry.field(default=None, description="The study of the result.")
    act: PdsaAct | None = strawberry.field(default=None, description="The act decision.")
    act_notes: str | None = strawberry.field(default=None, description="The next step.")
    measures: list[str] | None = strawberry.field(
        default=None, description="Replaces the linked measures (codes)."
    )


@strawberry.type(description="The PDSA cycle was recorded.")
class RecordPdsaCycleSuccess:
    pdsa_cycle: PdsaCycle = strawberry.field(description="The new cycle.")


@strawberry.type(description="The PDSA cycle was changed.")
class UpdatePdsaCycleSuccess:
    pdsa_cycle: PdsaCycle = strawberry.field(description="The cycle as it is now.")


RecordPdsaCycleResult = Annotated[
    RecordPdsaCycleSuccess | ValidationError | NotFoundError | ForbiddenError | ConflictError,
    strawberry.union("RecordPdsaCycleResult"),
]
UpdatePdsaCycleResult = Annotated[
    UpdatePdsaCycleSuccess | ValidationError | NotFoundError | ForbiddenError | ConflictError,
    strawberry.union("UpdatePdsaCycleResult"),
]


def _optional_id(global_id: str | None, type_name: str, field: str) -> uuid.UUID | None:
    if global_id is None:
        return None
    row_id = row_id_of(global_id, type_name)
    if row_id is None:
        raise NotFound(f"no such {type_name}", field=field)
    return row_id


def _changes(
    input: RecordPdsaCycleInput | UpdatePdsaCycleInput, *, create: bool
) -> PdsaCycleChanges:
    """The checked changes (InvalidInput/NotFound naming the first bad field)."""
    check_text(input.title, "title", max_length=TITLE_MAX, required=create)
    if input.title is not None and not input.title.strip():
        raise InvalidInput("title must not be empty", field="title")
    for name in ("aim", "prediction", "plan", "what_happened", "study", "act_notes"):
        check_text(getattr(input, name), name, max_length=TEXT_MAX)
    if input.measures is not None:
        for code in input.measures:
            check_text(code, "measures", max_length=CODE_MAX, required=True)

    def strip(value: str | None) -> str | None:
        return None if value is None else value.strip()

    return PdsaCycleChanges(
        title=strip(input.title),
        change_idea_id=_optional_id(input.change_idea, "ChangeIdea", "changeIdea"),
        follows_id=_optional_id(input.follows, "PdsaCycle", "follows"),
        aim=strip(input.aim),
        prediction=strip(input.prediction),
        plan=strip(input.plan),
        start_date=input.start_date,
        end_date=input.end_date,
        what_happened=strip(input.what_happened),
        study=strip(input.study),
        act=input.act,
        act_notes=strip(input.act_notes),
        measure_codes=input.measures,
    )


@strawberry.type
class PdsaMutations:
    @strawberry.mutation(
        description=(
            "Record a team's PDSA cycle, optionally testing a change idea, following an earlier "
            "cycle and linked to the measures it should move. Faculty and staff "
            "(program:write) for any team; team-bound clients (data:write) for their own teams."
        ),
        permission_classes=[HasAnyScope(*TEAM_WRITE_SCOPES)],
    )
    async def record_pdsa_cycle(
        self, info: Info, input: RecordPdsaCycleInput
    ) -> RecordPdsaCycleResult:
        try:
            team_ids = writable_team_ids(require_principal(info))
            check_text(input.team, "team", max_length=CODE_MAX, required=True)
            changes = _changes(input, create=True)
            async with info.context.db.begin() as session:
                row = await record_pdsa_cycle(
                    session,
                    info.context.actor(),
                    team_code=input.team,
                    changes=changes,
                    team_ids=team_ids,
                )
        except DomainError as exc:
            return content_error(exc)
        return RecordPdsaCycleSuccess(pdsa_cycle=PdsaCycle.from_model(row))

    @strawberry.mutation(
        description=(
            "Change a PDSA cycle: record what happened, the study and the act decision, or "
            "correct the plan. A given measure list replaces the linked measures."
        ),
        permission_classes=[HasAnyScope(*TEAM_WRITE_SCOPES)],
    )
    async def update_pdsa_cycle(
        self, info: Info, input: UpdatePdsaCycleInput
    ) -> UpdatePdsaCycleResult:
        try:
            team_ids = writable_team_ids(require_principal(info))
            cycle_id = _optional_id(input.id, "PdsaCycle", "id")
            assert cycle_id is not None
            changes = _changes(input, create=False)
            async with info.context.db.begin() as session:
                row = await update_pdsa_cycle(
                    session, info.context.actor(), cycle_id, changes, team_ids=team_ids
                )
        except DomainError as exc:
            return content_error(exc)
        return UpdatePdsaCycleSuccess(pdsa_cycle=PdsaCycle.from_model(row))
