"""Webhooks with a real local HTTP receiver, on both backends: administration, scopes and
tenancy, URL checks (SSRF), signed deliveries, retries with backoff, signals, revocation."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import threading
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from asgi_lifespan import LifespanManager
from starlette.applications import Starlette

from api.app import create_app
from api.state import AppState
from db.enums import ClientKind
from db.queries.auth import revoke_client
from schema.webhooks.urls import url_address_problem, url_shape_problem
from tests.conftest import make_settings
from tests.factories import Tenant, TenantFactory
from tests.programs import Program, build_program

CREATE = """
mutation Create($input: CreateWebhookInput!) {
  createWebhook(input: $input) {
    __typename
    ... on CreateWebhookSuccess {
      secret
      webhook { id url events description createdBy createdAt collaboratives { code } }
    }
    ... on Error { code message }
    ... on ValidationError { field }
    ... on NotFoundError { field }
  }
}
"""
DELETE = """
mutation Delete($id: ID!) {
  deleteWebhook(input: {id: $id}) {
    __typename
    ... on DeleteWebhookSuccess { deletedId }
    ... on Error { code }
  }
}
"""
WEBHOOKS = """
query Webhooks { webhooks(first: 10) { totalCount nodes { id url events } } }
"""
DELIVERIES = """
query Deliveries($webhook: ID!) {
  webhookDeliveries(webhook: $webhook, first: 20) {
    totalCount
    nodes {
      id eventId event status attempts lastStatusCode lastError lastAttemptAt nextAttemptAt
      createdAt deliveredAt payload
    }
  }
}
"""
NODE = "query Node($id: ID!) { node(id: $id) { __typename id } }"
SUBMIT = """
mutation Submit($input: SubmitMeasureDataInput!) {
  submitMeasureData(input: $input) {
    __typename ... on MeasureDataReceipt { receiptId status created updated }
  }
}
"""


@dataclass
class Received:
    """One POST the receiver got."""

    path: str
    headers: dict[str, str]
    body: bytes

    def json(self) -> dict[str, Any]:
        document: dict[str, Any] = json.loads(self.body)
        return document


@dataclass
class Receiver:
    """A local HTTP endpoint: records every POST and answers the statuses planned per path."""

    base: str = ""
    received: list[Received] = field(default_factory=list)
    plans: dict[str, list[int]] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def status_for(self, path: str) -> int:
        with self.lock:
            plan = self.plans.get(path, [200])
            return plan.pop(0) if len(plan) > 1 else plan[0]

    def at(self, path: str) -> list[Received]:
        with self.lock:
            return [request for request in self.received if request.path == path]

    async def wait(self, path: str, count: int, seconds: float = 10.0) -> list[Received]:
        deadline = time.monotonic() + seconds
        while len(self.at(path)) < count:
            if time.monotonic() > deadline:
                raise AssertionError(f"{path}: {len(self.at(path))} of {count} requests arrived")
            await asyncio.sleep(0.02)
        return self.at(path)


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    state = Receiver()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length", "0"))
            body = self.rfile.read(length)
            with state.lock:
                state.received.append(
                    Received(self.path, {k.lower(): v for k, v in self.headers.items()}, body)
                )
            self.send_response(state.status_for(self.path))
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    state.base = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()


def _row(program: Program, period: str, numerator: int, denominator: int = 1000) -> Any:
    return {
        "team": program.team_codes[0],
        "measure": f"{program.code}-control",
        "period": period,
        "numerator": numerator,
        "denominator": denominator,
    }


async def _submit(tenant: Tenant, rows: list[dict[str, Any]]) -> dict[str, Any]:
    body = await tenant.gql(SUBMIT, {"input": {"rows": rows}})
    assert "errors" not in body, body
    receipt: dict[str, Any] = body["data"]["submitMeasureData"]
    assert receipt["__typename"] == "MeasureDataReceipt", receipt
    return receipt


async def _create(
    tenant: Tenant, url: str, collaboratives: list[str], events: list[str], **extra: Any
) -> dict[str, Any]:
    body = await tenant.gql(
        CREATE,
        {"input": {"url": url, "collaboratives": collaboratives, "events": events}},
        **extra,
    )
    assert "errors" not in body, body
    result: dict[str, Any] = body["data"]["createWebhook"]
    return result


async def _deliveries(tenant: Tenant, webhook: str) -> list[dict[str, Any]]:
    body = await tenant.gql(DELIVERIES, {"webhook": webhook})
    assert "errors" not in body, body
    nodes: list[dict[str, Any]] = body["data"]["webhookDeliveries"]["nodes"]
    return nodes


async def _settled(tenant: Tenant, webhook: str, count: int = 1) -> list[dict[str, Any]]:
    """The webhook's deliveries once ``count`` of them are no longer PENDING."""
    deadline = time.monotonic() + 10
    while True:
        nodes = await _deliveries(tenant, webhook)
        if sum(node["status"] != "PENDING" for node in nodes) >= count:
            return nodes
        if time.monotonic() > deadline:
            raise AssertionError(f"deliveries did not settle: {nodes}")
        await asyncio.sleep(0.05)


def _verify(request: Received, secret: str) -> None:
    timestamp = request.headers["x-collabx-timestamp"]
    assert abs(int(timestamp) - time.time()) < 60
    expected = hmac.new(secret.encode(), f"{timestamp}.".encode() + request.body, hashlib.sha256)
    assert request.headers["x-collabx-signature"] == f"sha256={expected.hexdigest()}"
    assert request.headers["content-type"] == "application/json"
    assert request.headers["user-agent"].startswith("CollabX-Webhooks/")


# --- administration --------------------------------------------------------------------------


async def test_create_list_delete_with_scopes_and_tenancy(
    tenant: Tenant, tenants: TenantFactory, receiver: Receiver
) -> None:
    await build_program(tenant, "admin-a")
    await build_program(tenant, "admin-b")
    created = await _create(
        tenant,
        f"{receiver.base}/hook",
        ["admin-b", "admin-a", "admin-a"],
        ["MEASURE_DATA_SUBMITTED", "SIGNAL_DETECTED"],
    )
    assert created["__typename"] == "CreateWebhookSuccess"
    assert created["secret"].startswith("whsec_") and len(created["secret"]) > 40
    webhook = created["webhook"]
    assert webhook["url"] == f"{receiver.base}/hook"
    assert webhook["events"] == ["MEASURE_DATA_SUBMITTED", "SIGNAL_DETECTED"]
    assert webhook["createdBy"] == tenant.admin_id
    assert [c["code"] for c in webhook["collaboratives"]] == ["admin-a", "admin-b"]
    listed = (await tenant.gql(WEBHOOKS))["data"]["webhooks"]
    assert listed["totalCount"] == 1 and listed["nodes"][0]["id"] == webhook["id"]
    assert "secret" not in json.dumps(listed)
    node = (await tenant.gql(NODE, {"id": webhook["id"]}))["data"]["node"]
    assert node == {"__typename": "Webhook", "id": webhook["id"]}
    # Another sponsor sees nothing of it and cannot delete it.
    stranger = await tenants.create()
    assert (await stranger.gql(WEBHOOKS))["data"]["webhooks"]["totalCount"] == 0
    assert (await stranger.gql(NODE, {"id": webhook["id"]}))["data"]["node"] is None
    assert (await stranger.gql(DELIVERIES, {"webhook": webhook["id"]}))["data"][
        "webhookDeliveries"
    ]["totalCount"] == 0
    refused = (await stranger.gql(DELETE, {"id": webhook["id"]}))["data"]["deleteWebhook"]
    assert refused == {"__typename": "NotFoundError", "code": "NOT_FOUND"}
    # A dashboard (no admin scope) may neither list nor create webhooks.
    client_id, secret = await tenant.add_client(ClientKind.DASHBOARD)
    token = await tenant.token(client_id, secret)
    for document, variables in (
        (WEBHOOKS, {}),
        (CREATE, {"input": {"url": receiver.base, "collaboratives": ["admin-a"], "events": []}}),
        (DELETE, {"id": webhook["id"]}),
        (DELIVERIES, {"webhook": webhook["id"]}),
    ):
        body = await tenant.gql(document, variables, token=token)
        assert body["errors"][0]["extensions"]["code"] == "FORBIDDEN", body
    deleted = (await tenant.gql(DELETE, {"id": webhook["id"]}))["data"]["deleteWebhook"]
    assert deleted == {"__typename": "DeleteWebhookSuccess", "deletedId": webhook["id"]}
    assert (await tenant.gql(WEBHOOKS))["data"]["webhooks"]["totalCount"] == 0
    again = (await tenant.gql(DELETE, {"id": webhook["id"]}))["data"]["deleteWebhook"]
    assert again["__typename"] == "NotFoundError"


@pytest.mark.parametrize(
    ("url", "collaboratives", "events", "code", "field"),
    [
        ("ftp://example.org/hook", ["v"], ["SIGNAL_DETECTED"], "VALIDATION", "url"),
        ("https:///nohost", ["v"], ["SIGNAL_DETECTED"], "VALIDATION", "url"),
        ("https://user:pw@example.org/", ["v"], ["SIGNAL_DETECTED"], "VALIDATION", "url"),
        ("https://example.org/#frag", ["v"], ["SIGNAL_DETECTED"], "VALIDATION", "url"),
        ("https://exa mple.org/", ["v"], ["SIGNAL_DETECTED"], "VALIDATION", "url"),
        ("https://example.org/\x00", ["v"], ["SIGNAL_DETECTED"], "VALIDATION", "url"),
        ("https://example.org:99999/", ["v"], ["SIGNAL_DETECTED"], "VALIDATION", "url"),
        ("https://" + "a" * 2000 + ".org/", ["v"], ["SIGNAL_DETECTED"], "VALIDATION", "url"),
        ("http://127.0.0.1:9/", ["v"], [], "VALIDATION", "events"),
        ("http://127.0.0.1:9/", [], ["SIGNAL_DETECTED"], "VALIDATION", "collaboratives"),
        ("http://127.0.0.1:9/", ["Bad Code"], ["SIGNAL_DETECTED"], "VALIDATION", "collaboratives"),
        ("http://127.0.0.1:9/", ["nope"], ["SIGNAL_DETECTED"], "NOT_FOUND", "collaboratives"),
    ],
)
async def test_create_webhook_rejects_bad_input(
    tenant: Tenant, url: str, collaboratives: list[str], events: list[str], code: str, field: str
) -> None:
    await build_program(tenant, "v")
    result = await _create(tenant, url, collaboratives, events)
    assert (result["code"], result["field"]) == (code, field), result


@pytest.fixture
async def public_only_app(database_url: str) -> AsyncIterator[Starlette]:
    """An app with the production default: webhooks to public addresses only."""
    application = create_app(make_settings(database_url, webhook_allow_private=False))
    async with LifespanManager(application):
        yield application


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:8080/hook",
        "http://localhost/hook",
        "http://[::1]/hook",
        "http://10.1.2.3/hook",
        "http://192.168.0.10/hook",
        "http://169.254.169.254/latest/meta-data/",
        "http://100.64.0.1/hook",
        "http://0.0.0.0/hook",
        "http://[::ffff:127.0.0.1]/hook",
        "http://224.0.0.1/hook",
    ],
)
async def test_private_addresses_are_refused_by_default(
    public_only_app: Starlette, tenant: Tenant, url: str
) -> None:
    import httpx

    await build_program(tenant, "ssrf")
    transport = httpx.ASGITransport(app=public_only_app)
    async with httpx.AsyncClient(transport=transport, base_url="http://collabx.test") as http:
        response = await http.post(
            "/graphql",
            json={
                "query": CREATE,
                "variables": {
                    "input": {"url": url, "collaboratives": ["ssrf"], "events": ["SIGNAL_DETECTED"]}
                },
            },
            headers={"Authorization": f"Bearer {await tenant.token()}"},
        )
    result = response.json()["data"]["createWebhook"]
    assert (result["code"], result["field"]) == ("VALIDATION", "url")
    assert "non-public" in result["message"]


async def test_public_addresses_pass_the_address_check() -> None:
    assert url_shape_problem("https://partner.example.org/hooks/collabx?x=1") is None
    assert await url_address_problem("https://93.184.216.34/hook", allow_private=False) is None
    assert await url_address_problem("http://[2606:4700::1111]/", allow_private=False) is None
    assert await url_address_problem("http://10.0.0.1/", allow_private=True) is None
    assert "does not resolve" in (
        await url_address_problem("http://no-such-host.invalid/", allow_private=True) or ""
    )


# --- deliveries ------------------------------------------------------------------------------


async def test_events_are_posted_signed_and_recorded(tenant: Tenant, receiver: Receiver) -> None:
    program = await build_program(tenant, "hooked")
    await build_program(tenant, "unhooked")
    created = await _create(tenant, f"{receiver.base}/data", ["hooked"], ["MEASURE_DATA_SUBMITTED"])
    signals_only = await _create(
        tenant, f"{receiver.base}/signals", ["hooked"], ["SIGNAL_DETECTED"]
    )
    secret, webhook = created["secret"], created["webhook"]
    other_row = {**_row(program, "2024-01", 1), "team": "unhooked-team-0"}
    await _submit(tenant, [{**other_row, "measure": "unhooked-control"}])  # not listened to
    receipt = await _submit(tenant, [_row(program, "2024-01", 500), _row(program, "2024-02", 510)])
    [request] = await receiver.wait("/data", 1)
    _verify(request, secret)
    assert request.headers["x-collabx-event"] == "MEASURE_DATA_SUBMITTED"
    body = request.json()
    assert body["type"] == "MEASURE_DATA_SUBMITTED"
    assert body["id"].startswith(f"measure-data:{receipt['receiptId']}:")
    assert body["sponsor"] == tenant.slug
    assert body["collaborative"] == {"id": program.ids["Collaborative"], "code": "hooked"}
    data = body["data"]
    assert data["receiptId"] == receipt["receiptId"]
    assert (data["operation"], data["status"], data["clientId"]) == (
        "SUBMIT",
        "COMPLETED",
        tenant.admin_id,
    )
    assert (data["created"], data["updated"], data["deleted"]) == (2, 0, 0)
    assert sorted(c["period"] for c in data["changes"]) == ["2024-01", "2024-02"]
    assert data["changesTruncated"] is False
    [delivery] = await _settled(tenant, webhook["id"])
    assert delivery["status"] == "SUCCEEDED"
    assert (delivery["attempts"], delivery["lastStatusCode"], delivery["lastError"]) == (1, 200, "")
    assert delivery["deliveredAt"] and delivery["nextAttemptAt"] is None
    assert delivery["eventId"] == body["id"] and delivery["event"] == "MEASURE_DATA_SUBMITTED"
    assert json.loads(delivery["payload"]) == body
    assert request.headers["x-collabx-delivery"] == delivery["id"]
    assert (await tenant.gql(NODE, {"id": delivery["id"]}))["data"]["node"]["__typename"] == (
        "WebhookDelivery"
    )
    # Nothing else arrived: not the other collaborative's call, nothing for the signals hook.
    await asyncio.sleep(0.3)
    assert len(receiver.at("/data")) == 1
    assert receiver.at("/signals") == []
    assert await _deliveries(tenant, signals_only["webhook"]["id"]) == []


async def test_failed_attempts_are_retried_then_given_up(
    tenant: Tenant, receiver: Receiver
) -> None:
    await build_program(tenant, "retry")
    program = Program(code="retry", team_codes=["retry-team-0"])
    receiver.plans["/flaky"] = [500, 200]
    receiver.plans["/down"] = [503]
    flaky = await _create(tenant, f"{receiver.base}/flaky", ["retry"], ["MEASURE_DATA_SUBMITTED"])
    down = await _create(tenant, f"{receiver.base}/down", ["retry"], ["MEASURE_DATA_SUBMITTED"])
    await _submit(tenant, [_row(program, "2024-01", 1)])
    first, second = await receiver.wait("/flaky", 2)
    assert first.body == second.body  # the same event, signed again at its own time
    _verify(second, flaky["secret"])
    [delivery] = await _settled(tenant, flaky["webhook"]["id"])
    assert (delivery["status"], delivery["attempts"], delivery["lastStatusCode"]) == (
        "SUCCEEDED",
        2,
        200,
    )
    await receiver.wait("/down", 3)  # COLLABX_WEBHOOK_MAX_ATTEMPTS in the tests
    [failed] = await _settled(tenant, down["webhook"]["id"])
    assert (failed["status"], failed["attempts"], failed["lastStatusCode"]) == ("FAILED", 3, 503)
    assert failed["lastError"] == "HTTP 503" and failed["nextAttemptAt"] is None
    await asyncio.sleep(0.3)
    assert len(receiver.at("/down")) == 3


async def test_unreachable_endpoints_fail_with_the_network_error(tenant: Tenant) -> None:
    await build_program(tenant, "unreachable")
    program = Program(code="unreachable", team_codes=["unreachable-team-0"])
    hook = await _create(
        tenant, "http://127.0.0.1:9/closed-port", ["unreachable"], ["MEASURE_DATA_SUBMITTED"]
    )
    await _submit(tenant, [_row(program, "2024-01", 1)])
    [failed] = await _settled(tenant, hook["webhook"]["id"])
    assert (failed["status"], failed["attempts"], failed["lastStatusCode"]) == ("FAILED", 3, None)
    assert "Connect" in failed["lastError"]


async def test_signals_reach_webhooks(tenant: Tenant, receiver: Receiver) -> None:
    program = await build_program(tenant, "hook-signals")
    await _submit(tenant, [_row(program, f"2023-{m:02d}", (480, 520)[m % 2]) for m in range(1, 13)])
    hook = await _create(tenant, f"{receiver.base}/signals", ["hook-signals"], ["SIGNAL_DETECTED"])
    receipt = await _submit(tenant, [_row(program, "2024-01", 650)])
    [request] = await receiver.wait("/signals", 1)
    _verify(request, hook["secret"])
    body = request.json()
    assert request.headers["x-collabx-event"] == body["type"] == "SIGNAL_DETECTED"
    data = body["data"]
    assert data["receiptId"] == receipt["receiptId"]
    assert (data["team"], data["measure"]) == ("hook-signals-team-0", "hook-signals-control")
    assert (data["chart"], data["rule"], data["side"], data["variation"]) == (
        "CONTROL_CHART",
        "OUTSIDE_LIMITS",
        "HIGH",
        "IMPROVEMENT",
    )
    assert data["periods"] == ["2024-01"]
    assert body["id"].startswith(f"signal:{receipt['receiptId']}:")


async def test_deleted_webhooks_and_revoked_creators_get_nothing(
    app: Starlette, tenant: Tenant, receiver: Receiver
) -> None:
    program = await build_program(tenant, "stopped")
    client_id, secret = await tenant.add_client(ClientKind.ADMIN)
    other_token = await tenant.token(client_id, secret)
    await _create(
        tenant,
        f"{receiver.base}/revoked",
        ["stopped"],
        ["MEASURE_DATA_SUBMITTED"],
        token=other_token,
    )
    deleted = await _create(
        tenant, f"{receiver.base}/deleted", ["stopped"], ["MEASURE_DATA_SUBMITTED"]
    )
    await _create(tenant, f"{receiver.base}/kept", ["stopped"], ["MEASURE_DATA_SUBMITTED"])
    state: AppState = app.state.collabx
    async with state.sessionmaker.begin() as session:
        await revoke_client(session, client_id)
    await tenant.gql(DELETE, {"id": deleted["webhook"]["id"]})
    await _submit(tenant, [_row(program, "2024-01", 1)])
    await receiver.wait("/kept", 1)
    await asyncio.sleep(0.3)
    assert receiver.at("/revoked") == [] and receiver.at("/deleted") == []
