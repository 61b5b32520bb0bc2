"""Measures, their versioned operational definitions and collaboratives' measure sets."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import (
    Boolean,
    Enum,
    Float,
    ForeignKeyConstraint,
    Integer,
    PrimaryKeyConstraint,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from db.base import CODE_LENGTH, Base, TenantMixin, TimestampMixin, utcnow
from db.enums import ImprovementDirection, MeasureType, Scoring


class Measure(TenantMixin, TimestampMixin, Base):
    """A measure's stable identity: its code and which definition version is current."""

    __tablename__ = "measures"
    __table_args__ = (UniqueConstraint("sponsor_id", "code"),)

    code: Mapped[str] = mapped_column(String(CODE_LENGTH))
    current_version: Mapped[int] = mapped_column(Integer, default=1)


class MeasureVersion(TenantMixin, Base):
    """One version of a measure's operational definition; data points name the one they used."""

    __tablename__ = "measure_versions"
    __table_args__ = (
        ForeignKeyConstraint(
            ["sponsor_id", "measure_id"], ["measures.sponsor_id", "measures.id"], ondelete="CASCADE"
        ),
        UniqueConstraint("sponsor_id", "measure_id", "version"),
    )

    measure_id: Mapped[uuid.UUID]
    version: Mapped[int] = mapped_column(Integer)
    name: Mapped[str] = mapped_column(String(200))
    description: Mapped[str] = mapped_column(Text, default="")
    type: Mapped[MeasureType] = mapped_column(
        Enum(MeasureType, native_enum=False, length=32, validate_strings=True)
    )
    scoring: Mapped[Scoring] = mapped_column(
        Enum(Scoring, native_enum=False, length=32, validate_strings=True)
    )
    numerator: Mapped[str] = mapped_column(Text, default="")
    denominator: Mapped[str] = mapped_column(Text, default="")
    exclusions: Mapped[str] = mapped_column(Text, default="")
    unit: Mapped[str] = mapped_column(String(64), default="")
    multiplier: Mapped[float] = mapped_column(Float, default=1.0)
    improvement_direction: Mapped[ImprovementDirection] = mapped_column(
        Enum(ImprovementDirection, native_enum=False, length=32, validate_strings=True)
    )
    data_source: Mapped[str] = mapped_column(Text, default="")
    sampling: Mapped[str] = mapped_column(Text, default="")
    frequency: Mapped[str] = mapped_column(String(32), default="MONTHLY")
    fhir_canonical: Mapped[str | None] = mapped_column(String(500))
    external_codes: Mapped[dict[str, Any]] = mapped_column(default=dict)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class CollaborativeMeasure(Base):
    """A measure in a collaborative's measure set, required or optional, with the goal line."""

    __tablename__ = "collaborative_measures"
    __table_args__ = (
        PrimaryKeyConstraint("sponsor_id", "collaborative_id", "measure_id"),
        ForeignKeyConstraint(["sponsor_id"], ["sponsors.id"]),
        ForeignKeyConstraint(
            ["sponsor_id", "collaborative_id"],
            ["collaboratives.sponsor_id", "collaboratives.id"],
            ondelete="CASCADE",
        ),
        ForeignKeyConstraint(["sponsor_id", "measure_id"], ["measures.sponsor_id", "measures.id"]),
    )

    sponsor_id: Mapped[uuid.UUID] = mapped_column()
    collaborative_id: Mapped[uuid.UUID]
    measure_id: Mapped[uuid.UUID]
    required: Mapped[bool] = mapped_column(Boolean, default=True)
    goal: Mapped[float | None] = mapped_column(Float)
    goal_description: Mapped[str] = mapped_column(Text, default="")
    position: Mapped[int] = mapped_column(Integer, default=0)
    added_at: Mapped[datetime] = mapped_column(default=utcnow)
