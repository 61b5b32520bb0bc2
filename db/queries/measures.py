"""Measures, their versioned operational definitions, and collaboratives' measure sets.

A measure's identity (``Measure``: code, current version) is separate from its definition
(``MeasureVersion``). Reads return a :class:`VersionedMeasure` — the measure with the definition
it is shown at — so callers never have to fetch the current version one row at a time.

Writes: :func:`define_measure` creates a measure at version 1 or, for an existing code, a new
version only when the definition differs from the current one (replaying the same definition
writes nothing). :func:`add_measure_to_collaborative` adds a measure to a collaborative's set;
a measure already in the set is a :class:`~db.errors.Conflict`. Both are audited.
"""

from __future__ import annotations

import math
import uuid
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import ColumnElement, Select, and_, bindparam, func, select, tuple_
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from db.enums import ImprovementDirection, MeasureType, Scoring
from db.errors import Conflict, InvalidInput, NotFound
from db.models import Collaborative, CollaborativeMeasure, Measure, MeasureVersion
from db.queries.audit import Actor, record_event, snapshot
from db.queries.paging import Keyset, Page, keyset_page
from db.queries.text import matches_any

MEASURE_SORTS = {
    "CODE": Measure.code,
    "CREATED_AT": Measure.created_at,
    "UPDATED_AT": Measure.updated_at,
}

MAX_SET_SIZE = 100
"""Most measures one collaborative's set may hold (sets are typically 4-10)."""

SCORINGS_WITH_RATIO = frozenset({Scoring.PROPORTION, Scoring.RATE, Scoring.RATIO})
"""Scorings whose value is numerator / denominator: both must be defined in words."""


@dataclass(frozen=True)
class VersionedMeasure:
    """A measure with the definition it is shown at (the current one unless asked otherwise)."""

    measure: Measure
    definition: MeasureVersion


@dataclass(frozen=True)
class MeasureSetEntry:
    """A measure in a collaborative's set: the membership row and the measure as it is now."""

    membership: CollaborativeMeasure
    measure: Measure
    definition: MeasureVersion


@dataclass(frozen=True)
class MeasureFilter:
    """Filters of ``measures``; None means "any"."""

    type: MeasureType | None = None
    collaborative: str | None = None
    search: str | None = None


@dataclass(frozen=True)
class MeasureDefinitionInput:
    """A complete operational definition, as ``defineMeasure`` gives it."""

    name: str
    type: MeasureType
    scoring: Scoring
    improvement_direction: ImprovementDirection
    description: str = ""
    numerator: str = ""
    denominator: str = ""
    exclusions: str = ""
    unit: str = ""
    multiplier: float = 1.0
    data_source: str = ""
    sampling: str = ""
    frequency: str = "MONTHLY"
    fhir_canonical: str | None = None
    external_codes: Mapping[str, str] = field(default_factory=dict)


DEFINITION_FIELDS = (
    "name",
    "description",
    "type",
    "scoring",
    "numerator",
    "denominator",
    "exclusions",
    "unit",
    "multiplier",
    "improvement_direction",
    "data_source",
    "sampling",
    "frequency",
    "fhir_canonical",
    "external_codes",
)
"""The columns of ``MeasureVersion`` that make up a definition (a change in any is a version)."""


@dataclass(frozen=True)
class DefineOutcome:
    """What ``define_measure`` did."""

    result: VersionedMeasure
    created: bool
    version_created: bool


@dataclass(frozen=True)
class AddOutcome:
    """What ``add_measure_to_collaborative`` did."""

    collaborative: Collaborative
    entry: MeasureSetEntry


def _current_definition() -> ColumnElement[bool]:
    """Join condition from a measure to its current definition."""
    return and_(
        MeasureVersion.sponsor_id == Measure.sponsor_id,
        MeasureVersion.measure_id == Measure.id,
        MeasureVersion.version == Measure.current_version,
    )


async def list_measures(
    session: AsyncSession,
    sponsor_id: uuid.UUID,
    *,
    filter: MeasureFilter,
    sort: str = "CODE",
    descending: bool = False,
    first: int,
    after: Keyset | None = None,
) -> Page[VersionedMeasure]:
    """One page of a sponsor's measures at their current definitions (two queries in all)."""
    query = (
        select(Measure)
        .join(MeasureVersion, _current_definition())
        .where(Measure.sponsor_id == sponsor_id)
    )
    if filter.type is not None:
        query = query.where(MeasureVersion.type == filter.type)
    if filter.collaborative is not None:
        in_set = (
            select(CollaborativeMeasure.measure_id)
            .join(
                Collaborative,
                and_(
                    Collaborative.sponsor_id == CollaborativeMeasure.sponsor_id,
                    Collaborative.id == CollaborativeMeasure.collaborative_id,
                ),
            )
            .where(
                CollaborativeMeasure.sponsor_id == sponsor_id,
                Collaborative.code == filter.collaborative,
            )
        )
        query = query.where(Measure.id.in_(in_set))
    if filter.search:
        query = query.where(
            matches_any(
                filter.search, Measure.code, MeasureVersion.name, MeasureVersion.description
            )
        )
    page = await keyset_page(
        session,
        query,
        sort=MEASURE_SORTS[sort],
        tiebreak=Measure.id,
        descending=descending,
        first=first,
        after=after,
    )
    definitions = await _definitions_of(session, sponsor_id, page.rows)
    return Page(
        rows=[VersionedMeasure(row, definitions[row.id]) for row in page.rows],
        keysets=page.keysets,
        has_next=page.has_next,
        total=page.total,
    )


async def _definitions_of(
    session: AsyncSession, sponsor_id: uuid.UUID, measures: Sequence[Measure]
) -> dict[uuid.UUID, MeasureVersion]:
    """The definitions named by each measure row's ``current_version`` (as read), in one query."""
    if not measures:
        return {}
    pairs = [(row.id, row.current_version) for row in measures]
    rows = (
        await session.scalars(
            select(MeasureVersion).where(
                MeasureVersion.sponsor_id == sponsor_id,
                tuple_(MeasureVersion.measure_id, MeasureVersion.version).in_(pairs),
            )
        )
    ).all()
    return {row.measure_id: row for row in rows}


def _measure_by_code_statement(versioned: bool) -> Select[Measure, MeasureVersion]:
    wanted = bindparam("version") if versioned else Measure.current_version
    return (
        select(Measure, MeasureVersion)
        .join(
            MeasureVersion,
            and_(
                MeasureVersion.sponsor_id == Measure.sponsor_id,
                MeasureVersion.measure_id == Measure.id,
                MeasureVersion.version == wanted,
            ),
        )
        .where(Measure.sponsor_id == bindparam("sponsor_id"), Measure.code == bindparam("code"))
    )


_MEASURE_BY_CODE = {versioned: _measure_by_code_statement(versioned) for versioned in (False, True)}
"""Built once (an aggregate, a FHIR report and a sharing check each look a measure up)."""


async def get_measure_by_code(
    session: AsyncSession, sponsor_id: uuid.UUID, code: str, *, version: int | None = None
) -> VersionedMeasure | None:
    """A sponsor's measure by code, at ``version`` (the current one by default); None if absent."""
    parameters: dict[str, Any] = {"sponsor_id": sponsor_id, "code": code}
    if version is not None:
        parameters["version"] = version
    row = (await session.execute(_MEASURE_BY_CODE[version is not None], parameters)).first()
    if row is None:
        return None
    return VersionedMeasure(measure=row[0], definition=row[1])


def named_set_entries(*columns: Any) -> Select[Any]:
    """``columns`` of the measure-set entries of the sponsor's collaborative named by code
    (bound parameters ``sponsor_id`` and ``collaborative``)."""
    return (
        select(*columns)
        .join(
            Collaborative,
            and_(
                Collaborative.sponsor_id == CollaborativeMeasure.sponsor_id,
                Collaborative.id == CollaborativeMeasure.collaborative_id,
            ),
        )
        .where(
            CollaborativeMeasure.sponsor_id == bindparam("sponsor_id"),
            Collaborative.code == bindparam("collaborative"),
        )
    )


def _measure_with_goal_statement() -> Select[Measure, MeasureVersion, float | None, bool]:
    in_set = named_set_entries(CollaborativeMeasure.measure_id, CollaborativeMeasure.goal).subquery(
        "in_set"
    )
    found = _measure_by_code_statement(False)
    return found.add_columns(in_set.c.goal, in_set.c.measure_id.is_not(None)).outerjoin(
        in_set, in_set.c.measure_id == Measure.id
    )


_MEASURE_WITH_GOAL = _measure_with_goal_statement()


async def get_measure_with_goal(
    session: AsyncSession, sponsor_id: uuid.UUID, code: str, collaborative_code: str
) -> tuple[VersionedMeasure, bool, float | None] | None:
    """A sponsor's measure by code at its current version, whether it is in the measure set of
    the sponsor's collaborative ``collaborative_code``, and its goal line there (one statement
    for what an aggregate of one collaborative needs); None if the measure is absent."""
    parameters = {"sponsor_id": sponsor_id, "code": code, "collaborative": collaborative_code}
    row = (await session.execute(_MEASURE_WITH_GOAL, parameters)).first()
    if row is None:
        return None
    return VersionedMeasure(measure=row[0], definition=row[1]), bool(row[3]), row[2]


async def measures_by_ids(
    session: AsyncSession, sponsor_id: uuid.UUID, ids: Sequence[uuid.UUID]
) -> list[VersionedMeasure | None]:
    """Measures of one sponsor at their current definitions, in the order of ``ids``."""
    rows = (
        await session.execute(
            select(Measure, MeasureVersion)
            .join(MeasureVersion, _current_definition())
            .where(Measure.sponsor_id == sponsor_id, Measure.id.in_(ids))
        )
    ).all()
    by_id = {m.id: VersionedMeasure(measure=m, definition=v) for m, v in rows}
    return [by_id.get(i) for i in ids]


async def measures_by_codes(
    session: AsyncSession, sponsor_id: uuid.UUID, codes: Sequence[str]
) -> list[VersionedMeasure | None]:
    """Measures of one sponsor at their current definitions, in the order of ``codes``."""
    rows = (
        await session.execute(
            select(Measure, MeasureVersion)
            .join(MeasureVersion, _current_definition())
            .where(Measure.sponsor_id == sponsor_id, Measure.code.in_(codes))
        )
    ).all()
    by_code = {m.code: VersionedMeasure(measure=m, definition=v) for m, v in rows}
    return [by_code.get(c) for c in codes]


async def measure_versions_by_measure_ids(
    session: AsyncSession, sponsor_id: uuid.UUID, ids: Sequence[uuid.UUID]
) -> list[list[MeasureVersion]]:
    """Every definition version of each measure, oldest first, in the order of ``ids``."""
    rows = (
        await session.scalars(
            select(MeasureVersion)
            .where(MeasureVersion.sponsor_id == sponsor_id, MeasureVersion.measure_id.in_(ids))
            .order_by(MeasureVersion.measure_id, MeasureVersion.version)
        )
    ).all()
    grouped: defaultdict[uuid.UUID, list[MeasureVersion]] = defaultdict(list)
    for row in rows:
        grouped[row.measure_id].append(row)
    return [grouped[i] for i in ids]


async def measure_sets_by_collaborative_ids(
    session: AsyncSession, sponsor_id: uuid.UUID, ids: Sequence[uuid.UUID]
) -> list[list[MeasureSetEntry]]:
    """Each collaborative's whole measure set, ordered by (position, measure id), in one query."""
    rows = (
        await session.execute(
            select(CollaborativeMeasure, Measure, MeasureVersion)
            .join(
                Measure,
                and_(
                    Measure.sponsor_id == CollaborativeMeasure.sponsor_id,
                    Measure.id == CollaborativeMeasure.measure_id,
                ),
            )
            .join(MeasureVersion, _current_definition())
            .where(
                CollaborativeMeasure.sponsor_id == sponsor_id,
                CollaborativeMeasure.collaborative_id.in_(ids),
            )
        )
    ).all()
    grouped: defaultdict[uuid.UUID, list[MeasureSetEntry]] = defaultdict(list)
    for membership, measure, definition in rows:
        grouped[membership.collaborative_id].append(
            MeasureSetEntry(membership=membership, measure=measure, definition=definition)
        )
    for entries in grouped.values():
        entries.sort(key=set_order_key)
    return [grouped[i] for i in ids]


def set_order_key(entry: MeasureSetEntry) -> tuple[int, uuid.UUID]:
    """The order of a measure set (and of its cursors): position, then measure id."""
    return (entry.membership.position, entry.membership.measure_id)


MAX_MULTIPLIER = 1_000_000
"""Largest multiplier (per million): beyond it a rate times the multiplier may overflow."""


def _check_definition(definition: MeasureDefinitionInput) -> None:
    """Domain rules a definition must meet, whatever the database would accept."""
    if not definition.name.strip():
        raise InvalidInput("a measure needs a name", field="name")
    if not math.isfinite(definition.multiplier) or not 0 < definition.multiplier <= MAX_MULTIPLIER:
        raise InvalidInput(
            f"the multiplier must be a number above 0 and at most {MAX_MULTIPLIER:,}",
            field="multiplier",
        )
    if definition.scoring in SCORINGS_WITH_RATIO:
        scoring = definition.scoring.value
        if not definition.numerator.strip():
            raise InvalidInput(f"{scoring} scoring needs a numerator", field="numerator")
        if not definition.denominator.strip():
            raise InvalidInput(f"{scoring} scoring needs a denominator", field="denominator")
    if not definition.frequency.strip():
        raise InvalidInput("a measure needs a reporting frequency", field="frequency")


def _definition_values(definition: MeasureDefinitionInput) -> dict[str, Any]:
    """The column values of a definition, normalized as they are stored."""
    values = {name: getattr(definition, name) for name in DEFINITION_FIELDS}
    values["fhir_canonical"] = definition.fhir_canonical or None
    values["external_codes"] = dict(sorted(definition.external_codes.items()))
    values["multiplier"] = float(definition.multiplier)
    return values


def _differs(current: MeasureVersion, values: Mapping[str, Any]) -> bool:
    return any(getattr(current, name) != values[name] for name in DEFINITION_FIELDS)


def _measure_snapshot(measure: Measure, definition: MeasureVersion) -> dict[str, Any]:
    return {**snapshot(measure), "definition": snapshot(definition)}


async def _measure_for_update(
    session: AsyncSession, sponsor_id: uuid.UUID, code: str
) -> Measure | None:
    """The measure row, locked until the transaction ends (serializes redefinitions)."""
    return await session.scalar(
        select(Measure)
        .where(Measure.sponsor_id == sponsor_id, Measure.code == code)
        .with_for_update()
    )


async def define_measure(
    session: AsyncSession, actor: Actor, *, code: str, definition: MeasureDefinitionInput
) -> DefineOutcome:
    """Create a measure at version 1, or add a version when its definition changed; audited."""
    _check_definition(definition)
    values = _definition_values(definition)
    sponsor_id = actor.sponsor_id
    measure = await _measure_for_update(session, sponsor_id, code)
    if measure is None:
        measure = Measure(sponsor_id=sponsor_id, id=uuid.uuid4(), code=code, current_version=1)
        version = MeasureVersion(
            sponsor_id=sponsor_id, id=uuid.uuid4(), measure_id=measure.id, version=1, **values
        )
        session.add(measure)
        try:
            await session.flush()
            session.add(version)
            await session.flush()
        except IntegrityError as exc:
            raise Conflict(f"measure {code!r} is being defined concurrently", field="code") from exc
        await record_event(
            session,
            actor,
            action="measure.create",
            entity_type="Measure",
            entity_id=measure.id,
            before=None,
            after=_measure_snapshot(measure, version),
        )
        return DefineOutcome(VersionedMeasure(measure, version), created=True, version_created=True)

    current = await session.scalar(
        select(MeasureVersion).where(
            MeasureVersion.sponsor_id == sponsor_id,
            MeasureVersion.measure_id == measure.id,
            MeasureVersion.version == measure.current_version,
        )
    )
    assert current is not None, "a measure always has its current version"
    if not _differs(current, values):
        return DefineOutcome(
            VersionedMeasure(measure, current), created=False, version_created=False
        )
    before = _measure_snapshot(measure, current)
    latest = await session.scalar(
        select(func.max(MeasureVersion.version)).where(
            MeasureVersion.sponsor_id == sponsor_id, MeasureVersion.measure_id == measure.id
        )
    )
    number = int(latest or 0) + 1
    version = MeasureVersion(
        sponsor_id=sponsor_id, id=uuid.uuid4(), measure_id=measure.id, version=number, **values
    )
    session.add(version)
    measure.current_version = number
    try:
        await session.flush()
    except IntegrityError as exc:
        raise Conflict(f"measure {code!r} is being redefined concurrently", field="code") from exc
    await record_event(
        session,
        actor,
        action="measure.redefine",
        entity_type="Measure",
        entity_id=measure.id,
        before=before,
        after=_measure_snapshot(measure, version),
    )
    return DefineOutcome(VersionedMeasure(measure, version), created=False, version_created=True)


async def add_measure_to_collaborative(
    session: AsyncSession,
    actor: Actor,
    *,
    collaborative_code: str,
    measure_code: str,
    required: bool = True,
    goal: float | None = None,
    goal_description: str = "",
    position: int | None = None,
) -> AddOutcome:
    """Add a measure to a collaborative's set (Conflict when it is already there); audited.

    Without ``position`` the measure goes last. The collaborative row is locked so that two
    concurrent additions do not pick the same position.
    """
    if goal is not None and not math.isfinite(goal):
        raise InvalidInput("the goal must be a finite number", field="goal")
    if position is not None and position < 0:
        raise InvalidInput("the position must not be negative", field="position")
    sponsor_id = actor.sponsor_id
    collaborative = await session.scalar(
        select(Collaborative)
        .where(Collaborative.sponsor_id == sponsor_id, Collaborative.code == collaborative_code)
        .with_for_update()
    )
    if collaborative is None:
        raise NotFound(f"no collaborative {collaborative_code!r}", field="collaborative")
    found = await get_measure_by_code(session, sponsor_id, measure_code)
    if found is None:
        raise NotFound(f"no measure {measure_code!r}", field="measure")
    in_set = (
        await session.execute(
            select(CollaborativeMeasure.measure_id, CollaborativeMeasure.position).where(
                CollaborativeMeasure.sponsor_id == sponsor_id,
                CollaborativeMeasure.collaborative_id == collaborative.id,
            )
        )
    ).all()
    if any(measure_id == found.measure.id for measure_id, _ in in_set):
        raise Conflict(
            f"measure {measure_code!r} is already in the set of {collaborative_code!r}",
            field="measure",
        )
    if len(in_set) >= MAX_SET_SIZE:
        raise InvalidInput(
            f"a measure set holds at most {MAX_SET_SIZE} measures", field="collaborative"
        )
    if position is None:
        position = max((p for _, p in in_set), default=0) + 1
    membership = CollaborativeMeasure(
        sponsor_id=sponsor_id,
        collaborative_id=collaborative.id,
        measure_id=found.measure.id,
        required=required,
        goal=goal,
        goal_description=goal_description,
        position=position,
    )
    session.add(membership)
    try:
        await session.flush()
    except IntegrityError as exc:
        raise Conflict(
            f"measure {measure_code!r} is already in the set of {collaborative_code!r}",
            field="measure",
        ) from exc
    await record_event(
        session,
        actor,
        action="collaborative.measure.add",
        entity_type="Collaborative",
        entity_id=collaborative.id,
        before=None,
        after={**snapshot(membership), "measure_code": measure_code},
    )
    return AddOutcome(
        collaborative=collaborative,
        entry=MeasureSetEntry(
            membership=membership, measure=found.measure, definition=found.definition
        ),
    )


async def measure_definitions_by_ids(
    session: AsyncSession, sponsor_id: uuid.UUID, ids: Sequence[uuid.UUID]
) -> list[MeasureVersion | None]:
    """Definition versions of one sponsor in the order of ``ids`` (for ``node(id:)``)."""
    rows = (
        await session.scalars(
            select(MeasureVersion).where(
                MeasureVersion.sponsor_id == sponsor_id, MeasureVersion.id.in_(ids)
            )
        )
    ).all()
    by_id = {row.id: row for row in rows}
    return [by_id.get(i) for i in ids]
