"""GraphQL projections of sponsors and people."""

from __future__ import annotations

import strawberry

from db.models import Person as PersonModel
from db.models import Sponsor as SponsorModel
from schema.ids import encode_global_id
from schema.node import Node


@strawberry.type(description="An organization that runs improvement programs (the tenant).")
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
