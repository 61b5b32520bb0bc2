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

SOURCE_ROOT = Path(__file__).resolve().parent.parent


def project_root() -> Path:
    """Where ``alembic.ini`` and ``alembic/`` are: the source checkout (editable installs, tests)
    or else the working directory (a non-editable install, as in the Docker image's /app)."""
    for candidate in (SOURCE_ROOT, Path.cwd()):
        if (candidate / "alembic.ini").is_file() and (candidate / "alembic").is_dir():
            return candidate
    raise FileNotFoundError(
        "alembic.ini and alembic/ not found next to the db package or in the working directory"
    )


HAND_MADE_OBJECTS: tuple[str, ...] = ("resources_fts", "ix_resources_search")
"""Name prefixes of objects created by hand in migrations (FTS5 table and triggers, GIN index),
which autogenerate cannot model and must ignore."""


def database_url_from_environment() -> str:
    """``COLLABX_DATABASE_URL`` or the embedded SQLite default."""
    return os.environ.get("COLLABX_DATABASE_URL", "sqlite+aiosqlite:///var/collabx.db")


def alembic_config(database_url: str) -> Config:
    """An alembic Config for this project pointed at ``database_url``."""
    root = project_root()
    config = Config(str(root / "alembic.ini"))
    config.set_main_option("script_location", str(root / "alembic"))
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
