"""Periodic upkeep every API process runs in the background: purging idempotency keys past
their expiry (they are kept 24 h; without a purge the table only grows), and recomputing the
aggregate rollups of series that changed since they were last read (so that a series nobody
reads does not pile up change rows, and the next dashboard finds it stored).

Several processes purging at once is harmless: each deletes what has expired. A failure (the
database away) is logged and retried at the next interval; it never stops the process.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid

from api.state import AppState
from db.availability import is_unavailable
from db.ingest import delete_expired_idempotency_keys
from db.queries.rollups import PendingGroup, pending_groups, refresh_group, store_refresh

logger = logging.getLogger("collabx.maintenance")

ROLLUP_GROUPS_PER_PASS = 200
"""Changed (sponsor, stratum, measure) a refresh pass reads at a time."""
ROLLUP_SECONDS_PER_RUN = 5.0
"""Time a run spends refreshing rollups before leaving the rest to the next interval (reads
refresh what they need meanwhile)."""


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

    async def run_once(self, *, rollups: bool = True) -> int:
        """Purge expired idempotency keys now; how many went. Then refresh changed rollups."""
        async with self._state.sessionmaker.begin() as session:
            removed = await delete_expired_idempotency_keys(session)
        if removed:
            logger.info("purged %d expired idempotency keys", removed)
        if rollups:
            await self.refresh_rollups()
        return removed

    async def refresh_rollups(
        self, budget_seconds: float = ROLLUP_SECONDS_PER_RUN, sponsor_id: uuid.UUID | None = None
    ) -> int:
        """Recompute and store series with pending changes (of one sponsor when given) for
        about ``budget_seconds``; how many were stored. Each group is read in a session of its
        own and stored in a short transaction of its own; a group that fails is logged and
        skipped (the others still get their turn)."""
        deadline = time.monotonic() + budget_seconds
        stored = 0
        failed: set[PendingGroup] = set()
        while time.monotonic() < deadline:
            async with self._state.sessionmaker() as session:
                groups = await pending_groups(
                    session, limit=ROLLUP_GROUPS_PER_PASS, sponsor_id=sponsor_id
                )
            todo = [group for group in groups if group not in failed]
            if not todo:
                break
            progress = 0
            for group in todo:
                if time.monotonic() >= deadline:
                    break
                try:
                    progress += await self._refresh(group)
                except Exception as exc:
                    if is_unavailable(exc):
                        raise
                    failed.add(group)
                    logger.exception("rollups of one sponsor's measures not refreshed")
            stored += progress
            if not progress:  # only failing or racing series remain: next time
                break
        if stored:
            logger.info("refreshed %d aggregate series", stored)
        return stored

    async def _refresh(self, group: PendingGroup) -> int:
        async with self._state.sessionmaker() as session:
            refresh = await refresh_group(session, group)
        if refresh is None:
            return 0
        async with self._state.sessionmaker.begin() as session:
            return await store_refresh(session, refresh)

    async def _loop(self) -> None:
        # Keys are purged at start (a process restarted more often than the interval still
        # purges); rollups from the first interval on, so a new process serves its first
        # requests undisturbed and a fleet restarting at once does not recompute all at once.
        rollups = False
        while True:
            try:
                await self.run_once(rollups=rollups)
            except Exception as exc:  # the next interval retries; the process carries on
                if is_unavailable(exc):
                    logger.warning("maintenance skipped: database unavailable")
                else:
                    logger.exception("maintenance failed")
            rollups = True
            await asyncio.sleep(self._interval)
