"""Reads of another sponsor's data: the grants they rest on, their policy, and their log.

Every cross-sponsor read in the schema goes through here: the ``aggregate`` query (pooled across
sponsors) and ``sharedTeamSeries``. No other resolver reads another sponsor's rows: lookups,
``node``, federation entities, subscriptions, exports and FHIR stay inside the caller's sponsor,
so a grantee can reach shared data only through these two fields.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence

from sqlalchemy.ext.asyncio import AsyncSession

from analytics.suppression import SuppressionPolicy
from db.enums import SharingLevel
from db.queries.sharing import LEVEL_ORDER, AccessRecord, Grant, grants_in_force, record_access
from schema.context import Info
from schema.permissions import require_principal


def strictest(policies: Iterable[SuppressionPolicy]) -> SuppressionPolicy | None:
    """The policy that hides at least what each of ``policies`` hides (None for none)."""
    found = list(policies)
    if not found:
        return None
    return SuppressionPolicy(
        cell_min=max(policy.cell_min for policy in found),
        min_teams=max(policy.min_teams for policy in found),
    )


def best_grant(grants: Sequence[Grant]) -> Grant | None:
    """Of several agreements covering a read, the one of the highest level (the strictest
    policy among those of that level)."""
    if not grants:
        return None
    top = max(LEVEL_ORDER[grant.level] for grant in grants)
    candidates = [grant for grant in grants if LEVEL_ORDER[grant.level] == top]
    return max(candidates, key=lambda g: (g.policy.cell_min, g.policy.min_teams))


async def grants_from(
    info: Info, session: AsyncSession, grantor_ids: Iterable[uuid.UUID]
) -> dict[uuid.UUID, list[Grant]]:
    """The agreements in force now from each grantor to the caller's sponsor."""
    principal = require_principal(info)
    others = [sponsor for sponsor in set(grantor_ids) if sponsor != principal.sponsor_id]
    found: dict[uuid.UUID, list[Grant]] = {sponsor: [] for sponsor in others}
    if not others:
        return found
    for grant in await grants_in_force(
        session, grantee_id=principal.sponsor_id, grantor_ids=others
    ):
        found[grant.grantor_id].append(grant)
    return found


def exact_level(level: SharingLevel) -> bool:
    """True when a level lets the grantee see values as the grantor does."""
    return level is SharingLevel.TEAM_IDENTIFIED


async def log_reads(
    info: Info,
    grants: Sequence[Grant],
    *,
    operation: str,
    collaborative_codes: Sequence[str],
    measure_code: str,
    teams_read: dict[uuid.UUID, int],
) -> None:
    """Record one access-log row per agreement a read rested on, in its own transaction."""
    if not grants:
        return
    principal = require_principal(info)
    records = [
        AccessRecord(
            grant=grant,
            reader_client_id=principal.client_id,
            reader_sponsor_id=principal.sponsor_id,
            operation=operation,
            collaborative_codes=collaborative_codes,
            measure_code=measure_code,
            teams_read=teams_read.get(grant.grantor_id, 0),
            request_id=info.context.request_id,
            detail={},
        )
        for grant in grants
    ]
    async with info.context.db.begin() as session:
        await record_access(session, records)
