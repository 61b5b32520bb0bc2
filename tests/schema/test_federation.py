"""Apollo Federation v2: the exported SDL composes into a supergraph; entities resolve safely.

Composition uses the npm package ``@apollo/composition`` (pinned in tools/apollo-composition),
installed with ``npm ci`` into the ignored ``.tools/apollo-composition`` the first time and again
only when the lockfile changes. Entity resolution is tested on both backends: own sponsor only,
the ``program:read`` scope, and a constant number of SQL statements per batch.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
from starlette.applications import Starlette

from db.enums import ClientKind
from schema.sdl import sdl
from tests.factories import Tenant, TenantFactory
from tests.programs import build_program
from tests.schema.test_no_n_plus_one import counted_statements

ROOT = Path(__file__).resolve().parents[2]
TOOL_SOURCE = ROOT / "tools" / "apollo-composition"
TOOL_DIR = ROOT / ".tools" / "apollo-composition"

EVENTS_SDL = """
extend schema @link(url: "https://specs.apollo.dev/federation/v2.5", import: ["@key"])

"A sponsor's events service: meetings and webinars of a collaborative."
type Collaborative @key(fields: "sponsorSlug code") {
  sponsorSlug: String!
  code: String!
  "Upcoming events of the collaborative."
  events: [Event!]!
}

"An event."
type Event {
  title: String!
  startsAt: String!
}

type Query {
  "Every upcoming event."
  upcomingEvents: [Event!]!
}
"""

SERVICE = "{ _service { sdl } }"

ENTITIES = """
query Entities($representations: [_Any!]!) {
  _entities(representations: $representations) {
    __typename
    ... on Collaborative { code sponsorSlug name sponsor { slug } }
    ... on Team { code sponsorSlug }
    ... on Organization { code sponsorSlug }
    ... on Measure { code sponsorSlug }
    ... on Sponsor { slug }
  }
}
"""


def _compose_script() -> tuple[str, Path]:
    """node and the compose script, installing the pinned packages when missing or stale."""
    npm, node = shutil.which("npm"), shutil.which("node")
    if npm is None or node is None:
        pytest.skip("node and npm are needed for Apollo Federation composition")
    TOOL_DIR.mkdir(parents=True, exist_ok=True)
    lock = (TOOL_SOURCE / "package-lock.json").read_bytes()
    installed_lock = TOOL_DIR / "package-lock.json"
    marker = TOOL_DIR / "node_modules" / "@apollo" / "composition" / "package.json"
    if not marker.is_file() or not installed_lock.is_file() or installed_lock.read_bytes() != lock:
        for name in ("package.json", "package-lock.json"):
            shutil.copyfile(TOOL_SOURCE / name, TOOL_DIR / name)
        result = subprocess.run(
            [npm, "ci", "--prefix", str(TOOL_DIR), "--no-audit", "--no-fund"],
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        assert result.returncode == 0, f"npm ci failed:\n{result.stdout}\n{result.stderr}"
    script = TOOL_DIR / "compose.mjs"
    shutil.copyfile(TOOL_SOURCE / "compose.mjs", script)
    return node, script


def _compose(subgraphs: dict[str, str]) -> dict[str, Any]:
    """The composition result of ``subgraphs`` (name → SDL): errors, hints, supergraph SDL."""
    node, script = _compose_script()
    payload = [
        {"name": n, "url": f"http://{n}.example/graphql", "sdl": s} for n, s in subgraphs.items()
    ]
    result = subprocess.run(
        [node, str(script)],
        input=json.dumps(payload),
        capture_output=True,
        text=True,
        timeout=50,
        check=False,
        cwd=TOOL_DIR,
    )
    assert result.returncode == 0, result.stderr
    composed: dict[str, Any] = json.loads(result.stdout)
    return composed


def test_exported_sdl_composes_with_an_events_subgraph() -> None:
    composed = _compose({"collabx": sdl(), "events": EVENTS_SDL})
    assert composed["errors"] == []
    supergraph = composed["supergraphSdl"]
    assert "upcomingEvents" in supergraph
    assert 'key: "sponsorSlug code"' in supergraph


def test_composition_reports_errors() -> None:
    """The harness does fail: a key naming a field that does not exist is an error."""
    broken = EVENTS_SDL.replace('@key(fields: "sponsorSlug code")', '@key(fields: "id code")')
    composed = _compose({"collabx": sdl(), "events": broken})
    assert composed["errors"], composed


def test_committed_sdl_is_the_subgraph_sdl() -> None:
    text = sdl()
    assert '@link(url: "https://specs.apollo.dev/federation/' in text
    for name in ("Collaborative", "Team", "Organization", "Measure"):
        assert f'type {name} implements Node @key(fields: "sponsorSlug code"' in text
    assert 'type Sponsor implements Node @key(fields: "slug"' in text


def _key(typename: str, tenant: Tenant, code: str) -> dict[str, str]:
    return {"__typename": typename, "sponsorSlug": tenant.slug, "code": code}


async def test_service_sdl_has_keys(tenant: Tenant) -> None:
    body = await tenant.gql(SERVICE)
    assert "errors" not in body, body
    assert '@key(fields: "sponsorSlug code"' in body["data"]["_service"]["sdl"]


async def test_entities_resolve_own_sponsor_only(tenants: TenantFactory) -> None:
    tenant, other = await tenants.create(), await tenants.create()
    program = await build_program(tenant, "fed", teams=1)
    representations = [
        _key("Collaborative", tenant, "fed"),
        _key("Collaborative", other, "fed"),
        _key("Collaborative", tenant, "missing"),
        _key("Team", tenant, program.team_codes[0]),
        _key("Organization", tenant, "fed-org"),
        _key("Measure", tenant, "fed-control"),
        {"__typename": "Sponsor", "slug": tenant.slug},
        {"__typename": "Sponsor", "slug": other.slug},
    ]
    body = await tenant.gql(ENTITIES, {"representations": representations})
    assert "errors" not in body, body
    got = body["data"]["_entities"]
    assert got[0] == {
        "__typename": "Collaborative",
        "code": "fed",
        "sponsorSlug": tenant.slug,
        "name": "Program fed",
        "sponsor": {"slug": tenant.slug},
    }
    assert got[1] is None and got[2] is None
    assert got[3] == {
        "__typename": "Team",
        "code": program.team_codes[0],
        "sponsorSlug": tenant.slug,
    }
    assert got[4] == {"__typename": "Organization", "code": "fed-org", "sponsorSlug": tenant.slug}
    assert got[5] == {"__typename": "Measure", "code": "fed-control", "sponsorSlug": tenant.slug}
    assert got[6] == {"__typename": "Sponsor", "slug": tenant.slug}
    assert got[7] is None
    # The other sponsor cannot see the first one's collaborative by its key either.
    body = await other.gql(ENTITIES, {"representations": [_key("Collaborative", tenant, "fed")]})
    assert "errors" not in body, body
    assert body["data"]["_entities"] == [None]


async def test_entities_need_program_read(tenant: Tenant) -> None:
    await build_program(tenant, "fed", teams=0)
    client_id, secret = await tenant.add_client(ClientKind.PARTNER)
    token = await tenant.token(client_id, secret)
    body = await tenant.gql(
        ENTITIES, {"representations": [_key("Collaborative", tenant, "fed")]}, token=token
    )
    codes = [e.get("extensions", {}).get("code") for e in body.get("errors", [])]
    assert codes and set(codes) == {"FORBIDDEN"}, body
    assert body["data"]["_entities"] == [None]


async def test_entities_are_batched(app: Starlette, tenant: Tenant) -> None:
    for code in ("p1", "p2", "p3", "p4", "p5"):
        await build_program(tenant, code, teams=0)
    await tenant.token()

    async def count(codes: list[str]) -> int:
        variables = {"representations": [_key("Collaborative", tenant, c) for c in codes]}
        with counted_statements(app) as statements:
            body = await tenant.gql(ENTITIES, variables)
        assert "errors" not in body, body
        assert [e["code"] for e in body["data"]["_entities"]] == codes
        return len(statements)

    one, five = await count(["p1"]), await count(["p1", "p2", "p3", "p4", "p5"])
    assert one == five, (one, five)


async def test_incomplete_representation_resolves_to_null(tenant: Tenant) -> None:
    await build_program(tenant, "fed", teams=0)
    representations = [{"__typename": "Collaborative", "code": "fed"}]
    body = await tenant.gql(ENTITIES, {"representations": representations})
    assert "errors" not in body, body
    assert body["data"]["_entities"] == [None]
