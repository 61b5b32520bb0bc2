"""Monthly aggregate rollups: per-collaborative period totals kept beside the data points.

A *series* is one (collaborative, measure, stratum) of a sponsor; its *cells* are the period
totals :func:`db.queries.aggregates.aggregate_parts` computes for it, with the median team value
of the cell. Database triggers (migration 0007) append an ``aggregate_changes`` row for every
series whose inputs a statement touched (data points, goal lines, a measure's current version);
a series with pending changes is recomputed when it is next read (:mod:`db.rollups`).
"""

from __future__ import annotations

import uuid

from sqlalchemy import BigInteger, Float, ForeignKeyConstraint, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from db.base import Base, TenantMixin
from db.models.data import PERIOD_LENGTH

STRATUM_LENGTH = 64


class AggregateSeries(Base):
    """A series whose cells are stored; ``generation`` counts refreshes (an optimistic guard:
    a refresh is written only when no other refresh was written since its reads began)."""

    __tablename__ = "aggregate_series"
    __table_args__ = (
        ForeignKeyConstraint(
            ["sponsor_id", "collaborative_id"],
            ["collaboratives.sponsor_id", "collaboratives.id"],
            ondelete="CASCADE",
        ),
        ForeignKeyConstraint(
            ["sponsor_id", "measure_id"], ["measures.sponsor_id", "measures.id"], ondelete="CASCADE"
        ),
    )

    sponsor_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    collaborative_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    measure_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    stratum: Mapped[str] = mapped_column(String(STRATUM_LENGTH), primary_key=True)
    generation: Mapped[int] = mapped_column(Integer, default=1)


class AggregateCell(Base):
    """One period of a stored series: the columns of a ``PartTotals`` and the median team value."""

    __tablename__ = "aggregate_cells"
    __table_args__ = (
        ForeignKeyConstraint(
            ["sponsor_id", "collaborative_id", "measure_id", "stratum"],
            [
                "aggregate_series.sponsor_id",
                "aggregate_series.collaborative_id",
                "aggregate_series.measure_id",
                "aggregate_series.stratum",
            ],
            ondelete="CASCADE",
            # The conventional name would pass PostgreSQL's 63-character limit.
            name="fk_aggregate_cells_series",
        ),
    )

    sponsor_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    collaborative_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    measure_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    stratum: Mapped[str] = mapped_column(String(STRATUM_LENGTH), primary_key=True)
    period: Mapped[str] = mapped_column(String(PERIOD_LENGTH), primary_key=True)
    teams_reporting: Mapped[int] = mapped_column(Integer)
    numerator: Mapped[int | None] = mapped_column(BigInteger)
    denominator: Mapped[int | None] = mapped_column(BigInteger)
    value_sum: Mapped[float | None] = mapped_column(Float)
    teams_with_goal: Mapped[int] = mapped_column(Integer)
    teams_meeting_goal: Mapped[int] = mapped_column(Integer)
    median: Mapped[float | None] = mapped_column(Float)


class AggregateChange(TenantMixin, Base):
    """A series whose stored cells may be out of date: written by triggers only (on PostgreSQL
    appended, so concurrent batches never wait on each other here; on SQLite one row per series
    whose id each write renews); deleted by the refresh that read the data it stands for."""

    __tablename__ = "aggregate_changes"
    __table_args__ = (
        Index(
            "ix_aggregate_changes_series", "sponsor_id", "measure_id", "collaborative_id", "stratum"
        ),
    )

    collaborative_id: Mapped[uuid.UUID]
    measure_id: Mapped[uuid.UUID]
    stratum: Mapped[str] = mapped_column(String(STRATUM_LENGTH))
    transaction_id: Mapped[int | None] = mapped_column(BigInteger)
    """PostgreSQL's 64-bit id of the writing transaction (one row per series and transaction;
    unlike ``xmin`` it never wraps around); NULL on SQLite and for administrative changes."""
