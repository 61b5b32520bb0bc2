"""Engine and sessionmaker from a database URL, for SQLite and PostgreSQL alike."""

from __future__ import annotations

from typing import Any

from sqlalchemy import event, exc, text
from sqlalchemy.engine import make_url
from sqlalchemy.engine.interfaces import DBAPIConnection
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.pool import ConnectionPoolEntry, PoolProxiedConnection

SQLITE_BUSY_TIMEOUT_MS = 30_000
"""How long an SQLite connection waits for another writer's lock."""


def is_sqlite(url: str) -> bool:
    """True for an SQLite URL."""
    return make_url(url).get_backend_name() == "sqlite"


def create_engine(url: str, *, pool_size: int = 16, echo: bool = False) -> AsyncEngine:
    """An async engine with the per-backend settings this project relies on.

    SQLite gets foreign keys switched on for every connection (they are off by default) and WAL so
    that readers do not block the single writer.
    """
    if is_sqlite(url):
        engine = create_async_engine(url, echo=echo, connect_args={"timeout": 30})

        @event.listens_for(engine.sync_engine, "connect")
        def _sqlite_pragmas(dbapi_connection: Any, record: ConnectionPoolEntry) -> None:
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
            cursor.close()

        return engine
    engine = create_async_engine(url, echo=echo, pool_size=pool_size, max_overflow=pool_size)
    event.listen(engine.sync_engine, "checkout", _ping_on_checkout)
    return engine


def _ping_on_checkout(
    dbapi_connection: DBAPIConnection,
    record: ConnectionPoolEntry,
    proxy: PoolProxiedConnection,
) -> None:
    """Replace a pooled connection the server has closed (a restart, a terminated backend)
    before anyone uses it.

    SQLAlchemy's ``pool_pre_ping`` does the same, but on asyncpg it wraps its ping in BEGIN …
    ROLLBACK: three round trips per checkout, a tenth of a small request's time. A simple
    query is one. Raising ``InvalidatePoolError`` (a ``DisconnectionError``) makes the pool
    reconnect this entry and check out again.
    """
    try:
        dbapi_connection.run_async(lambda driver: driver.execute("SELECT 1"))
    except Exception as error:  # whatever the driver raises for a dead connection
        # As the pre-ping does: one dead connection means the server may have restarted, so
        # every connection checked in before now is replaced when next checked out.
        raise exc.InvalidatePoolError(f"the pooled connection is closed: {error}") from error


def read_only(engine: AsyncEngine) -> AsyncEngine:
    """The engine for units of work that only read: on PostgreSQL in autocommit, which saves the
    BEGIN and ROLLBACK round trips of every session; it changes nothing they see (at READ
    COMMITTED each statement takes its own snapshot, in a transaction or not). Never write
    through it: each statement would commit on its own. SQLite: the engine itself."""
    if engine.dialect.name == "sqlite":
        return engine
    return engine.execution_options(isolation_level="AUTOCOMMIT")


def create_sessionmaker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    """Sessions that keep loaded attributes after commit (results outlive their unit of work)."""
    return async_sessionmaker(engine, expire_on_commit=False)


async def ping(engine: AsyncEngine) -> None:
    """Round-trip to the database (raises when it is unreachable); the readiness probe uses it."""
    async with engine.connect() as connection:
        await connection.execute(text("SELECT 1"))
