"""``node(id:)`` / ``nodes(ids:)`` resolve every object type, within the caller's sponsor only."""

from __future__ import annotations

from db.enums import ClientKind
from tests.factories import Tenant, TenantFactory
from tests.programs import build_program

NODE = """
query Node($id: ID!) {
  node(id: $id) {
    __typename
    id
    ... on Collaborative { code }
    ... on Organization { code }
    ... on Team { code }
    ... on Measure { code }
    ... on MeasureDefinition { version }
    ... on Resource { title }
    ... on Sponsor { slug }
  }
}
"""

NODES = "query Nodes($ids: [ID!]!) { nodes(ids: $ids) { __typename id } }"
SPONSOR_ID = "{ viewer { sponsor { id } } }"


async def test_every_type_round_trips_through_node(tenant: Tenant) -> None:
    program = await build_program(tenant)
    sponsor_id = (await tenant.gql(SPONSOR_ID))["data"]["viewer"]["sponsor"]["id"]
    for type_name, global_id in {**program.ids, "Sponsor": sponsor_id}.items():
        body = await tenant.gql(NODE, {"id": global_id})
        assert "errors" not in body, body
        node = body["data"]["node"]
        assert node["__typename"] == type_name
        assert node["id"] == global_id
    ids = list(program.ids.values())
    listed = await tenant.gql(NODES, {"ids": ids})
    assert [n["id"] for n in listed["data"]["nodes"]] == ids


async def test_other_sponsors_and_bad_ids_read_as_null(tenants: TenantFactory) -> None:
    owner, stranger = await tenants.create(), await tenants.create()
    program = await build_program(owner)
    owner_sponsor = (await owner.gql(SPONSOR_ID))["data"]["viewer"]["sponsor"]["id"]
    for global_id in [*program.ids.values(), owner_sponsor]:
        body = await stranger.gql(NODE, {"id": global_id})
        assert body["data"]["node"] is None, global_id
    for bad in ("", "not-base64!", "Q29sbGFib3JhdGl2ZTpub3QtYS11dWlk", "VW5rbm93bjox"):
        assert (await owner.gql(NODE, {"id": bad}))["data"]["node"] is None


async def test_node_checks_the_scope_of_the_type(tenant: Tenant) -> None:
    program = await build_program(tenant)
    client_id, secret = await tenant.add_client(ClientKind.PARTNER, scopes=("catalog:read",))
    token = await tenant.token(client_id, secret)
    denied = await tenant.gql(NODE, {"id": program.ids["Team"]}, token=token)
    assert denied["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    allowed = await tenant.gql(NODE, {"id": program.ids["Resource"]}, token=token)
    assert allowed["data"]["node"]["__typename"] == "Resource"


async def test_nodes_is_capped(tenant: Tenant) -> None:
    body = await tenant.gql(NODES, {"ids": ["x"] * 101})
    assert body["errors"][0]["extensions"]["code"] == "VALIDATION"
