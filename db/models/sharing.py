"""Sharing across sponsors: agreements, their read-access log, pseudonym keys, measure links.

- ``SharingAgreement`` — a grantor sponsor (the row's tenant) lets a grantee sponsor read some
  collaboratives and measures at a level, under a suppression policy, for a time. Revocation
  keeps the row (``revoked_at``) so the access log can still name it.
- ``SharingAgreementCollaborative`` / ``SharingAgreementMeasure`` — what an agreement names;
  none of them with ``all_collaboratives`` / ``all_measures`` means every one, now and later.
- ``SharingAccessLog`` — one row per read of shared data by a client of another sponsor, kept
  by the grantor (the tenant) and queryable by it.
- ``PseudonymKey`` — a random secret per (grantor, grantee): team pseudonyms are an HMAC of the
  team id under it, stable for one grantee, different for another, not reversible without it.
- ``MeasureEquivalence`` — a sponsor declares one of its measures equivalent to another sponsor's
  measure (named by code). A link holds once both sides have declared it.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import (
    Boolean,
    Enum,
    ForeignKey,
    ForeignKeyConstraint,
    Index,
    Integer,
    LargeBinary,
    PrimaryKeyConstraint,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from db.base import CODE_LENGTH, Base, TenantMixin, utcnow
from db.enums import SharingLevel
from db.models.exchange import CLIENT_ID_LENGTH


class SharingAgreement(TenantMixin, Base):
    """The grantor (``sponsor_id``) lets ``grantee_sponsor_id`` read data at ``level``."""

    __tablename__ = "sharing_agreements"
    __table_args__ = (
        Index("ix_sharing_agreements_grantee", "grantee_sponsor_id", "sponsor_id"),
        Index("ix_sharing_agreements_sponsor_created", "sponsor_id", "created_at"),
    )

    grantee_sponsor_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("sponsors.id", ondelete="RESTRICT")
    )
    level: Mapped[SharingLevel] = mapped_column(
        Enum(SharingLevel, native_enum=False, length=32, validate_strings=True)
    )
    all_collaboratives: Mapped[bool] = mapped_column(Boolean, default=False)
    all_measures: Mapped[bool] = mapped_column(Boolean, default=False)
    cell_min: Mapped[int] = mapped_column(Integer)
    min_teams: Mapped[int] = mapped_column(Integer)
    purpose: Mapped[str] = mapped_column(Text, default="")
    valid_from: Mapped[datetime]
    valid_to: Mapped[datetime | None]
    created_by: Mapped[str] = mapped_column(String(CLIENT_ID_LENGTH))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    revoked_at: Mapped[datetime | None]
    revoked_by: Mapped[str | None] = mapped_column(String(CLIENT_ID_LENGTH))


class SharingAgreementCollaborative(Base):
    """A collaborative an agreement shares."""

    __tablename__ = "sharing_agreement_collaboratives"
    __table_args__ = (
        PrimaryKeyConstraint("sponsor_id", "agreement_id", "collaborative_id"),
        ForeignKeyConstraint(["sponsor_id"], ["sponsors.id"]),
        ForeignKeyConstraint(
            ["sponsor_id", "agreement_id"],
            ["sharing_agreements.sponsor_id", "sharing_agreements.id"],
            ondelete="CASCADE",
        ),
        ForeignKeyConstraint(
            ["sponsor_id", "collaborative_id"],
            ["collaboratives.sponsor_id", "collaboratives.id"],
            ondelete="CASCADE",
        ),
    )

    sponsor_id: Mapped[uuid.UUID]
    agreement_id: Mapped[uuid.UUID]
    collaborative_id: Mapped[uuid.UUID]


class SharingAgreementMeasure(Base):
    """A measure an agreement shares."""

    __tablename__ = "sharing_agreement_measures"
    __table_args__ = (
        PrimaryKeyConstraint("sponsor_id", "agreement_id", "measure_id"),
        ForeignKeyConstraint(["sponsor_id"], ["sponsors.id"]),
        ForeignKeyConstraint(
            ["sponsor_id", "agreement_id"],
            ["sharing_agreements.sponsor_id", "sharing_agreements.id"],
            ondelete="CASCADE",
        ),
        ForeignKeyConstraint(
            ["sponsor_id", "measure_id"], ["measures.sponsor_id", "measures.id"], ondelete="CASCADE"
        ),
    )

    sponsor_id: Mapped[uuid.UUID]
    agreement_id: Mapped[uuid.UUID]
    measure_id: Mapped[uuid.UUID]


class SharingAccessLog(TenantMixin, Base):
    """One read of the grantor's (``sponsor_id``) data by a client of another sponsor."""

    __tablename__ = "sharing_access_log"
    __table_args__ = (
        ForeignKeyConstraint(
            ["sponsor_id", "agreement_id"],
            ["sharing_agreements.sponsor_id", "sharing_agreements.id"],
        ),
        Index("ix_sharing_access_log_sponsor_at", "sponsor_id", "at"),
    )

    agreement_id: Mapped[uuid.UUID]
    at: Mapped[datetime] = mapped_column(default=utcnow)
    reader_client_id: Mapped[str] = mapped_column(String(CLIENT_ID_LENGTH))
    reader_sponsor_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("sponsors.id", ondelete="RESTRICT")
    )
    operation: Mapped[str] = mapped_column(String(64))
    level: Mapped[SharingLevel] = mapped_column(
        Enum(SharingLevel, native_enum=False, length=32, validate_strings=True)
    )
    collaborative_codes: Mapped[list[str]]
    measure_code: Mapped[str] = mapped_column(String(CODE_LENGTH))
    teams_read: Mapped[int] = mapped_column(Integer, default=0)
    request_id: Mapped[str] = mapped_column(String(64), default="")
    detail: Mapped[dict[str, Any]] = mapped_column(default=dict)


class PseudonymKey(Base):
    """The grantor's (``sponsor_id``) secret for the team pseudonyms one grantee sees."""

    __tablename__ = "pseudonym_keys"
    __table_args__ = (PrimaryKeyConstraint("sponsor_id", "grantee_sponsor_id"),)

    sponsor_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("sponsors.id", ondelete="RESTRICT"))
    grantee_sponsor_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("sponsors.id", ondelete="RESTRICT")
    )
    secret: Mapped[bytes] = mapped_column(LargeBinary(32))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class MeasureEquivalence(TenantMixin, Base):
    """``sponsor_id``'s measure declared equivalent to another sponsor's measure (by code)."""

    __tablename__ = "measure_equivalences"
    __table_args__ = (
        ForeignKeyConstraint(
            ["sponsor_id", "measure_id"], ["measures.sponsor_id", "measures.id"], ondelete="CASCADE"
        ),
        UniqueConstraint("sponsor_id", "measure_id", "other_sponsor_id", "other_measure_code"),
        Index("ix_measure_equivalences_other", "other_sponsor_id", "other_measure_code"),
    )

    measure_id: Mapped[uuid.UUID]
    other_sponsor_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("sponsors.id", ondelete="RESTRICT")
    )
    other_measure_code: Mapped[str] = mapped_column(String(CODE_LENGTH))
    declared_by: Mapped[str] = mapped_column(String(CLIENT_ID_LENGTH))
    declared_at: Mapped[datetime] = mapped_column(default=utcnow)
