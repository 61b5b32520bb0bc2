"""Fan-out across processes: two real uvicorn processes (through the CLI) on one PostgreSQL
database behind an imaginary load balancer. A dashboard subscribes over a real WebSocket on one,
a partner submits over HTTP on the other, and the event arrives — through LISTEN/NOTIFY."""

from __future__ import annotations

import asyncio
import json
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
from websockets.asyncio.client import ClientConnection, connect

from tests.conftest import empty_database

ROOT = Path(__file__).resolve().parents[2]
COLLABX = [sys.executable, "-m", "api"]
ISSUER = "http://collabx.cluster.test"
"""Both processes sign and accept tokens as one service (a load balancer's public name)."""

pytestmark = pytest.mark.timeout(180)

DEMO_SETUP = """
{ collaboratives(first: 1) { nodes {
    id code
    teams(first: 1) { nodes { code } }
    measures(first: 20) { nodes { measure { code scoring } } }
} } }
"""
SUBMIT = """
mutation Submit($input: SubmitMeasureDataInput!) {
  submitMeasureData(input: $input) {
    __typename ... on MeasureDataReceipt { receiptId status created updated }
  }
}
"""
SUBMITTED = """
subscription Submitted($collaborative: ID!) {
  measureDataSubmitted(collaborative: $collaborative) {
    receiptId status changes { team measure period change }
  }
}
"""


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _env(database_url: str, port: int) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("COLLABX_")}
    env.update(
        COLLABX_DATABASE_URL=database_url,
        COLLABX_PORT=str(port),
        COLLABX_ISSUER=ISSUER,
        COLLABX_DEMO="1",
        COLLABX_WEBHOOK_ALLOW_PRIVATE="1",  # the test's receiver listens on 127.0.0.1
        COLLABX_WEBHOOK_POLL_SECONDS="0.5",
    )
    return env


@pytest.fixture(scope="module")
async def cluster_database(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[str]:
    """A PostgreSQL database of its own, migrated and seeded with the demo through the CLI."""
    async with empty_database("postgresql", tmp_path_factory.mktemp("cluster")) as url:
        for args in (["migrate"], ["seed", "--demo"]):
            result = await asyncio.to_thread(
                subprocess.run,
                COLLABX + args,
                env=_env(url, 8000),
                cwd=ROOT,
                capture_output=True,
                text=True,
                timeout=120,
                check=False,
            )
            assert result.returncode == 0, result.stderr
        yield url


def _start(database_url: str, log_path: Path) -> tuple[subprocess.Popen[bytes], str]:
    port = _free_port()
    log = log_path.open("w")
    # Output goes to a file: a pipe nobody reads would fill up and stall the server.
    process = subprocess.Popen(
        [*COLLABX, "serve"], env=_env(database_url, port), cwd=ROOT, stdout=log, stderr=log
    )
    log.close()
    return process, f"http://127.0.0.1:{port}"


def _wait_ready(process: subprocess.Popen[bytes], base: str, log_path: Path) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"server exited early:\n{log_path.read_text()}")
        try:
            if httpx.get(f"{base}/readyz", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    pytest.fail(f"server did not become ready in 30 s:\n{log_path.read_text()}")


@pytest.fixture(scope="module")
def servers(
    cluster_database: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[str, str]]:
    """Two API processes on the same database."""
    folder = tmp_path_factory.mktemp("servers")
    started = [_start(cluster_database, folder / f"uvicorn-{n}.log") for n in range(2)]
    try:
        for number, (process, base) in enumerate(started):
            _wait_ready(process, base, folder / f"uvicorn-{number}.log")
        yield started[0][1], started[1][1]
    finally:
        for process, _ in started:
            process.terminate()
        for process, _ in started:
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


async def _token(http: httpx.AsyncClient, base: str) -> str:
    response = await http.post(
        f"{base}/oauth/token",
        data={"grant_type": "client_credentials"},
        auth=("demo-admin", "demo-admin-secret"),
    )
    assert response.status_code == 200, response.text
    token: str = response.json()["access_token"]
    return token


async def _gql(
    http: httpx.AsyncClient, base: str, token: str, query: str, variables: dict[str, Any]
) -> dict[str, Any]:
    response = await http.post(
        f"{base}/graphql",
        json={"query": query, "variables": variables},
        headers={"Authorization": f"Bearer {token}"},
    )
    body: dict[str, Any] = response.json()
    assert response.status_code == 200 and "errors" not in body, body
    data: dict[str, Any] = body["data"]
    return data


async def _receive(socket_: ClientConnection, seconds: float) -> dict[str, Any]:
    message: dict[str, Any] = json.loads(await asyncio.wait_for(socket_.recv(), seconds))
    return message


async def test_a_submission_on_one_process_reaches_a_subscriber_on_the_other(
    servers: tuple[str, str],
) -> None:
    subscriber_base, writer_base = servers
    async with httpx.AsyncClient(timeout=30) as http:
        # A token from either process works on both: one issuer, keys in the shared database.
        token = await _token(http, writer_base)
        setup = await _gql(http, subscriber_base, token, DEMO_SETUP, {})
        collaborative = setup["collaboratives"]["nodes"][0]
        team = collaborative["teams"]["nodes"][0]["code"]
        measure = next(
            node["measure"]["code"]
            for node in collaborative["measures"]["nodes"]
            if node["measure"]["scoring"] == "PROPORTION"
        )
        ws_url = subscriber_base.replace("http://", "ws://") + "/graphql"
        async with connect(ws_url, subprotocols=["graphql-transport-ws"]) as ws:  # type: ignore[list-item]
            assert ws.subprotocol == "graphql-transport-ws"
            await ws.send(json.dumps({"type": "connection_init", "payload": {"token": token}}))
            assert await _receive(ws, 10) == {"type": "connection_ack"}
            await ws.send(
                json.dumps(
                    {
                        "id": "live",
                        "type": "subscribe",
                        "payload": {
                            "query": SUBMITTED,
                            "variables": {"collaborative": collaborative["id"]},
                        },
                    }
                )
            )
            period = datetime.now(UTC).strftime("%Y-%m")
            # The subscribe is processed asynchronously: data committed before it is registered
            # is (rightly) not announced, so submit again until the event is heard.
            for numerator in range(1, 20):
                row = {
                    "team": team,
                    "measure": measure,
                    "period": period,
                    "numerator": numerator,
                    "denominator": 50,
                }
                submitted = await _gql(http, writer_base, token, SUBMIT, {"input": {"rows": [row]}})
                receipt = submitted["submitMeasureData"]
                assert receipt["__typename"] == "MeasureDataReceipt", receipt
                try:
                    message = await _receive(ws, 3)
                except TimeoutError:
                    continue
                break
            else:
                pytest.fail("no event reached the other process")
            assert message["type"] == "next" and message["id"] == "live", message
            event = message["payload"]["data"]["measureDataSubmitted"]
            assert event["receiptId"] == receipt["receiptId"]
            assert event["status"] == "COMPLETED"
            assert [(c["team"], c["measure"], c["period"]) for c in event["changes"]] == [
                (team, measure, period)
            ]
            # Both processes deliver: a subscriber of the writer hears the next call too.
            writer_ws_url = writer_base.replace("http://", "ws://") + "/graphql"
            async with connect(writer_ws_url, subprotocols=["graphql-transport-ws"]) as other:  # type: ignore[list-item]
                await other.send(
                    json.dumps({"type": "connection_init", "payload": {"token": token}})
                )
                assert await _receive(other, 10) == {"type": "connection_ack"}
                await other.send(
                    json.dumps(
                        {
                            "id": "same",
                            "type": "subscribe",
                            "payload": {
                                "query": SUBMITTED,
                                "variables": {"collaborative": collaborative["id"]},
                            },
                        }
                    )
                )
                for numerator in range(30, 49):
                    row = {
                        "team": team,
                        "measure": measure,
                        "period": period,
                        "numerator": numerator,
                        "denominator": 50,
                    }
                    data = await _gql(http, writer_base, token, SUBMIT, {"input": {"rows": [row]}})
                    receipt_id = data["submitMeasureData"]["receiptId"]
                    heard = await _receive(ws, 10)  # the first subscriber hears every call
                    assert heard["payload"]["data"]["measureDataSubmitted"]["receiptId"] == (
                        receipt_id
                    )
                    try:
                        same = await _receive(other, 3)
                    except TimeoutError:
                        continue
                    break
                else:
                    pytest.fail("the writer's own subscriber heard nothing")
                assert same["payload"]["data"]["measureDataSubmitted"]["receiptId"] == receipt_id


CREATE_WEBHOOK = """
mutation Create($input: CreateWebhookInput!) {
  createWebhook(input: $input) {
    __typename ... on CreateWebhookSuccess { webhook { id } }
  }
}
"""
DELIVERIES = """
query Deliveries($webhook: ID!) {
  webhookDeliveries(webhook: $webhook) { totalCount nodes { eventId status attempts } }
}
"""


@pytest.fixture
def receiver() -> Iterator[tuple[str, list[bytes]]]:
    """A local endpoint recording the bodies POSTed to it."""
    bodies: list[bytes] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            bodies.append(self.rfile.read(int(self.headers.get("Content-Length", "0"))))
            self.send_response(204)
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/hook", bodies
    finally:
        server.shutdown()
        server.server_close()


async def test_both_processes_record_a_webhook_event_and_it_is_sent_once(
    servers: tuple[str, str], receiver: tuple[str, list[bytes]]
) -> None:
    first, second = servers
    url, bodies = receiver
    async with httpx.AsyncClient(timeout=30) as http:
        token = await _token(http, first)
        setup = await _gql(http, first, token, DEMO_SETUP, {})
        collaborative = setup["collaboratives"]["nodes"][0]
        team = collaborative["teams"]["nodes"][0]["code"]
        measure = next(
            node["measure"]["code"]
            for node in collaborative["measures"]["nodes"]
            if node["measure"]["scoring"] == "PROPORTION"
        )
        created = await _gql(
            http,
            first,
            token,
            CREATE_WEBHOOK,
            {
                "input": {
                    "url": url,
                    "events": ["MEASURE_DATA_SUBMITTED"],
                    "collaboratives": [collaborative["code"]],
                }
            },
        )
        webhook = created["createWebhook"]["webhook"]["id"]
        row = {
            "team": team,
            "measure": measure,
            "period": datetime.now(UTC).strftime("%Y-%m"),
            "numerator": 7,
            "denominator": 49,
        }
        data = await _gql(http, second, token, SUBMIT, {"input": {"rows": [row]}})
        receipt_id = data["submitMeasureData"]["receiptId"]
        for _ in range(400):  # up to 20 s
            if bodies:
                break
            await asyncio.sleep(0.05)
        await asyncio.sleep(1.5)  # both processes had time to send it, if they were to
        assert len(bodies) == 1, bodies
        assert json.loads(bodies[0])["data"]["receiptId"] == receipt_id
        deliveries = await _gql(http, second, token, DELIVERIES, {"webhook": webhook})
        listed = deliveries["webhookDeliveries"]
        assert listed["totalCount"] == 1
        assert listed["nodes"][0]["status"] == "SUCCEEDED"
        assert listed["nodes"][0]["attempts"] == 1
