"""Fixtures of the fault tests: a PostgreSQL database of their own and an app on it."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import httpx
import pytest
from asgi_lifespan import LifespanManager
from starlette.applications import Starlette

from api.app import create_app
from db.migrations import upgrade_to_head
from tests.conftest import empty_database, make_settings
from tests.factories import Tenant, TenantFactory
from tests.programs import build_program


@pytest.fixture(scope="module")
async def pg_database(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[str]:
    """A migrated PostgreSQL database of this module (skips without PostgreSQL)."""
    async with empty_database("postgresql", tmp_path_factory.mktemp("faults")) as url:
        await asyncio.to_thread(upgrade_to_head, url)
        yield url


@pytest.fixture(scope="module")
async def pg_app(pg_database: str) -> AsyncIterator[Starlette]:
    """The app on it, in process."""
    application = create_app(make_settings(pg_database))
    async with LifespanManager(application):
        yield application


@pytest.fixture
async def pg_http(pg_app: Starlette) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=pg_app)
    async with httpx.AsyncClient(
        transport=transport, base_url="http://collabx.test", timeout=60
    ) as client:
        yield client


@pytest.fixture
async def pg_tenant(pg_app: Starlette, pg_http: httpx.AsyncClient) -> Tenant:
    """A tenant with collaborative "fault", team "fault-team-0", measure "fault-control"."""
    tenant = await TenantFactory(pg_app, pg_http).create()
    await build_program(tenant, "fault")
    return tenant
