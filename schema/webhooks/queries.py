"""Queries: ``webhooks(first, after)`` and ``webhookDeliveries(webhook, first, after)`` (admin)."""

from __future__ import annotations

from datetime import datetime

import strawberry

from db.queries.webhooks import list_deliveries, list_webhooks
from schema.context import Info
from schema.errors import invalid_argument
from schema.ids import row_id_of
from schema.pagination import Connection, empty_connection, page_request, to_connection
from schema.permissions import HasScope, require_principal
from schema.webhooks.types import Webhook, WebhookDelivery

WEBHOOKS_ORDER = "webhooks:CREATED_AT:ASC"
DELIVERIES_ORDER = "webhookDeliveries:CREATED_AT:DESC"


@strawberry.type
class WebhookQueries:
    @strawberry.field(
        description="The sponsor's webhooks, oldest first.",
        permission_classes=[HasScope("admin")],
    )
    async def webhooks(
        self, info: Info, first: int | None = None, after: str | None = None
    ) -> Connection[Webhook]:
        principal = require_principal(info)
        size, keyset = page_request(info, order=WEBHOOKS_ORDER, first=first, after=after)
        if keyset is not None and not isinstance(keyset.value, datetime):
            raise invalid_argument("invalid cursor: malformed cursor")
        async with info.context.db() as session:
            page = await list_webhooks(session, principal.sponsor_id, first=size, after=keyset)
        return to_connection(
            page, order=WEBHOOKS_ORDER, project=Webhook.from_model, after=after is not None
        )

    @strawberry.field(
        description=(
            "A webhook's deliveries, newest first: each event with its status, attempts and the "
            "last attempt's outcome. Empty for an id that is not one of the sponsor's webhooks."
        ),
        permission_classes=[HasScope("admin")],
    )
    async def webhook_deliveries(
        self,
        info: Info,
        webhook: strawberry.ID,
        first: int | None = None,
        after: str | None = None,
    ) -> Connection[WebhookDelivery]:
        principal = require_principal(info)
        size, keyset = page_request(info, order=DELIVERIES_ORDER, first=first, after=after)
        if keyset is not None and not isinstance(keyset.value, datetime):
            raise invalid_argument("invalid cursor: malformed cursor")
        webhook_id = row_id_of(str(webhook), "Webhook")
        if webhook_id is None:
            return empty_connection()
        async with info.context.db() as session:
            page = await list_deliveries(
                session, principal.sponsor_id, webhook_id, first=size, after=keyset
            )
        return to_connection(
            page,
            order=DELIVERIES_ORDER,
            project=WebhookDelivery.from_model,
            after=after is not None,
        )
