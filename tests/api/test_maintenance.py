"""Expired idempotency keys are purged: by every API process in the background, and on demand
by `collabx purge-idempotency-keys`; keys inside their 24 hours stay."""

from __future__ import annotations

import asyncio
import uuid
from datetime import timedelta

import pytest
from asgi_lifespan import LifespanManager
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from api.app import create_app
from db.base import utcnow
from db.models import IdempotencyKey, Sponsor
from db.sessions import create_engine, create_sessionmaker
from tests.api.test_cli import database, invoke  # noqa: F401 (the fixture is used by name)
from tests.conftest import make_settings

pytestmark = pytest.mark.timeout(60)


async def _keys(session: AsyncSession) -> tuple[str, str]:
    """A sponsor with one expired key and one fresh key; their keys."""
    sponsor = Sponsor(id=uuid.uuid4(), slug=f"m-{uuid.uuid4().hex[:8]}", name="M", description="")
    session.add(sponsor)
    await session.flush()
    now = utcnow()
    for key, expires in (("old", now - timedelta(minutes=1)), ("new", now + timedelta(hours=23))):
        session.add(
            IdempotencyKey(
                sponsor_id=sponsor.id,
                id=uuid.uuid4(),
                client_id="c",
                key=f"{sponsor.slug}-{key}",
                operation="SUBMIT",
                request_hash="0" * 64,
                receipt_id=uuid.uuid4(),
                status="COMPLETED",
                created_at=now - timedelta(hours=24),
                expires_at=expires,
            )
        )
    return f"{sponsor.slug}-old", f"{sponsor.slug}-new"


async def _present(database_url: str, keys: tuple[str, ...]) -> set[str]:
    engine = create_engine(database_url)
    try:
        async with create_sessionmaker(engine)() as session:
            rows = await session.scalars(
                select(IdempotencyKey.key).where(IdempotencyKey.key.in_(keys))
            )
            return set(rows)
    finally:
        await engine.dispose()


async def test_every_process_purges_expired_keys_in_the_background(database_url: str) -> None:
    app = create_app(make_settings(database_url, maintenance_interval_seconds=0.05))
    async with LifespanManager(app):
        async with app.state.collabx.sessionmaker.begin() as session:
            old, new = await _keys(session)
        remaining: set[str] = {old, new}

        async def refresh() -> None:
            remaining.intersection_update(await _present(database_url, (old, new)))

        async def purged() -> None:
            while old in remaining:
                await refresh()
                await asyncio.sleep(0.05)

        await asyncio.wait_for(purged(), timeout=10)
        assert remaining == {new}


async def test_the_cli_purges_on_demand(database: str) -> None:  # noqa: F811
    engine = create_engine(database)
    try:
        async with create_sessionmaker(engine).begin() as session:
            old, new = await _keys(session)
    finally:
        await engine.dispose()
    output = await invoke("purge-idempotency-keys")
    assert "purged 1 expired idempotency keys" in output
    assert await _present(database, (old, new)) == {new}
