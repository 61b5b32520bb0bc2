"""Measure data, read side and period locks: receipts, the delta export, locks.

Writes of data points go through :mod:`db.ingest` (the one bulk path). This module reads what it
wrote — receipts (``receipt(id)``), the delta export (live points and tombstones of deleted ones,
in (updated_at, id) order with keyset cursors) — and writes the period locks of collaboratives
(audited). The history of values (a call's change set) is :mod:`db.queries.history`.

A point's ``status`` reads ``LOCKED`` while its period is locked for its team's collaborative,
whatever the stored review state; unlocking gives the stored state back. Locking does not touch
the points, so their ``updated_at`` (and the delta export) do not move when a lock does.
"""

from __future__ import annotations

import enum
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Float,
    Integer,
    Select,
    String,
    Text,
    and_,
    bindparam,
    cast,
    false,
    func,
    literal,
    null,
    or_,
    select,
    true,
    union_all,
)
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql.elements import BindParameter

from db.base import utcnow
from db.enums import DataPointStatus
from db.errors import InvalidInput, NotFound
from db.models import (
    Collaborative,
    DataPoint,
    DataPointTombstone,
    MeasureDataReceipt,
    PeriodLock,
    Team,
)
from db.models import Measure as MeasureModel
from db.queries.audit import Actor, record_event, snapshot
from db.queries.collaboratives import get_collaborative_by_code
from db.queries.paging import Keyset, Page
from db.queries.status import shown_status


class ReceiptStatus(enum.StrEnum):
    """Outcome of a submission or deletion."""

    COMPLETED = "COMPLETED"
    """Every row was accepted."""
    PARTIAL = "PARTIAL"
    """``atomic: false``: the valid rows were written, the others are listed as conflicts."""
    REJECTED = "REJECTED"
    """Nothing was written: a row was rejected in an atomic batch, or every row was."""
    DRY_RUN = "DRY_RUN"
    """Checked only (``dryRun: true``); the counts say what the call would have done."""


class Operation(enum.StrEnum):
    """What a receipt's call did."""

    SUBMIT = "SUBMIT"
    DELETE = "DELETE"


@dataclass(frozen=True)
class RowConflict:
    """Why one input row was rejected: its position, a code of API.md, the input field."""

    index: int
    code: str
    field: str
    message: str

    def as_json(self) -> dict[str, Any]:
        """The stored form (``measure_data_receipts.conflicts``)."""
        return {
            "index": self.index,
            "code": self.code,
            "field": self.field,
            "message": self.message,
        }


@dataclass(frozen=True)
class Receipt:
    """What one call did (or, for a dry run, would have done). ``replayed`` marks the stored
    receipt of an earlier call returned again for the same idempotency key."""

    id: uuid.UUID
    operation: Operation
    status: ReceiptStatus
    source: str
    client_id: str
    idempotency_key: str | None
    atomic: bool
    row_count: int
    created: int
    updated: int
    unchanged: int
    deleted: int
    rejected: int
    conflicts: tuple[RowConflict, ...]
    created_at: datetime
    replayed: bool = False

    @classmethod
    def from_row(cls, row: MeasureDataReceipt, *, replayed: bool = False) -> Receipt:
        return cls(
            id=row.id,
            operation=Operation(row.operation),
            status=ReceiptStatus(row.status),
            source=row.source,
            client_id=row.client_id,
            idempotency_key=row.idempotency_key,
            atomic=row.atomic,
            row_count=row.row_count,
            created=row.created,
            updated=row.updated,
            unchanged=row.unchanged,
            deleted=row.deleted,
            rejected=row.rejected,
            conflicts=tuple(RowConflict(**item) for item in row.conflicts),
            created_at=row.created_at,
            replayed=replayed,
        )


async def get_receipt(
    session: AsyncSession,
    sponsor_id: uuid.UUID,
    receipt_id: uuid.UUID,
    *,
    client_id: str | None = None,
) -> Receipt | None:
    """A sponsor's receipt; with ``client_id``, only if that client made it (EHR clients)."""
    query = select(MeasureDataReceipt).where(
        MeasureDataReceipt.sponsor_id == sponsor_id, MeasureDataReceipt.id == receipt_id
    )
    if client_id is not None:
        query = query.where(MeasureDataReceipt.client_id == client_id)
    row = await session.scalar(query)
    return Receipt.from_row(row) if row is not None else None


# --- delta export ----------------------------------------------------------------------------


@dataclass(frozen=True)
class DataPointFilter:
    """Filters of the delta export; None means "any". ``team_ids`` restricts a team-bound client
    to its teams. ``updated_since`` is inclusive."""

    collaborative_code: str | None = None
    measure_code: str | None = None
    team_code: str | None = None
    from_period: str | None = None
    to_period: str | None = None
    updated_since: datetime | None = None
    team_ids: frozenset[uuid.UUID] | None = None
    ids: frozenset[uuid.UUID] | None = None


@dataclass(frozen=True)
class ExportedPoint:
    """A point of the delta export: a live point, or the tombstone of a deleted one (``deleted``,
    values null, ``status`` None)."""

    id: uuid.UUID
    team_id: uuid.UUID
    team_code: str
    measure_id: uuid.UUID
    measure_code: str
    measure_version: int
    period: str
    stratum: str
    numerator: int | None
    denominator: int | None
    value: float | None
    annotation: str
    status: DataPointStatus | None
    deleted: bool
    updated_at: datetime
    updated_by: str
    receipt_id: uuid.UUID | None


UnionShape = tuple[bool, ...]
"""Which filters, cursor and cut a union has (its statement is built once per shape)."""


def union_shape(
    filter: DataPointFilter, after: Keyset | None, limit: int | None, include_deleted: bool
) -> UnionShape:
    """The shape of :func:`points_union` for these arguments."""
    return (
        filter.team_code is not None,
        filter.collaborative_code is not None,
        filter.measure_code is not None,
        filter.team_ids is not None,
        filter.from_period is not None,
        filter.to_period is not None,
        filter.updated_since is not None,
        filter.ids is not None,
        after is not None,
        limit is not None,
        include_deleted,
    )


def union_parameters(
    sponsor_id: uuid.UUID, filter: DataPointFilter, after: Keyset | None, limit: int | None
) -> dict[str, Any]:
    """The bound values of :func:`points_union` (and of statements around it: ``sponsor_id``,
    ``limit``)."""
    parameters: dict[str, Any] = {"sponsor_id": sponsor_id}
    optional = {
        "team_code": filter.team_code,
        "collaborative_code": filter.collaborative_code,
        "measure_code": filter.measure_code,
        "from_period": filter.from_period,
        "to_period": filter.to_period,
        "updated_since": filter.updated_since,
        "limit": limit,
    }
    parameters.update((name, value) for name, value in optional.items() if value is not None)
    if filter.team_ids is not None:
        parameters["team_ids"] = sorted(filter.team_ids)
    if filter.ids is not None:
        parameters["ids"] = sorted(filter.ids)
    if after is not None:
        parameters["after_value"] = after.value
        parameters["after_id"] = after.id
    return parameters


def _team_conditions(shape: UnionShape, team_column: Any, measure_column: Any) -> list[Any]:
    """WHERE conditions on a branch's team/measure columns for the filter's codes."""
    has_team, has_collaborative, has_measure, has_team_ids = shape[:4]
    sponsor_id: BindParameter[uuid.UUID] = bindparam("sponsor_id")
    conditions: list[Any] = []
    if has_team:
        conditions.append(
            team_column.in_(
                select(Team.id).where(
                    Team.sponsor_id == sponsor_id, Team.code == bindparam("team_code")
                )
            )
        )
    if has_collaborative:
        conditions.append(
            team_column.in_(
                select(Team.id).where(
                    Team.sponsor_id == sponsor_id,
                    Team.collaborative_id.in_(
                        select(Collaborative.id).where(
                            Collaborative.sponsor_id == sponsor_id,
                            Collaborative.code == bindparam("collaborative_code"),
                        )
                    ),
                )
            )
        )
    if has_measure:
        conditions.append(
            measure_column.in_(
                select(MeasureModel.id).where(
                    MeasureModel.sponsor_id == sponsor_id,
                    MeasureModel.code == bindparam("measure_code"),
                )
            )
        )
    if has_team_ids:
        conditions.append(team_column.in_(bindparam("team_ids", expanding=True)))
    return conditions


def _branch_conditions(
    shape: UnionShape, table: type[DataPoint] | type[DataPointTombstone], updated: Any
) -> list[Any]:
    has_from, has_to, has_since, has_ids, has_after = shape[4:9]
    conditions: list[Any] = [table.sponsor_id == bindparam("sponsor_id")]
    conditions += _team_conditions(shape, table.team_id, table.measure_id)
    if has_from:
        conditions.append(table.period >= bindparam("from_period"))
    if has_to:
        conditions.append(table.period <= bindparam("to_period"))
    if has_since:
        conditions.append(updated >= bindparam("updated_since"))
    if has_ids:
        conditions.append(table.id.in_(bindparam("ids", expanding=True)))
    if has_after:
        # `updated >= v` first so the planner range-scans the (sponsor_id, updated) index.
        after_value: BindParameter[Any] = bindparam("after_value")
        conditions.append(updated >= after_value)
        conditions.append(or_(updated > after_value, table.id > bindparam("after_id")))
    return conditions


_UNIONS: dict[UnionShape, Any] = {}
"""Unions built once per shape: building one costs SQLAlchemy more CPU than PostgreSQL needs
to answer a page (SQLAlchemy then finds the compiled forms of statements around it in the
engine's cache)."""


def points_union(shape: UnionShape) -> Any:
    """Live points and (with ``include_deleted`` in the shape) tombstones as one selectable
    with the same columns, in this order: id, team_id, measure_id, measure_version, period,
    stratum, numerator, denominator, value, annotation, status, deleted, source, updated_at,
    updated_by, receipt_id; executed with :func:`union_parameters`. The delta export (here)
    and the bulk/FHIR export (db/queries/exchange.py) both read it.

    With a ``limit`` each branch is cut to its first ``limit`` rows in (updated, id) order
    before the union, so a page reads at most 2 x limit rows through the (sponsor_id,
    updated_at) indexes instead of sorting the sponsor's whole history for every page.
    """
    found = _UNIONS.get(shape)
    if found is None:
        found = _UNIONS[shape] = _build_union(shape)
    return found


def _build_union(shape: UnionShape) -> Any:
    limited, include_deleted = shape[9], shape[10]
    live = select(
        DataPoint.id.label("id"),
        DataPoint.team_id.label("team_id"),
        DataPoint.measure_id.label("measure_id"),
        DataPoint.measure_version.label("measure_version"),
        DataPoint.period.label("period"),
        DataPoint.stratum.label("stratum"),
        DataPoint.numerator.label("numerator"),
        DataPoint.denominator.label("denominator"),
        DataPoint.value.label("value"),
        DataPoint.annotation.label("annotation"),
        cast(DataPoint.status, String(32)).label("status"),
        false().label("deleted"),
        DataPoint.source.label("source"),
        DataPoint.updated_at.label("updated_at"),
        DataPoint.updated_by.label("updated_by"),
        DataPoint.receipt_id.label("receipt_id"),
    ).where(*_branch_conditions(shape, DataPoint, DataPoint.updated_at))
    # Labelled like the live branch: as a subquery (``limit``) unlabelled NULLs would collide.
    tombstones = select(
        DataPointTombstone.id.label("id"),
        DataPointTombstone.team_id.label("team_id"),
        DataPointTombstone.measure_id.label("measure_id"),
        DataPointTombstone.measure_version.label("measure_version"),
        DataPointTombstone.period.label("period"),
        DataPointTombstone.stratum.label("stratum"),
        cast(null(), BigInteger).label("numerator"),
        cast(null(), BigInteger).label("denominator"),
        cast(null(), Float).label("value"),
        literal("", Text).label("annotation"),
        cast(null(), String(32)).label("status"),
        true().label("deleted"),
        literal("", String(32)).label("source"),
        DataPointTombstone.deleted_at.label("updated_at"),
        DataPointTombstone.deleted_by.label("updated_by"),
        DataPointTombstone.receipt_id.label("receipt_id"),
    ).where(*_branch_conditions(shape, DataPointTombstone, DataPointTombstone.deleted_at))
    limit = bindparam("limit", type_=Integer)
    if not include_deleted:
        if limited:
            live = live.order_by(DataPoint.updated_at, DataPoint.id).limit(limit)
        return live.subquery("points")
    if limited:
        # Each branch as a subquery: SQLite allows no ORDER BY/LIMIT on a compound's members.
        live_cut = live.order_by(DataPoint.updated_at, DataPoint.id).limit(limit).subquery("live")
        dead_cut = (
            tombstones.order_by(DataPointTombstone.deleted_at, DataPointTombstone.id)
            .limit(limit)
            .subquery("dead")
        )
        return union_all(select(live_cut), select(dead_cut)).subquery("points")
    return union_all(live, tombstones).subquery("points")


_PAGES: dict[tuple[str, UnionShape], Select[Any]] = {}
"""The delta export's count, page and by-id statements, built once per shape."""


def _page_statement(kind: str, shape: UnionShape) -> Select[Any]:
    found = _PAGES.get((kind, shape))
    if found is None:
        points = points_union(shape)
        if kind == "count":
            found = select(func.count()).select_from(points)
        elif kind == "page":
            found = (
                _with_codes(points)
                .order_by(points.c.updated_at, points.c.id)
                .limit(bindparam("limit", type_=Integer))
            )
        else:
            found = _with_codes(points)
        _PAGES[(kind, shape)] = found
    return found


async def list_data_points(
    session: AsyncSession,
    sponsor_id: uuid.UUID,
    *,
    filter: DataPointFilter,
    first: int,
    after: Keyset | None = None,
    count: bool = True,
) -> Page[ExportedPoint]:
    """One page of the delta export, oldest change first: ordered by (updated_at, id), so a
    partner can resume from its last cursor and never skip or repeat a row.

    Two statements: the total (cursor ignored, as :func:`db.queries.paging.keyset_page`) and the
    page, each a UNION ALL of live points and tombstones filtered inside each branch. The total
    scans the sponsor's whole history, so ``count=False`` (the caller did not ask for
    ``totalCount``) skips it and reports 0; the page reads only ``first + 1`` rows per branch.
    """
    connection = await session.connection()
    total = 0
    if count:
        counted = _page_statement("count", union_shape(filter, None, None, True))
        parameters = union_parameters(sponsor_id, filter, None, None)
        total = (await connection.execute(counted, parameters)).scalar() or 0
    page = _page_statement("page", union_shape(filter, after, first + 1, True))
    parameters = union_parameters(sponsor_id, filter, after, first + 1)
    rows = (await connection.execute(page, parameters)).all()
    has_next = len(rows) > first
    exported = [_exported(row) for row in rows[:first]]
    return Page(
        rows=exported,
        keysets=[Keyset(value=point.updated_at, id=point.id) for point in exported],
        has_next=has_next,
        total=int(total or 0),
    )


async def data_points_by_ids(
    session: AsyncSession, sponsor_id: uuid.UUID, ids: Sequence[uuid.UUID]
) -> list[ExportedPoint | None]:
    """Points (live or tombstones) of one sponsor in the order of ``ids`` (for ``node(id:)``)."""
    filter = DataPointFilter(ids=frozenset(ids))
    query = _page_statement("ids", union_shape(filter, None, None, True))
    parameters = union_parameters(sponsor_id, filter, None, None)
    rows = (await (await session.connection()).execute(query, parameters)).all()
    found = {point.id: point for point in map(_exported, rows)}
    return [found.get(i) for i in ids]


def _with_codes(points: Any) -> Select[Any]:
    """The points with their team and measure codes and their collaborative's lock."""
    sponsor_id: BindParameter[uuid.UUID] = bindparam("sponsor_id")
    return (
        select(points, Team.code, MeasureModel.code, PeriodLock.through_period)
        .join(Team, and_(Team.sponsor_id == sponsor_id, Team.id == points.c.team_id))
        .join(
            MeasureModel,
            and_(MeasureModel.sponsor_id == sponsor_id, MeasureModel.id == points.c.measure_id),
        )
        .outerjoin(
            PeriodLock,
            and_(
                PeriodLock.sponsor_id == sponsor_id,
                PeriodLock.collaborative_id == Team.collaborative_id,
            ),
        )
    )


def _exported(row: Any) -> ExportedPoint:
    (
        point_id,
        team_id,
        measure_id,
        measure_version,
        period,
        stratum,
        numerator,
        denominator,
        value,
        annotation,
        status,
        deleted,
        _source,
        updated_at,
        updated_by,
        receipt_id,
        team_code,
        measure_code,
        locked_through,
    ) = row
    shown = None if deleted else shown_status(status, period, locked_through)
    return ExportedPoint(
        id=point_id,
        team_id=team_id,
        team_code=team_code,
        measure_id=measure_id,
        measure_code=measure_code,
        measure_version=measure_version,
        period=period,
        stratum=stratum,
        numerator=numerator,
        denominator=denominator,
        value=value,
        annotation=annotation or "",
        status=shown,
        deleted=bool(deleted),
        updated_at=updated_at,
        updated_by=updated_by,
        receipt_id=receipt_id,
    )


# --- period locks ------------------------------------------------------------------------------


@dataclass(frozen=True)
class LockOutcome:
    """A collaborative's lock after a lock or unlock call (``lock`` None: nothing is locked)."""

    collaborative: Collaborative
    lock: PeriodLock | None
    changed: bool


async def _collaborative(session: AsyncSession, actor: Actor, code: str) -> Collaborative:
    collaborative = await get_collaborative_by_code(session, actor.sponsor_id, code)
    if collaborative is None:
        raise NotFound(f"no collaborative {code!r}", field="collaborative")
    return collaborative


async def get_period_lock(
    session: AsyncSession, sponsor_id: uuid.UUID, collaborative_id: uuid.UUID
) -> PeriodLock | None:
    """A collaborative's lock, if it has one."""
    return await session.scalar(
        select(PeriodLock).where(
            PeriodLock.sponsor_id == sponsor_id, PeriodLock.collaborative_id == collaborative_id
        )
    )


async def lock_periods(
    session: AsyncSession, actor: Actor, *, collaborative_code: str, through: str
) -> LockOutcome:
    """Lock every period of a collaborative up to and including ``through``; audited.

    A lock only moves forward here: locking through an earlier period than the current lock
    changes nothing (``changed`` False) — :func:`unlock_periods` moves it back.
    """
    collaborative = await _collaborative(session, actor, collaborative_code)
    lock = await get_period_lock(session, actor.sponsor_id, collaborative.id)
    if lock is not None and lock.through_period >= through:
        return LockOutcome(collaborative=collaborative, lock=lock, changed=False)
    before = snapshot(lock) if lock is not None else None
    if lock is None:
        lock = PeriodLock(
            sponsor_id=actor.sponsor_id,
            id=uuid.uuid4(),
            collaborative_id=collaborative.id,
            through_period=through,
            locked_by=actor.client_id,
            locked_at=utcnow(),
        )
        session.add(lock)
    else:
        lock.through_period = through
        lock.locked_by = actor.client_id
        lock.locked_at = utcnow()
    await session.flush()
    await record_event(
        session,
        actor,
        action="periods.lock",
        entity_type="PeriodLock",
        entity_id=lock.id,
        before=before,
        after=snapshot(lock),
    )
    return LockOutcome(collaborative=collaborative, lock=lock, changed=True)


async def unlock_periods(
    session: AsyncSession, actor: Actor, *, collaborative_code: str, through: str | None = None
) -> LockOutcome:
    """Unlock a collaborative's periods; audited.

    Without ``through`` every period opens. With it, the lock moves back so that the periods up
    to and including ``through`` stay locked and the later ones open (InvalidInput when that
    would lock more than now is locked).
    """
    collaborative = await _collaborative(session, actor, collaborative_code)
    lock = await get_period_lock(session, actor.sponsor_id, collaborative.id)
    if lock is None:
        return LockOutcome(collaborative=collaborative, lock=None, changed=False)
    if through is not None and through > lock.through_period:
        raise InvalidInput(
            f"periods are locked through {lock.through_period} only; lockPeriods extends a lock",
            field="through",
        )
    if through == lock.through_period:
        return LockOutcome(collaborative=collaborative, lock=lock, changed=False)
    before = snapshot(lock)
    result: PeriodLock | None
    if through is None:
        await session.delete(lock)
        result = None
    else:
        lock.through_period = through
        lock.locked_by = actor.client_id
        lock.locked_at = utcnow()
        result = lock
    await session.flush()
    await record_event(
        session,
        actor,
        action="periods.unlock",
        entity_type="PeriodLock",
        entity_id=lock.id,
        before=before,
        after=snapshot(result) if result is not None else None,
    )
    return LockOutcome(collaborative=collaborative, lock=result, changed=True)
