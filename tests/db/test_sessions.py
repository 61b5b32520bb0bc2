"""The engine's connection handling: dead pooled connections are replaced before use, and
read-only units of work run without a transaction on PostgreSQL."""

from __future__ import annotations

import asyncio

import asyncpg
import pytest
from sqlalchemy import text
from sqlalchemy.engine import make_url

from db.sessions import create_engine, create_sessionmaker, read_only

pytestmark = pytest.mark.timeout(60)


def _asyncpg_dsn(database_url: str) -> str:
    return make_url(database_url).set(drivername="postgresql").render_as_string(hide_password=False)


async def test_a_pooled_connection_the_server_closed_is_replaced_on_checkout(
    backend: str, database_url: str
) -> None:
    if backend != "postgresql":
        pytest.skip("a server that closes connections: PostgreSQL")
    engine = create_engine(database_url, pool_size=1)
    try:
        async with engine.connect() as connection:
            killed = await connection.scalar(text("SELECT pg_backend_pid()"))
        # The pool keeps that connection; the server now terminates its backend.
        admin = await asyncpg.connect(_asyncpg_dsn(database_url))
        try:
            assert await admin.fetchval("SELECT pg_terminate_backend($1)", killed)
            for _ in range(100):
                gone = not await admin.fetchval(
                    "SELECT count(*) FROM pg_stat_activity WHERE pid = $1", killed
                )
                if gone:
                    break
                await asyncio.sleep(0.05)
        finally:
            await admin.close()
        # The next checkout finds it dead and reconnects: the statement itself never fails.
        async with engine.connect() as connection:
            replacement = await connection.scalar(text("SELECT pg_backend_pid()"))
        assert replacement != killed
    finally:
        await engine.dispose()


async def test_read_only_sessions_hold_no_transaction_on_postgresql(
    backend: str, database_url: str
) -> None:
    engine = create_engine(database_url, pool_size=1)
    if backend != "postgresql":
        # SQLite has no round trips to save: its read sessions are plain ones.
        assert read_only(engine) is engine
        await engine.dispose()
        return
    try:
        reads = create_sessionmaker(read_only(engine))
        async with reads() as session:
            first = await session.scalar(text("SELECT now()"))
            await asyncio.sleep(0.02)
            second = await session.scalar(text("SELECT now()"))
        writes = create_sessionmaker(engine)
        async with writes() as session:
            opened = await session.scalar(text("SELECT now()"))
            await asyncio.sleep(0.02)
            same = await session.scalar(text("SELECT now()"))
    finally:
        await engine.dispose()
    # now() is the start of the transaction: constant inside one, new for every statement
    # in autocommit.
    assert opened == same
    assert first is not None and second is not None and second > first
