"""Aggregates read through the monthly rollups (``aggregate_series`` / ``aggregate_cells``).

A collaborative's aggregate of one measure is read from its stored cells — one row per period,
however many teams the collaborative has — instead of from every team's data points. A series
with pending ``aggregate_changes`` (appended by triggers on every write to its inputs, see
migration 0007) is recomputed from the data points by the same statements
(:func:`~db.queries.aggregates.aggregate_parts`, :func:`~db.queries.aggregates.
cell_median_team_values`), and the caller stores the result afterwards in its own short write
transaction (:func:`store_refresh`), so reads never hold write locks; the store waits at most
:data:`STORE_LOCK_WAIT_MS` for another writer (:func:`waiting_briefly`) and otherwise leaves the
series to the next read or the maintenance pass.

Why the stored cells can be trusted:

* a refresh deletes only the change rows it saw *before* it read the data points, so a write
  committed later leaves its change row behind and the series is recomputed on the next read;
* a refresh is stored only when the series' ``generation`` is still the one read before the
  computation (an optimistic guard): of two refreshes racing, the one that read older data can
  never overwrite the newer one.

What the triggers rely on: a data point's team exists when the point is written or deleted
(data points restrict their team's deletion), and measure versions are inserted before points
name them and never deleted on their own (a new version changes no stored point's value).

Aggregates of named teams (``team_codes``) read the data points: a team subset is no stored
series.
"""

from __future__ import annotations

import contextlib
import uuid
from collections import defaultdict
from collections.abc import AsyncIterator, Collection, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import (
    CompoundSelect,
    Select,
    and_,
    bindparam,
    cast,
    delete,
    insert,
    null,
    select,
    text,
    union_all,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from db.models import AggregateCell, AggregateChange, AggregateSeries, Collaborative
from db.queries.aggregates import (
    AggregateFilter,
    PartTotals,
    aggregate_parts,
    cell_median_team_values,
    filter_parameters,
    matches_nothing,
    statement_rows,
)
from db.sessions import SQLITE_BUSY_TIMEOUT_MS

SeriesKey = tuple[uuid.UUID, uuid.UUID]
"""(collaborative id, measure id) of a series (the sponsor and stratum are the read's own)."""

CellMedians = dict[tuple[uuid.UUID, str, uuid.UUID], float]
"""Median team value per (measure, period, collaborative)."""

STORE_LOCK_WAIT_MS = 250
"""How long storing a read's refresh waits for a lock (another writer's) before giving up: the
answer is computed already, and the next read or the maintenance pass stores it."""
DELETE_CHUNK = 500
"""Change ids per DELETE (SQLite appends one change row per data point a batch writes)."""


@dataclass(frozen=True)
class SeriesRefresh:
    """One recomputed series, ready to be stored."""

    collaborative_id: uuid.UUID
    measure_id: uuid.UUID
    generation: int | None
    """The series' generation read before the computation (None: never stored)."""
    change_ids: tuple[uuid.UUID, ...]
    """The change rows the computation covers (seen before the data points were read)."""
    cells: tuple[tuple[PartTotals, float | None], ...]
    """Every period of the series with its median team value."""


@dataclass(frozen=True)
class Refresh:
    """Series a read recomputed, for :func:`store_refresh`."""

    sponsor_id: uuid.UUID
    stratum: str
    series: tuple[SeriesRefresh, ...]


@dataclass(frozen=True)
class RolledUp:
    """Per (measure, period, collaborative) totals and medians within a filter's bounds, and
    the series that had to be recomputed (None when every one was stored and current)."""

    parts: list[PartTotals]
    cell_medians: CellMedians
    refresh: Refresh | None


_Shape = tuple[bool, bool, bool, bool]
"""Which optional filters a statement applies: from, to, collaborative ids, collaborative codes."""


def _shape(filter: AggregateFilter) -> _Shape:
    return (
        filter.from_period is not None,
        filter.to_period is not None,
        filter.collaborative_ids is not None,
        filter.collaborative_codes is not None,
    )


def _scoped(query: Any, table: Any, shape: _Shape) -> Select[Any]:
    """``query`` over ``table`` (a series or change table) limited to the filter's series."""
    scoped: Select[Any] = query.where(
        table.sponsor_id == bindparam("sponsor_id"),
        table.measure_id.in_(bindparam("measure_ids", expanding=True)),
        table.stratum == bindparam("stratum"),
    )
    if shape[2]:
        scoped = scoped.where(
            table.collaborative_id.in_(bindparam("collaborative_ids", expanding=True))
        )
    if shape[3]:
        scoped = scoped.join(
            Collaborative,
            and_(
                Collaborative.sponsor_id == table.sponsor_id,
                Collaborative.id == table.collaborative_id,
            ),
        ).where(Collaborative.code.in_(bindparam("collaborative_codes", expanding=True)))
    return scoped


def _pending_statement(shape: _Shape) -> Select[Any]:
    """The change rows of the filter's series."""
    columns = select(
        AggregateChange.id, AggregateChange.collaborative_id, AggregateChange.measure_id
    )
    return _scoped(columns, AggregateChange, shape)


def _stored_statement(shape: _Shape) -> Select[Any]:
    """The filter's stored series with their cells in the filter's periods (a series without
    cells there gives one row of NULL cell columns)."""
    series, cell = AggregateSeries, AggregateCell
    joined = and_(
        cell.sponsor_id == series.sponsor_id,
        cell.collaborative_id == series.collaborative_id,
        cell.measure_id == series.measure_id,
        cell.stratum == series.stratum,
    )
    if shape[0]:
        joined = and_(joined, cell.period >= bindparam("from_period"))
    if shape[1]:
        joined = and_(joined, cell.period <= bindparam("to_period"))
    columns = select(
        series.collaborative_id,
        series.measure_id,
        series.generation,
        cell.period,
        cell.teams_reporting,
        cell.numerator,
        cell.denominator,
        cell.value_sum,
        cell.teams_with_goal,
        cell.teams_meeting_goal,
        cell.median,
    ).select_from(series)
    return _scoped(columns.outerjoin(cell, joined), series, shape)


_CELL_COLUMNS = (
    "generation",
    "period",
    "teams_reporting",
    "numerator",
    "denominator",
    "value_sum",
    "teams_with_goal",
    "teams_meeting_goal",
    "median",
)


def _read_statement(shape: _Shape) -> CompoundSelect[Any]:
    """:func:`_pending_statement` and :func:`_stored_statement` as one (one round trip, one
    snapshot): a change row carries its id in ``change_id`` and NULL cells, a stored row a
    NULL ``change_id``."""
    change_id = AggregateChange.id
    pending = _pending_statement(shape).subquery("pending")
    stored = _stored_statement(shape).subquery("stored")
    return union_all(
        select(
            pending.c.id.label("change_id"),
            pending.c.collaborative_id,
            pending.c.measure_id,
            *(cast(null(), stored.c[name].type).label(name) for name in _CELL_COLUMNS),
        ),
        select(
            cast(null(), change_id.type).label("change_id"),
            stored.c.collaborative_id,
            stored.c.measure_id,
            *(stored.c[name] for name in _CELL_COLUMNS),
        ),
    )


_STATEMENTS: dict[_Shape, CompoundSelect[Any]] = {}
"""Statements built once per filter shape; SQLAlchemy caches their compiled forms."""


def _statement(filter: AggregateFilter) -> CompoundSelect[Any]:
    shape = _shape(filter)
    found = _STATEMENTS.get(shape)
    if found is None:
        found = _STATEMENTS[shape] = _read_statement(shape)
    return found


def _within(period: str, filter: AggregateFilter) -> bool:
    return (filter.from_period is None or period >= filter.from_period) and (
        filter.to_period is None or period <= filter.to_period
    )


async def rolled_up_parts(
    session: AsyncSession,
    sponsor_id: uuid.UUID,
    measure_ids: Collection[uuid.UUID],
    *,
    filter: AggregateFilter,
) -> RolledUp | None:
    """What :func:`~db.queries.aggregates.aggregate_parts` answers for ``filter``, with each
    part's median, read from the rollups; None for a filter of named teams (read the points).

    One small statement when every series is stored and current; a series with pending changes
    costs the two per-point statements for that series.
    """
    if filter.team_codes is not None:
        return None
    if matches_nothing(measure_ids, filter):
        return RolledUp([], {}, None)
    parameters = filter_parameters(sponsor_id, measure_ids, filter)
    # Changes and cells from one snapshot: a change committed after it is left for the next
    # refresh.
    changes: defaultdict[SeriesKey, list[uuid.UUID]] = defaultdict(list)
    stored = []
    for row in await statement_rows(session, _statement(filter), parameters):
        if row.change_id is not None:
            changes[(row.collaborative_id, row.measure_id)].append(row.change_id)
        else:
            stored.append(row)
    generations: dict[SeriesKey, int] = {}
    parts: list[PartTotals] = []
    medians: CellMedians = {}
    for row in stored:
        key = (row.collaborative_id, row.measure_id)
        generations[key] = row.generation
        if key in changes or row.period is None:
            continue
        parts.append(_part(row))
        if row.median is not None:
            medians[(row.measure_id, row.period, row.collaborative_id)] = row.median
    refresh = None
    if changes:
        refreshed = await _recompute(session, sponsor_id, filter.stratum, changes, generations)
        refresh = Refresh(sponsor_id, filter.stratum, tuple(refreshed))
        for series in refreshed:
            for part, median in series.cells:
                if _within(part.period, filter):
                    parts.append(part)
                    if median is not None:
                        medians[(part.measure_id, part.period, part.collaborative_id)] = median
    parts.sort(key=lambda part: (str(part.measure_id), part.period, str(part.collaborative_id)))
    return RolledUp(parts, medians, refresh)


def _part(row: Any) -> PartTotals:
    return PartTotals(
        measure_id=row.measure_id,
        period=row.period,
        collaborative_id=row.collaborative_id,
        teams_reporting=row.teams_reporting,
        numerator=row.numerator,
        denominator=row.denominator,
        value_sum=row.value_sum,
        teams_with_goal=row.teams_with_goal,
        teams_meeting_goal=row.teams_meeting_goal,
    )


async def _recompute(
    session: AsyncSession,
    sponsor_id: uuid.UUID,
    stratum: str,
    changes: dict[SeriesKey, list[uuid.UUID]],
    generations: dict[SeriesKey, int],
) -> list[SeriesRefresh]:
    """Every period of the changed series, from the data points (two statements in all)."""
    collaborative_ids = frozenset(collaborative_id for collaborative_id, _ in changes)
    measure_ids = {measure_id for _, measure_id in changes}
    whole = AggregateFilter(collaborative_ids=collaborative_ids, stratum=stratum)
    computed = await aggregate_parts(session, sponsor_id, measure_ids, filter=whole)
    medians = await cell_median_team_values(session, sponsor_id, measure_ids, filter=whole)
    cells: defaultdict[SeriesKey, list[tuple[PartTotals, float | None]]] = defaultdict(list)
    for part in computed:
        key = (part.collaborative_id, part.measure_id)
        median = medians.get((part.measure_id, part.period, part.collaborative_id))
        cells[key].append((part, median))
    return [
        SeriesRefresh(
            collaborative_id=key[0],
            measure_id=key[1],
            generation=generations.get(key),
            change_ids=tuple(change_ids),
            cells=tuple(cells.get(key, ())),
        )
        for key, change_ids in sorted(changes.items(), key=lambda item: str(item[0]))
    ]


@contextlib.asynccontextmanager
async def waiting_briefly(
    session: AsyncSession, milliseconds: int = STORE_LOCK_WAIT_MS
) -> AsyncIterator[None]:
    """Inside a transaction: wait at most ``milliseconds`` for any lock (PostgreSQL
    ``lock_timeout`` for this transaction; SQLite's busy timeout, a setting of the connection,
    put back on the way out)."""
    connection = await session.connection()
    if session.get_bind().dialect.name != "sqlite":
        await connection.execute(text(f"SET LOCAL lock_timeout = '{int(milliseconds)}ms'"))
        yield
        return
    await connection.exec_driver_sql(f"PRAGMA busy_timeout = {int(milliseconds)}")
    try:
        yield
    finally:
        await connection.exec_driver_sql(f"PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_MS}")


async def store_refresh(session: AsyncSession, refresh: Refresh) -> int:
    """Store the recomputed series (in the caller's transaction); returns how many were stored.

    A series whose generation moved since it was read (another refresh stored it first) is
    skipped, change rows and all. Series are taken in key order, so two refreshes lock them in
    the same order.
    """
    postgres = session.get_bind().dialect.name == "postgresql"
    dialect_insert = postgresql.insert if postgres else sqlite.insert
    stored = 0
    for series in refresh.series:
        key = (
            AggregateSeries.sponsor_id == refresh.sponsor_id,
            AggregateSeries.collaborative_id == series.collaborative_id,
            AggregateSeries.measure_id == series.measure_id,
            AggregateSeries.stratum == refresh.stratum,
        )
        if series.generation is None:
            claimed = await session.execute(
                dialect_insert(AggregateSeries)
                .values(
                    sponsor_id=refresh.sponsor_id,
                    collaborative_id=series.collaborative_id,
                    measure_id=series.measure_id,
                    stratum=refresh.stratum,
                    generation=1,
                )
                .on_conflict_do_nothing()
            )
        else:
            claimed = await session.execute(
                update(AggregateSeries)
                .where(*key, AggregateSeries.generation == series.generation)
                .values(generation=series.generation + 1)
            )
        if getattr(claimed, "rowcount", 0) != 1:
            continue
        await session.execute(
            delete(AggregateCell).where(
                AggregateCell.sponsor_id == refresh.sponsor_id,
                AggregateCell.collaborative_id == series.collaborative_id,
                AggregateCell.measure_id == series.measure_id,
                AggregateCell.stratum == refresh.stratum,
            )
        )
        if series.cells:
            await session.execute(
                insert(AggregateCell),
                [_cell(refresh, part, median) for part, median in series.cells],
            )
        await _delete_changes(session, refresh.sponsor_id, series.change_ids)
        stored += 1
    return stored


def _cell(refresh: Refresh, part: PartTotals, median: float | None) -> dict[str, Any]:
    return {
        "sponsor_id": refresh.sponsor_id,
        "collaborative_id": part.collaborative_id,
        "measure_id": part.measure_id,
        "stratum": refresh.stratum,
        "period": part.period,
        "teams_reporting": part.teams_reporting,
        "numerator": part.numerator,
        "denominator": part.denominator,
        "value_sum": part.value_sum,
        "teams_with_goal": part.teams_with_goal,
        "teams_meeting_goal": part.teams_meeting_goal,
        "median": median,
    }


async def _delete_changes(
    session: AsyncSession, sponsor_id: uuid.UUID, change_ids: Sequence[uuid.UUID]
) -> None:
    for start in range(0, len(change_ids), DELETE_CHUNK):
        chunk = list(change_ids[start : start + DELETE_CHUNK])
        await session.execute(
            delete(AggregateChange).where(
                AggregateChange.sponsor_id == sponsor_id, AggregateChange.id.in_(chunk)
            )
        )


@dataclass(frozen=True)
class PendingGroup:
    """Measures of one sponsor and stratum with changed series."""

    sponsor_id: uuid.UUID
    stratum: str
    measure_ids: frozenset[uuid.UUID]


async def pending_groups(
    session: AsyncSession, *, limit: int, sponsor_id: uuid.UUID | None = None
) -> list[PendingGroup]:
    """Up to ``limit`` (sponsor, stratum, measure) with pending changes (of one sponsor when
    given), grouped per sponsor and stratum (what the maintenance refresh works through)."""
    query = select(
        AggregateChange.sponsor_id, AggregateChange.stratum, AggregateChange.measure_id
    ).distinct()
    if sponsor_id is not None:
        query = query.where(AggregateChange.sponsor_id == sponsor_id)
    rows = (await session.execute(query.limit(limit))).all()
    grouped: defaultdict[tuple[uuid.UUID, str], set[uuid.UUID]] = defaultdict(set)
    for sponsor_id, stratum, measure_id in rows:
        grouped[(sponsor_id, stratum)].add(measure_id)
    return [
        PendingGroup(sponsor_id, stratum, frozenset(ids))
        for (sponsor_id, stratum), ids in sorted(grouped.items(), key=lambda item: str(item[0]))
    ]


async def refresh_group(session: AsyncSession, group: PendingGroup) -> Refresh | None:
    """Recompute every changed series of a group's measures, in every collaborative (the same
    read as an aggregate's, so the same guarantees); the caller stores the result."""
    filter = AggregateFilter(stratum=group.stratum)
    rolled = await rolled_up_parts(session, group.sponsor_id, group.measure_ids, filter=filter)
    return None if rolled is None else rolled.refresh
