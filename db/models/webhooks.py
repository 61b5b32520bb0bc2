"""Webhooks: partner endpoints told about live events by HTTP POST, and every delivery's outcome.

- ``Webhook`` — an endpoint of a sponsor: its URL, the event types and collaboratives it wants,
  the client that created it (events are filtered as that client's subscription would be), and
  the signing secret. The secret is stored as issued because every delivery is signed with it
  (HMAC needs the key itself); it is shown once, when the webhook is created.
- ``WebhookCollaborative`` — a collaborative a webhook listens to.
- ``WebhookDelivery`` — one event for one webhook: its JSON payload, status, attempts, the last
  attempt's outcome and when the next one is due. ``(sponsor_id, webhook_id, event_id)`` is
  unique, so every API process may record the same event and it is delivered once.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import (
    Enum,
    ForeignKeyConstraint,
    Index,
    Integer,
    PrimaryKeyConstraint,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from db.base import Base, TenantMixin, utcnow
from db.enums import WebhookDeliveryStatus, WebhookEventType
from db.models.exchange import CLIENT_ID_LENGTH

URL_LENGTH = 2_000
EVENT_ID_LENGTH = 200


class Webhook(TenantMixin, Base):
    """A partner endpoint that receives events of some collaboratives of its sponsor."""

    __tablename__ = "webhooks"
    __table_args__ = (Index("ix_webhooks_sponsor_created", "sponsor_id", "created_at"),)

    url: Mapped[str] = mapped_column(String(URL_LENGTH))
    events: Mapped[list[str]]
    description: Mapped[str] = mapped_column(Text, default="")
    secret: Mapped[str] = mapped_column(String(128))
    created_by: Mapped[str] = mapped_column(String(CLIENT_ID_LENGTH))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class WebhookCollaborative(Base):
    """A collaborative whose events a webhook receives."""

    __tablename__ = "webhook_collaboratives"
    __table_args__ = (
        PrimaryKeyConstraint("sponsor_id", "webhook_id", "collaborative_id"),
        ForeignKeyConstraint(["sponsor_id"], ["sponsors.id"]),
        ForeignKeyConstraint(
            ["sponsor_id", "webhook_id"], ["webhooks.sponsor_id", "webhooks.id"], ondelete="CASCADE"
        ),
        ForeignKeyConstraint(
            ["sponsor_id", "collaborative_id"],
            ["collaboratives.sponsor_id", "collaboratives.id"],
            ondelete="CASCADE",
        ),
        Index("ix_webhook_collaboratives_collaborative", "sponsor_id", "collaborative_id"),
    )

    sponsor_id: Mapped[uuid.UUID]
    webhook_id: Mapped[uuid.UUID]
    collaborative_id: Mapped[uuid.UUID]


class WebhookDelivery(TenantMixin, Base):
    """One event for one webhook, with the outcome of its attempts."""

    __tablename__ = "webhook_deliveries"
    __table_args__ = (
        ForeignKeyConstraint(
            ["sponsor_id", "webhook_id"], ["webhooks.sponsor_id", "webhooks.id"], ondelete="CASCADE"
        ),
        UniqueConstraint("sponsor_id", "webhook_id", "event_id"),
        Index(
            "ix_webhook_deliveries_sponsor_webhook_created",
            "sponsor_id",
            "webhook_id",
            "created_at",
        ),
        Index("ix_webhook_deliveries_status_next", "status", "next_attempt_at"),
    )

    webhook_id: Mapped[uuid.UUID]
    event_id: Mapped[str] = mapped_column(String(EVENT_ID_LENGTH))
    event_type: Mapped[WebhookEventType] = mapped_column(
        Enum(WebhookEventType, native_enum=False, length=32, validate_strings=True)
    )
    payload: Mapped[dict[str, Any]]
    status: Mapped[WebhookDeliveryStatus] = mapped_column(
        Enum(WebhookDeliveryStatus, native_enum=False, length=16, validate_strings=True),
        default=WebhookDeliveryStatus.PENDING,
    )
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime | None]
    last_attempt_at: Mapped[datetime | None]
    last_status_code: Mapped[int | None] = mapped_column(Integer)
    last_error: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    delivered_at: Mapped[datetime | None]
