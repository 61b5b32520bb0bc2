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


class HeavyQueryGate:
    """At most ``concurrency`` operations of cost >= ``threshold`` run at once (0: no limit)."""

    def __init__(self, *, threshold: int, concurrency: int) -> None:
        self.threshold = threshold
        self.concurrency = concurrency
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
        async with self._slots:
            self.running += 1
            self.most_running = max(self.most_running, self.running)
            try:
                yield
            finally:
                self.running -= 1
