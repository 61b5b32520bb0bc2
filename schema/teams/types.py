"""GraphQL projections of organizations, teams, their members and their raw measure series.

Nested team lists (``Collaborative.teams``, ``Organization.teams``) and series go through
DataLoaders that answer a whole level of the query in a constant number of statements.

Reading series needs the scope ``data:read``; an EHR integration reads only the series of the
teams it is bound to (others: a top-level FORBIDDEN error, the field null).
"""

from __future__ import annotations

import uuid
import weakref
from collections.abc import Iterator
from datetime import date, datetime
from typing import Annotated, cast

import strawberry
from graphql import (
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    InlineFragmentNode,
    SelectionSetNode,
)

from db.base import CODE_LENGTH, utcnow
from db.enums import AssessmentRater, DataPointStatus, SurveyWave, TeamRole
from db.models import Organization as OrganizationModel
from db.models import Team as TeamModel
from db.models import TeamMember as TeamMemberModel
from db.queries.paging import Keyset
from db.queries.series import PointColumns, Series, SeriesKey, SeriesPoint
from db.queries.teams import TeamFilter as TeamFilterQuery
from db.queries.teams import TeamPageKey
from schema.assessments.types import Assessment, team_assessments
from schema.charts.types import ChartedSeries, ChartInput, ChartPointInput, chart_input
from schema.collaboratives.types import Collaborative
from schema.context import Info
from schema.errors import forbidden, invalid_argument
from schema.federation import SPONSOR_CODE_KEY, entity_sponsor_id, sponsor_slug_of
from schema.ids import encode_global_id
from schema.instruments.types import SurveyResponse, team_survey_responses
from schema.measures.types import Measure
from schema.node import Node
from schema.pagination import Connection, to_connection
from schema.pagination import page_request as generic_page_request
from schema.pdsa.types import PdsaCycle, series_pdsa_cycles, team_pdsa_cycles
from schema.permissions import HasScope, require_principal
from schema.scalars import Count, Period
from schema.sponsors.types import Person

COLLABORATIVE_TEAMS_ORDER = "collaborativeTeams:CODE:ASC"
"""The one ordering of a collaborative's teams (cursors name it)."""
ORGANIZATION_TEAMS_ORDER = "organizationTeams:CODE:ASC"
"""The one ordering of an organization's teams (cursors name it)."""
MAX_SERIES_MEASURES = 50
"""Most measures one ``series`` call may name."""
FILTER_TEXT_MAX = 200
"""Longest text a list filter accepts."""


def check_filter_text(**values: str | None) -> None:
    """Reject filter text the backends would treat differently (NUL) or unreasonably long."""
    for name, value in values.items():
        if value is None:
            continue
        if "\x00" in value:
            raise invalid_argument(f"filter.{name} must not contain NUL characters")
        if len(value) > FILTER_TEXT_MAX:
            raise invalid_argument(f"filter.{name} is longer than {FILTER_TEXT_MAX} characters")


def findable_code(code: str) -> bool:
    """False for text no stored code can be (NUL bytes, too long): lookups of it find nothing
    (and PostgreSQL, which rejects NUL in text, is never asked)."""
    return "\x00" not in code and len(code) <= CODE_LENGTH


@strawberry.type(description="One period of a team's measure series (the all-patients stratum).")
class MeasureSeriesPoint:
    period: Period = strawberry.field(description="The month, 'YYYY-MM'.")
    numerator: Count | None = strawberry.field(description="Numerator count, when reported.")
    denominator: Count | None = strawberry.field(description="Denominator count, when reported.")
    value: float | None = strawberry.field(
        description=(
            "The displayed value: the reported value (means, counts), else numerator / "
            "denominator x the definition's multiplier; null without a usable denominator."
        )
    )
    annotations: list[str] = strawberry.field(
        description="Notes on the point (events, changes tested); empty when there are none."
    )
    measure_version: int = strawberry.field(
        description="The definition version the point was reported under."
    )
    status: DataPointStatus = strawberry.field(
        description="Review state; LOCKED while the period is locked for the collaborative."
    )
    updated_at: datetime | None = strawberry.field(description="When the point was last written.")
    updated_by: str = strawberry.field(description="Client that last wrote the point.")
    receipt_id: strawberry.ID | None = strawberry.field(
        description="Receipt of the call that last wrote the point (null for loaded data)."
    )


@strawberry.type(
    description=(
        "A series as parallel columns, the compact form for dashboards: entry i of every list "
        "belongs to the same period, oldest first (the points of `points`, without their "
        "provenance). One object per series instead of one per point: much cheaper to serve "
        "and to parse for long series."
    )
)
class SeriesColumns:
    periods: list[Period] = strawberry.field(description="The months, 'YYYY-MM'.")
    numerators: list[Count | None] = strawberry.field(
        description="Numerator counts (null where not reported)."
    )
    denominators: list[Count | None] = strawberry.field(
        description="Denominator counts (null where not reported)."
    )
    values: list[float | None] = strawberry.field(
        description="Displayed values, as `MeasureSeriesPoint.value` computes them."
    )

    @classmethod
    def from_columns(cls, columns: PointColumns) -> SeriesColumns:
        # Period and Count are NewTypes of str and int: the read lists are used as they are.
        return cls(
            periods=cast(list[Period], columns.periods),
            numerators=cast(list[Count | None], columns.numerators),
            denominators=cast(list[Count | None], columns.denominators),
            values=columns.values,
        )


def _point(point: SeriesPoint) -> MeasureSeriesPoint:
    return MeasureSeriesPoint(
        period=Period(point.period),
        numerator=None if point.numerator is None else Count(point.numerator),
        denominator=None if point.denominator is None else Count(point.denominator),
        value=point.value,
        annotations=[point.annotation] if point.annotation else [],
        measure_version=point.measure_version,
        status=point.status,
        updated_at=point.updated_at,
        updated_by=point.updated_by,
        receipt_id=(None if point.receipt_id is None else strawberry.ID(str(point.receipt_id))),
    )


def _series_points(root: MeasureSeries) -> list[MeasureSeriesPoint]:
    """``MeasureSeries.points``, built only when selected: a dashboard asking for `columns`
    builds no point objects. A series read as columns (no provenance asked for) goes straight
    from its columns to point objects with the provenance defaults."""
    columns = root.series.read_columns
    if columns is None:
        return [_point(point) for point in root.series.points]
    default = SeriesPoint("", None, None, None, "")
    return [
        MeasureSeriesPoint(
            period=Period(period),
            numerator=None if numerator is None else Count(numerator),
            denominator=None if denominator is None else Count(denominator),
            value=value,
            annotations=[],
            measure_version=default.measure_version,
            status=default.status,
            updated_at=default.updated_at,
            updated_by=default.updated_by,
            receipt_id=None,
        )
        for period, numerator, denominator, value in zip(*columns, strict=True)
    ]


@strawberry.type(
    description=(
        "A team's data points of one measure, oldest period first (only the months reported). "
        "Its run and control charts use gapless months: every month from the first to the last "
        "point, a month without a point being a null value."
    )
)
class MeasureSeries(ChartedSeries):
    """``measure`` and ``columns`` are plain attributes, set when the series is projected, so
    that a dashboard's list of series is completed in one loop (schema/fast_lists.py)."""

    series: strawberry.Private[Series]
    points: list[MeasureSeriesPoint] = strawberry.field(
        description="The points in time order.", resolver=_series_points
    )
    columns: SeriesColumns = strawberry.field(
        description=(
            "The points as parallel columns (period, numerator, denominator, value): the "
            "compact form of `points` for dashboards and long series."
        )
    )
    measure: Measure = strawberry.field(description="The measure, at its current definition.")

    @classmethod
    def from_series(cls, series: Series, measure: Measure) -> MeasureSeries:
        return cls(
            series=series, columns=SeriesColumns.from_columns(series.columns), measure=measure
        )

    @property
    def team_id(self) -> uuid.UUID:
        return self.series.team_id

    @property
    def measure_id(self) -> uuid.UUID:
        return self.series.measure_id

    @strawberry.field(
        description=(
            "The team's PDSA cycles linked to this measure that start within the series (first "
            "to last point), oldest first: each marks its `period` on the run chart."
        )
    )
    async def pdsa_cycles(self, info: Info) -> list[PdsaCycle]:
        periods = cast(list[Period], self.series.columns.periods)
        return await series_pdsa_cycles(info, self.team_id, self.measure_id, periods)

    async def chart_input(self, info: Info) -> ChartInput:
        """The loaded points as charts read them; the measure (scoring, direction, multiplier)
        comes through the batched ``measure_by_id`` loader, so charts add no SQL per series."""
        found = await info.context.loaders.measure_by_id.load(self.measure_id)
        assert found is not None, "series are read for measures of the caller's sponsor"
        definition = found.definition
        return chart_input(
            [
                ChartPointInput(point.period, point.value, point.numerator, point.denominator)
                for point in self.series.points
            ],
            scoring=definition.scoring,
            multiplier=definition.multiplier,
            direction=definition.improvement_direction.value,
        )


PROVENANCE_FIELDS = frozenset(
    {"annotations", "measureVersion", "status", "updatedAt", "updatedBy", "receiptId"}
)
"""Fields of ``MeasureSeriesPoint`` that need the points' provenance columns read."""


def _fields(
    selection_set: SelectionSetNode | None, fragments: dict[str, FragmentDefinitionNode]
) -> Iterator[FieldNode]:
    """The fields of a selection set, fragments (named and inline) looked through."""
    if selection_set is None:
        return
    for selection in selection_set.selections:
        if isinstance(selection, FieldNode):
            yield selection
        elif isinstance(selection, InlineFragmentNode):
            yield from _fields(selection.selection_set, fragments)
        elif isinstance(selection, FragmentSpreadNode):
            fragment = fragments.get(selection.name.value)
            if fragment is not None:
                yield from _fields(fragment.selection_set, fragments)


def _needs_provenance(info: Info) -> bool:
    """Whether the series being resolved show any provenance field of their points (else the
    series are read without those columns: a dashboard's `columns`, charts, plain points).
    Walks the document itself (cheap: called once per team of a dashboard); ``@skip`` and
    ``@include`` are not evaluated, so a skipped field still counts."""
    raw = info._raw_info
    for node in raw.field_nodes:
        for field in _fields(node.selection_set, raw.fragments):
            if field.name.value != "points":
                continue
            for inner in _fields(field.selection_set, raw.fragments):
                if inner.name.value in PROVENANCE_FIELDS:
                    return True
    return False


_MEASURES: weakref.WeakKeyDictionary[object, dict[uuid.UUID, Measure]] = weakref.WeakKeyDictionary()
"""Measure projections built in a request, by its ``measure_by_id`` loader (one per request):
a dashboard's 50 teams share their collaborative's 30 measures."""


async def _projected(info: Info, found: list[Series]) -> list[MeasureSeries]:
    """The series as GraphQL objects, each with its measure: one batched ``measure_by_id``
    load here instead of one awaited resolver per series (the loader still batches every team
    of the level into one statement), one projection per measure and request."""
    if not found:
        return []
    loader = info.context.loaders.measure_by_id
    measures = _MEASURES.get(loader)
    if measures is None:
        measures = _MEASURES[loader] = {}
    ids = [i for i in dict.fromkeys(series.measure_id for series in found) if i not in measures]
    if ids:
        loaded = await loader.load_many(ids)
        for measure_id, row in zip(ids, loaded, strict=True):
            assert row is not None, "series are read for measures of the caller's sponsor"
            if measure_id not in measures:  # the level's other teams awaited the same batch
                measures[measure_id] = Measure.from_model(row)
    return [MeasureSeries.from_series(series, measures[series.measure_id]) for series in found]


@strawberry.type(description="A person on a team, in a role.")
class TeamMember:
    role: TeamRole = strawberry.field(description="Role in the team.")
    person_id: strawberry.Private[uuid.UUID]

    @strawberry.field(description="Who.")
    async def person(self, info: Info) -> Person:
        row = await info.context.loaders.person_by_id.load(self.person_id)
        assert row is not None, "team members reference people of the same sponsor"
        return Person.from_model(row)

    @classmethod
    def from_model(cls, row: TeamMemberModel) -> TeamMember:
        return cls(role=row.role, person_id=row.person_id)


@strawberry.input(description="Filters of a collaborative's teams; all given filters must match.")
class CollaborativeTeamFilter:
    organization: str | None = strawberry.field(default=None, description="Organization code.")
    state: str | None = strawberry.field(
        default=None, description="State of the organization (case-insensitive)."
    )
    search: str | None = strawberry.field(
        default=None, description="Text in the team's code or name or its organization's name."
    )
    active: bool | None = strawberry.field(
        default=None,
        description="True: teams that have not withdrawn; false: teams that have.",
    )

    def to_query(self) -> TeamFilterQuery:
        """The db-layer filter (VALIDATION error for unacceptable text)."""
        check_filter_text(organization=self.organization, state=self.state, search=self.search)
        return TeamFilterQuery(
            organization_code=self.organization,
            state=self.state,
            search=self.search,
            active=self.active,
        )


@strawberry.type(
    description="An organization's improvement team enrolled in one collaborative.",
    directives=[SPONSOR_CODE_KEY],
)
class Team(Node):
    code: str = strawberry.field(description="Code, unique within the sponsor.")
    name: str = strawberry.field(description="Display name.")
    joined_on: date | None = strawberry.field(description="Day the team joined.")
    withdrawn_on: date | None = strawberry.field(description="Day the team withdrew, if it did.")
    row_id: strawberry.Private[uuid.UUID]
    sponsor_id: strawberry.Private[uuid.UUID]
    organization_id: strawberry.Private[uuid.UUID]
    collaborative_id: strawberry.Private[uuid.UUID]

    @classmethod
    def from_model(cls, row: TeamModel) -> Team:
        return cls(
            id=strawberry.ID(encode_global_id("Team", row.id)),
            code=row.code,
            name=row.name,
            joined_on=row.joined_on,
            withdrawn_on=row.withdrawn_on,
            row_id=row.id,
            sponsor_id=row.sponsor_id,
            organization_id=row.organization_id,
            collaborative_id=row.collaborative_id,
        )

    @strawberry.field(description="Slug of the sponsor; with `code` the federation key.")
    async def sponsor_slug(self, info: Info) -> str:
        return await sponsor_slug_of(info, self.sponsor_id)

    @classmethod
    async def resolve_reference(cls, info: Info, **key: str) -> Team | None:
        """The entity of a federation representation (batched per type; own sponsor only)."""
        if entity_sponsor_id(info, key.get("sponsorSlug")) is None:
            return None
        row = await info.context.loaders.team_by_code.load(key.get("code", ""))
        return None if row is None else cls.from_model(row)

    @strawberry.field(
        description="True unless the team has withdrawn (withdrawnOn today or before)."
    )
    def active(self) -> bool:
        return self.withdrawn_on is None or self.withdrawn_on > utcnow().date()

    @strawberry.field(description="The organization the team belongs to.")
    async def organization(self, info: Info) -> Organization:
        row = await info.context.loaders.organization_by_id.load(self.organization_id)
        assert row is not None, "teams reference organizations of the same sponsor"
        return Organization.from_model(row)

    @strawberry.field(description="The collaborative the team is enrolled in.")
    async def collaborative(self, info: Info) -> Collaborative:
        row = await info.context.loaders.collaborative_by_id.load(self.collaborative_id)
        assert row is not None, "teams reference collaboratives of the same sponsor"
        return Collaborative.from_model(row)

    @strawberry.field(description="The team's members, senior leader first.")
    async def members(self, info: Info) -> list[TeamMember]:
        rows = await info.context.loaders.members_by_team_id.load(self.row_id)
        return [TeamMember.from_model(row) for row in rows]

    @strawberry.field(
        description="The team's PDSA cycles, oldest start first.",
        permission_classes=[HasScope("program:read")],
    )
    async def pdsa_cycles(
        self,
        info: Info,
        measure: Annotated[
            str | None, strawberry.argument(description="Only cycles linked to this measure.")
        ] = None,
        from_: Annotated[
            Period | None, strawberry.argument(name="from", description="Starting from.")
        ] = None,
        to: Annotated[Period | None, strawberry.argument(description="Starting until.")] = None,
    ) -> list[PdsaCycle]:
        return await team_pdsa_cycles(info, self.row_id, measure=measure, from_=from_, to=to)

    @strawberry.field(
        description="The team's IHI Assessment Scale scores by month, FACULTY before SELF.",
        permission_classes=[HasScope("program:read")],
    )
    async def assessments(
        self,
        info: Info,
        rater: Annotated[
            AssessmentRater | None, strawberry.argument(description="Only this rater's.")
        ] = None,
        from_: Annotated[
            Period | None, strawberry.argument(name="from", description="First month.")
        ] = None,
        to: Annotated[Period | None, strawberry.argument(description="Last month.")] = None,
    ) -> list[Assessment]:
        return await team_assessments(info, self.row_id, rater=rater, from_=from_, to=to)

    @strawberry.field(
        description=(
            "The team's survey responses, scored: by instrument, then baseline, midpoint, dated "
            "waves, final."
        ),
        permission_classes=[HasScope("program:read")],
    )
    async def survey_responses(
        self,
        info: Info,
        instrument: Annotated[
            str | None, strawberry.argument(description="Only this instrument (code).")
        ] = None,
        wave: Annotated[
            SurveyWave | None, strawberry.argument(description="Only this wave.")
        ] = None,
    ) -> list[SurveyResponse]:
        return await team_survey_responses(info, self.row_id, instrument=instrument, wave=wave)

    @strawberry.field(
        description=(
            "The team's data of one measure (all patients), oldest period first; null when the "
            "sponsor has no such measure."
        ),
        permission_classes=[HasScope("data:read")],
    )
    async def measure_series(
        self,
        info: Info,
        measure: Annotated[str, strawberry.argument(description="Measure code.")],
        from_: Annotated[
            Period | None, strawberry.argument(name="from", description="First period.")
        ] = None,
        to: Annotated[Period | None, strawberry.argument(description="Last period.")] = None,
    ) -> MeasureSeries | None:
        self._check_series_access(info)
        if not findable_code(measure):
            return None
        key = SeriesKey(
            team_id=self.row_id,
            measure_code=measure,
            from_period=from_,
            to_period=to,
            provenance=_needs_provenance(info),
        )
        found = await info.context.loaders.series_by_key.load(key)
        return (await _projected(info, found[:1]))[0] if found else None

    @strawberry.field(
        description=(
            "The team's series of every measure in its collaborative's measure set (in the set's "
            "order), or of the measures named; unknown codes are left out."
        ),
        permission_classes=[HasScope("data:read")],
    )
    async def series(
        self,
        info: Info,
        measures: Annotated[
            list[str] | None,
            strawberry.argument(description="Measure codes; omitted: the whole measure set."),
        ] = None,
        from_: Annotated[
            Period | None, strawberry.argument(name="from", description="First period.")
        ] = None,
        to: Annotated[Period | None, strawberry.argument(description="Last period.")] = None,
        last: Annotated[
            int | None,
            strawberry.argument(description="Keep only the last N points of each series."),
        ] = None,
    ) -> list[MeasureSeries] | None:
        self._check_series_access(info)
        if last is not None and last < 0:
            raise invalid_argument("last must not be negative")
        loader = info.context.loaders.series_by_key
        provenance = _needs_provenance(info)
        if measures is None:
            found = await loader.load(SeriesKey(self.row_id, None, from_, to, last, provenance))
            return await _projected(info, found)
        codes = list(dict.fromkeys(measures))
        if len(codes) > MAX_SERIES_MEASURES:
            raise invalid_argument(f"name at most {MAX_SERIES_MEASURES} measures")
        codes = [code for code in codes if findable_code(code)]
        groups = await loader.load_many(
            [SeriesKey(self.row_id, code, from_, to, last, provenance) for code in codes]
        )
        return await _projected(info, [series for group in groups for series in group])

    def _check_series_access(self, info: Info) -> None:
        """Team-bound clients (EHR integrations) read only their own teams' data."""
        principal = require_principal(info)
        if principal.is_team_bound and self.row_id not in principal.team_ids:
            raise forbidden("this client may read the data of its own teams only")


@strawberry.type(
    description="A hospital, clinic or practice (a site).", directives=[SPONSOR_CODE_KEY]
)
class Organization(Node):
    code: str = strawberry.field(description="Code, unique within the sponsor.")
    name: str = strawberry.field(description="Display name.")
    city: str = strawberry.field(description="City.")
    state: str = strawberry.field(description="State or province.")
    region: str = strawberry.field(description="Region (as the sponsor divides its territory).")
    row_id: strawberry.Private[uuid.UUID]
    sponsor_id: strawberry.Private[uuid.UUID]

    @classmethod
    def from_model(cls, row: OrganizationModel) -> Organization:
        return cls(
            id=strawberry.ID(encode_global_id("Organization", row.id)),
            code=row.code,
            name=row.name,
            city=row.city,
            state=row.state,
            region=row.region,
            row_id=row.id,
            sponsor_id=row.sponsor_id,
        )

    @strawberry.field(description="Slug of the sponsor; with `code` the federation key.")
    async def sponsor_slug(self, info: Info) -> str:
        return await sponsor_slug_of(info, self.sponsor_id)

    @classmethod
    async def resolve_reference(cls, info: Info, **key: str) -> Organization | None:
        """The entity of a federation representation (batched per type; own sponsor only)."""
        if entity_sponsor_id(info, key.get("sponsorSlug")) is None:
            return None
        row = await info.context.loaders.organization_by_code.load(key.get("code", ""))
        return None if row is None else cls.from_model(row)

    @strawberry.field(
        description="The organization's teams (one per collaborative it joined), by code.",
        permission_classes=[HasScope("program:read")],
    )
    async def teams(
        self, info: Info, first: int | None = None, after: str | None = None
    ) -> Connection[Team]:
        size, keyset = page_request(info, order=ORGANIZATION_TEAMS_ORDER, first=first, after=after)
        page = await info.context.loaders.teams_page_by_organization_id.load(
            TeamPageKey(parent_id=self.row_id, first=size, after=keyset)
        )
        return to_connection(
            page, order=ORGANIZATION_TEAMS_ORDER, project=Team.from_model, after=keyset is not None
        )


def page_request(
    info: Info, *, order: str, first: int | None, after: str | None
) -> tuple[int, Keyset | None]:
    """Page size and cursor of a team list ordered by code (a cursor must hold a code)."""
    size, keyset = generic_page_request(info, order=order, first=first, after=after)
    if keyset is not None and not isinstance(keyset.value, str):
        raise invalid_argument("invalid cursor: malformed cursor")
    return size, keyset


async def collaborative_teams(
    info: Info,
    collaborative_id: uuid.UUID,
    *,
    first: int | None,
    after: str | None,
    filter: CollaborativeTeamFilter | None,
) -> Connection[Team]:
    """A page of the teams enrolled in a collaborative, by code (``Collaborative.teams``)."""
    size, keyset = page_request(info, order=COLLABORATIVE_TEAMS_ORDER, first=first, after=after)
    query_filter = filter.to_query() if filter is not None else TeamFilterQuery()
    page = await info.context.loaders.teams_page_by_collaborative_id.load(
        TeamPageKey(parent_id=collaborative_id, first=size, after=keyset, filter=query_filter)
    )
    return to_connection(
        page, order=COLLABORATIVE_TEAMS_ORDER, project=Team.from_model, after=keyset is not None
    )
