"""Reads of the file and FHIR exchange: the bulk export's pages, FHIR MeasureReports, and the
look-ups that map a FHIR reporter and measure canonical to our codes.

Writes never happen here: FHIR and file imports hand their rows to :mod:`db.ingest`.

- :func:`export_page` — one keyset page of the bulk export, ordered by (updated_at, id) like the
  GraphQL delta export, optionally with the tombstones of deleted points. Each branch (live
  points, tombstones) is ordered and limited on its own index before the union, so a page costs
  the same at the start and at the end of a million-row export, and no total is counted.
- :func:`report_page` — stored points grouped as FHIR MeasureReports, one per (team, measure,
  period), keyset-paged on that key: the first statement picks the page's report keys, the
  second reads their points (every stratum) with the definitions they were reported under.
- :func:`measures_for_canonical` and :func:`organization_teams` — what ``measure`` and
  ``reporter`` of a MeasureReport name.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from sqlalchemy import (
    Integer,
    Select,
    and_,
    bindparam,
    false,
    or_,
    select,
    tuple_,
)
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql.base import Executable
from sqlalchemy.sql.elements import BindParameter

from db.enums import DataPointStatus, ImprovementDirection, MeasureType, Scoring
from db.models import (
    Collaborative,
    CollaborativeMeasure,
    DataPoint,
    Measure,
    MeasureVersion,
    Organization,
    PeriodLock,
    Team,
)
from db.queries.data import (
    DataPointFilter,
    UnionShape,
    points_union,
    union_parameters,
    union_shape,
)
from db.queries.paging import Keyset
from db.queries.status import shown_status

# --- bulk export -----------------------------------------------------------------------------


@dataclass(frozen=True)
class ExportFilter:
    """Filters of the bulk export (None: any). ``team_ids`` restricts a team-bound client;
    ``updated_since`` is inclusive; ``include_deleted`` adds the tombstones of deleted points."""

    collaborative_code: str | None = None
    measure_code: str | None = None
    team_code: str | None = None
    from_period: str | None = None
    to_period: str | None = None
    updated_since: datetime | None = None
    team_ids: frozenset[uuid.UUID] | None = None
    include_deleted: bool = False


@dataclass(frozen=True)
class ExportRow:
    """One exported point (``deleted``: the tombstone of a deleted one, values null)."""

    id: uuid.UUID
    collaborative_code: str
    team_code: str
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
    source: str
    updated_at: datetime
    updated_by: str
    receipt_id: uuid.UUID | None

    @property
    def keyset(self) -> Keyset:
        """Where the next page starts."""
        return Keyset(value=self.updated_at, id=self.id)


async def export_page(
    session: AsyncSession,
    sponsor_id: uuid.UUID,
    *,
    filter: ExportFilter,
    limit: int,
    after: Keyset | None = None,
) -> list[ExportRow]:
    """The next ``limit`` exported points after ``after``, oldest change first (an empty list
    ends the export)."""
    points_filter = DataPointFilter(
        collaborative_code=filter.collaborative_code,
        measure_code=filter.measure_code,
        team_code=filter.team_code,
        from_period=filter.from_period,
        to_period=filter.to_period,
        updated_since=filter.updated_since,
        team_ids=filter.team_ids,
    )
    query = _export_statement(union_shape(points_filter, after, limit, filter.include_deleted))
    parameters = union_parameters(sponsor_id, points_filter, after, limit)
    rows = (await (await session.connection()).execute(query, parameters)).all()
    return [_export_row(row) for row in rows]


_EXPORT_STATEMENTS: dict[UnionShape, Select[Any]] = {}
"""Export statements built once per shape (executed with ``union_parameters``)."""


def _export_statement(shape: UnionShape) -> Select[Any]:
    found = _EXPORT_STATEMENTS.get(shape)
    if found is not None:
        return found
    points = points_union(shape)
    sponsor_id: BindParameter[uuid.UUID] = bindparam("sponsor_id")
    query = (
        select(points, Team.code, Measure.code, Collaborative.code, PeriodLock.through_period)
        .join(Team, and_(Team.sponsor_id == sponsor_id, Team.id == points.c.team_id))
        .join(
            Collaborative,
            and_(Collaborative.sponsor_id == sponsor_id, Collaborative.id == Team.collaborative_id),
        )
        .join(Measure, and_(Measure.sponsor_id == sponsor_id, Measure.id == points.c.measure_id))
        .outerjoin(
            PeriodLock,
            and_(
                PeriodLock.sponsor_id == sponsor_id,
                PeriodLock.collaborative_id == Team.collaborative_id,
            ),
        )
        .order_by(points.c.updated_at, points.c.id)
        .limit(bindparam("limit", type_=Integer))
    )
    _EXPORT_STATEMENTS[shape] = query
    return query


def _export_row(row: Any) -> ExportRow:
    (
        point_id,
        _team_id,
        _measure_id,
        measure_version,
        period,
        stratum,
        numerator,
        denominator,
        value,
        annotation,
        status,
        deleted,
        source,
        updated_at,
        updated_by,
        receipt_id,
        team_code,
        measure_code,
        collaborative_code,
        locked_through,
    ) = row
    shown = None if deleted else shown_status(status, period, locked_through)
    return ExportRow(
        id=point_id,
        collaborative_code=collaborative_code,
        team_code=team_code,
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
        source=source or "",
        updated_at=updated_at,
        updated_by=updated_by,
        receipt_id=receipt_id,
    )


# --- FHIR look-ups ---------------------------------------------------------------------------


@dataclass(frozen=True)
class FhirMeasure:
    """A measure as a FHIR canonical names it: its current version and scoring (what ingest
    records), and the canonical URL of every version that has one."""

    id: uuid.UUID
    code: str
    current_version: int
    scoring: Scoring
    canonicals: dict[int, str]


_MeasureRows = Select[uuid.UUID, str, int, Scoring]


def _fhir_measures_statement(condition: Any) -> _MeasureRows:
    statement: _MeasureRows = (
        select(Measure.id, Measure.code, Measure.current_version, MeasureVersion.scoring)
        .join(
            MeasureVersion,
            and_(
                MeasureVersion.sponsor_id == Measure.sponsor_id,
                MeasureVersion.measure_id == Measure.id,
                MeasureVersion.version == Measure.current_version,
            ),
        )
        .where(Measure.sponsor_id == bindparam("sponsor_id"), condition)
        .order_by(Measure.code)
    )
    return statement


# The statements of the FHIR measure look-ups, built once (bound parameters): a FHIR search
# names its measure on every request, and building these costs more CPU than running them.
_BY_CANONICAL = _fhir_measures_statement(
    Measure.id.in_(
        select(MeasureVersion.measure_id).where(
            MeasureVersion.sponsor_id == bindparam("sponsor_id"),
            or_(
                MeasureVersion.fhir_canonical == bindparam("url"),
                MeasureVersion.fhir_canonical.like(bindparam("prefix"), escape="/"),
            ),
        )
    )
)
_BY_CODE = _fhir_measures_statement(Measure.code == bindparam("code"))
_CANONICALS = (
    select(MeasureVersion.measure_id, MeasureVersion.version, MeasureVersion.fhir_canonical)
    .where(
        MeasureVersion.sponsor_id == bindparam("sponsor_id"),
        MeasureVersion.measure_id.in_(bindparam("measure_ids", expanding=True)),
        MeasureVersion.fhir_canonical.is_not(None),
    )
    .order_by(MeasureVersion.measure_id, MeasureVersion.version)
)


def _like_prefix(text: str) -> str:
    """A LIKE pattern matching text that starts with ``text`` (``/`` is the escape)."""
    escaped = text.replace("/", "//").replace("%", "/%").replace("_", "/_")
    return escaped + "%"


async def _fhir_measures(
    session: AsyncSession,
    sponsor_id: uuid.UUID,
    statement: _MeasureRows,
    parameters: dict[str, Any],
) -> list[FhirMeasure]:
    connection = await session.connection()  # column selects: no ORM layer needed
    found = [
        FhirMeasure(id=row[0], code=row[1], current_version=row[2], scoring=row[3], canonicals={})
        for row in await connection.execute(statement, {"sponsor_id": sponsor_id, **parameters})
    ]
    if not found:
        return found
    versions = await connection.execute(
        _CANONICALS,
        {"sponsor_id": sponsor_id, "measure_ids": [measure.id for measure in found]},
    )
    by_id = {measure.id: measure for measure in found}
    for measure_id, version, canonical in versions:
        if canonical:
            by_id[measure_id].canonicals[version] = canonical
    return found


async def measures_for_canonical(
    session: AsyncSession, sponsor_id: uuid.UUID, url: str
) -> list[FhirMeasure]:
    """Measures one of whose versions declares the canonical ``url`` (with or without a
    ``|version`` suffix); normally one, several when a sponsor gave two measures one URL."""
    parameters = {"url": url, "prefix": _like_prefix(url + "|")}
    return await _fhir_measures(session, sponsor_id, _BY_CANONICAL, parameters)


async def measure_by_code(
    session: AsyncSession, sponsor_id: uuid.UUID, code: str
) -> FhirMeasure | None:
    """A measure by its code, with its canonicals."""
    found = await _fhir_measures(session, sponsor_id, _BY_CODE, {"code": code})
    return found[0] if found else None


@dataclass(frozen=True)
class ReporterTeam:
    """A team of a reporting organization and whether its collaborative has the measure."""

    id: uuid.UUID
    code: str
    withdrawn_on: date | None
    has_measure: bool


@dataclass(frozen=True)
class ReportingOrganization:
    """An organization and its teams (in every collaborative), as a FHIR reporter names it."""

    id: uuid.UUID
    code: str
    teams: tuple[ReporterTeam, ...]


async def organization_teams(
    session: AsyncSession,
    sponsor_id: uuid.UUID,
    code: str,
    *,
    measure_id: uuid.UUID | None = None,
) -> ReportingOrganization | None:
    """An organization by code with its teams, each marked when its collaborative's measure set
    has ``measure_id`` (never without one); None when the sponsor has no such organization."""
    organization = (
        await session.execute(
            select(Organization.id, Organization.code).where(
                Organization.sponsor_id == sponsor_id, Organization.code == code
            )
        )
    ).first()
    if organization is None:
        return None
    if measure_id is None:
        query = select(Team.id, Team.code, Team.withdrawn_on, false())
    else:
        query = select(
            Team.id, Team.code, Team.withdrawn_on, CollaborativeMeasure.measure_id.is_not(None)
        ).outerjoin(
            CollaborativeMeasure,
            and_(
                CollaborativeMeasure.sponsor_id == Team.sponsor_id,
                CollaborativeMeasure.collaborative_id == Team.collaborative_id,
                CollaborativeMeasure.measure_id == measure_id,
            ),
        )
    rows = await session.execute(
        query.where(
            Team.sponsor_id == sponsor_id, Team.organization_id == organization[0]
        ).order_by(Team.code)
    )
    teams = tuple(
        ReporterTeam(id=row[0], code=row[1], withdrawn_on=row[2], has_measure=bool(row[3]))
        for row in rows
    )
    return ReportingOrganization(id=organization[0], code=organization[1], teams=teams)


# --- FHIR MeasureReports from stored points -------------------------------------------------


ReportKey = tuple[uuid.UUID, uuid.UUID, str]
"""(team id, measure id, period): one MeasureReport."""


@dataclass(frozen=True)
class ReportFilter:
    """Which reports a search returns (None: any). ``team_ids`` are the reporter's teams
    intersected with a team-bound client's; ``key`` selects one report (a read by id)."""

    team_ids: frozenset[uuid.UUID] | None = None
    measure_ids: frozenset[uuid.UUID] | None = None
    measure_version: int | None = None
    from_period: str | None = None
    to_period: str | None = None
    key: ReportKey | None = None


@dataclass(frozen=True)
class ReportPoint:
    """A stored point with what a MeasureReport says about its team, organization and the
    definition it was reported under."""

    team_id: uuid.UUID
    team_code: str
    organization_code: str
    organization_name: str
    measure_id: uuid.UUID
    measure_code: str
    measure_version: int
    measure_name: str
    measure_type: MeasureType
    scoring: Scoring
    improvement_direction: ImprovementDirection
    multiplier: float
    fhir_canonical: str | None
    period: str
    stratum: str
    numerator: int | None
    denominator: int | None
    value: float | None
    annotation: str
    updated_at: datetime

    @property
    def key(self) -> ReportKey:
        """The report this point belongs to."""
        return (self.team_id, self.measure_id, self.period)


@dataclass(frozen=True)
class ReportPage:
    """Reports (their points, the ''-stratum first) in key order, and whether more follow."""

    reports: list[list[ReportPoint]]
    has_next: bool


_ReportShape = tuple[bool, ...]
"""Which filters (and cursor) a report statement applies; built once per shape."""


def _report_shape(filter: ReportFilter, after: ReportKey | None) -> _ReportShape:
    return (
        filter.team_ids is not None,
        filter.measure_ids is not None,
        filter.measure_version is not None,
        filter.from_period is not None,
        filter.to_period is not None,
        filter.key is not None,
        after is not None,
    )


def _report_parameters(
    sponsor_id: uuid.UUID, filter: ReportFilter, after: ReportKey | None, limit: int
) -> dict[str, Any]:
    parameters: dict[str, Any] = {"sponsor_id": sponsor_id, "limit": limit + 1}
    if filter.team_ids is not None:
        parameters["team_ids"] = sorted(filter.team_ids)
    if filter.measure_ids is not None:
        parameters["measure_ids"] = sorted(filter.measure_ids)
    if filter.measure_version is not None:
        parameters["measure_version"] = filter.measure_version
    if filter.from_period is not None:
        parameters["from_period"] = filter.from_period
    if filter.to_period is not None:
        parameters["to_period"] = filter.to_period
    for prefix, key in (("key", filter.key), ("after", after)):
        if key is not None:
            parameters.update(zip(_key_names(prefix), key, strict=True))
    return parameters


def _key_names(prefix: str) -> tuple[str, str, str]:
    return (f"{prefix}_team", f"{prefix}_measure", f"{prefix}_period")


_KEY_COLUMNS = (DataPoint.team_id, DataPoint.measure_id, DataPoint.period)


def _key_parameters(prefix: str) -> Any:
    """A report key as bound parameters (typed like the key columns), for tuple comparisons."""
    return tuple_(
        *(
            bindparam(name, type_=column.type)
            for name, column in zip(_key_names(prefix), _KEY_COLUMNS, strict=True)
        )
    )


def _report_conditions(shape: _ReportShape) -> list[Any]:
    has_teams, has_measures, has_version, has_from, has_to, has_key, _ = shape
    conditions: list[Any] = [DataPoint.sponsor_id == bindparam("sponsor_id")]
    if has_teams:
        conditions.append(DataPoint.team_id.in_(bindparam("team_ids", expanding=True)))
    if has_measures:
        conditions.append(DataPoint.measure_id.in_(bindparam("measure_ids", expanding=True)))
    if has_version:
        conditions.append(DataPoint.measure_version == bindparam("measure_version"))
    if has_from:
        conditions.append(DataPoint.period >= bindparam("from_period"))
    if has_to:
        conditions.append(DataPoint.period <= bindparam("to_period"))
    if has_key:
        team, measure, period = _key_names("key")
        conditions += [
            DataPoint.team_id == bindparam(team),
            DataPoint.measure_id == bindparam(measure),
            DataPoint.period == bindparam(period),
        ]
    return conditions


def _keys_statement(shape: _ReportShape) -> Executable:
    """The page's report keys (on the unique index of data points)."""
    keyed = _report_conditions(shape)
    if shape[6]:
        keyed.append(tuple_(*_KEY_COLUMNS) > _key_parameters("after"))
    return (
        select(*_KEY_COLUMNS)
        .where(*keyed)
        .group_by(*_KEY_COLUMNS)
        .order_by(*_KEY_COLUMNS)
        .limit(bindparam("limit", type_=Integer))
    )


def _points_statement(shape: _ReportShape) -> Executable:
    """Every point of the keys from ``first_*`` to ``last_*`` with team, organization and
    measure definition."""
    sponsor_id: BindParameter[uuid.UUID] = bindparam("sponsor_id")
    return (
        select(
            DataPoint.team_id,
            Team.code,
            Organization.code,
            Organization.name,
            DataPoint.measure_id,
            Measure.code,
            DataPoint.measure_version,
            MeasureVersion.name,
            MeasureVersion.type,
            MeasureVersion.scoring,
            MeasureVersion.improvement_direction,
            MeasureVersion.multiplier,
            MeasureVersion.fhir_canonical,
            DataPoint.period,
            DataPoint.stratum,
            DataPoint.numerator,
            DataPoint.denominator,
            DataPoint.value,
            DataPoint.annotation,
            DataPoint.updated_at,
        )
        .join(Team, and_(Team.sponsor_id == sponsor_id, Team.id == DataPoint.team_id))
        .join(
            Organization,
            and_(Organization.sponsor_id == sponsor_id, Organization.id == Team.organization_id),
        )
        .join(Measure, and_(Measure.sponsor_id == sponsor_id, Measure.id == DataPoint.measure_id))
        .join(
            MeasureVersion,
            and_(
                MeasureVersion.sponsor_id == sponsor_id,
                MeasureVersion.measure_id == DataPoint.measure_id,
                MeasureVersion.version == DataPoint.measure_version,
            ),
        )
        .where(
            *_report_conditions(shape),
            tuple_(*_KEY_COLUMNS) >= _key_parameters("first"),
            tuple_(*_KEY_COLUMNS) <= _key_parameters("last"),
        )
        .order_by(*_KEY_COLUMNS, DataPoint.stratum)
    )


_REPORT_STATEMENTS: dict[tuple[str, _ReportShape], Executable] = {}
"""Report statements built once per (kind, shape): building them cost a search more CPU than
PostgreSQL spends answering it."""


def _report_statement(kind: str, shape: _ReportShape) -> Executable:
    found = _REPORT_STATEMENTS.get((kind, shape))
    if found is None:
        build = _keys_statement if kind == "keys" else _points_statement
        found = _REPORT_STATEMENTS[(kind, shape)] = build(shape)
    return found


async def report_page(
    session: AsyncSession,
    sponsor_id: uuid.UUID,
    *,
    filter: ReportFilter,
    limit: int,
    after: ReportKey | None = None,
) -> ReportPage:
    """Up to ``limit`` reports after ``after`` in (team id, measure id, period) order.

    Two statements: the page's report keys (on the unique index of data points), then every
    point of those keys with team, organization and measure definition.
    """
    shape = _report_shape(filter, after)
    parameters = _report_parameters(sponsor_id, filter, after, limit)
    connection = await session.connection()  # column selects: no ORM layer needed
    keys = [
        (row[0], row[1], row[2])
        for row in await connection.execute(_report_statement("keys", shape), parameters)
    ]
    has_next = len(keys) > limit
    keys = keys[:limit]
    if not keys:
        return ReportPage(reports=[], has_next=False)
    parameters.update(zip(_key_names("first"), keys[0], strict=True))
    parameters.update(zip(_key_names("last"), keys[-1], strict=True))
    query = _report_statement("points", shape)
    grouped: dict[ReportKey, list[ReportPoint]] = {key: [] for key in keys}
    for row in await connection.execute(query, parameters):
        values: tuple[Any, ...] = tuple(row)
        point = ReportPoint(*values)
        if point.key in grouped:
            grouped[point.key].append(point)
    return ReportPage(reports=[points for points in grouped.values() if points], has_next=has_next)
