"""Queries: ``measures(filter, orderBy, first, after)`` and ``measure(code, version, sponsor)``."""

from __future__ import annotations

import enum

import strawberry

from db.enums import MeasureType
from db.queries.measures import MeasureFilter as MeasureFilterQuery
from db.queries.measures import get_measure_by_code, list_measures
from schema.context import Info
from schema.measures.types import Measure
from schema.pagination import (
    Connection,
    OrderDirection,
    empty_connection,
    page_request,
    to_connection,
)
from schema.permissions import HasScope, visible_sponsor_id


@strawberry.input(description="Filters of measures; all given filters must match.")
class MeasureFilter:
    sponsor: str | None = strawberry.field(default=None, description="Sponsor slug.")
    type: MeasureType | None = strawberry.field(
        default=None, description="Type of the current definition."
    )
    collaborative: str | None = strawberry.field(
        default=None, description="Code of a collaborative whose measure set holds the measure."
    )
    search: str | None = strawberry.field(
        default=None, description="Text in the code, or the current name or description."
    )


@strawberry.enum(description="Sort keys of measures.")
class MeasureOrderField(enum.Enum):
    CODE = "CODE"
    CREATED_AT = "CREATED_AT"
    UPDATED_AT = "UPDATED_AT"


@strawberry.input(description="Ordering of measures.")
class MeasureOrder:
    field: MeasureOrderField = MeasureOrderField.CODE
    direction: OrderDirection = OrderDirection.ASC


@strawberry.type
class MeasureQueries:
    @strawberry.field(
        description="The caller's measures at their current definitions, filtered and paged.",
        permission_classes=[HasScope("program:read")],
    )
    async def measures(
        self,
        info: Info,
        filter: MeasureFilter | None = None,
        order_by: MeasureOrder | None = None,
        first: int | None = None,
        after: str | None = None,
    ) -> Connection[Measure]:
        filter = filter or MeasureFilter()
        order_by = order_by or MeasureOrder()
        order = f"measures:{order_by.field.value}:{order_by.direction.value}"
        size, keyset = page_request(info, order=order, first=first, after=after)
        sponsor_id = visible_sponsor_id(info, filter.sponsor)
        if sponsor_id is None:
            return empty_connection()
        async with info.context.db() as session:
            page = await list_measures(
                session,
                sponsor_id,
                filter=MeasureFilterQuery(
                    type=filter.type, collaborative=filter.collaborative, search=filter.search
                ),
                sort=order_by.field.value,
                descending=order_by.direction is OrderDirection.DESC,
                first=size,
                after=keyset,
            )
        return to_connection(
            page, order=order, project=Measure.from_model, after=keyset is not None
        )

    @strawberry.field(
        description=(
            "A measure by code, at its current definition or at `version`; null when the measure "
            "or the version does not exist for the sponsor (or is another sponsor's)."
        ),
        permission_classes=[HasScope("program:read")],
    )
    async def measure(
        self,
        info: Info,
        code: str,
        version: int | None = None,
        sponsor: str | None = None,
    ) -> Measure | None:
        sponsor_id = visible_sponsor_id(info, sponsor)
        if sponsor_id is None:
            return None
        async with info.context.db() as session:
            found = await get_measure_by_code(session, sponsor_id, code, version=version)
        return Measure.from_model(found) if found is not None else None
