"""Mutations: ``createResource`` and ``updateResource`` (scope catalog:write)."""

from __future__ import annotations

from datetime import date
from typing import Annotated

import strawberry

from db.enums import CareModelDomain, ResourceKind
from db.errors import DomainError, NotFound
from db.queries.catalog import ResourceChanges, create_resource, update_resource
from schema.catalog.types import Resource
from schema.context import Info
from schema.errors import NotFoundError, ValidationError, error_from_domain
from schema.ids import InvalidId, decode_global_id
from schema.permissions import HasScope
from schema.validation import check_code


@strawberry.input(description="A new catalog resource.")
class CreateResourceInput:
    kind: ResourceKind = strawberry.field(description="Kind of resource.")
    title: str = strawberry.field(description="Title, 1-300 characters.")
    summary: str = strawberry.field(default="", description="Short description.")
    url: str | None = strawberry.field(
        default=None, description="Absolute http(s) URL; empty or null for none."
    )
    published_on: date | None = strawberry.field(
        default=None, description="Publication or event date."
    )
    care_model_domains: list[CareModelDomain] = strawberry.field(
        default_factory=list, description="Care Model domains it addresses."
    )
    topics: list[str] = strawberry.field(
        default_factory=list, description="Topic tags, 1-120 characters each."
    )
    collaboratives: list[str] = strawberry.field(
        default_factory=list, description="Codes of the collaboratives to link it to."
    )


@strawberry.input(
    description="Changes to a resource; null fields stay as they are, given lists replace."
)
class UpdateResourceInput:
    id: strawberry.ID = strawberry.field(description="Global id of the resource.")
    kind: ResourceKind | None = strawberry.field(default=None, description="New kind.")
    title: str | None = strawberry.field(default=None, description="New title.")
    summary: str | None = strawberry.field(default=None, description="New summary.")
    url: str | None = strawberry.field(
        default=None, description="New absolute http(s) URL; empty removes it."
    )
    published_on: date | None = strawberry.field(default=None, description="New date.")
    care_model_domains: list[CareModelDomain] | None = strawberry.field(
        default=None, description="Replaces the Care Model domains."
    )
    topics: list[str] | None = strawberry.field(default=None, description="Replaces the topics.")
    collaboratives: list[str] | None = strawberry.field(
        default=None, description="Replaces the linked collaboratives (codes)."
    )


@strawberry.type(description="The resource was added to the catalog.")
class CreateResourceSuccess:
    resource: Resource = strawberry.field(description="The new resource.")


@strawberry.type(description="The resource was changed.")
class UpdateResourceSuccess:
    resource: Resource = strawberry.field(description="The resource as it is now.")


CreateResourceResult = Annotated[
    CreateResourceSuccess | ValidationError | NotFoundError,
    strawberry.union("CreateResourceResult"),
]
UpdateResourceResult = Annotated[
    UpdateResourceSuccess | ValidationError | NotFoundError,
    strawberry.union("UpdateResourceResult"),
]


def _error(exc: DomainError) -> ValidationError | NotFoundError:
    """The union member for a domain failure (catalog writes never conflict)."""
    error = error_from_domain(exc)
    if isinstance(error, ValidationError | NotFoundError):
        return error
    return ValidationError(message=error.message, code=error.code, field=error.field)


def _codes(codes: list[str] | None) -> list[str] | None:
    if codes is not None:
        for code in codes:
            check_code(code, "collaboratives")
    return codes


@strawberry.type
class CatalogMutations:
    @strawberry.mutation(
        description="Add a resource to the catalog, with its tags and collaborative links.",
        permission_classes=[HasScope("catalog:write")],
    )
    async def create_resource(self, info: Info, input: CreateResourceInput) -> CreateResourceResult:
        try:
            changes = ResourceChanges(
                kind=input.kind,
                title=input.title,
                summary=input.summary,
                url=input.url,
                published_on=input.published_on,
                care_model_domains=input.care_model_domains,
                topics=input.topics,
                collaborative_codes=_codes(input.collaboratives),
            )
            async with info.context.db.begin() as session:
                row = await create_resource(session, info.context.actor(), changes=changes)
        except DomainError as exc:
            return _error(exc)
        return CreateResourceSuccess(resource=Resource.from_model(row))

    @strawberry.mutation(
        description="Change a resource; lists given replace the existing ones.",
        permission_classes=[HasScope("catalog:write")],
    )
    async def update_resource(self, info: Info, input: UpdateResourceInput) -> UpdateResourceResult:
        try:
            try:
                type_name, row_id = decode_global_id(input.id)
            except InvalidId as exc:
                raise NotFound("no such resource", field="id") from exc
            if type_name != "Resource":
                raise NotFound("no such resource", field="id")
            changes = ResourceChanges(
                kind=input.kind,
                title=input.title,
                summary=input.summary,
                url=input.url,
                published_on=input.published_on,
                care_model_domains=input.care_model_domains,
                topics=input.topics,
                collaborative_codes=_codes(input.collaboratives),
            )
            async with info.context.db.begin() as session:
                row = await update_resource(session, info.context.actor(), row_id, changes=changes)
        except DomainError as exc:
            return _error(exc)
        return UpdateResourceSuccess(resource=Resource.from_model(row))
