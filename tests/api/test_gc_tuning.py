"""``collabx serve`` tunes the garbage collector (issue 7), and the setting can switch it off."""

from __future__ import annotations

import gc

from api.cli import _tune_gc
from api.settings import Settings


def test_tune_gc_freezes_start_up_objects_and_raises_the_gen0_threshold() -> None:
    before = gc.get_threshold()
    try:
        _tune_gc()
        assert gc.get_threshold() == (50_000, 20, 100)
        assert gc.get_freeze_count() > 0
    finally:
        gc.unfreeze()
        gc.set_threshold(*before)


def test_gc_tuning_is_on_by_default_and_can_be_switched_off() -> None:
    assert Settings(database_url="sqlite+aiosqlite://").gc_tuning is True
    assert Settings(database_url="sqlite+aiosqlite://", gc_tuning=False).gc_tuning is False
