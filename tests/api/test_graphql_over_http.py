"""GraphQL over HTTP: the graphql-http audit against a live server, and each status-code rule.

The audit (npm package ``graphql-http``, pinned in tools/graphql-http) is installed with
``npm ci`` into the ignored ``.tools/graphql-http`` the first time and reused afterwards. It must
report no failures and no warnings. The rules are also tested one by one in process.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from api.graphql import GRAPHQL_RESPONSE_JSON, negotiate
from db.enums import ClientKind
from tests.factories import Tenant

ROOT = Path(__file__).resolve().parents[2]
TOOL_SOURCE = ROOT / "tools" / "graphql-http"
TOOL_DIR = ROOT / ".tools" / "graphql-http"
COLLABX = [sys.executable, "-m", "api"]

GRAPHQL_ACCEPT = {"Accept": GRAPHQL_RESPONSE_JSON}
JSON_ACCEPT = {"Accept": "application/json"}


def _audit_script() -> Path:
    """The audit script in the tools folder, installing the pinned packages when missing."""
    npm, node = shutil.which("npm"), shutil.which("node")
    if npm is None or node is None:
        pytest.skip("node and npm are needed for the graphql-http audit")
    TOOL_DIR.mkdir(parents=True, exist_ok=True)
    lock = (TOOL_SOURCE / "package-lock.json").read_bytes()
    installed_lock = TOOL_DIR / "package-lock.json"
    installed = (TOOL_DIR / "node_modules" / "graphql-http" / "package.json").is_file()
    if not installed or not installed_lock.is_file() or installed_lock.read_bytes() != lock:
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
    script = TOOL_DIR / "audit.mjs"
    shutil.copyfile(TOOL_SOURCE / "audit.mjs", script)
    return script


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@pytest.fixture(scope="module")
def live_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real uvicorn on a fresh demo database (production settings: no debug, no GraphiQL)."""
    folder = tmp_path_factory.mktemp("over-http")
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("COLLABX_")}
    env.update(
        COLLABX_DATABASE_URL=f"sqlite+aiosqlite:///{folder / 'collabx.db'}",
        COLLABX_PORT=str(port),
        COLLABX_ISSUER=f"http://127.0.0.1:{port}",
        COLLABX_DEMO="1",
    )
    for args in (["migrate"], ["seed", "--demo"]):
        result = subprocess.run(
            COLLABX + args, env=env, cwd=ROOT, capture_output=True, text=True, timeout=120
        )
        assert result.returncode == 0, result.stderr
    log_path = folder / "server.log"
    with log_path.open("w") as log:
        process = subprocess.Popen([*COLLABX, "serve"], env=env, cwd=ROOT, stdout=log, stderr=log)
        base = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline:
                if process.poll() is not None:
                    pytest.fail(f"server exited early:\n{log_path.read_text()}")
                try:
                    if httpx.get(f"{base}/readyz", timeout=1).status_code == 200:
                        break
                except httpx.TransportError:
                    time.sleep(0.2)
            else:
                pytest.fail("server did not become ready in 30 s")
            yield base
        finally:
            process.terminate()
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
    assert "Traceback" not in log_path.read_text(), log_path.read_text()


@pytest.mark.timeout(400)
def test_graphql_http_audit_passes_without_warnings(live_server: str) -> None:
    script = _audit_script()
    token = httpx.post(
        f"{live_server}/oauth/token",
        data={"grant_type": "client_credentials"},
        auth=("demo-dashboard", "demo-dashboard-secret"),
    ).json()["access_token"]
    result = subprocess.run(
        ["node", str(script), f"{live_server}/graphql"],
        env={**os.environ, "COLLABX_AUDIT_TOKEN": token},
        cwd=TOOL_DIR,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    report: list[dict[str, Any]] = json.loads(result.stdout)
    assert len(report) > 50, report  # the whole suite ran
    not_ok = [entry for entry in report if entry["status"] != "ok"]
    assert not not_ok, json.dumps(not_ok, indent=2)


# Each rule in process, on both backends.


async def _post(
    http: httpx.AsyncClient,
    tenant: Tenant,
    body: object | None = None,
    *,
    content: bytes | None = None,
    headers: dict[str, str] | None = None,
) -> httpx.Response:
    all_headers = {"Authorization": f"Bearer {await tenant.token()}", **(headers or {})}
    if content is None:
        content = json.dumps(body).encode()
        all_headers.setdefault("Content-Type", "application/json")
    return await http.post("/graphql", content=content, headers=all_headers)


def _error(response: httpx.Response) -> dict[str, Any]:
    """The first error of a JSON error body."""
    body = response.json()
    error: dict[str, Any] = body["errors"][0]
    return error


def test_accept_negotiation() -> None:
    assert negotiate("") == "application/json"
    assert negotiate("*/*") == "application/json"
    assert negotiate("application/json") == "application/json"
    assert negotiate(GRAPHQL_RESPONSE_JSON) == GRAPHQL_RESPONSE_JSON
    assert negotiate(f"{GRAPHQL_RESPONSE_JSON}, application/json;q=0.9") == GRAPHQL_RESPONSE_JSON
    assert negotiate(f"application/json, {GRAPHQL_RESPONSE_JSON}") == GRAPHQL_RESPONSE_JSON
    assert negotiate(f"application/json, {GRAPHQL_RESPONSE_JSON};q=0.5") == "application/json"
    assert negotiate(f"{GRAPHQL_RESPONSE_JSON};q=0, */*") == "application/json"
    assert negotiate("text/html") == "application/json"


async def test_success_is_200_in_both_media_types(tenant: Tenant, http: httpx.AsyncClient) -> None:
    for accept, media_type in (
        (JSON_ACCEPT, "application/json"),
        (GRAPHQL_ACCEPT, GRAPHQL_RESPONSE_JSON),
    ):
        response = await _post(http, tenant, {"query": "{ viewer { kind } }"}, headers=accept)
        assert response.status_code == 200
        assert response.headers["content-type"].startswith(media_type)
        assert response.json() == {"data": {"viewer": {"kind": "ADMIN"}}}


async def test_request_errors_are_400_only_for_graphql_response_clients(
    tenant: Tenant, http: httpx.AsyncClient
) -> None:
    cases: list[dict[str, object]] = [
        {"query": "{"},  # parse error
        {"query": "{ noSuchField }"},  # validation error
        {"query": "query($id: ID!) { node(id: $id) { id } }", "variables": {"id": None}},
        {"query": "query A { __typename }", "operationName": "B"},  # unknown operation
    ]
    for body in cases:
        legacy = await _post(http, tenant, body, headers=JSON_ACCEPT)
        assert legacy.status_code == 200, body
        assert legacy.json()["errors"], body
        assert legacy.json()["data"] is None, body  # as before for application/json clients
        strict = await _post(http, tenant, body, headers=GRAPHQL_ACCEPT)
        assert strict.status_code == 400, body
        assert strict.headers["content-type"].startswith(GRAPHQL_RESPONSE_JSON)
        assert "data" not in strict.json(), body
    unknown = await _post(
        http, tenant, {"query": "query A { __typename }", "operationName": "B"}, headers=JSON_ACCEPT
    )
    assert _error(unknown)["extensions"]["code"] == "UNKNOWN_OPERATION"


async def test_execution_errors_stay_200(tenant: Tenant, http: httpx.AsyncClient) -> None:
    dashboard_id, secret = await tenant.add_client(ClientKind.DASHBOARD)
    token = await tenant.token(dashboard_id, secret)
    mutation = 'mutation { createOrganization(input: {code: "x", name: "X"}) { __typename } }'
    response = await http.post(
        "/graphql",
        json={"query": mutation},
        headers={"Authorization": f"Bearer {token}", **GRAPHQL_ACCEPT},
    )
    assert response.status_code == 200
    body = response.json()
    assert "data" in body
    assert body["errors"][0]["extensions"]["code"] == "FORBIDDEN"


async def test_get_queries_work_and_get_mutations_are_405(
    tenant: Tenant, http: httpx.AsyncClient
) -> None:
    auth = {"Authorization": f"Bearer {await tenant.token()}"}
    query = await http.get("/graphql", params={"query": "{ viewer { kind } }"}, headers=auth)
    assert query.status_code == 200
    assert query.json()["data"]["viewer"]["kind"] == "ADMIN"
    for accept in (JSON_ACCEPT, GRAPHQL_ACCEPT):
        mutation = await http.get(
            "/graphql", params={"query": "mutation { __typename }"}, headers={**auth, **accept}
        )
        assert mutation.status_code == 405
        assert mutation.headers["allow"] == "POST"
        assert _error(mutation)["extensions"]["code"] == "METHOD_NOT_ALLOWED"
        assert "POST" in _error(mutation)["message"]


async def test_unsupported_content_types_are_415(tenant: Tenant, http: httpx.AsyncClient) -> None:
    body = json.dumps({"query": "{ __typename }"}).encode()
    for content_type in (
        None,
        "text/plain",
        "application/graphql",
        "application/x-www-form-urlencoded",
        "multipart/form-data; boundary=x",
        "application/json; charset=latin-1",
        "application/jsonx",
    ):
        headers = {"Content-Type": content_type} if content_type else {}
        response = await _post(http, tenant, content=body, headers=headers)
        assert response.status_code == 415, content_type
        assert _error(response)["extensions"]["code"] == "UNSUPPORTED_MEDIA_TYPE"
    charset = await _post(
        http,
        tenant,
        content=body,
        headers={"Content-Type": "application/json; charset=UTF-8"},
    )
    assert charset.status_code == 200


async def test_malformed_requests_are_400_with_a_json_body(
    tenant: Tenant, http: httpx.AsyncClient
) -> None:
    json_type = {"Content-Type": "application/json"}
    raw_bodies = [b'{ "not a JSON', b"", b"   ", b'{"query": "{ __typename }"', b"\xff\xfe{}"]
    object_bodies: list[object] = [
        42,
        "a string",
        None,
        [{"query": "{ __typename }"}],  # a batch
        {"notquery": "{ __typename }"},
        {"query": 7},
        {"query": {"obj": "ect"}},
        {"query": "{ __typename }", "variables": "string"},
        {"query": "{ __typename }", "variables": [1]},
        {"query": "{ __typename }", "operationName": 0},
        {"query": "{ __typename }", "extensions": False},
    ]
    requests: list[bytes] = [*raw_bodies, *(json.dumps(body).encode() for body in object_bodies)]
    for content in requests:
        for accept in (JSON_ACCEPT, GRAPHQL_ACCEPT):
            response = await _post(http, tenant, content=content, headers={**json_type, **accept})
            assert response.status_code == 400, content
            assert response.headers["content-type"].startswith(accept["Accept"])
            error = _error(response)
            assert error["extensions"]["code"] == "BAD_REQUEST", content
            assert error["message"], content
    # GET with variables that are not JSON
    response = await http.get(
        "/graphql",
        params={"query": "{ __typename }", "variables": "{nope"},
        headers={"Authorization": f"Bearer {await tenant.token()}"},
    )
    assert response.status_code == 400
    assert _error(response)["extensions"]["code"] == "BAD_REQUEST"


async def test_null_parameters_are_accepted(tenant: Tenant, http: httpx.AsyncClient) -> None:
    body = {"query": "{ __typename }", "variables": None, "operationName": None, "extensions": None}
    response = await _post(http, tenant, body, headers=GRAPHQL_ACCEPT)
    assert response.status_code == 200
    assert response.json() == {"data": {"__typename": "Query"}}


async def test_graphiql_is_not_served_outside_debug(http: httpx.AsyncClient) -> None:
    response = await http.get("/graphql", headers={"Accept": "text/html"})
    assert response.status_code == 401  # no IDE to open: a plain request needing a token
