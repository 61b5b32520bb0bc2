"""Shared fixtures: a fresh migrated database per backend, the app with its lifespan, tenants.

Every DB-touching test takes ``app`` (or ``database_url``), which is parametrized by backend with
the ids ``sqlite`` and ``postgresql``. PostgreSQL comes from ``COLLABX_TEST_POSTGRES_URL``; without
it those variants skip, unless ``COLLABX_REQUIRE_POSTGRES=1`` makes them fail. Each run creates its
own databases and drops them afterwards. Tests isolate themselves by creating their own sponsor
(tenant) with a random slug, which is also how tenancy is exercised everywhere.
"""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path

import httpx
import pytest
from asgi_lifespan import LifespanManager
from sqlalchemy.engine import make_url
from starlette.applications import Starlette

from api.app import create_app
from api.settings import Settings
from db.migrations import upgrade_to_head
from tests.factories import Tenant, TenantFactory

POSTGRES_URL_ENV = "COLLABX_TEST_POSTGRES_URL"
REQUIRE_POSTGRES_ENV = "COLLABX_REQUIRE_POSTGRES"
REQUIRE_REDIS_ENV = "COLLABX_REQUIRE_REDIS"
BACKENDS = ["sqlite", "postgresql"]
TEST_ISSUER = "http://collabx.test"
TEST_AUDIENCE = "collabx-test"


def postgres_server_url() -> str | None:
    """The PostgreSQL server the tests may create databases on, or skip/fail without one."""
    url = os.environ.get(POSTGRES_URL_ENV)
    if url:
        return url
    if os.environ.get(REQUIRE_POSTGRES_ENV) == "1":
        pytest.fail(f"{REQUIRE_POSTGRES_ENV}=1 but {POSTGRES_URL_ENV} is not set")
    pytest.skip(f"set {POSTGRES_URL_ENV} to run the PostgreSQL variant")
    return None


async def _admin(server_url: str, statement: str) -> None:
    import asyncpg

    url = make_url(server_url).set(drivername="postgresql")
    connection = await asyncpg.connect(url.render_as_string(hide_password=False))
    try:
        await connection.execute(statement)
    finally:
        await connection.close()


@pytest.fixture(scope="session", params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    """Which database backend this variant runs on."""
    return str(request.param)


@asynccontextmanager
async def empty_database(backend: str, folder: Path) -> AsyncIterator[str]:
    """A new, empty database on ``backend`` (a file in ``folder`` for SQLite), dropped after."""
    if backend == "sqlite":
        yield f"sqlite+aiosqlite:///{folder / f'collabx-{uuid.uuid4().hex[:8]}.db'}"
        return
    server = postgres_server_url()
    assert server is not None
    name = f"collabx_test_{uuid.uuid4().hex[:12]}"
    await _admin(server, f'CREATE DATABASE "{name}"')
    try:
        yield make_url(server).set(database=name).render_as_string(hide_password=False)
    finally:
        await _admin(server, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="session")
async def database_url(
    backend: str, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[str]:
    """A fresh database migrated to head, shared by the session, dropped after it."""
    async with empty_database(backend, tmp_path_factory.mktemp("db")) as url:
        await asyncio.to_thread(upgrade_to_head, url)
        yield url


@pytest.fixture
async def empty_database_url(backend: str, tmp_path: Path) -> AsyncIterator[str]:
    """A database of this test's own, not migrated."""
    async with empty_database(backend, tmp_path) as url:
        yield url


def make_settings(database_url: str, **overrides: object) -> Settings:
    """Settings for a test app on ``database_url``."""
    values: dict[str, object] = {
        "database_url": database_url,
        "issuer": TEST_ISSUER,
        "audience": TEST_AUDIENCE,
        "debug": False,
        "demo": False,
        # Webhook receivers in tests listen on 127.0.0.1, and retries must not take minutes.
        "webhook_allow_private": True,
        "webhook_retry_base_seconds": 0.05,
        "webhook_max_attempts": 3,
        "webhook_poll_seconds": 1.0,
        # No background purge of other tests' (past-dated) idempotency keys; the purge has its
        # own tests (tests/api/test_maintenance.py).
        "maintenance_interval_seconds": 0,
    }
    values.update(overrides)
    return Settings.model_validate(values)


@pytest.fixture(scope="session")
async def app(database_url: str) -> AsyncIterator[Starlette]:
    """The app on this backend's database, its lifespan running."""
    application = create_app(make_settings(database_url))
    async with LifespanManager(application):
        yield application


@pytest.fixture
async def http(app: Starlette) -> AsyncIterator[httpx.AsyncClient]:
    """An HTTP client talking to the app in process."""
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://collabx.test") as client:
        yield client


@pytest.fixture
def tenants(app: Starlette, http: httpx.AsyncClient) -> TenantFactory:
    """Creates isolated sponsors with clients, and gets tokens for them."""
    return TenantFactory(app, http)


@pytest.fixture
async def tenant(tenants: TenantFactory) -> Tenant:
    """A fresh sponsor of its own with an ADMIN client."""
    return await tenants.create()


@pytest.fixture(autouse=True)
def _no_proxy_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Keep a developer's COLLABX_* variables out of the tests' Settings."""
    for name in list(os.environ):
        kept = (POSTGRES_URL_ENV, REQUIRE_POSTGRES_ENV, REQUIRE_REDIS_ENV)
        if name.startswith("COLLABX_") and name not in kept:
            monkeypatch.delenv(name)
    yield
