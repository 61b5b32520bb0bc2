"""The audit trail: one row per write, recorded in the same transaction as the write."""

from __future__ import annotations

import enum
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from sqlalchemy import inspect, select
from sqlalchemy.ext.asyncio import AsyncSession

from db.base import Base, utcnow
from db.models import AuditEvent


@dataclass(frozen=True)
class Actor:
    """Who writes: the client, its kind and sponsor, and the request it came with."""

    client_id: str
    kind: str
    sponsor_id: uuid.UUID
    request_id: str = ""


def _jsonable(value: Any) -> Any:
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, datetime | date):
        return value.isoformat()
    return value


def snapshot(row: Base) -> dict[str, Any]:
    """The column values of a model row as JSON-safe data (for ``before``/``after``)."""
    mapper = inspect(row.__class__)
    return {attr.key: _jsonable(getattr(row, attr.key)) for attr in mapper.column_attrs}


async def record_event(
    session: AsyncSession,
    actor: Actor,
    *,
    action: str,
    entity_type: str,
    entity_id: uuid.UUID | str,
    before: dict[str, Any] | None,
    after: dict[str, Any] | None,
) -> AuditEvent:
    """Add an audit event to the session (committed with the write it describes)."""
    event = AuditEvent(
        sponsor_id=actor.sponsor_id,
        id=uuid.uuid4(),
        at=utcnow(),
        actor_client_id=actor.client_id,
        actor_kind=actor.kind,
        request_id=actor.request_id,
        action=action,
        entity_type=entity_type,
        entity_id=str(entity_id),
        before=before,
        after=after,
    )
    session.add(event)
    return event


async def list_events(
    session: AsyncSession,
    sponsor_id: uuid.UUID,
    *,
    entity_type: str | None = None,
    entity_id: str | None = None,
    limit: int = 100,
) -> Sequence[AuditEvent]:
    """Newest audit events of a sponsor, optionally for one entity."""
    query = select(AuditEvent).where(AuditEvent.sponsor_id == sponsor_id)
    if entity_type is not None:
        query = query.where(AuditEvent.entity_type == entity_type)
    if entity_id is not None:
        query = query.where(AuditEvent.entity_id == entity_id)
    query = query.order_by(AuditEvent.at.desc(), AuditEvent.id).limit(limit)
    return (await session.scalars(query)).all()
