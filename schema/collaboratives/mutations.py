"""Mutations: ``createCollaborative`` and ``updateCollaborative`` (scope program:write)."""

from __future__ import annotations

from datetime import date
from typing import Annotated

import strawberry

from db.enums import CollaborativeStatus, PhaseKind
from db.errors import DomainError
from db.queries.collaboratives import (
    CollaborativeChanges,
    PhaseInput,
    create_collaborative,
    update_collaborative,
)
from schema.collaboratives.types import Collaborative
from schema.context import Info
from schema.errors import ConflictError, NotFoundError, ValidationError, error_from_domain
from schema.permissions import HasScope
from schema.validation import check_code, check_text


@strawberry.input(name="PhaseInput", description="A phase of a collaborative.")
class PhaseInputType:
    kind: PhaseKind = strawberry.field(description="Kind of phase.")
    seq: int = strawberry.field(description="Order (unique within the collaborative).")
    name: str = strawberry.field(default="", description="Display name.")
    start_date: date | None = strawberry.field(default=None, description="First day.")
    end_date: date | None = strawberry.field(default=None, description="Last day.")


@strawberry.input(description="A new collaborative.")
class CreateCollaborativeInput:
    code: str = strawberry.field(description="Code, unique within the sponsor.")
    name: str = strawberry.field(description="Display name.")
    topic: str = strawberry.field(description="Clinical or improvement topic.")
    aim: str = strawberry.field(default="", description="Aim statement.")
    description: str = strawberry.field(default="", description="Longer description.")
    status: CollaborativeStatus = strawberry.field(
        default=CollaborativeStatus.PLANNED, description="Initial status."
    )
    start_date: date | None = strawberry.field(default=None, description="First day.")
    end_date: date | None = strawberry.field(default=None, description="Last day.")
    phases: list[PhaseInputType] = strawberry.field(
        default_factory=list, description="Phases of the program."
    )


@strawberry.input(description="Changes to a collaborative; omitted fields stay as they are.")
class UpdateCollaborativeInput:
    code: str = strawberry.field(description="Code of the collaborative to change.")
    name: str | None = strawberry.field(default=None, description="New display name.")
    topic: str | None = strawberry.field(default=None, description="New topic.")
    aim: str | None = strawberry.field(default=None, description="New aim statement.")
    description: str | None = strawberry.field(default=None, description="New description.")
    status: CollaborativeStatus | None = strawberry.field(default=None, description="New status.")
    start_date: date | None = strawberry.field(default=None, description="New first day.")
    end_date: date | None = strawberry.field(default=None, description="New last day.")
    phases: list[PhaseInputType] | None = strawberry.field(
        default=None, description="Replaces all phases when given."
    )


@strawberry.type(description="The collaborative was created.")
class CreateCollaborativeSuccess:
    collaborative: Collaborative = strawberry.field(description="The new collaborative.")


@strawberry.type(description="The collaborative was changed.")
class UpdateCollaborativeSuccess:
    collaborative: Collaborative = strawberry.field(description="The collaborative as it is now.")


CreateCollaborativeResult = Annotated[
    CreateCollaborativeSuccess | ValidationError | ConflictError | NotFoundError,
    strawberry.union("CreateCollaborativeResult"),
]
UpdateCollaborativeResult = Annotated[
    UpdateCollaborativeSuccess | ValidationError | ConflictError | NotFoundError,
    strawberry.union("UpdateCollaborativeResult"),
]


def _phases(phases: list[PhaseInputType] | None) -> list[PhaseInput] | None:
    if phases is None:
        return None
    for phase in phases:
        check_text(phase.name, "phases", max_length=200)
    return [
        PhaseInput(
            kind=p.kind, seq=p.seq, name=p.name, start_date=p.start_date, end_date=p.end_date
        )
        for p in phases
    ]


def _check_fields(
    name: str | None, topic: str | None, aim: str | None, description: str | None, *, create: bool
) -> None:
    check_text(name, "name", max_length=200, required=create)
    check_text(topic, "topic", max_length=200, required=create)
    check_text(aim, "aim", max_length=5000)
    check_text(description, "description", max_length=20000)


@strawberry.type
class CollaborativeMutations:
    @strawberry.mutation(
        description="Create a collaborative with its phases.",
        permission_classes=[HasScope("program:write")],
    )
    async def create_collaborative(
        self, info: Info, input: CreateCollaborativeInput
    ) -> CreateCollaborativeResult:
        try:
            check_code(input.code, "code")
            _check_fields(input.name, input.topic, input.aim, input.description, create=True)
            changes = CollaborativeChanges(
                name=input.name,
                topic=input.topic,
                aim=input.aim,
                description=input.description,
                status=input.status,
                start_date=input.start_date,
                end_date=input.end_date,
                phases=_phases(input.phases),
            )
            async with info.context.db.begin() as session:
                row = await create_collaborative(
                    session, info.context.actor(), code=input.code, changes=changes
                )
        except DomainError as exc:
            return error_from_domain(exc)
        return CreateCollaborativeSuccess(collaborative=Collaborative.from_model(row))

    @strawberry.mutation(
        description="Change a collaborative; phases, when given, replace the existing ones.",
        permission_classes=[HasScope("program:write")],
    )
    async def update_collaborative(
        self, info: Info, input: UpdateCollaborativeInput
    ) -> UpdateCollaborativeResult:
        try:
            check_code(input.code, "code")
            _check_fields(input.name, input.topic, input.aim, input.description, create=False)
            changes = CollaborativeChanges(
                name=input.name,
                topic=input.topic,
                aim=input.aim,
                description=input.description,
                status=input.status,
                start_date=input.start_date,
                end_date=input.end_date,
                phases=_phases(input.phases),
            )
            async with info.context.db.begin() as session:
                row = await update_collaborative(
                    session, info.context.actor(), code=input.code, changes=changes
                )
        except DomainError as exc:
            return error_from_domain(exc)
        return UpdateCollaborativeSuccess(collaborative=Collaborative.from_model(row))
