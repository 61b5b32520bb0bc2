"""Mutations (scope admin): ``createSharingAgreement``, ``revokeSharingAgreement``,
``linkEquivalentMeasure``, ``unlinkEquivalentMeasure``. Each is one transaction and one audit
event; revocation takes effect for the very next read (nothing caches agreements)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

import strawberry

from analytics.suppression import DEFAULT_CELL_MIN, DEFAULT_MIN_TEAMS
from db.enums import SharingLevel
from db.errors import DomainError, InvalidInput, NotFound
from db.queries.sharing import (
    NewAgreement,
    create_agreement,
    declare_equivalence,
    remove_equivalence,
    revoke_agreement,
)
from schema.context import Info
from schema.errors import (
    ConflictError,
    NotFoundError,
    ValidationError,
    error_from_domain,
)
from schema.ids import row_id_of
from schema.permissions import HasScope
from schema.sharing.types import MeasureEquivalence, SharingAgreement
from schema.validation import check_code, check_text

PURPOSE_LENGTH = 2_000


@strawberry.input(
    description=(
        "A new agreement: name the collaboratives (or set allCollaboratives) and the measures "
        "(or set allMeasures) to share — exactly one of each pair."
    )
)
class CreateSharingAgreementInput:
    grantee: str = strawberry.field(description="Slug of the sponsor that may read.")
    collaboratives: list[str] | None = strawberry.field(
        default=None, description="Codes of the collaboratives shared (1-100)."
    )
    all_collaboratives: bool = strawberry.field(
        default=False, description="Share every collaborative, now and later."
    )
    measures: list[str] | None = strawberry.field(
        default=None, description="Codes of the measures shared (1-100)."
    )
    all_measures: bool = strawberry.field(
        default=False, description="Share every measure, now and later."
    )
    level: SharingLevel = strawberry.field(description="What the grantee may see.")
    cell_min: int = strawberry.field(
        default=DEFAULT_CELL_MIN, description="Counts from 1 to cellMin - 1 are hidden (1-1000)."
    )
    min_teams: int = strawberry.field(
        default=DEFAULT_MIN_TEAMS, description="Aggregate points of fewer teams are hidden."
    )
    purpose: str = strawberry.field(default="", description="Why the data are shared; 2000 max.")
    valid_from: datetime | None = strawberry.field(
        default=None, description="When access starts; default now."
    )
    valid_to: datetime | None = strawberry.field(
        default=None, description="When access ends; default open-ended."
    )


@strawberry.input(description="The agreement to revoke.")
class RevokeSharingAgreementInput:
    id: strawberry.ID = strawberry.field(description="Global id of the agreement.")


@strawberry.input(description="A link between a measure of the caller's sponsor and another's.")
class LinkEquivalentMeasureInput:
    measure: str = strawberry.field(description="Code of the caller's sponsor's measure.")
    equivalent_sponsor: str = strawberry.field(description="Slug of the other sponsor.")
    equivalent_measure: str = strawberry.field(description="Code of the other sponsor's measure.")


@strawberry.type(description="The agreement was created and is in force from validFrom.")
class CreateSharingAgreementSuccess:
    agreement: SharingAgreement = strawberry.field(description="The new agreement.")


@strawberry.type(description="The agreement was revoked; its grantee reads nothing more under it.")
class RevokeSharingAgreementSuccess:
    agreement: SharingAgreement = strawberry.field(description="The revoked agreement.")


@strawberry.type(description="This side of the link is declared; see `accepted`.")
class LinkEquivalentMeasureSuccess:
    equivalence: MeasureEquivalence = strawberry.field(description="The declared link.")


@strawberry.type(description="This side's declaration was withdrawn; the link no longer holds.")
class UnlinkEquivalentMeasureSuccess:
    measure: str = strawberry.field(description="The caller's sponsor's measure code.")


CreateSharingAgreementResult = Annotated[
    CreateSharingAgreementSuccess | ValidationError | NotFoundError,
    strawberry.union("CreateSharingAgreementResult"),
]
RevokeSharingAgreementResult = Annotated[
    RevokeSharingAgreementSuccess | NotFoundError | ConflictError,
    strawberry.union("RevokeSharingAgreementResult"),
]
LinkEquivalentMeasureResult = Annotated[
    LinkEquivalentMeasureSuccess | ValidationError | NotFoundError | ConflictError,
    strawberry.union("LinkEquivalentMeasureResult"),
]
UnlinkEquivalentMeasureResult = Annotated[
    UnlinkEquivalentMeasureSuccess | NotFoundError,
    strawberry.union("UnlinkEquivalentMeasureResult"),
]

_Error = ValidationError | NotFoundError | ConflictError


def _error(exc: DomainError) -> _Error:
    error = error_from_domain(exc)
    if isinstance(error, ValidationError | NotFoundError | ConflictError):
        return error
    return ValidationError(message=error.message, code=error.code, field=error.field)


def _codes(codes: list[str] | None, every: bool, field: str) -> list[str] | None:
    """The codes named, or None for every one (exactly one of the two must be given)."""
    if every == (codes is not None):
        raise InvalidInput(
            f"give either {field} or all{field.capitalize()}: true (exactly one)", field=field
        )
    for code in codes or []:
        check_code(code, field)
    return codes


@strawberry.type
class SharingMutations:
    @strawberry.mutation(
        description=(
            "Share collaboratives and measures with another sponsor at a level, under a "
            "suppression policy, for a time. Audited."
        ),
        permission_classes=[HasScope("admin")],
    )
    async def create_sharing_agreement(
        self, info: Info, input: CreateSharingAgreementInput
    ) -> CreateSharingAgreementResult:
        try:
            check_code(input.grantee, "grantee")
            check_text(input.purpose, "purpose", max_length=PURPOSE_LENGTH)
            new = NewAgreement(
                grantee_slug=input.grantee,
                collaborative_codes=_codes(
                    input.collaboratives, input.all_collaboratives, "collaboratives"
                ),
                measure_codes=_codes(input.measures, input.all_measures, "measures"),
                level=input.level,
                cell_min=input.cell_min,
                min_teams=input.min_teams,
                purpose=input.purpose,
                valid_from=input.valid_from,
                valid_to=input.valid_to,
            )
            async with info.context.db.begin() as session:
                row = await create_agreement(session, info.context.actor(), new)
        except DomainError as exc:
            error = _error(exc)
            if isinstance(error, ConflictError):
                return ValidationError(message=error.message, code=error.code, field=error.field)
            return error
        return CreateSharingAgreementSuccess(agreement=SharingAgreement.from_model(row))

    @strawberry.mutation(
        description="Revoke an agreement the caller's sponsor granted; access stops at once.",
        permission_classes=[HasScope("admin")],
    )
    async def revoke_sharing_agreement(
        self, info: Info, input: RevokeSharingAgreementInput
    ) -> RevokeSharingAgreementResult:
        try:
            agreement_id = row_id_of(str(input.id), "SharingAgreement")
            if agreement_id is None:
                raise NotFound("no such sharing agreement granted by this sponsor", field="id")
            async with info.context.db.begin() as session:
                row = await revoke_agreement(session, info.context.actor(), agreement_id)
        except DomainError as exc:
            error = _error(exc)
            if isinstance(error, ValidationError):
                return NotFoundError(message=error.message, code="NOT_FOUND")
            return error
        return RevokeSharingAgreementSuccess(agreement=SharingAgreement.from_model(row))

    @strawberry.mutation(
        description=(
            "Declare a measure of the caller's sponsor equivalent to another sponsor's measure. "
            "The link holds once the other sponsor declares it back; then aggregates across both "
            "sponsors pool the two measures. Audited."
        ),
        permission_classes=[HasScope("admin")],
    )
    async def link_equivalent_measure(
        self, info: Info, input: LinkEquivalentMeasureInput
    ) -> LinkEquivalentMeasureResult:
        try:
            check_code(input.measure, "measure")
            check_code(input.equivalent_sponsor, "equivalentSponsor")
            check_code(input.equivalent_measure, "equivalentMeasure")
            async with info.context.db.begin() as session:
                link = await declare_equivalence(
                    session,
                    info.context.actor(),
                    measure_code=input.measure,
                    other_sponsor_slug=input.equivalent_sponsor,
                    other_measure_code=input.equivalent_measure,
                )
        except DomainError as exc:
            return _error(exc)
        return LinkEquivalentMeasureSuccess(equivalence=MeasureEquivalence.from_link(link))

    @strawberry.mutation(
        description="Withdraw this side's declaration of a link; pooling stops at once. Audited.",
        permission_classes=[HasScope("admin")],
    )
    async def unlink_equivalent_measure(
        self, info: Info, input: LinkEquivalentMeasureInput
    ) -> UnlinkEquivalentMeasureResult:
        try:
            async with info.context.db.begin() as session:
                await remove_equivalence(
                    session,
                    info.context.actor(),
                    measure_code=input.measure,
                    other_sponsor_slug=input.equivalent_sponsor,
                    other_measure_code=input.equivalent_measure,
                )
        except DomainError as exc:
            error = _error(exc)
            if not isinstance(error, NotFoundError):
                return NotFoundError(message=error.message, code="NOT_FOUND")
            return error
        return UnlinkEquivalentMeasureSuccess(measure=input.measure)
