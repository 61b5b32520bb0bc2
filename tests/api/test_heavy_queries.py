"""Heavy operations run a bounded number at a time per process; light ones never wait."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from asgi_lifespan import LifespanManager
from starlette.applications import Starlette
from starlette.routing import Route

from api.app import create_app
from api.heavy import HeavyQueryGate
from tests.conftest import make_settings
from tests.factories import TenantFactory

pytestmark = pytest.mark.timeout(60)


async def test_the_gate_admits_heavy_operations_up_to_its_concurrency() -> None:
    gate = HeavyQueryGate(threshold=100, concurrency=2)
    release = asyncio.Event()
    inside: list[str] = []

    async def run(name: str, cost: int) -> None:
        async with gate.slot(cost):
            inside.append(name)
            await release.wait()

    tasks = [asyncio.create_task(run(f"heavy-{i}", 100 + i)) for i in range(5)]
    tasks.append(asyncio.create_task(run("light", 99)))
    for _ in range(10):
        await asyncio.sleep(0)
    assert sorted(inside) == ["heavy-0", "heavy-1", "light"]  # the light one did not queue
    assert gate.running == 2
    release.set()
    await asyncio.gather(*tasks)
    assert len(inside) == 6 and gate.running == 0 and gate.most_running == 2


async def test_no_gate_when_the_concurrency_is_zero() -> None:
    gate = HeavyQueryGate(threshold=1, concurrency=0)
    assert not gate.is_heavy(10**9)
    async with gate.slot(10**9):
        assert gate.running == 0


def _gate(app: Starlette) -> HeavyQueryGate:
    route = next(r for r in app.routes if isinstance(r, Route) and r.path == "/graphql")
    view: Any = route.app
    gate: HeavyQueryGate = view._app.heavy
    return gate


@pytest.fixture
async def gated_app(database_url: str) -> AsyncIterator[Starlette]:
    application = create_app(
        make_settings(database_url, heavy_query_cost=50, heavy_query_concurrency=1)
    )
    async with LifespanManager(application):
        yield application


async def test_concurrent_heavy_queries_all_answer_one_at_a_time(gated_app: Starlette) -> None:
    transport = httpx.ASGITransport(app=gated_app)
    async with httpx.AsyncClient(transport=transport, base_url="http://collabx.test") as http:
        tenant = await TenantFactory(gated_app, http).create()
        token = await tenant.token()
        heavy = (
            "{ collaboratives(first: 100) { nodes { code teams(first: 100) { nodes { code } } } } }"
        )
        light = "{ viewer { clientId } }"

        async def post(query: str) -> dict[str, Any]:
            response = await http.post(
                "/graphql", json={"query": query}, headers={"Authorization": f"Bearer {token}"}
            )
            assert response.status_code == 200, response.text
            body: dict[str, Any] = response.json()
            assert "errors" not in body, body
            return body

        answers = await asyncio.gather(*(post(heavy) for _ in range(6)), post(light))
    assert all(a["data"]["collaboratives"] == {"nodes": []} for a in answers[:6])
    gate = _gate(gated_app)
    assert gate.most_running == 1 and gate.running == 0


async def test_a_heavy_query_that_cannot_get_a_slot_is_a_503_to_retry(
    database_url: str,
) -> None:
    application = create_app(
        make_settings(
            database_url,
            heavy_query_cost=50,
            heavy_query_concurrency=1,
            heavy_query_wait_seconds=0.2,
        )
    )
    async with LifespanManager(application):
        transport = httpx.ASGITransport(app=application)
        async with httpx.AsyncClient(transport=transport, base_url="http://collabx.test") as http:
            tenant = await TenantFactory(application, http).create()
            token = await tenant.token()
            gate = _gate(application)
            release = asyncio.Event()

            async def hold() -> None:
                async with gate.slot(10**6):
                    await release.wait()

            holder = asyncio.create_task(hold())
            await asyncio.sleep(0)
            response = await http.post(
                "/graphql",
                json={"query": "{ collaboratives(first: 100) { nodes { code } } }"},
                headers={"Authorization": f"Bearer {token}"},
            )
            light = await http.post(
                "/graphql",
                json={"query": "{ viewer { clientId } }"},
                headers={"Authorization": f"Bearer {token}"},
            )
            release.set()
            await holder
    assert response.status_code == 503, response.text
    assert response.headers["retry-after"] == "1"
    assert response.json()["errors"][0]["extensions"]["code"] == "SERVICE_UNAVAILABLE"
    assert light.status_code == 200 and "errors" not in light.json()
