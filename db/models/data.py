"""Monthly measure data points reported by teams."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import (
    BigInteger,
    Enum,
    Float,
    ForeignKeyConstraint,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from db.base import Base, TenantMixin, utcnow
from db.enums import DataPointStatus

PERIOD_LENGTH = 7
"""A period is stored as its ``YYYY-MM`` text, which sorts in time order on both backends."""


class DataPoint(TenantMixin, Base):
    """(team, measure, period, stratum) -> numerator/denominator or value.

    ``stratum`` is ``''`` for "all patients" and never NULL, so that the unique key works on both
    backends. ``measure_version`` records the definition the point was reported under.
    """

    __tablename__ = "data_points"
    __table_args__ = (
        ForeignKeyConstraint(["sponsor_id", "team_id"], ["teams.sponsor_id", "teams.id"]),
        ForeignKeyConstraint(["sponsor_id", "measure_id"], ["measures.sponsor_id", "measures.id"]),
        UniqueConstraint("sponsor_id", "team_id", "measure_id", "period", "stratum"),
        Index("ix_data_points_sponsor_measure_period", "sponsor_id", "measure_id", "period"),
        Index("ix_data_points_sponsor_updated", "sponsor_id", "updated_at"),
    )

    team_id: Mapped[uuid.UUID]
    measure_id: Mapped[uuid.UUID]
    measure_version: Mapped[int] = mapped_column(Integer)
    period: Mapped[str] = mapped_column(String(PERIOD_LENGTH))
    stratum: Mapped[str] = mapped_column(String(64), default="")
    numerator: Mapped[int | None] = mapped_column(BigInteger)
    denominator: Mapped[int | None] = mapped_column(BigInteger)
    value: Mapped[float | None] = mapped_column(Float)
    annotation: Mapped[str] = mapped_column(Text, default="")
    status: Mapped[DataPointStatus] = mapped_column(
        Enum(DataPointStatus, native_enum=False, length=32, validate_strings=True),
        default=DataPointStatus.SUBMITTED,
    )
    source: Mapped[str] = mapped_column(String(32), default="graphql")
    receipt_id: Mapped[uuid.UUID | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    created_by: Mapped[str] = mapped_column(String(128), default="")
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_by: Mapped[str] = mapped_column(String(128), default="")
