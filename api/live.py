"""The live-update services of one process, started and stopped by the app's lifespan: the
event bus (LISTEN/NOTIFY on PostgreSQL, in-process on SQLite), what subscribers share, and the
webhook dispatcher."""

from __future__ import annotations

import logging

from api.state import AppState
from api.webhooks import WebhookDispatcher
from db.events import create_event_bus
from db.live import LiveEvents

logger = logging.getLogger("collabx.live")


async def start_live(state: AppState) -> None:
    """Start listening for events; subscriptions and webhooks then find them on ``state``."""
    bus = create_event_bus(state.settings.database_url)
    await bus.start()
    state.events = LiveEvents(bus, state.sessionmaker)
    state.webhooks = WebhookDispatcher(state, state.events)
    await state.webhooks.start()


async def stop_live(state: AppState) -> None:
    """Stop sending webhooks and listening (every open subscription ends)."""
    webhooks, state.webhooks = state.webhooks, None
    if webhooks is not None:
        await webhooks.stop()
    events, state.events = state.events, None
    if events is not None:
        await events.bus.stop()
