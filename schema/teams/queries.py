"""Queries: ``organizations``, ``organization``, ``teams`` and ``team`` (scope program:read)."""

from __future__ import annotations

import enum
from datetime import datetime

import strawberry

from db.queries.paging import Keyset
from db.queries.teams import OrganizationFilter as OrganizationFilterQuery
from db.queries.teams import TeamFilter as TeamFilterQuery
from db.queries.teams import (
    get_organization_by_code,
    get_team_by_code,
    list_organizations,
    list_teams,
)
from schema.context import Info
from schema.errors import invalid_argument
from schema.ids import row_id_of
from schema.pagination import (
    Connection,
    OrderDirection,
    page_request,
    to_connection,
)
from schema.permissions import HasScope, require_principal, visible_sponsor_id
from schema.teams.types import Organization, Team, check_filter_text, findable_code


@strawberry.input(description="Filters of organizations; all given filters must match.")
class OrganizationFilter:
    search: str | None = strawberry.field(
        default=None, description="Text in code, name, city or region."
    )
    state: str | None = strawberry.field(
        default=None, description="State or province (case-insensitive)."
    )


@strawberry.enum(description="Sort keys of organizations.")
class OrganizationOrderField(enum.Enum):
    CODE = "CODE"
    NAME = "NAME"
    STATE = "STATE"
    CREATED_AT = "CREATED_AT"


@strawberry.input(description="Ordering of organizations.")
class OrganizationOrder:
    field: OrganizationOrderField = OrganizationOrderField.CODE
    direction: OrderDirection = OrderDirection.ASC


@strawberry.input(description="Filters of teams; all given filters must match.")
class TeamFilter:
    collaborative: str | None = strawberry.field(
        default=None, description="Code of the collaborative the team is enrolled in."
    )
    organization: str | None = strawberry.field(default=None, description="Organization code.")
    state: str | None = strawberry.field(
        default=None, description="State of the organization (case-insensitive)."
    )
    search: str | None = strawberry.field(
        default=None, description="Text in the team's code or name or its organization's name."
    )
    active: bool | None = strawberry.field(
        default=None,
        description="True: teams that have not withdrawn; false: teams that have.",
    )


@strawberry.enum(description="Sort keys of teams.")
class TeamOrderField(enum.Enum):
    CODE = "CODE"
    NAME = "NAME"
    CREATED_AT = "CREATED_AT"


@strawberry.input(description="Ordering of teams.")
class TeamOrder:
    field: TeamOrderField = TeamOrderField.CODE
    direction: OrderDirection = OrderDirection.ASC


def _checked_keyset(keyset: Keyset | None, field: str) -> Keyset | None:
    """A decoded cursor whose sort value has the type of the sort column (else VALIDATION)."""
    if keyset is None:
        return None
    expected = datetime if field == "CREATED_AT" else str
    if not isinstance(keyset.value, expected):
        raise invalid_argument("invalid cursor: malformed cursor")
    return keyset


@strawberry.type
class TeamQueries:
    @strawberry.field(
        description="The caller's organizations (sites), filtered and paged.",
        permission_classes=[HasScope("program:read")],
    )
    async def organizations(
        self,
        info: Info,
        filter: OrganizationFilter | None = None,
        order_by: OrganizationOrder | None = None,
        first: int | None = None,
        after: str | None = None,
    ) -> Connection[Organization]:
        filter = filter or OrganizationFilter()
        order_by = order_by or OrganizationOrder()
        order = f"organizations:{order_by.field.value}:{order_by.direction.value}"
        size, keyset = page_request(info, order=order, first=first, after=after)
        keyset = _checked_keyset(keyset, order_by.field.value)
        check_filter_text(search=filter.search, state=filter.state)
        principal = require_principal(info)
        async with info.context.db() as session:
            page = await list_organizations(
                session,
                principal.sponsor_id,
                filter=OrganizationFilterQuery(search=filter.search, state=filter.state),
                sort=order_by.field.value,
                descending=order_by.direction is OrderDirection.DESC,
                first=size,
                after=keyset,
            )
        return to_connection(
            page, order=order, project=Organization.from_model, after=keyset is not None
        )

    @strawberry.field(
        description="An organization by global id or by code; null when not visible.",
        permission_classes=[HasScope("program:read")],
    )
    async def organization(
        self,
        info: Info,
        id: strawberry.ID | None = None,
        code: str | None = None,
        sponsor: str | None = None,
    ) -> Organization | None:
        require_principal(info)
        if id is not None:
            row_id = row_id_of(id, "Organization")
            if row_id is None:
                return None
            row = await info.context.loaders.organization_by_id.load(row_id)
            return Organization.from_model(row) if row is not None else None
        if code is None or not findable_code(code):
            return None
        sponsor_id = visible_sponsor_id(info, sponsor)
        if sponsor_id is None:
            return None
        async with info.context.db() as session:
            found = await get_organization_by_code(session, sponsor_id, code)
        return Organization.from_model(found) if found is not None else None

    @strawberry.field(
        description="The caller's teams, filtered and paged.",
        permission_classes=[HasScope("program:read")],
    )
    async def teams(
        self,
        info: Info,
        filter: TeamFilter | None = None,
        order_by: TeamOrder | None = None,
        first: int | None = None,
        after: str | None = None,
    ) -> Connection[Team]:
        filter = filter or TeamFilter()
        order_by = order_by or TeamOrder()
        order = f"teams:{order_by.field.value}:{order_by.direction.value}"
        size, keyset = page_request(info, order=order, first=first, after=after)
        keyset = _checked_keyset(keyset, order_by.field.value)
        check_filter_text(
            collaborative=filter.collaborative,
            organization=filter.organization,
            state=filter.state,
            search=filter.search,
        )
        principal = require_principal(info)
        async with info.context.db() as session:
            page = await list_teams(
                session,
                principal.sponsor_id,
                filter=TeamFilterQuery(
                    collaborative_code=filter.collaborative,
                    organization_code=filter.organization,
                    state=filter.state,
                    search=filter.search,
                    active=filter.active,
                ),
                sort=order_by.field.value,
                descending=order_by.direction is OrderDirection.DESC,
                first=size,
                after=keyset,
            )
        return to_connection(page, order=order, project=Team.from_model, after=keyset is not None)

    @strawberry.field(
        description="A team by global id or by code; null when not visible.",
        permission_classes=[HasScope("program:read")],
    )
    async def team(
        self,
        info: Info,
        id: strawberry.ID | None = None,
        code: str | None = None,
        sponsor: str | None = None,
    ) -> Team | None:
        require_principal(info)
        if id is not None:
            row_id = row_id_of(id, "Team")
            if row_id is None:
                return None
            row = await info.context.loaders.team_by_id.load(row_id)
            return Team.from_model(row) if row is not None else None
        if code is None or not findable_code(code):
            return None
        sponsor_id = visible_sponsor_id(info, sponsor)
        if sponsor_id is None:
            return None
        async with info.context.db() as session:
            found = await get_team_by_code(session, sponsor_id, code)
        return Team.from_model(found) if found is not None else None
