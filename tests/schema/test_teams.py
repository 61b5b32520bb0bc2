"""Organizations and teams: create, enroll, read back, page and filter; scopes, tenancy, audit;
raw measure series of teams (windows, ``last``, team-bound EHR clients, batching)."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import event, select
from starlette.applications import Starlette

from api.state import AppState
from db.enums import ClientKind, ImprovementDirection, MeasureType, Scoring
from db.models import (
    AuditEvent,
    Collaborative,
    CollaborativeMeasure,
    DataPoint,
    Measure,
    MeasureVersion,
    Person,
    Team,
)
from tests.factories import Tenant, TenantFactory

CREATE_COLLABORATIVE = """
mutation Create($input: CreateCollaborativeInput!) {
  createCollaborative(input: $input) { __typename }
}
"""

CREATE_ORGANIZATION = """
mutation CreateOrganization($input: CreateOrganizationInput!) {
  createOrganization(input: $input) {
    __typename
    ... on CreateOrganizationSuccess { organization { id code name city state region } }
    ... on Error { code message }
    ... on ValidationError { field }
    ... on ConflictError { field }
  }
}
"""

ENROLL = """
mutation Enroll($input: EnrollTeamInput!) {
  enrollTeam(input: $input) {
    __typename
    ... on EnrollTeamSuccess {
      team { id code name joinedOn withdrawnOn active organization { code } collaborative { code } }
    }
    ... on Error { code message }
    ... on ValidationError { field }
    ... on ConflictError { field }
    ... on NotFoundError { field }
  }
}
"""

TEAM = """
query One($id: ID, $code: String, $sponsor: String) {
  team(id: $id, code: $code, sponsor: $sponsor) {
    id code name joinedOn withdrawnOn
    organization { code name state }
    collaborative { code name }
    members { role person { id name email } }
  }
}
"""

ORGANIZATION = """
query Org($id: ID, $code: String, $sponsor: String) {
  organization(id: $id, code: $code, sponsor: $sponsor) {
    id code name city state region
    teams(first: 10) { totalCount edges { node { code } } }
  }
}
"""

ORGANIZATIONS = """
query Orgs($filter: OrganizationFilter, $first: Int, $after: String, $order: OrganizationOrder) {
  organizations(filter: $filter, first: $first, after: $after, orderBy: $order) {
    totalCount
    pageInfo { hasNextPage endCursor }
    edges { cursor node { code name state } }
  }
}
"""

TEAMS = """
query Teams($filter: TeamFilter, $first: Int, $after: String, $order: TeamOrder) {
  teams(filter: $filter, first: $first, after: $after, orderBy: $order) {
    totalCount
    pageInfo { hasNextPage endCursor }
    edges { node { code } }
  }
}
"""

COLLABORATIVE_TEAMS = """
query CollaborativeTeams(
  $code: String!, $first: Int, $after: String, $filter: CollaborativeTeamFilter
) {
  collaborative(code: $code) {
    teams(first: $first, after: $after, filter: $filter) {
      totalCount
      pageInfo { hasNextPage hasPreviousPage endCursor }
      edges { cursor node { code organization { code } } }
    }
  }
}
"""

MEASURE_SERIES = """
query Series($code: String!, $measure: String!, $from: Period, $to: Period) {
  team(code: $code) {
    code
    measureSeries(measure: $measure, from: $from, to: $to) {
      measure { code }
      points { period numerator denominator value annotations }
    }
  }
}
"""

SERIES = """
query AllSeries($code: String!, $measures: [String!], $from: Period, $to: Period, $last: Int) {
  team(code: $code) {
    series(measures: $measures, from: $from, to: $to, last: $last) {
      measure { code }
      points { period value }
    }
  }
}
"""

DASHBOARD = """
query Dashboard {
  collaboratives(first: 10) {
    edges { node { code teams(first: 50) { totalCount edges { node {
      code
      series(last: 12) { measure { code } points { period numerator denominator value } }
    } } } } }
  }
}
"""

VIEWER_TEAMS = """
query { viewer { kind teams { code organization { code } collaborative { code } } } }
"""


# --- helpers ------------------------------------------------------------------------------


async def create_collaborative(tenant: Tenant, code: str) -> None:
    body = await tenant.gql(
        CREATE_COLLABORATIVE,
        {"input": {"code": code, "name": f"Collaborative {code}", "topic": "Asthma"}},
    )
    assert body["data"]["createCollaborative"]["__typename"] == "CreateCollaborativeSuccess", body


async def create_organization(tenant: Tenant, code: str, **extra: Any) -> dict[str, Any]:
    values = {"code": code, "name": f"Organization {code}", "city": "Boston", "state": "MA"}
    values.update(extra)
    body = await tenant.gql(CREATE_ORGANIZATION, {"input": values})
    assert "errors" not in body, body
    result: dict[str, Any] = body["data"]["createOrganization"]
    return result


async def enroll(
    tenant: Tenant, code: str, collaborative: str, organization: str, **extra: Any
) -> dict[str, Any]:
    values: dict[str, Any] = {
        "collaborative": collaborative,
        "organization": organization,
        "code": code,
        "name": f"Team {code}",
    }
    values.update(extra)
    body = await tenant.gql(ENROLL, {"input": values})
    assert "errors" not in body, body
    result: dict[str, Any] = body["data"]["enrollTeam"]
    return result


async def program(tenant: Tenant, collaborative: str, teams: dict[str, str]) -> None:
    """A collaborative with teams {team code: organization code}, organizations created as
    needed."""
    await create_collaborative(tenant, collaborative)
    for team, organization in teams.items():
        created = await create_organization(tenant, organization)
        assert created["__typename"] in ("CreateOrganizationSuccess", "ConflictError"), created
        enrolled = await enroll(tenant, team, collaborative, organization)
        assert enrolled["__typename"] == "EnrollTeamSuccess", enrolled


def sessionmaker(app: Starlette) -> Any:
    state: AppState = app.state.collabx
    return state.sessionmaker


async def add_measure(
    app: Starlette, tenant: Tenant, collaborative: str, code: str, *, position: int
) -> uuid.UUID:
    """A PROPORTION measure (x100) in ``collaborative``'s measure set, written with the ORM."""
    async with sessionmaker(app).begin() as session:
        collaborative_id = await session.scalar(
            select(Collaborative.id).where(
                Collaborative.sponsor_id == tenant.sponsor_id, Collaborative.code == collaborative
            )
        )
        assert collaborative_id is not None
        measure_id = uuid.uuid4()
        session.add(
            Measure(sponsor_id=tenant.sponsor_id, id=measure_id, code=code, current_version=1)
        )
        await session.flush()
        session.add(
            MeasureVersion(
                sponsor_id=tenant.sponsor_id,
                id=uuid.uuid4(),
                measure_id=measure_id,
                version=1,
                name=f"Measure {code}",
                type=MeasureType.PROCESS,
                scoring=Scoring.PROPORTION,
                multiplier=100.0,
                improvement_direction=ImprovementDirection.INCREASE,
            )
        )
        session.add(
            CollaborativeMeasure(
                sponsor_id=tenant.sponsor_id,
                collaborative_id=collaborative_id,
                measure_id=measure_id,
                position=position,
            )
        )
    return measure_id


async def add_points(
    app: Starlette,
    tenant: Tenant,
    team: str,
    measure_id: uuid.UUID,
    points: list[tuple[str, int | None, int | None, float | None, str]],
    *,
    stratum: str = "",
) -> None:
    """Data points (period, numerator, denominator, value, annotation) of a team."""
    async with sessionmaker(app).begin() as session:
        team_id = await session.scalar(
            select(Team.id).where(Team.sponsor_id == tenant.sponsor_id, Team.code == team)
        )
        assert team_id is not None
        for period, numerator, denominator, value, annotation in points:
            session.add(
                DataPoint(
                    sponsor_id=tenant.sponsor_id,
                    id=uuid.uuid4(),
                    team_id=team_id,
                    measure_id=measure_id,
                    measure_version=1,
                    period=period,
                    stratum=stratum,
                    numerator=numerator,
                    denominator=denominator,
                    value=value,
                    annotation=annotation,
                )
            )


def monthly(year: int, months: range, numerator: int = 5) -> list[Any]:
    return [(f"{year}-{m:02d}", numerator, 10, None, "") for m in months]


def codes(connection: dict[str, Any]) -> list[str]:
    return [edge["node"]["code"] for edge in connection["edges"]]


def error_codes(body: dict[str, Any]) -> list[str]:
    return [error.get("extensions", {}).get("code") for error in body.get("errors", [])]


# --- program administration ---------------------------------------------------------------


async def test_create_organization_enroll_team_and_read_back(tenant: Tenant) -> None:
    await create_collaborative(tenant, "asthma")
    created = await create_organization(
        tenant, "mercy", name="Mercy Clinic", city="Springfield", state="IL", region="Midwest"
    )
    assert created["__typename"] == "CreateOrganizationSuccess", created
    assert created["organization"]["code"] == "mercy"
    assert created["organization"]["region"] == "Midwest"

    enrolled = await enroll(
        tenant,
        "mercy-asthma",
        "asthma",
        "mercy",
        joinedOn="2024-01-15",
        members=[
            {"name": "Ada Lead", "email": "ada@mercy.example", "role": "DAY_TO_DAY_LEAD"},
            {"name": "Sam Senior", "email": "sam@mercy.example", "role": "SENIOR_LEADER"},
            {"name": "Ada Lead", "email": "ada@mercy.example", "role": "DATA_LEAD"},
        ],
    )
    assert enrolled["__typename"] == "EnrollTeamSuccess", enrolled
    team = enrolled["team"]
    assert team["joinedOn"] == "2024-01-15"
    assert team["withdrawnOn"] is None
    assert team["active"] is True
    assert team["organization"] == {"code": "mercy"}
    assert team["collaborative"] == {"code": "asthma"}

    body = await tenant.gql(TEAM, {"code": "mercy-asthma"})
    assert "errors" not in body, body
    read = body["data"]["team"]
    assert read["id"] == team["id"]
    assert read["organization"] == {"code": "mercy", "name": "Mercy Clinic", "state": "IL"}
    assert read["collaborative"]["code"] == "asthma"
    roles = [(m["role"], m["person"]["email"]) for m in read["members"]]
    assert roles == [
        ("SENIOR_LEADER", "sam@mercy.example"),
        ("DAY_TO_DAY_LEAD", "ada@mercy.example"),
        ("DATA_LEAD", "ada@mercy.example"),
    ]
    ada = [m["person"]["id"] for m in read["members"] if m["person"]["name"] == "Ada Lead"]
    assert len(set(ada)) == 1, "one person in two roles"

    by_id = await tenant.gql(TEAM, {"id": team["id"]})
    assert by_id["data"]["team"]["code"] == "mercy-asthma"

    body = await tenant.gql(COLLABORATIVE_TEAMS, {"code": "asthma"})
    assert "errors" not in body, body
    connection = body["data"]["collaborative"]["teams"]
    assert connection["totalCount"] == 1
    assert connection["edges"][0]["node"] == {
        "code": "mercy-asthma",
        "organization": {"code": "mercy"},
    }

    body = await tenant.gql(ORGANIZATIONS)
    assert "errors" not in body, body
    assert codes(body["data"]["organizations"]) == ["mercy"]
    assert body["data"]["organizations"]["totalCount"] == 1

    body = await tenant.gql(ORGANIZATION, {"code": "mercy"})
    assert "errors" not in body, body
    organization = body["data"]["organization"]
    assert organization["city"] == "Springfield"
    assert codes(organization["teams"]) == ["mercy-asthma"]
    by_id = await tenant.gql(ORGANIZATION, {"id": organization["id"]})
    assert by_id["data"]["organization"]["code"] == "mercy"

    body = await tenant.gql(TEAMS, {"filter": {"collaborative": "asthma"}})
    assert codes(body["data"]["teams"]) == ["mercy-asthma"]


async def test_enrollment_finds_people_by_email_case_insensitively(
    app: Starlette, tenant: Tenant
) -> None:
    await create_collaborative(tenant, "asthma")
    await create_organization(tenant, "mercy")
    first = await enroll(
        tenant,
        "t1",
        "asthma",
        "mercy",
        members=[{"name": "Ada", "email": "Ada@Mercy.example", "role": "MEMBER"}],
    )
    second = await enroll(
        tenant,
        "t2",
        "asthma",
        "mercy",
        members=[{"name": "Ada L.", "email": "ada@mercy.example", "role": "CLINICAL_CHAMPION"}],
    )
    assert first["__typename"] == second["__typename"] == "EnrollTeamSuccess"
    one = await tenant.gql(TEAM, {"code": "t1"})
    two = await tenant.gql(TEAM, {"code": "t2"})
    person_one = one["data"]["team"]["members"][0]["person"]
    person_two = two["data"]["team"]["members"][0]["person"]
    assert person_one == person_two
    assert person_one["name"] == "Ada", "enrollment does not rename existing people"
    async with sessionmaker(app)() as session:
        people = (
            await session.scalars(select(Person).where(Person.sponsor_id == tenant.sponsor_id))
        ).all()
    assert len(people) == 1


async def test_duplicate_codes_conflict(tenant: Tenant) -> None:
    await program(tenant, "asthma", {"t1": "mercy"})
    again = await create_organization(tenant, "mercy")
    assert again["__typename"] == "ConflictError"
    assert again["code"] == "CONFLICT"
    assert again["field"] == "code"
    team = await enroll(tenant, "t1", "asthma", "mercy")
    assert team["__typename"] == "ConflictError"
    assert (team["code"], team["field"]) == ("CONFLICT", "code")


async def test_unknown_collaborative_or_organization_is_not_found(tenant: Tenant) -> None:
    await program(tenant, "asthma", {"t1": "mercy"})
    missing = await enroll(tenant, "t2", "nope", "mercy")
    assert missing["__typename"] == "NotFoundError"
    assert (missing["code"], missing["field"]) == ("NOT_FOUND", "collaborative")
    missing = await enroll(tenant, "t2", "asthma", "nope")
    assert (missing["code"], missing["field"]) == ("NOT_FOUND", "organization")


async def test_invalid_inputs_are_validation_errors(tenant: Tenant) -> None:
    await create_collaborative(tenant, "asthma")
    bad = await create_organization(tenant, "Not A Code")
    assert (bad["__typename"], bad["field"]) == ("ValidationError", "code")
    bad = await create_organization(tenant, "ok", name="nul\x00byte")
    assert (bad["code"], bad["field"]) == ("VALIDATION", "name")
    bad = await create_organization(tenant, "ok2", region="x" * 121)
    assert (bad["code"], bad["field"]) == ("VALIDATION", "region")
    await create_organization(tenant, "mercy")
    member = {"name": "Ada", "email": "not-an-email", "role": "MEMBER"}
    bad = await enroll(tenant, "t1", "asthma", "mercy", members=[member])
    assert (bad["code"], bad["field"]) == ("VALIDATION", "members")
    member = {"name": "Ada", "email": "ada@x.example", "role": "MEMBER"}
    bad = await enroll(tenant, "t1", "asthma", "mercy", members=[member, member])
    assert (bad["code"], bad["field"]) == ("VALIDATION", "members")
    bad = await enroll(tenant, "t1", "asthma", "mercy", name=" ")
    assert (bad["code"], bad["field"]) == ("VALIDATION", "name")
    body = await tenant.gql(TEAMS, {"filter": {"collaborative": "asthma"}})
    assert body["data"]["teams"]["totalCount"] == 0, "failed enrollments write nothing"


async def test_nul_bytes_in_lookups_and_filters(tenant: Tenant) -> None:
    await program(tenant, "asthma", {"t1": "mercy"})
    # Over-long codes find nothing; NUL bytes anywhere in a query are refused up front.
    body = await tenant.gql(ORGANIZATION, {"code": "x" * 65})
    assert body == {"data": {"organization": None}}
    for document, variables in (
        (TEAM, {"code": "t1\x00"}),
        (MEASURE_SERIES, {"code": "t1", "measure": "m\x00"}),
        (SERIES, {"code": "t1", "measures": ["m\x00"]}),
        (TEAMS, {"filter": {"search": "a\x00"}}),
        (ORGANIZATIONS, {"filter": {"state": "a\x00"}}),
        (COLLABORATIVE_TEAMS, {"code": "asthma", "filter": {"organization": "a\x00"}}),
        (ORGANIZATIONS, {"filter": {"search": "x" * 201}}),
    ):
        body = await tenant.gql(document, variables)
        assert error_codes(body) == ["VALIDATION"], body


async def test_another_tenant_sees_nothing(tenants: TenantFactory) -> None:
    owner = await tenants.create()
    other = await tenants.create()
    await program(owner, "asthma", {"t1": "mercy"})
    team_id = (await owner.gql(TEAM, {"code": "t1"}))["data"]["team"]["id"]

    assert (await other.gql(TEAM, {"code": "t1"}))["data"]["team"] is None
    assert (await other.gql(TEAM, {"id": team_id}))["data"]["team"] is None
    assert (await other.gql(TEAM, {"code": "t1", "sponsor": owner.slug}))["data"]["team"] is None
    assert (await other.gql(ORGANIZATION, {"code": "mercy"}))["data"]["organization"] is None
    body = await other.gql(ORGANIZATIONS)
    assert body["data"]["organizations"]["totalCount"] == 0
    body = await other.gql(TEAMS, {"filter": {"collaborative": "asthma"}})
    assert body["data"]["teams"]["edges"] == []
    missing = await enroll(other, "t9", "asthma", "mercy")
    assert (missing["code"], missing["field"]) == ("NOT_FOUND", "collaborative")


async def test_missing_scopes_are_forbidden(tenant: Tenant) -> None:
    await program(tenant, "asthma", {"t1": "mercy"})
    client_id, secret = await tenant.add_client(ClientKind.DASHBOARD, scopes=("catalog:read",))
    token = await tenant.token(client_id, secret)
    for document, variables in (
        (TEAM, {"code": "t1"}),
        (TEAMS, {}),
        (ORGANIZATIONS, {}),
        (ORGANIZATION, {"code": "mercy"}),
    ):
        body = await tenant.gql(document, variables, token=token)
        assert error_codes(body) == ["FORBIDDEN"], body
    body = await tenant.gql(CREATE_ORGANIZATION, {"input": {"code": "x", "name": "X"}}, token=token)
    assert error_codes(body) == ["FORBIDDEN"], body
    body = await tenant.gql(
        ENROLL,
        {"input": {"collaborative": "asthma", "organization": "mercy", "code": "t2", "name": "T"}},
        token=token,
    )
    assert error_codes(body) == ["FORBIDDEN"], body

    reader_id, reader_secret = await tenant.add_client(
        ClientKind.DASHBOARD, scopes=("program:read",)
    )
    reader = await tenant.token(reader_id, reader_secret)
    body = await tenant.gql(MEASURE_SERIES, {"code": "t1", "measure": "m"}, token=reader)
    assert error_codes(body) == ["FORBIDDEN"], body
    assert body["data"]["team"] == {"code": "t1", "measureSeries": None}


async def test_audit_events_record_the_writes(app: Starlette, tenant: Tenant) -> None:
    await create_collaborative(tenant, "asthma")
    await create_organization(tenant, "mercy")
    await enroll(
        tenant,
        "t1",
        "asthma",
        "mercy",
        members=[{"name": "Ada", "email": "ada@x.example", "role": "DATA_LEAD"}],
    )
    async with sessionmaker(app)() as session:
        events = (
            await session.scalars(
                select(AuditEvent).where(AuditEvent.sponsor_id == tenant.sponsor_id)
            )
        ).all()
    by_action = {event.action: event for event in events}
    organization = by_action["organization.create"]
    assert organization.entity_type == "Organization"
    assert organization.before is None
    assert organization.after is not None and organization.after["code"] == "mercy"
    assert organization.actor_client_id == tenant.admin_id
    team = by_action["team.enroll"]
    assert team.after is not None and team.after["code"] == "t1"
    assert [m["role"] for m in team.after["members"]] == ["DATA_LEAD"]
    person = by_action["person.create"]
    assert person.after is not None and person.after["email"] == "ada@x.example"


async def test_team_lists_page_and_filter(tenant: Tenant) -> None:
    await program(
        tenant,
        "asthma",
        {"a-1": "mercy", "a-2": "mercy", "a-3": "hope", "a-4": "grace"},
    )
    await create_organization(tenant, "north", state="ME", name="Northern Lights Clinic")
    await enroll(tenant, "a-5", "asthma", "north")
    await program(tenant, "diabetes", {"d-1": "mercy"})

    body = await tenant.gql(COLLABORATIVE_TEAMS, {"code": "asthma", "first": 2})
    page = body["data"]["collaborative"]["teams"]
    assert (codes(page), page["totalCount"]) == (["a-1", "a-2"], 5)
    assert page["pageInfo"]["hasNextPage"] is True
    after = page["pageInfo"]["endCursor"]
    body = await tenant.gql(COLLABORATIVE_TEAMS, {"code": "asthma", "first": 2, "after": after})
    page = body["data"]["collaborative"]["teams"]
    assert codes(page) == ["a-3", "a-4"]
    assert page["pageInfo"]["hasPreviousPage"] is True
    after = page["pageInfo"]["endCursor"]
    body = await tenant.gql(COLLABORATIVE_TEAMS, {"code": "asthma", "first": 2, "after": after})
    page = body["data"]["collaborative"]["teams"]
    assert codes(page) == ["a-5"]
    assert page["pageInfo"]["hasNextPage"] is False

    body = await tenant.gql(
        COLLABORATIVE_TEAMS, {"code": "asthma", "filter": {"organization": "mercy"}}
    )
    assert codes(body["data"]["collaborative"]["teams"]) == ["a-1", "a-2"]
    body = await tenant.gql(COLLABORATIVE_TEAMS, {"code": "asthma", "filter": {"state": "me"}})
    assert codes(body["data"]["collaborative"]["teams"]) == ["a-5"]
    body = await tenant.gql(
        COLLABORATIVE_TEAMS, {"code": "asthma", "filter": {"search": "northern"}}
    )
    assert codes(body["data"]["collaborative"]["teams"]) == ["a-5"]
    body = await tenant.gql(COLLABORATIVE_TEAMS, {"code": "asthma", "filter": {"active": False}})
    assert body["data"]["collaborative"]["teams"]["totalCount"] == 0

    body = await tenant.gql(TEAMS, {"filter": {"organization": "mercy"}})
    assert codes(body["data"]["teams"]) == ["a-1", "a-2", "d-1"]
    body = await tenant.gql(TEAMS, {"filter": {"active": True, "search": "a-"}})
    assert body["data"]["teams"]["totalCount"] == 5
    body = await tenant.gql(TEAMS, {"first": 3, "order": {"field": "CODE", "direction": "DESC"}})
    page = body["data"]["teams"]
    assert codes(page) == ["d-1", "a-5", "a-4"]
    body = await tenant.gql(
        TEAMS,
        {
            "first": 3,
            "after": page["pageInfo"]["endCursor"],
            "order": {"field": "CODE", "direction": "DESC"},
        },
    )
    assert codes(body["data"]["teams"]) == ["a-3", "a-2", "a-1"]

    body = await tenant.gql(ORGANIZATIONS, {"filter": {"state": "ME"}})
    assert codes(body["data"]["organizations"]) == ["north"]
    body = await tenant.gql(ORGANIZATIONS, {"filter": {"search": "Organization"}, "first": 2})
    page = body["data"]["organizations"]
    assert (codes(page), page["totalCount"]) == (["grace", "hope"], 3)
    body = await tenant.gql(
        ORGANIZATIONS,
        {"filter": {"search": "Organization"}, "after": page["pageInfo"]["endCursor"]},
    )
    assert codes(body["data"]["organizations"]) == ["mercy"]

    body = await tenant.gql(COLLABORATIVE_TEAMS, {"code": "asthma", "after": "garbage"})
    assert error_codes(body) == ["VALIDATION"], body


# --- measure series -----------------------------------------------------------------------


async def test_measure_series_points_windows_and_last(app: Starlette, tenant: Tenant) -> None:
    await program(tenant, "asthma", {"t1": "mercy", "t2": "hope"})
    control = await add_measure(app, tenant, "asthma", "control", position=2)
    plans = await add_measure(app, tenant, "asthma", "plans", position=1)
    await add_points(
        app,
        tenant,
        "t1",
        control,
        [
            ("2024-01", 5, 10, None, ""),
            ("2024-02", 6, 10, None, "New registry"),
            ("2024-03", 0, 0, None, ""),
            ("2024-04", 9, 10, None, ""),
            ("2024-05", None, None, 42.5, ""),
        ],
    )
    await add_points(app, tenant, "t1", control, [("2024-02", 1, 2, None, "")], stratum="payer:x")
    await add_points(app, tenant, "t2", control, [("2024-01", 1, 4, None, "")])
    await add_points(app, tenant, "t1", plans, monthly(2024, range(1, 4)))

    body = await tenant.gql(MEASURE_SERIES, {"code": "t1", "measure": "control"})
    assert "errors" not in body, body
    series = body["data"]["team"]["measureSeries"]
    assert series["measure"] == {"code": "control"}
    assert series["points"] == [
        {"period": "2024-01", "numerator": 5, "denominator": 10, "value": 50.0, "annotations": []},
        {
            "period": "2024-02",
            "numerator": 6,
            "denominator": 10,
            "value": 60.0,
            "annotations": ["New registry"],
        },
        {"period": "2024-03", "numerator": 0, "denominator": 0, "value": None, "annotations": []},
        {"period": "2024-04", "numerator": 9, "denominator": 10, "value": 90.0, "annotations": []},
        {
            "period": "2024-05",
            "numerator": None,
            "denominator": None,
            "value": 42.5,
            "annotations": [],
        },
    ]

    body = await tenant.gql(
        MEASURE_SERIES, {"code": "t1", "measure": "control", "from": "2024-02", "to": "2024-04"}
    )
    periods = [p["period"] for p in body["data"]["team"]["measureSeries"]["points"]]
    assert periods == ["2024-02", "2024-03", "2024-04"]

    body = await tenant.gql(MEASURE_SERIES, {"code": "t1", "measure": "unknown"})
    assert "errors" not in body, body
    assert body["data"]["team"]["measureSeries"] is None

    body = await tenant.gql(SERIES, {"code": "t1", "last": 2})
    assert "errors" not in body, body
    assert body["data"]["team"]["series"] == [
        {
            "measure": {"code": "plans"},
            "points": [{"period": "2024-02", "value": 50.0}, {"period": "2024-03", "value": 50.0}],
        },
        {
            "measure": {"code": "control"},
            "points": [{"period": "2024-04", "value": 90.0}, {"period": "2024-05", "value": 42.5}],
        },
    ]
    body = await tenant.gql(SERIES, {"code": "t1", "to": "2024-02", "last": 1})
    series_list = body["data"]["team"]["series"]
    assert [[p["period"] for p in s["points"]] for s in series_list] == [["2024-02"], ["2024-02"]]
    body = await tenant.gql(SERIES, {"code": "t1", "measures": ["control", "nope"], "last": 1})
    assert body["data"]["team"]["series"] == [
        {"measure": {"code": "control"}, "points": [{"period": "2024-05", "value": 42.5}]}
    ]
    body = await tenant.gql(SERIES, {"code": "t1", "last": 0})
    assert body["data"]["team"]["series"] == [
        {"measure": {"code": "plans"}, "points": []},
        {"measure": {"code": "control"}, "points": []},
    ]
    body = await tenant.gql(SERIES, {"code": "t2"})
    assert body["data"]["team"]["series"] == [
        {"measure": {"code": "plans"}, "points": []},
        {"measure": {"code": "control"}, "points": [{"period": "2024-01", "value": 25.0}]},
    ]


async def test_invalid_periods_are_validation_errors(tenant: Tenant) -> None:
    await program(tenant, "asthma", {"t1": "mercy"})
    for period in ("2024-13", "2024-00", "1899-12", "2024-1", "24-01", "2024-01-01"):
        body = await tenant.gql(MEASURE_SERIES, {"code": "t1", "measure": "m", "from": period})
        assert error_codes(body) == ["VALIDATION"], (period, body)
        assert "Unexpected error" not in body["errors"][0]["message"]
    body = await tenant.gql(
        'query { team(code: "t1") { series(from: "2024-13") { points { period } } } }'
    )
    assert error_codes(body) == ["VALIDATION"], body
    body = await tenant.gql(SERIES, {"code": "t1", "last": -1})
    assert error_codes(body) == ["VALIDATION"], body


async def test_ehr_client_reads_only_its_own_teams_series(app: Starlette, tenant: Tenant) -> None:
    await program(tenant, "asthma", {"team-a": "mercy", "team-b": "hope"})
    measure = await add_measure(app, tenant, "asthma", "control", position=1)
    await add_points(app, tenant, "team-a", measure, monthly(2024, range(1, 3)))
    await add_points(app, tenant, "team-b", measure, monthly(2024, range(1, 3)))
    client_id, secret = await tenant.add_client(ClientKind.EHR_INTEGRATION, teams=("team-a",))
    token = await tenant.token(client_id, secret)

    body = await tenant.gql(MEASURE_SERIES, {"code": "team-a", "measure": "control"}, token=token)
    assert "errors" not in body, body
    assert len(body["data"]["team"]["measureSeries"]["points"]) == 2
    body = await tenant.gql(MEASURE_SERIES, {"code": "team-b", "measure": "control"}, token=token)
    assert error_codes(body) == ["FORBIDDEN"], body
    assert body["data"]["team"]["measureSeries"] is None
    body = await tenant.gql(SERIES, {"code": "team-b"}, token=token)
    assert error_codes(body) == ["FORBIDDEN"], body

    body = await tenant.gql(VIEWER_TEAMS, token=token)
    assert "errors" not in body, body
    assert body["data"]["viewer"] == {
        "kind": "EHR_INTEGRATION",
        "teams": [
            {
                "code": "team-a",
                "organization": {"code": "mercy"},
                "collaborative": {"code": "asthma"},
            }
        ],
    }
    body = await tenant.gql(VIEWER_TEAMS)
    assert body["data"]["viewer"]["teams"] == []


async def test_dashboard_reads_all_series_in_constant_statements(
    app: Starlette, tenant: Tenant
) -> None:
    await program(tenant, "asthma", {f"a-{i}": f"org-{i}" for i in range(6)})
    await program(tenant, "diabetes", {f"d-{i}": f"org-{i}" for i in range(3)})
    await create_collaborative(tenant, "empty")
    measures = [
        await add_measure(app, tenant, "asthma", "control", position=1),
        await add_measure(app, tenant, "asthma", "plans", position=2),
        await add_measure(app, tenant, "diabetes", "a1c", position=1),
    ]
    for i in range(6):
        await add_points(app, tenant, f"a-{i}", measures[0], monthly(2023, range(1, 13)))
        await add_points(app, tenant, f"a-{i}", measures[1], monthly(2024, range(1, 7)))
    for i in range(3):
        await add_points(app, tenant, f"d-{i}", measures[2], monthly(2024, range(1, 4)))

    statements: list[str] = []

    def record(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        statements.append(statement)

    state: AppState = app.state.collabx
    event.listen(state.engine.sync_engine, "before_cursor_execute", record)
    try:
        body = await tenant.gql(DASHBOARD)
    finally:
        event.remove(state.engine.sync_engine, "before_cursor_execute", record)
    assert "errors" not in body, body
    collaboratives = {
        edge["node"]["code"]: edge["node"]["teams"]
        for edge in body["data"]["collaboratives"]["edges"]
    }
    assert collaboratives["empty"]["totalCount"] == 0
    assert collaboratives["diabetes"]["totalCount"] == 3
    asthma = collaboratives["asthma"]["edges"]
    assert len(asthma) == 6
    for edge in asthma:
        series = edge["node"]["series"]
        assert [s["measure"]["code"] for s in series] == ["control", "plans"]
        assert len(series[0]["points"]) == 12
        assert len(series[1]["points"]) == 6
    assert len([s for s in statements if "data_points" in s]) == 1, statements
    assert len([s for s in statements if "row_number" in s.lower()]) == 2, statements
    assert len([s for s in statements if "count(" in s.lower() and "teams" in s]) >= 1
    assert len(statements) <= 8, statements
