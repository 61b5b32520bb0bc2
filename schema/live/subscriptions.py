"""Subscriptions: ``measureDataSubmitted`` and ``signalDetected`` of one collaborative.

Served over WebSocket (``graphql-transport-ws`` on ``/graphql``; authentication happens on
``connection_init`` at the edge). Both need ``program:read`` and ``data:read`` — the scopes that
read a collaborative's team-level data — and a collaborative of the caller's sponsor: another
sponsor's id, or one that does not decode, is NOT_FOUND (an ``error`` message for that
operation), exactly like a missing one. Every event is filtered for the subscriber: EHR
integrations see only changes and signals of their own teams and no event without any.

The resolver registers the subscriber before it returns, so an event committed after the
server has processed the ``subscribe`` message is delivered; one committed before is not.
"""

from __future__ import annotations

import logging
import uuid
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Generic, TypeVar

import strawberry
from strawberry.dataloader import DataLoader

from db.events import EventStream, MeasureDataEvent
from db.live import LiveEvents
from db.queries.collaboratives import collaboratives_by_ids
from schema.context import Info
from schema.errors import PublicError
from schema.ids import row_id_of
from schema.live.types import MeasureDataSubmittedEvent, SignalDetectedEvent
from schema.permissions import HasScope, require_principal
from schema.principal import Principal

logger = logging.getLogger("collabx.live")

ItemT = TypeVar("ItemT")

READ_SCOPES = [HasScope("program:read"), HasScope("data:read")]


class _Feed(AsyncIterator[ItemT], Generic[ItemT]):
    """The subscriber's items: events of a stream, each converted to zero or more items.

    Closing the feed (graphql-core does when the operation ends) closes the stream, so the bus
    forgets the subscriber at once. A conversion that fails (the database is briefly away) is
    logged and skipped; the subscription goes on.
    """

    def __init__(
        self,
        stream: EventStream,
        convert: Callable[[MeasureDataEvent], Awaitable[list[ItemT]]],
    ) -> None:
        self._stream = stream
        self._convert = convert
        self._pending: deque[ItemT] = deque()

    def __aiter__(self) -> AsyncIterator[ItemT]:
        return self

    async def __anext__(self) -> ItemT:
        while not self._pending:
            event = await self._stream.__anext__()
            try:
                self._pending.extend(await self._convert(event))
            except Exception:
                logger.exception("could not prepare event %s for a subscriber", event.event_id)
        return self._pending.popleft()

    async def aclose(self) -> None:
        """End the subscription."""
        self._stream.close()


async def _open(
    info: Info, collaborative: str
) -> tuple[Principal, LiveEvents, EventStream, uuid.UUID]:
    """The caller, the live events, a stream of its sponsor's events and the collaborative's
    row id — once the collaborative is known to be the caller's."""
    principal = require_principal(info)
    events = info.context.events
    if events is None:
        raise PublicError("live events are not available on this server", "UNAVAILABLE")
    row_id = row_id_of(collaborative, "Collaborative")
    found = None
    if row_id is not None:
        async with info.context.db() as session:
            found = (await collaboratives_by_ids(session, principal.sponsor_id, [row_id]))[0]
    if found is None:
        raise PublicError(f"no collaborative with the id {collaborative[:80]!r}", "NOT_FOUND")
    return principal, events, events.subscribe(principal.sponsor_id), found.id


def _fresh_loaders(info: Info) -> None:
    """A connection's context lives as long as the socket: forget what loaders cached before,
    so each event shows the current collaborative (and memory does not grow)."""
    for loader in vars(info.context.loaders).values():
        if isinstance(loader, DataLoader):
            loader.clear_all()


@strawberry.type
class LiveSubscriptions:
    @strawberry.subscription(
        description=(
            "Measure data of a collaborative as it is committed (submissions and deletions "
            "that changed at least one point): the receipt and the changed (team, measure, "
            "period) keys. Needs program:read and data:read."
        ),
        permission_classes=READ_SCOPES,
    )
    async def measure_data_submitted(
        self,
        info: Info,
        collaborative: strawberry.ID,
    ) -> AsyncIterator[MeasureDataSubmittedEvent]:
        principal, events, stream, collaborative_id = await _open(info, str(collaborative))

        async def convert(event: MeasureDataEvent) -> list[MeasureDataSubmittedEvent]:
            if not event.may_concern(collaborative_id):
                return []
            changes = [
                change
                for change in await events.changes(event)
                if change.collaborative_id == collaborative_id
                and (not principal.is_team_bound or change.team_id in principal.team_ids)
            ]
            if not changes:
                return []
            _fresh_loaders(info)
            return [MeasureDataSubmittedEvent.build(event, collaborative_id, changes, principal)]

        return _Feed(stream, convert)

    @strawberry.subscription(
        description=(
            "Run- and control-chart signals that appear on a team's series of the collaborative "
            "when new data is committed (IMPROVEMENT or CONCERN by the measure's direction). "
            "Needs program:read and data:read."
        ),
        permission_classes=READ_SCOPES,
    )
    async def signal_detected(
        self,
        info: Info,
        collaborative: strawberry.ID,
    ) -> AsyncIterator[SignalDetectedEvent]:
        principal, events, stream, collaborative_id = await _open(info, str(collaborative))

        async def convert(event: MeasureDataEvent) -> list[SignalDetectedEvent]:
            if not event.may_concern(collaborative_id):
                return []
            signals = [
                signal
                for signal in await events.signals(event)
                if signal.collaborative_id == collaborative_id
                and (not principal.is_team_bound or signal.team_id in principal.team_ids)
            ]
            if signals:
                _fresh_loaders(info)
            return [SignalDetectedEvent.build(signal, event.at) for signal in signals]

        return _Feed(stream, convert)
