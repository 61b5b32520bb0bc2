"""Mutations: ``createWebhook`` and ``deleteWebhook`` (scope admin).

The signing secret is generated here and answered once, by ``createWebhook``; it is never shown
again (a lost secret means deleting the webhook and creating another). Webhooks receive
team-level data, so their creator needs ``program:read`` and ``data:read`` as well as ``admin``.
"""

from __future__ import annotations

import secrets
from typing import Annotated

import strawberry

from db.enums import WebhookEventType
from db.errors import DomainError, InvalidInput, NotFound
from db.queries.webhooks import create_webhook, delete_webhook
from schema.context import Info
from schema.errors import NotFoundError, ValidationError, error_from_domain
from schema.ids import row_id_of
from schema.permissions import HasScope, require_principal
from schema.validation import check_code, check_text
from schema.webhooks.types import Webhook
from schema.webhooks.urls import check_webhook_url

SECRET_PREFIX = "whsec_"  # noqa: S105 (a prefix, not a secret)
DESCRIPTION_LENGTH = 500


@strawberry.input(description="A new webhook.")
class CreateWebhookInput:
    url: str = strawberry.field(
        description=(
            "Where to POST events: http(s), a public address (private and loopback addresses are "
            "refused unless the server allows them), no credentials in the URL."
        )
    )
    events: list[WebhookEventType] = strawberry.field(description="The event types to receive.")
    collaboratives: list[str] = strawberry.field(
        description="Codes of the sponsor's collaboratives whose events to receive (1-100)."
    )
    description: str = strawberry.field(default="", description="What it is for; 500 max.")


@strawberry.input(description="The webhook to delete.")
class DeleteWebhookInput:
    id: strawberry.ID = strawberry.field(description="Global id of the webhook.")


@strawberry.type(description="The webhook was created; keep its secret, it is shown only now.")
class CreateWebhookSuccess:
    webhook: Webhook = strawberry.field(description="The new webhook.")
    secret: str = strawberry.field(
        description=(
            "The signing secret: verify `X-CollabX-Signature` as the hex HMAC-SHA256 of "
            '"<X-CollabX-Timestamp>.<raw body>" with it. Shown only in this answer.'
        )
    )


@strawberry.type(description="The webhook was deleted with its deliveries; nothing more is sent.")
class DeleteWebhookSuccess:
    deleted_id: strawberry.ID = strawberry.field(description="Global id of the deleted webhook.")


CreateWebhookResult = Annotated[
    CreateWebhookSuccess | ValidationError | NotFoundError,
    strawberry.union("CreateWebhookResult"),
]
DeleteWebhookResult = Annotated[
    DeleteWebhookSuccess | NotFoundError,
    strawberry.union("DeleteWebhookResult"),
]


def _error(exc: DomainError) -> ValidationError | NotFoundError:
    error = error_from_domain(exc)
    if isinstance(error, ValidationError | NotFoundError):
        return error
    return ValidationError(message=error.message, code=error.code, field=error.field)


@strawberry.type
class WebhookMutations:
    @strawberry.mutation(
        description=(
            "Register an endpoint for events of some collaboratives; answers the signing secret "
            "once. Deliveries are POSTed as JSON, signed, and retried with exponential backoff."
        ),
        permission_classes=[HasScope("admin")],
    )
    async def create_webhook(self, info: Info, input: CreateWebhookInput) -> CreateWebhookResult:
        principal = require_principal(info)
        try:
            missing = [s for s in ("program:read", "data:read") if not principal.has_scope(s)]
            if missing:
                raise InvalidInput(
                    f"webhooks send team-level data: the creating client needs {missing[0]!r}",
                    field="events",
                )
            check_text(input.description, "description", max_length=DESCRIPTION_LENGTH)
            for code in input.collaboratives:
                check_code(code, "collaboratives")
            url = await check_webhook_url(
                input.url, allow_private=info.context.limits.webhook_allow_private
            )
            secret = SECRET_PREFIX + secrets.token_urlsafe(32)
            async with info.context.db.begin() as session:
                row, _ = await create_webhook(
                    session,
                    info.context.actor(),
                    url=url,
                    events=input.events,
                    collaborative_codes=input.collaboratives,
                    description=input.description,
                    secret=secret,
                )
        except DomainError as exc:
            return _error(exc)
        return CreateWebhookSuccess(webhook=Webhook.from_model(row), secret=secret)

    @strawberry.mutation(
        description="Delete a webhook and its deliveries; nothing more is sent to it.",
        permission_classes=[HasScope("admin")],
    )
    async def delete_webhook(self, info: Info, input: DeleteWebhookInput) -> DeleteWebhookResult:
        try:
            webhook_id = row_id_of(str(input.id), "Webhook")
            if webhook_id is None:
                raise NotFound("no such webhook", field="id")
            async with info.context.db.begin() as session:
                await delete_webhook(session, info.context.actor(), webhook_id)
        except DomainError as exc:
            error = _error(exc)
            assert isinstance(error, NotFoundError), "deleting checks nothing else"
            return error
        return DeleteWebhookSuccess(deleted_id=input.id)
