"""Query ``aggregate(measure, scope, from, to, stratum)`` (scope aggregate:read).

The aggregation runs in SQL (``db.queries.aggregates``: per-period sums and medians); only a few
rows per period reach Python. Who sees exact values and who sees suppressed ones is decided by
:func:`schema.aggregates.access.aggregate_access`.
"""

from __future__ import annotations

import uuid
from typing import Annotated

import strawberry
from sqlalchemy.ext.asyncio import AsyncSession

from db.queries.aggregates import AggregateFilter, collaborative_goal
from db.queries.collaboratives import get_collaborative_by_code
from db.queries.measures import get_measure_by_code, get_measure_with_goal
from db.queries.sponsors import sponsors_by_slugs
from schema.aggregates.access import AggregateAccess
from schema.aggregates.pooling import (
    Contribution,
    SponsorRef,
    contributions,
    log_shared_reads,
    pooled_data,
    store_refreshes,
)
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
from schema.sharing.access import strictest
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
            "sponsor's own staff see small counts suppressed (see `exact`); other sponsors' "
            "data are pooled as their sharing agreements allow (see `scope.sponsors`). Null "
            "when the measure does not exist or is another sponsor's that is not shared."
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
        sponsor: Annotated[
            str | None,
            strawberry.argument(
                description=(
                    "Slug of the sponsor whose measure code `measure` is; default the caller's "
                    "own (or the one sponsor `scope.sponsors` names). Another sponsor's measure "
                    "is visible only when an agreement in force shares it."
                )
            ),
        ] = None,
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
        owner_slug = _measure_sponsor(principal, sponsor, sponsors)
        if not findable_code(measure) or not findable_code(owner_slug):
            return None
        participants = sponsors if sponsors is not None else frozenset({owner_slug})
        own_teams = await _own_team_ids(info, principal, teams)
        single = next(iter(collaboratives)) if collaboratives and len(collaboratives) == 1 else None
        async with info.context.read_db() as session:
            by_slug = await _sponsors(session, principal, participants | {owner_slug})
            owner = by_slug.get(owner_slug)
            if owner is None:
                return None
            own_goal: float | None = None
            if single is not None and owner.id == principal.sponsor_id:
                # The caller's own collaborative: its goal line is always visible, so it is
                # read with the measure.
                with_goal = await get_measure_with_goal(session, owner.id, measure, single)
                found = None if with_goal is None else with_goal[0]
                own_goal = None if with_goal is None else with_goal[2]
            else:
                found = await get_measure_by_code(session, owner.id, measure)
            if found is None:
                return None
            pooled = await contributions(
                info,
                session,
                measure=found,
                sponsors=[by_slug[slug] for slug in sorted(participants) if slug in by_slug],
                own_team_ids=own_teams,
            )
            if pooled is None:
                return None
            policy = strictest(c.policy for c in pooled if c.policy is not None)
            if teams is not None and any(c.shared for c in pooled):
                raise forbidden(
                    "aggregates of named teams are team-identified: another sponsor's data are "
                    "aggregated by whole collaboratives only (see sharedTeamSeries)"
                )
            if policy is not None and teams is not None:
                raise forbidden(
                    "aggregates of named teams are team-identified: this reader may aggregate "
                    "whole collaboratives only"
                )
            if policy is not None and stratum:
                raise forbidden(
                    "stratified aggregates are not available to this reader (a stratum could be "
                    "recomputed from the total and the other strata)"
                )
            facts = MeasureFacts.of(found)
            goal = own_goal
            if (
                single is not None
                and owner.id != principal.sponsor_id
                and await _goal_visible(session, principal, owner, pooled, single)
            ):
                _, goal = await collaborative_goal(session, owner.id, single, facts.measure_id)
            filter = AggregateFilter(
                collaborative_codes=collaboratives,
                team_codes=teams,
                from_period=from_,
                to_period=to,
                stratum=stratum,
            )
            data = await pooled_data(session, facts.measure_id, pooled, filter)
        await store_refreshes(info, data.refreshes)
        await log_shared_reads(
            info,
            pooled,
            collaborative_codes=sorted(collaboratives or ()),
            teams_read=data.teams_read,
        )
        access = (
            AggregateAccess(None, "exact for every sponsor pooled")
            if policy is None
            else AggregateAccess(policy, "suppressed for at least one sponsor pooled")
        )
        return AggregateSeries(
            measure=Measure.from_model(found),
            stratum=stratum,
            goal=goal,
            exact=access.exact,
            suppression_policy=SuppressionPolicyInfo.from_policy(access.policy),
            points=aggregate_points(
                facts, data.parts, data.medians, access=access, goal_applies=single is not None
            ),
            pooled_definitions=[c.definition() for c in pooled],
            facts=facts,
        )


async def _goal_visible(
    session: AsyncSession,
    principal: Principal,
    owner: SponsorRef,
    pooled: list[Contribution],
    collaborative: str,
) -> bool:
    """Whether the caller may see the goal line of the owner's ``collaborative``: its own, or
    one an agreement it reads the owner's data under names."""
    if owner.id == principal.sponsor_id:
        return True
    shared = next((c for c in pooled if c.sponsor.id == owner.id), None)
    if shared is None:
        return False
    if shared.collaborative_ids is None:
        return True
    found = await get_collaborative_by_code(session, owner.id, collaborative)
    return found is not None and found.id in shared.collaborative_ids


async def _sponsors(
    session: AsyncSession, principal: Principal, slugs: frozenset[str]
) -> dict[str, SponsorRef]:
    """The sponsors named, by slug (no statement when only the caller's own is named)."""
    if slugs == {principal.sponsor_slug}:
        return {principal.sponsor_slug: SponsorRef(principal.sponsor_id, principal.sponsor_slug)}
    found = await sponsors_by_slugs(session, slugs)
    return {slug: SponsorRef(row.id, row.slug) for slug, row in found.items()}


def _measure_sponsor(
    principal: Principal, sponsor: str | None, sponsors: frozenset[str] | None
) -> str:
    """Whose measure code ``measure`` is: ``sponsor`` when given; else the caller's own, unless
    the scope names exactly one other sponsor."""
    if sponsor is not None:
        return sponsor
    if sponsors is not None and len(sponsors) == 1 and principal.sponsor_slug not in sponsors:
        return next(iter(sponsors))
    return principal.sponsor_slug
