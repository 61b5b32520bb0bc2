"""db.events directly: the NOTIFY envelope, delivery at commit and never on rollback (both
backends), and the PostgreSQL listener reconnecting after its connection is killed."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from db.events import (
    MAX_NOTIFY_BYTES,
    ChangeKind,
    DataChange,
    EventBus,
    EventStream,
    MeasureDataEvent,
    PostgresEventBus,
    WebhooksChanged,
    asyncpg_dsn,
    create_event_bus,
    decode_event,
    encode_event,
    publish,
)
from tests.live import wait_for


def _event(changes: int, *, collaboratives: int = 1) -> MeasureDataEvent:
    """``changes`` keys over three teams (a team belongs to one collaborative), or one team per
    key when there are more collaboratives than three."""
    teams = max(3, collaboratives)
    team_ids = [uuid.uuid4() for _ in range(teams)]
    collaborative_ids = [uuid.uuid4() for _ in range(collaboratives)]
    keys = tuple(
        DataChange(
            team_id=team_ids[n % teams],
            team_code=f"team-{n % teams}",
            collaborative_id=collaborative_ids[(n % teams) % collaboratives],
            measure_id=uuid.UUID(int=n % 2 + 1),
            measure_code=f"measure-{n % 2}",
            period=f"{2000 + n // 12:04d}-{n % 12 + 1:02d}",
            stratum="" if n % 5 else "payer:medicaid",
            kind=list(ChangeKind)[n % 3],
        )
        for n in range(changes)
    )
    return MeasureDataEvent(
        sponsor_id=uuid.uuid4(),
        receipt_id=uuid.uuid4(),
        client_id="client-1",
        operation="SUBMIT",
        status="COMPLETED",
        at=datetime(2024, 5, 1, 12, 30, 15, 123456, tzinfo=UTC),
        collaborative_ids=frozenset(c.collaborative_id for c in keys),
        changes=keys,
    )


def test_the_envelope_round_trips() -> None:
    event = _event(40, collaboratives=2)
    payload = encode_event(event)
    assert len(payload.encode()) <= MAX_NOTIFY_BYTES
    assert decode_event(payload) == event
    changed = WebhooksChanged(uuid.uuid4())
    assert decode_event(encode_event(changed)) == changed


def test_an_envelope_too_large_for_notify_names_the_receipt_only() -> None:
    event = _event(2_000)
    payload = encode_event(event)
    assert len(payload.encode()) <= MAX_NOTIFY_BYTES
    decoded = decode_event(payload)
    assert isinstance(decoded, MeasureDataEvent)
    assert decoded.changes is None
    assert decoded.receipt_id == event.receipt_id
    assert decoded.collaborative_ids == event.collaborative_ids
    assert decoded.may_concern(next(iter(event.collaborative_ids)))
    assert not decoded.may_concern(uuid.uuid4())


def test_thousands_of_collaboratives_concern_every_subscriber_of_the_sponsor() -> None:
    event = _event(600, collaboratives=600)
    decoded = decode_event(encode_event(event))
    assert isinstance(decoded, MeasureDataEvent)
    assert decoded.changes is None and not decoded.collaborative_ids
    assert decoded.may_concern(uuid.uuid4())  # the subscriber reads the receipt to know


@pytest.mark.parametrize("payload", ["", "{", "[]", '{"v": 2}', '{"v": 1, "t": "x"}', '{"v":1}'])
def test_malformed_envelopes_are_ignored(payload: str) -> None:
    assert decode_event(payload) is None


@pytest.fixture
async def bus(database_url: str) -> AsyncIterator[EventBus]:
    started = create_event_bus(database_url)
    await started.start()
    try:
        yield started
    finally:
        await started.stop()


async def _next(stream: EventStream, seconds: float = 5.0) -> MeasureDataEvent:
    return await asyncio.wait_for(stream.__anext__(), seconds)


async def _silent(stream: EventStream, seconds: float = 0.3) -> bool:
    try:
        await asyncio.wait_for(stream.__anext__(), seconds)
    except TimeoutError:
        return True
    return False


async def test_events_are_delivered_at_commit_and_never_after_a_rollback(
    bus: EventBus, sessions: async_sessionmaker[AsyncSession]
) -> None:
    mine, theirs = _event(3), _event(2)
    stream = bus.subscribe(mine.sponsor_id)
    everything = bus.subscribe(None)
    try:
        async with sessions() as session:
            await session.begin()
            await publish(session, mine)
            assert await _silent(stream)  # not before the commit
            await session.rollback()
        assert await _silent(stream)
        async with sessions.begin() as session:
            await publish(session, theirs)  # another sponsor: not in this stream
            await publish(session, mine)
        assert await _next(stream) == mine
        assert await _silent(stream)
        assert {(await _next(everything)).receipt_id for _ in range(2)} == {
            mine.receipt_id,
            theirs.receipt_id,
        }
    finally:
        stream.close()
        everything.close()
    assert bus.subscribers == 0


async def test_webhook_changes_reach_the_watchers_not_the_streams(
    bus: EventBus, sessions: async_sessionmaker[AsyncSession]
) -> None:
    seen: list[WebhooksChanged] = []
    bus.watch_webhooks(seen.append)
    changed = WebhooksChanged(uuid.uuid4())
    stream = bus.subscribe(None)
    try:
        async with sessions.begin() as session:
            await publish(session, changed)
        await wait_for(lambda: bool(seen))
        assert seen == [changed]
        assert await _silent(stream)
    finally:
        stream.close()


async def test_the_listener_reconnects_when_its_connection_is_killed(
    backend: str, bus: EventBus, sessions: async_sessionmaker[AsyncSession], database_url: str
) -> None:
    if backend != "postgresql":
        pytest.skip("SQLite has no listener connection")
    import asyncpg

    assert isinstance(bus, PostgresEventBus)
    pid = bus.backend_pid
    assert pid is not None
    admin = await asyncpg.connect(asyncpg_dsn(database_url))
    try:
        assert await admin.fetchval("SELECT pg_terminate_backend($1)", pid)
    finally:
        await admin.close()
    await wait_for(lambda: bus.reconnects >= 1 and bus.connected, seconds=10)
    assert bus.backend_pid != pid
    event = _event(1)
    stream = bus.subscribe(event.sponsor_id)
    try:
        async with sessions.begin() as session:
            await publish(session, event)
        assert await _next(stream) == event
    finally:
        stream.close()


async def test_a_slow_subscriber_loses_the_oldest_events_not_the_newest(bus: EventBus) -> None:
    event = _event(1)
    stream = bus.subscribe(None)
    try:
        for _ in range(1_005):
            bus.dispatch(event)
        assert stream.dropped == 5
        newest = _event(1)
        bus.dispatch(newest)
        for _ in range(999):
            await _next(stream)
        assert await _next(stream) == newest
    finally:
        stream.close()


async def test_publishing_without_listeners_is_harmless(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    async with sessions.begin() as session:
        await publish(session, _event(1))
        assert (await session.execute(text("SELECT 1"))).scalar() == 1
