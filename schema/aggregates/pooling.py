"""Which sponsors' data an aggregate pools, under which measure, filter and suppression.

An aggregate names a measure of one sponsor (the caller's own unless ``sponsor`` says otherwise)
and, in ``scope.sponsors``, the sponsors to pool. Each sponsor contributes:

* the caller's own sponsor — its measure (or the one equivalent to the measure asked for), with
  the suppression :func:`~schema.aggregates.access.aggregate_access` gives the caller;
* another sponsor — only under agreements in force from it to the caller's sponsor that name
  the measure; only the collaboratives they name; suppressed by the strictest of their policies
  (a TEAM_IDENTIFIED agreement shows values as the grantor sees them). Without such an agreement
  it contributes nothing, as if it did not exist.

Across sponsors only equivalent measures are pooled (:func:`db.queries.sharing.equivalent_measure`:
linked by both sides or sharing a FHIR canonical), and only when they are scored alike; the
aggregate lists what it pooled in ``pooledDefinitions``.
"""

from __future__ import annotations

import logging
import statistics
import uuid
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, replace

from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncSession

from analytics.suppression import SuppressionPolicy
from db.queries.aggregates import (
    AggregateFilter,
    PartTotals,
    aggregate_parts,
    median_team_values,
    team_values,
)
from db.queries.measures import VersionedMeasure
from db.queries.rollups import Refresh, rolled_up_parts, store_refresh, waiting_briefly
from db.queries.sharing import EquivalenceBasis, Grant, equivalent_measure
from schema.aggregates.access import aggregate_access
from schema.context import Info
from schema.permissions import require_principal
from schema.sharing.access import exact_level, grants_from, log_reads, strictest
from schema.sharing.types import EquivalenceBasis as EquivalenceBasisEnum
from schema.sharing.types import PooledDefinition

logger = logging.getLogger("collabx.graphql")


@dataclass(frozen=True)
class SponsorRef:
    """A sponsor taking part in an aggregate."""

    id: uuid.UUID
    slug: str


@dataclass(frozen=True)
class Contribution:
    """One sponsor's part of an aggregate."""

    sponsor: SponsorRef
    measure: VersionedMeasure
    basis: EquivalenceBasis
    grants: Sequence[Grant]
    collaborative_ids: frozenset[uuid.UUID] | None
    policy: SuppressionPolicy | None

    @property
    def shared(self) -> bool:
        """True for another sponsor's data read under agreements."""
        return bool(self.grants)

    def definition(self) -> PooledDefinition:
        return PooledDefinition(
            sponsor_slug=self.sponsor.slug,
            measure_code=self.measure.measure.code,
            version=self.measure.definition.version,
            name=self.measure.definition.name,
            fhir_canonical=self.measure.definition.fhir_canonical,
            basis=EquivalenceBasisEnum(self.basis),
        )


def _alike(first: VersionedMeasure, other: VersionedMeasure) -> bool:
    """Whether two definitions can be pooled: same scoring and multiplier."""
    a, b = first.definition, other.definition
    return a.scoring is b.scoring and a.multiplier == b.multiplier


async def contributions(
    info: Info,
    session: AsyncSession,
    *,
    measure: VersionedMeasure,
    sponsors: Sequence[SponsorRef],
    own_team_ids: frozenset[uuid.UUID] | None,
) -> list[Contribution] | None:
    """Each sponsor's contribution (sponsors without one are left out). None when the measure
    itself is another sponsor's that no agreement in force shares with the caller."""
    principal = require_principal(info)
    grants = await grants_from(
        info, session, [sponsor.id for sponsor in sponsors] + [measure.measure.sponsor_id]
    )
    owner = measure.measure.sponsor_id
    if owner != principal.sponsor_id and not any(
        grant.covers_measure(measure.measure.id) for grant in grants[owner]
    ):
        return None
    found: list[Contribution] = []
    for sponsor in sponsors:
        equivalent = await equivalent_measure(session, measure, sponsor.id)
        if equivalent is None or not _alike(measure, equivalent[0]):
            continue
        their_measure, basis = equivalent
        if sponsor.id == principal.sponsor_id:
            access = aggregate_access(principal, sponsor_id=sponsor.id, scope_team_ids=own_team_ids)
            found.append(Contribution(sponsor, their_measure, basis, [], None, access.policy))
            continue
        covering = [g for g in grants[sponsor.id] if g.covers_measure(their_measure.measure.id)]
        if not covering:
            continue
        collaborative_ids: frozenset[uuid.UUID] | None = None
        if not any(grant.all_collaboratives for grant in covering):
            collaborative_ids = frozenset().union(*(g.collaborative_ids for g in covering))
        policy = strictest(g.policy for g in covering if not exact_level(g.level))
        found.append(
            Contribution(sponsor, their_measure, basis, covering, collaborative_ids, policy)
        )
    return found


@dataclass(frozen=True)
class PooledData:
    """The per-collaborative period totals and the median team values of every contribution,
    keyed by the measure asked for, and the rollups the read recomputed (to be stored with
    :func:`store_refreshes` once the read's session is closed)."""

    parts: list[PartTotals]
    medians: dict[tuple[uuid.UUID, str], float]
    teams_read: dict[uuid.UUID, int]
    refreshes: list[Refresh]


async def pooled_data(
    session: AsyncSession,
    measure_id: uuid.UUID,
    found: Sequence[Contribution],
    filter: AggregateFilter,
) -> PooledData:
    """Sums per sponsor from the monthly rollups (from the data points for named teams); the
    median of one collaborative's teams is stored with its rollups, a median across several
    collaboratives or sponsors is taken over every team value of the period."""
    parts: list[PartTotals] = []
    teams_read: dict[uuid.UUID, int] = {}
    values: defaultdict[str, list[float]] = defaultdict(list)
    medians: dict[tuple[uuid.UUID, str], float] = {}
    refreshes: list[Refresh] = []
    for contribution in found:
        their_filter = replace(filter, collaborative_ids=contribution.collaborative_ids)
        ids = [contribution.measure.measure.id]
        sponsor_id = contribution.sponsor.id
        rolled = await rolled_up_parts(session, sponsor_id, ids, filter=their_filter)
        if rolled is None:
            their_parts = await aggregate_parts(session, sponsor_id, ids, filter=their_filter)
        else:
            their_parts = rolled.parts
            if rolled.refresh is not None:
                refreshes.append(rolled.refresh)
        parts.extend(replace(part, measure_id=measure_id) for part in their_parts)
        per_period: defaultdict[str, int] = defaultdict(int)
        parts_per_period: defaultdict[str, int] = defaultdict(int)
        for part in their_parts:
            per_period[part.period] += part.teams_reporting
            parts_per_period[part.period] += 1
        teams_read[sponsor_id] = max(per_period.values(), default=0)
        if len(found) > 1:
            for row in await team_values(session, sponsor_id, ids, filter=their_filter):
                if row.value is not None:
                    values[row.period].append(row.value)
        elif rolled is not None and all(count == 1 for count in parts_per_period.values()):
            # One collaborative per period: its stored median is the period's median.
            for (_, period, _), median in rolled.cell_medians.items():
                medians[(measure_id, period)] = median
        else:
            for (_, period), median in (
                await median_team_values(session, sponsor_id, ids, filter=their_filter)
            ).items():
                medians[(measure_id, period)] = median
    for period, period_values in values.items():
        medians[(measure_id, period)] = statistics.median(period_values)
    parts.sort(key=lambda part: (part.period, str(part.collaborative_id)))
    return PooledData(parts=parts, medians=medians, teams_read=teams_read, refreshes=refreshes)


async def store_refreshes(info: Info, refreshes: Sequence[Refresh]) -> None:
    """Store the rollups a read recomputed, in a write transaction of their own that waits at
    most a quarter second for another writer's locks. A failure is logged, not raised: the
    answer is already computed, and the series stays marked changed, so the next read (or the
    maintenance pass) recomputes it."""
    if not refreshes:
        return
    try:
        async with info.context.db.begin() as session, waiting_briefly(session):
            for refresh in refreshes:
                await store_refresh(session, refresh)
    except SQLAlchemyError:
        logger.warning("aggregate rollups not stored; the next read recomputes them", exc_info=True)


async def log_shared_reads(
    info: Info,
    found: Sequence[Contribution],
    *,
    collaborative_codes: Sequence[str],
    teams_read: dict[uuid.UUID, int],
) -> None:
    """One access-log row per agreement an aggregate drew on."""
    for contribution in found:
        if contribution.shared:
            await log_reads(
                info,
                contribution.grants,
                operation="aggregate",
                collaborative_codes=collaborative_codes,
                measure_code=contribution.measure.measure.code,
                teams_read=teams_read,
            )
