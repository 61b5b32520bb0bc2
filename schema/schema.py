"""The GraphQL schema: Query and Mutation composed from the domains, plus extensions."""

from __future__ import annotations

import strawberry
from strawberry.schema.config import StrawberryConfig

from schema import enums as registered_enums
from schema.catalog.mutations import CatalogMutations
from schema.catalog.queries import CatalogQueries
from schema.collaboratives.mutations import CollaborativeMutations
from schema.collaboratives.queries import CollaborativeQueries
from schema.masking import MaskUnexpectedErrors
from schema.measures.mutations import MeasureMutations
from schema.measures.queries import MeasureQueries
from schema.nodes import NodeQueries
from schema.scalars import SCALAR_MAP
from schema.sponsors.queries import SponsorQueries
from schema.teams.mutations import TeamMutations
from schema.teams.queries import TeamQueries


@strawberry.type(description="Everything that can be read.")
class Query(
    NodeQueries,
    SponsorQueries,
    CollaborativeQueries,
    MeasureQueries,
    CatalogQueries,
    TeamQueries,
):
    pass


@strawberry.type(description="Everything that can be changed; one mutation is one transaction.")
class Mutation(CollaborativeMutations, MeasureMutations, CatalogMutations, TeamMutations):
    pass


assert registered_enums.ClientKind is not None  # registered before the schema is built


def build_schema() -> strawberry.Schema:
    """The schema with its extensions (a new instance each call; building is cheap)."""
    return strawberry.Schema(
        query=Query,
        mutation=Mutation,
        config=StrawberryConfig(scalar_map=SCALAR_MAP),
        extensions=[MaskUnexpectedErrors],
    )


schema = build_schema()
"""The process's schema (export with ``collabx export-schema``)."""
