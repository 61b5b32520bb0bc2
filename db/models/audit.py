"""The audit trail: every write, who did it with which client, and the row before and after."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Index, String
from sqlalchemy.orm import Mapped, mapped_column

from db.base import Base, TenantMixin, utcnow


class AuditEvent(TenantMixin, Base):
    """One audited change. ``before`` is null for creations, ``after`` for deletions."""

    __tablename__ = "audit_events"
    __table_args__ = (Index("ix_audit_events_sponsor_at", "sponsor_id", "at"),)

    at: Mapped[datetime] = mapped_column(default=utcnow)
    actor_client_id: Mapped[str] = mapped_column(String(128))
    actor_kind: Mapped[str] = mapped_column(String(32))
    request_id: Mapped[str] = mapped_column(String(64), default="")
    action: Mapped[str] = mapped_column(String(64))
    entity_type: Mapped[str] = mapped_column(String(64))
    entity_id: Mapped[str] = mapped_column(String(64))
    before: Mapped[dict[str, Any] | None]
    after: Mapped[dict[str, Any] | None]
