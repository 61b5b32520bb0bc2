"""Change packages: concepts and ideas added and changed, read through ``changePackage``;
resources, conflicts, scopes, team-bound clients, tenancy, audit and ``node``."""

from __future__ import annotations

from typing import Any

from db.enums import ClientKind
from schema.ids import decode_global_id
from tests.content import audit_events, client_token, data, error_codes
from tests.factories import Tenant, TenantFactory
from tests.programs import build_program

ADD_CONCEPT = """
mutation Add($input: AddChangeConceptInput!) {
  addChangeConcept(input: $input) {
    __typename
    ... on AddChangeConceptSuccess { concept { id title careModelDomains position } }
    ... on Error { code message }
    ... on ValidationError { field }
    ... on NotFoundError { field }
    ... on ConflictError { field }
  }
}
"""

UPDATE_CONCEPT = """
mutation Update($input: UpdateChangeConceptInput!) {
  updateChangeConcept(input: $input) {
    __typename
    ... on UpdateChangeConceptSuccess {
      concept { title description careModelDomains resources { title } }
    }
    ... on Error { code }
    ... on NotFoundError { field }
  }
}
"""

ADD_IDEA = """
mutation Add($input: AddChangeIdeaInput!) {
  addChangeIdea(input: $input) {
    __typename
    ... on AddChangeIdeaSuccess { idea { id title position concept { title } } }
    ... on Error { code }
    ... on NotFoundError { field }
    ... on ConflictError { field }
    ... on ValidationError { field }
  }
}
"""

UPDATE_IDEA = """
mutation Update($input: UpdateChangeIdeaInput!) {
  updateChangeIdea(input: $input) {
    __typename
    ... on UpdateChangeIdeaSuccess { idea { title description resources { title } } }
    ... on Error { code }
  }
}
"""

PACKAGE = """
query Package($code: String!) {
  collaborative(code: $code) {
    changePackage {
      concepts {
        title description careModelDomains position
        resources { title }
        collaborative { code }
        ideas { title description position resources { title kind } }
      }
    }
  }
}
"""

TITLES = """
query Titles($code: String!) {
  collaborative(code: $code) { changePackage { concepts { title ideas { title } } } }
}
"""

NODE = "query N($id: ID!) { node(id: $id) { __typename ... on ChangeIdea { title } } }"


async def _concept(tenant: Tenant, **fields: Any) -> dict[str, Any]:
    body = data(await tenant.gql(ADD_CONCEPT, {"input": fields}))
    result: dict[str, Any] = body["addChangeConcept"]
    return result


async def test_a_change_package_grows_concept_by_concept_and_idea_by_idea(
    tenant: Tenant,
) -> None:
    program = await build_program(tenant, "cp")
    first = await _concept(
        tenant,
        collaborative="cp",
        title="  Support self-management  ",
        description="Plans families can use.",
        careModelDomains=["SELF_MANAGEMENT_SUPPORT", "HEALTH_SYSTEM", "SELF_MANAGEMENT_SUPPORT"],
        resources=[program.ids["Resource"]],
    )
    assert first["__typename"] == "AddChangeConceptSuccess", first
    concept = first["concept"]
    assert concept["title"] == "Support self-management"
    assert concept["careModelDomains"] == ["HEALTH_SYSTEM", "SELF_MANAGEMENT_SUPPORT"]
    assert concept["position"] == 0
    second = await _concept(tenant, collaborative="cp", title="Use a registry")
    assert second["concept"]["position"] == 1

    for title in ("Standard action plan", "Teach-back"):
        added = data(
            await tenant.gql(
                ADD_IDEA,
                {"input": {"concept": concept["id"], "title": title, "description": "Try it."}},
            )
        )["addChangeIdea"]
        assert added["__typename"] == "AddChangeIdeaSuccess", added
        assert added["idea"]["concept"]["title"] == "Support self-management"
    idea_id = added["idea"]["id"]
    assert added["idea"]["position"] == 1
    changed = data(
        await tenant.gql(
            UPDATE_IDEA,
            {
                "input": {
                    "id": idea_id,
                    "title": "Teach-back on inhalers",
                    "resources": [program.ids["Resource"]],
                }
            },
        )
    )["updateChangeIdea"]
    assert changed["idea"]["resources"] == [{"title": "Asthma action plan template 0"}]

    package = data(await tenant.gql(PACKAGE, {"code": "cp"}))["collaborative"]["changePackage"]
    assert [c["title"] for c in package["concepts"]] == [
        "Support self-management",
        "Use a registry",
    ]
    self_management = package["concepts"][0]
    assert self_management["resources"] == [{"title": "Asthma action plan template 0"}]
    assert self_management["collaborative"] == {"code": "cp"}
    assert [i["title"] for i in self_management["ideas"]] == [
        "Standard action plan",
        "Teach-back on inhalers",
    ]
    assert self_management["ideas"][1]["resources"][0]["kind"] == "TOOL"
    assert package["concepts"][1]["ideas"] == []

    node = data(await tenant.gql(NODE, {"id": idea_id}))["node"]
    assert node == {"__typename": "ChangeIdea", "title": "Teach-back on inhalers"}

    events = await audit_events(tenant, "ChangeConcept")
    assert [e.action for e in events] == ["change_concept.create", "change_concept.create"]
    assert events[0].after is not None
    assert events[0].after["resources"] == [str(decode_global_id(program.ids["Resource"])[1])]
    ideas = await audit_events(tenant, "ChangeIdea")
    assert [e.action for e in ideas] == [
        "change_idea.create",
        "change_idea.create",
        "change_idea.update",
    ]
    assert ideas[-1].before is not None and ideas[-1].before["title"] == "Teach-back"
    assert ideas[-1].after is not None and ideas[-1].after["title"] == "Teach-back on inhalers"
    assert ideas[-1].after["resources"] != []


async def test_update_concept_replaces_domains_and_resources(tenant: Tenant) -> None:
    program = await build_program(tenant, "up")
    concept = (
        await _concept(
            tenant, collaborative="up", title="Registry", resources=[program.ids["Resource"]]
        )
    )["concept"]
    body = data(
        await tenant.gql(
            UPDATE_CONCEPT,
            {
                "input": {
                    "id": concept["id"],
                    "description": "Population management.",
                    "careModelDomains": ["CLINICAL_INFORMATION_SYSTEMS"],
                    "resources": [],
                }
            },
        )
    )["updateChangeConcept"]
    assert body["concept"] == {
        "title": "Registry",
        "description": "Population management.",
        "careModelDomains": ["CLINICAL_INFORMATION_SYSTEMS"],
        "resources": [],
    }
    events = await audit_events(tenant, "ChangeConcept")
    update = events[-1]
    assert update.action == "change_concept.update"
    assert update.before is not None and len(update.before["resources"]) == 1
    assert update.after is not None and update.after["resources"] == []


async def test_expected_failures_are_union_members(tenant: Tenant) -> None:
    program = await build_program(tenant, "bad")
    concept = (await _concept(tenant, collaborative="bad", title="Registry"))["concept"]

    taken = await _concept(tenant, collaborative="bad", title="Registry")
    assert (taken["__typename"], taken["code"], taken["field"]) == (
        "ConflictError",
        "CONFLICT",
        "title",
    )
    missing = await _concept(tenant, collaborative="nope", title="X")
    assert (missing["code"], missing["field"]) == ("NOT_FOUND", "collaborative")
    empty = await _concept(tenant, collaborative="bad", title="   ")
    assert (empty["code"], empty["field"]) == ("VALIDATION", "title")
    too_long = await _concept(tenant, collaborative="bad", title="x" * 301)
    assert (too_long["code"], too_long["field"]) == ("VALIDATION", "title")
    nul = await _concept(tenant, collaborative="bad", title="a\x00b")
    assert (nul["code"], nul["field"]) == ("VALIDATION", "title")
    wrong_resource = await _concept(
        tenant, collaborative="bad", title="Y", resources=[program.ids["Team"]]
    )
    assert (wrong_resource["code"], wrong_resource["field"]) == ("NOT_FOUND", "resources")

    idea = {"concept": concept["id"], "title": "Huddle"}
    assert data(await tenant.gql(ADD_IDEA, {"input": idea}))["addChangeIdea"]["__typename"] == (
        "AddChangeIdeaSuccess"
    )
    again = data(await tenant.gql(ADD_IDEA, {"input": idea}))["addChangeIdea"]
    assert (again["code"], again["field"]) == ("CONFLICT", "title")
    orphan = data(
        await tenant.gql(ADD_IDEA, {"input": {"concept": program.ids["Team"], "title": "Z"}})
    )["addChangeIdea"]
    assert (orphan["code"], orphan["field"]) == ("NOT_FOUND", "concept")


async def test_scopes_team_bound_clients_and_tenancy(tenants: TenantFactory) -> None:
    owner, stranger = await tenants.create(), await tenants.create()
    await build_program(owner, "own")
    concept = (await _concept(owner, collaborative="own", title="Registry"))["concept"]

    dashboard = await client_token(owner, ClientKind.DASHBOARD)
    body = await owner.gql(
        ADD_CONCEPT, {"input": {"collaborative": "own", "title": "X"}}, token=dashboard
    )
    assert error_codes(body) == ["FORBIDDEN"]
    # A team-bound client may not write the change package even if given program:write.
    ehr = await client_token(
        owner,
        ClientKind.EHR_INTEGRATION,
        teams=("own-team-0",),
        scopes=("program:read", "program:write", "data:write"),
    )
    body = data(
        await owner.gql(ADD_CONCEPT, {"input": {"collaborative": "own", "title": "X"}}, token=ehr)
    )
    assert body["addChangeConcept"]["__typename"] == "ForbiddenError"
    # Reading is for program:read holders, EHR clients included.
    read = data(await owner.gql(TITLES, {"code": "own"}, token=ehr))
    assert read["collaborative"]["changePackage"]["concepts"][0]["title"] == "Registry"

    # Another sponsor cannot see or extend it.
    assert data(await stranger.gql(PACKAGE, {"code": "own"}))["collaborative"] is None
    other = data(
        await stranger.gql(ADD_IDEA, {"input": {"concept": concept["id"], "title": "Mine"}})
    )["addChangeIdea"]
    assert other["code"] == "NOT_FOUND"
    assert data(await stranger.gql(NODE, {"id": concept["id"]}))["node"] is None
