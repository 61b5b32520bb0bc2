"""Queries: ``collaboratives(filter, orderBy, first, after)`` and ``collaborative(id | code)``."""

from __future__ import annotations

import enum
from datetime import date

import strawberry

from db.enums import CollaborativeStatus
from db.queries.collaboratives import (
    CollaborativeFilter as CollaborativeFilterQuery,
)
from db.queries.collaboratives import (
    get_collaborative_by_code,
    list_collaboratives,
)
from schema.collaboratives.types import Collaborative
from schema.context import Info
from schema.ids import row_id_of
from schema.pagination import (
    Connection,
    OrderDirection,
    empty_connection,
    page_request,
    to_connection,
)
from schema.permissions import HasScope, require_principal, visible_sponsor_id


@strawberry.input(description="Filters of collaboratives; all given filters must match.")
class CollaborativeFilter:
    sponsor: str | None = strawberry.field(default=None, description="Sponsor slug.")
    status: CollaborativeStatus | None = strawberry.field(default=None, description="Status.")
    topic: str | None = strawberry.field(default=None, description="Topic contains this text.")
    active_on: date | None = strawberry.field(
        default=None, description="Running on this day (between start and end date)."
    )
    search: str | None = strawberry.field(
        default=None, description="Text in code, name, topic or aim."
    )


@strawberry.enum(description="Sort keys of collaboratives.")
class CollaborativeOrderField(enum.Enum):
    CODE = "CODE"
    NAME = "NAME"
    CREATED_AT = "CREATED_AT"


@strawberry.input(description="Ordering of collaboratives.")
class CollaborativeOrder:
    field: CollaborativeOrderField = CollaborativeOrderField.CODE
    direction: OrderDirection = OrderDirection.ASC


@strawberry.type
class CollaborativeQueries:
    @strawberry.field(
        description="The caller's collaboratives, filtered and paged.",
        permission_classes=[HasScope("program:read")],
    )
    async def collaboratives(
        self,
        info: Info,
        filter: CollaborativeFilter | None = None,
        order_by: CollaborativeOrder | None = None,
        first: int | None = None,
        after: str | None = None,
    ) -> Connection[Collaborative]:
        filter = filter or CollaborativeFilter()
        order_by = order_by or CollaborativeOrder()
        order = f"collaboratives:{order_by.field.value}:{order_by.direction.value}"
        size, keyset = page_request(info, order=order, first=first, after=after)
        sponsor_id = visible_sponsor_id(info, filter.sponsor)
        if sponsor_id is None:
            return empty_connection()
        async with info.context.db() as session:
            page = await list_collaboratives(
                session,
                sponsor_id,
                filter=CollaborativeFilterQuery(
                    status=filter.status,
                    topic=filter.topic,
                    active_on=filter.active_on,
                    search=filter.search,
                ),
                sort=order_by.field.value,
                descending=order_by.direction is OrderDirection.DESC,
                first=size,
                after=keyset,
            )
        return to_connection(
            page, order=order, project=Collaborative.from_model, after=keyset is not None
        )

    @strawberry.field(
        description="A collaborative by global id or by code; null when not visible.",
        permission_classes=[HasScope("program:read")],
    )
    async def collaborative(
        self,
        info: Info,
        id: strawberry.ID | None = None,
        code: str | None = None,
        sponsor: str | None = None,
    ) -> Collaborative | None:
        require_principal(info)
        if id is not None:
            row_id = row_id_of(id, "Collaborative")
            if row_id is None:
                return None
            row = await info.context.loaders.collaborative_by_id.load(row_id)
            return Collaborative.from_model(row) if row is not None else None
        if code is None:
            return None
        sponsor_id = visible_sponsor_id(info, sponsor)
        if sponsor_id is None:
            return None
        async with info.context.db() as session:
            found = await get_collaborative_by_code(session, sponsor_id, code)
        return Collaborative.from_model(found) if found is not None else None
