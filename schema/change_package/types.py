"""GraphQL projections of a collaborative's change package: concepts and their ideas.

Every level goes through a DataLoader (concepts by collaborative, ideas by concept, linked
resources by concept or idea), so a page of collaboratives with their packages costs a constant
number of statements.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import TYPE_CHECKING, Annotated

import strawberry

from db.enums import CareModelDomain
from db.models import ChangeConcept as ChangeConceptModel
from db.models import ChangeIdea as ChangeIdeaModel
from schema.catalog.types import Resource
from schema.context import Info
from schema.ids import encode_global_id
from schema.node import Node
from schema.permissions import HasScope

if TYPE_CHECKING:
    from schema.collaboratives.types import Collaborative


@strawberry.type(description="A specific, testable change that teams try in PDSA cycles.")
class ChangeIdea(Node):
    title: str = strawberry.field(description="Title, unique within its concept.")
    description: str = strawberry.field(description="What to do, and why it may help.")
    position: int = strawberry.field(description="Order within the concept.")
    created_at: datetime = strawberry.field(description="When the idea was added.")
    updated_at: datetime = strawberry.field(description="When the idea last changed.")
    row_id: strawberry.Private[uuid.UUID]
    concept_id: strawberry.Private[uuid.UUID]

    @classmethod
    def from_model(cls, row: ChangeIdeaModel) -> ChangeIdea:
        return cls(
            id=strawberry.ID(encode_global_id("ChangeIdea", row.id)),
            title=row.title,
            description=row.description,
            position=row.position,
            created_at=row.created_at,
            updated_at=row.updated_at,
            row_id=row.id,
            concept_id=row.concept_id,
        )

    @strawberry.field(description="The change concept the idea belongs to.")
    async def concept(self, info: Info) -> ChangeConcept:
        row = await info.context.loaders.change_concept_by_id.load(self.concept_id)
        assert row is not None, "ideas reference concepts of the same sponsor"
        return ChangeConcept.from_model(row)

    @strawberry.field(
        description="Catalog resources that help test the idea (tools, stories...), in order.",
        permission_classes=[HasScope("catalog:read")],
    )
    async def resources(self, info: Info) -> list[Resource]:
        rows = await info.context.loaders.resources_by_change_idea_id.load(self.row_id)
        return [Resource.from_model(row) for row in rows]


@strawberry.type(
    description="A general approach to change in a change package, with its specific ideas."
)
class ChangeConcept(Node):
    title: str = strawberry.field(description="Title, unique within the change package.")
    description: str = strawberry.field(description="The approach, in a few sentences.")
    care_model_domains: list[CareModelDomain] = strawberry.field(
        description="Care Model domains the concept addresses, in model order."
    )
    position: int = strawberry.field(description="Order within the change package.")
    created_at: datetime = strawberry.field(description="When the concept was added.")
    updated_at: datetime = strawberry.field(description="When the concept last changed.")
    row_id: strawberry.Private[uuid.UUID]
    collaborative_id: strawberry.Private[uuid.UUID]

    @classmethod
    def from_model(cls, row: ChangeConceptModel) -> ChangeConcept:
        return cls(
            id=strawberry.ID(encode_global_id("ChangeConcept", row.id)),
            title=row.title,
            description=row.description,
            care_model_domains=[CareModelDomain(value) for value in row.care_model_domains],
            position=row.position,
            created_at=row.created_at,
            updated_at=row.updated_at,
            row_id=row.id,
            collaborative_id=row.collaborative_id,
        )

    @strawberry.field(description="The concept's change ideas, in order.")
    async def ideas(self, info: Info) -> list[ChangeIdea]:
        rows = await info.context.loaders.change_ideas_by_concept_id.load(self.row_id)
        return [ChangeIdea.from_model(row) for row in rows]

    @strawberry.field(
        description="Catalog resources about the concept, in order.",
        permission_classes=[HasScope("catalog:read")],
    )
    async def resources(self, info: Info) -> list[Resource]:
        rows = await info.context.loaders.resources_by_change_concept_id.load(self.row_id)
        return [Resource.from_model(row) for row in rows]

    @strawberry.field(description="The collaborative whose change package this is.")
    async def collaborative(
        self, info: Info
    ) -> Annotated[Collaborative, strawberry.lazy("schema.collaboratives.types")]:
        from schema.collaboratives.types import Collaborative  # it imports this module

        row = await info.context.loaders.collaborative_by_id.load(self.collaborative_id)
        assert row is not None, "concepts reference collaboratives of the same sponsor"
        return Collaborative.from_model(row)


@strawberry.type(
    description=(
        "A collaborative's change package: change concepts (general approaches, tagged with "
        "Care Model domains), each with specific change ideas that teams test in PDSA cycles."
    )
)
class ChangePackage:
    collaborative_id: strawberry.Private[uuid.UUID]

    @strawberry.field(description="The change concepts, in order; empty before any is added.")
    async def concepts(self, info: Info) -> list[ChangeConcept]:
        rows = await info.context.loaders.change_concepts_by_collaborative_id.load(
            self.collaborative_id
        )
        return [ChangeConcept.from_model(row) for row in rows]
