"""The history of data point values: what each call wrote, one change set per receipt.

A change set (:class:`db.models.DataPointChangeSet`) keeps the points of one call as parallel
columns in a JSON document; :func:`change_set_document` builds that document (the SQLite path and
deletions; PostgreSQL builds the same document in the ingest statement itself, from the arrays
it already sends) and :func:`read_change_set` reads it back as one :class:`HistoryEntry` per
point.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from db.models import DataPointChangeSet

CREATE = "CREATE"
UPDATE = "UPDATE"
RESTORE = "RESTORE"
"""Submitted again after a deletion: the point takes its tombstone's id back."""
DELETE = "DELETE"

KEY_FIELDS = ("data_point_id", "team_id", "measure_id", "period", "stratum", "action")
"""The columns of a change set that name each point and what happened to it."""

VALUE_FIELDS = ("measure_version", "numerator", "denominator", "value", "annotation", "status")
"""The columns of a change set's ``before`` and ``after``: a point's stored values."""

Values = tuple[int | None, int | None, int | None, float | None, str | None, str | None]
"""One point's :data:`VALUE_FIELDS`, in that order (all None: no values on that side)."""


@dataclass(frozen=True)
class HistoryEntry:
    """One point of a change set: its key, what happened, its values before and after."""

    data_point_id: uuid.UUID
    team_id: uuid.UUID
    measure_id: uuid.UUID
    period: str
    stratum: str
    action: str
    before: dict[str, Any] | None
    after: dict[str, Any] | None


def change_set_document(
    keys: Sequence[tuple[uuid.UUID, uuid.UUID, uuid.UUID, str, str, str]],
    before: Sequence[Values | None],
    after: Sequence[Values | None] | None,
) -> dict[str, Any]:
    """The ``changes`` document of points given as (id, team, measure, period, stratum, action)
    with their values before and after (None: none on that side; ``after`` None: deletions)."""
    document: dict[str, Any] = {
        name: [str(key[position]) for key in keys] for position, name in enumerate(KEY_FIELDS)
    }
    document["before"] = value_columns(before)
    document["after"] = None if after is None else value_columns(after)
    return document


def value_columns(values: Sequence[Values | None]) -> dict[str, list[Any]]:
    """The ``before`` or ``after`` of a change set: one list per value field (None: nulls)."""
    return {
        name: [None if point is None else point[position] for point in values]
        for position, name in enumerate(VALUE_FIELDS)
    }


def entries_of(changes: dict[str, Any]) -> list[HistoryEntry]:
    """The points of a ``changes`` document, in the order the call wrote them."""
    before = changes["before"]
    after = changes.get("after")
    return [
        HistoryEntry(
            data_point_id=uuid.UUID(point_id),
            team_id=uuid.UUID(team_id),
            measure_id=uuid.UUID(measure_id),
            period=period,
            stratum=stratum,
            action=action,
            before=_values_at(before, position),
            after=None if after is None else _values_at(after, position),
        )
        for position, (point_id, team_id, measure_id, period, stratum, action) in enumerate(
            zip(*(changes[name] for name in KEY_FIELDS), strict=True)
        )
    ]


def _values_at(columns: dict[str, list[Any]], position: int) -> dict[str, Any] | None:
    values = {name: columns[name][position] for name in VALUE_FIELDS}
    if all(value is None for value in values.values()):
        return None  # created or restored (before), deleted (after)
    if values["value"] is not None:
        values["value"] = float(values["value"])  # PostgreSQL's JSON writes 2.0 as 2
    return values


async def read_change_set(
    session: AsyncSession, sponsor_id: uuid.UUID, receipt_id: uuid.UUID
) -> list[HistoryEntry]:
    """The points the call of ``receipt_id`` wrote (none: it wrote nothing, or is unknown)."""
    changes = await session.scalar(
        select(DataPointChangeSet.changes).where(
            DataPointChangeSet.sponsor_id == sponsor_id, DataPointChangeSet.id == receipt_id
        )
    )
    return [] if changes is None else entries_of(changes)
