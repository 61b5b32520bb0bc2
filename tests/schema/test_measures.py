"""Measures: define and version, read back, measure sets of collaboratives, filters; scopes,
tenancy, audit and bad inputs."""

from __future__ import annotations

from typing import Any

from sqlalchemy import event, select
from starlette.applications import Starlette

from api.state import AppState
from db.enums import ClientKind
from db.models import AuditEvent
from tests.factories import Tenant, TenantFactory

DEFINITION_FIELDS = """
name description type scoring numerator denominator exclusions unit multiplier
improvementDirection dataSource sampling frequency fhirCanonical externalCodes { system code }
"""

DEFINE = f"""
mutation Define($input: DefineMeasureInput!) {{
  defineMeasure(input: $input) {{
    __typename
    ... on DefineMeasureSuccess {{
      created versionCreated
      measure {{ id code version currentVersion {DEFINITION_FIELDS} }}
    }}
    ... on Error {{ code message }}
    ... on ValidationError {{ field }}
    ... on ConflictError {{ field }}
  }}
}}
"""

MEASURE = f"""
query One($code: String!, $version: Int, $sponsor: String) {{
  measure(code: $code, version: $version, sponsor: $sponsor) {{
    id code version currentVersion sponsor {{ slug }} {DEFINITION_FIELDS}
    versions {{ id version createdAt name multiplier }}
  }}
}}
"""

LIST = """
query List($filter: MeasureFilter, $first: Int, $after: String, $order: MeasureOrder) {
  measures(filter: $filter, first: $first, after: $after, orderBy: $order) {
    totalCount
    pageInfo { hasNextPage endCursor }
    edges { cursor node { code name version } }
  }
}
"""

CREATE_COLLABORATIVE = """
mutation Create($input: CreateCollaborativeInput!) {
  createCollaborative(input: $input) { __typename }
}
"""

ADD = """
mutation Add($input: AddMeasureToCollaborativeInput!) {
  addMeasureToCollaborative(input: $input) {
    __typename
    ... on AddMeasureToCollaborativeSuccess {
      collaborative { code }
      collaborativeMeasure { required goal goalDescription position measure { code version } }
    }
    ... on Error { code message }
    ... on NotFoundError { field }
    ... on ValidationError { field }
    ... on ConflictError { field }
  }
}
"""

MEASURE_SET = """
query Set($code: String!, $first: Int, $after: String) {
  collaborative(code: $code) {
    measures(first: $first, after: $after) {
      totalCount
      pageInfo { hasNextPage hasPreviousPage endCursor }
      edges { node { required goal goalDescription position measure { code name } } }
    }
  }
}
"""


def measure_input(code: str, **extra: Any) -> dict[str, Any]:
    values: dict[str, Any] = {
        "code": code,
        "name": f"Measure {code}",
        "description": "Share of children whose asthma is well controlled.",
        "type": "OUTCOME",
        "scoring": "PROPORTION",
        "numerator": "Patients with an ACT score of 20 or more.",
        "denominator": "Patients aged 5-17 with persistent asthma seen this month.",
        "exclusions": "Cystic fibrosis.",
        "unit": "%",
        "multiplier": 100.0,
        "improvementDirection": "INCREASE",
        "dataSource": "EHR registry",
        "sampling": "All patients",
        "frequency": "MONTHLY",
        "fhirCanonical": f"https://measures.example.org/Measure/{code}",
        "externalCodes": [
            {"system": "loinc", "code": "82673-7"},
            {"system": "dhis2", "code": "AbC123"},
        ],
    }
    values.update(extra)
    return values


async def define(tenant: Tenant, code: str, **extra: Any) -> dict[str, Any]:
    body = await tenant.gql(DEFINE, {"input": measure_input(code, **extra)})
    assert "errors" not in body, body
    result: dict[str, Any] = body["data"]["defineMeasure"]
    return result


async def read(tenant: Tenant, code: str, **variables: Any) -> dict[str, Any] | None:
    body = await tenant.gql(MEASURE, {"code": code, **variables})
    assert "errors" not in body, body
    result: dict[str, Any] | None = body["data"]["measure"]
    return result


async def create_collaborative(tenant: Tenant, code: str) -> None:
    body = await tenant.gql(
        CREATE_COLLABORATIVE,
        {"input": {"code": code, "name": f"Collaborative {code}", "topic": "Asthma"}},
    )
    assert body["data"]["createCollaborative"]["__typename"] == "CreateCollaborativeSuccess", body


async def add(tenant: Tenant, collaborative: str, measure: str, **extra: Any) -> dict[str, Any]:
    body = await tenant.gql(
        ADD, {"input": {"collaborative": collaborative, "measure": measure, **extra}}
    )
    assert "errors" not in body, body
    result: dict[str, Any] = body["data"]["addMeasureToCollaborative"]
    return result


async def list_codes(tenant: Tenant, **variables: Any) -> list[str]:
    body = await tenant.gql(LIST, variables)
    assert "errors" not in body, body
    return [edge["node"]["code"] for edge in body["data"]["measures"]["edges"]]


async def test_define_then_read_back_every_field(tenant: Tenant) -> None:
    defined = await define(tenant, "asthma-control")
    assert defined["__typename"] == "DefineMeasureSuccess"
    assert (defined["created"], defined["versionCreated"]) == (True, True)
    assert defined["measure"]["version"] == 1
    measure = await read(tenant, "asthma-control")
    assert measure is not None
    expected = measure_input("asthma-control")
    for key in (
        "code",
        "name",
        "description",
        "type",
        "scoring",
        "numerator",
        "denominator",
        "exclusions",
        "unit",
        "multiplier",
        "improvementDirection",
        "dataSource",
        "sampling",
        "frequency",
        "fhirCanonical",
    ):
        assert measure[key] == expected[key], key
    assert measure["externalCodes"] == [
        {"system": "dhis2", "code": "AbC123"},
        {"system": "loinc", "code": "82673-7"},
    ]
    assert (measure["version"], measure["currentVersion"]) == (1, 1)
    assert measure["sponsor"] == {"slug": tenant.slug}
    assert measure["id"] == defined["measure"]["id"]
    assert [v["version"] for v in measure["versions"]] == [1]


async def test_defaults_of_optional_fields(tenant: Tenant) -> None:
    minimal = {
        "code": "pdsa-count",
        "name": "PDSA cycles",
        "type": "PROCESS",
        "scoring": "COUNT",
        "improvementDirection": "INCREASE",
    }
    body = await tenant.gql(DEFINE, {"input": minimal})
    measure = body["data"]["defineMeasure"]["measure"]
    assert measure["multiplier"] == 1.0
    assert measure["frequency"] == "MONTHLY"
    assert measure["fhirCanonical"] is None
    assert measure["externalCodes"] == []
    assert measure["numerator"] == ""


async def test_identical_redefinition_creates_no_version(tenant: Tenant) -> None:
    await define(tenant, "same")
    again = await define(tenant, "same")
    assert again["__typename"] == "DefineMeasureSuccess"
    assert (again["created"], again["versionCreated"]) == (False, False)
    assert again["measure"]["version"] == 1
    reordered = await define(
        tenant,
        "same",
        externalCodes=list(reversed(measure_input("same")["externalCodes"])),
    )
    assert reordered["versionCreated"] is False, "external code order is not a change"
    measure = await read(tenant, "same")
    assert measure is not None and len(measure["versions"]) == 1


async def test_changed_definition_is_a_new_version(tenant: Tenant) -> None:
    await define(tenant, "evolving", name="Old name")
    changed = await define(tenant, "evolving", name="New name")
    assert (changed["created"], changed["versionCreated"]) == (False, True)
    assert changed["measure"]["version"] == 2
    assert changed["measure"]["name"] == "New name"

    current = await read(tenant, "evolving")
    assert current is not None
    assert (current["name"], current["version"], current["currentVersion"]) == ("New name", 2, 2)
    assert [(v["version"], v["name"]) for v in current["versions"]] == [
        (1, "Old name"),
        (2, "New name"),
    ]
    assert current["versions"][0]["id"] != current["versions"][1]["id"]

    old = await read(tenant, "evolving", version=1)
    assert old is not None
    assert (old["name"], old["version"], old["currentVersion"]) == ("Old name", 1, 2)
    assert old["id"] == current["id"], "a version is the same measure"
    assert await read(tenant, "evolving", version=3) is None

    only_codes = await define(
        tenant, "evolving", name="New name", externalCodes=[{"system": "dhis2", "code": "X"}]
    )
    assert only_codes["measure"]["version"] == 3
    back = await define(tenant, "evolving", name="Old name")
    assert back["measure"]["version"] == 4, "returning to an old definition is a new version"


async def test_measure_set_of_a_collaborative(tenant: Tenant) -> None:
    await create_collaborative(tenant, "asthma-2026")
    for code in ("control", "action-plan", "ed-visits"):
        await define(tenant, code)
    first = await add(
        tenant, "asthma-2026", "control", goal=75.0, goalDescription="75% by December"
    )
    assert first["__typename"] == "AddMeasureToCollaborativeSuccess"
    assert first["collaborative"] == {"code": "asthma-2026"}
    assert first["collaborativeMeasure"] == {
        "required": True,
        "goal": 75.0,
        "goalDescription": "75% by December",
        "position": 1,
        "measure": {"code": "control", "version": 1},
    }
    second = await add(tenant, "asthma-2026", "action-plan", required=False)
    assert second["collaborativeMeasure"]["position"] == 2
    third = await add(tenant, "asthma-2026", "ed-visits", position=0)
    assert third["collaborativeMeasure"]["position"] == 0

    body = await tenant.gql(MEASURE_SET, {"code": "asthma-2026"})
    assert "errors" not in body, body
    measures = body["data"]["collaborative"]["measures"]
    assert measures["totalCount"] == 3
    nodes = [edge["node"] for edge in measures["edges"]]
    assert [(n["measure"]["code"], n["required"], n["goal"]) for n in nodes] == [
        ("ed-visits", True, None),
        ("control", True, 75.0),
        ("action-plan", False, None),
    ]

    page = (await tenant.gql(MEASURE_SET, {"code": "asthma-2026", "first": 2}))["data"]
    connection = page["collaborative"]["measures"]
    assert connection["pageInfo"]["hasNextPage"] is True
    assert connection["totalCount"] == 3
    rest = await tenant.gql(
        MEASURE_SET,
        {"code": "asthma-2026", "first": 2, "after": connection["pageInfo"]["endCursor"]},
    )
    tail = rest["data"]["collaborative"]["measures"]
    assert [e["node"]["measure"]["code"] for e in tail["edges"]] == ["action-plan"]
    assert tail["pageInfo"]["hasNextPage"] is False
    assert tail["pageInfo"]["hasPreviousPage"] is True

    await define(tenant, "control", name="Control, stricter")
    renamed = await tenant.gql(MEASURE_SET, {"code": "asthma-2026"})
    names = [
        e["node"]["measure"]["name"] for e in renamed["data"]["collaborative"]["measures"]["edges"]
    ]
    assert "Control, stricter" in names, "a set shows each measure's current definition"

    duplicate = await add(tenant, "asthma-2026", "control", goal=80.0)
    assert (duplicate["__typename"], duplicate["code"], duplicate["field"]) == (
        "ConflictError",
        "CONFLICT",
        "measure",
    )


async def test_measure_sets_of_many_collaboratives_in_one_request(tenant: Tenant) -> None:
    await define(tenant, "shared")
    for code in ("one", "two"):
        await create_collaborative(tenant, code)
        await add(tenant, code, "shared", goal=1.5)
    await create_collaborative(tenant, "empty")
    body = await tenant.gql(
        "query { collaboratives(first: 10) { edges { node { code measures { totalCount "
        "edges { node { goal measure { code } } } } } } } }"
    )
    assert "errors" not in body, body
    sets = {
        e["node"]["code"]: e["node"]["measures"] for e in body["data"]["collaboratives"]["edges"]
    }
    assert sets["empty"]["totalCount"] == 0
    assert sets["one"]["edges"] == [{"node": {"goal": 1.5, "measure": {"code": "shared"}}}]
    assert sets["two"]["totalCount"] == 1


async def test_filters_and_ordering(tenant: Tenant) -> None:
    await define(tenant, "pct", name="Visits 100% on time", type="PROCESS")
    await define(tenant, "under", name="a_b rate", type="OUTCOME")
    await define(tenant, "plain", name="axb rate", type="BALANCING")
    await create_collaborative(tenant, "prog")
    await add(tenant, "prog", "under")
    await add(tenant, "prog", "plain")

    assert await list_codes(tenant) == ["pct", "plain", "under"]
    assert await list_codes(tenant, filter={"type": "OUTCOME"}) == ["under"]
    assert await list_codes(tenant, filter={"collaborative": "prog"}) == ["plain", "under"]
    assert await list_codes(tenant, filter={"collaborative": "nope"}) == []
    assert await list_codes(tenant, filter={"search": "%"}) == ["pct"]
    assert await list_codes(tenant, filter={"search": "a_b"}) == ["under"]
    assert await list_codes(tenant, filter={"search": "RATE"}) == ["plain", "under"]
    assert await list_codes(tenant, filter={"search": "pct"}) == ["pct"]
    assert await list_codes(tenant, filter={"collaborative": "prog", "type": "BALANCING"}) == [
        "plain"
    ]
    assert await list_codes(tenant, filter={"sponsor": "someone-else"}) == []
    assert await list_codes(tenant, order={"field": "CODE", "direction": "DESC"}) == [
        "under",
        "plain",
        "pct",
    ]

    await define(tenant, "under", name="renamed", type="OUTCOME")
    assert await list_codes(tenant, filter={"search": "a_b"}) == [], "only current definitions"

    seen: list[str] = []
    after = None
    while True:
        body = await tenant.gql(LIST, {"first": 2, "after": after})
        page = body["data"]["measures"]
        assert page["totalCount"] == 3
        seen += [edge["node"]["code"] for edge in page["edges"]]
        if not page["pageInfo"]["hasNextPage"]:
            break
        after = page["pageInfo"]["endCursor"]
    assert seen == ["pct", "plain", "under"]


async def test_another_sponsor_sees_nothing(tenants: TenantFactory) -> None:
    owner, stranger = await tenants.create(), await tenants.create()
    await define(owner, "private")
    await create_collaborative(owner, "owned")
    await add(owner, "owned", "private")

    assert await read(stranger, "private") is None
    assert await read(stranger, "private", sponsor=owner.slug) is None
    assert await read(stranger, "private", version=1) is None
    assert await list_codes(stranger) == []
    assert await list_codes(stranger, filter={"sponsor": owner.slug}) == []

    await create_collaborative(stranger, "mine")
    foreign_measure = await add(stranger, "mine", "private")
    assert (foreign_measure["code"], foreign_measure["field"]) == ("NOT_FOUND", "measure")
    foreign_set = await add(stranger, "owned", "private")
    assert (foreign_set["code"], foreign_set["field"]) == ("NOT_FOUND", "collaborative")

    same_code = await define(stranger, "private", name="Stranger's own")
    assert same_code["created"] is True
    mine = await read(owner, "private")
    assert mine is not None and mine["name"] == "Measure private"
    assert len(mine["versions"]) == 1


async def test_scopes_are_enforced(tenant: Tenant) -> None:
    await define(tenant, "scoped")
    await create_collaborative(tenant, "scoped-prog")
    dashboard_id, dashboard_secret = await tenant.add_client(ClientKind.DASHBOARD)
    dashboard = await tenant.token(dashboard_id, dashboard_secret)
    for document, variables in (
        (DEFINE, {"input": measure_input("x")}),
        (ADD, {"input": {"collaborative": "scoped-prog", "measure": "scoped"}}),
    ):
        denied = await tenant.gql(document, variables, token=dashboard)
        assert denied["data"] is None
        assert denied["errors"][0]["extensions"]["code"] == "FORBIDDEN"
        assert "program:write" in denied["errors"][0]["message"]
    readable = await tenant.gql(MEASURE, {"code": "scoped"}, token=dashboard)
    assert readable["data"]["measure"]["code"] == "scoped"

    catalog_id, catalog_secret = await tenant.add_client(
        ClientKind.PARTNER, scopes=("catalog:read",)
    )
    catalog_only = await tenant.token(catalog_id, catalog_secret)
    for document in (LIST, MEASURE):
        body = await tenant.gql(document, {"code": "scoped"}, token=catalog_only)
        assert body["errors"][0]["extensions"]["code"] == "FORBIDDEN"


async def test_writes_are_audited(app: Starlette, tenant: Tenant) -> None:
    await define(tenant, "audited", name="First")
    await define(tenant, "audited", name="First")  # unchanged: no event
    await define(tenant, "audited", name="Second")
    await create_collaborative(tenant, "audit-prog")
    await add(tenant, "audit-prog", "audited", goal=10.0)
    state: AppState = app.state.collabx
    async with state.sessionmaker() as session:
        events = (
            await session.scalars(
                select(AuditEvent)
                .where(
                    AuditEvent.sponsor_id == tenant.sponsor_id,
                    AuditEvent.action.like("%measure%"),
                )
                .order_by(AuditEvent.at)
            )
        ).all()
    assert [e.action for e in events] == [
        "measure.create",
        "measure.redefine",
        "collaborative.measure.add",
    ]
    created, redefined, added = events
    assert created.before is None
    assert created.after is not None and created.after["definition"]["name"] == "First"
    assert created.actor_client_id == tenant.admin_id
    assert redefined.before is not None and redefined.before["definition"]["version"] == 1
    assert redefined.after is not None and redefined.after["definition"]["name"] == "Second"
    assert redefined.after["current_version"] == 2
    assert redefined.entity_id == created.entity_id
    assert added.entity_type == "Collaborative"
    assert added.after is not None and added.after["goal"] == 10.0
    assert added.after["measure_code"] == "audited"
    assert all(e.request_id for e in events)


async def test_bad_inputs_are_rejected_and_write_nothing(tenant: Tenant) -> None:
    cases: list[tuple[dict[str, Any], str]] = [
        ({"multiplier": -1.0}, "multiplier"),
        ({"multiplier": 0.0}, "multiplier"),
        ({"name": "bad\x00name"}, "name"),
        ({"numerator": "nul\x00"}, "numerator"),
        ({"dataSource": "x" * 10_001}, "dataSource"),
        ({"name": "x" * 201}, "name"),
        ({"name": "   "}, "name"),
        ({"code": "Not A Code"}, "code"),
        ({"code": "x" * 65}, "code"),
        ({"denominator": ""}, "denominator"),
        ({"scoring": "RATE", "numerator": " "}, "numerator"),
        ({"frequency": ""}, "frequency"),
        (
            {"externalCodes": [{"system": "a", "code": "1"}, {"system": "a", "code": "2"}]},
            "externalCodes",
        ),
        ({"externalCodes": [{"system": "a", "code": "\x00"}]}, "externalCodes"),
    ]
    for extra, field in cases:
        result = await define(tenant, extra.pop("code", "bad"), **extra)
        assert (result["__typename"], result["code"], result["field"]) == (
            "ValidationError",
            "VALIDATION",
            field,
        ), (extra, result)
    count = await define(tenant, "count-ok", scoring="COUNT", denominator="")
    assert count["__typename"] == "DefineMeasureSuccess", "COUNT needs no denominator"
    assert await list_codes(tenant) == ["count-ok"], "rejected definitions left rows"

    await create_collaborative(tenant, "prog")
    unknown_collaborative = await add(tenant, "no-such-prog", "count-ok")
    assert (unknown_collaborative["code"], unknown_collaborative["field"]) == (
        "NOT_FOUND",
        "collaborative",
    )
    unknown_measure = await add(tenant, "prog", "no-such-measure")
    assert (unknown_measure["code"], unknown_measure["field"]) == ("NOT_FOUND", "measure")
    negative = await add(tenant, "prog", "count-ok", position=-1)
    assert (negative["code"], negative["field"]) == ("VALIDATION", "position")
    nul = await add(tenant, "prog", "count-ok", goalDescription="\x00")
    assert (nul["code"], nul["field"]) == ("VALIDATION", "goalDescription")
    bad_code = await add(tenant, "prog", "Count OK")
    assert (bad_code["code"], bad_code["field"]) == ("VALIDATION", "measure")
    body = await tenant.gql(MEASURE_SET, {"code": "prog"})
    assert body["data"]["collaborative"]["measures"]["totalCount"] == 0


async def test_bad_measure_set_cursor_is_a_validation_error(tenant: Tenant) -> None:
    await create_collaborative(tenant, "cursor-prog")
    body = await tenant.gql(MEASURE_SET, {"code": "cursor-prog", "after": "bm90LWEtY3Vyc29y"})
    assert body["errors"][0]["extensions"]["code"] == "VALIDATION"


async def test_measure_sets_and_versions_are_batched(app: Starlette, tenant: Tenant) -> None:
    for code in ("m1", "m2"):
        await define(tenant, code)
    for code in ("p1", "p2", "p3"):
        await create_collaborative(tenant, code)
        for measure in ("m1", "m2"):
            await add(tenant, code, measure)
    statements: list[str] = []

    def record(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        statements.append(statement)

    state: AppState = app.state.collabx
    event.listen(state.engine.sync_engine, "before_cursor_execute", record)
    try:
        body = await tenant.gql(
            "query { collaboratives(first: 10) { edges { node { measures { edges { node { "
            "measure { code versions { version } } } } } } } } }"
        )
    finally:
        event.remove(state.engine.sync_engine, "before_cursor_execute", record)
    assert "errors" not in body, body
    assert len(body["data"]["collaboratives"]["edges"]) == 3
    assert len([s for s in statements if "collaborative_measures" in s]) == 1
    assert len([s for s in statements if "measure_versions" in s]) == 2
