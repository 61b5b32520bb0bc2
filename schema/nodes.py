"""``node(id:)`` and ``nodes(ids:)``: any object by its global id (Relay).

Each type resolves through its DataLoader (scoped to the caller's sponsor) and requires the scope
that reads it elsewhere. An id of another sponsor, of an unknown type, or that does not decode
answers null — indistinguishable from a missing object.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import strawberry

from db.queries.sharing import sponsors_sharing_with
from schema.catalog.types import Resource
from schema.collaboratives.types import Collaborative
from schema.content_nodes import CONTENT_NODE_SCOPE, CONTENT_NODES
from schema.context import Info
from schema.data.types import exported_data_points
from schema.errors import forbidden, invalid_argument
from schema.ids import InvalidId, decode_global_id
from schema.measures.types import Measure, MeasureDefinition
from schema.node import Node
from schema.permissions import require_principal
from schema.sharing.types import SHARING_NODE_SCOPE, SHARING_NODES
from schema.sponsors.types import Person, Sponsor
from schema.teams.types import Organization, Team
from schema.webhooks.types import WEBHOOK_NODE_SCOPE, WEBHOOK_NODES

MAX_NODES = 100
"""Most ids one ``nodes`` call may ask for (the max page size)."""


@dataclass(frozen=True)
class _NodeKind:
    scope: str
    fetch: Callable[[Info, uuid.UUID], Awaitable[Node | None]]


async def _sponsor(info: Info, row_id: uuid.UUID) -> Node | None:
    principal = require_principal(info)
    if row_id != principal.sponsor_id:
        async with info.context.db() as session:
            if row_id not in await sponsors_sharing_with(session, principal.sponsor_id):
                return None
    row = await info.context.loaders.sponsor_by_id.load(row_id)
    return Sponsor.from_model(row) if row is not None else None


async def _person(info: Info, row_id: uuid.UUID) -> Node | None:
    row = await info.context.loaders.person_by_id.load(row_id)
    return Person.from_model(row) if row is not None else None


async def _collaborative(info: Info, row_id: uuid.UUID) -> Node | None:
    row = await info.context.loaders.collaborative_by_id.load(row_id)
    return Collaborative.from_model(row) if row is not None else None


async def _organization(info: Info, row_id: uuid.UUID) -> Node | None:
    row = await info.context.loaders.organization_by_id.load(row_id)
    return Organization.from_model(row) if row is not None else None


async def _team(info: Info, row_id: uuid.UUID) -> Node | None:
    row = await info.context.loaders.team_by_id.load(row_id)
    return Team.from_model(row) if row is not None else None


async def _measure(info: Info, row_id: uuid.UUID) -> Node | None:
    row = await info.context.loaders.measure_by_id.load(row_id)
    return Measure.from_model(row) if row is not None else None


async def _measure_definition(info: Info, row_id: uuid.UUID) -> Node | None:
    row = await info.context.loaders.measure_definition_by_id.load(row_id)
    return MeasureDefinition.from_model(row) if row is not None else None


async def _resource(info: Info, row_id: uuid.UUID) -> Node | None:
    row = await info.context.loaders.resource_by_id.load(row_id)
    return Resource.from_model(row) if row is not None else None


async def _data_point(info: Info, row_id: uuid.UUID) -> Node | None:
    principal = require_principal(info)
    point = await info.context.loaders.data_point_by_id.load(row_id)
    if point is None or (principal.is_team_bound and point.team_id not in principal.team_ids):
        return None
    return (await exported_data_points(info, [point]))[0]


NODE_KINDS: dict[str, _NodeKind] = {
    "Sponsor": _NodeKind("program:read", _sponsor),
    "Person": _NodeKind("program:read", _person),
    "Collaborative": _NodeKind("program:read", _collaborative),
    "Organization": _NodeKind("program:read", _organization),
    "Team": _NodeKind("program:read", _team),
    "Measure": _NodeKind("program:read", _measure),
    "MeasureDefinition": _NodeKind("program:read", _measure_definition),
    "Resource": _NodeKind("catalog:read", _resource),
    "DataPoint": _NodeKind("data:read", _data_point),
    **{name: _NodeKind(CONTENT_NODE_SCOPE, fetch) for name, fetch in CONTENT_NODES.items()},
    **{name: _NodeKind(WEBHOOK_NODE_SCOPE, fetch) for name, fetch in WEBHOOK_NODES.items()},
    **{name: _NodeKind(SHARING_NODE_SCOPE, fetch) for name, fetch in SHARING_NODES.items()},
}
"""Every type ``node`` resolves, with the scope it needs."""


async def resolve_node(info: Info, global_id: str) -> Node | None:
    """The object behind a global id, or None; FORBIDDEN when the caller lacks its scope."""
    principal = require_principal(info)
    try:
        type_name, row_id = decode_global_id(global_id)
    except InvalidId:
        return None
    kind = NODE_KINDS.get(type_name)
    if kind is None:
        return None
    if not principal.has_scope(kind.scope):
        raise forbidden(f"reading a {type_name} requires the scope {kind.scope!r}")
    return await kind.fetch(info, row_id)


@strawberry.type
class NodeQueries:
    @strawberry.field(description="Any object by its global id; null when not visible.")
    async def node(self, info: Info, id: strawberry.ID) -> Node | None:
        return await resolve_node(info, id)

    @strawberry.field(description="Objects by global ids, in order; null where not visible.")
    async def nodes(self, info: Info, ids: list[strawberry.ID]) -> list[Node | None]:
        if len(ids) > MAX_NODES:
            raise invalid_argument(f"nodes takes at most {MAX_NODES} ids")
        # Concurrently, so the DataLoaders batch the ids of each type into one query.
        return list(await asyncio.gather(*(resolve_node(info, global_id) for global_id in ids)))
