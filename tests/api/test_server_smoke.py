"""A real uvicorn process through the CLI: migrate, seed the demo, serve, get a token, query.

Also checks that ``collabx serve`` refuses to start outside demo mode while demo clients exist.
"""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest

from tests.conftest import empty_database

ROOT = Path(__file__).resolve().parents[2]
COLLABX = [sys.executable, "-m", "api"]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _env(database_url: str, port: int, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("COLLABX_")}
    env.update(
        COLLABX_DATABASE_URL=database_url,
        COLLABX_PORT=str(port),
        COLLABX_ISSUER=f"http://127.0.0.1:{port}",
    )
    env.update(extra)
    return env


def _run(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        COLLABX + args, env=env, cwd=ROOT, capture_output=True, text=True, timeout=120, check=False
    )


@pytest.fixture(scope="module")
async def seeded_database(
    backend: str, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[str]:
    """A database of its own, migrated and seeded through the CLI, on each backend."""
    async with empty_database(backend, tmp_path_factory.mktemp("smoke")) as url:
        env = _env(url, 8000)
        for args in (["migrate"], ["seed", "--demo"]):
            result = await asyncio.to_thread(_run, args, env)
            assert result.returncode == 0, result.stderr
        yield url


@pytest.fixture(scope="module")
def server(seeded_database: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    port = _free_port()
    env = _env(seeded_database, port, COLLABX_DEMO="1", COLLABX_DEBUG="1")
    log_path = tmp_path_factory.mktemp("server") / "uvicorn.log"
    log = log_path.open("w")
    # Output goes to a file: a pipe nobody reads would fill up and stall the server.
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
        log.close()
    assert "demo-dashboard-secret" in log_path.read_text(), "demo credentials were not printed"


@pytest.mark.timeout(120)
def test_demo_server_answers_with_demo_data(server: str) -> None:
    token_response = httpx.post(
        f"{server}/oauth/token",
        data={"grant_type": "client_credentials"},
        auth=("demo-dashboard", "demo-dashboard-secret"),
    )
    assert token_response.status_code == 200, token_response.text
    token = token_response.json()["access_token"]
    response = httpx.post(
        f"{server}/graphql",
        json={
            "query": "{ viewer { kind } collaboratives(first: 10) { totalCount nodes { code } } }"
        },
        headers={"Authorization": f"Bearer {token}"},
    )
    body = response.json()
    assert "errors" not in body, body
    assert body["data"]["viewer"]["kind"] == "DASHBOARD"
    assert body["data"]["collaboratives"]["totalCount"] >= 2
    graphiql = httpx.get(f"{server}/graphql", headers={"Accept": "text/html"})
    assert graphiql.status_code == 200
    assert "graphiql" in graphiql.text.lower()
    assert httpx.post(f"{server}/graphql", json={"query": "{ viewer { kind } }"}).status_code == 401


@pytest.mark.timeout(120)
def test_serve_refuses_demo_clients_outside_demo_mode(seeded_database: str) -> None:
    result = _run(["serve"], _env(seeded_database, _free_port()))
    assert result.returncode != 0
    assert "demo-admin" in result.stderr
    assert "COLLABX_DEMO" in result.stderr
