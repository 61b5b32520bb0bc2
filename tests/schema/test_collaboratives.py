"""Collaboratives: create, update, read, page, filter; scopes, tenancy and audit."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from starlette.applications import Starlette

from api.state import AppState
from db.enums import ClientKind
from db.models import AuditEvent
from tests.factories import Tenant, TenantFactory

CREATE = """
mutation Create($input: CreateCollaborativeInput!) {
  createCollaborative(input: $input) {
    __typename
    ... on CreateCollaborativeSuccess {
      collaborative { id code name status startDate phases { kind seq name } }
    }
    ... on Error { code message }
    ... on ValidationError { field }
    ... on ConflictError { field }
  }
}
"""

UPDATE = """
mutation Update($input: UpdateCollaborativeInput!) {
  updateCollaborative(input: $input) {
    __typename
    ... on UpdateCollaborativeSuccess { collaborative { code name status phases { seq } } }
    ... on Error { code message }
  }
}
"""

BY_CODE = """
query One($code: String!) { collaborative(code: $code) { code name topic aim sponsor { slug } } }
"""

BY_ID = "query One($id: ID!) { collaborative(id: $id) { code } }"

LIST = """
query List($filter: CollaborativeFilter, $first: Int, $after: String, $order: CollaborativeOrder) {
  collaboratives(filter: $filter, first: $first, after: $after, orderBy: $order) {
    totalCount
    pageInfo { hasNextPage endCursor }
    edges { cursor node { code } }
  }
}
"""


def collaborative_input(code: str, **extra: Any) -> dict[str, Any]:
    values: dict[str, Any] = {
        "code": code,
        "name": f"Collaborative {code}",
        "topic": "Pediatric asthma",
        "aim": "Increase well-controlled asthma from 45% to 75% by June",
        "status": "ACTIVE",
        "startDate": "2026-01-01",
        "endDate": "2026-12-31",
        "phases": [
            {"kind": "PREWORK", "seq": 1, "name": "Prework"},
            {"kind": "LEARNING_SESSION", "seq": 2, "name": "Learning Session 1"},
        ],
    }
    values.update(extra)
    return values


async def create(tenant: Tenant, code: str, **extra: Any) -> dict[str, Any]:
    body = await tenant.gql(CREATE, {"input": collaborative_input(code, **extra)})
    assert "errors" not in body, body
    result: dict[str, Any] = body["data"]["createCollaborative"]
    return result


async def test_create_then_read_by_code_and_id(tenant: Tenant) -> None:
    created = await create(tenant, "asthma-2026")
    assert created["__typename"] == "CreateCollaborativeSuccess"
    collaborative = created["collaborative"]
    assert collaborative["status"] == "ACTIVE"
    assert [p["kind"] for p in collaborative["phases"]] == ["PREWORK", "LEARNING_SESSION"]
    read = await tenant.gql(BY_CODE, {"code": "asthma-2026"})
    assert read["data"]["collaborative"]["sponsor"] == {"slug": tenant.slug}
    by_id = await tenant.gql(BY_ID, {"id": collaborative["id"]})
    assert by_id["data"]["collaborative"] == {"code": "asthma-2026"}


async def test_duplicate_code_is_a_conflict(tenant: Tenant) -> None:
    await create(tenant, "dup")
    again = await create(tenant, "dup")
    assert again["__typename"] == "ConflictError"
    assert again["code"] == "CONFLICT"
    assert again["field"] == "code"


async def test_same_code_in_two_sponsors_is_fine(tenants: TenantFactory) -> None:
    first, second = await tenants.create(), await tenants.create()
    assert (await create(first, "shared-code"))["__typename"] == "CreateCollaborativeSuccess"
    assert (await create(second, "shared-code"))["__typename"] == "CreateCollaborativeSuccess"


async def test_invalid_inputs_are_validation_errors(tenant: Tenant) -> None:
    bad_code = await create(tenant, "Not A Code")
    assert (bad_code["code"], bad_code["field"]) == ("VALIDATION", "code")
    nul = await create(tenant, "nul", name="bad\x00name")
    assert (nul["code"], nul["field"]) == ("VALIDATION", "name")
    dates = await create(tenant, "dates", startDate="2026-05-01", endDate="2026-01-01")
    assert (dates["code"], dates["field"]) == ("VALIDATION", "endDate")
    phases = await create(
        tenant, "phases", phases=[{"kind": "PREWORK", "seq": 1}, {"kind": "SUSTAIN", "seq": 1}]
    )
    assert (phases["code"], phases["field"]) == ("VALIDATION", "phases")
    listing = await tenant.gql(LIST, {"first": 100})
    assert listing["data"]["collaboratives"]["totalCount"] == 0, "rejected writes left rows"


async def test_update_changes_fields_and_replaces_phases(tenant: Tenant) -> None:
    await create(tenant, "upd")
    body = await tenant.gql(
        UPDATE,
        {
            "input": {
                "code": "upd",
                "status": "COMPLETED",
                "phases": [{"kind": "SUSTAIN", "seq": 9}],
            }
        },
    )
    result = body["data"]["updateCollaborative"]
    assert result["__typename"] == "UpdateCollaborativeSuccess"
    assert result["collaborative"]["status"] == "COMPLETED"
    assert result["collaborative"]["name"] == "Collaborative upd"
    assert result["collaborative"]["phases"] == [{"seq": 9}]
    missing = await tenant.gql(UPDATE, {"input": {"code": "nope", "name": "x"}})
    assert missing["data"]["updateCollaborative"]["code"] == "NOT_FOUND"


async def test_writes_are_audited(app: Starlette, tenant: Tenant) -> None:
    await create(tenant, "audited")
    await tenant.gql(UPDATE, {"input": {"code": "audited", "name": "Renamed"}})
    await tenant.gql(
        UPDATE, {"input": {"code": "audited", "phases": [{"kind": "SUSTAIN", "seq": 7}]}}
    )
    state: AppState = app.state.collabx
    async with state.sessionmaker() as session:
        events = (
            await session.scalars(
                select(AuditEvent)
                .where(
                    AuditEvent.sponsor_id == tenant.sponsor_id,
                    AuditEvent.entity_type == "Collaborative",
                )
                .order_by(AuditEvent.at)
            )
        ).all()
    assert [e.action for e in events] == [
        "collaborative.create",
        "collaborative.update",
        "collaborative.update",
    ]
    create_event, update_event, phases_event = events
    assert create_event.actor_client_id == tenant.admin_id
    assert create_event.actor_kind == "ADMIN"
    assert create_event.before is None
    assert create_event.after is not None and create_event.after["code"] == "audited"
    assert (
        update_event.before is not None and update_event.before["name"] == "Collaborative audited"
    )
    assert update_event.after is not None and update_event.after["name"] == "Renamed"
    assert update_event.request_id
    assert phases_event.before is not None and phases_event.after is not None
    assert [p["seq"] for p in phases_event.before["phases"]] == [1, 2]
    assert phases_event.after["phases"] == [
        {
            "collaborative_id": phases_event.entity_id,
            "kind": "SUSTAIN",
            "seq": 7,
            "name": "",
            "start_date": None,
            "end_date": None,
        }
    ]


async def test_keyset_paging_visits_every_row_once(tenant: Tenant) -> None:
    codes = [f"c{i:02d}" for i in range(7)]
    for code in reversed(codes):
        await create(tenant, code)
    seen: list[str] = []
    after = None
    while True:
        body = await tenant.gql(LIST, {"first": 3, "after": after})
        page = body["data"]["collaboratives"]
        assert page["totalCount"] == 7
        seen += [edge["node"]["code"] for edge in page["edges"]]
        if not page["pageInfo"]["hasNextPage"]:
            break
        after = page["pageInfo"]["endCursor"]
    assert seen == codes
    desc = await tenant.gql(LIST, {"first": 2, "order": {"field": "CODE", "direction": "DESC"}})
    assert [e["node"]["code"] for e in desc["data"]["collaboratives"]["edges"]] == ["c06", "c05"]


async def test_filters(tenant: Tenant) -> None:
    await create(tenant, "asthma", topic="Pediatric asthma", status="ACTIVE")
    await create(
        tenant,
        "perinatal",
        topic="Severe hypertension in pregnancy",
        aim="Treat severe hypertension within 60 minutes in 80% of cases",
        status="COMPLETED",
        startDate="2024-01-01",
        endDate="2024-12-31",
    )

    async def codes(filter: dict[str, Any]) -> list[str]:
        body = await tenant.gql(LIST, {"filter": filter})
        return [e["node"]["code"] for e in body["data"]["collaboratives"]["edges"]]

    assert await codes({"status": "COMPLETED"}) == ["perinatal"]
    assert await codes({"topic": "hypertension"}) == ["perinatal"]
    assert await codes({"activeOn": "2026-06-01"}) == ["asthma"]
    assert await codes({"search": "ASTHMA"}) == ["asthma"]
    assert await codes({"search": "80%"}) == ["perinatal"]
    assert await codes({"search": "_"}) == []
    assert await codes({"search": "'; DROP TABLE collaboratives; --"}) == []
    assert await codes({"sponsor": "someone-else"}) == []


async def test_bad_cursor_and_page_size_are_refused(tenant: Tenant) -> None:
    tampered = await tenant.gql(LIST, {"after": "bm90LWEtY3Vyc29y"})
    assert tampered["errors"][0]["extensions"]["code"] == "VALIDATION"
    too_big = await tenant.gql(LIST, {"first": 101})
    assert too_big["errors"][0]["extensions"]["code"] == "QUERY_TOO_COMPLEX"
    assert "100" in too_big["errors"][0]["message"]


async def test_another_sponsor_cannot_see_or_change_it(tenants: TenantFactory) -> None:
    owner, stranger = await tenants.create(), await tenants.create()
    created = await create(owner, "private")
    assert (await stranger.gql(BY_CODE, {"code": "private"}))["data"]["collaborative"] is None
    by_id = await stranger.gql(BY_ID, {"id": created["collaborative"]["id"]})
    assert by_id["data"]["collaborative"] is None
    listing = await stranger.gql(LIST, {})
    assert listing["data"]["collaboratives"]["totalCount"] == 0
    explicit = await stranger.gql(
        'query($s: String) { collaborative(code: "private", sponsor: $s) { code } }',
        {"s": owner.slug},
    )
    assert explicit["data"]["collaborative"] is None
    update = await stranger.gql(UPDATE, {"input": {"code": "private", "name": "Hijacked"}})
    assert update["data"]["updateCollaborative"]["code"] == "NOT_FOUND"
    still = await owner.gql(BY_CODE, {"code": "private"})
    assert still["data"]["collaborative"]["name"] == "Collaborative private"


async def test_scopes_are_enforced(tenant: Tenant) -> None:
    dashboard_id, dashboard_secret = await tenant.add_client(ClientKind.DASHBOARD)
    dashboard = await tenant.token(dashboard_id, dashboard_secret)
    denied = await tenant.gql(CREATE, {"input": collaborative_input("x")}, token=dashboard)
    assert denied["data"] is None
    assert denied["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    assert "program:write" in denied["errors"][0]["message"]
    assert "errors" not in await tenant.gql(LIST, {}, token=dashboard)

    catalog_id, catalog_secret = await tenant.add_client(
        ClientKind.PARTNER, scopes=("catalog:read",)
    )
    catalog_only = await tenant.token(catalog_id, catalog_secret)
    for document in (LIST, BY_CODE):
        body = await tenant.gql(document, {"code": "x"}, token=catalog_only)
        assert body["errors"][0]["extensions"]["code"] == "FORBIDDEN"
