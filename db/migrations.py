"""Running alembic from code: upgrade to head, check the revision, find the config.

The CLI (``collabx migrate``), the app's readiness probe and the tests all go through here.
"""

from __future__ import annotations

import os
from pathlib import Path

from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.ext.asyncio import AsyncEngine

from alembic import command

PROJECT_ROOT = Path(__file__).resolve().parent.parent

HAND_MADE_OBJECTS: tuple[str, ...] = ("resources_fts", "ix_resources_search")
"""Name prefixes of objects created by hand in migrations (FTS5 table and triggers, GIN index),
which autogenerate cannot model and must ignore."""


def database_url_from_environment() -> str:
    """``COLLABX_DATABASE_URL`` or the embedded SQLite default."""
    return os.environ.get("COLLABX_DATABASE_URL", "sqlite+aiosqlite:///var/collabx.db")


def alembic_config(database_url: str) -> Config:
    """An alembic Config for this project pointed at ``database_url``."""
    config = Config(str(PROJECT_ROOT / "alembic.ini"))
    config.set_main_option("script_location", str(PROJECT_ROOT / "alembic"))
    config.attributes["database_url"] = database_url
    config.attributes["configure_logging"] = False
    return config


def upgrade_to_head(database_url: str) -> None:
    """Apply every migration (synchronous: alembic's env runs its own event loop)."""
    command.upgrade(alembic_config(database_url), "head")


def head_revision(database_url: str) -> str | None:
    """The newest revision in the migration scripts."""
    return ScriptDirectory.from_config(alembic_config(database_url)).get_current_head()


async def current_revision(engine: AsyncEngine) -> str | None:
    """The revision the database is at (None when it was never migrated)."""
    async with engine.connect() as connection:
        return await connection.run_sync(
            lambda sync: MigrationContext.configure(sync).get_current_revision()
        )
