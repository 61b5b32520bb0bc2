"""One process's view of the live events: the bus, plus what subscribers derive from an event.

Every GraphQL subscription and the webhook dispatcher of a process share one :class:`LiveEvents`
(built in the app's lifespan, handed to resolvers through the schema Context). Work derived from
an event — its changed keys when the notification carried none, the chart signals it made
appear — is done once per process however many subscribers ask (concurrent askers await the same
task), and only when someone asks.
"""

from __future__ import annotations

import asyncio
import uuid
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from typing import TypeVar

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from db.events import DataChange, EventBus, EventStream, MeasureDataEvent
from db.queries.live import DetectedSignal, detect_signals, load_changes

T = TypeVar("T")

CACHE_SIZE = 256
"""Events whose derived data a process keeps (the newest)."""


class LiveEvents:
    """The event bus of a process and the per-event derivations its subscribers share."""

    def __init__(self, bus: EventBus, sessionmaker: async_sessionmaker[AsyncSession]) -> None:
        self.bus = bus
        self._sessionmaker = sessionmaker
        self._cache: OrderedDict[tuple[str, uuid.UUID], asyncio.Task[object]] = OrderedDict()

    def subscribe(self, sponsor_id: uuid.UUID | None) -> EventStream:
        """A stream of the events of one sponsor (None: every sponsor's)."""
        return self.bus.subscribe(sponsor_id)

    async def changes(self, event: MeasureDataEvent) -> tuple[DataChange, ...]:
        """The points the event's call changed (read back when the notification had no room)."""
        if event.changes is not None:
            return event.changes

        async def load() -> tuple[DataChange, ...]:
            async with self._sessionmaker() as session:
                return await load_changes(session, event.sponsor_id, event.receipt_id)

        return await self._once("changes", event.receipt_id, load)

    async def signals(self, event: MeasureDataEvent) -> tuple[DetectedSignal, ...]:
        """The run- and control-chart signals the event's call made appear."""

        async def detect() -> tuple[DetectedSignal, ...]:
            changes = await self.changes(event)
            async with self._sessionmaker() as session:
                found = await detect_signals(session, event.sponsor_id, event.receipt_id, changes)
            return tuple(found)

        return await self._once("signals", event.receipt_id, detect)

    async def _once(self, kind: str, receipt_id: uuid.UUID, work: Callable[[], Awaitable[T]]) -> T:
        key = (kind, receipt_id)
        task = self._cache.get(key)
        if task is None:

            async def run() -> object:
                return await work()

            task = asyncio.ensure_future(run())
            self._cache[key] = task
            while len(self._cache) > CACHE_SIZE:
                self._cache.popitem(last=False)
        else:
            self._cache.move_to_end(key)
        try:
            result = await asyncio.shield(task)
        except Exception:
            if self._cache.get(key) is task:
                del self._cache[key]  # a failure (database gone) is not remembered
            raise
        return result  # type: ignore[return-value]  # the task of ``key`` ran ``work``
