"""GraphQL projections of collaboratives, phases and staff."""

from __future__ import annotations

import uuid
from datetime import date
from typing import TYPE_CHECKING, Annotated

import strawberry

from analytics.charts import RunChartRules
from db.enums import AssessmentRater, CollaborativeStatus, PhaseKind, StaffRole
from db.models import Collaborative as CollaborativeModel
from db.models import Phase as PhaseModel
from db.models import StaffAssignment
from schema.aggregates.access import aggregate_access
from schema.aggregates.types import Scorecard, collaborative_scorecard
from schema.assessments.types import AssessmentSummary, assessment_summary
from schema.catalog.types import Resource, collaborative_resources
from schema.change_package.types import ChangePackage
from schema.context import Info
from schema.federation import SPONSOR_CODE_KEY, entity_sponsor_id, sponsor_slug_of
from schema.ids import encode_global_id
from schema.measures.types import CollaborativeMeasure, measure_set_connection
from schema.node import Node
from schema.pagination import Connection
from schema.permissions import HasScope, require_principal
from schema.scalars import Period
from schema.sponsors.types import Person, Sponsor

if TYPE_CHECKING:
    from schema.teams.types import CollaborativeTeamFilter, Team


@strawberry.type(description="A phase of a collaborative.")
class Phase:
    kind: PhaseKind = strawberry.field(description="Kind of phase.")
    seq: int = strawberry.field(description="Order of the phase in the collaborative.")
    name: str = strawberry.field(description="Display name, e.g. 'Learning Session 2'.")
    start_date: date | None = strawberry.field(description="First day.")
    end_date: date | None = strawberry.field(description="Last day.")

    @classmethod
    def from_model(cls, row: PhaseModel) -> Phase:
        return cls(
            kind=row.kind,
            seq=row.seq,
            name=row.name,
            start_date=row.start_date,
            end_date=row.end_date,
        )


@strawberry.type(description="A person serving a collaborative in a staff role.")
class StaffMember:
    role: StaffRole = strawberry.field(description="Staff role.")
    person_id: strawberry.Private[uuid.UUID]

    @strawberry.field(description="Who.")
    async def person(self, info: Info) -> Person:
        row = await info.context.loaders.person_by_id.load(self.person_id)
        assert row is not None, "staff rows reference people of the same sponsor"
        return Person.from_model(row)

    @classmethod
    def from_model(cls, row: StaffAssignment) -> StaffMember:
        return cls(role=row.role, person_id=row.person_id)


@strawberry.type(
    description="A 6-15 month learning system on one topic (a program).",
    directives=[SPONSOR_CODE_KEY],
)
class Collaborative(Node):
    code: str = strawberry.field(description="Code, unique within the sponsor.")
    name: str = strawberry.field(description="Display name.")
    topic: str = strawberry.field(description="Clinical or improvement topic.")
    aim: str = strawberry.field(description="Aim statement (what, how much, by when).")
    description: str = strawberry.field(description="Longer description.")
    status: CollaborativeStatus = strawberry.field(description="Life-cycle status.")
    start_date: date | None = strawberry.field(description="First day of the program.")
    end_date: date | None = strawberry.field(description="Last day of the program.")
    row_id: strawberry.Private[uuid.UUID]
    sponsor_id: strawberry.Private[uuid.UUID]

    @classmethod
    def from_model(cls, row: CollaborativeModel) -> Collaborative:
        return cls(
            id=strawberry.ID(encode_global_id("Collaborative", row.id)),
            code=row.code,
            name=row.name,
            topic=row.topic,
            aim=row.aim,
            description=row.description,
            status=row.status,
            start_date=row.start_date,
            end_date=row.end_date,
            row_id=row.id,
            sponsor_id=row.sponsor_id,
        )

    @strawberry.field(description="Slug of the sponsor; with `code` the federation key.")
    async def sponsor_slug(self, info: Info) -> str:
        return await sponsor_slug_of(info, self.sponsor_id)

    @classmethod
    async def resolve_reference(cls, info: Info, **key: str) -> Collaborative | None:
        """The entity of a federation representation (batched per type; own sponsor only)."""
        if entity_sponsor_id(info, key.get("sponsorSlug")) is None:
            return None
        row = await info.context.loaders.collaborative_by_code.load(key.get("code", ""))
        return None if row is None else cls.from_model(row)

    @strawberry.field(description="The sponsor running the collaborative.")
    async def sponsor(self, info: Info) -> Sponsor:
        row = await info.context.loaders.sponsor_by_id.load(self.sponsor_id)
        assert row is not None
        return Sponsor.from_model(row)

    @strawberry.field(description="Phases in order.")
    async def phases(self, info: Info) -> list[Phase]:
        rows = await info.context.loaders.phases_by_collaborative_id.load(self.row_id)
        return [Phase.from_model(row) for row in rows]

    @strawberry.field(description="The collaborative's staff.")
    async def staff(self, info: Info) -> list[StaffMember]:
        rows = await info.context.loaders.staff_by_collaborative_id.load(self.row_id)
        return [StaffMember.from_model(row) for row in rows]

    @strawberry.field(
        description=(
            "The measure set, ordered by position: each measure with whether it is required and "
            "the collaborative's goal line."
        )
    )
    async def measures(
        self, info: Info, first: int | None = None, after: str | None = None
    ) -> Connection[CollaborativeMeasure]:
        return await measure_set_connection(info, self.row_id, first=first, after=after)

    @strawberry.field(
        description="Catalog resources linked to the collaborative, by title.",
        permission_classes=[HasScope("catalog:read")],
    )
    async def resources(
        self, info: Info, first: int | None = None, after: str | None = None
    ) -> Connection[Resource]:
        return await collaborative_resources(info, self.row_id, first=first, after=after)

    @strawberry.field(
        description=(
            "The change package: change concepts tagged with Care Model domains, each with the "
            "change ideas teams test in PDSA cycles."
        ),
        permission_classes=[HasScope("program:read")],
    )
    def change_package(self) -> ChangePackage:
        return ChangePackage(collaborative_id=self.row_id)

    @strawberry.field(
        description=(
            "The month's IHI Assessment Scale scores of the teams: distribution, share at 4.0 or "
            "above, faculty-versus-self gaps. Not for team-bound clients (it names teams)."
        ),
        permission_classes=[HasScope("program:read")],
    )
    async def assessment_summary(
        self,
        info: Info,
        period: Annotated[Period, strawberry.argument(description="The month.")],
        rater: Annotated[
            AssessmentRater,
            strawberry.argument(description="Whose scores to count (default FACULTY)."),
        ] = AssessmentRater.FACULTY,
    ) -> AssessmentSummary:
        return await assessment_summary(info, self.row_id, period, rater)

    @strawberry.field(
        description="Teams enrolled in the collaborative, by code.",
        permission_classes=[HasScope("program:read")],
    )
    async def teams(
        self,
        info: Info,
        first: int | None = None,
        after: str | None = None,
        filter: Annotated[CollaborativeTeamFilter, strawberry.lazy("schema.teams.types")]
        | None = None,
    ) -> Connection[Annotated[Team, strawberry.lazy("schema.teams.types")]]:
        from schema.teams.types import collaborative_teams  # teams.types imports this module

        return await collaborative_teams(info, self.row_id, first=first, after=after, filter=filter)

    @strawberry.field(
        description=(
            "Where the collaborative stands in a period, per measure of its set: teams "
            "reporting, pooled rate, goal, teams meeting it, teams whose own series shows an "
            "improvement signal, and the signals of the collaborative's series. Needs "
            "program:read and aggregate:read."
        ),
        permission_classes=[HasScope("program:read"), HasScope("aggregate:read")],
    )
    async def scorecard(
        self,
        info: Info,
        period: Annotated[
            Period | None,
            strawberry.argument(description="The month; omitted: the latest with data."),
        ] = None,
        rules: Annotated[
            RunChartRules,
            strawberry.argument(description="Run-chart rules for the signals (default ANHOEJ)."),
        ] = RunChartRules.ANHOEJ,
    ) -> Scorecard:
        access = aggregate_access(require_principal(info), sponsor_id=self.sponsor_id)
        return await collaborative_scorecard(
            info, collaborative_id=self.row_id, period=period, rules=rules, access=access
        )
