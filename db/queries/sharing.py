"""Sharing across sponsors: agreements (audited), the grants in force, pseudonyms, the access
log, and the cross-program measure registry.

An agreement is *in force* at time t when it is not revoked and ``valid_from <= t < valid_to``
(no ``valid_to``: open-ended). Every cross-sponsor read asks :func:`grants_in_force` at the
moment of the read, so expiry and revocation stop access at once (nothing is cached).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import uuid
from collections import defaultdict
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from sqlalchemy import Select, and_, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from analytics.suppression import SuppressionPolicy
from db.base import utcnow
from db.enums import SharingLevel
from db.errors import Conflict, InvalidInput, NotFound
from db.models import (
    Collaborative,
    DataPoint,
    Measure,
    MeasureEquivalence,
    MeasureVersion,
    PseudonymKey,
    SharingAccessLog,
    SharingAgreement,
    SharingAgreementCollaborative,
    SharingAgreementMeasure,
    Sponsor,
    Team,
)
from db.queries.audit import Actor, record_event, snapshot
from db.queries.measures import VersionedMeasure, get_measure_by_code
from db.queries.paging import Keyset, Page, keyset_page

MAX_CODES = 100
"""Most collaboratives (or measures) one agreement names; more → all of them."""
MAX_CELL_MIN = 1_000
MAX_MIN_TEAMS = 1_000
LEVEL_ORDER = {
    SharingLevel.AGGREGATE: 0,
    SharingLevel.TEAM_DEIDENTIFIED: 1,
    SharingLevel.TEAM_IDENTIFIED: 2,
}
AgreementRole = Literal["GRANTOR", "GRANTEE", "ANY"]


@dataclass(frozen=True)
class Grant:
    """An agreement in force, as a read needs it."""

    agreement_id: uuid.UUID
    grantor_id: uuid.UUID
    grantee_id: uuid.UUID
    level: SharingLevel
    all_collaboratives: bool
    collaborative_ids: frozenset[uuid.UUID]
    all_measures: bool
    measure_ids: frozenset[uuid.UUID]
    policy: SuppressionPolicy

    def covers_measure(self, measure_id: uuid.UUID) -> bool:
        return self.all_measures or measure_id in self.measure_ids

    def covers_collaborative(self, collaborative_id: uuid.UUID) -> bool:
        return self.all_collaboratives or collaborative_id in self.collaborative_ids

    def allows(self, level: SharingLevel) -> bool:
        """True when the agreement's level is ``level`` or more."""
        return LEVEL_ORDER[self.level] >= LEVEL_ORDER[level]


def in_force(at: datetime) -> Any:
    """The condition of agreements in force at ``at``."""
    return and_(
        SharingAgreement.revoked_at.is_(None),
        SharingAgreement.valid_from <= at,
        or_(SharingAgreement.valid_to.is_(None), SharingAgreement.valid_to > at),
    )


async def grants_in_force(
    session: AsyncSession,
    *,
    grantee_id: uuid.UUID,
    grantor_ids: Collection[uuid.UUID] | None = None,
    at: datetime | None = None,
) -> list[Grant]:
    """The agreements in force now (or at ``at``) from ``grantor_ids`` (any) to the grantee.

    Two statements whatever the number of agreements: the agreements, then what they name.
    """
    moment = at or utcnow()
    query = select(SharingAgreement).where(
        SharingAgreement.grantee_sponsor_id == grantee_id, in_force(moment)
    )
    if grantor_ids is not None:
        query = query.where(SharingAgreement.sponsor_id.in_(list(grantor_ids)))
    agreements = list(await session.scalars(query.order_by(SharingAgreement.created_at)))
    if not agreements:
        return []
    collaboratives, measures = await _named(session, agreements)
    return [
        Grant(
            agreement_id=row.id,
            grantor_id=row.sponsor_id,
            grantee_id=row.grantee_sponsor_id,
            level=row.level,
            all_collaboratives=row.all_collaboratives,
            collaborative_ids=frozenset(collaboratives[row.id]),
            all_measures=row.all_measures,
            measure_ids=frozenset(measures[row.id]),
            policy=SuppressionPolicy(cell_min=row.cell_min, min_teams=row.min_teams),
        )
        for row in agreements
    ]


async def _named(
    session: AsyncSession, agreements: Sequence[SharingAgreement]
) -> tuple[dict[uuid.UUID, list[uuid.UUID]], dict[uuid.UUID, list[uuid.UUID]]]:
    """The collaborative and measure ids each agreement names."""
    ids = [row.id for row in agreements]
    sponsors = list({row.sponsor_id for row in agreements})
    collaboratives: defaultdict[uuid.UUID, list[uuid.UUID]] = defaultdict(list)
    measures: defaultdict[uuid.UUID, list[uuid.UUID]] = defaultdict(list)
    for agreement_id, collaborative_id in await session.execute(
        select(
            SharingAgreementCollaborative.agreement_id,
            SharingAgreementCollaborative.collaborative_id,
        ).where(
            SharingAgreementCollaborative.sponsor_id.in_(sponsors),
            SharingAgreementCollaborative.agreement_id.in_(ids),
        )
    ):
        collaboratives[agreement_id].append(collaborative_id)
    for agreement_id, measure_id in await session.execute(
        select(SharingAgreementMeasure.agreement_id, SharingAgreementMeasure.measure_id).where(
            SharingAgreementMeasure.sponsor_id.in_(sponsors),
            SharingAgreementMeasure.agreement_id.in_(ids),
        )
    ):
        measures[agreement_id].append(measure_id)
    return collaboratives, measures


async def sponsors_sharing_with(session: AsyncSession, sponsor_id: uuid.UUID) -> set[uuid.UUID]:
    """Sponsors with an agreement in force with ``sponsor_id``, as grantor or grantee."""
    now = utcnow()
    rows = await session.execute(
        select(SharingAgreement.sponsor_id, SharingAgreement.grantee_sponsor_id).where(
            or_(
                SharingAgreement.sponsor_id == sponsor_id,
                SharingAgreement.grantee_sponsor_id == sponsor_id,
            ),
            in_force(now),
        )
    )
    return {other for pair in rows for other in pair if other != sponsor_id}


# --- administration ------------------------------------------------------------------------


async def _ids_by_code(
    session: AsyncSession,
    model: type[Collaborative] | type[Measure],
    sponsor_id: uuid.UUID,
    codes: Sequence[str],
    field: str,
) -> list[uuid.UUID]:
    if not codes:
        raise InvalidInput(
            f"name at least one code in {field}, or leave it out for all", field=field
        )
    if len(codes) > MAX_CODES:
        raise InvalidInput(f"{field} names at most {MAX_CODES} codes", field=field)
    wanted = list(dict.fromkeys(codes))
    rows = await session.execute(
        select(model.code, model.id).where(model.sponsor_id == sponsor_id, model.code.in_(wanted))
    )
    by_code: dict[str, uuid.UUID] = {code: row_id for code, row_id in rows}
    missing = [code for code in wanted if code not in by_code]
    if missing:
        raise NotFound(f"no {field[:-1]} {missing[0]!r}", field=field)
    return [by_code[code] for code in wanted]


async def _sponsor_by_slug(session: AsyncSession, slug: str, field: str) -> Sponsor:
    sponsor = await session.scalar(select(Sponsor).where(Sponsor.slug == slug))
    if sponsor is None:
        raise NotFound(f"no sponsor {slug!r}", field=field)
    return sponsor


def _audit_view(
    row: SharingAgreement, collaborative_ids: Sequence[uuid.UUID], measure_ids: Sequence[uuid.UUID]
) -> dict[str, Any]:
    view = snapshot(row)
    view["collaborative_ids"] = [str(i) for i in collaborative_ids]
    view["measure_ids"] = [str(i) for i in measure_ids]
    return view


@dataclass(frozen=True)
class NewAgreement:
    """What ``createSharingAgreement`` asks for (codes None: all, now and later)."""

    grantee_slug: str
    collaborative_codes: Sequence[str] | None
    measure_codes: Sequence[str] | None
    level: SharingLevel
    cell_min: int
    min_teams: int
    purpose: str
    valid_from: datetime | None
    valid_to: datetime | None


async def create_agreement(
    session: AsyncSession, actor: Actor, new: NewAgreement
) -> SharingAgreement:
    """A new agreement granted by the actor's sponsor; audited. Creates the pseudonym key of
    the (grantor, grantee) pair on first use."""
    grantee = await _sponsor_by_slug(session, new.grantee_slug, "grantee")
    if grantee.id == actor.sponsor_id:
        raise InvalidInput("a sponsor does not share with itself", field="grantee")
    if not 1 <= new.cell_min <= MAX_CELL_MIN:
        raise InvalidInput(f"cellMin must be from 1 to {MAX_CELL_MIN}", field="cellMin")
    if not 1 <= new.min_teams <= MAX_MIN_TEAMS:
        raise InvalidInput(f"minTeams must be from 1 to {MAX_MIN_TEAMS}", field="minTeams")
    valid_from = new.valid_from or utcnow()
    if new.valid_to is not None and new.valid_to <= valid_from:
        raise InvalidInput("validTo must be after validFrom", field="validTo")
    collaborative_ids = (
        []
        if new.collaborative_codes is None
        else await _ids_by_code(
            session, Collaborative, actor.sponsor_id, new.collaborative_codes, "collaboratives"
        )
    )
    measure_ids = (
        []
        if new.measure_codes is None
        else await _ids_by_code(session, Measure, actor.sponsor_id, new.measure_codes, "measures")
    )
    row = SharingAgreement(
        sponsor_id=actor.sponsor_id,
        id=uuid.uuid4(),
        grantee_sponsor_id=grantee.id,
        level=new.level,
        all_collaboratives=new.collaborative_codes is None,
        all_measures=new.measure_codes is None,
        cell_min=new.cell_min,
        min_teams=new.min_teams,
        purpose=new.purpose,
        valid_from=valid_from,
        valid_to=new.valid_to,
        created_by=actor.client_id,
        created_at=utcnow(),
    )
    session.add(row)
    await session.flush()
    session.add_all(
        SharingAgreementCollaborative(
            sponsor_id=actor.sponsor_id, agreement_id=row.id, collaborative_id=collaborative_id
        )
        for collaborative_id in collaborative_ids
    )
    session.add_all(
        SharingAgreementMeasure(sponsor_id=actor.sponsor_id, agreement_id=row.id, measure_id=m)
        for m in measure_ids
    )
    await _ensure_pseudonym_key(session, actor.sponsor_id, grantee.id)
    await session.flush()
    await record_event(
        session,
        actor,
        action="sharing_agreement.create",
        entity_type="SharingAgreement",
        entity_id=row.id,
        before=None,
        after=_audit_view(row, collaborative_ids, measure_ids),
    )
    return row


async def revoke_agreement(
    session: AsyncSession, actor: Actor, agreement_id: uuid.UUID
) -> SharingAgreement:
    """Revoke one of the actor's sponsor's agreements now (CONFLICT when already revoked)."""
    row = await session.scalar(
        select(SharingAgreement)
        .where(SharingAgreement.sponsor_id == actor.sponsor_id, SharingAgreement.id == agreement_id)
        .with_for_update()
    )
    if row is None:
        raise NotFound("no such sharing agreement granted by this sponsor", field="id")
    if row.revoked_at is not None:
        raise Conflict("the sharing agreement is already revoked", field="id")
    before = snapshot(row)
    row.revoked_at = utcnow()
    row.revoked_by = actor.client_id
    await session.flush()
    await record_event(
        session,
        actor,
        action="sharing_agreement.revoke",
        entity_type="SharingAgreement",
        entity_id=row.id,
        before=before,
        after=snapshot(row),
    )
    return row


def _visible_to(sponsor_id: uuid.UUID, role: AgreementRole) -> Any:
    as_grantor = SharingAgreement.sponsor_id == sponsor_id
    as_grantee = SharingAgreement.grantee_sponsor_id == sponsor_id
    if role == "GRANTOR":
        return as_grantor
    if role == "GRANTEE":
        return as_grantee
    return or_(as_grantor, as_grantee)


async def list_agreements(
    session: AsyncSession,
    sponsor_id: uuid.UUID,
    *,
    role: AgreementRole,
    in_force_only: bool,
    first: int,
    after: Keyset | None = None,
) -> Page[SharingAgreement]:
    """A page of the agreements a sponsor grants and/or receives, oldest first."""
    query: Select[Any] = select(SharingAgreement).where(_visible_to(sponsor_id, role))
    if in_force_only:
        query = query.where(in_force(utcnow()))
    return await keyset_page(
        session,
        query,
        sort=SharingAgreement.created_at,
        tiebreak=SharingAgreement.id,
        descending=False,
        first=first,
        after=after,
    )


async def agreements_by_ids(
    session: AsyncSession, sponsor_id: uuid.UUID, ids: Sequence[uuid.UUID], role: AgreementRole
) -> list[SharingAgreement | None]:
    """Agreements in key order, None where unknown or not the sponsor's (as ``role``)."""
    rows = await session.scalars(
        select(SharingAgreement).where(
            SharingAgreement.id.in_(set(ids)), _visible_to(sponsor_id, role)
        )
    )
    found = {row.id: row for row in rows}
    return [found.get(key) for key in ids]


@dataclass(frozen=True)
class NamedObject:
    """A collaborative or measure an agreement names: its code and display name."""

    code: str
    name: str


@dataclass(frozen=True)
class AgreementScope:
    """What one agreement names, for display (every one when ``all_*``)."""

    collaboratives: list[NamedObject]
    measures: list[NamedObject]


async def agreement_scopes(
    session: AsyncSession, keys: Sequence[tuple[uuid.UUID, uuid.UUID]]
) -> list[AgreementScope]:
    """For (grantor id, agreement id) keys: the collaboratives and measures each names, by code.

    An agreement over all collaboratives (measures) lists the grantor's current ones. Four
    statements per batch whatever its size.
    """
    agreement_ids = [agreement_id for _, agreement_id in keys]
    grantors = list({grantor for grantor, _ in keys})
    rows = {
        row.id: row
        for row in await session.scalars(
            select(SharingAgreement).where(
                SharingAgreement.sponsor_id.in_(grantors),
                SharingAgreement.id.in_(agreement_ids),
            )
        )
    }
    named_collaboratives, every_collaborative = await _named_objects(
        session,
        select(
            SharingAgreementCollaborative.agreement_id,
            Collaborative.sponsor_id,
            Collaborative.code,
            Collaborative.name,
        )
        .select_from(Collaborative)
        .outerjoin(
            SharingAgreementCollaborative,
            and_(
                SharingAgreementCollaborative.sponsor_id == Collaborative.sponsor_id,
                SharingAgreementCollaborative.collaborative_id == Collaborative.id,
                SharingAgreementCollaborative.agreement_id.in_(agreement_ids),
            ),
        )
        .where(Collaborative.sponsor_id.in_(grantors))
        .order_by(Collaborative.code),
    )
    named_measures, every_measure = await _named_objects(
        session,
        select(
            SharingAgreementMeasure.agreement_id,
            Measure.sponsor_id,
            Measure.code,
            MeasureVersion.name,
        )
        .select_from(Measure)
        .join(
            MeasureVersion,
            and_(
                MeasureVersion.sponsor_id == Measure.sponsor_id,
                MeasureVersion.measure_id == Measure.id,
                MeasureVersion.version == Measure.current_version,
            ),
        )
        .outerjoin(
            SharingAgreementMeasure,
            and_(
                SharingAgreementMeasure.sponsor_id == Measure.sponsor_id,
                SharingAgreementMeasure.measure_id == Measure.id,
                SharingAgreementMeasure.agreement_id.in_(agreement_ids),
            ),
        )
        .where(Measure.sponsor_id.in_(grantors))
        .order_by(Measure.code),
    )
    scopes: list[AgreementScope] = []
    for grantor, agreement_id in keys:
        row = rows.get(agreement_id)
        if row is None:
            scopes.append(AgreementScope([], []))
            continue
        scopes.append(
            AgreementScope(
                collaboratives=_dedupe(
                    every_collaborative[grantor]
                    if row.all_collaboratives
                    else named_collaboratives[agreement_id]
                ),
                measures=_dedupe(
                    every_measure[grantor] if row.all_measures else named_measures[agreement_id]
                ),
            )
        )
    return scopes


async def _named_objects(
    session: AsyncSession, query: Select[uuid.UUID, uuid.UUID, str, str]
) -> tuple[dict[uuid.UUID, list[NamedObject]], dict[uuid.UUID, list[NamedObject]]]:
    """Rows of (agreement id or None, sponsor id, code, name) — every object of the grantors,
    outer-joined to the agreements naming it — as (objects by agreement, objects by sponsor)."""
    named: defaultdict[uuid.UUID, list[NamedObject]] = defaultdict(list)
    every: defaultdict[uuid.UUID, list[NamedObject]] = defaultdict(list)
    for agreement_id, sponsor_id, code, name in await session.execute(query):
        if agreement_id is not None:
            named[agreement_id].append(NamedObject(code, name))
        every[sponsor_id].append(NamedObject(code, name))
    return named, every


def _dedupe(objects: list[NamedObject]) -> list[NamedObject]:
    """One entry per code (an outer join repeats an object once per agreement of the batch)."""
    return list({obj.code: obj for obj in objects}.values())


# --- the read-access log -------------------------------------------------------------------


@dataclass(frozen=True)
class AccessRecord:
    """One read of shared data, as the access log keeps it."""

    grant: Grant
    reader_client_id: str
    reader_sponsor_id: uuid.UUID
    operation: str
    collaborative_codes: Sequence[str]
    measure_code: str
    teams_read: int
    request_id: str
    detail: dict[str, Any]


async def record_access(session: AsyncSession, records: Sequence[AccessRecord]) -> None:
    """Add access-log rows (committed by the caller's transaction)."""
    now = utcnow()
    session.add_all(
        SharingAccessLog(
            sponsor_id=record.grant.grantor_id,
            id=uuid.uuid4(),
            agreement_id=record.grant.agreement_id,
            at=now,
            reader_client_id=record.reader_client_id,
            reader_sponsor_id=record.reader_sponsor_id,
            operation=record.operation,
            level=record.grant.level,
            collaborative_codes=list(record.collaborative_codes),
            measure_code=record.measure_code,
            teams_read=record.teams_read,
            request_id=record.request_id[:64],
            detail=record.detail,
        )
        for record in records
    )
    await session.flush()


async def list_access_log(
    session: AsyncSession,
    sponsor_id: uuid.UUID,
    *,
    agreement_id: uuid.UUID | None,
    first: int,
    after: Keyset | None = None,
) -> Page[SharingAccessLog]:
    """A page of the reads of the sponsor's shared data, newest first."""
    query: Select[Any] = select(SharingAccessLog).where(SharingAccessLog.sponsor_id == sponsor_id)
    if agreement_id is not None:
        query = query.where(SharingAccessLog.agreement_id == agreement_id)
    return await keyset_page(
        session,
        query,
        sort=SharingAccessLog.at,
        tiebreak=SharingAccessLog.id,
        descending=True,
        first=first,
        after=after,
    )


# --- pseudonyms ----------------------------------------------------------------------------

PSEUDONYM_PREFIX = "anon-"
PSEUDONYM_LENGTH = 16
"""Base32 characters of the HMAC kept (80 bits: collisions are out of reach)."""


async def _ensure_pseudonym_key(
    session: AsyncSession, grantor_id: uuid.UUID, grantee_id: uuid.UUID
) -> bytes:
    found = await session.scalar(
        select(PseudonymKey.secret).where(
            PseudonymKey.sponsor_id == grantor_id, PseudonymKey.grantee_sponsor_id == grantee_id
        )
    )
    if found is not None:
        return found
    secret = os.urandom(32)
    session.add(PseudonymKey(sponsor_id=grantor_id, grantee_sponsor_id=grantee_id, secret=secret))
    await session.flush()
    return secret


async def pseudonym_key(
    session: AsyncSession, grantor_id: uuid.UUID, grantee_id: uuid.UUID
) -> bytes:
    """The secret of the team pseudonyms ``grantee_id`` sees of ``grantor_id``'s teams."""
    return await _ensure_pseudonym_key(session, grantor_id, grantee_id)


def pseudonym(secret: bytes, team_id: uuid.UUID) -> str:
    """A team's stable pseudonym under a (grantor, grantee) secret: HMAC-SHA256, base32."""
    digest = hmac.new(secret, team_id.bytes, hashlib.sha256).digest()
    return PSEUDONYM_PREFIX + base64.b32encode(digest).decode("ascii")[:PSEUDONYM_LENGTH].lower()


# --- shared team series --------------------------------------------------------------------


@dataclass(frozen=True)
class SharedPoint:
    """One team's point of a shared series (the all-patients stratum)."""

    team_id: uuid.UUID
    team_code: str
    team_name: str
    period: str
    numerator: int | None
    denominator: int | None
    value: float | None


async def shared_points(
    session: AsyncSession,
    *,
    grantor_id: uuid.UUID,
    collaborative_id: uuid.UUID,
    measure_id: uuid.UUID,
    from_period: str | None,
    to_period: str | None,
) -> tuple[list[tuple[uuid.UUID, str, str]], list[SharedPoint]]:
    """The teams of a collaborative (id, code, name) and their points of one measure."""
    teams = [
        (row.id, row.code, row.name)
        for row in await session.execute(
            select(Team.id, Team.code, Team.name).where(
                Team.sponsor_id == grantor_id, Team.collaborative_id == collaborative_id
            )
        )
    ]
    query = (
        select(
            DataPoint.team_id,
            Team.code,
            Team.name,
            DataPoint.period,
            DataPoint.numerator,
            DataPoint.denominator,
            DataPoint.value,
        )
        .join(Team, and_(Team.sponsor_id == DataPoint.sponsor_id, Team.id == DataPoint.team_id))
        .where(
            DataPoint.sponsor_id == grantor_id,
            Team.collaborative_id == collaborative_id,
            DataPoint.measure_id == measure_id,
            DataPoint.stratum == "",
        )
        .order_by(DataPoint.team_id, DataPoint.period)
    )
    if from_period is not None:
        query = query.where(DataPoint.period >= from_period)
    if to_period is not None:
        query = query.where(DataPoint.period <= to_period)
    points = [SharedPoint(*row) for row in await session.execute(query)]
    return teams, points


# --- the cross-program measure registry ----------------------------------------------------


@dataclass(frozen=True)
class EquivalenceLink:
    """One side's declaration, and whether the other side has declared it back."""

    row: MeasureEquivalence
    measure_code: str
    other_sponsor_slug: str
    accepted: bool


async def declare_equivalence(
    session: AsyncSession,
    actor: Actor,
    *,
    measure_code: str,
    other_sponsor_slug: str,
    other_measure_code: str,
) -> EquivalenceLink:
    """The actor's sponsor declares its measure equivalent to another sponsor's; audited.

    The other side is named by code and not looked up: whether another sponsor has a measure
    is not the declaring sponsor's to learn. The link holds once the other side declares it back.
    """
    own = await get_measure_by_code(session, actor.sponsor_id, measure_code)
    if own is None:
        raise NotFound(f"no measure {measure_code!r}", field="measure")
    other = await _sponsor_by_slug(session, other_sponsor_slug, "equivalentSponsor")
    if other.id == actor.sponsor_id:
        raise InvalidInput(
            "link measures of other sponsors; a sponsor's own measures are versions",
            field="equivalentSponsor",
        )
    existing = await session.scalar(
        select(MeasureEquivalence).where(
            MeasureEquivalence.sponsor_id == actor.sponsor_id,
            MeasureEquivalence.measure_id == own.measure.id,
            MeasureEquivalence.other_sponsor_id == other.id,
            MeasureEquivalence.other_measure_code == other_measure_code,
        )
    )
    if existing is not None:
        raise Conflict("this link is already declared", field="equivalentMeasure")
    row = MeasureEquivalence(
        sponsor_id=actor.sponsor_id,
        id=uuid.uuid4(),
        measure_id=own.measure.id,
        other_sponsor_id=other.id,
        other_measure_code=other_measure_code,
        declared_by=actor.client_id,
        declared_at=utcnow(),
    )
    session.add(row)
    await session.flush()
    await record_event(
        session,
        actor,
        action="measure_equivalence.declare",
        entity_type="MeasureEquivalence",
        entity_id=row.id,
        before=None,
        after=snapshot(row),
    )
    accepted = await _declared_back(session, row, own.measure.code)
    return EquivalenceLink(row, own.measure.code, other.slug, accepted)


async def _declared_back(session: AsyncSession, row: MeasureEquivalence, own_code: str) -> bool:
    back = await session.scalar(
        select(MeasureEquivalence.id)
        .join(
            Measure,
            and_(
                Measure.sponsor_id == MeasureEquivalence.sponsor_id,
                Measure.id == MeasureEquivalence.measure_id,
            ),
        )
        .where(
            MeasureEquivalence.sponsor_id == row.other_sponsor_id,
            Measure.code == row.other_measure_code,
            MeasureEquivalence.other_sponsor_id == row.sponsor_id,
            MeasureEquivalence.other_measure_code == own_code,
        )
    )
    return back is not None


async def list_equivalences(
    session: AsyncSession, sponsor_id: uuid.UUID, measure_code: str | None
) -> list[EquivalenceLink]:
    """The sponsor's declarations (of one measure, or all), each with whether it holds."""
    query = (
        select(MeasureEquivalence, Measure.code, Sponsor.slug)
        .join(
            Measure,
            and_(
                Measure.sponsor_id == MeasureEquivalence.sponsor_id,
                Measure.id == MeasureEquivalence.measure_id,
            ),
        )
        .join(Sponsor, Sponsor.id == MeasureEquivalence.other_sponsor_id)
        .where(MeasureEquivalence.sponsor_id == sponsor_id)
        .order_by(Measure.code, Sponsor.slug, MeasureEquivalence.other_measure_code)
    )
    if measure_code is not None:
        query = query.where(Measure.code == measure_code)
    # the declarations other sponsors made towards this one, in one statement
    back = {
        (declarer, their_code, our_code)
        for declarer, their_code, our_code in await session.execute(
            select(
                MeasureEquivalence.sponsor_id, Measure.code, MeasureEquivalence.other_measure_code
            )
            .join(
                Measure,
                and_(
                    Measure.sponsor_id == MeasureEquivalence.sponsor_id,
                    Measure.id == MeasureEquivalence.measure_id,
                ),
            )
            .where(MeasureEquivalence.other_sponsor_id == sponsor_id)
        )
    }
    return [
        EquivalenceLink(
            row, code, slug, (row.other_sponsor_id, row.other_measure_code, code) in back
        )
        for row, code, slug in (await session.execute(query)).all()
    ]


async def remove_equivalence(
    session: AsyncSession,
    actor: Actor,
    *,
    measure_code: str,
    other_sponsor_slug: str,
    other_measure_code: str,
) -> None:
    """Withdraw the actor's sponsor's declaration (the link stops holding); audited."""
    row = None
    other = await session.scalar(select(Sponsor).where(Sponsor.slug == other_sponsor_slug))
    own = await get_measure_by_code(session, actor.sponsor_id, measure_code)
    if other is not None and own is not None:
        row = await session.scalar(
            select(MeasureEquivalence).where(
                MeasureEquivalence.sponsor_id == actor.sponsor_id,
                MeasureEquivalence.measure_id == own.measure.id,
                MeasureEquivalence.other_sponsor_id == other.id,
                MeasureEquivalence.other_measure_code == other_measure_code,
            )
        )
    if row is None:
        raise NotFound("no such declared link", field="equivalentMeasure")
    before = snapshot(row)
    await session.delete(row)
    await session.flush()
    await record_event(
        session,
        actor,
        action="measure_equivalence.remove",
        entity_type="MeasureEquivalence",
        entity_id=before["id"],
        before=before,
        after=None,
    )


EquivalenceBasis = Literal["SAME", "LINKED", "FHIR_CANONICAL"]


async def equivalent_measure(
    session: AsyncSession, measure: VersionedMeasure, sponsor_id: uuid.UUID
) -> tuple[VersionedMeasure, EquivalenceBasis] | None:
    """``sponsor_id``'s measure equivalent to ``measure``: itself for its own sponsor; a link
    declared by both sides; else one whose current definition has the same FHIR canonical."""
    if sponsor_id == measure.measure.sponsor_id:
        return measure, "SAME"
    linked = await session.scalar(
        select(Measure.code)
        .join(
            MeasureEquivalence,
            and_(
                MeasureEquivalence.sponsor_id == Measure.sponsor_id,
                MeasureEquivalence.measure_id == Measure.id,
            ),
        )
        .where(
            Measure.sponsor_id == sponsor_id,
            MeasureEquivalence.other_sponsor_id == measure.measure.sponsor_id,
            MeasureEquivalence.other_measure_code == measure.measure.code,
            Measure.code.in_(
                select(MeasureEquivalence.other_measure_code).where(
                    MeasureEquivalence.sponsor_id == measure.measure.sponsor_id,
                    MeasureEquivalence.measure_id == measure.measure.id,
                    MeasureEquivalence.other_sponsor_id == sponsor_id,
                )
            ),
        )
        .order_by(Measure.code)
        .limit(1)
    )
    if linked is not None:
        found = await get_measure_by_code(session, sponsor_id, linked)
        if found is not None:
            return found, "LINKED"
    canonical = measure.definition.fhir_canonical
    if canonical:
        code = await session.scalar(
            select(Measure.code)
            .join(
                MeasureVersion,
                and_(
                    MeasureVersion.sponsor_id == Measure.sponsor_id,
                    MeasureVersion.measure_id == Measure.id,
                    MeasureVersion.version == Measure.current_version,
                ),
            )
            .where(Measure.sponsor_id == sponsor_id, MeasureVersion.fhir_canonical == canonical)
            .order_by(Measure.code)
            .limit(1)
        )
        if code is not None:
            found = await get_measure_by_code(session, sponsor_id, code)
            if found is not None:
                return found, "FHIR_CANONICAL"
    return None
