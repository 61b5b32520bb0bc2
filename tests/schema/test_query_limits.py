"""Query limits (QUERY_TOO_COMPLEX before anything runs) and HTTP size limits (413, 431).

Every limit is checked on both backends through the real app; the cost formula also directly.
"""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest
from asgi_lifespan import LifespanManager
from graphql import parse
from starlette.applications import Starlette
from starlette.types import Message

from api.app import create_app
from schema.limits import QUERY_TOO_COMPLEX, QueryLimits, operation_costs, without_suggestions
from schema.schema import schema
from tests.conftest import make_settings
from tests.factories import Tenant, TenantFactory
from tests.schema.test_no_n_plus_one import DASHBOARD

MiB = 1024 * 1024

# Object fields that nest without end: depth n ends on a type with a `code`.
_CHAIN = ["collaboratives(first: 1)", "nodes", "teams(first: 1)", "nodes", "collaborative"]
_CHAIN += ["teams(first: 1)", "nodes", "collaborative"] * 3


def nested(depth: int) -> str:
    """A valid query ``depth`` object levels deep, each page of size 1."""
    return "{ " + " { ".join(_CHAIN[:depth]) + " { code }" + " }" * (depth - 1) + " }"


ALIASES_16 = "{ " + " ".join(f"a{i}: viewer {{ kind }}" for i in range(16)) + " }"
ALIASES_15 = "{ " + " ".join(f"a{i}: viewer {{ kind }}" for i in range(15)) + " }"
TOKENS_2001 = "{ viewer { kind } " + "__typename " * 2000 + "}"
DIRECTIVES_51 = "{ viewer { " + "... @include(if: true) { kind } " * 51 + "} }"
DIRECTIVES_50 = "{ viewer { " + "... @include(if: true) { kind } " * 50 + "} }"
COSTLY = """
{
  collaboratives(first: 100) {
    nodes { teams(first: 100) { nodes { collaborative { teams(first: 100) { nodes { code } } } } } }
  }
}
"""
# Each fragment spreads the next twice: 2**40 fields once expanded, in about 400 tokens.
FRAGMENT_BOMB = " ".join(
    ["{ ...F0 }"]
    + [f"fragment F{i} on Query {{ __typename ...F{i + 1} ...F{i + 1} }}" for i in range(40)]
    + ["fragment F40 on Query { __typename }"]
)
INTROSPECTION = "{ __schema { queryType { name } } }"
TYPO = "{ viewr { kind } }"


def limit_error(body: dict[str, Any]) -> dict[str, Any]:
    """The QUERY_TOO_COMPLEX error of a refused request (nothing executed: no data)."""
    assert body.get("data") is None, body
    errors = [e for e in body["errors"] if e.get("extensions", {}).get("code") == QUERY_TOO_COMPLEX]
    assert errors, body
    error: dict[str, Any] = errors[0]
    return error


async def test_too_deep(tenant: Tenant) -> None:
    assert "errors" not in await tenant.gql(nested(10))
    error = limit_error(await tenant.gql(nested(11)))
    assert error["extensions"]["limit"] == "depth"
    assert "depth limit of 10" in error["message"]


async def test_too_many_aliases(tenant: Tenant) -> None:
    assert "errors" not in await tenant.gql(ALIASES_15)
    error = limit_error(await tenant.gql(ALIASES_16))
    assert error["extensions"] == {"code": QUERY_TOO_COMPLEX, "limit": "aliases", "max": 15}
    assert "16 aliases exceed the alias limit of 15" in error["message"]


async def test_too_many_tokens(tenant: Tenant) -> None:
    error = limit_error(await tenant.gql(TOKENS_2001))
    assert error["extensions"] == {"code": QUERY_TOO_COMPLEX, "limit": "tokens", "max": 2000}
    assert "token limit of 2000" in error["message"]


async def test_too_many_directives(tenant: Tenant) -> None:
    assert "errors" not in await tenant.gql(DIRECTIVES_50)
    error = limit_error(await tenant.gql(DIRECTIVES_51))
    assert error["extensions"]["limit"] == "directives"
    assert "51 directives exceed the directive limit of 50" in error["message"]


async def test_too_costly(tenant: Tenant) -> None:
    error = limit_error(await tenant.gql(COSTLY))
    assert error["extensions"]["limit"] == "cost"
    assert error["extensions"]["max"] == 50_000
    assert error["extensions"]["cost"] > 1_000_000
    assert "cost limit of 50000" in error["message"]
    # Page sizes given as variables count the same.
    variables = "query($n: Int) { collaboratives(first: $n) { nodes { teams(first: $n) { nodes {"
    variables += " collaborative { teams(first: $n) { nodes { code } } } } } } } }"
    limit_error(await tenant.gql(variables, {"n": 100}))
    assert "errors" not in await tenant.gql(variables, {"n": 2})


@pytest.mark.timeout(20)
async def test_fragment_fan_out_is_refused_before_expansion(tenant: Tenant) -> None:
    """The depth, alias and cost rules walk expanded fragments: bounded before they run (unbounded,
    this document takes hours, so the test's timeout is what fails)."""
    error = limit_error(await tenant.gql(FRAGMENT_BOMB))
    assert error["extensions"]["limit"] == "expandedFields"
    assert "expanded-fields limit of 10000" in error["message"]


async def test_limit_errors_are_400_for_graphql_response_clients(
    tenant: Tenant, http: httpx.AsyncClient
) -> None:
    response = await http.post(
        "/graphql",
        json={"query": COSTLY},
        headers={
            "Authorization": f"Bearer {await tenant.token()}",
            "Accept": "application/graphql-response+json",
        },
    )
    assert response.status_code == 400
    assert "data" not in response.json()
    limit_error(response.json())


async def test_batching_is_refused(tenant: Tenant, http: httpx.AsyncClient) -> None:
    response = await http.post(
        "/graphql",
        json=[{"query": "{ viewer { kind } }"}, {"query": "{ viewer { kind } }"}],
        headers={"Authorization": f"Bearer {await tenant.token()}"},
    )
    assert response.status_code == 400
    error = response.json()["errors"][0]
    assert "Batched requests" in error["message"]
    assert error["extensions"]["code"] == "BAD_REQUEST"


async def test_field_suggestions_hidden_outside_debug(tenant: Tenant) -> None:
    body = await tenant.gql(TYPO)
    assert "Cannot query field 'viewr'" in body["errors"][0]["message"]
    assert "Did you mean" not in json.dumps(body)
    wrong_enum = await tenant.gql("{ collaboratives(filter: {status: ACTIV}) { totalCount } }")
    assert "Did you mean" not in json.dumps(wrong_enum)


@asynccontextmanager
async def tenant_of_app(database_url: str, **settings: object) -> AsyncIterator[Tenant]:
    """A tenant of a second app on the same database, with other settings."""
    app = create_app(make_settings(database_url, **settings))
    async with LifespanManager(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://collabx.test") as http:
            yield await TenantFactory(app, http).create()


async def test_field_suggestions_shown_in_debug(database_url: str) -> None:
    async with tenant_of_app(database_url, debug=True) as tenant:
        body = await tenant.gql(TYPO)
        assert "Did you mean 'viewer'?" in body["errors"][0]["message"]


async def test_introspection_is_on_by_default(tenant: Tenant) -> None:
    body = await tenant.gql(INTROSPECTION)
    assert body["data"]["__schema"]["queryType"]["name"] == "Query"


async def test_introspection_off_and_limits_configurable(database_url: str) -> None:
    async with tenant_of_app(
        database_url, introspection=False, max_query_depth=4, max_query_cost=0
    ) as tenant:
        refused = await tenant.gql(INTROSPECTION)
        assert "introspection has been disabled" in refused["errors"][0]["message"]
        assert refused["data"] is None
        assert (await tenant.gql("{ __typename }"))["data"] == {"__typename": "Query"}
        assert "depth limit of 4" in limit_error(await tenant.gql(nested(5)))["message"]
        assert "errors" not in await tenant.gql(nested(4))
        # max_query_cost=0 switches the cost limit off (depth still applies).
        costly = await tenant.gql(COSTLY)
        assert all(e.get("extensions", {}).get("limit") != "cost" for e in costly["errors"])


def test_cost_formula() -> None:
    graphql = schema._schema

    def cost(document: str, variables: dict[str, object] | None = None) -> int:
        costs = [c for _, c in operation_costs(graphql, parse(document), variables)]
        assert len(costs) == 1
        return costs[0]

    example = "{ collaboratives(first: 50) { nodes { teams(first: 50) { nodes { code } } } } }"
    assert cost(example) == 1 + 50 * (1 + (1 + 50 * (1 + 0)))
    assert cost("{ viewer { kind } __typename }") == 1
    # No first: the default page size, 20; a first above the max page size counts as 100.
    assert cost("{ collaboratives { nodes { code } } }") == 1 + 20 * 1
    assert cost("{ collaboratives(first: 5000) { nodes { code } } }") == 1 + 100 * 1
    # Variables, their defaults, fragments and nodes(ids:).
    by_variable = "query($n: Int = 7) { collaboratives(first: $n) { nodes { code } } }"
    assert cost(by_variable) == 1 + 7
    assert cost(by_variable, {"n": 3}) == 1 + 3
    fragment = "{ collaboratives(first: 2) { ...C } } fragment C on CollaborativeConnection"
    assert cost(fragment + " { nodes { code } }") == 1 + 2 * 1
    assert cost('{ nodes(ids: ["a", "b", "c"]) { id } }') == 1 + 3 * 0
    assert cost("{ nodes(ids: []) { ... on Team { collaborative { code } } } }") == 1 + 1
    # The dashboard of the N+1 test stays allowed.
    assert cost(DASHBOARD) < QueryLimits().max_cost


def test_suggestions_are_stripped() -> None:
    message = "Cannot query field 'viewr' on type 'Query'. Did you mean 'viewer' or 'views'?"
    assert without_suggestions(message) == "Cannot query field 'viewr' on type 'Query'."


# HTTP size limits


async def test_body_over_the_limit_with_content_length(
    tenant: Tenant, http: httpx.AsyncClient
) -> None:
    body = json.dumps({"query": "{ viewer { kind } }", "variables": {"pad": "x" * (4 * MiB)}})
    response = await http.post(
        "/graphql",
        content=body,
        headers={
            "Authorization": f"Bearer {await tenant.token()}",
            "Content-Type": "application/json",
        },
    )
    assert response.status_code == 413
    error = response.json()["errors"][0]
    assert error["extensions"]["code"] == "BODY_TOO_LARGE"
    assert str(4 * MiB) in error["message"]


async def test_streamed_body_over_the_limit_without_content_length(
    tenant: Tenant, http: httpx.AsyncClient
) -> None:
    sent = 0

    async def chunks() -> AsyncIterator[bytes]:
        nonlocal sent
        yield b'{"query": "{ viewer { kind } }", "variables": {"pad": "'
        for _ in range(100):  # 100 MiB if nobody stopped it
            sent += MiB
            yield b"x" * MiB
        yield b'"}}'

    response = await http.post(
        "/graphql",
        content=chunks(),
        headers={
            "Authorization": f"Bearer {await tenant.token()}",
            "Content-Type": "application/json",
        },
    )
    assert "content-length" not in response.request.headers
    assert response.status_code == 413
    assert response.json()["errors"][0]["extensions"]["code"] == "BODY_TOO_LARGE"
    assert sent <= 6 * MiB  # it stopped reading soon after the limit


async def test_a_large_valid_request_fits(tenant: Tenant, http: httpx.AsyncClient) -> None:
    """~3.9 MiB of JSON (more than a 10,000-row batch) passes the body limit."""
    body = json.dumps(
        {"query": "{ viewer { kind } }", "variables": {"pad": "x" * (39 * MiB // 10)}}
    )
    assert 3.8 * MiB < len(body) < 4 * MiB
    response = await http.post(
        "/graphql",
        content=body,
        headers={
            "Authorization": f"Bearer {await tenant.token()}",
            "Content-Type": "application/json",
        },
    )
    assert response.status_code == 200, response.text[:300]
    assert response.json()["data"]["viewer"]["kind"] == "ADMIN"


async def test_fhir_has_its_own_larger_body_limit(http: httpx.AsyncClient) -> None:
    too_big = await http.post("/fhir", content=b"x", headers={"Content-Length": str(16 * MiB + 1)})
    assert too_big.status_code == 413
    outcome = too_big.json()
    assert outcome["resourceType"] == "OperationOutcome"
    assert outcome["issue"][0]["code"] == "too-long"
    assert str(16 * MiB) in outcome["issue"][0]["diagnostics"]
    fits = await http.post("/fhir", content=b"x" * (5 * MiB))
    assert fits.status_code != 413


async def test_header_bomb_is_431(http: httpx.AsyncClient) -> None:
    response = await http.get("/healthz", headers={f"X-Bomb-{i}": "a" * 1000 for i in range(20)})
    assert response.status_code == 431
    error = response.json()["errors"][0]
    assert error["extensions"]["code"] == "HEADERS_TOO_LARGE"
    assert "16384" in error["message"]
    assert (await http.get("/healthz")).status_code == 200


async def test_client_disconnect_mid_body_is_quiet(
    app: Starlette, tenant: Tenant, caplog: pytest.LogCaptureFixture
) -> None:
    token = await tenant.token()
    messages: list[Message] = [
        {"type": "http.request", "body": b'{"query": "mutation {', "more_body": True},
        {"type": "http.disconnect"},
    ]
    sent: list[Message] = []

    async def receive() -> Message:
        return messages.pop(0)

    async def send(message: Message) -> None:
        sent.append(message)

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": "/graphql",
        "raw_path": b"/graphql",
        "query_string": b"",
        "root_path": "",
        "headers": [
            (b"host", b"collabx.test"),
            (b"content-type", b"application/json"),
            (b"authorization", f"Bearer {token}".encode()),
        ],
        "client": ("127.0.0.1", 1234),
        "server": ("collabx.test", 80),
    }
    with caplog.at_level(logging.INFO, logger="collabx.http"):
        await app(scope, receive, send)  # no exception escapes
    assert not [m for m in sent if m["type"] == "http.response.start"]
    assert any("disconnected" in record.getMessage() for record in caplog.records)
