"""Organizations (sites), teams (their enrollment in a collaborative) and team members."""

from __future__ import annotations

import uuid
from datetime import date

from sqlalchemy import Enum, ForeignKeyConstraint, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from db.base import CODE_LENGTH, Base, TenantMixin, TimestampMixin
from db.enums import TeamRole


class Organization(TenantMixin, TimestampMixin, Base):
    """A hospital, clinic or practice."""

    __tablename__ = "organizations"
    __table_args__ = (UniqueConstraint("sponsor_id", "code"),)

    code: Mapped[str] = mapped_column(String(CODE_LENGTH))
    name: Mapped[str] = mapped_column(String(200))
    city: Mapped[str] = mapped_column(String(120), default="")
    state: Mapped[str] = mapped_column(String(64), default="")
    region: Mapped[str] = mapped_column(String(120), default="")


class Team(TenantMixin, TimestampMixin, Base):
    """An organization's improvement team enrolled in one collaborative."""

    __tablename__ = "teams"
    __table_args__ = (
        ForeignKeyConstraint(
            ["sponsor_id", "organization_id"], ["organizations.sponsor_id", "organizations.id"]
        ),
        ForeignKeyConstraint(
            ["sponsor_id", "collaborative_id"], ["collaboratives.sponsor_id", "collaboratives.id"]
        ),
        UniqueConstraint("sponsor_id", "code"),
    )

    code: Mapped[str] = mapped_column(String(CODE_LENGTH))
    name: Mapped[str] = mapped_column(String(200))
    organization_id: Mapped[uuid.UUID]
    collaborative_id: Mapped[uuid.UUID]
    joined_on: Mapped[date | None]
    withdrawn_on: Mapped[date | None]


class TeamMember(TenantMixin, Base):
    """A person on a team, in a role."""

    __tablename__ = "team_members"
    __table_args__ = (
        ForeignKeyConstraint(["sponsor_id", "team_id"], ["teams.sponsor_id", "teams.id"]),
        ForeignKeyConstraint(["sponsor_id", "person_id"], ["people.sponsor_id", "people.id"]),
        UniqueConstraint("sponsor_id", "team_id", "person_id", "role"),
    )

    team_id: Mapped[uuid.UUID]
    person_id: Mapped[uuid.UUID]
    role: Mapped[TeamRole] = mapped_column(
        Enum(TeamRole, native_enum=False, length=32, validate_strings=True)
    )
