"""The GraphQL schema: Query and Mutation composed from the domains, plus extensions."""

from __future__ import annotations

from collections.abc import Callable

import strawberry
import strawberry.federation
from strawberry.extensions import DisableIntrospection, SchemaExtension
from strawberry.schema.config import StrawberryConfig

from schema import enums as registered_enums
from schema.aggregates.queries import AggregateQueries
from schema.assessments.mutations import AssessmentMutations, AssessmentQueries
from schema.catalog.mutations import CatalogMutations
from schema.catalog.queries import CatalogQueries
from schema.change_package.mutations import ChangePackageMutations
from schema.collaboratives.mutations import CollaborativeMutations
from schema.collaboratives.queries import CollaborativeQueries
from schema.data.mutations import DataMutations
from schema.data.queries import DataQueries
from schema.fast_lists import FastListsExecutionContext
from schema.instruments.mutations import InstrumentMutations
from schema.instruments.queries import InstrumentQueries
from schema.limits import QueryLimits, QueryLimitsExtension
from schema.live.subscriptions import LiveSubscriptions
from schema.masking import MaskUnexpectedErrors
from schema.measures.mutations import MeasureMutations
from schema.measures.queries import MeasureQueries
from schema.nodes import NodeQueries
from schema.pdsa.mutations import PdsaMutations
from schema.scalars import SCALAR_MAP
from schema.sharing.mutations import SharingMutations
from schema.sharing.queries import SharingQueries
from schema.sponsors.queries import SponsorQueries
from schema.teams.mutations import TeamMutations
from schema.teams.queries import TeamQueries
from schema.text_guard import RejectNulBytes
from schema.webhooks.mutations import WebhookMutations
from schema.webhooks.queries import WebhookQueries


@strawberry.type(description="Everything that can be read.")
class Query(
    NodeQueries,
    SponsorQueries,
    CollaborativeQueries,
    MeasureQueries,
    CatalogQueries,
    TeamQueries,
    DataQueries,
    AggregateQueries,
    InstrumentQueries,
    AssessmentQueries,
    WebhookQueries,
    SharingQueries,
):
    pass


@strawberry.type(description="Everything that can be changed; one mutation is one transaction.")
class Mutation(
    CollaborativeMutations,
    MeasureMutations,
    CatalogMutations,
    TeamMutations,
    DataMutations,
    ChangePackageMutations,
    PdsaMutations,
    AssessmentMutations,
    InstrumentMutations,
    WebhookMutations,
    SharingMutations,
):
    pass


@strawberry.type(description="Live updates over WebSocket (graphql-transport-ws on /graphql).")
class Subscription(LiveSubscriptions):
    pass


assert registered_enums.ClientKind is not None  # registered before the schema is built


def build_schema(limits: QueryLimits | None = None) -> strawberry.Schema:
    """The schema with its extensions and query ``limits`` (a new instance each call).

    The app builds its own from settings (api/graphql.py); the default limits serve SDL export.
    It is an Apollo Federation v2 subgraph: entities and their keys are in schema/federation.py.
    """
    limits = limits or QueryLimits()
    extensions: list[type[SchemaExtension] | Callable[[], SchemaExtension]] = [
        MaskUnexpectedErrors,
        lambda: QueryLimitsExtension(limits),
        RejectNulBytes,
    ]
    if not limits.introspection:
        extensions.append(DisableIntrospection)
    return strawberry.federation.Schema(
        query=Query,
        mutation=Mutation,
        subscription=Subscription,
        config=StrawberryConfig(
            scalar_map=SCALAR_MAP, disable_field_suggestions=not limits.suggestions
        ),
        extensions=extensions,
        execution_context_class=FastListsExecutionContext,
        federation_version="2.5",
    )


schema = build_schema()
"""The process's schema (export with ``collabx export-schema``)."""
