"""Collaboratives (programs), their phases and their staff."""

from __future__ import annotations

import uuid
from datetime import date

from sqlalchemy import Enum, ForeignKeyConstraint, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from db.base import CODE_LENGTH, Base, TenantMixin, TimestampMixin
from db.enums import CollaborativeStatus, PhaseKind, StaffRole


class Collaborative(TenantMixin, TimestampMixin, Base):
    """A 6-15 month learning system on one topic."""

    __tablename__ = "collaboratives"
    __table_args__ = (UniqueConstraint("sponsor_id", "code"),)

    code: Mapped[str] = mapped_column(String(CODE_LENGTH))
    name: Mapped[str] = mapped_column(String(200))
    topic: Mapped[str] = mapped_column(String(200))
    aim: Mapped[str] = mapped_column(Text, default="")
    description: Mapped[str] = mapped_column(Text, default="")
    status: Mapped[CollaborativeStatus] = mapped_column(
        Enum(CollaborativeStatus, native_enum=False, length=32, validate_strings=True)
    )
    start_date: Mapped[date | None]
    end_date: Mapped[date | None]


class Phase(TenantMixin, Base):
    """One phase of a collaborative (prework, learning session, action period...)."""

    __tablename__ = "phases"
    __table_args__ = (
        ForeignKeyConstraint(
            ["sponsor_id", "collaborative_id"],
            ["collaboratives.sponsor_id", "collaboratives.id"],
            ondelete="CASCADE",
        ),
        UniqueConstraint("sponsor_id", "collaborative_id", "seq"),
    )

    collaborative_id: Mapped[uuid.UUID]
    kind: Mapped[PhaseKind] = mapped_column(
        Enum(PhaseKind, native_enum=False, length=32, validate_strings=True)
    )
    seq: Mapped[int] = mapped_column(Integer)
    name: Mapped[str] = mapped_column(String(200), default="")
    start_date: Mapped[date | None]
    end_date: Mapped[date | None]


class StaffAssignment(TenantMixin, Base):
    """A person serving a collaborative in a staff role."""

    __tablename__ = "staff_assignments"
    __table_args__ = (
        ForeignKeyConstraint(
            ["sponsor_id", "collaborative_id"],
            ["collaboratives.sponsor_id", "collaboratives.id"],
            ondelete="CASCADE",
        ),
        ForeignKeyConstraint(["sponsor_id", "person_id"], ["people.sponsor_id", "people.id"]),
        UniqueConstraint("sponsor_id", "collaborative_id", "person_id", "role"),
    )

    collaborative_id: Mapped[uuid.UUID]
    person_id: Mapped[uuid.UUID]
    role: Mapped[StaffRole] = mapped_column(
        Enum(StaffRole, native_enum=False, length=32, validate_strings=True)
    )
