"""Queries: ``instruments`` and ``instrument(code)`` (scope program:read).

A sponsor has a handful of instruments (loaded with ``collabx instruments load``), so the list
is a plain list, by code.
"""

from __future__ import annotations

import strawberry

from db.queries.instruments import get_instrument_by_code, list_instruments
from schema.context import Info
from schema.instruments.types import Instrument
from schema.permissions import HasScope, visible_sponsor_id
from schema.teams.types import findable_code


@strawberry.type
class InstrumentQueries:
    @strawberry.field(
        description="The survey instruments of the caller's sponsor, by code.",
        permission_classes=[HasScope("program:read")],
    )
    async def instruments(self, info: Info, sponsor: str | None = None) -> list[Instrument]:
        sponsor_id = visible_sponsor_id(info, sponsor)
        if sponsor_id is None:
            return []
        async with info.context.db() as session:
            rows = await list_instruments(session, sponsor_id)
        return [Instrument.from_model(row) for row in rows]

    @strawberry.field(
        description="An instrument by code; null when the sponsor has none with that code.",
        permission_classes=[HasScope("program:read")],
    )
    async def instrument(
        self, info: Info, code: str, sponsor: str | None = None
    ) -> Instrument | None:
        sponsor_id = visible_sponsor_id(info, sponsor)
        if sponsor_id is None or not findable_code(code):
            return None
        async with info.context.db() as session:
            row = await get_instrument_by_code(session, sponsor_id, code)
        return Instrument.from_model(row) if row is not None else None
