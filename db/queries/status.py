"""How a data point's status reads: LOCKED while its month is locked, the stored status otherwise.

Locking a period does not rewrite rows (a lock moves with ``lockPeriods``/``unlockPeriods``), so
every reader — series, delta export, bulk and FHIR export — derives the status the same way here.
"""

from __future__ import annotations

from db.enums import DataPointStatus


def shown_status(stored: str, period: str, locked_through: str | None) -> DataPointStatus:
    """The status a reader sees for a point of ``period`` given the collaborative's lock."""
    if locked_through is not None and period <= locked_through:
        return DataPointStatus.LOCKED
    return DataPointStatus(stored)
