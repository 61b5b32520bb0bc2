"""The resource catalog: create, update, full-text search, filters, paging; scopes, tenancy, audit.

Every test runs on SQLite (FTS5) and PostgreSQL (tsvector) and asserts exact titles, so both
search implementations must return the same rows.
"""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import select
from starlette.applications import Starlette

from api.state import AppState
from db.enums import ClientKind
from db.models import AuditEvent
from tests.factories import Tenant, TenantFactory

CREATE = """
mutation Create($input: CreateResourceInput!) {
  createResource(input: $input) {
    __typename
    ... on CreateResourceSuccess {
      resource {
        id kind title summary url publishedOn careModelDomains topics collaboratives { code }
      }
    }
    ... on Error { code message }
    ... on ValidationError { field }
    ... on NotFoundError { field }
  }
}
"""

UPDATE = """
mutation Update($input: UpdateResourceInput!) {
  updateResource(input: $input) {
    __typename
    ... on UpdateResourceSuccess {
      resource {
        id kind title summary url publishedOn careModelDomains topics collaboratives { code }
      }
    }
    ... on Error { code message }
    ... on ValidationError { field }
    ... on NotFoundError { field }
  }
}
"""

LIST = """
query List($filter: ResourceFilter, $first: Int, $after: String, $order: ResourceOrder) {
  resources(filter: $filter, first: $first, after: $after, orderBy: $order) {
    totalCount
    pageInfo { hasNextPage endCursor }
    edges { cursor node { title } }
  }
}
"""

BY_ID = """
query One($id: ID!) { resource(id: $id) { title topics careModelDomains collaboratives { code } } }
"""

COLLABORATIVE_RESOURCES = """
query Linked($first: Int, $after: String) {
  collaboratives(first: 10) {
    nodes {
      code
      resources(first: $first, after: $after) {
        totalCount
        pageInfo { hasNextPage endCursor }
        nodes { title topics }
      }
    }
  }
}
"""

CREATE_COLLABORATIVE = """
mutation Create($input: CreateCollaborativeInput!) {
  createCollaborative(input: $input) { __typename }
}
"""

CATALOG: list[dict[str, Any]] = [
    {
        "kind": "TOOLKIT",
        "title": "Asthma action plan toolkit",
        "summary": "Templates for written asthma action plans in primary care.",
        "url": "https://example.org/asthma-plan",
        "publishedOn": "2024-03-01",
        "careModelDomains": ["SELF_MANAGEMENT_SUPPORT", "DECISION_SUPPORT"],
        "topics": ["asthma", "pediatrics"],
    },
    {
        "kind": "TRAINING",
        "title": "Spirometry training for clinicians",
        "summary": "Hands-on training on spirometry, peak flow and inhaler technique.",
        "careModelDomains": ["DECISION_SUPPORT"],
        "topics": ["asthma"],
    },
    {
        "kind": "CHANGE_IDEA",
        "title": "Reducing no-show rates",
        "summary": "Change ideas: reminder calls and open access scheduling.",
        "publishedOn": "2023-11-15",
        "careModelDomains": ["DELIVERY_SYSTEM_DESIGN"],
        "topics": ["access"],
    },
    {
        "kind": "TOOL",
        "title": "Asthma control test",
        "summary": "A validated five-item questionnaire.",
        "publishedOn": "2025-01-20",
        "topics": ["asthma", "measurement"],
    },
]
CATALOG_TITLES = sorted(str(values["title"]) for values in CATALOG)


async def create(tenant: Tenant, values: dict[str, Any]) -> dict[str, Any]:
    body = await tenant.gql(CREATE, {"input": values})
    assert "errors" not in body, body
    result: dict[str, Any] = body["data"]["createResource"]
    return result


async def create_catalog(tenant: Tenant) -> dict[str, str]:
    """The catalog above in ``tenant``; title -> global id."""
    ids = {}
    for values in CATALOG:
        result = await create(tenant, values)
        assert result["__typename"] == "CreateResourceSuccess", result
        ids[values["title"]] = result["resource"]["id"]
    return ids


async def create_collaborative(tenant: Tenant, code: str) -> None:
    body = await tenant.gql(
        CREATE_COLLABORATIVE, {"input": {"code": code, "name": code, "topic": "Asthma"}}
    )
    assert body["data"]["createCollaborative"]["__typename"] == "CreateCollaborativeSuccess"


async def titles(
    tenant: Tenant, filter: dict[str, Any] | None = None, *, token: str | None = None
) -> list[str]:
    body = await tenant.gql(LIST, {"filter": filter, "first": 100}, token=token)
    assert "errors" not in body, body
    connection = body["data"]["resources"]
    found = [edge["node"]["title"] for edge in connection["edges"]]
    assert connection["totalCount"] == len(found)
    return found


async def test_create_returns_the_resource_with_its_tags(tenant: Tenant) -> None:
    await create_collaborative(tenant, "asthma-2026")
    result = await create(
        tenant,
        {
            **CATALOG[0],
            "topics": ["pediatrics", " asthma ", "pediatrics"],
            "collaboratives": ["asthma-2026"],
        },
    )
    assert result["__typename"] == "CreateResourceSuccess"
    resource = result["resource"]
    assert resource["kind"] == "TOOLKIT"
    assert resource["title"] == "Asthma action plan toolkit"
    assert resource["url"] == "https://example.org/asthma-plan"
    assert resource["publishedOn"] == "2024-03-01"
    assert resource["careModelDomains"] == ["SELF_MANAGEMENT_SUPPORT", "DECISION_SUPPORT"]
    assert resource["topics"] == ["asthma", "pediatrics"]
    assert resource["collaboratives"] == [{"code": "asthma-2026"}]
    again = await tenant.gql(BY_ID, {"id": resource["id"]})
    assert again["data"]["resource"]["topics"] == ["asthma", "pediatrics"]


@pytest.mark.parametrize(
    ("search", "expected"),
    [
        ("asthma", ["Asthma action plan toolkit", "Asthma control test"]),
        ("ASTHMA Plan", ["Asthma action plan toolkit"]),
        ("plan", ["Asthma action plan toolkit"]),
        ("plans", ["Asthma action plan toolkit"]),
        ("pla", []),
        ("inhaler spirometry", ["Spirometry training for clinicians"]),
        ("no-show", ["Reducing no-show rates"]),
        ("calls reminder", ["Reducing no-show rates"]),
        ("and", ["Reducing no-show rates", "Spirometry training for clinicians"]),
        ("asthma spirometry", []),
        ("asthma*", ["Asthma action plan toolkit", "Asthma control test"]),
        ("title:asthma", []),
        ("  ", CATALOG_TITLES),
    ],
)
async def test_search_matches_whole_words_on_both_backends(
    tenant: Tenant, search: str, expected: list[str]
) -> None:
    await create_catalog(tenant)
    assert await titles(tenant, {"search": search}) == expected


@pytest.mark.parametrize(
    "search",
    [
        '"',
        '""',
        "*",
        "title:",
        "summary:asthma",
        "AND",
        "asthma AND OR NOT",
        "(",
        "asthma)",
        "'",
        "%",
        "_",
        "\\",
        "NEAR(asthma plan)",
        "^asthma",
        "-asthma",
        "asthma -plan",
        "{title summary}: asthma",
        "!!",
        "a & b | !c <-> d",
        "'asthma':*",
        "é",
    ],
)
async def test_search_metacharacters_are_plain_text(tenant: Tenant, search: str) -> None:
    await create_catalog(tenant)
    found = await titles(tenant, {"search": search})
    assert set(found) <= set(CATALOG_TITLES)


async def test_search_words_in_metacharacters_are_still_words(tenant: Tenant) -> None:
    await create_catalog(tenant)
    assert await titles(tenant, {"search": '"asthma" AND (control)'}) == []
    assert await titles(tenant, {"search": '"asthma" (control)'}) == ["Asthma control test"]
    assert await titles(tenant, {"search": "-asthma"}) == [
        "Asthma action plan toolkit",
        "Asthma control test",
    ]
    assert await titles(tenant, {"search": "%"}) == []


async def test_bad_search_text_is_a_validation_error(tenant: Tenant) -> None:
    for search in ("asthma\x00", "x" * 201):
        body = await tenant.gql(LIST, {"filter": {"search": search}})
        assert body["errors"][0]["extensions"]["code"] == "VALIDATION"


async def test_filters(tenant: Tenant) -> None:
    await create_collaborative(tenant, "access-2026")
    ids = await create_catalog(tenant)
    updated = await tenant.gql(
        UPDATE,
        {"input": {"id": ids["Reducing no-show rates"], "collaboratives": ["access-2026"]}},
    )
    assert updated["data"]["updateResource"]["__typename"] == "UpdateResourceSuccess"

    assert await titles(tenant, {"kind": "TOOL"}) == ["Asthma control test"]
    assert await titles(tenant, {"kind": "WEBINAR"}) == []
    assert await titles(tenant, {"careModelDomain": "DECISION_SUPPORT"}) == [
        "Asthma action plan toolkit",
        "Spirometry training for clinicians",
    ]
    assert await titles(tenant, {"topic": "asthma"}) == [
        "Asthma action plan toolkit",
        "Asthma control test",
        "Spirometry training for clinicians",
    ]
    assert await titles(tenant, {"topic": "measurement"}) == ["Asthma control test"]
    assert await titles(tenant, {"collaborative": "access-2026"}) == ["Reducing no-show rates"]
    assert await titles(tenant, {"collaborative": "unknown"}) == []
    assert await titles(
        tenant, {"topic": "asthma", "careModelDomain": "DECISION_SUPPORT", "search": "training"}
    ) == ["Spirometry training for clinicians"]


async def test_paging_and_ordering(tenant: Tenant) -> None:
    await create_catalog(tenant)

    async def all_pages(order: dict[str, str]) -> list[str]:
        seen: list[str] = []
        after = None
        while True:
            body = await tenant.gql(LIST, {"first": 1, "after": after, "order": order})
            assert "errors" not in body, body
            connection = body["data"]["resources"]
            assert connection["totalCount"] == len(CATALOG)
            seen += [edge["node"]["title"] for edge in connection["edges"]]
            if not connection["pageInfo"]["hasNextPage"]:
                return seen
            after = connection["pageInfo"]["endCursor"]

    assert await all_pages({"field": "TITLE", "direction": "ASC"}) == CATALOG_TITLES
    assert await all_pages({"field": "TITLE", "direction": "DESC"}) == CATALOG_TITLES[::-1]
    # Undated resources come last in both directions.
    assert await all_pages({"field": "PUBLISHED_ON", "direction": "ASC"}) == [
        "Reducing no-show rates",
        "Asthma action plan toolkit",
        "Asthma control test",
        "Spirometry training for clinicians",
    ]
    assert await all_pages({"field": "PUBLISHED_ON", "direction": "DESC"}) == [
        "Asthma control test",
        "Asthma action plan toolkit",
        "Reducing no-show rates",
        "Spirometry training for clinicians",
    ]
    created = await all_pages({"field": "CREATED_AT", "direction": "ASC"})
    assert sorted(created) == CATALOG_TITLES

    wrong = await tenant.gql(LIST, {"first": 1, "after": "bm90LWEtY3Vyc29y"})
    assert wrong["errors"][0]["extensions"]["code"] == "VALIDATION"


async def test_update_changes_what_search_finds(tenant: Tenant) -> None:
    ids = await create_catalog(tenant)
    resource_id = ids["Asthma control test"]
    result = await tenant.gql(
        UPDATE,
        {
            "input": {
                "id": resource_id,
                "title": "Respiratory symptom questionnaire",
                "topics": ["measurement", "copd"],
                "careModelDomains": ["CLINICAL_INFORMATION_SYSTEMS"],
            }
        },
    )
    resource = result["data"]["updateResource"]
    assert resource["__typename"] == "UpdateResourceSuccess", resource
    assert resource["resource"]["title"] == "Respiratory symptom questionnaire"
    assert resource["resource"]["summary"] == "A validated five-item questionnaire."
    assert resource["resource"]["publishedOn"] == "2025-01-20"
    assert resource["resource"]["kind"] == "TOOL"
    assert resource["resource"]["topics"] == ["copd", "measurement"]
    assert resource["resource"]["careModelDomains"] == ["CLINICAL_INFORMATION_SYSTEMS"]

    assert await titles(tenant, {"search": "respiratory"}) == ["Respiratory symptom questionnaire"]
    assert await titles(tenant, {"search": "control"}) == []
    assert await titles(tenant, {"search": "asthma"}) == ["Asthma action plan toolkit"]
    assert await titles(tenant, {"topic": "copd"}) == ["Respiratory symptom questionnaire"]
    assert await titles(tenant, {"topic": "asthma", "search": "questionnaire"}) == []

    summary_only = await tenant.gql(
        UPDATE, {"input": {"id": resource_id, "summary": "Six items about wheezing.", "url": ""}}
    )
    assert summary_only["data"]["updateResource"]["resource"]["url"] is None
    assert await titles(tenant, {"search": "wheezing"}) == ["Respiratory symptom questionnaire"]
    assert await titles(tenant, {"search": "validated"}) == []

    missing = await tenant.gql(UPDATE, {"input": {"id": "bm9wZQ", "title": "x"}})
    assert missing["data"]["updateResource"]["code"] == "NOT_FOUND"
    assert missing["data"]["updateResource"]["field"] == "id"


async def test_collaborative_resources_are_paged_for_a_whole_level(tenant: Tenant) -> None:
    await create_collaborative(tenant, "a-collab")
    await create_collaborative(tenant, "b-collab")
    for values in CATALOG:
        links = ["a-collab", "b-collab"] if "asthma" in values["topics"] else ["b-collab"]
        result = await create(tenant, {**values, "collaboratives": links})
        assert result["__typename"] == "CreateResourceSuccess"
    body = await tenant.gql(COLLABORATIVE_RESOURCES, {"first": 2})
    assert "errors" not in body, body
    by_code = {node["code"]: node["resources"] for node in body["data"]["collaboratives"]["nodes"]}
    assert by_code["a-collab"]["totalCount"] == 3
    assert [r["title"] for r in by_code["a-collab"]["nodes"]] == CATALOG_TITLES[:2]
    assert by_code["a-collab"]["pageInfo"]["hasNextPage"] is True
    assert by_code["b-collab"]["totalCount"] == 4
    assert [r["title"] for r in by_code["b-collab"]["nodes"]] == CATALOG_TITLES[:2]

    after = by_code["b-collab"]["pageInfo"]["endCursor"]
    body = await tenant.gql(COLLABORATIVE_RESOURCES, {"first": 2, "after": after})
    by_code = {node["code"]: node["resources"] for node in body["data"]["collaboratives"]["nodes"]}
    assert [r["title"] for r in by_code["a-collab"]["nodes"]] == [
        "Spirometry training for clinicians"
    ]
    assert by_code["a-collab"]["pageInfo"]["hasNextPage"] is False
    assert [r["title"] for r in by_code["b-collab"]["nodes"]] == CATALOG_TITLES[2:]


async def test_tenancy(tenants: TenantFactory) -> None:
    owner = await tenants.create()
    other = await tenants.create()
    await create_collaborative(owner, "owners-collab")
    ids = await create_catalog(owner)
    await create(other, {"kind": "TOOL", "title": "Other asthma tool"})

    assert await titles(other, {"search": "asthma"}) == ["Other asthma tool"]
    assert await titles(other, {"topic": "asthma"}) == []
    assert await titles(owner, {"search": "other"}) == []
    resource_id = ids["Asthma control test"]
    assert (await other.gql(BY_ID, {"id": resource_id}))["data"]["resource"] is None
    assert (await owner.gql(BY_ID, {"id": resource_id}))["data"]["resource"] is not None

    stolen = await other.gql(UPDATE, {"input": {"id": resource_id, "title": "Mine"}})
    assert stolen["data"]["updateResource"]["code"] == "NOT_FOUND"
    linked = await create(
        other, {"kind": "TOOL", "title": "Linked", "collaboratives": ["owners-collab"]}
    )
    assert linked["__typename"] == "NotFoundError"
    assert linked["field"] == "collaboratives"
    assert await titles(owner, {"search": "control"}) == ["Asthma control test"]


async def test_scopes(tenant: Tenant) -> None:
    await create_catalog(tenant)
    dashboard_id, dashboard_secret = await tenant.add_client(ClientKind.DASHBOARD)
    dashboard = await tenant.token(dashboard_id, dashboard_secret)
    denied = await tenant.gql(CREATE, {"input": CATALOG[0]}, token=dashboard)
    assert denied["data"] is None
    assert denied["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    assert "catalog:write" in denied["errors"][0]["message"]
    denied = await tenant.gql(UPDATE, {"input": {"id": "x", "title": "y"}}, token=dashboard)
    assert denied["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    assert await titles(tenant, {"search": "asthma"}, token=dashboard) == [
        "Asthma action plan toolkit",
        "Asthma control test",
    ]

    ehr_id, ehr_secret = await tenant.add_client(ClientKind.EHR_INTEGRATION)
    ehr = await tenant.token(ehr_id, ehr_secret)
    for document, variables in ((LIST, {}), (BY_ID, {"id": "x"})):
        body = await tenant.gql(document, variables, token=ehr)
        assert body["errors"][0]["extensions"]["code"] == "FORBIDDEN"


async def test_validation(tenant: Tenant) -> None:
    await create_collaborative(tenant, "valid-collab")
    base = {"kind": "TOOL", "title": "A tool"}
    cases: list[tuple[dict[str, Any], str]] = [
        ({"url": "ftp://example.org/file"}, "url"),
        ({"url": "javascript:alert(1)"}, "url"),
        ({"url": "not a url"}, "url"),
        ({"url": "https://"}, "url"),
        ({"url": "https://example.org/a b"}, "url"),
        ({"title": ""}, "title"),
        ({"title": "   "}, "title"),
        ({"title": "x" * 301}, "title"),
        ({"title": "nul\x00"}, "title"),
        ({"summary": "nul\x00"}, "summary"),
        ({"topics": [""]}, "topics"),
        ({"topics": ["x" * 121]}, "topics"),
        ({"topics": ["a\x00"]}, "topics"),
        ({"collaboratives": ["Not A Code"]}, "collaboratives"),
    ]
    for extra, field in cases:
        result = await create(tenant, {**base, **extra})
        assert result["__typename"] == "ValidationError", (extra, result)
        assert result["code"] == "VALIDATION"
        assert result["field"] == field, (extra, result)
    missing = await create(tenant, {**base, "collaboratives": ["valid-collab", "missing"]})
    assert missing["__typename"] == "NotFoundError"
    assert missing["field"] == "collaboratives"
    assert await titles(tenant) == []

    ok = await create(tenant, {**base, "url": "HTTP://Example.org/x?y=1", "title": "x" * 300})
    assert ok["__typename"] == "CreateResourceSuccess", ok
    bad_update = await tenant.gql(
        UPDATE, {"input": {"id": ok["resource"]["id"], "url": "mailto:someone@example.org"}}
    )
    assert bad_update["data"]["updateResource"]["field"] == "url"


async def test_writes_are_audited_with_tags(app: Starlette, tenant: Tenant) -> None:
    await create_collaborative(tenant, "audit-collab")
    created = await create(tenant, {**CATALOG[0], "collaboratives": ["audit-collab"]})
    resource_id = created["resource"]["id"]
    await tenant.gql(UPDATE, {"input": {"id": resource_id, "topics": ["copd"]}})
    state: AppState = app.state.collabx
    async with state.sessionmaker() as session:
        events = (
            await session.scalars(
                select(AuditEvent)
                .where(
                    AuditEvent.sponsor_id == tenant.sponsor_id, AuditEvent.entity_type == "Resource"
                )
                .order_by(AuditEvent.at)
            )
        ).all()
    assert [e.action for e in events] == ["resource.create", "resource.update"]
    create_event, update_event = events
    assert create_event.actor_client_id == tenant.admin_id
    assert create_event.before is None
    assert create_event.after is not None
    assert create_event.after["title"] == "Asthma action plan toolkit"
    assert create_event.after["topics"] == ["asthma", "pediatrics"]
    assert create_event.after["care_model_domains"] == [
        "SELF_MANAGEMENT_SUPPORT",
        "DECISION_SUPPORT",
    ]
    assert create_event.after["collaboratives"] == ["audit-collab"]
    assert update_event.before == create_event.after
    assert update_event.after is not None
    assert update_event.after["topics"] == ["copd"]
    assert update_event.after["collaboratives"] == ["audit-collab"]
    assert update_event.entity_id == create_event.entity_id
