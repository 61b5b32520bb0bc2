"""Measure data exchange: receipts, idempotency keys, value history, tombstones, period locks.

- ``MeasureDataReceipt`` — what one submission or deletion did (counts, conflicts), so that
  ``receipt(id)`` answers later and idempotent replays return the first answer.
- ``IdempotencyKey`` — a client's key for one call, unique per (sponsor, client, key) so that a
  duplicate-key error never tells one tenant about another's keys; stored in the transaction
  that writes the data.
- ``DataPointChangeSet`` — what one call wrote: every point it created, updated, restored or
  deleted, with the values before and after (one row per receipt, the points as columns).
- ``DataPointTombstone`` — a deleted point's key, kept for the delta export. Deletions remove the
  ``data_points`` row, so every reader of live data (series, aggregates, exports) needs no filter;
  a point submitted again takes its tombstone's id back.
- ``PeriodLock`` — a collaborative's periods up to and including ``through_period`` are locked.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    ForeignKeyConstraint,
    Index,
    Integer,
    String,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from db.base import Base, TenantMixin, utcnow
from db.models.data import PERIOD_LENGTH

CLIENT_ID_LENGTH = 128
IDEMPOTENCY_KEY_LENGTH = 255
"""Longest idempotency key a client may send."""


class MeasureDataReceipt(TenantMixin, Base):
    """The outcome of one ``submitMeasureData`` / ``deleteMeasureData`` call (dry runs are not
    stored). ``conflicts`` lists ``{index, code, field, message}`` of every rejected row."""

    __tablename__ = "measure_data_receipts"
    __table_args__ = (
        Index("ix_measure_data_receipts_sponsor_created", "sponsor_id", "created_at"),
    )

    operation: Mapped[str] = mapped_column(String(16))
    status: Mapped[str] = mapped_column(String(16))
    source: Mapped[str] = mapped_column(String(32), default="graphql")
    client_id: Mapped[str] = mapped_column(String(CLIENT_ID_LENGTH))
    request_id: Mapped[str] = mapped_column(String(64), default="")
    idempotency_key: Mapped[str | None] = mapped_column(String(IDEMPOTENCY_KEY_LENGTH))
    atomic: Mapped[bool] = mapped_column(Boolean, default=True)
    row_count: Mapped[int] = mapped_column(Integer, default=0)
    created: Mapped[int] = mapped_column(Integer, default=0)
    updated: Mapped[int] = mapped_column(Integer, default=0)
    unchanged: Mapped[int] = mapped_column(Integer, default=0)
    deleted: Mapped[int] = mapped_column(Integer, default=0)
    rejected: Mapped[int] = mapped_column(Integer, default=0)
    conflicts: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class IdempotencyKey(TenantMixin, Base):
    """A client's idempotency key: the hash of the request it first came with and its receipt.

    ``status`` is ``IN_PROGRESS`` while the first call's transaction runs and ``COMPLETED`` when
    it commits (both in the same transaction, so other callers only ever see ``COMPLETED``; they
    wait on the unique key meanwhile). Rows live at least until ``expires_at``.
    """

    __tablename__ = "idempotency_keys"
    __table_args__ = (
        UniqueConstraint("sponsor_id", "client_id", "key"),
        Index("ix_idempotency_keys_expires_at", "expires_at"),
    )

    client_id: Mapped[str] = mapped_column(String(CLIENT_ID_LENGTH))
    key: Mapped[str] = mapped_column(String(IDEMPOTENCY_KEY_LENGTH))
    operation: Mapped[str] = mapped_column(String(16))
    request_hash: Mapped[str] = mapped_column(String(64))
    receipt_id: Mapped[uuid.UUID]
    status: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime]


class DataPointChangeSet(TenantMixin, Base):
    """The data points one call wrote, with their values before and after: the history of data
    point values, one row per receipt (``id`` is the receipt's id).

    ``changes`` holds the points as parallel columns (entry *i* of every list is one point), as
    :mod:`db.queries.history` writes and reads it::

        {"data_point_id": [...], "team_id": [...], "measure_id": [...], "period": [...],
         "stratum": [...], "action": ["CREATE" | "UPDATE" | "RESTORE" | "DELETE", ...],
         "before": {"measure_version": [...], "numerator": [...], "denominator": [...],
                    "value": [...], "annotation": [...], "status": [...]},
         "after": {the same keys} | null}

    ``before`` holds nulls for created and restored points, ``after`` is null for deletions.
    One row per call instead of one per point: a 1,000-row batch writes one row and no index
    entry per point, where a row per point (three indexes, two JSON objects each) cost more
    PostgreSQL time than the upsert of the points themselves. Reads are by receipt (what a call
    changed); on PostgreSQL the view ``data_point_history`` shows one row per point.
    """

    __tablename__ = "data_point_change_sets"

    client_id: Mapped[str] = mapped_column(String(CLIENT_ID_LENGTH))
    at: Mapped[datetime] = mapped_column(default=utcnow)
    changes: Mapped[dict[str, Any]]


class DataPointTombstone(TenantMixin, Base):
    """A deleted data point, as the delta export shows it (``id`` is the deleted point's id)."""

    __tablename__ = "data_point_tombstones"
    __table_args__ = (
        ForeignKeyConstraint(["sponsor_id", "team_id"], ["teams.sponsor_id", "teams.id"]),
        ForeignKeyConstraint(["sponsor_id", "measure_id"], ["measures.sponsor_id", "measures.id"]),
        UniqueConstraint("sponsor_id", "team_id", "measure_id", "period", "stratum"),
        Index("ix_data_point_tombstones_sponsor_deleted", "sponsor_id", "deleted_at"),
    )

    team_id: Mapped[uuid.UUID]
    measure_id: Mapped[uuid.UUID]
    measure_version: Mapped[int] = mapped_column(Integer)
    period: Mapped[str] = mapped_column(String(PERIOD_LENGTH))
    stratum: Mapped[str] = mapped_column(String(64))
    receipt_id: Mapped[uuid.UUID]
    deleted_at: Mapped[datetime] = mapped_column(default=utcnow)
    deleted_by: Mapped[str] = mapped_column(String(CLIENT_ID_LENGTH))


class PeriodLock(TenantMixin, Base):
    """A collaborative's locked periods: every period up to and including ``through_period``."""

    __tablename__ = "period_locks"
    __table_args__ = (
        ForeignKeyConstraint(
            ["sponsor_id", "collaborative_id"],
            ["collaboratives.sponsor_id", "collaboratives.id"],
            ondelete="CASCADE",
        ),
        UniqueConstraint("sponsor_id", "collaborative_id"),
    )

    collaborative_id: Mapped[uuid.UUID]
    through_period: Mapped[str] = mapped_column(String(PERIOD_LENGTH))
    locked_by: Mapped[str] = mapped_column(String(CLIENT_ID_LENGTH))
    locked_at: Mapped[datetime] = mapped_column(default=utcnow)
