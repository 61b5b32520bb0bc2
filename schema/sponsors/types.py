"""GraphQL projections of sponsors and people."""

from __future__ import annotations

import strawberry

from db.models import Person as PersonModel
from db.models import Sponsor as SponsorModel
from schema.context import Info
from schema.federation import SLUG_KEY, entity_sponsor_id
from schema.ids import encode_global_id
from schema.node import Node


@strawberry.type(
    description="An organization that runs improvement programs (the tenant).",
    directives=[SLUG_KEY],
)
class Sponsor(Node):
    slug: str = strawberry.field(description="Unique code of the sponsor.")
    name: str = strawberry.field(description="Display name.")
    description: str = strawberry.field(description="What the sponsor does.")
    website: str | None = strawberry.field(description="Public web site.")

    @classmethod
    def from_model(cls, row: SponsorModel) -> Sponsor:
        return cls(
            id=strawberry.ID(encode_global_id("Sponsor", row.id)),
            slug=row.slug,
            name=row.name,
            description=row.description,
            website=row.website,
        )

    @classmethod
    async def resolve_reference(cls, info: Info, slug: str) -> Sponsor | None:
        """The caller's own sponsor for its slug; another sponsor's slug resolves to null."""
        sponsor_id = entity_sponsor_id(info, slug)
        if sponsor_id is None:
            return None
        row = await info.context.loaders.sponsor_by_id.load(sponsor_id)
        return None if row is None else cls.from_model(row)


@strawberry.type(description="Somebody on a collaborative's staff or a team.")
class Person(Node):
    name: str = strawberry.field(description="Full name.")
    email: str = strawberry.field(description="Work e-mail address.")
    title: str = strawberry.field(description="Job title.")

    @classmethod
    def from_model(cls, row: PersonModel) -> Person:
        return cls(
            id=strawberry.ID(encode_global_id("Person", row.id)),
            name=row.name,
            email=row.email,
            title=row.title,
        )
