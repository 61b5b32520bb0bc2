"""Sponsors (the tenants) and the people who work in their programs."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from db.base import CODE_LENGTH, Base, TenantMixin, TimestampMixin, utcnow


class Sponsor(Base):
    """An organization that runs improvement programs: the tenant every other row belongs to."""

    __tablename__ = "sponsors"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    slug: Mapped[str] = mapped_column(String(CODE_LENGTH), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    description: Mapped[str] = mapped_column(Text, default="")
    website: Mapped[str | None] = mapped_column(String(500))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Person(TenantMixin, TimestampMixin, Base):
    """Somebody who serves on a collaborative's staff or on a team."""

    __tablename__ = "people"
    __table_args__ = (UniqueConstraint("sponsor_id", "email"),)

    name: Mapped[str] = mapped_column(String(200))
    email: Mapped[str] = mapped_column(String(320))
    title: Mapped[str] = mapped_column(String(200), default="")
