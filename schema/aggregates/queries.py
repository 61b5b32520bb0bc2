"""Query ``aggregate(measure, scope, from, to, stratum)`` (scope aggregate:read).

The aggregation runs in SQL (``db.queries.aggregates``: per-period sums and medians); only a few
rows per period reach Python. Who sees exact values and who sees suppressed ones is decided by
:func:`schema.aggregates.access.aggregate_access`.
"""

from __future__ import annotations

import uuid
from typing import Annotated

import strawberry

from db.queries.aggregates import (
    AggregateFilter,
    aggregate_parts,
    collaborative_goal,
    median_team_values,
)
from db.queries.measures import get_measure_by_code
from schema.aggregates.access import aggregate_access
from schema.aggregates.types import (
    AggregateScope,
    AggregateSeries,
    MeasureFacts,
    SuppressionPolicyInfo,
    aggregate_points,
)
from schema.context import Info
from schema.errors import forbidden, invalid_argument
from schema.measures.types import Measure
from schema.permissions import HasScope, require_principal
from schema.principal import Principal
from schema.scalars import Period
from schema.teams.types import findable_code

MAX_SCOPE_CODES = 100
"""Most codes one list of a scope may name."""
STRATUM_LENGTH = 64
"""Longest stratum (as stored)."""


def _codes(name: str, codes: list[str] | None) -> frozenset[str] | None:
    """A scope list as a set of codes that can exist (VALIDATION error when too long)."""
    if codes is None:
        return None
    if len(codes) > MAX_SCOPE_CODES:
        raise invalid_argument(f"scope.{name} names at most {MAX_SCOPE_CODES} codes")
    return frozenset(code for code in codes if findable_code(code))


async def _own_team_ids(
    info: Info, principal: Principal, team_codes: frozenset[str] | None
) -> frozenset[uuid.UUID] | None:
    """For a team-bound reader naming only its own teams: their ids (else None)."""
    if not principal.is_team_bound or not team_codes:
        return None
    bound = await info.context.loaders.team_by_id.load_many(sorted(principal.team_ids))
    ids = {team.code: team.id for team in bound if team is not None}
    if not team_codes <= ids.keys():
        return None
    return frozenset(ids[code] for code in team_codes)


@strawberry.type
class AggregateQueries:
    @strawberry.field(
        description=(
            "A measure aggregated across teams per month: teams reporting, Σ numerators and "
            "denominators, pooled rate, mean and median of team values, teams meeting the goal, "
            "with run and control charts. Computed in the database. Readers other than the "
            "sponsor's own staff see small counts suppressed (see `exact`). Null when the "
            "caller's sponsor has no such measure."
        ),
        permission_classes=[HasScope("aggregate:read")],
    )
    async def aggregate(
        self,
        info: Info,
        measure: Annotated[str, strawberry.argument(description="Measure code.")],
        scope: Annotated[
            AggregateScope | None,
            strawberry.argument(description="Which teams; omitted: all of the sponsor's."),
        ] = None,
        from_: Annotated[
            Period | None, strawberry.argument(name="from", description="First period.")
        ] = None,
        to: Annotated[Period | None, strawberry.argument(description="Last period.")] = None,
        stratum: Annotated[
            str, strawberry.argument(description="Stratum; '' (default) for all patients.")
        ] = "",
    ) -> AggregateSeries | None:
        principal = require_principal(info)
        scope = scope or AggregateScope()
        if len(stratum) > STRATUM_LENGTH:
            raise invalid_argument(f"stratum is longer than {STRATUM_LENGTH} characters")
        if from_ is not None and to is not None and from_ > to:
            raise invalid_argument("from is after to")
        collaboratives = _codes("collaboratives", scope.collaboratives)
        teams = _codes("teams", scope.teams)
        sponsors = _codes("sponsors", scope.sponsors)
        if not findable_code(measure):
            return None
        sponsor_id = principal.sponsor_id
        own_teams = await _own_team_ids(info, principal, teams)
        access = aggregate_access(
            principal,
            sponsor_id=sponsor_id,
            scope_team_ids=own_teams,
        )
        if not access.exact and teams is not None:
            raise forbidden(
                "aggregates of named teams are team-identified: this reader may aggregate whole "
                "collaboratives only"
            )
        if not access.exact and stratum:
            raise forbidden(
                "stratified aggregates are not available to this reader (a stratum could be "
                "recomputed from the total and the other strata)"
            )
        visible = sponsors is None or principal.sponsor_slug in sponsors
        single = next(iter(collaboratives)) if collaboratives and len(collaboratives) == 1 else None
        async with info.context.db() as session:
            found = await get_measure_by_code(session, sponsor_id, measure)
            if found is None:
                return None
            facts = MeasureFacts.of(found)
            goal = None
            if single is not None:
                _, goal = await collaborative_goal(session, sponsor_id, single, facts.measure_id)
            parts, medians = [], {}
            if visible:
                filter = AggregateFilter(
                    collaborative_codes=collaboratives,
                    team_codes=teams,
                    from_period=from_,
                    to_period=to,
                    stratum=stratum,
                )
                ids = [facts.measure_id]
                parts = await aggregate_parts(session, sponsor_id, ids, filter=filter)
                medians = await median_team_values(session, sponsor_id, ids, filter=filter)
        return AggregateSeries(
            measure=Measure.from_model(found),
            stratum=stratum,
            goal=goal,
            exact=access.exact,
            suppression_policy=SuppressionPolicyInfo.from_policy(access.policy),
            points=aggregate_points(
                facts, parts, medians, access=access, goal_applies=single is not None
            ),
            facts=facts,
        )
