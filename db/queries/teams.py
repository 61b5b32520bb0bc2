"""Organizations (sites), teams (their enrollment in a collaborative) and team members.

Reads are scoped to one sponsor. Nested team lists (a collaborative's or an organization's teams)
are fetched for many parents at once with a window function, so a page of collaboratives costs
two statements for all of their team lists, not two per collaborative.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any, Literal

from sqlalchemy import ColumnElement, and_, func, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from db.base import utcnow
from db.enums import TeamRole
from db.errors import Conflict, InvalidInput, NotFound
from db.models import Collaborative, Organization, Person, Team, TeamMember
from db.queries.audit import Actor, record_event, snapshot
from db.queries.collaboratives import get_collaborative_by_code
from db.queries.paging import Keyset, Page, check_keyset, keyset_page
from db.queries.text import matches_any

ORGANIZATION_SORTS = {
    "CODE": Organization.code,
    "NAME": Organization.name,
    "STATE": Organization.state,
    "CREATED_AT": Organization.created_at,
}

TEAM_SORTS = {
    "CODE": Team.code,
    "NAME": Team.name,
    "CREATED_AT": Team.created_at,
}

TeamParent = Literal["collaborative", "organization"]
"""Which column groups a nested team list."""


# --- organizations -------------------------------------------------------------------------


@dataclass(frozen=True)
class OrganizationFilter:
    """Filters of ``organizations``; None means "any"."""

    search: str | None = None
    state: str | None = None


async def list_organizations(
    session: AsyncSession,
    sponsor_id: uuid.UUID,
    *,
    filter: OrganizationFilter,
    sort: str = "CODE",
    descending: bool = False,
    first: int,
    after: Keyset | None = None,
) -> Page[Organization]:
    """One page of a sponsor's organizations."""
    query = select(Organization).where(Organization.sponsor_id == sponsor_id)
    if filter.state is not None:
        query = query.where(func.lower(Organization.state) == filter.state.lower())
    if filter.search:
        query = query.where(
            matches_any(
                filter.search,
                Organization.code,
                Organization.name,
                Organization.city,
                Organization.region,
            )
        )
    return await keyset_page(
        session,
        query,
        sort=ORGANIZATION_SORTS[sort],
        tiebreak=Organization.id,
        descending=descending,
        first=first,
        after=after,
    )


async def get_organization_by_code(
    session: AsyncSession, sponsor_id: uuid.UUID, code: str
) -> Organization | None:
    """A sponsor's organization by code."""
    return await session.scalar(
        select(Organization).where(Organization.sponsor_id == sponsor_id, Organization.code == code)
    )


async def organizations_by_ids(
    session: AsyncSession, sponsor_id: uuid.UUID, ids: Sequence[uuid.UUID]
) -> list[Organization | None]:
    """Organizations of one sponsor in the order of ``ids`` (None where missing)."""
    rows = (
        await session.scalars(
            select(Organization).where(
                Organization.sponsor_id == sponsor_id, Organization.id.in_(ids)
            )
        )
    ).all()
    by_id = {row.id: row for row in rows}
    return [by_id.get(i) for i in ids]


async def organizations_by_codes(
    session: AsyncSession, sponsor_id: uuid.UUID, codes: Sequence[str]
) -> list[Organization | None]:
    """Organizations of one sponsor in the order of ``codes`` (federation entity keys)."""
    rows = (
        await session.scalars(
            select(Organization).where(
                Organization.sponsor_id == sponsor_id, Organization.code.in_(codes)
            )
        )
    ).all()
    by_code = {row.code: row for row in rows}
    return [by_code.get(c) for c in codes]


# --- teams ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class TeamFilter:
    """Filters of team lists; None means "any". Hashable: it is part of DataLoader keys.

    ``state`` is the organization's state. ``active`` keeps teams that have not withdrawn (no
    withdrawal date, or one still in the future) — or, when False, only those that have.
    """

    collaborative_code: str | None = None
    organization_code: str | None = None
    state: str | None = None
    search: str | None = None
    active: bool | None = None


def _team_conditions(sponsor_id: uuid.UUID, filter: TeamFilter) -> list[ColumnElement[bool]]:
    """WHERE conditions of a team list (the sponsor and every given filter)."""
    conditions: list[ColumnElement[bool]] = [Team.sponsor_id == sponsor_id]
    if filter.collaborative_code is not None:
        conditions.append(
            Team.collaborative_id.in_(
                select(Collaborative.id).where(
                    Collaborative.sponsor_id == sponsor_id,
                    Collaborative.code == filter.collaborative_code,
                )
            )
        )
    if filter.organization_code is not None or filter.state is not None:
        organizations = select(Organization.id).where(Organization.sponsor_id == sponsor_id)
        if filter.organization_code is not None:
            organizations = organizations.where(Organization.code == filter.organization_code)
        if filter.state is not None:
            organizations = organizations.where(
                func.lower(Organization.state) == filter.state.lower()
            )
        conditions.append(Team.organization_id.in_(organizations))
    if filter.search:
        conditions.append(
            or_(
                matches_any(filter.search, Team.code, Team.name),
                Team.organization_id.in_(
                    select(Organization.id).where(
                        Organization.sponsor_id == sponsor_id,
                        matches_any(filter.search, Organization.name),
                    )
                ),
            )
        )
    if filter.active is not None:
        today = utcnow().date()
        active = or_(Team.withdrawn_on.is_(None), Team.withdrawn_on > today)
        conditions.append(active if filter.active else ~active)
    return conditions


async def list_teams(
    session: AsyncSession,
    sponsor_id: uuid.UUID,
    *,
    filter: TeamFilter,
    sort: str = "CODE",
    descending: bool = False,
    first: int,
    after: Keyset | None = None,
) -> Page[Team]:
    """One page of a sponsor's teams."""
    query = select(Team).where(*_team_conditions(sponsor_id, filter))
    return await keyset_page(
        session,
        query,
        sort=TEAM_SORTS[sort],
        tiebreak=Team.id,
        descending=descending,
        first=first,
        after=after,
    )


async def get_team_by_code(session: AsyncSession, sponsor_id: uuid.UUID, code: str) -> Team | None:
    """A sponsor's team by code."""
    return await session.scalar(
        select(Team).where(Team.sponsor_id == sponsor_id, Team.code == code)
    )


async def teams_by_ids(
    session: AsyncSession, sponsor_id: uuid.UUID, ids: Sequence[uuid.UUID]
) -> list[Team | None]:
    """Teams of one sponsor in the order of ``ids`` (None where missing)."""
    rows = (
        await session.scalars(select(Team).where(Team.sponsor_id == sponsor_id, Team.id.in_(ids)))
    ).all()
    by_id = {row.id: row for row in rows}
    return [by_id.get(i) for i in ids]


async def teams_by_codes(
    session: AsyncSession, sponsor_id: uuid.UUID, codes: Sequence[str]
) -> list[Team | None]:
    """Teams of one sponsor in the order of ``codes`` (federation entity keys)."""
    rows = (
        await session.scalars(
            select(Team).where(Team.sponsor_id == sponsor_id, Team.code.in_(codes))
        )
    ).all()
    by_code = {row.code: row for row in rows}
    return [by_code.get(c) for c in codes]


@dataclass(frozen=True)
class TeamPageKey:
    """One nested team list: the parent's id, the page wanted and the filter (a loader key).

    Nested lists are ordered by code, then id; ``after`` is the keyset (code, id) of a cursor.
    """

    parent_id: uuid.UUID
    first: int
    after: Keyset | None = None
    filter: TeamFilter = TeamFilter()


def _parent_column(parent: TeamParent) -> Any:
    return Team.collaborative_id if parent == "collaborative" else Team.organization_id


def _batches(keys: Sequence[TeamPageKey]) -> list[list[TeamPageKey]]:
    """Keys grouped so that one statement answers each group: same page size and filter, and
    each parent at most once (two pages of one parent cannot share a partition)."""
    batches: list[list[TeamPageKey]] = []
    parents: list[set[uuid.UUID]] = []
    for key in keys:
        for batch, seen in zip(batches, parents, strict=True):
            same = batch[0].first == key.first and batch[0].filter == key.filter
            if same and key.parent_id not in seen:
                batch.append(key)
                seen.add(key.parent_id)
                break
        else:
            batches.append([key])
            parents.append({key.parent_id})
    return batches


async def team_pages_by_parent(
    session: AsyncSession,
    sponsor_id: uuid.UUID,
    keys: Sequence[TeamPageKey],
    *,
    parent: TeamParent,
) -> list[Page[Team]]:
    """A page of teams for each key, in key order, for a DataLoader.

    Per batch of keys: one statement numbers each parent's matching teams with
    ``ROW_NUMBER() OVER (PARTITION BY parent ORDER BY code, id)`` after each key's cursor and
    keeps the first ``first + 1``; one grouped ``COUNT`` gives every total (cursor ignored, as
    in :func:`db.queries.paging.keyset_page`).
    """
    for key in keys:
        check_keyset(key.after, Team.code)
    parent_column = _parent_column(parent)
    pages: dict[TeamPageKey, Page[Team]] = {}
    counted: dict[TeamFilter, dict[uuid.UUID, int]] = {}
    for batch in _batches(keys):
        first, team_filter = batch[0].first, batch[0].filter
        conditions = _team_conditions(sponsor_id, team_filter)
        from_start = [key.parent_id for key in batch if key.after is None]
        positions: list[ColumnElement[bool]] = []
        if from_start:
            positions.append(parent_column.in_(from_start))
        for key in batch:
            if key.after is not None:
                after_value, after_id = key.after.value, key.after.id
                position = or_(
                    Team.code > after_value, and_(Team.code == after_value, Team.id > after_id)
                )
                positions.append(and_(parent_column == key.parent_id, position))
        row_number = (
            func.row_number()
            .over(partition_by=parent_column, order_by=(Team.code, Team.id))
            .label("row_number")
        )
        numbered = select(Team, row_number).where(*conditions, or_(*positions)).subquery()
        team = aliased(Team, numbered)
        result = await session.execute(
            select(team).where(numbered.c.row_number <= first + 1).order_by(numbered.c.row_number)
        )
        rows_by_parent: defaultdict[uuid.UUID, list[Team]] = defaultdict(list)
        for row in result.scalars():
            rows_by_parent[getattr(row, _parent_attribute(parent))].append(row)
        totals = counted.get(team_filter)
        if totals is None:
            totals = await _count_by_parent(
                session, conditions, parent_column, [key.parent_id for key in keys]
            )
            counted[team_filter] = totals
        for key in batch:
            rows = rows_by_parent[key.parent_id]
            page_rows = rows[:first]
            pages[key] = Page(
                rows=page_rows,
                keysets=[Keyset(value=row.code, id=row.id) for row in page_rows],
                has_next=len(rows) > first,
                total=totals.get(key.parent_id, 0),
            )
    return [pages[key] for key in keys]


def _parent_attribute(parent: TeamParent) -> str:
    return "collaborative_id" if parent == "collaborative" else "organization_id"


async def _count_by_parent(
    session: AsyncSession,
    conditions: Sequence[ColumnElement[bool]],
    parent_column: Any,
    parent_ids: Sequence[uuid.UUID],
) -> dict[uuid.UUID, int]:
    """Matching teams per parent, in one grouped COUNT."""
    result = await session.execute(
        select(parent_column, func.count())
        .where(*conditions, parent_column.in_(set(parent_ids)))
        .group_by(parent_column)
    )
    return {parent_id: int(count) for parent_id, count in result}


_ROLE_ORDER = {role: index for index, role in enumerate(TeamRole)}


async def members_by_team_ids(
    session: AsyncSession, sponsor_id: uuid.UUID, ids: Sequence[uuid.UUID]
) -> list[list[TeamMember]]:
    """Each team's members, senior leader first (the order of ``TeamRole``), in key order."""
    rows = (
        await session.scalars(
            select(TeamMember).where(
                TeamMember.sponsor_id == sponsor_id, TeamMember.team_id.in_(ids)
            )
        )
    ).all()
    grouped: defaultdict[uuid.UUID, list[TeamMember]] = defaultdict(list)
    for row in sorted(rows, key=lambda member: (_ROLE_ORDER[member.role], str(member.person_id))):
        grouped[row.team_id].append(row)
    return [grouped[i] for i in ids]


# --- writes --------------------------------------------------------------------------------


@dataclass(frozen=True)
class OrganizationInput:
    """A new organization as program administration gives it (checked at the edge)."""

    code: str
    name: str
    city: str = ""
    state: str = ""
    region: str = ""


async def create_organization(
    session: AsyncSession, actor: Actor, organization: OrganizationInput
) -> Organization:
    """Create an organization and audit it; Conflict when the code is taken."""
    code = organization.code
    if await get_organization_by_code(session, actor.sponsor_id, code) is not None:
        raise Conflict(f"an organization with code {code!r} exists", field="code")
    row = Organization(
        sponsor_id=actor.sponsor_id,
        id=uuid.uuid4(),
        code=code,
        name=organization.name,
        city=organization.city,
        state=organization.state,
        region=organization.region,
    )
    session.add(row)
    try:
        await session.flush()
    except IntegrityError as exc:
        raise Conflict(f"an organization with code {code!r} exists", field="code") from exc
    await record_event(
        session,
        actor,
        action="organization.create",
        entity_type="Organization",
        entity_id=row.id,
        before=None,
        after=snapshot(row),
    )
    return row


@dataclass(frozen=True)
class MemberInput:
    """A team member: the person (found or created by e-mail) and the role."""

    name: str
    email: str
    role: TeamRole


@dataclass(frozen=True)
class EnrollmentInput:
    """A team to enroll, naming its collaborative and organization by code."""

    collaborative_code: str
    organization_code: str
    code: str
    name: str
    joined_on: date | None = None
    members: Sequence[MemberInput] = ()


async def _people_by_email(
    session: AsyncSession, actor: Actor, members: Sequence[MemberInput]
) -> dict[str, Person]:
    """The person of every member's e-mail (case-insensitive), creating and auditing new ones.

    An existing person keeps the name on record: enrollment does not rename people.
    """
    wanted: dict[str, MemberInput] = {}
    for member in members:
        wanted.setdefault(member.email.lower(), member)
    if not wanted:
        return {}
    found = (
        await session.scalars(
            select(Person).where(
                Person.sponsor_id == actor.sponsor_id,
                func.lower(Person.email).in_(list(wanted)),
            )
        )
    ).all()
    people = {person.email.lower(): person for person in found}
    created: list[Person] = []
    for email, member in wanted.items():
        if email not in people:
            person = Person(
                sponsor_id=actor.sponsor_id, id=uuid.uuid4(), name=member.name, email=member.email
            )
            session.add(person)
            people[email] = person
            created.append(person)
    if created:
        await session.flush()
    for person in created:
        await record_event(
            session,
            actor,
            action="person.create",
            entity_type="Person",
            entity_id=person.id,
            before=None,
            after=snapshot(person),
        )
    return people


async def enroll_team(session: AsyncSession, actor: Actor, enrollment: EnrollmentInput) -> Team:
    """Enroll an organization's team in a collaborative with its members; audited.

    NotFound names the unknown collaborative or organization; Conflict a taken team code;
    InvalidInput a member listed twice in the same role.
    """
    sponsor_id = actor.sponsor_id
    collaborative = await get_collaborative_by_code(
        session, sponsor_id, enrollment.collaborative_code
    )
    if collaborative is None:
        raise NotFound(f"no collaborative {enrollment.collaborative_code!r}", field="collaborative")
    organization = await get_organization_by_code(session, sponsor_id, enrollment.organization_code)
    if organization is None:
        raise NotFound(f"no organization {enrollment.organization_code!r}", field="organization")
    pairs = [(member.email.lower(), member.role) for member in enrollment.members]
    if len(set(pairs)) != len(pairs):
        raise InvalidInput("a member is listed twice in the same role", field="members")
    code = enrollment.code
    if await get_team_by_code(session, sponsor_id, code) is not None:
        raise Conflict(f"a team with code {code!r} exists", field="code")
    team = Team(
        sponsor_id=sponsor_id,
        id=uuid.uuid4(),
        code=code,
        name=enrollment.name,
        organization_id=organization.id,
        collaborative_id=collaborative.id,
        joined_on=enrollment.joined_on,
        withdrawn_on=None,
    )
    session.add(team)
    try:
        await session.flush()
    except IntegrityError as exc:
        raise Conflict(f"a team with code {code!r} exists", field="code") from exc
    people = await _people_by_email(session, actor, enrollment.members)
    members = [
        TeamMember(
            sponsor_id=sponsor_id,
            id=uuid.uuid4(),
            team_id=team.id,
            person_id=people[member.email.lower()].id,
            role=member.role,
        )
        for member in enrollment.members
    ]
    session.add_all(members)
    await session.flush()
    after = snapshot(team)
    after["members"] = [
        {"person_id": str(member.person_id), "role": member.role.value} for member in members
    ]
    await record_event(
        session,
        actor,
        action="team.enroll",
        entity_type="Team",
        entity_id=team.id,
        before=None,
        after=after,
    )
    return team
