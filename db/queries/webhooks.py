"""Webhooks and their deliveries: administration (audited), the delivery queue, outcomes.

The queue is the ``webhook_deliveries`` table. Every API process records the deliveries of the
events it hears (:func:`record_deliveries`; a unique key makes the copies of other processes no-ops)
and sends due ones (:func:`claim_due_deliveries` takes a lease by moving ``next_attempt_at``
ahead, with ``FOR UPDATE SKIP LOCKED`` on PostgreSQL so two processes never send the same
attempt; a process that dies mid-attempt leaves the lease to expire and another retries).
"""

from __future__ import annotations

import json
import uuid
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from db.enums import WebhookDeliveryStatus, WebhookEventType
from db.errors import InvalidInput, NotFound
from db.events import WebhooksChanged, publish
from db.models import Collaborative, Webhook, WebhookCollaborative, WebhookDelivery
from db.queries.audit import Actor, record_event, snapshot
from db.queries.paging import Keyset, Page, keyset_page

MAX_COLLABORATIVES = 100
"""Most collaboratives one webhook may name."""
MAX_ERROR = 500
"""Longest stored error text of an attempt."""


def encode_payload(payload: dict[str, Any]) -> bytes:
    """The body POSTed for a delivery (compact JSON, UTF-8): what the signature covers."""
    return json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def _audit_view(webhook: Webhook, collaborative_ids: Sequence[uuid.UUID]) -> dict[str, Any]:
    """A webhook for the audit trail, without its secret."""
    view = snapshot(webhook)
    view.pop("secret", None)
    view["collaborative_ids"] = [str(c) for c in collaborative_ids]
    return view


async def _collaborative_ids(
    session: AsyncSession, sponsor_id: uuid.UUID, codes: Sequence[str]
) -> list[uuid.UUID]:
    if not codes:
        raise InvalidInput("name at least one collaborative", field="collaboratives")
    if len(codes) > MAX_COLLABORATIVES:
        raise InvalidInput(
            f"a webhook names at most {MAX_COLLABORATIVES} collaboratives", field="collaboratives"
        )
    wanted = list(dict.fromkeys(codes))
    rows = await session.execute(
        select(Collaborative.code, Collaborative.id).where(
            Collaborative.sponsor_id == sponsor_id, Collaborative.code.in_(wanted)
        )
    )
    by_code: dict[str, uuid.UUID] = {code: row_id for code, row_id in rows}
    missing = [code for code in wanted if code not in by_code]
    if missing:
        raise NotFound(f"no collaborative {missing[0]!r}", field="collaboratives")
    return [by_code[code] for code in wanted]


async def create_webhook(
    session: AsyncSession,
    actor: Actor,
    *,
    url: str,
    events: Sequence[WebhookEventType],
    collaborative_codes: Sequence[str],
    description: str,
    secret: str,
) -> tuple[Webhook, list[uuid.UUID]]:
    """A new webhook of the actor's sponsor (the URL is checked by the caller); audited."""
    if not events:
        raise InvalidInput("name at least one event type", field="events")
    collaborative_ids = await _collaborative_ids(session, actor.sponsor_id, collaborative_codes)
    webhook = Webhook(
        sponsor_id=actor.sponsor_id,
        id=uuid.uuid4(),
        url=url,
        events=[event.value for event in dict.fromkeys(events)],
        description=description,
        secret=secret,
        created_by=actor.client_id,
    )
    session.add(webhook)
    await session.flush()
    session.add_all(
        WebhookCollaborative(
            sponsor_id=actor.sponsor_id, webhook_id=webhook.id, collaborative_id=collaborative_id
        )
        for collaborative_id in collaborative_ids
    )
    await session.flush()
    await publish(session, WebhooksChanged(actor.sponsor_id))
    await record_event(
        session,
        actor,
        action="webhook.create",
        entity_type="Webhook",
        entity_id=webhook.id,
        before=None,
        after=_audit_view(webhook, collaborative_ids),
    )
    return webhook, collaborative_ids


async def get_webhook(
    session: AsyncSession, sponsor_id: uuid.UUID, webhook_id: uuid.UUID
) -> Webhook | None:
    """A sponsor's webhook."""
    webhook: Webhook | None = await session.scalar(
        select(Webhook).where(Webhook.sponsor_id == sponsor_id, Webhook.id == webhook_id)
    )
    return webhook


async def delete_webhook(session: AsyncSession, actor: Actor, webhook_id: uuid.UUID) -> Webhook:
    """Remove a webhook with its deliveries (nothing more is sent); audited."""
    webhook = await get_webhook(session, actor.sponsor_id, webhook_id)
    if webhook is None:
        raise NotFound("no such webhook", field="id")
    collaborative_ids = (
        await collaborative_ids_by_webhook_ids(session, actor.sponsor_id, [webhook.id])
    )[0]
    before = _audit_view(webhook, collaborative_ids)
    for model in (WebhookDelivery, WebhookCollaborative):
        await session.execute(
            delete(model)
            .where(model.sponsor_id == actor.sponsor_id, model.webhook_id == webhook.id)
            .execution_options(synchronize_session=False)
        )
    await session.delete(webhook)
    await session.flush()
    await publish(session, WebhooksChanged(actor.sponsor_id))
    await record_event(
        session,
        actor,
        action="webhook.delete",
        entity_type="Webhook",
        entity_id=webhook.id,
        before=before,
        after=None,
    )
    return webhook


async def list_webhooks(
    session: AsyncSession, sponsor_id: uuid.UUID, *, first: int, after: Keyset | None = None
) -> Page[Webhook]:
    """A page of a sponsor's webhooks, oldest first."""
    return await keyset_page(
        session,
        select(Webhook).where(Webhook.sponsor_id == sponsor_id),
        sort=Webhook.created_at,
        tiebreak=Webhook.id,
        descending=False,
        first=first,
        after=after,
    )


async def webhooks_by_ids(
    session: AsyncSession, sponsor_id: uuid.UUID, ids: Sequence[uuid.UUID]
) -> list[Webhook | None]:
    """Webhooks in key order (None where unknown): a DataLoader batch."""
    rows = await session.scalars(
        select(Webhook).where(Webhook.sponsor_id == sponsor_id, Webhook.id.in_(set(ids)))
    )
    found = {row.id: row for row in rows}
    return [found.get(key) for key in ids]


async def collaborative_ids_by_webhook_ids(
    session: AsyncSession, sponsor_id: uuid.UUID, ids: Sequence[uuid.UUID]
) -> list[list[uuid.UUID]]:
    """Each webhook's collaboratives, in key order: a DataLoader batch."""
    rows = await session.execute(
        select(WebhookCollaborative.webhook_id, WebhookCollaborative.collaborative_id)
        .where(
            WebhookCollaborative.sponsor_id == sponsor_id,
            WebhookCollaborative.webhook_id.in_(set(ids)),
        )
        .order_by(WebhookCollaborative.webhook_id, WebhookCollaborative.collaborative_id)
    )
    found: defaultdict[uuid.UUID, list[uuid.UUID]] = defaultdict(list)
    for webhook_id, collaborative_id in rows:
        found[webhook_id].append(collaborative_id)
    return [found[key] for key in ids]


async def list_deliveries(
    session: AsyncSession,
    sponsor_id: uuid.UUID,
    webhook_id: uuid.UUID,
    *,
    first: int,
    after: Keyset | None = None,
) -> Page[WebhookDelivery]:
    """A page of a webhook's deliveries, newest first."""
    return await keyset_page(
        session,
        select(WebhookDelivery).where(
            WebhookDelivery.sponsor_id == sponsor_id, WebhookDelivery.webhook_id == webhook_id
        ),
        sort=WebhookDelivery.created_at,
        tiebreak=WebhookDelivery.id,
        descending=True,
        first=first,
        after=after,
    )


async def deliveries_by_ids(
    session: AsyncSession, sponsor_id: uuid.UUID, ids: Sequence[uuid.UUID]
) -> list[WebhookDelivery | None]:
    """Deliveries in key order (None where unknown): a DataLoader batch."""
    rows = await session.scalars(
        select(WebhookDelivery).where(
            WebhookDelivery.sponsor_id == sponsor_id, WebhookDelivery.id.in_(set(ids))
        )
    )
    found = {row.id: row for row in rows}
    return [found.get(key) for key in ids]


# --- the delivery queue ----------------------------------------------------------------------


async def sponsors_with_webhooks(session: AsyncSession) -> set[uuid.UUID]:
    """Every sponsor that has a webhook (a dispatcher skips the events of the others)."""
    return set(await session.scalars(select(Webhook.sponsor_id).distinct()))


async def collaborative_codes(
    session: AsyncSession, sponsor_id: uuid.UUID, ids: set[uuid.UUID]
) -> dict[uuid.UUID, str]:
    """Codes of a sponsor's collaboratives by id (for delivery bodies)."""
    if not ids:
        return {}
    rows = await session.execute(
        select(Collaborative.id, Collaborative.code).where(
            Collaborative.sponsor_id == sponsor_id, Collaborative.id.in_(ids)
        )
    )
    return {row_id: code for row_id, code in rows}


@dataclass(frozen=True)
class Subscriber:
    """A webhook that wants an event, with the collaboratives of it that it listens to."""

    webhook_id: uuid.UUID
    events: frozenset[WebhookEventType]
    collaborative_ids: frozenset[uuid.UUID]
    created_by: str


async def subscribers_of(
    session: AsyncSession, sponsor_id: uuid.UUID, collaborative_ids: frozenset[uuid.UUID] | None
) -> list[Subscriber]:
    """The sponsor's webhooks listening to any of ``collaborative_ids`` (None: to any)."""
    query = (
        select(
            Webhook.id,
            Webhook.events,
            Webhook.created_by,
            WebhookCollaborative.collaborative_id,
        )
        .join(
            WebhookCollaborative,
            (WebhookCollaborative.sponsor_id == Webhook.sponsor_id)
            & (WebhookCollaborative.webhook_id == Webhook.id),
        )
        .where(Webhook.sponsor_id == sponsor_id)
    )
    if collaborative_ids is not None:
        query = query.where(WebhookCollaborative.collaborative_id.in_(collaborative_ids))
    grouped: dict[uuid.UUID, tuple[list[str], str, set[uuid.UUID]]] = {}
    for webhook_id, events, created_by, collaborative_id in await session.execute(query):
        entry = grouped.setdefault(webhook_id, (events, created_by, set()))
        entry[2].add(collaborative_id)
    return [
        Subscriber(
            webhook_id=webhook_id,
            events=frozenset(WebhookEventType(e) for e in events),
            collaborative_ids=frozenset(collaboratives),
            created_by=created_by,
        )
        for webhook_id, (events, created_by, collaboratives) in grouped.items()
    ]


@dataclass(frozen=True)
class NewDelivery:
    """A delivery to record."""

    sponsor_id: uuid.UUID
    webhook_id: uuid.UUID
    event_id: str
    event_type: WebhookEventType
    payload: dict[str, Any]


async def record_deliveries(
    session: AsyncSession, deliveries: Sequence[NewDelivery], *, now: datetime
) -> int:
    """Queue deliveries due now; one already recorded (by another process) is left alone.
    Returns how many were new."""
    if not deliveries:
        return 0
    postgres = session.get_bind().dialect.name == "postgresql"
    dialect_insert = postgresql.insert if postgres else sqlite.insert
    added = 0
    for delivery in deliveries:
        statement = (
            dialect_insert(WebhookDelivery)
            .values(
                sponsor_id=delivery.sponsor_id,
                id=uuid.uuid4(),
                webhook_id=delivery.webhook_id,
                event_id=delivery.event_id,
                event_type=delivery.event_type,
                payload=delivery.payload,
                status=WebhookDeliveryStatus.PENDING,
                attempts=0,
                next_attempt_at=now,
                last_error="",
                created_at=now,
            )
            .on_conflict_do_nothing(index_elements=["sponsor_id", "webhook_id", "event_id"])
            .returning(WebhookDelivery.id)
        )
        if await session.scalar(statement) is not None:
            added += 1
    return added


@dataclass(frozen=True)
class DueDelivery:
    """A claimed attempt: what to send where, signed with which secret."""

    sponsor_id: uuid.UUID
    id: uuid.UUID
    webhook_id: uuid.UUID
    event_id: str
    event_type: WebhookEventType
    payload: dict[str, Any]
    attempt: int
    url: str
    secret: str


async def claim_due_deliveries(
    session: AsyncSession, *, now: datetime, limit: int, lease: timedelta
) -> list[DueDelivery]:
    """Take up to ``limit`` due attempts (of every sponsor: this is the worker's queue), count
    the attempt and hold them for ``lease``; commit right after so the lease is visible."""
    due = await session.execute(
        select(WebhookDelivery, Webhook.url, Webhook.secret)
        .join(
            Webhook,
            (Webhook.sponsor_id == WebhookDelivery.sponsor_id)
            & (Webhook.id == WebhookDelivery.webhook_id),
        )
        .where(
            WebhookDelivery.status == WebhookDeliveryStatus.PENDING,
            WebhookDelivery.next_attempt_at <= now,
        )
        .order_by(WebhookDelivery.next_attempt_at, WebhookDelivery.id)
        .limit(limit)
        .with_for_update(of=WebhookDelivery, skip_locked=True)
    )
    claimed: list[DueDelivery] = []
    for delivery, url, secret in due.all():
        delivery.attempts += 1
        delivery.last_attempt_at = now
        delivery.next_attempt_at = now + lease
        claimed.append(
            DueDelivery(
                sponsor_id=delivery.sponsor_id,
                id=delivery.id,
                webhook_id=delivery.webhook_id,
                event_id=delivery.event_id,
                event_type=delivery.event_type,
                payload=delivery.payload,
                attempt=delivery.attempts,
                url=url,
                secret=secret,
            )
        )
    await session.flush()
    return claimed


async def finish_attempt(
    session: AsyncSession,
    delivery: DueDelivery,
    *,
    now: datetime,
    status_code: int | None,
    error: str,
    succeeded: bool,
    retry_at: datetime | None,
) -> None:
    """Record an attempt's outcome: SUCCEEDED, PENDING again until ``retry_at``, or FAILED
    (``retry_at`` None)."""
    if succeeded:
        status, next_attempt, delivered = WebhookDeliveryStatus.SUCCEEDED, None, now
    elif retry_at is not None:
        status, next_attempt, delivered = WebhookDeliveryStatus.PENDING, retry_at, None
    else:
        status, next_attempt, delivered = WebhookDeliveryStatus.FAILED, None, None
    await session.execute(
        update(WebhookDelivery)
        .where(
            WebhookDelivery.sponsor_id == delivery.sponsor_id,
            WebhookDelivery.id == delivery.id,
            WebhookDelivery.attempts == delivery.attempt,
        )
        .values(
            status=status,
            next_attempt_at=next_attempt,
            last_status_code=status_code,
            last_error=error[:MAX_ERROR],
            delivered_at=delivered,
        )
        .execution_options(synchronize_session=False)
    )
