"""The hot-path levers of the GraphQL view (issue 7): the document cache keeps every check,
automatic persisted queries (Apollo's protocol), orjson responses."""

from __future__ import annotations

import hashlib
import json
from typing import Any

import httpx

from api.graphql import (
    GRAPHQL_RESPONSE_JSON,
    PERSISTED_QUERY_HASH_MISMATCH,
    PERSISTED_QUERY_NOT_FOUND,
)
from api.json_encoding import encode_json
from tests.factories import Tenant

NESTED = (
    "query Nested($n: Int) { collaboratives(first: $n) { nodes { teams(first: $n) { nodes {"
    " collaborative { teams(first: $n) { nodes { code } } } } } } } }"
)
VIEWER = "query Who { viewer { kind } }"


def codes(body: dict[str, Any]) -> list[str | None]:
    return [error.get("extensions", {}).get("code") for error in body.get("errors", [])]


def sha256(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


async def post(
    tenant: Tenant, body: dict[str, Any], accept: str = "application/json"
) -> httpx.Response:
    return await tenant.factory.http.post(
        "/graphql",
        json=body,
        headers={"Authorization": f"Bearer {await tenant.token()}", "Accept": accept},
    )


async def test_a_cached_document_is_still_checked_against_each_requests_variables(
    tenant: Tenant,
) -> None:
    for _ in range(2):
        assert "errors" not in await tenant.gql(NESTED, {"n": 2})
    refused = await tenant.gql(NESTED, {"n": 100})  # valid text, too costly with these variables
    assert refused["data"] is None and codes(refused) == ["QUERY_TOO_COMPLEX"], refused
    assert refused["errors"][0]["extensions"]["limit"] == "cost"
    assert "errors" not in await tenant.gql(NESTED, {"n": 2})


async def test_invalid_documents_stay_invalid(tenant: Tenant) -> None:
    for _ in range(3):
        body = await tenant.gql("{ viewr { kind } }")
        assert body["data"] is None and body["errors"], body
        assert "viewr" in body["errors"][0]["message"], body
    for _ in range(2):
        body = await tenant.gql("{ viewer { kind ")
        assert body["data"] is None and body["errors"], body


async def test_automatic_persisted_queries(tenant: Tenant) -> None:
    digest = sha256(VIEWER)
    persisted = {"persistedQuery": {"version": 1, "sha256Hash": digest}}

    unknown = await post(tenant, {"extensions": persisted})
    assert unknown.status_code == 200
    assert codes(unknown.json()) == [PERSISTED_QUERY_NOT_FOUND]
    assert unknown.json()["errors"][0]["message"] == "PersistedQueryNotFound"
    strict = await post(tenant, {"extensions": persisted}, accept=GRAPHQL_RESPONSE_JSON)
    assert strict.status_code == 400 and codes(strict.json()) == [PERSISTED_QUERY_NOT_FOUND]

    registered = await post(tenant, {"query": VIEWER, "extensions": persisted})
    assert registered.status_code == 200
    assert registered.json() == {"data": {"viewer": {"kind": "ADMIN"}}}
    again = await post(tenant, {"extensions": persisted, "operationName": "Who"})
    assert again.status_code == 200 and again.json() == registered.json()
    # GET carries the extensions as a JSON query parameter.
    fetched = await tenant.factory.http.get(
        "/graphql",
        params={"extensions": json.dumps(persisted)},
        headers={"Authorization": f"Bearer {await tenant.token()}"},
    )
    assert fetched.status_code == 200 and fetched.json() == registered.json()

    wrong = await post(
        tenant,
        {"query": "{ viewer { kind } }", "extensions": persisted},
    )
    assert wrong.status_code == 400 and codes(wrong.json()) == [PERSISTED_QUERY_HASH_MISMATCH]
    for bad in (
        {"version": 2, "sha256Hash": digest},
        {"version": 1, "sha256Hash": "not-a-hash"},
        {"version": 1},
        "a string",
    ):
        response = await post(tenant, {"extensions": {"persistedQuery": bad}})
        assert response.status_code == 400, (bad, response.text)
        assert codes(response.json()) == ["BAD_REQUEST"], response.text


async def test_persisted_queries_need_authentication(http: httpx.AsyncClient) -> None:
    persisted = {"persistedQuery": {"version": 1, "sha256Hash": sha256(VIEWER)}}
    response = await http.post("/graphql", json={"query": VIEWER, "extensions": persisted})
    assert response.status_code == 401


def test_responses_are_compact_json_even_beyond_64_bit_integers() -> None:
    assert encode_json({"data": {"a": [1, 2.5, None, "é"]}}) == (
        '{"data":{"a":[1,2.5,null,"é"]}}'.encode()
    )
    huge = {"data": {"n": 2**70}}
    assert json.loads(encode_json(huge)) == huge
    lone = {"data": {"s": "\ud800"}}
    assert json.loads(encode_json(lone)) == lone
