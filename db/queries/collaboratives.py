"""Collaboratives, their phases and staff: reads, and the writes of program administration."""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any

from sqlalchemy import and_, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from db.enums import CollaborativeStatus, PhaseKind
from db.errors import Conflict, InvalidInput, NotFound
from db.models import Collaborative, Phase, StaffAssignment
from db.queries.audit import Actor, record_event, snapshot
from db.queries.paging import Keyset, Page, keyset_page
from db.queries.text import matches_any

COLLABORATIVE_SORTS = {
    "CODE": Collaborative.code,
    "NAME": Collaborative.name,
    "CREATED_AT": Collaborative.created_at,
}


@dataclass(frozen=True)
class CollaborativeFilter:
    """Filters of ``collaboratives``; None means "any"."""

    status: CollaborativeStatus | None = None
    topic: str | None = None
    active_on: date | None = None
    search: str | None = None


async def list_collaboratives(
    session: AsyncSession,
    sponsor_id: uuid.UUID,
    *,
    filter: CollaborativeFilter,
    sort: str = "CODE",
    descending: bool = False,
    first: int,
    after: Keyset | None = None,
) -> Page[Collaborative]:
    """One page of a sponsor's collaboratives."""
    query = select(Collaborative).where(Collaborative.sponsor_id == sponsor_id)
    if filter.status is not None:
        query = query.where(Collaborative.status == filter.status)
    if filter.topic is not None:
        query = query.where(matches_any(filter.topic, Collaborative.topic))
    if filter.active_on is not None:
        day = filter.active_on
        query = query.where(
            or_(Collaborative.start_date.is_(None), Collaborative.start_date <= day),
            or_(Collaborative.end_date.is_(None), Collaborative.end_date >= day),
        )
    if filter.search:
        query = query.where(
            matches_any(
                filter.search,
                Collaborative.code,
                Collaborative.name,
                Collaborative.topic,
                Collaborative.aim,
            )
        )
    return await keyset_page(
        session,
        query,
        sort=COLLABORATIVE_SORTS[sort],
        tiebreak=Collaborative.id,
        descending=descending,
        first=first,
        after=after,
    )


async def get_collaborative_by_code(
    session: AsyncSession, sponsor_id: uuid.UUID, code: str
) -> Collaborative | None:
    """A sponsor's collaborative by code."""
    return await session.scalar(
        select(Collaborative).where(
            Collaborative.sponsor_id == sponsor_id, Collaborative.code == code
        )
    )


async def collaboratives_by_ids(
    session: AsyncSession, sponsor_id: uuid.UUID, ids: Sequence[uuid.UUID]
) -> list[Collaborative | None]:
    """Collaboratives of one sponsor in the order of ``ids`` (None where missing)."""
    rows = (
        await session.scalars(
            select(Collaborative).where(
                Collaborative.sponsor_id == sponsor_id, Collaborative.id.in_(ids)
            )
        )
    ).all()
    by_id = {row.id: row for row in rows}
    return [by_id.get(i) for i in ids]


async def collaboratives_by_codes(
    session: AsyncSession, sponsor_id: uuid.UUID, codes: Sequence[str]
) -> list[Collaborative | None]:
    """Collaboratives of one sponsor in the order of ``codes`` (federation entity keys)."""
    rows = (
        await session.scalars(
            select(Collaborative).where(
                Collaborative.sponsor_id == sponsor_id, Collaborative.code.in_(codes)
            )
        )
    ).all()
    by_code = {row.code: row for row in rows}
    return [by_code.get(c) for c in codes]


async def phases_by_collaborative_ids(
    session: AsyncSession, sponsor_id: uuid.UUID, ids: Sequence[uuid.UUID]
) -> list[list[Phase]]:
    """Each collaborative's phases in sequence order, in the order of ``ids``."""
    rows = (
        await session.scalars(
            select(Phase)
            .where(Phase.sponsor_id == sponsor_id, Phase.collaborative_id.in_(ids))
            .order_by(Phase.collaborative_id, Phase.seq)
        )
    ).all()
    grouped: defaultdict[uuid.UUID, list[Phase]] = defaultdict(list)
    for row in rows:
        grouped[row.collaborative_id].append(row)
    return [grouped[i] for i in ids]


async def staff_by_collaborative_ids(
    session: AsyncSession, sponsor_id: uuid.UUID, ids: Sequence[uuid.UUID]
) -> list[list[StaffAssignment]]:
    """Each collaborative's staff assignments, in the order of ``ids``."""
    rows = (
        await session.scalars(
            select(StaffAssignment)
            .where(
                StaffAssignment.sponsor_id == sponsor_id,
                StaffAssignment.collaborative_id.in_(ids),
            )
            .order_by(StaffAssignment.collaborative_id, StaffAssignment.role, StaffAssignment.id)
        )
    ).all()
    grouped: defaultdict[uuid.UUID, list[StaffAssignment]] = defaultdict(list)
    for row in rows:
        grouped[row.collaborative_id].append(row)
    return [grouped[i] for i in ids]


@dataclass(frozen=True)
class PhaseInput:
    """A phase as program administration gives it."""

    kind: PhaseKind
    seq: int
    name: str = ""
    start_date: date | None = None
    end_date: date | None = None


@dataclass(frozen=True)
class CollaborativeChanges:
    """Fields of a collaborative to set; None leaves a field as it is (on update)."""

    name: str | None = None
    topic: str | None = None
    aim: str | None = None
    description: str | None = None
    status: CollaborativeStatus | None = None
    start_date: date | None = None
    end_date: date | None = None
    phases: Sequence[PhaseInput] | None = None


def _check_dates(start: date | None, end: date | None, field: str) -> None:
    if start is not None and end is not None and end < start:
        raise InvalidInput("the end date is before the start date", field=field)


def _check_phases(phases: Sequence[PhaseInput]) -> None:
    seqs = [phase.seq for phase in phases]
    if len(set(seqs)) != len(seqs):
        raise InvalidInput("phase sequence numbers must be unique", field="phases")
    for phase in phases:
        _check_dates(phase.start_date, phase.end_date, "phases")


async def _replace_phases(
    session: AsyncSession, collaborative: Collaborative, phases: Sequence[PhaseInput]
) -> None:
    existing = (
        await session.scalars(
            select(Phase).where(
                and_(
                    Phase.sponsor_id == collaborative.sponsor_id,
                    Phase.collaborative_id == collaborative.id,
                )
            )
        )
    ).all()
    for phase in existing:
        await session.delete(phase)
    await session.flush()
    for phase_input in phases:
        session.add(
            Phase(
                sponsor_id=collaborative.sponsor_id,
                id=uuid.uuid4(),
                collaborative_id=collaborative.id,
                kind=phase_input.kind,
                seq=phase_input.seq,
                name=phase_input.name,
                start_date=phase_input.start_date,
                end_date=phase_input.end_date,
            )
        )


async def _snapshot_with_phases(
    session: AsyncSession, collaborative: Collaborative
) -> dict[str, Any]:
    """The collaborative's columns plus its phases, so phase changes show in the audit trail."""
    phases = (
        await session.scalars(
            select(Phase)
            .where(
                Phase.sponsor_id == collaborative.sponsor_id,
                Phase.collaborative_id == collaborative.id,
            )
            .order_by(Phase.seq)
        )
    ).all()
    values = snapshot(collaborative)
    values["phases"] = [
        {key: value for key, value in snapshot(phase).items() if key not in ("sponsor_id", "id")}
        for phase in phases
    ]
    return values


async def create_collaborative(
    session: AsyncSession, actor: Actor, *, code: str, changes: CollaborativeChanges
) -> Collaborative:
    """Create a collaborative (with its phases) and audit it."""
    if changes.name is None or changes.topic is None:
        raise InvalidInput("name and topic are required", field="name")
    _check_dates(changes.start_date, changes.end_date, "endDate")
    _check_phases(changes.phases or ())
    if await get_collaborative_by_code(session, actor.sponsor_id, code) is not None:
        raise Conflict(f"a collaborative with code {code!r} exists", field="code")
    collaborative = Collaborative(
        sponsor_id=actor.sponsor_id,
        id=uuid.uuid4(),
        code=code,
        name=changes.name,
        topic=changes.topic,
        aim=changes.aim or "",
        description=changes.description or "",
        status=changes.status or CollaborativeStatus.PLANNED,
        start_date=changes.start_date,
        end_date=changes.end_date,
    )
    session.add(collaborative)
    try:
        await session.flush()
    except IntegrityError as exc:
        raise Conflict(f"a collaborative with code {code!r} exists", field="code") from exc
    await _replace_phases(session, collaborative, changes.phases or ())
    await session.flush()
    await record_event(
        session,
        actor,
        action="collaborative.create",
        entity_type="Collaborative",
        entity_id=collaborative.id,
        before=None,
        after=await _snapshot_with_phases(session, collaborative),
    )
    return collaborative


async def update_collaborative(
    session: AsyncSession, actor: Actor, *, code: str, changes: CollaborativeChanges
) -> Collaborative:
    """Change a collaborative's fields (and replace its phases when given); audited."""
    collaborative = await get_collaborative_by_code(session, actor.sponsor_id, code)
    if collaborative is None:
        raise NotFound(f"no collaborative {code!r}", field="code")
    before = await _snapshot_with_phases(session, collaborative)
    for field in ("name", "topic", "aim", "description", "status", "start_date", "end_date"):
        value = getattr(changes, field)
        if value is not None:
            setattr(collaborative, field, value)
    _check_dates(collaborative.start_date, collaborative.end_date, "endDate")
    if changes.phases is not None:
        _check_phases(changes.phases)
        await _replace_phases(session, collaborative, changes.phases)
    await session.flush()
    await record_event(
        session,
        actor,
        action="collaborative.update",
        entity_type="Collaborative",
        entity_id=collaborative.id,
        before=before,
        after=await _snapshot_with_phases(session, collaborative),
    )
    return collaborative
