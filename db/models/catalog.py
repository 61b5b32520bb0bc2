"""The resource catalog: tools, change concepts and ideas, stories, trainings, conferences."""

from __future__ import annotations

import uuid
from datetime import date

from sqlalchemy import Enum, ForeignKeyConstraint, PrimaryKeyConstraint, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from db.base import Base, TenantMixin, TimestampMixin
from db.enums import ResourceKind


class Resource(TenantMixin, TimestampMixin, Base):
    """One catalog entry. Care Model domains and topics are tags (``resource_tags``)."""

    __tablename__ = "resources"

    kind: Mapped[ResourceKind] = mapped_column(
        Enum(ResourceKind, native_enum=False, length=32, validate_strings=True)
    )
    title: Mapped[str] = mapped_column(String(300))
    summary: Mapped[str] = mapped_column(Text, default="")
    url: Mapped[str | None] = mapped_column(String(1000))
    published_on: Mapped[date | None]


TAG_DOMAIN = "domain"
"""``resource_tags.tag_kind`` of a Care Model domain tag."""
TAG_TOPIC = "topic"
"""``resource_tags.tag_kind`` of a free topic tag."""


class ResourceTag(Base):
    """A Care Model domain or a topic attached to a resource (filterable on both backends)."""

    __tablename__ = "resource_tags"
    __table_args__ = (
        PrimaryKeyConstraint("sponsor_id", "resource_id", "tag_kind", "value"),
        ForeignKeyConstraint(["sponsor_id"], ["sponsors.id"]),
        ForeignKeyConstraint(
            ["sponsor_id", "resource_id"],
            ["resources.sponsor_id", "resources.id"],
            ondelete="CASCADE",
        ),
    )

    sponsor_id: Mapped[uuid.UUID]
    resource_id: Mapped[uuid.UUID]
    tag_kind: Mapped[str] = mapped_column(String(16))
    value: Mapped[str] = mapped_column(String(120))


class ResourceCollaborative(Base):
    """A resource linked to a collaborative."""

    __tablename__ = "resource_collaboratives"
    __table_args__ = (
        PrimaryKeyConstraint("sponsor_id", "resource_id", "collaborative_id"),
        ForeignKeyConstraint(["sponsor_id"], ["sponsors.id"]),
        ForeignKeyConstraint(
            ["sponsor_id", "resource_id"],
            ["resources.sponsor_id", "resources.id"],
            ondelete="CASCADE",
        ),
        ForeignKeyConstraint(
            ["sponsor_id", "collaborative_id"],
            ["collaboratives.sponsor_id", "collaboratives.id"],
            ondelete="CASCADE",
        ),
    )

    sponsor_id: Mapped[uuid.UUID]
    resource_id: Mapped[uuid.UUID]
    collaborative_id: Mapped[uuid.UUID]


RESOURCE_SEARCH_TEXT = "title || ' ' || summary"
"""What catalog full-text search indexes (kept in step with the hand-written migration)."""
