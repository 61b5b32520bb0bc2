"""Faults around a real uvicorn (``collabx serve``) on PostgreSQL: SIGTERM during load, a
graceful timeout that runs out, clients that disconnect in the middle of a request.

Batches are held "in flight" by holding their teams' ingest locks (tests/faults/support.py), so
each fault strikes while the batches are inside their transactions.

* SIGTERM: the server stops accepting connections at once; the batches in flight finish (and
  answer 200) once they can; the process exits 0; every batch is whole.
* A batch still running when ``COLLABX_GRACEFUL_SHUTDOWN_SECONDS`` runs out is cancelled: its
  transaction is rolled back, nothing of it is written.
* A client that goes away after sending its batch: the batch is written whole or not at all
  (uvicorn lets the request finish; here it is written whole). A client that goes away in the
  middle of its body: nothing is written. The server serves on.

The server's log is checked too: one JSON object per line, an access line per request with the
operation name and client id, never a token.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette

from tests.factories import Tenant, TenantFactory
from tests.faults.support import (
    SUBMIT,
    counts,
    holding_team_locks,
    rows_for,
    team_id,
    wait_for_batches,
)
from tests.programs import build_program

ROOT = Path(__file__).resolve().parents[2]
COLLABX = [sys.executable, "-m", "api"]
ROWS = 300


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass
class Server:
    base: str
    port: int
    process: subprocess.Popen[bytes]
    log: Path

    def lines(self) -> list[dict[str, Any]]:
        """The log, one JSON object per line (fails on a line that is not)."""
        text = self.log.read_text()
        return [json.loads(line) for line in text.splitlines() if line.strip()]


@contextmanager
def serving(database_url: str, folder: Path, **settings: str) -> Iterator[Server]:
    """``collabx serve`` on ``database_url`` until the block ends (or the test stops it)."""
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("COLLABX_")}
    env.update(
        COLLABX_DATABASE_URL=database_url,
        COLLABX_PORT=str(port),
        COLLABX_ISSUER=f"http://127.0.0.1:{port}",
        **settings,
    )
    log = folder / f"server-{port}.log"
    with log.open("w") as output:
        process = subprocess.Popen(
            [*COLLABX, "serve"], env=env, cwd=ROOT, stdout=output, stderr=output
        )
    server = Server(f"http://127.0.0.1:{port}", port, process, log)
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if process.poll() is not None:
                pytest.fail(f"server exited early:\n{log.read_text()}")
            try:
                if httpx.get(f"{server.base}/readyz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.1)
        else:
            pytest.fail("server did not become ready in 30 s")
        yield server
    finally:
        if process.poll() is None:
            process.kill()
        process.wait(timeout=30)


async def _program(pg_app: Starlette, code: str, teams: int) -> Tenant:
    transport = httpx.ASGITransport(app=pg_app)
    async with httpx.AsyncClient(transport=transport, base_url="http://collabx.test") as http:
        tenant = await TenantFactory(pg_app, http).create()
        await build_program(tenant, code, teams=teams)
        return tenant


async def _token(server: Server, tenant: Tenant) -> str:
    async with httpx.AsyncClient(base_url=server.base) as http:
        response = await http.post(
            "/oauth/token",
            data={"grant_type": "client_credentials"},
            auth=(tenant.admin_id, tenant.admin_secret),
        )
    assert response.status_code == 200, response.text
    token: str = response.json()["access_token"]
    return token


def _submit_body(rows: list[dict[str, Any]], key: str) -> dict[str, Any]:
    return {"query": SUBMIT, "variables": {"input": {"rows": rows, "idempotencyKey": key}}}


async def _refused(server: Server, within: float = 5) -> bool:
    """Whether new connections are refused within ``within`` seconds."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        try:
            async with httpx.AsyncClient() as http:
                await http.get(f"{server.base}/healthz", timeout=0.5)
        except httpx.ConnectError:
            return True
        except httpx.TransportError:
            pass
        await asyncio.sleep(0.05)
    return False


GRACEFUL_EXIT = (0, -signal.SIGTERM)
"""uvicorn re-raises the SIGTERM it handled once it has shut down, so a clean exit may read as
killed by SIGTERM."""


async def _wait_exit(process: subprocess.Popen[bytes], within: float) -> int:
    deadline = time.monotonic() + within
    while process.poll() is None:
        assert time.monotonic() < deadline, f"the server did not exit within {within} s"
        await asyncio.sleep(0.05)
    return process.returncode


@pytest.mark.slow
@pytest.mark.timeout(90)
async def test_sigterm_lets_batches_in_flight_finish_and_refuses_new_connections(
    pg_app: Starlette, pg_database: str, tmp_path: Path
) -> None:
    tenant = await _program(pg_app, "sig", teams=4)
    teams = [f"sig-team-{number}" for number in range(4)]
    ids = [await team_id(pg_app, tenant, code) for code in teams]
    with serving(pg_database, tmp_path, COLLABX_GRACEFUL_SHUTDOWN_SECONDS="20") as server:
        token = await _token(server, tenant)
        headers = {"Authorization": f"Bearer {token}"}
        async with (
            holding_team_locks(pg_database, ids) as lock,
            httpx.AsyncClient(base_url=server.base, timeout=60) as http,
        ):
            requests = [
                asyncio.create_task(
                    http.post(
                        "/graphql",
                        json=_submit_body(rows_for(team, "sig-control", ROWS), f"sig-{team}"),
                        headers=headers,
                    )
                )
                for team in teams
            ]
            await wait_for_batches(lock, len(teams))
            server.process.send_signal(signal.SIGTERM)
            assert await _refused(server), "new connections were still accepted after SIGTERM"
            assert server.process.poll() is None  # still finishing the batches in flight
            await lock.release()
            responses = await asyncio.gather(*requests)
        assert await _wait_exit(server.process, 25) in GRACEFUL_EXIT
    for response in responses:
        assert response.status_code == 200, response.text
        receipt = response.json()["data"]["submitMeasureData"]
        assert receipt["status"] == "COMPLETED" and receipt["created"] == ROWS
    assert (await counts(pg_app, tenant))["points"] == ROWS * len(teams)
    lines = server.lines()
    access = [line for line in lines if line["logger"] == "collabx.access"]
    submits = [line for line in access if line.get("operation") == "Submit"]
    assert len(submits) == len(teams)
    for line in submits:
        assert line["status"] == 200 and line["client_id"] == tenant.admin_id
        assert line["outcome"] == "success" and line["request_id"] and line["duration_ms"] > 0
    assert any(line["message"].startswith("Finished server process") for line in lines)
    assert token not in server.log.read_text()
    assert tenant.admin_secret not in server.log.read_text()


@pytest.mark.slow
@pytest.mark.timeout(90)
async def test_a_batch_cut_by_the_graceful_timeout_is_rolled_back(
    pg_app: Starlette, pg_database: str, tmp_path: Path
) -> None:
    tenant = await _program(pg_app, "cut", teams=1)
    ids = [await team_id(pg_app, tenant, "cut-team-0")]
    with serving(pg_database, tmp_path, COLLABX_GRACEFUL_SHUTDOWN_SECONDS="1") as server:
        token = await _token(server, tenant)
        async with (
            holding_team_locks(pg_database, ids) as lock,
            httpx.AsyncClient(base_url=server.base, timeout=60) as http,
        ):
            request = asyncio.create_task(
                http.post(
                    "/graphql",
                    json=_submit_body(rows_for("cut-team-0", "cut-control", ROWS), "cut-1"),
                    headers={"Authorization": f"Bearer {token}"},
                )
            )
            await wait_for_batches(lock, 1)
            server.process.send_signal(signal.SIGTERM)
            await _wait_exit(server.process, 15)  # the lock is still held: the batch is cut
            await lock.release()
            # uvicorn either drops the connection or, when it cancels the request first, answers
            # 500; both are a cut batch, and neither may leave anything written.
            try:
                response: httpx.Response | None = await request
            except httpx.TransportError:
                response = None
            assert response is None or response.status_code >= 500, response.text
    await asyncio.sleep(0.5)  # the server's database session ends with its connection
    assert await counts(pg_app, tenant, "cut-1") == {
        "points": 0,
        "history": 0,
        "receipts": 0,
        "keys": 0,
    }


def _raw_request(
    port: int, token: str, body: bytes, *, declared: int | None = None
) -> socket.socket:
    """A connection that has sent a POST /graphql with ``body`` (and claims ``declared`` bytes)."""
    connection = socket.create_connection(("127.0.0.1", port))
    head = (
        "POST /graphql HTTP/1.1\r\n"
        f"Host: 127.0.0.1:{port}\r\n"
        f"Authorization: Bearer {token}\r\n"
        "Content-Type: application/json\r\n"
        f"Content-Length: {declared if declared is not None else len(body)}\r\n"
        "\r\n"
    )
    connection.sendall(head.encode() + body)
    return connection


@pytest.mark.slow
@pytest.mark.timeout(90)
async def test_clients_that_disconnect_leave_no_partial_batch(
    pg_app: Starlette, pg_database: str, tmp_path: Path
) -> None:
    tenant = await _program(pg_app, "gone", teams=1)
    ids = [await team_id(pg_app, tenant, "gone-team-0")]
    rows = rows_for("gone-team-0", "gone-control", ROWS)
    with serving(pg_database, tmp_path) as server:
        token = await _token(server, tenant)
        # 1. Gone after the whole request was sent, while the batch waits in its transaction.
        async with holding_team_locks(pg_database, ids) as lock:
            body = json.dumps(_submit_body(rows, "gone-1")).encode()
            connection = _raw_request(server.port, token, body)
            await wait_for_batches(lock, 1)
            connection.close()
            await asyncio.sleep(0.2)
            await lock.release()
        deadline = time.monotonic() + 10
        while (await counts(pg_app, tenant, "gone-1"))["receipts"] == 0:
            assert time.monotonic() < deadline, "the abandoned batch never finished"
            await asyncio.sleep(0.1)
        written = await counts(pg_app, tenant, "gone-1")
        assert written["points"] in (0, ROWS), written  # whole or nothing...
        assert written["points"] == ROWS  # ...and uvicorn lets a request finish
        # 2. Gone in the middle of the body: nothing runs, nothing is written.
        body = json.dumps(_submit_body(rows, "gone-2")).encode()
        connection = _raw_request(server.port, token, body[: len(body) // 2], declared=len(body))
        await asyncio.sleep(0.3)
        connection.close()
        await asyncio.sleep(0.5)
        assert await counts(pg_app, tenant, "gone-2") == {
            "points": ROWS,  # the first batch's
            "history": 1,  # the first batch's change set
            "receipts": 0,
            "keys": 1,  # the first batch's key
        }
        # The server serves on.
        async with httpx.AsyncClient(base_url=server.base) as http:
            viewer = await http.post(
                "/graphql",
                json={"query": "{ viewer { clientId } }"},
                headers={"Authorization": f"Bearer {token}"},
            )
        assert viewer.json() == {"data": {"viewer": {"clientId": tenant.admin_id}}}
        server.process.send_signal(signal.SIGTERM)
        assert await _wait_exit(server.process, 15) in GRACEFUL_EXIT
    assert "Traceback" not in server.log.read_text(), server.log.read_text()[-3000:]
