"""Regressions found in review: each of these once let a request through or answered 500."""

from __future__ import annotations

import base64
import json
import threading
from collections.abc import AsyncIterator, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
from asgi_lifespan import LifespanManager
from starlette.applications import Starlette

from api.app import create_app
from api.state import AppState
from db import migrations
from db.enums import ClientKind
from db.queries.auth import create_client
from tests.conftest import make_settings
from tests.factories import Tenant
from tests.programs import build_program


async def _app_client(app: Starlette) -> AsyncIterator[httpx.AsyncClient]:
    async with LifespanManager(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            yield client


async def test_unauthenticated_websockets_are_closed_with_4401(app: Starlette) -> None:
    sent: list[dict[str, Any]] = []
    incoming: list[dict[str, Any]] = [
        {"type": "websocket.connect"},
        {"type": "websocket.receive", "text": json.dumps({"type": "connection_init"})},
        {"type": "websocket.disconnect", "code": 1000},
    ]

    async def receive() -> dict[str, Any]:
        return incoming.pop(0)

    async def send(message: Any) -> None:
        sent.append(message)

    scope = {
        "type": "websocket",
        "path": "/graphql",
        "raw_path": b"/graphql",
        "query_string": b"",
        "headers": [(b"sec-websocket-protocol", b"graphql-transport-ws")],
        "subprotocols": ["graphql-transport-ws"],
        "scheme": "ws",
        "server": ("t", 80),
        "client": ("127.0.0.1", 1),
        "root_path": "",
    }
    await app(scope, receive, send)
    assert sent[0]["type"] == "websocket.accept"
    assert sent[-1]["type"] == "websocket.close" and sent[-1]["code"] == 4401
    assert all(message["type"] != "websocket.send" for message in sent)  # no GraphQL ran


async def test_demo_clients_only_work_in_demo_mode(
    database_url: str, http: httpx.AsyncClient, tenant: Tenant
) -> None:
    state: AppState = http._transport.app.state.collabx  # type: ignore[attr-defined]
    async with state.sessionmaker.begin() as session:
        await create_client(
            session,
            sponsor_slug=tenant.slug,
            kind=ClientKind.PARTNER,
            scopes=("catalog:read",),
            client_id="demo-partner",
            secret="demo-partner-secret",
        )
    grant = {"grant_type": "client_credentials"}
    credentials = ("demo-partner", "demo-partner-secret")
    refused = await http.post("/oauth/token", data=grant, auth=credentials)
    assert refused.status_code == 401
    assert "demo mode" in refused.json()["error_description"]
    async for demo_http in _app_client(create_app(make_settings(database_url, demo=True))):
        issued = await demo_http.post("/oauth/token", data=grant, auth=credentials)
        assert issued.status_code == 200
        token = issued.json()["access_token"]
        viewer = {"query": "{ viewer { clientId } }"}
        headers = {"Authorization": f"Bearer {token}"}
        assert (await demo_http.post("/graphql", json=viewer, headers=headers)).status_code == 200
    # The same token is refused by a server that is not in demo mode.
    assert (await http.post("/graphql", json=viewer, headers=headers)).status_code == 401


async def test_graphiql_page_exception_cannot_carry_an_encoded_query(database_url: str) -> None:
    async for client in _app_client(create_app(make_settings(database_url, debug=True))):
        html = {"Accept": "text/html"}
        page = await client.get("/graphql", headers=html)
        assert page.status_code == 200
        sneaky = await client.get("/graphql?%71uery={__typename}", headers=html)
        assert sneaky.status_code == 401


def _retyped_cursor(cursor: str, value: Any) -> str:
    data = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    data["v"] = value
    return base64.urlsafe_b64encode(json.dumps(data).encode()).decode().rstrip("=")


LISTS = {
    "collaboratives": "query($a: String) { collaboratives(first: 1, after: $a) { %s } }",
    "organizations": "query($a: String) { organizations(first: 1, after: $a) { %s } }",
    "teams": "query($a: String) { teams(first: 1, after: $a) { %s } }",
    "measures": "query($a: String) { measures(first: 1, after: $a) { %s } }",
    "resources": "query($a: String) { resources(first: 1, after: $a) { %s } }",
}


@pytest.mark.parametrize("name", sorted(LISTS))
async def test_tampered_cursors_are_validation_errors(tenant: Tenant, name: str) -> None:
    await build_program(tenant, teams=2)
    document = LISTS[name] % "pageInfo { endCursor } edges { node { id } }"
    first = await tenant.gql(document)
    cursor = first["data"][name]["pageInfo"]["endCursor"]
    assert cursor is not None
    for value in (12345, True, "a\x00b", 1.5, [1]):
        body = await tenant.gql(document, {"a": _retyped_cursor(cursor, value)})
        assert body["errors"][0]["extensions"]["code"] == "VALIDATION", (value, body)


async def test_nested_team_cursor_tampering_is_a_validation_error(tenant: Tenant) -> None:
    await build_program(tenant, teams=2)
    document = """query($a: String) { collaboratives { nodes {
        teams(first: 1, after: $a) { pageInfo { endCursor } } } } }"""
    cursor = (await tenant.gql(document))["data"]["collaboratives"]["nodes"][0]["teams"][
        "pageInfo"
    ]["endCursor"]
    body = await tenant.gql(document, {"a": _retyped_cursor(cursor, "x\x00")})
    assert body["errors"][0]["extensions"]["code"] == "VALIDATION"


@pytest.mark.parametrize(
    "document",
    [
        '{ collaborative(code: "a\\u0000b") { code } }',
        '{ measure(code: "a\\u0000b") { code } }',
        '{ team(code: "a\\u0000b") { code } }',
        '{ collaboratives(filter: {search: "a\\u0000"}) { totalCount } }',
        '{ measures(filter: {search: "a\\u0000"}) { totalCount } }',
        '{ resources(filter: {search: "a\\u0000"}) { totalCount } }',
    ],
)
async def test_nul_bytes_in_lookups_and_filters_are_validation_errors(
    tenant: Tenant, document: str
) -> None:
    body = await tenant.gql(document)
    assert body["errors"][0]["extensions"]["code"] == "VALIDATION", body
    via_variables = await tenant.gql(
        "query($c: String!) { collaborative(code: $c) { code } }", {"c": "x\x00"}
    )
    assert via_variables["errors"][0]["extensions"]["code"] == "VALIDATION"


async def test_nul_in_a_mutation_lookup_is_a_typed_error(tenant: Tenant) -> None:
    body = await tenant.gql(
        """mutation { updateCollaborative(input: {code: "a\\u0000", name: "x"}) {
            __typename ... on Error { code } } }"""
    )
    assert body["data"]["updateCollaborative"]["code"] == "VALIDATION"


async def test_nul_in_basic_credentials_is_invalid_client(http: httpx.AsyncClient) -> None:
    response = await http.post(
        "/oauth/token", data={"grant_type": "client_credentials"}, auth=("a\x00b", "x")
    )
    assert response.status_code == 401
    assert response.json()["error"] == "invalid_client"


class _HtmlHandler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        body = b"<html>maintenance</html>"
        self.send_response(200)
        self.send_header("Content-Type", "text/html")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        return


@pytest.fixture(scope="module")
def html_jwks_url() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _HtmlHandler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/jwks.json"
    finally:
        server.shutdown()
        server.server_close()


async def test_unusable_external_jwks_is_a_401(database_url: str, html_jwks_url: str) -> None:
    from tests.api.test_external_idp import IDP_ISSUER, idp_token

    settings = make_settings(
        database_url, external_issuer=IDP_ISSUER, external_jwks_url=html_jwks_url
    )
    async for client in _app_client(create_app(settings)):
        response = await client.post(
            "/graphql",
            json={"query": "{ viewer { kind } }"},
            headers={"Authorization": f"Bearer {idp_token(sponsor='x')}"},
        )
        assert response.status_code == 401


def test_migrations_are_found_from_the_working_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A non-editable install (the Docker image) has no alembic/ next to the db package.
    source_root = migrations.SOURCE_ROOT
    monkeypatch.setattr(migrations, "SOURCE_ROOT", tmp_path)
    monkeypatch.chdir(tmp_path)
    with pytest.raises(FileNotFoundError):
        migrations.project_root()
    monkeypatch.chdir(source_root)
    assert migrations.project_root() == source_root
