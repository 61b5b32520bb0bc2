"""Live events: which measure data a call changed, announced after commit to every API process.

Publishing happens inside the writing transaction (:func:`publish`, called by :mod:`db.ingest`),
so an event exists exactly when the data does:

* **PostgreSQL** — ``SELECT pg_notify('collabx_events', <envelope>)`` in the same transaction.
  PostgreSQL delivers a notification only when its transaction commits (never on rollback), to
  every session that LISTENs on the channel — each API process holds one dedicated asyncpg
  connection for that (:class:`PostgresEventBus`, reconnected when it drops). A notification
  carries at most 8000 bytes: the envelope is compact JSON naming the receipt, the
  collaboratives and the changed keys; when the keys do not fit it names the receipt only and
  listeners read the keys back from the database (:func:`db.queries.live.load_changes`).
* **SQLite** — one process only: the event waits in the session until SQLAlchemy's
  ``after_commit`` (dropped on rollback) and then goes to the buses of this process that serve
  the same database file (:class:`LocalEventBus`).

Subscribers (GraphQL subscriptions, the webhook dispatcher) call :meth:`EventBus.subscribe` and
iterate the events of one sponsor (or all). One control event travels the same way:
:class:`WebhooksChanged`, published when a sponsor's webhooks are created or deleted, so that
every process's webhook dispatcher knows which sponsors to look up at all.

Each stream has a bounded queue: a subscriber that falls more than :data:`STREAM_BUFFER` events
behind loses the oldest ones (logged), so a slow socket can never hold the process's memory.
Notifications sent while a listener reconnects are lost (NOTIFY is not durable); readers that
must not miss data page the delta export.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import json
import logging
import os
import uuid
import weakref
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import event as sa_event
from sqlalchemy import text
from sqlalchemy.engine import URL, make_url
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session

logger = logging.getLogger("collabx.events")

CHANNEL = "collabx_events"
"""The PostgreSQL notification channel of every CollabX event."""
MAX_NOTIFY_BYTES = 7_900
"""Largest envelope sent with pg_notify (PostgreSQL's limit is 8000 bytes)."""
STREAM_BUFFER = 1_000
"""Events one subscriber may lag behind before the oldest are dropped."""
ENVELOPE_VERSION = 1

_PENDING = "collabx.events.pending"
_HOOKED = "collabx.events.hooked"


class ChangeKind(enum.StrEnum):
    """What a call did to one data point."""

    CREATED = "CREATED"
    """A new point (or a deleted one submitted again)."""
    UPDATED = "UPDATED"
    """New values for an existing point."""
    DELETED = "DELETED"
    """The point was deleted (it left a tombstone)."""


_KIND_LETTERS = {ChangeKind.CREATED: "C", ChangeKind.UPDATED: "U", ChangeKind.DELETED: "D"}
_LETTER_KINDS = {letter: kind for kind, letter in _KIND_LETTERS.items()}


@dataclass(frozen=True)
class DataChange:
    """One data point a call changed, with the codes a subscriber sees and the ids to filter by."""

    team_id: uuid.UUID
    team_code: str
    collaborative_id: uuid.UUID
    measure_id: uuid.UUID
    measure_code: str
    period: str
    stratum: str
    kind: ChangeKind


@dataclass(frozen=True)
class MeasureDataEvent:
    """A committed submission or deletion that changed at least one point.

    ``changes`` is None when the envelope had no room for them (load them with
    :func:`db.queries.live.load_changes`); ``collaborative_ids`` is then still complete, unless
    it is empty too (a call spanning thousands of collaboratives): see :meth:`may_concern`.
    """

    sponsor_id: uuid.UUID
    receipt_id: uuid.UUID
    client_id: str
    operation: str
    status: str
    at: datetime
    collaborative_ids: frozenset[uuid.UUID]
    changes: tuple[DataChange, ...] | None

    def may_concern(self, collaborative_id: uuid.UUID) -> bool:
        """False when the event surely changed nothing of the collaborative."""
        if collaborative_id in self.collaborative_ids:
            return True
        return not self.collaborative_ids and self.changes is None

    @property
    def event_id(self) -> str:
        """Stable id of this event (the same in every process)."""
        return f"measure-data:{self.receipt_id}"


@dataclass(frozen=True)
class WebhooksChanged:
    """A sponsor's webhooks were created or deleted (processes refresh what they know)."""

    sponsor_id: uuid.UUID


BusEvent = MeasureDataEvent | WebhooksChanged
"""What travels on the bus: data events for subscribers, and a control event for dispatchers."""


# --- the envelope ----------------------------------------------------------------------------


def encode_event(event: BusEvent, *, limit: int = MAX_NOTIFY_BYTES) -> str:
    """The compact JSON envelope of an event, at most ``limit`` bytes (changes left out when they
    do not fit; the receipt id is enough to read them back)."""
    if isinstance(event, WebhooksChanged):
        return _dumps({"v": ENVELOPE_VERSION, "t": "webhooks", "s": str(event.sponsor_id)})
    head: dict[str, Any] = {
        "v": ENVELOPE_VERSION,
        "t": "measure_data",
        "s": str(event.sponsor_id),
        "r": str(event.receipt_id),
        "c": event.client_id,
        "o": event.operation,
        "st": event.status,
        "at": event.at.isoformat(),
        "cs": sorted(str(c) for c in event.collaborative_ids),
    }
    full = dict(head)
    # Each key takes at least ~20 bytes: beyond this many they cannot fit, so skip building them.
    if event.changes is not None and len(event.changes) <= limit // 20:
        teams: dict[uuid.UUID, int] = {}
        measures: dict[uuid.UUID, int] = {}
        team_rows: list[list[str]] = []
        measure_rows: list[list[str]] = []
        keys: list[list[Any]] = []
        for change in event.changes:
            if change.team_id not in teams:
                teams[change.team_id] = len(team_rows)
                team_rows.append(
                    [str(change.team_id), change.team_code, str(change.collaborative_id)]
                )
            if change.measure_id not in measures:
                measures[change.measure_id] = len(measure_rows)
                measure_rows.append([str(change.measure_id), change.measure_code])
            keys.append(
                [
                    teams[change.team_id],
                    measures[change.measure_id],
                    change.period,
                    change.stratum,
                    _KIND_LETTERS[change.kind],
                ]
            )
        full.update(tm=team_rows, ms=measure_rows, k=keys)
    payload = _dumps(full)
    if len(payload.encode("utf-8")) <= limit:
        return payload
    payload = _dumps(head)
    if len(payload.encode("utf-8")) <= limit:
        return payload
    # Thousands of collaboratives in one call: listeners of the sponsor read the receipt.
    return _dumps({**head, "cs": None})


def _dumps(document: dict[str, Any]) -> str:
    return json.dumps(document, separators=(",", ":"), ensure_ascii=False)


def decode_event(payload: str) -> BusEvent | None:
    """The event of an envelope, or None for one this version does not understand."""
    try:
        document = json.loads(payload)
        if not isinstance(document, dict) or document.get("v") != ENVELOPE_VERSION:
            return None
        if document.get("t") == "webhooks":
            return WebhooksChanged(uuid.UUID(document["s"]))
        if document.get("t") != "measure_data":
            return None
        collaboratives = document.get("cs")
        changes: tuple[DataChange, ...] | None = None
        if "k" in document:
            teams = [(uuid.UUID(t[0]), str(t[1]), uuid.UUID(t[2])) for t in document["tm"]]
            measures = [(uuid.UUID(m[0]), str(m[1])) for m in document["ms"]]
            changes = tuple(
                DataChange(
                    team_id=teams[k[0]][0],
                    team_code=teams[k[0]][1],
                    collaborative_id=teams[k[0]][2],
                    measure_id=measures[k[1]][0],
                    measure_code=measures[k[1]][1],
                    period=str(k[2]),
                    stratum=str(k[3]),
                    kind=_LETTER_KINDS[k[4]],
                )
                for k in document["k"]
            )
        collaborative_ids = (
            frozenset(uuid.UUID(c) for c in collaboratives)
            if collaboratives is not None
            else frozenset()
        )
        return MeasureDataEvent(
            sponsor_id=uuid.UUID(document["s"]),
            receipt_id=uuid.UUID(document["r"]),
            client_id=str(document["c"]),
            operation=str(document["o"]),
            status=str(document["st"]),
            at=datetime.fromisoformat(document["at"]).astimezone(UTC),
            collaborative_ids=collaborative_ids,
            changes=changes,
        )
    except (ValueError, KeyError, IndexError, TypeError):
        logger.warning("ignored a malformed event envelope: %.200s", payload)
        return None


# --- publishing ------------------------------------------------------------------------------


def _database_key(url: URL) -> str:
    """The identity of a database in this process (an SQLite file by its absolute path)."""
    if url.get_backend_name() == "sqlite":
        database = url.database or ""
        if database and database != ":memory:":
            return "sqlite:" + os.path.abspath(database)
        return "sqlite:" + database
    return url.render_as_string(hide_password=True)


_LOCAL_BUSES: dict[str, set[LocalEventBus]] = {}


async def publish(session: AsyncSession, event: BusEvent) -> None:
    """Announce ``event`` when the session's transaction commits (and never if it rolls back)."""
    bind = session.get_bind()
    if bind.dialect.name == "postgresql":
        await session.execute(
            text("SELECT pg_notify(:channel, :payload)"),
            {"channel": CHANNEL, "payload": encode_event(event)},
        )
        return
    if not _LOCAL_BUSES.get(_database_key(bind.engine.url)):
        return  # nobody in this process listens to this database
    sync_session = session.sync_session
    sync_session.info.setdefault(_PENDING, []).append(event)
    if not sync_session.info.get(_HOOKED):
        sync_session.info[_HOOKED] = True
        sa_event.listen(sync_session, "after_commit", _deliver_pending)
        sa_event.listen(sync_session, "after_rollback", _drop_pending)


def _deliver_pending(session: Session) -> None:
    pending: list[BusEvent] = session.info.pop(_PENDING, [])
    if not pending:
        return
    bind = session.get_bind()
    for bus in list(_LOCAL_BUSES.get(_database_key(bind.engine.url), ())):
        for event in pending:
            bus.dispatch_threadsafe(event)


def _drop_pending(session: Session) -> None:
    session.info.pop(_PENDING, None)


# --- subscribing -----------------------------------------------------------------------------


class EventStream:
    """The events of one subscriber, in commit order; iterate it, close it when done."""

    def __init__(self, bus: EventBus, sponsor_id: uuid.UUID | None) -> None:
        self.sponsor_id = sponsor_id
        self.dropped = 0
        self._bus = bus
        self._queue: asyncio.Queue[MeasureDataEvent | None] = asyncio.Queue(STREAM_BUFFER)
        self._closed = False

    def offer(self, event: MeasureDataEvent) -> None:
        """Queue an event; the oldest is dropped when the subscriber lags too far behind."""
        if self._closed or (self.sponsor_id is not None and event.sponsor_id != self.sponsor_id):
            return
        if self._queue.full():
            with contextlib.suppress(asyncio.QueueEmpty):
                self._queue.get_nowait()
            self.dropped += 1
            logger.warning("a slow event subscriber dropped an event (%d so far)", self.dropped)
        self._queue.put_nowait(event)

    def close(self) -> None:
        """Stop receiving; a pending ``next`` ends the iteration."""
        if self._closed:
            return
        self._closed = True
        self._bus.unsubscribe(self)
        with contextlib.suppress(asyncio.QueueFull):
            self._queue.put_nowait(None)

    @property
    def closed(self) -> bool:
        """True once closed."""
        return self._closed

    def __aiter__(self) -> AsyncIterator[MeasureDataEvent]:
        return self

    async def __anext__(self) -> MeasureDataEvent:
        if self._closed and self._queue.empty():
            raise StopAsyncIteration
        item = await self._queue.get()
        if item is None:
            raise StopAsyncIteration
        return item


class EventBus:
    """Fans events out to this process's subscribers; subclasses say where events come from."""

    reconnects = 0
    """How often the bus had to reconnect (events may have been missed each time)."""

    def __init__(self) -> None:
        # Weak: a stream whose subscriber vanished without closing it is simply forgotten.
        self._streams: weakref.WeakSet[EventStream] = weakref.WeakSet()
        self._watchers: list[Callable[[WebhooksChanged], None]] = []
        self._loop: asyncio.AbstractEventLoop | None = None

    @property
    def subscribers(self) -> int:
        """How many streams are open."""
        return len(self._streams)

    @property
    def connected(self) -> bool:
        """True while events can arrive."""
        return self._loop is not None

    async def start(self) -> None:
        """Begin receiving events (in the lifespan)."""
        self._loop = asyncio.get_running_loop()

    async def stop(self) -> None:
        """Stop receiving and end every stream."""
        for stream in list(self._streams):
            stream.close()
        self._loop = None

    def subscribe(self, sponsor_id: uuid.UUID | None) -> EventStream:
        """A stream of the events of one sponsor (None: of every sponsor)."""
        stream = EventStream(self, sponsor_id)
        self._streams.add(stream)
        return stream

    def unsubscribe(self, stream: EventStream) -> None:
        """Forget a stream (its ``close`` calls this)."""
        self._streams.discard(stream)

    def watch_webhooks(self, callback: Callable[[WebhooksChanged], None]) -> None:
        """Call ``callback`` (in the bus's loop) whenever a sponsor's webhooks change."""
        self._watchers.append(callback)

    def dispatch(self, event: BusEvent) -> None:
        """Hand an event to every stream, or a control event to the watchers (in the bus's
        event loop)."""
        if isinstance(event, WebhooksChanged):
            for callback in list(self._watchers):
                callback(event)
            return
        for stream in list(self._streams):
            stream.offer(event)

    def dispatch_threadsafe(self, event: BusEvent) -> None:
        """:meth:`dispatch` from any thread (a commit may run outside the bus's loop)."""
        loop = self._loop
        if loop is None or loop.is_closed():
            return
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is loop:
            self.dispatch(event)
        else:
            loop.call_soon_threadsafe(self.dispatch, event)


class LocalEventBus(EventBus):
    """SQLite: events of commits made in this process on the same database file."""

    def __init__(self, database_url: str) -> None:
        super().__init__()
        self._key = _database_key(make_url(database_url))

    async def start(self) -> None:
        await super().start()
        _LOCAL_BUSES.setdefault(self._key, set()).add(self)

    async def stop(self) -> None:
        buses = _LOCAL_BUSES.get(self._key)
        if buses is not None:
            buses.discard(self)
            if not buses:
                del _LOCAL_BUSES[self._key]
        await super().stop()


def asyncpg_dsn(database_url: str) -> str:
    """The libpq-style DSN asyncpg takes, from a SQLAlchemy URL."""
    url = make_url(database_url).set(drivername="postgresql")
    return url.render_as_string(hide_password=False)


class PostgresEventBus(EventBus):
    """PostgreSQL: LISTEN on a dedicated asyncpg connection, reconnected when it drops.

    A supervisor task pings the connection every ``health_interval`` seconds (a silently dead
    TCP connection is noticed too) and reconnects with exponential backoff up to
    ``max_backoff`` seconds; ``reconnects`` counts how often.
    """

    def __init__(
        self, database_url: str, *, health_interval: float = 10.0, max_backoff: float = 30.0
    ) -> None:
        super().__init__()
        self._dsn = asyncpg_dsn(database_url)
        self._health_interval = health_interval
        self._max_backoff = max_backoff
        self._connection: Any = None
        self._task: asyncio.Task[None] | None = None
        self._wake = asyncio.Event()
        self._stopping = False

    @property
    def connected(self) -> bool:
        connection = self._connection
        return connection is not None and not connection.is_closed()

    @property
    def backend_pid(self) -> int | None:
        """The server process of the listening connection (tests terminate it)."""
        connection = self._connection
        if connection is None or connection.is_closed():
            return None
        pid: int = connection.get_server_pid()
        return pid

    async def start(self) -> None:
        await super().start()
        self._stopping = False
        self._wake = asyncio.Event()
        try:
            await self._connect()
        except Exception as exc:  # retried by the supervisor
            logger.warning("event listener could not connect yet: %s", exc)
        self._task = asyncio.create_task(self._supervise(), name="collabx-event-listener")

    async def stop(self) -> None:
        self._stopping = True
        self._wake.set()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        await self._disconnect()
        await super().stop()

    async def _connect(self) -> None:
        import asyncpg

        connection = await asyncpg.connect(self._dsn, timeout=10)
        try:
            await connection.add_listener(CHANNEL, self._on_notification)
        except BaseException:
            await connection.close()
            raise
        connection.add_termination_listener(self._on_termination)
        self._connection = connection
        logger.info("listening for events on %s", CHANNEL)

    async def _disconnect(self) -> None:
        connection, self._connection = self._connection, None
        if connection is None or connection.is_closed():
            return
        try:
            await asyncio.wait_for(connection.close(), timeout=2)
        except Exception:
            connection.terminate()

    def _on_notification(self, connection: Any, pid: int, channel: str, payload: str) -> None:
        event = decode_event(payload)
        if event is not None:
            self.dispatch(event)

    def _on_termination(self, connection: Any) -> None:
        if not self._stopping:
            logger.warning("event listener connection closed; reconnecting")
            self._wake.set()

    async def _supervise(self) -> None:
        backoff = 0.1
        while not self._stopping:
            if self.connected:
                with contextlib.suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), timeout=self._health_interval)
                self._wake.clear()
                if self._stopping:
                    return
                if self.connected and not await self._healthy():
                    await self._disconnect()
                continue
            await self._disconnect()
            try:
                await self._connect()
            except Exception as exc:
                logger.warning("event listener reconnect failed (retry in %.1fs): %s", backoff, exc)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, self._max_backoff)
                continue
            self.reconnects += 1
            backoff = 0.1

    async def _healthy(self) -> bool:
        try:
            await asyncio.wait_for(self._connection.fetchval("SELECT 1"), timeout=5)
        except Exception:
            return False
        return True


def create_event_bus(database_url: str) -> EventBus:
    """The bus for a database: LISTEN/NOTIFY on PostgreSQL, in-process on SQLite."""
    if make_url(database_url).get_backend_name() == "postgresql":
        return PostgresEventBus(database_url)
    return LocalEventBus(database_url)
