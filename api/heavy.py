"""A per-process gate for heavy GraphQL operations.

A dashboard query over 50 teams and their series builds tens of megabytes of Python objects
before its answer is encoded. Sixteen of them at once hold all of that at the same time, while
on a machine of a few cores they finish no sooner than one after another. Operations whose cost
(the rate limiter's, schema/limits.py) reaches ``COLLABX_HEAVY_QUERY_COST`` therefore wait for one
of ``COLLABX_HEAVY_QUERY_CONCURRENCY`` slots; lighter ones never wait.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator


class GateBusy(Exception):
    """A heavy operation waited ``wait_seconds`` for a slot in vain (answered 503)."""


class HeavyQueryGate:
    """At most ``concurrency`` operations of cost >= ``threshold`` run at once (0: no limit);
    one waits at most ``wait_seconds`` for its turn, then :class:`GateBusy`."""

    def __init__(self, *, threshold: int, concurrency: int, wait_seconds: float = 30.0) -> None:
        self.threshold = threshold
        self.concurrency = concurrency
        self.wait_seconds = wait_seconds
        self._slots = asyncio.Semaphore(concurrency) if concurrency > 0 else None
        self.running = 0
        self.most_running = 0

    def is_heavy(self, cost: int) -> bool:
        return self._slots is not None and cost >= self.threshold

    @contextlib.asynccontextmanager
    async def slot(self, cost: int) -> AsyncIterator[None]:
        """Hold a slot while an operation of ``cost`` runs (at once when it is light)."""
        if not self.is_heavy(cost):
            yield
            return
        assert self._slots is not None
        try:
            async with asyncio.timeout(self.wait_seconds):
                await self._slots.acquire()
        except TimeoutError as exc:
            raise GateBusy(f"no slot for a heavy operation within {self.wait_seconds:g} s") from exc
        self.running += 1
        self.most_running = max(self.most_running, self.running)
        try:
            yield
        finally:
            self.running -= 1
            self._slots.release()
