"""Authentication caches (issue 7): verified signatures are reused, and with
``COLLABX_AUTH_CACHE_SECONDS`` a token's principal too — revocation then applies within that
bound, and at once without it (the default, tested in test_bearer_validation.py)."""

from __future__ import annotations

import time as real_time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
import pytest
from asgi_lifespan import LifespanManager
from starlette.applications import Starlette

from api.app import create_app
from api.auth import middleware
from api.state import AppState
from db.enums import ClientKind
from db.queries.auth import revoke_client
from tests.conftest import make_settings
from tests.factories import Tenant, TenantFactory

VIEWER = "{ viewer { kind } }"


@asynccontextmanager
async def app_with(database_url: str, **settings: object) -> AsyncIterator[Tenant]:
    app: Starlette = create_app(make_settings(database_url, **settings))
    async with LifespanManager(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://collabx.test") as http:
            yield await TenantFactory(app, http).create()


async def call(tenant: Tenant, token: str) -> int:
    response = await tenant.factory.http.post(
        "/graphql", json={"query": VIEWER}, headers={"Authorization": f"Bearer {token}"}
    )
    return response.status_code


class ShiftedClock:
    """The middleware's clock, moved forward by hand (no sleeping, no race with a slow box)."""

    def __init__(self) -> None:
        self.offset = 0.0

    def time(self) -> float:
        return real_time.time() + self.offset

    def monotonic(self) -> float:
        return real_time.monotonic() + self.offset


async def test_a_cached_principal_honours_revocation_within_the_bound(
    database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    clock = ShiftedClock()
    monkeypatch.setattr(middleware, "time", clock)
    async with app_with(database_url, auth_cache_seconds=5) as tenant:
        client_id, secret = await tenant.add_client(ClientKind.DASHBOARD)
        token = await tenant.factory.token(client_id, secret)
        assert await call(tenant, token) == 200
        state: AppState = tenant.factory.app.state.collabx
        async with state.sessionmaker.begin() as session:
            await revoke_client(session, client_id)
        assert await call(tenant, token) == 200  # within the documented bound: still cached
        clock.offset = 5.1
        assert await call(tenant, token) == 401


async def test_forged_and_tampered_tokens_are_never_cached(database_url: str) -> None:
    async with app_with(database_url, auth_cache_seconds=30) as tenant:
        token = await tenant.token()
        assert await call(tenant, token) == 200
        header, payload, signature = token.split(".")
        tail = "AAAA" if signature[-4:] != "AAAA" else "BBBB"
        tampered = f"{header}.{payload}.{signature[:-4]}{tail}"
        for _ in range(2):
            assert await call(tenant, tampered) == 401
        assert await call(tenant, token) == 200
