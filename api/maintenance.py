"""Periodic upkeep every API process runs in the background: purging idempotency keys past
their expiry (they are kept 24 h; without a purge the table only grows).

Several processes purging at once is harmless: each deletes what has expired. A failure (the
database away) is logged and retried at the next interval; it never stops the process.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from api.state import AppState
from db.availability import is_unavailable
from db.ingest import delete_expired_idempotency_keys

logger = logging.getLogger("collabx.maintenance")


class Maintenance:
    """The background upkeep of one process (``COLLABX_MAINTENANCE_INTERVAL_SECONDS``)."""

    def __init__(self, state: AppState) -> None:
        self._state = state
        self._interval = state.settings.maintenance_interval_seconds
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        """Start the loop (not when the interval is 0)."""
        if self._interval > 0:
            self._task = asyncio.create_task(self._loop(), name="collabx-maintenance")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def run_once(self) -> int:
        """Purge expired idempotency keys now; how many went."""
        async with self._state.sessionmaker.begin() as session:
            removed = await delete_expired_idempotency_keys(session)
        if removed:
            logger.info("purged %d expired idempotency keys", removed)
        return removed

    async def _loop(self) -> None:
        while True:
            try:
                await self.run_once()
            except Exception as exc:  # the next interval retries; the process carries on
                if is_unavailable(exc):
                    logger.warning("maintenance skipped: database unavailable")
                else:
                    logger.exception("maintenance failed")
            await asyncio.sleep(self._interval)
