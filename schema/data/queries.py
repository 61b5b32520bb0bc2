"""Queries: ``receipt(id)`` and the delta export ``dataPoints(filter, first, after)``.

Team-bound clients (EHR integrations) see only their own receipts and their teams' points.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Annotated, Any

import strawberry
from strawberry.permission import BasePermission

from db.queries.data import DataPointFilter as DataPointFilterQuery
from db.queries.data import get_receipt, list_data_points
from db.queries.paging import Page
from schema.context import Info
from schema.data.types import DataPoint, MeasureDataReceipt, exported_data_points
from schema.errors import invalid_argument
from schema.pagination import Connection, empty_connection, page_request, to_connection
from schema.permissions import HasScope, require_principal
from schema.scalars import Period
from schema.selection import selects
from schema.teams.types import findable_code

DATA_POINTS_ORDER = "dataPoints:UPDATED_AT:ASC"
"""The one ordering of the delta export (cursors name it)."""


def wants_total_count(info: Info) -> bool:
    """Whether the connection being resolved asks for ``totalCount``.

    Counting a sponsor's whole delta export costs a scan of its history on every page; an
    export that pages with cursors never asks for it, so it is counted only when selected.
    """
    return selects(info, "totalCount")


class ReadsOrWritesData(BasePermission):
    """``data:read`` or ``data:write``: whoever may submit may read its receipts."""

    message = "this operation requires the scope 'data:read' or 'data:write'"
    error_extensions = {"code": "FORBIDDEN"}

    def has_permission(self, source: Any, info: Info, **kwargs: Any) -> bool:
        principal = info.context.principal
        return principal is not None and (
            principal.has_scope("data:read") or principal.has_scope("data:write")
        )


@strawberry.input(description="Filters of the delta export; all given filters must match.")
class DataPointFilter:
    collaborative: str | None = strawberry.field(
        default=None, description="Code of the collaborative the teams are enrolled in."
    )
    measure: str | None = strawberry.field(default=None, description="Measure code.")
    team: str | None = strawberry.field(default=None, description="Team code.")
    from_: Period | None = strawberry.field(default=None, name="from", description="First period.")
    to: Period | None = strawberry.field(default=None, description="Last period.")
    updated_since: datetime | None = strawberry.field(
        default=None,
        description=(
            "Only points written or deleted at or after this time (inclusive; without a zone, "
            "UTC). To sync incrementally, pass the time your previous sync started, less a few "
            "minutes for calls that were still committing, and page with `after`."
        ),
    )


def _since(value: datetime | None) -> datetime | None:
    if value is None or value.tzinfo is not None:
        return value
    return value.replace(tzinfo=UTC)


@strawberry.type
class DataQueries:
    @strawberry.field(
        description=(
            "A receipt of submitMeasureData or deleteMeasureData by its receiptId; null when "
            "unknown (or another sponsor's, or — for EHR integrations — another client's)."
        ),
        permission_classes=[ReadsOrWritesData],
    )
    async def receipt(
        self,
        info: Info,
        id: Annotated[
            strawberry.ID, strawberry.argument(description="The receiptId a data call answered.")
        ],
    ) -> MeasureDataReceipt | None:
        principal = require_principal(info)
        try:
            receipt_id = uuid.UUID(str(id))
        except ValueError:
            return None
        async with info.context.db() as session:
            found = await get_receipt(
                session,
                principal.sponsor_id,
                receipt_id,
                client_id=principal.client_id if principal.is_team_bound else None,
            )
        return MeasureDataReceipt.from_receipt(found) if found is not None else None

    @strawberry.field(
        description=(
            "Delta export: data points in the order they were last written, deleted ones as "
            "tombstones (`deleted: true`), so partners can sync incrementally with "
            "`updatedSince` and keyset cursors."
        ),
        permission_classes=[HasScope("data:read")],
    )
    async def data_points(
        self,
        info: Info,
        filter: DataPointFilter | None = None,
        first: int | None = None,
        after: str | None = None,
    ) -> Connection[DataPoint]:
        principal = require_principal(info)
        size, keyset = page_request(info, order=DATA_POINTS_ORDER, first=first, after=after)
        if keyset is not None and not isinstance(keyset.value, datetime):
            raise invalid_argument("invalid cursor: malformed cursor")
        given = filter or DataPointFilter()
        codes = (given.collaborative, given.measure, given.team)
        if any(code is not None and not findable_code(code) for code in codes):
            return empty_connection()
        query = DataPointFilterQuery(
            collaborative_code=given.collaborative,
            measure_code=given.measure,
            team_code=given.team,
            from_period=given.from_,
            to_period=given.to,
            updated_since=_since(given.updated_since),
            team_ids=principal.team_ids if principal.is_team_bound else None,
        )
        async with info.context.read_db() as session:
            page = await list_data_points(
                session,
                principal.sponsor_id,
                filter=query,
                first=size,
                after=keyset,
                count=wants_total_count(info),
            )
        projected = Page(
            rows=await exported_data_points(info, page.rows),
            keysets=page.keysets,
            has_next=page.has_next,
            total=page.total,
        )
        return to_connection(
            projected,
            order=DATA_POINTS_ORDER,
            project=lambda point: point,
            after=keyset is not None,
        )
