"""API clients (OAuth 2.0 confidential clients), their team bindings, and token signing keys.

``clients`` is looked up by ``client_id`` before the sponsor is known (at the token endpoint), so
like ``signing_keys`` it is a deployment-level table: it names its sponsor but is not keyed by it.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import Enum, ForeignKey, ForeignKeyConstraint, PrimaryKeyConstraint, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from db.base import Base, utcnow
from db.enums import ClientKind


class Client(Base):
    """A system that calls CollabX: admin console, dashboard, EHR integration or partner."""

    __tablename__ = "clients"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    client_id: Mapped[str] = mapped_column(String(128), unique=True)
    sponsor_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("sponsors.id"), index=True)
    name: Mapped[str] = mapped_column(String(200), default="")
    kind: Mapped[ClientKind] = mapped_column(
        Enum(ClientKind, native_enum=False, length=32, validate_strings=True)
    )
    scopes: Mapped[str] = mapped_column(Text)
    secret_hash: Mapped[str] = mapped_column(String(128))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    secret_rotated_at: Mapped[datetime | None]
    revoked_at: Mapped[datetime | None]

    @property
    def scope_list(self) -> list[str]:
        """Scopes as a list, in stored order."""
        return self.scopes.split()


class ClientTeam(Base):
    """A team an EHR integration client may write (and read) data for."""

    __tablename__ = "client_teams"
    __table_args__ = (
        PrimaryKeyConstraint("client_id", "team_id"),
        ForeignKeyConstraint(["sponsor_id", "team_id"], ["teams.sponsor_id", "teams.id"]),
    )

    client_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("clients.id", ondelete="CASCADE"))
    sponsor_id: Mapped[uuid.UUID]
    team_id: Mapped[uuid.UUID]


class SigningKey(Base):
    """A key that signs access tokens. Retired keys stay published until their tokens expire."""

    __tablename__ = "signing_keys"

    kid: Mapped[str] = mapped_column(String(64), primary_key=True)
    alg: Mapped[str] = mapped_column(String(16))
    private_jwk: Mapped[dict[str, Any]]
    public_jwk: Mapped[dict[str, Any]]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    retired_at: Mapped[datetime | None]
