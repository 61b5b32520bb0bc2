"""Helpers of the fault tests: a PostgreSQL database of their own, a way to hold a team's ingest
lock (so a batch is reliably "in the middle" when the fault strikes), and row counts.

``db.ingest`` serializes writers of a team with ``pg_advisory_xact_lock(key)``; a test that holds
the same key with a session-level ``pg_advisory_lock`` on its own connection makes every batch
of that team wait inside its transaction (after the idempotency key and the receipt were
written) until the test lets go.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.engine import make_url
from starlette.applications import Starlette

from api.state import AppState
from db.ingest import _lock_key
from db.models import (
    DataPoint,
    DataPointChangeSet,
    IdempotencyKey,
    MeasureDataReceipt,
    Team,
)
from tests.factories import Tenant

SUBMIT = """
mutation Submit($input: SubmitMeasureDataInput!) {
  submitMeasureData(input: $input) {
    __typename
    ... on MeasureDataReceipt { receiptId status created updated unchanged rejected replayed }
    ... on Error { code message }
  }
}
"""


def asyncpg_dsn(database_url: str) -> str:
    """What ``asyncpg.connect`` takes, from a SQLAlchemy URL."""
    return make_url(database_url).set(drivername="postgresql").render_as_string(hide_password=False)


def rows_for(team: str, measure: str, count: int, *, numerator: int = 1) -> list[dict[str, Any]]:
    """``count`` valid rows of one team: one month each, from 1900-01 on."""
    return [
        {
            "team": team,
            "measure": measure,
            "period": f"{1900 + index // 12}-{index % 12 + 1:02d}",
            "numerator": numerator,
            "denominator": 10,
        }
        for index in range(count)
    ]


async def team_id(app: Starlette, tenant: Tenant, code: str) -> uuid.UUID:
    state: AppState = app.state.collabx
    async with state.sessionmaker() as session:
        found = await session.scalar(
            select(Team.id).where(Team.sponsor_id == tenant.sponsor_id, Team.code == code)
        )
    assert found is not None
    return found


async def counts(app: Starlette, tenant: Tenant, key: str | None = None) -> dict[str, int]:
    """Data points, change sets (history), receipts (of ``key`` when given) and idempotency keys."""
    state: AppState = app.state.collabx
    sponsor = tenant.sponsor_id
    result: dict[str, int] = {}
    async with state.sessionmaker() as session:
        for name, model in (
            ("points", DataPoint),
            ("history", DataPointChangeSet),
            ("receipts", MeasureDataReceipt),
            ("keys", IdempotencyKey),
        ):
            query = select(func.count()).select_from(model).where(model.sponsor_id == sponsor)
            if key is not None and model is MeasureDataReceipt:
                query = query.where(MeasureDataReceipt.idempotency_key == key)
            result[name] = int(await session.scalar(query) or 0)
    return result


class TeamLock:
    """Holds the ingest lock of some teams on a connection of its own."""

    def __init__(self, connection: Any, keys: list[int]) -> None:
        self.connection = connection
        self.keys = keys

    @property
    def pid(self) -> int:
        pid: int = self.connection.get_server_pid()
        return pid

    async def release(self) -> None:
        for key in self.keys:
            await self.connection.execute("SELECT pg_advisory_unlock($1)", key)


@asynccontextmanager
async def holding_team_locks(
    database_url: str, team_ids: list[uuid.UUID]
) -> AsyncIterator[TeamLock]:
    """While inside, batches of these teams wait in their transactions."""
    import asyncpg

    connection = await asyncpg.connect(asyncpg_dsn(database_url))
    keys = sorted(_lock_key(team) for team in team_ids)
    try:
        for key in keys:
            await connection.execute("SELECT pg_advisory_lock($1)", key)
        yield TeamLock(connection, keys)
    finally:
        await connection.close()  # releases whatever is still held


async def waiting_batches(lock: TeamLock) -> list[int]:
    """Server pids of the sessions waiting for an advisory lock in this database."""
    rows = await lock.connection.fetch(
        "SELECT pid FROM pg_stat_activity WHERE datname = current_database()"
        " AND wait_event_type = 'Lock' AND wait_event = 'advisory' AND pid <> pg_backend_pid()"
    )
    return [row["pid"] for row in rows]


async def wait_for_batches(lock: TeamLock, count: int, within: float = 20) -> list[int]:
    """Wait until ``count`` batches are blocked on the held locks; their server pids."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        pids = await waiting_batches(lock)
        if len(pids) >= count:
            return pids
        await asyncio.sleep(0.05)
    raise AssertionError(f"{count} batches did not reach the lock in {within} s")


async def terminate(lock: TeamLock, pids: list[int]) -> None:
    for pid in pids:
        await lock.connection.execute("SELECT pg_terminate_backend($1)", pid)


async def terminate_idle_pool(lock: TeamLock) -> int:
    """Kill the idle pooled connections of the app (not LISTEN connections); how many."""
    rows = await lock.connection.fetch(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
        " WHERE datname = current_database() AND pid <> pg_backend_pid()"
        " AND backend_type = 'client backend' AND state = 'idle'"
        " AND query NOT ILIKE 'LISTEN%'"
    )
    return len(rows)
