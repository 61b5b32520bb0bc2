"""Aggregates of measure data across teams, computed in the database.

Every statement here returns rows per *period* (and per collaborative or measure), never per data
point, so the work and the rows fetched into Python grow with the number of periods, not with the
number of teams: a collaborative of 1,200 teams x 18 months answers with a few dozen rows. The one
exception is :func:`team_values`, which the scorecard uses to run each team's own run chart: it
reads one narrow row per (team, measure, period) in a single statement for a whole batch.

A *team value* is the value a team's series shows (as :mod:`db.queries.series` computes it): the
stored ``value`` when there is one (MEAN and COUNT measures), else numerator / denominator x the
multiplier of the definition version the point was reported under, computed in double precision
(``CAST(... AS FLOAT)``) so both backends and Python agree bit for bit.

Per (measure, period, collaborative) :func:`aggregate_parts` returns: teams reporting (teams with a
value), Σ numerators and Σ denominators over the teams that reported both with a positive
denominator, Σ team values (for the mean of team rates), and how many teams reach their
collaborative's goal line (``collaborative_measures.goal``, in the displayed unit) in the measure's
improvement direction. The median of team values per (measure, period) comes from
:func:`median_team_values`: ``percentile_cont(0.5) WITHIN GROUP (ORDER BY value)`` on PostgreSQL,
and on SQLite (3.40 has neither ``percentile_cont`` nor ``median``) the equivalent window query:
``row_number()`` and ``count(*)`` over the ordered values of each period, keeping the middle one
or two rows and interpolating as PostgreSQL does (``lo + (hi - lo) x 0.5``), so both backends give
the same answer.

Only the caller's sponsor is read (``sponsor_id`` first, as everywhere); sharing across sponsors
plugs in above this module.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass, field
from typing import Any
from typing import cast as type_cast

from sqlalchemy import (
    BigInteger,
    ColumnElement,
    CompoundSelect,
    Float,
    Select,
    and_,
    bindparam,
    case,
    cast,
    func,
    literal,
    select,
)
from sqlalchemy.ext.asyncio import AsyncSession

from db.enums import ImprovementDirection
from db.models import (
    Collaborative,
    CollaborativeMeasure,
    DataPoint,
    Measure,
    MeasureVersion,
    Team,
)
from db.queries.measures import named_set_entries

ALL_PATIENTS = ""
"""The stratum of "all patients"."""


@dataclass(frozen=True)
class AggregateFilter:
    """Which data points an aggregate covers; every given filter must match.

    ``collaborative_codes`` / ``collaborative_ids`` / ``team_codes`` None means "any"; an empty
    collection matches nothing. Periods are inclusive ``YYYY-MM`` bounds.
    """

    collaborative_codes: frozenset[str] | None = None
    collaborative_ids: frozenset[uuid.UUID] | None = None
    team_codes: frozenset[str] | None = None
    from_period: str | None = None
    to_period: str | None = None
    stratum: str = ALL_PATIENTS


@dataclass(frozen=True)
class PartTotals:
    """The teams of one collaborative in one period, for one measure, summed in SQL."""

    measure_id: uuid.UUID
    period: str
    collaborative_id: uuid.UUID
    teams_reporting: int
    numerator: int | None
    denominator: int | None
    value_sum: float | None
    teams_with_goal: int
    teams_meeting_goal: int


@dataclass(frozen=True)
class TeamValue:
    """One team's value of one measure in one period (a narrow series row)."""

    collaborative_id: uuid.UUID
    measure_id: uuid.UUID
    team_id: uuid.UUID
    period: str
    value: float | None


def _team_value() -> ColumnElement[Any]:
    """The value a team's series shows for a point (see the module docstring)."""
    ratio = (
        cast(DataPoint.numerator, Float)
        / cast(DataPoint.denominator, Float)
        * func.coalesce(MeasureVersion.multiplier, 1.0)
    )
    return case(
        (DataPoint.value.is_not(None), DataPoint.value),
        (and_(DataPoint.numerator.is_not(None), DataPoint.denominator > 0), ratio),
        else_=None,
    )


_Shape = tuple[bool, bool, bool, bool, bool]
"""Which optional filters a statement applies: from, to, collaborative ids, team codes and
collaborative codes (each a bound parameter of the statement built for that shape)."""


def _shape(filter: AggregateFilter) -> _Shape:
    return (
        filter.from_period is not None,
        filter.to_period is not None,
        filter.collaborative_ids is not None,
        filter.team_codes is not None,
        filter.collaborative_codes is not None,
    )


def filter_parameters(
    sponsor_id: uuid.UUID, measure_ids: Collection[uuid.UUID], filter: AggregateFilter
) -> dict[str, Any]:
    """The bound values of a statement built by :func:`_points` for ``_shape(filter)`` (the
    rollups' statements bind the same names)."""
    parameters: dict[str, Any] = {
        "sponsor_id": sponsor_id,
        "measure_ids": list(measure_ids),
        "stratum": filter.stratum,
    }
    if filter.from_period is not None:
        parameters["from_period"] = filter.from_period
    if filter.to_period is not None:
        parameters["to_period"] = filter.to_period
    if filter.collaborative_ids is not None:
        parameters["collaborative_ids"] = list(filter.collaborative_ids)
    if filter.team_codes is not None:
        parameters["team_codes"] = sorted(filter.team_codes)
    if filter.collaborative_codes is not None:
        parameters["collaborative_codes"] = sorted(filter.collaborative_codes)
    return parameters


async def statement_rows(
    session: AsyncSession, query: Select[Any] | CompoundSelect[Any], parameters: dict[str, Any]
) -> list[Any]:
    """The rows of a Core statement, run on the session's connection (no ORM layer: these
    statements select columns, never entities)."""
    connection = await session.connection()
    return list((await connection.execute(query, parameters)).all())


_STATEMENTS: dict[tuple[str, str, _Shape], Select[Any]] = {}
"""Statements built once per (kind, dialect, filter shape), executed with bound parameters:
building a statement of this size costs SQLAlchemy about as much CPU as the query costs
PostgreSQL, so each is built once per process (SQLAlchemy then finds its compiled form in the
engine's cache)."""


def _statement(
    kind: str, dialect: str, filter: AggregateFilter, build: Callable[[Any, str], Select[Any]]
) -> Select[Any]:
    key = (kind, dialect, _shape(filter))
    found = _STATEMENTS.get(key)
    if found is None:
        found = _STATEMENTS[key] = build(_points(_shape(filter)), dialect)
    return found


def _points(shape: _Shape) -> Any:
    """The filtered data points with their team value and goal verdict, as a subquery whose
    filters are bound parameters (see :func:`_parameters`).

    Columns: measure_id, period, collaborative_id, team_id, numerator, denominator (both None
    unless the team reported both with a positive denominator), value, goal, meets (1, 0 or
    NULL without a value or a goal line).
    """
    has_from, has_to, has_collaborative_ids, has_team_codes, has_collaborative_codes = shape
    value = _team_value().label("value")
    current = MeasureVersion.__table__.alias("current_definition")
    has_counts = and_(DataPoint.numerator.is_not(None), DataPoint.denominator > 0)
    query: Select[Any] = (
        select(
            DataPoint.measure_id.label("measure_id"),
            DataPoint.period.label("period"),
            Team.collaborative_id.label("collaborative_id"),
            DataPoint.team_id.label("team_id"),
            case((has_counts, DataPoint.numerator), else_=None).label("numerator"),
            case((has_counts, DataPoint.denominator), else_=None).label("denominator"),
            value,
            CollaborativeMeasure.goal.label("goal"),
            current.c.improvement_direction.label("direction"),
        )
        .select_from(DataPoint)
        .join(Team, and_(Team.sponsor_id == DataPoint.sponsor_id, Team.id == DataPoint.team_id))
        .join(
            Measure,
            and_(Measure.sponsor_id == DataPoint.sponsor_id, Measure.id == DataPoint.measure_id),
        )
        .join(
            current,
            and_(
                current.c.sponsor_id == Measure.sponsor_id,
                current.c.measure_id == Measure.id,
                current.c.version == Measure.current_version,
            ),
        )
        .outerjoin(
            MeasureVersion,
            and_(
                MeasureVersion.sponsor_id == DataPoint.sponsor_id,
                MeasureVersion.measure_id == DataPoint.measure_id,
                MeasureVersion.version == DataPoint.measure_version,
            ),
        )
        .outerjoin(
            CollaborativeMeasure,
            and_(
                CollaborativeMeasure.sponsor_id == Team.sponsor_id,
                CollaborativeMeasure.collaborative_id == Team.collaborative_id,
                CollaborativeMeasure.measure_id == DataPoint.measure_id,
            ),
        )
        .where(
            DataPoint.sponsor_id == bindparam("sponsor_id"),
            DataPoint.measure_id.in_(bindparam("measure_ids", expanding=True)),
            DataPoint.stratum == bindparam("stratum"),
        )
    )
    if has_from:
        query = query.where(DataPoint.period >= bindparam("from_period"))
    if has_to:
        query = query.where(DataPoint.period <= bindparam("to_period"))
    if has_collaborative_ids:
        query = query.where(
            Team.collaborative_id.in_(bindparam("collaborative_ids", expanding=True))
        )
    if has_team_codes:
        query = query.where(Team.code.in_(bindparam("team_codes", expanding=True)))
    if has_collaborative_codes:
        query = query.join(
            Collaborative,
            and_(
                Collaborative.sponsor_id == Team.sponsor_id,
                Collaborative.id == Team.collaborative_id,
            ),
        ).where(Collaborative.code.in_(bindparam("collaborative_codes", expanding=True)))
    return query.subquery("points")


def _meets(points: Any) -> ColumnElement[Any]:
    """1 when a team value reaches its goal line in the improvement direction, 0 when not, NULL
    without a value or a goal (the goal itself counts as reached)."""
    increase = points.c.direction == ImprovementDirection.INCREASE.value
    return case(
        (points.c.value.is_(None) | points.c.goal.is_(None), None),
        (increase & (points.c.value >= points.c.goal), 1),
        (~increase & (points.c.value <= points.c.goal), 1),
        else_=0,
    )


def matches_nothing(measure_ids: Collection[uuid.UUID], filter: AggregateFilter) -> bool:
    """True when the filter can match nothing (no statement needs to run)."""
    return (
        not measure_ids
        or filter.collaborative_codes == frozenset()
        or filter.collaborative_ids == frozenset()
        or filter.team_codes == frozenset()
    )


async def aggregate_parts(
    session: AsyncSession,
    sponsor_id: uuid.UUID,
    measure_ids: Collection[uuid.UUID],
    *,
    filter: AggregateFilter,
) -> list[PartTotals]:
    """Per (measure, period, collaborative): teams reporting, Σ counts, Σ values, goal counts.

    One statement; rows ordered by measure, period and collaborative. Periods without any data
    point are absent.
    """
    if matches_nothing(measure_ids, filter):
        return []
    dialect = session.get_bind().dialect.name
    query = _statement("parts", dialect, filter, _parts_statement)
    parameters = filter_parameters(sponsor_id, measure_ids, filter)
    return [
        PartTotals(
            measure_id=measure_id,
            period=period,
            collaborative_id=collaborative_id,
            teams_reporting=int(teams_reporting),
            numerator=None if numerator is None else int(numerator),
            denominator=None if denominator is None else int(denominator),
            value_sum=None if value_sum is None else float(value_sum),
            teams_with_goal=int(teams_with_goal),
            teams_meeting_goal=int(teams_meeting_goal),
        )
        for (
            measure_id,
            period,
            collaborative_id,
            teams_reporting,
            numerator,
            denominator,
            value_sum,
            teams_with_goal,
            teams_meeting_goal,
        ) in await statement_rows(session, query, parameters)
    ]


def _parts_statement(points: Any, dialect: str) -> Select[Any]:
    """:func:`aggregate_parts`'s statement over the ``points`` subquery."""
    meets = _meets(points)
    return (
        select(
            points.c.measure_id,
            points.c.period,
            points.c.collaborative_id,
            func.count(points.c.value).label("teams_reporting"),
            cast(func.sum(points.c.numerator), BigInteger).label("numerator"),
            cast(func.sum(points.c.denominator), BigInteger).label("denominator"),
            func.sum(points.c.value).label("value_sum"),
            func.count(meets).label("teams_with_goal"),
            func.coalesce(func.sum(meets), 0).label("teams_meeting_goal"),
        )
        .group_by(points.c.measure_id, points.c.period, points.c.collaborative_id)
        .order_by(points.c.measure_id, points.c.period, points.c.collaborative_id)
    )


async def median_team_values(
    session: AsyncSession,
    sponsor_id: uuid.UUID,
    measure_ids: Collection[uuid.UUID],
    *,
    filter: AggregateFilter,
) -> dict[tuple[uuid.UUID, str], float]:
    """The median team value per (measure, period), as ``percentile_cont(0.5)`` computes it.

    One statement: ``percentile_cont`` on PostgreSQL, a window-function query on SQLite (see the
    module docstring); one row per (measure, period) that has a value.
    """
    if matches_nothing(measure_ids, filter):
        return {}
    dialect = session.get_bind().dialect.name
    query = _statement("medians", dialect, filter, _medians_statement)
    parameters = filter_parameters(sponsor_id, measure_ids, filter)
    return {
        (measure_id, period): float(median)
        for measure_id, period, median in await statement_rows(session, query, parameters)
    }


async def cell_median_team_values(
    session: AsyncSession,
    sponsor_id: uuid.UUID,
    measure_ids: Collection[uuid.UUID],
    *,
    filter: AggregateFilter,
) -> dict[tuple[uuid.UUID, str, uuid.UUID], float]:
    """The median team value per (measure, period, collaborative): the median of each part of
    :func:`aggregate_parts` (the stored cells of :mod:`db.queries.rollups`)."""
    if matches_nothing(measure_ids, filter):
        return {}
    dialect = session.get_bind().dialect.name
    query = _statement("cell_medians", dialect, filter, _cell_medians_statement)
    parameters = filter_parameters(sponsor_id, measure_ids, filter)
    return {
        (measure_id, period, collaborative_id): float(median)
        for measure_id, period, collaborative_id, median in await statement_rows(
            session, query, parameters
        )
    }


def _medians_statement(points: Any, dialect: str) -> Select[Any]:
    """:func:`median_team_values`'s statement over the ``points`` subquery."""
    return _medians_over(points, dialect, (points.c.measure_id, points.c.period))


def _cell_medians_statement(points: Any, dialect: str) -> Select[Any]:
    """:func:`cell_median_team_values`'s statement over the ``points`` subquery."""
    keys = (points.c.measure_id, points.c.period, points.c.collaborative_id)
    return _medians_over(points, dialect, keys)


def _medians_over(points: Any, dialect: str, keys: tuple[Any, ...]) -> Select[Any]:
    """The median of the team values of each group of ``keys`` (columns of ``points``)."""
    present = points.c.value.is_not(None)
    if dialect == "postgresql":
        query = (
            select(
                *keys,
                func.percentile_cont(0.5).within_group(points.c.value).label("median"),
            )
            .where(present)
            .group_by(*keys)
        )
    else:
        ranked = (
            select(
                *keys,
                points.c.value,
                func.row_number().over(partition_by=keys, order_by=points.c.value).label("rank"),
                func.count().over(partition_by=keys).label("size"),
            )
            .where(present)
            .subquery("ranked")
        )
        ranked_keys: tuple[Any, ...] = tuple(ranked.c[key.name] for key in keys)
        low, high = func.min(ranked.c.value), func.max(ranked.c.value)
        middle = ((ranked.c.size + 1) // 2, (ranked.c.size + 2) // 2)
        median: Any = (low + (high - low) * literal(0.5, Float)).label("median")
        columns: list[Any] = [*ranked_keys, median]
        grouped = select(*columns).where(ranked.c.rank.in_(middle)).group_by(*columns[:-1])
        query = grouped
    return type_cast("Select[Any]", query)  # select(*columns) types as Select[Never, ...]


async def team_values(
    session: AsyncSession,
    sponsor_id: uuid.UUID,
    measure_ids: Collection[uuid.UUID],
    *,
    filter: AggregateFilter,
) -> list[TeamValue]:
    """Every team's value per measure and period, ordered by collaborative, measure, team and
    period: one statement for a whole batch (the scorecard's per-team run charts)."""
    if matches_nothing(measure_ids, filter):
        return []
    dialect = session.get_bind().dialect.name
    query = _statement("team_values", dialect, filter, _team_values_statement)
    parameters = filter_parameters(sponsor_id, measure_ids, filter)
    return [
        TeamValue(
            collaborative_id=row.collaborative_id,
            measure_id=row.measure_id,
            team_id=row.team_id,
            period=row.period,
            value=None if row.value is None else float(row.value),
        )
        for row in await statement_rows(session, query, parameters)
    ]


def _team_values_statement(points: Any, dialect: str) -> Select[Any]:
    """:func:`team_values`'s statement over the ``points`` subquery."""
    return select(
        points.c.collaborative_id,
        points.c.measure_id,
        points.c.team_id,
        points.c.period,
        points.c.value,
    ).order_by(points.c.collaborative_id, points.c.measure_id, points.c.team_id, points.c.period)


_GOAL: Select[Any] = named_set_entries(CollaborativeMeasure.goal).where(
    CollaborativeMeasure.measure_id == bindparam("measure_id")
)
""":func:`collaborative_goal`'s statement, built once."""


async def collaborative_goal(
    session: AsyncSession, sponsor_id: uuid.UUID, collaborative_code: str, measure_id: uuid.UUID
) -> tuple[bool, float | None]:
    """Whether the measure is in the collaborative's set, and its goal line (displayed unit)."""
    parameters = {
        "sponsor_id": sponsor_id,
        "measure_id": measure_id,
        "collaborative": collaborative_code,
    }
    found = await statement_rows(session, _GOAL, parameters)
    row = found[0] if found else None
    if row is None:
        return False, None
    return True, row.goal


@dataclass(frozen=True)
class ScorecardKey:
    """One collaborative's scorecard (a DataLoader key); ``period`` None means the latest
    period with data."""

    collaborative_id: uuid.UUID
    period: str | None = None


@dataclass(frozen=True)
class ScorecardInputs:
    """What a scorecard is computed from: the collaborative's per-period totals of every measure
    in its set and every team's values, up to the period asked for (or all of them)."""

    parts: list[PartTotals] = field(default_factory=list)
    team_values: list[TeamValue] = field(default_factory=list)


async def scorecard_inputs_by_keys(
    session: AsyncSession, sponsor_id: uuid.UUID, keys: Sequence[ScorecardKey]
) -> list[ScorecardInputs]:
    """For each key, in key order, its :class:`ScorecardInputs` (a DataLoader batch function).

    Three statements for the whole batch (the measure sets, the totals, the team values),
    whatever the number of collaboratives, measures or teams. Only measures in each
    collaborative's set count.
    """
    if not keys:
        return []
    collaborative_ids = frozenset(key.collaborative_id for key in keys)
    periods = [key.period for key in keys]
    to_period = None if any(p is None for p in periods) else max(p for p in periods if p)
    measure_ids = await _set_measure_ids(session, sponsor_id, collaborative_ids)
    by_collaborative: defaultdict[uuid.UUID, ScorecardInputs] = defaultdict(ScorecardInputs)
    all_ids = {measure_id for ids in measure_ids.values() for measure_id in ids}
    filter = AggregateFilter(collaborative_ids=collaborative_ids, to_period=to_period)
    for part in await aggregate_parts(session, sponsor_id, all_ids, filter=filter):
        if part.measure_id in measure_ids.get(part.collaborative_id, ()):
            by_collaborative[part.collaborative_id].parts.append(part)
    for value in await team_values(session, sponsor_id, all_ids, filter=filter):
        if value.measure_id in measure_ids.get(value.collaborative_id, ()):
            by_collaborative[value.collaborative_id].team_values.append(value)
    results: list[ScorecardInputs] = []
    for key in keys:
        found = by_collaborative[key.collaborative_id]
        cut = key.period
        results.append(
            ScorecardInputs(
                parts=[part for part in found.parts if cut is None or part.period <= cut],
                team_values=[v for v in found.team_values if cut is None or v.period <= cut],
            )
        )
    return results


async def _set_measure_ids(
    session: AsyncSession, sponsor_id: uuid.UUID, collaborative_ids: Collection[uuid.UUID]
) -> dict[uuid.UUID, set[uuid.UUID]]:
    """The measures in each collaborative's set."""
    rows = (
        await session.execute(
            select(CollaborativeMeasure.collaborative_id, CollaborativeMeasure.measure_id).where(
                CollaborativeMeasure.sponsor_id == sponsor_id,
                CollaborativeMeasure.collaborative_id.in_(list(collaborative_ids)),
            )
        )
    ).all()
    found: defaultdict[uuid.UUID, set[uuid.UUID]] = defaultdict(set)
    for collaborative_id, measure_id in rows:
        found[collaborative_id].add(measure_id)
    return dict(found)
