"""What the app's lifespan builds and every request shares: settings, engine, sessions, keys."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from api.auth.external import ExternalKeys
from api.auth.keys import KeyStore
from api.settings import Settings


@dataclass
class AppState:
    """Process-wide resources, created in the lifespan and stored on ``app.state.collabx``."""

    settings: Settings
    engine: AsyncEngine
    sessionmaker: async_sessionmaker[AsyncSession]
    keys: KeyStore
    external_keys: ExternalKeys | None
