"""What the app's lifespan builds and every request shares: settings, engine, sessions, keys."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from api.auth.external import ExternalKeys
from api.auth.keys import KeyStore
from api.settings import Settings

if TYPE_CHECKING:
    from api.metrics import Metrics
    from api.ratelimit import RateLimiter
    from api.webhooks import WebhookDispatcher
    from db.live import LiveEvents


@dataclass
class AppState:
    """Process-wide resources, created in the lifespan and stored on ``app.state.collabx``."""

    settings: Settings
    engine: AsyncEngine
    sessionmaker: async_sessionmaker[AsyncSession]
    read_engine: AsyncEngine
    """The engine for reads only (``db.sessions.read_only``)."""
    read_sessionmaker: async_sessionmaker[AsyncSession]
    """Sessions that only read (autocommit on PostgreSQL: never write through them)."""
    keys: KeyStore
    external_keys: ExternalKeys | None
    metrics: Metrics | None = None
    rate_limiter: RateLimiter | None = None
    events: LiveEvents | None = None
    webhooks: WebhookDispatcher | None = None
