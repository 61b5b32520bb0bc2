"""Queries: ``viewer``, ``sponsors``, ``sponsor(slug:)``."""

from __future__ import annotations

import strawberry

from db.enums import ClientKind
from db.queries.sharing import sponsors_sharing_with
from db.queries.sponsors import get_sponsor_by_slug, list_sponsors
from schema.context import Info
from schema.permissions import HasScope, require_principal
from schema.sponsors.types import Sponsor
from schema.teams.types import Team, findable_code


@strawberry.type(description="The calling client.")
class Viewer:
    client_id: str = strawberry.field(description="OAuth client id.")
    kind: ClientKind = strawberry.field(description="Kind of client.")
    scopes: list[str] = strawberry.field(description="Scopes of the current token.")
    sponsor_slug: strawberry.Private[str]

    @strawberry.field(description="The client's home sponsor.")
    async def sponsor(self, info: Info) -> Sponsor:
        principal = require_principal(info)
        row = await info.context.loaders.sponsor_by_id.load(principal.sponsor_id)
        assert row is not None
        return Sponsor.from_model(row)

    @strawberry.field(
        description="The teams an EHR integration is bound to, by code (empty for other clients).",
        permission_classes=[HasScope("program:read")],
    )
    async def teams(self, info: Info) -> list[Team]:
        principal = require_principal(info)
        rows = await info.context.loaders.team_by_id.load_many(sorted(principal.team_ids))
        return sorted((Team.from_model(row) for row in rows if row is not None), key=_code)


def _code(team: Team) -> str:
    return team.code


@strawberry.type
class SponsorQueries:
    @strawberry.field(description="The calling client: kind, scopes, sponsor, bound teams.")
    def viewer(self, info: Info) -> Viewer:
        principal = require_principal(info)
        return Viewer(
            client_id=principal.client_id,
            kind=principal.kind,
            scopes=sorted(principal.scopes),
            sponsor_slug=principal.sponsor_slug,
        )

    @strawberry.field(
        description=(
            "The sponsors the caller can see: its own, and those with a sharing agreement in "
            "force with it (as grantor or grantee)."
        )
    )
    async def sponsors(self, info: Info) -> list[Sponsor]:
        principal = require_principal(info)
        async with info.context.db() as session:
            partners = await sponsors_sharing_with(session, principal.sponsor_id)
            rows = await list_sponsors(session, ids=[principal.sponsor_id, *partners])
        return [Sponsor.from_model(row) for row in rows]

    @strawberry.field(description="A sponsor by slug; null when not visible to the caller.")
    async def sponsor(self, info: Info, slug: str) -> Sponsor | None:
        principal = require_principal(info)
        if not findable_code(slug):
            return None
        async with info.context.db() as session:
            row = await get_sponsor_by_slug(session, slug)
            if row is None:
                return None
            if row.id != principal.sponsor_id and row.id not in await sponsors_sharing_with(
                session, principal.sponsor_id
            ):
                return None
        return Sponsor.from_model(row)
