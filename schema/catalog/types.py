"""GraphQL projection of catalog resources, and the page of resources a collaborative links to."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import TYPE_CHECKING, Annotated

import strawberry

from db.enums import CareModelDomain, ResourceKind
from db.models import Resource as ResourceModel
from db.models.catalog import TAG_DOMAIN, TAG_TOPIC
from schema.context import Info
from schema.ids import encode_global_id
from schema.node import Node
from schema.pagination import Connection, page_request, to_connection
from schema.permissions import HasScope

if TYPE_CHECKING:
    from schema.collaboratives.types import Collaborative

COLLABORATIVE_RESOURCES_ORDER = "collaborativeResources:TITLE:ASC"
"""Cursor ordering of ``Collaborative.resources`` (by title, then id)."""


@strawberry.type(
    description=(
        "A catalog entry: a tool, toolkit, change concept or idea, improvement story, training, "
        "conference or webinar."
    )
)
class Resource(Node):
    kind: ResourceKind = strawberry.field(description="Kind of resource.")
    title: str = strawberry.field(description="Title (searched by full-text search).")
    summary: str = strawberry.field(description="Short description (searched too).")
    url: str | None = strawberry.field(description="Where to find it (http or https).")
    published_on: date | None = strawberry.field(description="Publication or event date.")
    created_at: datetime = strawberry.field(description="When it was added to the catalog.")
    updated_at: datetime = strawberry.field(description="When it last changed.")
    row_id: strawberry.Private[uuid.UUID]

    @classmethod
    def from_model(cls, row: ResourceModel) -> Resource:
        return cls(
            id=strawberry.ID(encode_global_id("Resource", row.id)),
            kind=row.kind,
            title=row.title,
            summary=row.summary,
            url=row.url,
            published_on=row.published_on,
            created_at=row.created_at,
            updated_at=row.updated_at,
            row_id=row.id,
        )

    @strawberry.field(description="Care Model domains the resource addresses, in model order.")
    async def care_model_domains(self, info: Info) -> list[CareModelDomain]:
        tags = await info.context.loaders.tags_by_resource_id.load(self.row_id)
        return [CareModelDomain(tag.value) for tag in tags if tag.tag_kind == TAG_DOMAIN]

    @strawberry.field(description="Topic tags, alphabetical.")
    async def topics(self, info: Info) -> list[str]:
        tags = await info.context.loaders.tags_by_resource_id.load(self.row_id)
        return [tag.value for tag in tags if tag.tag_kind == TAG_TOPIC]

    @strawberry.field(
        description="Collaboratives the resource is linked to, by code.",
        permission_classes=[HasScope("program:read")],
    )
    async def collaboratives(
        self, info: Info
    ) -> list[Annotated[Collaborative, strawberry.lazy("schema.collaboratives.types")]]:
        # Imported here: schema.collaboratives.types imports this module for its resources.
        from schema.collaboratives.types import Collaborative

        rows = await info.context.loaders.collaboratives_by_resource_id.load(self.row_id)
        return [Collaborative.from_model(row) for row in rows]


async def collaborative_resources(
    info: Info, collaborative_id: uuid.UUID, *, first: int | None, after: str | None
) -> Connection[Resource]:
    """A collaborative's resources by title; one batched query for a whole level of them."""
    size, keyset = page_request(info, order=COLLABORATIVE_RESOURCES_ORDER, first=first, after=after)
    page = await info.context.loaders.resource_page_by_collaborative_key.load(
        (collaborative_id, size, keyset)
    )
    return to_connection(
        page,
        order=COLLABORATIVE_RESOURCES_ORDER,
        project=Resource.from_model,
        after=keyset is not None,
    )
