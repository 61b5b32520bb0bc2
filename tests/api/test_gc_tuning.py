"""``collabx serve`` tunes the garbage collector (issue 7), and the setting can switch it off."""

from __future__ import annotations

import gc
import weakref

import pytest

from api.cli import _tune_gc
from api.settings import Settings


class _Response:
    """Stands for a request's result tree, caught in a reference cycle (as strawberry's and
    graphql-core's execution objects are) so that only the cycle collector frees it."""

    def __init__(self, items: int) -> None:
        self.itself = self
        self.items = [[index] for index in range(items)]  # tracked by the collector, as results are


def test_tune_gc_freezes_start_up_objects_and_raises_the_gen0_threshold() -> None:
    before = gc.get_threshold()
    try:
        _tune_gc()
        assert gc.get_threshold()[0] >= 10_000
        assert gc.get_freeze_count() > 0
    finally:
        gc.unfreeze()
        gc.set_threshold(*before)


@pytest.mark.timeout(60)
def test_the_tuned_collector_frees_the_cycles_big_requests_leave_behind() -> None:
    """A big response outlives several young collections while it is built, so it reaches the
    oldest generation; once dropped, only a full collection frees it. Those must keep coming,
    or the server's memory grows by a response per request (peak RSS +80 MiB over a bench)."""
    before = gc.get_threshold()
    try:
        _tune_gc()
        responses = []
        for _ in range(30):
            response = _Response(200_000)
            responses.append(weakref.ref(response))
            del response
        alive = sum(1 for ref in responses if ref() is not None)
    finally:
        gc.unfreeze()
        gc.set_threshold(*before)
    assert alive <= 3, f"{alive} of 30 dropped responses still held in memory"


def test_gc_tuning_is_on_by_default_and_can_be_switched_off() -> None:
    assert Settings(database_url="sqlite+aiosqlite://").gc_tuning is True
    assert Settings(database_url="sqlite+aiosqlite://", gc_tuning=False).gc_tuning is False
