"""Subscriptions over WebSocket (graphql-transport-ws on /graphql), in process on both backends:
authentication on connection_init and its close codes, measureDataSubmitted after commit only,
tenancy, scopes and EHR team filtering, the per-connection cap, revocation, signalDetected."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from typing import Any

import pytest
from asgi_lifespan import LifespanManager
from sqlalchemy import update
from starlette.applications import Starlette
from strawberry.types.base import get_object_definition

from api import subscriptions
from api.app import create_app
from api.state import AppState
from db.enums import ClientKind
from db.models import Client
from db.queries.auth import revoke_client
from schema.schema import Subscription
from tests.conftest import make_settings
from tests.factories import Tenant, TenantFactory
from tests.live import AsgiWebSocket, Closed, wait_for_subscribers
from tests.programs import Program, build_program

SUBMITTED = """
subscription Submitted($collaborative: ID!) {
  measureDataSubmitted(collaborative: $collaborative) {
    receiptId operation status clientId submittedAt created updated deleted
    changes { team measure period stratum change }
    collaborative { code }
    receipt { receiptId status created rejected }
  }
}
"""

SIGNALS = """
subscription Signals($collaborative: ID!) {
  signalDetected(collaborative: $collaborative) {
    receiptId team measure chart chartType rules rule side variation periods detectedAt
    collaborative { code }
  }
}
"""

SUBMIT = """
mutation Submit($input: SubmitMeasureDataInput!) {
  submitMeasureData(input: $input) {
    __typename
    ... on MeasureDataReceipt { receiptId status created updated unchanged rejected }
    ... on Error { code message }
  }
}
"""

DELETE = """
mutation Delete($input: DeleteMeasureDataInput!) {
  deleteMeasureData(input: $input) {
    __typename
    ... on MeasureDataReceipt { receiptId status deleted }
  }
}
"""


def _state(app: Starlette) -> AppState:
    state: AppState = app.state.collabx
    return state


async def _submit(
    tenant: Tenant,
    rows: list[dict[str, Any]],
    *,
    token: str | None = None,
    **options: Any,
) -> dict[str, Any]:
    body = await tenant.gql(SUBMIT, {"input": {"rows": rows, **options}}, token=token)
    assert "errors" not in body, body
    receipt: dict[str, Any] = body["data"]["submitMeasureData"]
    return receipt


def _row(program: Program, team: int, period: str, numerator: int, denominator: int = 100) -> Any:
    return {
        "team": program.team_codes[team],
        "measure": f"{program.code}-control",
        "period": period,
        "numerator": numerator,
        "denominator": denominator,
    }


async def _connect(ws: AsgiWebSocket, token: str, *, form: str = "header") -> None:
    payload = {"Authorization": f"Bearer {token}"} if form == "header" else {"token": token}
    assert await ws.init(payload) == {"type": "connection_ack"}


async def _subscribed(
    app: Starlette,
    ws: AsgiWebSocket,
    operation_id: str,
    query: str,
    collaborative: str,
) -> None:
    """Subscribe and wait until the server has registered the subscriber."""
    before = _state(app).events.bus.subscribers  # type: ignore[union-attr]
    await ws.subscribe(operation_id, query, {"collaborative": collaborative})
    await wait_for_subscribers(_state(app), before + 1)


def test_every_subscription_requires_scopes() -> None:
    definition = get_object_definition(Subscription, strict=True)
    assert definition.fields
    assert [f.python_name for f in definition.fields if not f.permission_classes] == []


# --- authentication --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "payload",
    [None, {}, {"Authorization": "Bearer not-a-jwt"}, {"token": ""}, {"Authorization": "Basic x"}],
)
async def test_connection_init_without_a_valid_token_closes_4401(
    app: Starlette, payload: dict[str, Any] | None
) -> None:
    async with AsgiWebSocket(app) as ws:
        assert ws.accepted is not None
        assert ws.accepted.get("subprotocol") == "graphql-transport-ws"
        with pytest.raises(Closed) as closed:
            await ws.init(payload)
        assert closed.value.code == 4401
        assert closed.value.reason.startswith("Unauthorized")


async def test_protocol_close_codes(app: Starlette, tenant: Tenant) -> None:
    token = await tenant.token()
    async with AsgiWebSocket(app) as ws:  # subscribe before connection_init
        await ws.subscribe("1", "subscription { __typename }")
        with pytest.raises(Closed) as closed:
            await ws.receive_json()
        assert closed.value.code == 4401
    async with AsgiWebSocket(app) as ws:  # a second connection_init
        await _connect(ws, token)
        with pytest.raises(Closed) as closed:
            await ws.init({"token": token})
        assert closed.value.code == 4429
    async with AsgiWebSocket(app) as ws:  # a payload that is not an object
        await ws.send_json({"type": "connection_init", "payload": "token"})
        with pytest.raises(Closed) as closed:
            await ws.receive_json()
        assert closed.value.code == 4400
    async with AsgiWebSocket(app, subprotocols=("graphql-ws",)) as ws:  # legacy protocol only
        with pytest.raises(Closed) as closed:
            await ws.receive_json()
        assert closed.value.code == 4406


async def test_http_without_a_token_is_still_401(app: Starlette, tenants: TenantFactory) -> None:
    response = await tenants.http.post("/graphql", json={"query": "{ viewer { kind } }"})
    assert response.status_code == 401
    assert response.headers["www-authenticate"].startswith("Bearer")


async def test_subscriptions_over_http_are_a_request_error(
    tenants: TenantFactory, tenant: Tenant
) -> None:
    program = await build_program(tenant, "over-http")
    payload = {"query": SUBMITTED, "variables": {"collaborative": program.ids["Collaborative"]}}
    headers = {"Authorization": f"Bearer {await tenant.token()}"}
    response = await tenants.http.post("/graphql", json=payload, headers=headers)
    assert response.status_code == 200
    body = response.json()
    assert body["data"] is None
    assert body["errors"][0]["extensions"]["code"] == "OPERATION_NOT_ALLOWED"
    strict = {**headers, "Accept": "application/graphql-response+json"}
    response = await tenants.http.post("/graphql", json=payload, headers=strict)
    assert response.status_code == 400 and "data" not in response.json()


# --- measureDataSubmitted ------------------------------------------------------------------


async def test_measure_data_submitted_arrives_after_commit_with_the_changed_keys(
    app: Starlette, tenant: Tenant
) -> None:
    program = await build_program(tenant, "live", teams=2)
    other = await build_program(tenant, "elsewhere")
    token = await tenant.token()
    async with AsgiWebSocket(app) as ws:
        await _connect(ws, token, form="token")
        await _subscribed(app, ws, "s1", SUBMITTED, program.ids["Collaborative"])
        # Nothing is announced for a dry run, a rejected call, or another collaborative's data.
        await _submit(tenant, [_row(program, 0, "2024-01", 5)], dryRun=True)
        rejected = await _submit(tenant, [_row(program, 0, "2024-01", 500)])
        assert rejected["status"] == "REJECTED"
        other_row = {**_row(other, 0, "2024-01", 5), "measure": "elsewhere-control"}
        await _submit(tenant, [other_row])
        first = await _submit(
            tenant, [_row(program, 0, "2024-01", 40), _row(program, 1, "2024-01", 50)]
        )
        message = await ws.receive_json()
        assert message["type"] == "next" and message["id"] == "s1"
        event = message["payload"]["data"]["measureDataSubmitted"]
        assert event["receiptId"] == first["receiptId"]
        assert (event["operation"], event["status"]) == ("SUBMIT", "COMPLETED")
        assert (event["created"], event["updated"], event["deleted"]) == (2, 0, 0)
        assert sorted((c["team"], c["period"], c["change"]) for c in event["changes"]) == [
            ("live-team-0", "2024-01", "CREATED"),
            ("live-team-1", "2024-01", "CREATED"),
        ]
        assert {c["measure"] for c in event["changes"]} == {"live-control"}
        assert event["collaborative"] == {"code": "live"}
        assert event["receipt"]["receiptId"] == first["receiptId"]
        assert event["clientId"] == tenant.admin_id
        # An unchanged resubmission writes nothing and says nothing; an update and a deletion do.
        await _submit(tenant, [_row(program, 0, "2024-01", 40)])
        await _submit(tenant, [_row(program, 0, "2024-01", 41)])
        updated = (await ws.receive_json())["payload"]["data"]["measureDataSubmitted"]
        assert (updated["created"], updated["updated"]) == (0, 1)
        assert updated["changes"][0]["change"] == "UPDATED"
        key = {"team": "live-team-1", "measure": "live-control", "period": "2024-01"}
        deleted = await tenant.gql(DELETE, {"input": {"rows": [key]}})
        event = (await ws.receive_json())["payload"]["data"]["measureDataSubmitted"]
        assert event["receiptId"] == deleted["data"]["deleteMeasureData"]["receiptId"]
        assert (event["operation"], event["deleted"]) == ("DELETE", 1)
        assert event["changes"] == [
            {
                "team": "live-team-1",
                "measure": "live-control",
                "period": "2024-01",
                "stratum": "",
                "change": "DELETED",
            }
        ]
        # complete ends the subscription: nothing more arrives for it.
        await ws.send_json({"id": "s1", "type": "complete"})
        await _submit(tenant, [_row(program, 0, "2024-02", 40)])
        assert await ws.nothing_within(0.3)


async def test_a_batch_too_large_for_a_notification_is_read_back(
    app: Starlette, tenant: Tenant
) -> None:
    """On PostgreSQL 480 keys do not fit in a NOTIFY payload: listeners read them back."""
    program = await build_program(tenant, "bulk")
    periods = [f"{year}-{month:02d}" for year in (2020, 2021, 2022, 2023) for month in range(1, 13)]
    strata = ["", *(f"site:{n}" for n in range(9))]
    rows = [
        {**_row(program, 0, period, 3), "stratum": stratum}
        for period in periods
        for stratum in strata
    ]
    async with AsgiWebSocket(app) as ws:
        await _connect(ws, await tenant.token())
        await _subscribed(app, ws, "bulk", SUBMITTED, program.ids["Collaborative"])
        created = await _submit(tenant, rows)
        event = (await ws.receive_json())["payload"]["data"]["measureDataSubmitted"]
        assert event["receiptId"] == created["receiptId"]
        assert event["created"] == len(rows) == len(event["changes"])
        assert {(c["period"], c["stratum"]) for c in event["changes"]} == {
            (period, stratum) for period in periods for stratum in strata
        }
        keys = [{k: row[k] for k in ("team", "measure", "period", "stratum")} for row in rows]
        deleted = await tenant.gql(DELETE, {"input": {"rows": keys[:400]}})
        event = (await ws.receive_json())["payload"]["data"]["measureDataSubmitted"]
        assert event["receiptId"] == deleted["data"]["deleteMeasureData"]["receiptId"]
        assert event["deleted"] == 400 == len(event["changes"])
        assert {c["change"] for c in event["changes"]} == {"DELETED"}


async def test_another_tenant_and_bad_ids_get_not_found(
    app: Starlette, tenant: Tenant, tenants: TenantFactory
) -> None:
    program = await build_program(tenant, "mine")
    stranger = await tenants.create()
    async with AsgiWebSocket(app) as ws:
        await _connect(ws, await stranger.token())
        for number, collaborative in enumerate(
            [program.ids["Collaborative"], "bm90LWFuLWlk", program.ids["Team"], ""]
        ):
            await ws.subscribe(str(number), SUBMITTED, {"collaborative": collaborative})
            message = await ws.receive_json()
            assert message["type"] == "error" and message["id"] == str(number)
            assert message["payload"][0]["extensions"]["code"] == "NOT_FOUND"
        await ws.subscribe("sig", SIGNALS, {"collaborative": program.ids["Collaborative"]})
        message = await ws.receive_json()
        assert message["payload"][0]["extensions"]["code"] == "NOT_FOUND"


async def test_subscriptions_need_program_read_and_data_read(
    app: Starlette, tenant: Tenant
) -> None:
    program = await build_program(tenant, "scoped")
    for scopes in [("program:read",), ("data:read",), ("aggregate:read", "catalog:read")]:
        client_id, secret = await tenant.add_client(ClientKind.DASHBOARD, scopes=scopes)
        async with AsgiWebSocket(app) as ws:
            await _connect(ws, await tenant.token(client_id, secret))
            for query in (SUBMITTED, SIGNALS):
                await ws.subscribe("1", query, {"collaborative": program.ids["Collaborative"]})
                message = await ws.receive_json()
                assert message["type"] == "error", (scopes, message)
                assert message["payload"][0]["extensions"]["code"] == "FORBIDDEN"


async def test_ehr_clients_hear_only_their_own_teams(app: Starlette, tenant: Tenant) -> None:
    program = await build_program(tenant, "ehr", teams=2)
    client_id, secret = await tenant.add_client(
        ClientKind.EHR_INTEGRATION,
        scopes=("data:write", "data:read", "program:read"),
        teams=(program.team_codes[0],),
    )
    ehr_token = await tenant.token(client_id, secret)
    async with AsgiWebSocket(app) as ws:
        await _connect(ws, ehr_token)
        await _subscribed(app, ws, "ehr", SUBMITTED, program.ids["Collaborative"])
        await _submit(tenant, [_row(program, 1, "2024-01", 10)])  # another team only: nothing
        both = await _submit(
            tenant, [_row(program, 0, "2024-01", 10), _row(program, 1, "2024-02", 1)]
        )
        event = (await ws.receive_json())["payload"]["data"]["measureDataSubmitted"]
        assert event["receiptId"] == both["receiptId"]
        assert [c["team"] for c in event["changes"]] == ["ehr-team-0"]
        assert event["created"] == 1
        assert event["receipt"] is None and event["clientId"] is None  # another client's call
        own = await _submit(tenant, [_row(program, 0, "2024-02", 12)], token=ehr_token)
        event = (await ws.receive_json())["payload"]["data"]["measureDataSubmitted"]
        assert event["receiptId"] == own["receiptId"]
        assert event["clientId"] == client_id
        assert event["receipt"]["receiptId"] == own["receiptId"]


async def test_queries_and_mutations_go_over_http(app: Starlette, tenant: Tenant) -> None:
    async with AsgiWebSocket(app) as ws:
        await _connect(ws, await tenant.token())
        await ws.subscribe("q", "{ viewer { kind } }")
        message = await ws.receive_json()
        assert message["type"] == "error"
        assert message["payload"][0]["extensions"]["code"] == "OPERATION_NOT_ALLOWED"


@pytest.fixture
async def strict_app(database_url: str) -> AsyncIterator[Starlette]:
    """An app that re-checks every delivery and allows two subscriptions per connection."""
    application = create_app(
        make_settings(database_url, ws_reauth_seconds=0, ws_max_subscriptions=2)
    )
    async with LifespanManager(application):
        yield application


async def test_subscriptions_per_connection_are_capped(
    strict_app: Starlette, tenant: Tenant
) -> None:
    program = await build_program(tenant, "capped")
    collaborative = program.ids["Collaborative"]
    async with AsgiWebSocket(strict_app) as ws:
        await _connect(ws, await tenant.token())
        await _subscribed(strict_app, ws, "a", SUBMITTED, collaborative)
        await _subscribed(strict_app, ws, "b", SIGNALS, collaborative)
        await ws.subscribe("c", SUBMITTED, {"collaborative": collaborative})
        message = await ws.receive_json()
        assert (message["type"], message["id"]) == ("error", "c")
        assert message["payload"][0]["extensions"]["code"] == "TOO_MANY_SUBSCRIPTIONS"
        # the connection stays usable: completing one makes room for another
        await ws.send_json({"id": "a", "type": "complete"})
        await ws.subscribe("d", SUBMITTED, {"collaborative": collaborative})
        assert await ws.nothing_within(0.2)


async def test_a_revoked_clients_socket_stops_receiving(
    strict_app: Starlette, tenant: Tenant
) -> None:
    program = await build_program(tenant, "revoked")
    client_id, secret = await tenant.add_client(ClientKind.DASHBOARD)
    token = await tenant.token(client_id, secret)
    async with AsgiWebSocket(strict_app) as ws:
        await _connect(ws, token)
        await _subscribed(strict_app, ws, "r", SUBMITTED, program.ids["Collaborative"])
        await _submit(tenant, [_row(program, 0, "2024-01", 1)])
        assert (await ws.receive_json())["type"] == "next"
        async with _state(strict_app).sessionmaker.begin() as session:
            await revoke_client(session, client_id)
        await _submit(tenant, [_row(program, 0, "2024-02", 1)])
        with pytest.raises(Closed) as closed:
            await ws.receive_json()
        assert closed.value.code == 4401
        assert "revoked" in closed.value.reason


async def test_changed_scopes_close_the_socket_with_4403(
    strict_app: Starlette, tenant: Tenant
) -> None:
    program = await build_program(tenant, "rights")
    client_id, secret = await tenant.add_client(ClientKind.DASHBOARD)
    async with AsgiWebSocket(strict_app) as ws:
        await _connect(ws, await tenant.token(client_id, secret))
        await _subscribed(strict_app, ws, "r", SUBMITTED, program.ids["Collaborative"])
        async with _state(strict_app).sessionmaker.begin() as session:
            await session.execute(
                update(Client)
                .where(Client.client_id == client_id)
                .values(scopes="program:read data:read")  # aggregate:read and catalog:read gone
            )
        await _submit(tenant, [_row(program, 0, "2024-01", 1)])
        with pytest.raises(Closed) as closed:
            await ws.receive_json()
        assert closed.value.code == 4403


async def test_the_socket_closes_when_the_token_expires(
    app: Starlette, tenant: Tenant, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(subscriptions, "_expires_at", lambda token: time.time() + 0.2)
    async with AsgiWebSocket(app) as ws:
        await _connect(ws, await tenant.token())
        with pytest.raises(Closed) as closed:
            await ws.receive_json(within=5)
        assert closed.value.code == 4401
        assert "expired" in closed.value.reason


# --- signalDetected --------------------------------------------------------------------------


async def test_signal_detected_when_a_point_leaves_the_limits(
    app: Starlette, tenant: Tenant
) -> None:
    program = await build_program(tenant, "signals")
    baseline = [480, 520] * 6  # alternating around the centre: no run or crossing signal
    rows = [_row(program, 0, f"2023-{m + 1:02d}", n, 1000) for m, n in enumerate(baseline)]
    await _submit(tenant, rows)
    async with AsgiWebSocket(app) as ws:
        await _connect(ws, await tenant.token())
        await _subscribed(app, ws, "sig", SIGNALS, program.ids["Collaborative"])
        # A value inside the limits makes no signal appear.
        await _submit(tenant, [_row(program, 0, "2024-01", 490, 1000)])
        high = await _submit(tenant, [_row(program, 0, "2024-02", 620, 1000)])
        event = (await ws.receive_json())["payload"]["data"]["signalDetected"]
        assert event["receiptId"] == high["receiptId"]
        assert event["team"] == "signals-team-0" and event["measure"] == "signals-control"
        assert (event["chart"], event["chartType"], event["rules"]) == (
            "CONTROL_CHART",
            "P",
            "ANHOEJ",
        )
        assert (event["rule"], event["side"], event["variation"]) == (
            "OUTSIDE_LIMITS",
            "HIGH",
            "IMPROVEMENT",
        )
        assert event["periods"] == ["2024-02"]
        assert event["collaborative"] == {"code": "signals"}
        assert await ws.nothing_within(0.3)  # one new signal, one event
        # Resubmitting the same value changes nothing and repeats nothing.
        await _submit(tenant, [_row(program, 0, "2024-02", 620, 1000)])
        low = await _submit(tenant, [_row(program, 0, "2024-03", 380, 1000)])
        event = (await ws.receive_json())["payload"]["data"]["signalDetected"]
        assert event["receiptId"] == low["receiptId"]
        assert (event["rule"], event["side"], event["variation"]) == (
            "OUTSIDE_LIMITS",
            "LOW",
            "CONCERN",
        )
        assert event["periods"] == ["2024-03"]
        assert await ws.nothing_within(0.3)
