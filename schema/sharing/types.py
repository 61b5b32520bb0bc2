"""GraphQL projections of sharing agreements, the access log, shared team series and measure
links.

What an agreement names is shown as plain ``{code name}`` objects, never as ``Collaborative`` or
``Measure``: a grantee must not be able to walk from an agreement into the grantor's teams.
"""

from __future__ import annotations

import enum
import uuid
from collections.abc import Awaitable, Callable
from datetime import datetime

import strawberry

from db.base import utcnow
from db.enums import SharingLevel
from db.models import SharingAccessLog as AccessLogModel
from db.models import SharingAgreement as AgreementModel
from db.queries.sharing import EquivalenceLink, NamedObject
from schema.context import Info
from schema.ids import encode_global_id
from schema.node import Node
from schema.permissions import require_principal
from schema.scalars import Count, Period
from schema.sponsors.types import Sponsor

strawberry.enum(
    SharingLevel,
    description=(
        "What a sharing agreement lets the grantee see: AGGREGATE (only aggregates, suppressed "
        "by the agreement's policy), TEAM_DEIDENTIFIED (also team series under stable "
        "pseudonyms, small counts suppressed), TEAM_IDENTIFIED (team series as the grantor "
        "sees them)."
    ),
)


@strawberry.enum(description="Where an agreement stands now.")
class SharingAgreementStatus(enum.Enum):
    SCHEDULED = "SCHEDULED"
    IN_FORCE = "IN_FORCE"
    EXPIRED = "EXPIRED"
    REVOKED = "REVOKED"


@strawberry.enum(description="Which agreements to list.")
class SharingRole(enum.Enum):
    GRANTOR = "GRANTOR"
    GRANTEE = "GRANTEE"
    ANY = "ANY"


@strawberry.type(description="A collaborative or measure an agreement names.")
class SharedObject:
    code: str = strawberry.field(description="Its code in the grantor's programs.")
    name: str = strawberry.field(description="Display name.")


def agreement_status(row: AgreementModel, now: datetime | None = None) -> SharingAgreementStatus:
    """The status of an agreement at ``now`` (in force: not revoked, from <= now < to)."""
    moment = now or utcnow()
    if row.revoked_at is not None:
        return SharingAgreementStatus.REVOKED
    if row.valid_from > moment:
        return SharingAgreementStatus.SCHEDULED
    if row.valid_to is not None and row.valid_to <= moment:
        return SharingAgreementStatus.EXPIRED
    return SharingAgreementStatus.IN_FORCE


@strawberry.type(
    description=(
        "A grantor sponsor lets a grantee sponsor read some collaboratives and measures at a "
        "level, under a small-cell suppression policy, from validFrom until validTo."
    )
)
class SharingAgreement(Node):
    level: SharingLevel = strawberry.field(description="What the grantee may see.")
    all_collaboratives: bool = strawberry.field(
        description="True when every collaborative of the grantor is shared, now and later."
    )
    all_measures: bool = strawberry.field(
        description="True when every measure of the grantor is shared, now and later."
    )
    cell_min: int = strawberry.field(
        description="Counts from 1 to cellMin - 1 are hidden from the grantee."
    )
    min_teams: int = strawberry.field(
        description="An aggregate point of fewer teams is hidden from the grantee."
    )
    purpose: str = strawberry.field(description="Why the data are shared.")
    valid_from: datetime = strawberry.field(description="When access starts.")
    valid_to: datetime | None = strawberry.field(description="When access ends; null: open-ended.")
    created_at: datetime = strawberry.field(description="When the grantor created it.")
    revoked_at: datetime | None = strawberry.field(description="When it was revoked; null if not.")
    status: SharingAgreementStatus = strawberry.field(description="Where it stands now.")
    grantor_id: strawberry.Private[uuid.UUID]
    grantee_id: strawberry.Private[uuid.UUID]
    row_id: strawberry.Private[uuid.UUID]

    @classmethod
    def from_model(cls, row: AgreementModel) -> SharingAgreement:
        return cls(
            id=strawberry.ID(encode_global_id("SharingAgreement", row.id)),
            level=row.level,
            all_collaboratives=row.all_collaboratives,
            all_measures=row.all_measures,
            cell_min=row.cell_min,
            min_teams=row.min_teams,
            purpose=row.purpose,
            valid_from=row.valid_from,
            valid_to=row.valid_to,
            created_at=row.created_at,
            revoked_at=row.revoked_at,
            status=agreement_status(row),
            grantor_id=row.sponsor_id,
            grantee_id=row.grantee_sponsor_id,
            row_id=row.id,
        )

    @strawberry.field(description="The sponsor that shares its data.")
    async def grantor(self, info: Info) -> Sponsor:
        row = await info.context.loaders.sponsor_by_id.load(self.grantor_id)
        assert row is not None, "agreements reference existing sponsors"
        return Sponsor.from_model(row)

    @strawberry.field(description="The sponsor whose clients may read the data.")
    async def grantee(self, info: Info) -> Sponsor:
        row = await info.context.loaders.sponsor_by_id.load(self.grantee_id)
        assert row is not None, "agreements reference existing sponsors"
        return Sponsor.from_model(row)

    @strawberry.field(
        description=(
            "The collaboratives shared (every current one when allCollaboratives; for the "
            "grantee, only while the agreement is in force)."
        )
    )
    async def collaboratives(self, info: Info) -> list[SharedObject]:
        if self._hidden_from(info, self.all_collaboratives):
            return []
        return [SharedObject(code=o.code, name=o.name) for o in (await self._scope(info))[0]]

    @strawberry.field(
        description=(
            "The measures shared (every current one when allMeasures; for the grantee, only "
            "while the agreement is in force)."
        )
    )
    async def measures(self, info: Info) -> list[SharedObject]:
        if self._hidden_from(info, self.all_measures):
            return []
        return [SharedObject(code=o.code, name=o.name) for o in (await self._scope(info))[1]]

    async def _scope(self, info: Info) -> tuple[list[NamedObject], list[NamedObject]]:
        """The collaboratives and measures the agreement names (batched per request)."""
        scope = await info.context.loaders.agreement_scope_by_key.load(
            (self.grantor_id, self.row_id)
        )
        return scope.collaboratives, scope.measures

    def _hidden_from(self, info: Info, everything: bool) -> bool:
        """An "all" agreement not in force lists nothing to the grantee: it would show the
        grantor's current programs, made after the agreement ended or before it starts."""
        principal = require_principal(info)
        return (
            everything
            and principal.sponsor_id != self.grantor_id
            and self.status is not SharingAgreementStatus.IN_FORCE
        )


@strawberry.type(description="One read of shared data by a client of the grantee sponsor.")
class AccessLogEntry:
    at: datetime = strawberry.field(description="When the read happened.")
    reader_client_id: str = strawberry.field(description="The client that read.")
    operation: str = strawberry.field(
        description="What was read: the GraphQL field, e.g. 'aggregate' or 'sharedTeamSeries'."
    )
    level: SharingLevel = strawberry.field(description="The agreement's level at the read.")
    collaborative_codes: list[str] = strawberry.field(
        description="The collaboratives read ([] for every one the agreement shares)."
    )
    measure_code: str = strawberry.field(description="The measure read.")
    teams_read: int = strawberry.field(description="How many teams' data the answer drew on.")
    request_id: str = strawberry.field(description="The request id (X-Request-ID) of the read.")
    agreement_row_id: strawberry.Private[uuid.UUID]
    reader_sponsor_id: strawberry.Private[uuid.UUID]

    @classmethod
    def from_model(cls, row: AccessLogModel) -> AccessLogEntry:
        return cls(
            at=row.at,
            reader_client_id=row.reader_client_id,
            operation=row.operation,
            level=row.level,
            collaborative_codes=list(row.collaborative_codes),
            measure_code=row.measure_code,
            teams_read=row.teams_read,
            request_id=row.request_id,
            agreement_row_id=row.agreement_id,
            reader_sponsor_id=row.reader_sponsor_id,
        )

    @strawberry.field(description="The sponsor of the reading client.")
    async def reader_sponsor(self, info: Info) -> Sponsor:
        row = await info.context.loaders.sponsor_by_id.load(self.reader_sponsor_id)
        assert row is not None, "log rows reference existing sponsors"
        return Sponsor.from_model(row)

    @strawberry.field(description="The agreement the read was made under.")
    async def agreement(self, info: Info) -> SharingAgreement | None:
        row = await info.context.loaders.sharing_agreement_by_id.load(self.agreement_row_id)
        return None if row is None else SharingAgreement.from_model(row)


@strawberry.type(description="One month of a shared team series.")
class SharedTeamPoint:
    period: Period = strawberry.field(description="The month.")
    numerator: Count | None = strawberry.field(description="Numerator; null when hidden.")
    denominator: Count | None = strawberry.field(description="Denominator; null when hidden.")
    value: float | None = strawberry.field(
        description="The team's value in the measure's unit; null when hidden or missing."
    )
    suppressed: bool = strawberry.field(description="Whether a value of the point is hidden.")


@strawberry.type(
    description=(
        "One team's series of a shared measure. Under TEAM_DEIDENTIFIED the team is a stable "
        "pseudonym (the same for every read by the grantee's clients, different for another "
        "grantee, not reversible) and small counts are hidden; under TEAM_IDENTIFIED it is the "
        "team's code and name and values are as the grantor sees them."
    )
)
class SharedTeamSeries:
    team: str = strawberry.field(description="The team's pseudonym, or its code when identified.")
    team_name: str | None = strawberry.field(
        description="The team's name; null when de-identified."
    )
    identified: bool = strawberry.field(description="True when `team` is the team's real code.")
    points: list[SharedTeamPoint] = strawberry.field(description="Months with data, oldest first.")


@strawberry.type(
    description=(
        "A declared link between one of the sponsor's measures and another sponsor's measure. "
        "It holds (`accepted`) once the other sponsor declares the same link back; aggregates "
        "across sponsors pool only measures linked this way or sharing a FHIR canonical."
    )
)
class MeasureEquivalence:
    measure: str = strawberry.field(description="The sponsor's own measure code.")
    equivalent_sponsor: str = strawberry.field(description="The other sponsor's slug.")
    equivalent_measure: str = strawberry.field(description="The other sponsor's measure code.")
    accepted: bool = strawberry.field(description="True once the other side declared it too.")
    declared_at: datetime = strawberry.field(description="When this side declared it.")

    @classmethod
    def from_link(cls, link: EquivalenceLink) -> MeasureEquivalence:
        return cls(
            measure=link.measure_code,
            equivalent_sponsor=link.other_sponsor_slug,
            equivalent_measure=link.row.other_measure_code,
            accepted=link.accepted,
            declared_at=link.row.declared_at,
        )


async def _agreement_node(info: Info, row_id: uuid.UUID) -> Node | None:
    """An agreement the caller's sponsor receives, or grants (then only with ``admin``)."""
    principal = require_principal(info)
    row = await info.context.loaders.sharing_agreement_by_id.load(row_id)
    if row is None:
        return None
    if row.sponsor_id == principal.sponsor_id and not principal.has_scope("admin"):
        return None
    return SharingAgreement.from_model(row)


SHARING_NODE_SCOPE = "aggregate:read"
SHARING_NODES: dict[str, Callable[[Info, uuid.UUID], Awaitable[Node | None]]] = {
    "SharingAgreement": _agreement_node,
}
"""The sharing types ``node(id:)`` resolves (access-log entries are read through accessLog)."""


@strawberry.enum(description="Why a sponsor's measure was pooled into a cross-sponsor aggregate.")
class EquivalenceBasis(enum.Enum):
    SAME = "SAME"
    LINKED = "LINKED"
    FHIR_CANONICAL = "FHIR_CANONICAL"


@strawberry.type(description="One sponsor's measure definition pooled into an aggregate.")
class PooledDefinition:
    sponsor_slug: str = strawberry.field(description="The sponsor.")
    measure_code: str = strawberry.field(description="Its measure's code.")
    version: int = strawberry.field(description="The definition version (the current one).")
    name: str = strawberry.field(description="The measure's name in that version.")
    fhir_canonical: str | None = strawberry.field(description="Its FHIR canonical, if any.")
    basis: EquivalenceBasis = strawberry.field(
        description=(
            "SAME: the measure asked for; LINKED: declared equivalent by both sponsors; "
            "FHIR_CANONICAL: the same FHIR canonical."
        )
    )
