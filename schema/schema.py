"""The GraphQL schema: Query and Mutation composed from the domains, plus extensions."""

from __future__ import annotations

import strawberry
from graphql import GraphQLError
from strawberry.extensions import MaskErrors

from schema import enums as registered_enums
from schema.collaboratives.mutations import CollaborativeMutations
from schema.collaboratives.queries import CollaborativeQueries
from schema.errors import PublicError
from schema.sponsors.queries import SponsorQueries

MASKED_MESSAGE = "Unexpected error."


@strawberry.type(description="Everything that can be read.")
class Query(SponsorQueries, CollaborativeQueries):
    pass


@strawberry.type(description="Everything that can be changed; one mutation is one transaction.")
class Mutation(CollaborativeMutations):
    pass


def should_mask_error(error: GraphQLError) -> bool:
    """Mask only exceptions raised inside resolvers that are not public errors.

    Validation and parse errors have no ``original_error`` and stay visible; so do errors we raise
    on purpose (:class:`PublicError`, permission denials).
    """
    original = error.original_error
    if original is None:
        return False
    if isinstance(original, PublicError):
        return False
    if isinstance(original, GraphQLError) and (original.extensions or {}).get("code"):
        return False
    return not (error.extensions or {}).get("code")


assert registered_enums.ClientKind is not None  # registered before the schema is built


def build_schema() -> strawberry.Schema:
    """The schema with its extensions (a new instance each call; building is cheap)."""
    return strawberry.Schema(
        query=Query,
        mutation=Mutation,
        extensions=[
            lambda: MaskErrors(should_mask_error=should_mask_error, error_message=MASKED_MESSAGE)
        ],
    )


schema = build_schema()
"""The process's schema (export with ``collabx export-schema``)."""
