"""GraphQL projections of webhooks and their deliveries (all behind the ``admin`` scope)."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from datetime import datetime

import strawberry

from db.enums import WebhookDeliveryStatus, WebhookEventType
from db.models import Webhook as WebhookModel
from db.models import WebhookDelivery as WebhookDeliveryModel
from db.queries.webhooks import encode_payload
from schema.collaboratives.types import Collaborative
from schema.context import Info
from schema.ids import encode_global_id
from schema.node import Node

strawberry.enum(
    WebhookEventType,
    description=(
        "What a webhook is told about: MEASURE_DATA_SUBMITTED (committed measure data, as the "
        "measureDataSubmitted subscription) and SIGNAL_DETECTED (a new chart signal, as "
        "signalDetected)."
    ),
)
strawberry.enum(
    WebhookDeliveryStatus,
    description=(
        "PENDING (waiting for its first or next attempt), SUCCEEDED (the endpoint answered 2xx), "
        "FAILED (every attempt failed, or the URL was refused)."
    ),
)


@strawberry.type(
    description=(
        "An endpoint of a partner system that receives events as signed JSON POSTs: "
        '`X-CollabX-Signature: sha256=<hex HMAC-SHA256 of "<timestamp>.<body>" with the '
        "secret>` and `X-CollabX-Timestamp: <Unix seconds>`; retried with exponential backoff."
    )
)
class Webhook(Node):
    url: str = strawberry.field(description="Where events are POSTed.")
    events: list[WebhookEventType] = strawberry.field(description="The event types it receives.")
    description: str = strawberry.field(description="What it is for; '' when not said.")
    created_by: str = strawberry.field(
        description=(
            "The client that created it; events are filtered as that client's subscription "
            "would be, and stop when the client is revoked."
        )
    )
    created_at: datetime = strawberry.field(description="When it was created.")
    row_id: strawberry.Private[uuid.UUID]

    @classmethod
    def from_model(cls, row: WebhookModel) -> Webhook:
        return cls(
            id=strawberry.ID(encode_global_id("Webhook", row.id)),
            url=row.url,
            events=[WebhookEventType(event) for event in row.events],
            description=row.description,
            created_by=row.created_by,
            created_at=row.created_at,
            row_id=row.id,
        )

    @strawberry.field(description="The collaboratives whose events it receives.")
    async def collaboratives(self, info: Info) -> list[Collaborative]:
        ids = await info.context.loaders.collaborative_ids_by_webhook_id.load(self.row_id)
        rows = await info.context.loaders.collaborative_by_id.load_many(ids)
        found = [Collaborative.from_model(row) for row in rows if row is not None]
        return sorted(found, key=lambda collaborative: collaborative.code)


@strawberry.type(description="One event sent (or to be sent) to a webhook, with its outcome.")
class WebhookDelivery(Node):
    event_id: str = strawberry.field(
        description=(
            "Stable id of the event (also in the body as `id`): receivers use it to drop the "
            "repeats a retry can cause."
        )
    )
    event: WebhookEventType = strawberry.field(description="The event type.")
    status: WebhookDeliveryStatus = strawberry.field(description="Where the delivery is.")
    attempts: int = strawberry.field(description="Attempts made so far.")
    last_status_code: int | None = strawberry.field(
        description="HTTP status of the last attempt; null when none answered (or none ran)."
    )
    last_error: str = strawberry.field(
        description="Why the last attempt failed ('' when it did not): a status, a network error."
    )
    last_attempt_at: datetime | None = strawberry.field(description="When the last attempt ran.")
    next_attempt_at: datetime | None = strawberry.field(
        description="When the next attempt is due; null once SUCCEEDED or FAILED."
    )
    created_at: datetime = strawberry.field(description="When the event was recorded.")
    delivered_at: datetime | None = strawberry.field(
        description="When the endpoint accepted it; null until then."
    )
    payload: str = strawberry.field(description="The JSON body that is POSTed.")

    @classmethod
    def from_model(cls, row: WebhookDeliveryModel) -> WebhookDelivery:
        return cls(
            id=strawberry.ID(encode_global_id("WebhookDelivery", row.id)),
            event_id=row.event_id,
            event=row.event_type,
            status=row.status,
            attempts=row.attempts,
            last_status_code=row.last_status_code,
            last_error=row.last_error,
            last_attempt_at=row.last_attempt_at,
            next_attempt_at=row.next_attempt_at,
            created_at=row.created_at,
            delivered_at=row.delivered_at,
            payload=encode_payload(row.payload).decode("utf-8"),
        )


async def _webhook_node(info: Info, row_id: uuid.UUID) -> Node | None:
    row = await info.context.loaders.webhook_by_id.load(row_id)
    return Webhook.from_model(row) if row is not None else None


async def _delivery_node(info: Info, row_id: uuid.UUID) -> Node | None:
    row = await info.context.loaders.webhook_delivery_by_id.load(row_id)
    return WebhookDelivery.from_model(row) if row is not None else None


WEBHOOK_NODE_SCOPE = "admin"
WEBHOOK_NODES: dict[str, Callable[[Info, uuid.UUID], Awaitable[Node | None]]] = {
    "Webhook": _webhook_node,
    "WebhookDelivery": _delivery_node,
}
"""The webhook types ``node(id:)`` resolves (scope admin)."""
