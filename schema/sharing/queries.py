"""Queries: ``sharingAgreements``, ``accessLog``, ``sharedTeamSeries``, ``measureEquivalences``.

``sharedTeamSeries`` is the one field that answers another sponsor's team-level data; it reads
only under an agreement in force of level TEAM_DEIDENTIFIED or TEAM_IDENTIFIED that names the
collaborative and the measure, and records every read in the grantor's access log. Anything not
shared answers null, as if it did not exist.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Iterable
from datetime import datetime
from typing import Annotated

import strawberry

from analytics.suppression import Cell, SuppressionPolicy, disclose_group
from db.enums import Scoring, SharingLevel
from db.queries.collaboratives import get_collaborative_by_code
from db.queries.measures import get_measure_by_code
from db.queries.sharing import (
    AgreementRole,
    SharedPoint,
    list_access_log,
    list_agreements,
    list_equivalences,
    pseudonym,
    pseudonym_key,
    shared_points,
)
from db.queries.sponsors import sponsors_by_slugs
from schema.context import Info
from schema.errors import forbidden, invalid_argument
from schema.ids import row_id_of
from schema.pagination import Connection, Edge, PageInfo, page_request, to_connection
from schema.permissions import HasScope, require_principal
from schema.scalars import Count, Period
from schema.sharing.access import best_grant, grants_from, log_reads
from schema.sharing.types import (
    AccessLogEntry,
    MeasureEquivalence,
    SharedTeamPoint,
    SharedTeamSeries,
    SharingAgreement,
    SharingRole,
)
from schema.team_access import HasAnyScope
from schema.teams.types import findable_code

AGREEMENTS_ORDER = "sharingAgreements:CREATED_AT:ASC"
ACCESS_LOG_ORDER = "accessLog:AT:DESC"


def _role(principal_is_admin: bool, role: SharingRole) -> AgreementRole:
    """The agreements a caller may list: a grantor's side needs ``admin``."""
    if role is SharingRole.GRANTOR:
        if not principal_is_admin:
            raise forbidden("listing the agreements a sponsor grants requires the scope 'admin'")
        return "GRANTOR"
    if role is SharingRole.GRANTEE or not principal_is_admin:
        return "GRANTEE"
    return "ANY"


def _team_point(
    point: SharedPoint, multiplier: float
) -> tuple[int | None, int | None, float | None]:
    """A team's numerator, denominator and value as its own series shows them."""
    value = point.value
    if value is None and point.numerator is not None and point.denominator:
        value = point.numerator / point.denominator * multiplier
    return point.numerator, point.denominator, value


def _cell(point: SharedPoint, scoring: Scoring, multiplier: float) -> Cell | None:
    """A team point's suppression cell: its counts, its count for COUNT measures, else None
    (a mean carries no count to protect)."""
    numerator, denominator, value = _team_point(point, multiplier)
    if scoring is Scoring.COUNT:
        return Cell(value, None, None)
    if numerator is None and denominator is None:
        return None
    return Cell(numerator, denominator, None)


def disclosed_points(
    points: list[SharedPoint],
    scoring: Scoring,
    multiplier: float,
    policy: SuppressionPolicy | None,
) -> dict[tuple[uuid.UUID, str], SharedTeamPoint]:
    """Every team point of a collaborative as the grantee may see it, by (team, period).

    Per period, the teams' cells go through :func:`~analytics.suppression.disclose_group` with
    their sum: small counts are hidden, and so are further cells when the hidden ones could be
    recomputed from the period's total (which the grantee may read as an aggregate) minus the
    cells shown. A single team's point is not subject to ``minTeams``. A hidden numerator or
    denominator takes the value derived from it along.
    """
    by_period: defaultdict[str, list[SharedPoint]] = defaultdict(list)
    for point in points:
        by_period[point.period].append(point)
    seen: dict[tuple[uuid.UUID, str], SharedTeamPoint] = {}
    for period, period_points in by_period.items():
        cells = [_cell(point, scoring, multiplier) for point in period_points]
        hidden: dict[int, tuple[bool, bool]] = {}
        present = [(i, cell) for i, cell in enumerate(cells) if cell is not None]
        if policy is not None and present:
            total = Cell(
                _sum(cell.numerator for _, cell in present),
                _sum(cell.denominator for _, cell in present),
                None,
            )
            group = disclose_group(
                [cell for _, cell in present], total, policy, multiplier=multiplier
            )
            for (i, _), shown in zip(present, group.cells, strict=True):
                hidden[i] = (shown.numerator_hidden, shown.denominator_hidden)
        for i, point in enumerate(period_points):
            numerator, denominator, value = _team_point(point, multiplier)
            numerator_hidden, denominator_hidden = hidden.get(i, (False, False))
            if scoring is Scoring.COUNT and numerator_hidden:
                value = None
            if numerator_hidden:
                numerator, value = None, None
            if denominator_hidden:
                denominator, value = None, None
            seen[(point.team_id, period)] = SharedTeamPoint(
                period=Period(period),
                numerator=None if numerator is None else Count(numerator),
                denominator=None if denominator is None else Count(denominator),
                value=value,
                suppressed=numerator_hidden or denominator_hidden,
            )
    return seen


def _sum(values: Iterable[float | None]) -> float | None:
    present = [value for value in values if value is not None]
    return sum(present) if present else None


@strawberry.type
class SharingQueries:
    @strawberry.field(
        description=(
            "Sharing agreements of the caller's sponsor, oldest first: those it receives (any "
            "client with aggregate:read, e.g. a PARTNER) and, with the scope admin, those it "
            "grants."
        ),
        permission_classes=[HasAnyScope("admin", "aggregate:read")],
    )
    async def sharing_agreements(
        self,
        info: Info,
        role: Annotated[
            SharingRole,
            strawberry.argument(description="GRANTOR (admin), GRANTEE, or ANY (both sides)."),
        ] = SharingRole.ANY,
        in_force: Annotated[
            bool, strawberry.argument(description="Only agreements in force now.")
        ] = False,
        first: int | None = None,
        after: str | None = None,
    ) -> Connection[SharingAgreement]:
        principal = require_principal(info)
        visible = _role(principal.has_scope("admin"), role)
        size, keyset = page_request(info, order=AGREEMENTS_ORDER, first=first, after=after)
        if keyset is not None and not isinstance(keyset.value, datetime):
            raise invalid_argument("invalid cursor: malformed cursor")
        async with info.context.db() as session:
            page = await list_agreements(
                session,
                principal.sponsor_id,
                role=visible,
                in_force_only=in_force,
                first=size,
                after=keyset,
            )
        return to_connection(
            page,
            order=AGREEMENTS_ORDER,
            project=SharingAgreement.from_model,
            after=after is not None,
        )

    @strawberry.field(
        description=(
            "Reads of the sponsor's shared data by clients of other sponsors, newest first: who, "
            "what, when, under which agreement."
        ),
        permission_classes=[HasScope("admin")],
    )
    async def access_log(
        self,
        info: Info,
        agreement: Annotated[
            strawberry.ID | None,
            strawberry.argument(description="Only reads under this agreement."),
        ] = None,
        first: int | None = None,
        after: str | None = None,
    ) -> Connection[AccessLogEntry]:
        principal = require_principal(info)
        size, keyset = page_request(info, order=ACCESS_LOG_ORDER, first=first, after=after)
        if keyset is not None and not isinstance(keyset.value, datetime):
            raise invalid_argument("invalid cursor: malformed cursor")
        agreement_id: uuid.UUID | None = None
        if agreement is not None:
            agreement_id = row_id_of(str(agreement), "SharingAgreement")
            if agreement_id is None:
                agreement_id = uuid.UUID(int=0)  # matches nothing, like an unknown id
        async with info.context.db() as session:
            page = await list_access_log(
                session, principal.sponsor_id, agreement_id=agreement_id, first=size, after=keyset
            )
        return to_connection(
            page, order=ACCESS_LOG_ORDER, project=AccessLogEntry.from_model, after=after is not None
        )

    @strawberry.field(
        description=(
            "Another sponsor's team series of one measure in one collaborative, as a sharing "
            "agreement in force of level TEAM_DEIDENTIFIED or TEAM_IDENTIFIED allows (the "
            "all-patients stratum). Null when nothing such is shared with the caller's sponsor. "
            "Ordered by team (pseudonym or code); every read is logged for the grantor."
        ),
        permission_classes=[HasScope("aggregate:read")],
    )
    async def shared_team_series(
        self,
        info: Info,
        sponsor: Annotated[str, strawberry.argument(description="The grantor's slug.")],
        collaborative: Annotated[str, strawberry.argument(description="Its collaborative code.")],
        measure: Annotated[str, strawberry.argument(description="Its measure code.")],
        from_: Annotated[
            Period | None, strawberry.argument(name="from", description="First period.")
        ] = None,
        to: Annotated[Period | None, strawberry.argument(description="Last period.")] = None,
        first: int | None = None,
        after: Annotated[
            str | None, strawberry.argument(description="The `team` of the last series seen.")
        ] = None,
    ) -> Connection[SharedTeamSeries] | None:
        principal = require_principal(info)
        size, _ = page_request(info, order="sharedTeamSeries", first=first, after=None)
        if from_ is not None and to is not None and from_ > to:
            raise invalid_argument("from is after to")
        if not all(findable_code(code) for code in (sponsor, collaborative, measure)):
            return None
        async with info.context.db.begin() as session:
            grantor = (await sponsors_by_slugs(session, [sponsor])).get(sponsor)
            if grantor is None or grantor.id == principal.sponsor_id:
                return None
            found_collaborative = await get_collaborative_by_code(
                session, grantor.id, collaborative
            )
            found_measure = await get_measure_by_code(session, grantor.id, measure)
            if found_collaborative is None or found_measure is None:
                return None
            grants = (await grants_from(info, session, [grantor.id]))[grantor.id]
            covering = [
                grant
                for grant in grants
                if grant.allows(SharingLevel.TEAM_DEIDENTIFIED)
                and grant.covers_collaborative(found_collaborative.id)
                and grant.covers_measure(found_measure.measure.id)
            ]
            grant = best_grant(covering)
            if grant is None:
                return None
            teams, points = await shared_points(
                session,
                grantor_id=grantor.id,
                collaborative_id=found_collaborative.id,
                measure_id=found_measure.measure.id,
                from_period=from_,
                to_period=to,
            )
            identified = grant.level is SharingLevel.TEAM_IDENTIFIED
            secret = (
                b""
                if identified
                else await pseudonym_key(session, grantor.id, principal.sponsor_id)
            )
        definition = found_measure.definition
        policy = None if identified else grant.policy
        by_team: defaultdict[uuid.UUID, list[SharedTeamPoint]] = defaultdict(list)
        shown = disclosed_points(points, definition.scoring, definition.multiplier, policy)
        for point in points:  # in (team, period) order
            by_team[point.team_id].append(shown[(point.team_id, point.period)])
        series = sorted(
            (
                SharedTeamSeries(
                    team=code if identified else pseudonym(secret, team_id),
                    team_name=name if identified else None,
                    identified=identified,
                    points=by_team.get(team_id, []),
                )
                for team_id, code, name in teams
            ),
            key=lambda one: one.team,
        )
        remaining = [one for one in series if after is None or one.team > after]
        page = remaining[:size]
        await log_reads(
            info,
            [grant],
            operation="sharedTeamSeries",
            collaborative_codes=[collaborative],
            measure_code=measure,
            teams_read={grantor.id: sum(1 for one in page if one.points)},
        )
        return Connection(
            edges=[Edge(cursor=one.team, node=one) for one in page],
            page_info=PageInfo(
                has_next_page=len(remaining) > size,
                has_previous_page=after is not None,
                start_cursor=page[0].team if page else None,
                end_cursor=page[-1].team if page else None,
            ),
            total_count=len(series),
        )

    @strawberry.field(
        description=(
            "The links the caller's sponsor declared between its measures and other sponsors' "
            "(of one measure, or all), each with whether the other side declared it back."
        ),
        permission_classes=[HasScope("program:read")],
    )
    async def measure_equivalences(
        self,
        info: Info,
        measure: Annotated[
            str | None, strawberry.argument(description="Only this measure's links.")
        ] = None,
    ) -> list[MeasureEquivalence]:
        principal = require_principal(info)
        if measure is not None and not findable_code(measure):
            return []
        async with info.context.db() as session:
            links = await list_equivalences(session, principal.sponsor_id, measure)
        return [MeasureEquivalence.from_link(link) for link in links]
