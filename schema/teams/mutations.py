"""Mutations: ``createOrganization`` and ``enrollTeam`` (scope program:write)."""

from __future__ import annotations

from datetime import date
from typing import Annotated

import strawberry

from db.enums import TeamRole
from db.errors import DomainError, InvalidInput
from db.queries.teams import EnrollmentInput, MemberInput, OrganizationInput
from db.queries.teams import create_organization as create_organization_row
from db.queries.teams import enroll_team as enroll_team_row
from schema.context import Info
from schema.errors import ConflictError, NotFoundError, ValidationError, error_from_domain
from schema.permissions import HasScope
from schema.teams.types import Organization, Team
from schema.validation import check_code, check_text

MAX_MEMBERS = 100
"""Most members one enrollment may list."""
EMAIL_LENGTH = 320


@strawberry.input(description="A new organization (site).")
class CreateOrganizationInput:
    code: str = strawberry.field(description="Code, unique within the sponsor.")
    name: str = strawberry.field(description="Display name.")
    city: str = strawberry.field(default="", description="City.")
    state: str = strawberry.field(default="", description="State or province.")
    region: str = strawberry.field(default="", description="Region.")


@strawberry.input(description="A member of a team being enrolled.")
class TeamMemberInput:
    name: str = strawberry.field(description="Full name (used when the person is new).")
    email: str = strawberry.field(
        description="Work e-mail; finds the person (case-insensitive) or creates one."
    )
    role: TeamRole = strawberry.field(description="Role in the team.")


@strawberry.input(description="A team to enroll in a collaborative.")
class EnrollTeamInput:
    collaborative: str = strawberry.field(description="Code of the collaborative.")
    organization: str = strawberry.field(description="Code of the team's organization.")
    code: str = strawberry.field(description="Code of the team, unique within the sponsor.")
    name: str = strawberry.field(description="Display name.")
    joined_on: date | None = strawberry.field(default=None, description="Day the team joined.")
    members: list[TeamMemberInput] = strawberry.field(
        default_factory=list, description="The team's members and their roles."
    )


@strawberry.type(description="The organization was created.")
class CreateOrganizationSuccess:
    organization: Organization = strawberry.field(description="The new organization.")


@strawberry.type(description="The team was enrolled.")
class EnrollTeamSuccess:
    team: Team = strawberry.field(description="The new team.")


CreateOrganizationResult = Annotated[
    CreateOrganizationSuccess | ValidationError | ConflictError,
    strawberry.union("CreateOrganizationResult"),
]
EnrollTeamResult = Annotated[
    EnrollTeamSuccess | ValidationError | ConflictError | NotFoundError,
    strawberry.union("EnrollTeamResult"),
]


def _organization(input: CreateOrganizationInput) -> OrganizationInput:
    """The checked input (InvalidInput names the first bad field)."""
    check_code(input.code, "code")
    check_text(input.name, "name", max_length=200, required=True)
    check_text(input.city, "city", max_length=120)
    check_text(input.state, "state", max_length=64)
    check_text(input.region, "region", max_length=120)
    return OrganizationInput(
        code=input.code,
        name=input.name.strip(),
        city=input.city.strip(),
        state=input.state.strip(),
        region=input.region.strip(),
    )


def _member(member: TeamMemberInput) -> MemberInput:
    check_text(member.name, "members", max_length=200, required=True)
    check_text(member.email, "members", max_length=EMAIL_LENGTH, required=True)
    email = member.email.strip()
    local, at, domain = email.partition("@")
    if not at or not local or not domain or any(c.isspace() for c in email):
        raise InvalidInput(f"{email!r} is not an e-mail address", field="members")
    return MemberInput(name=member.name.strip(), email=email, role=member.role)


def _enrollment(input: EnrollTeamInput) -> EnrollmentInput:
    """The checked input (InvalidInput names the first bad field)."""
    check_text(input.collaborative, "collaborative", max_length=64, required=True)
    check_text(input.organization, "organization", max_length=64, required=True)
    check_code(input.code, "code")
    check_text(input.name, "name", max_length=200, required=True)
    if len(input.members) > MAX_MEMBERS:
        raise InvalidInput(f"a team lists at most {MAX_MEMBERS} members", field="members")
    return EnrollmentInput(
        collaborative_code=input.collaborative,
        organization_code=input.organization,
        code=input.code,
        name=input.name.strip(),
        joined_on=input.joined_on,
        members=[_member(member) for member in input.members],
    )


@strawberry.type
class TeamMutations:
    @strawberry.mutation(
        description="Create an organization (a hospital, clinic or practice).",
        permission_classes=[HasScope("program:write")],
    )
    async def create_organization(
        self, info: Info, input: CreateOrganizationInput
    ) -> CreateOrganizationResult:
        try:
            organization = _organization(input)
            async with info.context.db.begin() as session:
                row = await create_organization_row(session, info.context.actor(), organization)
        except DomainError as exc:
            error = error_from_domain(exc)
            assert isinstance(error, ValidationError | ConflictError), "no lookups here"
            return error
        return CreateOrganizationSuccess(organization=Organization.from_model(row))

    @strawberry.mutation(
        description=(
            "Enroll an organization's team in a collaborative, with its members (people are "
            "found by e-mail or created)."
        ),
        permission_classes=[HasScope("program:write")],
    )
    async def enroll_team(self, info: Info, input: EnrollTeamInput) -> EnrollTeamResult:
        try:
            enrollment = _enrollment(input)
            async with info.context.db.begin() as session:
                row = await enroll_team_row(session, info.context.actor(), enrollment)
        except DomainError as exc:
            return error_from_domain(exc)
        return EnrollTeamSuccess(team=Team.from_model(row))
