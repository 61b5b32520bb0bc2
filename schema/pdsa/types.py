"""GraphQL projection of PDSA cycles, a team's list of them, and their marks on measure series.

A cycle marks the run chart of every measure it names, in the month it starts (``period``):
``MeasureSeries.pdsaCycles`` lists the team's cycles linked to the series' measure that start
between the series' first and last point — exactly the months its chart shows, whether the
series was cut with ``from``/``to`` or ``last``. Points' ``annotations`` stay the free-text notes
reported with the data; cycles are structured (title, act, links) so dashboards can draw and
link them. All of it is batched: one statement for the cycles of every series of a query.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import date, datetime
from typing import TYPE_CHECKING, Annotated

import strawberry

from db.base import utcnow
from db.enums import PdsaAct, PdsaStatus
from db.models import PdsaCycle as PdsaCycleModel
from db.queries.content import cycle_period
from schema.change_package.types import ChangeIdea
from schema.context import Info
from schema.ids import encode_global_id
from schema.measures.types import Measure
from schema.node import Node
from schema.scalars import Period
from schema.team_access import check_team_read

if TYPE_CHECKING:
    from schema.teams.types import Team


def cycle_status(row: PdsaCycleModel, today: date) -> PdsaStatus:
    """COMPLETED once the act decision is recorded; IN_PROGRESS once it started or anything of
    the do/study steps is recorded; PLANNED before."""
    if row.act is not None:
        return PdsaStatus.COMPLETED
    if row.start_date <= today or row.what_happened or row.study:
        return PdsaStatus.IN_PROGRESS
    return PdsaStatus.PLANNED


@strawberry.type(
    description=(
        "A Plan-Do-Study-Act cycle: a team's small test of a change, with its prediction, what "
        "happened, the study of the result against the prediction, and the act decision."
    )
)
class PdsaCycle(Node):
    title: str = strawberry.field(description="Short name of the test.")
    aim: str = strawberry.field(description="Plan: what the cycle is for, the question it asks.")
    prediction: str = strawberry.field(description="Plan: what the team expects to happen.")
    plan: str = strawberry.field(description="Plan: who does what, when and where.")
    start_date: date = strawberry.field(description="Plan: first day of the test.")
    end_date: date | None = strawberry.field(description="Plan: last day of the test.")
    what_happened: str = strawberry.field(description="Do: what happened, problems observed.")
    study: str = strawberry.field(description="Study: the result compared with the prediction.")
    act: PdsaAct | None = strawberry.field(
        description="Act: ADOPT, ADAPT, ABANDON or EXPAND; null until decided."
    )
    act_notes: str = strawberry.field(description="Act: the next step.")
    period: Period = strawberry.field(
        description="The month the cycle starts: where it marks the measures' run charts."
    )
    status: PdsaStatus = strawberry.field(
        description="COMPLETED with an act decision, IN_PROGRESS once started, else PLANNED."
    )
    created_at: datetime = strawberry.field(description="When the cycle was recorded.")
    updated_at: datetime = strawberry.field(description="When the cycle last changed.")
    updated_by: str = strawberry.field(description="Client that last wrote the cycle.")
    row_id: strawberry.Private[uuid.UUID]
    team_id: strawberry.Private[uuid.UUID]
    change_idea_id: strawberry.Private[uuid.UUID | None]
    follows_id: strawberry.Private[uuid.UUID | None]

    @classmethod
    def from_model(cls, row: PdsaCycleModel) -> PdsaCycle:
        return cls(
            id=strawberry.ID(encode_global_id("PdsaCycle", row.id)),
            title=row.title,
            aim=row.aim,
            prediction=row.prediction,
            plan=row.plan,
            start_date=row.start_date,
            end_date=row.end_date,
            what_happened=row.what_happened,
            study=row.study,
            act=row.act,
            act_notes=row.act_notes,
            period=Period(cycle_period(row)),
            status=cycle_status(row, utcnow().date()),
            created_at=row.created_at,
            updated_at=row.updated_at,
            updated_by=row.updated_by,
            row_id=row.id,
            team_id=row.team_id,
            change_idea_id=row.change_idea_id,
            follows_id=row.follows_id,
        )

    @strawberry.field(description="The team that ran the cycle.")
    async def team(self, info: Info) -> Annotated[Team, strawberry.lazy("schema.teams.types")]:
        from schema.teams.types import Team  # teams.types imports this module

        row = await info.context.loaders.team_by_id.load(self.team_id)
        assert row is not None, "cycles reference teams of the same sponsor"
        return Team.from_model(row)

    @strawberry.field(description="The change idea of the change package it tests, if any.")
    async def change_idea(self, info: Info) -> ChangeIdea | None:
        if self.change_idea_id is None:
            return None
        row = await info.context.loaders.change_idea_by_id.load(self.change_idea_id)
        return ChangeIdea.from_model(row) if row is not None else None

    @strawberry.field(description="The earlier cycle this one builds on, if any.")
    async def follows(self, info: Info) -> PdsaCycle | None:
        if self.follows_id is None:
            return None
        row = await info.context.loaders.pdsa_cycle_by_id.load(self.follows_id)
        return PdsaCycle.from_model(row) if row is not None else None

    @strawberry.field(description="The later cycles that build on this one, oldest first.")
    async def followed_by(self, info: Info) -> list[PdsaCycle]:
        rows = await info.context.loaders.pdsa_cycles_by_team_id.load(self.team_id)
        return [PdsaCycle.from_model(row) for row in rows if row.follows_id == self.row_id]

    @strawberry.field(description="The measures the cycle is expected to move, by code.")
    async def measures(self, info: Info) -> list[Measure]:
        ids = await info.context.loaders.measure_ids_by_pdsa_cycle_id.load(self.row_id)
        rows = await info.context.loaders.measure_by_id.load_many(ids)
        return [Measure.from_model(row) for row in rows if row is not None]


async def team_pdsa_cycles(
    info: Info, team_id: uuid.UUID, *, measure: str | None, from_: str | None, to: str | None
) -> list[PdsaCycle]:
    """``Team.pdsaCycles``: the team's cycles, oldest start first, optionally only those linked
    to one measure (by code) or starting within [from, to]."""
    check_team_read(info, team_id)
    rows = await info.context.loaders.pdsa_cycles_by_team_id.load(team_id)
    rows = [
        row
        for row in rows
        if (from_ is None or cycle_period(row) >= from_) and (to is None or cycle_period(row) <= to)
    ]
    if measure is not None:
        linked = await info.context.loaders.measure_ids_by_pdsa_cycle_id.load_many(
            [row.id for row in rows]
        )
        found = await info.context.loaders.measure_by_id.load_many(
            list({i for ids in linked for i in ids})
        )
        wanted = {m.measure.id for m in found if m is not None and m.measure.code == measure}
        rows = [row for row, ids in zip(rows, linked, strict=True) if wanted & set(ids)]
    return [PdsaCycle.from_model(row) for row in rows]


async def series_pdsa_cycles(
    info: Info, team_id: uuid.UUID, measure_id: uuid.UUID, periods: Sequence[str]
) -> list[PdsaCycle]:
    """``MeasureSeries.pdsaCycles``: the team's cycles linked to the measure that start between
    the first and the last of ``periods`` (the series' points); none for an empty series."""
    if not periods:
        return []
    first, last = min(periods), max(periods)
    rows = await info.context.loaders.pdsa_cycles_by_team_measure.load((team_id, measure_id))
    return [PdsaCycle.from_model(row) for row in rows if first <= cycle_period(row) <= last]
