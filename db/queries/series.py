"""Raw measure series of teams: each team's data points over time, per measure, all patients.

A series is read for many teams at once (a dashboard shows a whole collaborative), so the loader
function takes every key of a batch and answers them with one statement per distinct
(from, to) window and kind of key — never one per team or per measure. Only the ``''`` stratum
(all patients) is read.

A point's ``value`` is the stored value when there is one (MEAN and COUNT measures); otherwise
numerator / denominator x the multiplier of the definition version it was reported under
(PROPORTION and RATE measures), or None when the denominator is missing or zero.

Dashboards read series without the points' provenance (``SeriesKey.provenance`` False): fewer
columns, and on PostgreSQL one row per (team, measure) with the points as ``array_agg`` columns
(the value then computed in SQL in double precision, the same arithmetic as :func:`_value`).
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import cached_property
from typing import Any, NamedTuple

from sqlalchemy import (
    ColumnElement,
    Float,
    and_,
    case,
    cast,
    func,
    literal,
    select,
    type_coerce,
)
from sqlalchemy.dialects.postgresql import aggregate_order_by
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession
from sqlalchemy.types import NullType

from db.enums import DataPointStatus
from db.models import (
    CollaborativeMeasure,
    DataPoint,
    Measure,
    MeasureVersion,
    PeriodLock,
    Team,
)
from db.queries.status import shown_status

ALL_PATIENTS = ""
"""The stratum of "all patients" (``data_points.stratum`` is never NULL)."""


@dataclass(frozen=True)
class SeriesKey:
    """What a series read asks for; a DataLoader key.

    ``measure_code`` None means every measure in the measure set of the team's collaborative.
    ``from_period``/``to_period`` bound the periods (inclusive); ``last`` keeps the last N points.
    ``provenance`` False reads only period, counts and value (a dashboard's columns): the
    points then carry the defaults of the provenance fields (annotation, version, status, last
    write), which the caller must not show.
    """

    team_id: uuid.UUID
    measure_code: str | None = None
    from_period: str | None = None
    to_period: str | None = None
    last: int | None = None
    provenance: bool = True


class SeriesPoint(NamedTuple):
    """One period of a series, with its provenance: the definition version it was reported
    under, its review status (LOCKED while its period is locked for the team's collaborative),
    and the last write (when, which client, which receipt — None for loaded data).

    A named tuple (immutable, and several times cheaper to build than a frozen dataclass: a
    dashboard builds tens of thousands)."""

    period: str
    numerator: int | None
    denominator: int | None
    value: float | None
    annotation: str
    measure_version: int = 1
    status: DataPointStatus = DataPointStatus.SUBMITTED
    updated_at: datetime | None = None
    updated_by: str = ""
    receipt_id: uuid.UUID | None = None


class PointColumns(NamedTuple):
    """A series' points as parallel lists, oldest first: entry i of each is one period."""

    periods: list[str]
    numerators: list[int | None]
    denominators: list[int | None]
    values: list[float | None]


@dataclass(frozen=True, eq=False)
class Series:
    """A team's points of one measure, oldest first: read as point tuples (with provenance, or
    on SQLite) or as parallel columns (a dashboard on PostgreSQL, ``array_agg`` decoded by
    asyncpg); either form is derived from the other only when asked for."""

    team_id: uuid.UUID
    measure_id: uuid.UUID
    measure_code: str
    read_points: tuple[SeriesPoint, ...] | None = None
    read_columns: PointColumns | None = None

    @cached_property
    def points(self) -> tuple[SeriesPoint, ...]:
        """The points as tuples (without provenance when read as columns)."""
        if self.read_points is not None:
            return self.read_points
        columns = self.read_columns
        assert columns is not None, "a series is read as points or as columns"
        return tuple(
            [  # a list first: a generator costs a resumption per point
                SeriesPoint(period, numerator, denominator, value, "")
                for period, numerator, denominator, value in zip(*columns, strict=True)
            ]
        )

    @cached_property
    def columns(self) -> PointColumns:
        """The points as parallel columns."""
        if self.read_columns is not None:
            return self.read_columns
        points = self.points
        return PointColumns(
            [point.period for point in points],
            [point.numerator for point in points],
            [point.denominator for point in points],
            [point.value for point in points],
        )


def _value(
    value: float | None, numerator: int | None, denominator: int | None, multiplier: float | None
) -> float | None:
    if value is not None:
        return value
    if numerator is None or not denominator:
        return None
    return numerator / denominator * (multiplier if multiplier is not None else 1.0)


@dataclass
class _Slot:
    """A (team, measure) pair found by a statement, with its points (or, read by
    :func:`_read_columns`, their columns) and set position."""

    measure_code: str
    position: int | None
    points: list[SeriesPoint]
    columns: PointColumns | None = None


async def _read_slots(
    session: AsyncSession,
    sponsor_id: uuid.UUID,
    *,
    team_ids: set[uuid.UUID],
    measure_codes: set[str] | None,
    from_period: str | None,
    to_period: str | None,
    last: int | None,
    provenance: bool = True,
) -> dict[tuple[uuid.UUID, uuid.UUID], _Slot]:
    """One statement: the (team, measure) pairs asked for, each with its points in the window.

    With ``measure_codes`` None the pairs are each team's collaborative measure set (inner join
    on ``collaborative_measures``); otherwise the named measures of the sponsor. Data points are
    left-joined, so a measure without data still yields its (empty) series. ``last`` keeps the
    newest points per pair with ``ROW_NUMBER()``. Without ``provenance`` only the columns of
    period, counts and value are read (less for PostgreSQL to send and for asyncpg to decode).
    """
    point_on: list[ColumnElement[bool]] = [
        DataPoint.sponsor_id == Team.sponsor_id,
        DataPoint.team_id == Team.id,
        DataPoint.measure_id == Measure.id,
        DataPoint.stratum == ALL_PATIENTS,
    ]
    if from_period is not None:
        point_on.append(DataPoint.period >= from_period)
    if to_period is not None:
        point_on.append(DataPoint.period <= to_period)
    row_number = (
        func.row_number()
        .over(partition_by=(Team.id, Measure.id), order_by=DataPoint.period.desc())
        .label("row_number")
    )
    columns: list[ColumnElement[Any]] = [
        Team.id.label("team_id"),
        Measure.id.label("measure_id"),
        Measure.code.label("measure_code"),
        CollaborativeMeasure.position.label("position"),
        DataPoint.period.label("period"),
        DataPoint.numerator.label("numerator"),
        DataPoint.denominator.label("denominator"),
        DataPoint.value.label("value"),
        MeasureVersion.multiplier.label("multiplier"),
    ]
    if provenance:
        columns += [
            DataPoint.annotation.label("annotation"),
            DataPoint.measure_version.label("measure_version"),
            DataPoint.status.label("status"),
            DataPoint.updated_at.label("updated_at"),
            DataPoint.updated_by.label("updated_by"),
            DataPoint.receipt_id.label("receipt_id"),
            PeriodLock.through_period.label("locked_through"),
        ]
    query = select(
        *columns,
        row_number,
    ).select_from(Team)
    if measure_codes is None:
        query = query.join(
            CollaborativeMeasure,
            and_(
                CollaborativeMeasure.sponsor_id == Team.sponsor_id,
                CollaborativeMeasure.collaborative_id == Team.collaborative_id,
            ),
        ).join(
            Measure,
            and_(
                Measure.sponsor_id == CollaborativeMeasure.sponsor_id,
                Measure.id == CollaborativeMeasure.measure_id,
            ),
        )
    else:
        in_set = and_(
            CollaborativeMeasure.sponsor_id == Team.sponsor_id,
            CollaborativeMeasure.collaborative_id == Team.collaborative_id,
            CollaborativeMeasure.measure_id == Measure.id,
        )
        query = query.join(
            Measure,
            and_(Measure.sponsor_id == Team.sponsor_id, Measure.code.in_(measure_codes)),
        ).outerjoin(CollaborativeMeasure, in_set)
    query = (
        query.outerjoin(DataPoint, and_(*point_on))
        .outerjoin(
            MeasureVersion,
            and_(
                MeasureVersion.sponsor_id == DataPoint.sponsor_id,
                MeasureVersion.measure_id == DataPoint.measure_id,
                MeasureVersion.version == DataPoint.measure_version,
            ),
        )
        .where(Team.sponsor_id == sponsor_id, Team.id.in_(team_ids))
    )
    if provenance:
        query = query.outerjoin(
            PeriodLock,
            and_(
                PeriodLock.sponsor_id == Team.sponsor_id,
                PeriodLock.collaborative_id == Team.collaborative_id,
            ),
        )
    numbered = query.subquery()
    outer = select(numbered)
    if last is not None:
        outer = outer.where(numbered.c.row_number <= last)
    outer = outer.order_by(numbered.c.team_id, numbered.c.measure_id, numbered.c.period)
    slots: dict[tuple[uuid.UUID, uuid.UUID], _Slot] = {}
    # Core execution on the session's connection (no ORM result processing) and rows unpacked
    # by position (the select's column order): a dashboard reads tens of thousands of rows.
    connection = await session.connection()
    if not provenance and connection.dialect.name == "postgresql":
        return await _read_columns(connection, numbered, last)
    result = await connection.execute(outer)
    if not provenance:
        for (
            team_id,
            measure_id,
            measure_code,
            position,
            period,
            numerator,
            denominator,
            value,
            multiplier,
            _row_number,
        ) in result:
            pair = (team_id, measure_id)
            slot = slots.get(pair)
            if slot is None:
                slot = slots[pair] = _Slot(measure_code, position, [])
            if period is not None:
                slot.points.append(
                    SeriesPoint(
                        period,
                        numerator,
                        denominator,
                        _value(value, numerator, denominator, multiplier),
                        "",
                    )
                )
        return slots
    for row in result:
        (
            team_id,
            measure_id,
            measure_code,
            position,
            period,
            numerator,
            denominator,
            value,
            multiplier,
            annotation,
            measure_version,
            status,
            updated_at,
            updated_by,
            receipt_id,
            locked_through,
            _row_number,
        ) = row
        pair = (team_id, measure_id)
        slot = slots.get(pair)
        if slot is None:
            slot = slots[pair] = _Slot(measure_code, position, [])
        if period is None:
            continue
        slot.points.append(
            SeriesPoint(
                period=period,
                numerator=numerator,
                denominator=denominator,
                value=_value(value, numerator, denominator, multiplier),
                annotation=annotation or "",
                measure_version=measure_version,
                status=shown_status(status, period, locked_through),
                updated_at=updated_at,
                updated_by=updated_by or "",
                receipt_id=receipt_id,
            )
        )
    return slots


async def _read_columns(
    connection: AsyncConnection, numbered: Any, last: int | None
) -> dict[tuple[uuid.UUID, uuid.UUID], _Slot]:
    """PostgreSQL, without provenance: one row per (team, measure) pair with its points as
    ``array_agg`` columns in period order (decoded by asyncpg in C: a dashboard's 12,600 points
    arrive as 1,050 rows), the value computed in double precision exactly as :func:`_value`
    does (int / int as float, times the multiplier or 1.0)."""
    c = numbered.c
    window = select(numbered)
    if last is not None:
        window = window.where(c.row_number <= last)
    points = window.subquery("points")
    p = points.c
    value = case(
        (p.value.is_not(None), p.value),
        (
            and_(p.numerator.is_not(None), p.denominator != 0),
            cast(p.numerator, Float)
            / cast(p.denominator, Float)
            * func.coalesce(p.multiplier, literal(1.0, Float)),
        ),
        else_=None,
    )
    present = p.period.is_not(None)

    def column(expression: Any) -> Any:
        # Typed as nothing: asyncpg decodes the array in C into a list, which SQLAlchemy would
        # otherwise walk item by item (a dashboard: 72,000 items, ~8 % of its CPU).
        return type_coerce(
            func.array_agg(aggregate_order_by(expression, p.period)).filter(present), NullType()
        )

    query = (
        select(
            p.team_id,
            p.measure_id,
            p.measure_code,
            p.position,
            column(p.period),
            column(p.numerator),
            column(p.denominator),
            column(value),
        )
        .group_by(p.team_id, p.measure_id, p.measure_code, p.position)
        .order_by(p.team_id, p.measure_id)
    )
    slots: dict[tuple[uuid.UUID, uuid.UUID], _Slot] = {}
    for (
        team_id,
        measure_id,
        measure_code,
        position,
        periods,
        numerators,
        denominators,
        values,
    ) in await connection.execute(query):
        slots[(team_id, measure_id)] = _Slot(
            measure_code,
            position,
            [],
            PointColumns(periods or [], numerators or [], denominators or [], values or []),
        )
    return slots


def _cut_columns(columns: PointColumns, key: SeriesKey) -> PointColumns:
    """:func:`_cut` of a series read as columns (as is when the statement read just this
    window: a dashboard's case)."""
    periods = columns.periods
    kept = [
        index
        for index, period in enumerate(periods)
        if (key.from_period is None or period >= key.from_period)
        and (key.to_period is None or period <= key.to_period)
    ]
    if key.last is not None:
        kept = kept[-key.last :] if key.last > 0 else []
    if len(kept) == len(periods):
        return columns
    return PointColumns(
        [periods[index] for index in kept],
        [columns.numerators[index] for index in kept],
        [columns.denominators[index] for index in kept],
        [columns.values[index] for index in kept],
    )


def _cut(points: Sequence[SeriesPoint], key: SeriesKey) -> tuple[SeriesPoint, ...]:
    """The points of ``key``'s window (a statement may have read a wider one)."""
    kept = [
        point
        for point in points
        if (key.from_period is None or point.period >= key.from_period)
        and (key.to_period is None or point.period <= key.to_period)
    ]
    if key.last is not None:
        kept = kept[-key.last :] if key.last > 0 else []
    return tuple(kept)


async def series_by_keys(
    session: AsyncSession, sponsor_id: uuid.UUID, keys: Sequence[SeriesKey]
) -> list[list[Series]]:
    """For each key, in key order: the series it asks for (a DataLoader batch function).

    A key naming a measure gets at most one series (none when the sponsor has no such measure);
    a key without one gets a series for each measure of its team's collaborative measure set, in
    the set's order (position, then measure id, as ``Collaborative.measures`` lists it). Teams of
    other sponsors get nothing.
    """
    windows: defaultdict[tuple[str | None, str | None, bool, bool], list[SeriesKey]] = defaultdict(
        list
    )
    for key in keys:
        window = (key.from_period, key.to_period, key.measure_code is None, key.provenance)
        windows[window].append(key)
    results: dict[SeriesKey, list[Series]] = {}
    for (from_period, to_period, whole_set, provenance), group in windows.items():
        lasts = [key.last for key in group]
        # at least 1: a pair without points still needs its (null) row to yield an empty series
        last = (
            None if any(n is None for n in lasts) else max(1, *(n for n in lasts if n is not None))
        )
        slots = await _read_slots(
            session,
            sponsor_id,
            team_ids={key.team_id for key in group},
            measure_codes=None if whole_set else {key.measure_code or "" for key in group},
            from_period=from_period,
            to_period=to_period,
            last=last,
            provenance=provenance,
        )
        by_team: defaultdict[uuid.UUID, list[tuple[uuid.UUID, _Slot]]] = defaultdict(list)
        for (team_id, measure_id), slot in slots.items():
            by_team[team_id].append((measure_id, slot))
        for key in group:
            pairs = by_team[key.team_id]
            if key.measure_code is not None:
                pairs = [pair for pair in pairs if pair[1].measure_code == key.measure_code]
            else:
                pairs = sorted(pairs, key=lambda pair: (pair[1].position or 0, pair[0]))
            results[key] = [
                Series(
                    team_id=key.team_id,
                    measure_id=measure_id,
                    measure_code=slot.measure_code,
                    read_points=None if slot.columns is not None else _cut(slot.points, key),
                    read_columns=None if slot.columns is None else _cut_columns(slot.columns, key),
                )
                for measure_id, slot in pairs
            ]
    return [results[key] for key in keys]
