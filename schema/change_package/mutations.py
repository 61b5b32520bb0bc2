"""Mutations: ``addChangeConcept``, ``updateChangeConcept``, ``addChangeIdea``,
``updateChangeIdea`` (scope program:write; faculty and staff only, never team-bound clients).

A change package grows concept by concept and idea by idea, so that the ideas PDSA cycles test
keep their ids; there is no "replace the whole package".
"""

from __future__ import annotations

import uuid
from typing import Annotated

import strawberry

from db.enums import CareModelDomain
from db.errors import DomainError, InvalidInput, NotFound
from db.queries.content import (
    ChangeConceptChanges,
    ChangeIdeaChanges,
    add_change_concept,
    add_change_idea,
    update_change_concept,
    update_change_idea,
)
from schema.change_package.types import ChangeConcept, ChangeIdea
from schema.context import Info
from schema.errors import ConflictError, ForbiddenError, NotFoundError, ValidationError
from schema.ids import row_id_of
from schema.permissions import HasScope, require_principal
from schema.team_access import content_error, require_staff
from schema.validation import check_code, check_text

TITLE_MAX = 300
DESCRIPTION_MAX = 20_000
MAX_POSITION = 1_000_000


@strawberry.input(description="A change concept to add to a collaborative's change package.")
class AddChangeConceptInput:
    collaborative: str = strawberry.field(description="Code of the collaborative.")
    title: str = strawberry.field(description="Title, 1-300 characters, unique in the package.")
    description: str = strawberry.field(default="", description="The approach.")
    care_model_domains: list[CareModelDomain] = strawberry.field(
        default_factory=list, description="Care Model domains the concept addresses."
    )
    resources: list[strawberry.ID] = strawberry.field(
        default_factory=list, description="Global ids of catalog resources to link, in order."
    )
    position: int | None = strawberry.field(
        default=None, description="Order in the package; omitted: after the last concept."
    )


@strawberry.input(description="Changes to a change concept; omitted fields stay as they are.")
class UpdateChangeConceptInput:
    id: strawberry.ID = strawberry.field(description="Global id of the concept.")
    title: str | None = strawberry.field(default=None, description="New title.")
    description: str | None = strawberry.field(default=None, description="New description.")
    care_model_domains: list[CareModelDomain] | None = strawberry.field(
        default=None, description="Replaces the Care Model domains."
    )
    resources: list[strawberry.ID] | None = strawberry.field(
        default=None, description="Replaces the linked resources (global ids, in order)."
    )
    position: int | None = strawberry.field(default=None, description="New order.")


@strawberry.input(description="A change idea to add under a change concept.")
class AddChangeIdeaInput:
    concept: strawberry.ID = strawberry.field(description="Global id of the change concept.")
    title: str = strawberry.field(description="Title, 1-300 characters, unique in the concept.")
    description: str = strawberry.field(default="", description="What to do, and why.")
    resources: list[strawberry.ID] = strawberry.field(
        default_factory=list, description="Global ids of catalog resources to link, in order."
    )
    position: int | None = strawberry.field(
        default=None, description="Order in the concept; omitted: after the last idea."
    )


@strawberry.input(description="Changes to a change idea; omitted fields stay as they are.")
class UpdateChangeIdeaInput:
    id: strawberry.ID = strawberry.field(description="Global id of the idea.")
    title: str | None = strawberry.field(default=None, description="New title.")
    description: str | None = strawberry.field(default=None, description="New description.")
    resources: list[strawberry.ID] | None = strawberry.field(
        default=None, description="Replaces the linked resources (global ids, in order)."
    )
    position: int | None = strawberry.field(default=None, description="New order.")


@strawberry.type(description="The change concept was added.")
class AddChangeConceptSuccess:
    concept: ChangeConcept = strawberry.field(description="The new concept.")


@strawberry.type(description="The change concept was changed.")
class UpdateChangeConceptSuccess:
    concept: ChangeConcept = strawberry.field(description="The concept as it is now.")


@strawberry.type(description="The change idea was added.")
class AddChangeIdeaSuccess:
    idea: ChangeIdea = strawberry.field(description="The new idea.")


@strawberry.type(description="The change idea was changed.")
class UpdateChangeIdeaSuccess:
    idea: ChangeIdea = strawberry.field(description="The idea as it is now.")


AddChangeConceptResult = Annotated[
    AddChangeConceptSuccess | ValidationError | ConflictError | NotFoundError | ForbiddenError,
    strawberry.union("AddChangeConceptResult"),
]
UpdateChangeConceptResult = Annotated[
    UpdateChangeConceptSuccess | ValidationError | ConflictError | NotFoundError | ForbiddenError,
    strawberry.union("UpdateChangeConceptResult"),
]
AddChangeIdeaResult = Annotated[
    AddChangeIdeaSuccess | ValidationError | ConflictError | NotFoundError | ForbiddenError,
    strawberry.union("AddChangeIdeaResult"),
]
UpdateChangeIdeaResult = Annotated[
    UpdateChangeIdeaSuccess | ValidationError | ConflictError | NotFoundError | ForbiddenError,
    strawberry.union("UpdateChangeIdeaResult"),
]


def _text(
    title: str | None, description: str | None, position: int | None, *, create: bool
) -> None:
    check_text(title, "title", max_length=TITLE_MAX, required=create)
    if title is not None and not title.strip():
        raise InvalidInput("title must not be empty", field="title")
    check_text(description, "description", max_length=DESCRIPTION_MAX)
    if position is not None and not 0 <= position <= MAX_POSITION:
        raise InvalidInput(f"position is between 0 and {MAX_POSITION}", field="position")


def _strip(text: str | None) -> str | None:
    return None if text is None else text.strip()


def _row_id(global_id: str, type_name: str, field: str, what: str) -> uuid.UUID:
    row_id = row_id_of(global_id, type_name)
    if row_id is None:
        raise NotFound(f"no such {what}", field=field)
    return row_id


def _resources(ids: list[strawberry.ID] | None) -> list[uuid.UUID] | None:
    if ids is None:
        return None
    return [_row_id(i, "Resource", "resources", "resource") for i in ids]


@strawberry.type
class ChangePackageMutations:
    @strawberry.mutation(
        description="Add a change concept (with Care Model domains and resources) to a "
        "collaborative's change package.",
        permission_classes=[HasScope("program:write")],
    )
    async def add_change_concept(
        self, info: Info, input: AddChangeConceptInput
    ) -> AddChangeConceptResult:
        try:
            require_staff(require_principal(info))
            check_code(input.collaborative, "collaborative")
            _text(input.title, input.description, input.position, create=True)
            changes = ChangeConceptChanges(
                title=input.title.strip(),
                description=input.description.strip(),
                care_model_domains=input.care_model_domains,
                resource_ids=_resources(input.resources),
                position=input.position,
            )
            async with info.context.db.begin() as session:
                row = await add_change_concept(
                    session,
                    info.context.actor(),
                    collaborative_code=input.collaborative,
                    changes=changes,
                )
        except DomainError as exc:
            return content_error(exc)
        return AddChangeConceptSuccess(concept=ChangeConcept.from_model(row))

    @strawberry.mutation(
        description="Change a change concept; given lists replace the existing ones.",
        permission_classes=[HasScope("program:write")],
    )
    async def update_change_concept(
        self, info: Info, input: UpdateChangeConceptInput
    ) -> UpdateChangeConceptResult:
        try:
            require_staff(require_principal(info))
            concept_id = _row_id(input.id, "ChangeConcept", "id", "change concept")
            _text(input.title, input.description, input.position, create=False)
            changes = ChangeConceptChanges(
                title=_strip(input.title),
                description=_strip(input.description),
                care_model_domains=input.care_model_domains,
                resource_ids=_resources(input.resources),
                position=input.position,
            )
            async with info.context.db.begin() as session:
                row = await update_change_concept(
                    session, info.context.actor(), concept_id, changes
                )
        except DomainError as exc:
            return content_error(exc)
        return UpdateChangeConceptSuccess(concept=ChangeConcept.from_model(row))

    @strawberry.mutation(
        description="Add a change idea (with resources) under a change concept.",
        permission_classes=[HasScope("program:write")],
    )
    async def add_change_idea(self, info: Info, input: AddChangeIdeaInput) -> AddChangeIdeaResult:
        try:
            require_staff(require_principal(info))
            concept_id = _row_id(input.concept, "ChangeConcept", "concept", "change concept")
            _text(input.title, input.description, input.position, create=True)
            changes = ChangeIdeaChanges(
                title=input.title.strip(),
                description=input.description.strip(),
                resource_ids=_resources(input.resources),
                position=input.position,
            )
            async with info.context.db.begin() as session:
                row = await add_change_idea(
                    session, info.context.actor(), concept_id=concept_id, changes=changes
                )
        except DomainError as exc:
            return content_error(exc)
        return AddChangeIdeaSuccess(idea=ChangeIdea.from_model(row))

    @strawberry.mutation(
        description="Change a change idea; a given resource list replaces the existing one.",
        permission_classes=[HasScope("program:write")],
    )
    async def update_change_idea(
        self, info: Info, input: UpdateChangeIdeaInput
    ) -> UpdateChangeIdeaResult:
        try:
            require_staff(require_principal(info))
            idea_id = _row_id(input.id, "ChangeIdea", "id", "change idea")
            _text(input.title, input.description, input.position, create=False)
            changes = ChangeIdeaChanges(
                title=_strip(input.title),
                description=_strip(input.description),
                resource_ids=_resources(input.resources),
                position=input.position,
            )
            async with info.context.db.begin() as session:
                row = await update_change_idea(session, info.context.actor(), idea_id, changes)
        except DomainError as exc:
            return content_error(exc)
        return UpdateChangeIdeaSuccess(idea=ChangeIdea.from_model(row))
