"""Webhook deliveries: every API process turns the live events it hears into signed HTTP POSTs.

Two background tasks per process (started by the lifespan, api/live.py), on a small connection
pool of their own (background work never waits for, or holds, a request's connection):

* **collect** — for each event of the bus, the webhooks of its sponsor that listen to its
  collaboratives get one delivery per (event type, collaborative) — per signal for
  SIGNAL_DETECTED — recorded in ``webhook_deliveries`` (each process records the same rows; the
  unique event id keeps one). Events of sponsors without webhooks cost no statement: the set of
  sponsors with webhooks is loaded at start, updated by the bus's ``WebhooksChanged`` events,
  and reloaded after the bus reconnects (notifications may have been missed) and every minute.
  A webhook receives what its creating client could subscribe to: nothing once that client is
  revoked or lacks ``program:read``/``data:read``, only its own teams for a team-bound client.
* **send** — claims due deliveries (PostgreSQL: ``FOR UPDATE SKIP LOCKED``, so processes share
  the queue) and POSTs each::

      POST <url>
      Content-Type: application/json
      User-Agent: CollabX-Webhooks/1
      X-CollabX-Event: MEASURE_DATA_SUBMITTED | SIGNAL_DETECTED
      X-CollabX-Delivery: <global id of the delivery>
      X-CollabX-Timestamp: <Unix seconds of this attempt>
      X-CollabX-Signature: sha256=<hex HMAC-SHA256(secret, "<timestamp>.<body>")>

  A 2xx answer is success. Anything else — another status, a redirect (never followed), a
  timeout, a connection error — is retried after ``COLLABX_WEBHOOK_RETRY_BASE_SECONDS`` x 2^(n-1)
  (capped by ``COLLABX_WEBHOOK_RETRY_MAX_SECONDS``, plus up to 25 % jitter) until
  ``COLLABX_WEBHOOK_MAX_ATTEMPTS`` attempts, then FAILED. A URL whose host now resolves to a
  non-public address fails at once (schema/webhooks/urls.py). Receivers should check the
  signature, reject timestamps older than a few minutes (replays), and drop repeated ``id``s (a
  retry after a lost answer repeats an event).

Events committed while no API process runs are not delivered (the bus is not durable); readers
that must see everything use the delta export.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import logging
import random
import time
import uuid
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

import httpx

from api.state import AppState
from db.base import utcnow
from db.enums import ClientKind, WebhookEventType
from db.events import DataChange, EventStream, MeasureDataEvent, WebhooksChanged
from db.live import LiveEvents
from db.queries.auth import ClientRecord, get_client_by_client_id
from db.queries.live import DetectedSignal
from db.queries.webhooks import (
    DueDelivery,
    NewDelivery,
    Subscriber,
    claim_due_deliveries,
    collaborative_codes,
    encode_payload,
    finish_attempt,
    record_deliveries,
    sponsors_with_webhooks,
    subscribers_of,
)
from db.sessions import create_engine, create_sessionmaker
from schema.ids import encode_global_id
from schema.webhooks.urls import url_address_problem

logger = logging.getLogger("collabx.webhooks")

USER_AGENT = "CollabX-Webhooks/1"
BATCH = 20
"""Deliveries one process sends at once."""
MAX_CHANGES = 1_000
"""Changed keys listed in one MEASURE_DATA_SUBMITTED body (the rest: ``changesTruncated``)."""
READ_SCOPES = ("program:read", "data:read")
RELOAD_SECONDS = 60.0
"""How often the set of sponsors with webhooks is read again (a safety net)."""


def signature(secret: str, timestamp: str, body: bytes) -> str:
    """The ``X-CollabX-Signature`` value of a body sent at ``timestamp``."""
    digest = hmac.new(secret.encode("utf-8"), timestamp.encode("ascii") + b"." + body, "sha256")
    return f"sha256={digest.hexdigest()}"


def retry_delay(attempt: int, *, base: float, cap: float) -> float:
    """Seconds before the attempt after ``attempt`` (1-based): exponential, capped, jittered."""
    delay: float = min(base * 2.0 ** (attempt - 1), cap)
    return delay * (1 + random.random() / 4)  # noqa: S311 (jitter, not a secret)


def _time(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


def _allowed(client: ClientRecord | None) -> bool:
    return (
        client is not None
        and client.revoked_at is None
        and all(scope in client.scopes for scope in READ_SCOPES)
    )


def _teams(client: ClientRecord) -> frozenset[uuid.UUID] | None:
    """The teams a team-bound creator may see (None: every team)."""
    return frozenset(client.team_ids) if client.kind is ClientKind.EHR_INTEGRATION else None


def _measure_data_body(
    event: MeasureDataEvent,
    event_id: str,
    sponsor: str,
    collaborative: tuple[uuid.UUID, str],
    changes: Sequence[DataChange],
) -> dict[str, Any]:
    kinds = [change.kind.value for change in changes]
    listed = changes[:MAX_CHANGES]
    return {
        "id": event_id,
        "type": WebhookEventType.MEASURE_DATA_SUBMITTED.value,
        "createdAt": _time(event.at),
        "sponsor": sponsor,
        "collaborative": {
            "id": encode_global_id("Collaborative", collaborative[0]),
            "code": collaborative[1],
        },
        "data": {
            "receiptId": str(event.receipt_id),
            "operation": event.operation,
            "status": event.status,
            "clientId": event.client_id,
            "submittedAt": _time(event.at),
            "created": kinds.count("CREATED"),
            "updated": kinds.count("UPDATED"),
            "deleted": kinds.count("DELETED"),
            "changes": [
                {
                    "team": change.team_code,
                    "measure": change.measure_code,
                    "period": change.period,
                    "stratum": change.stratum,
                    "change": change.kind.value,
                }
                for change in listed
            ],
            "changesTruncated": len(listed) < len(changes),
        },
    }


def _signal_body(
    event: MeasureDataEvent,
    sponsor: str,
    collaborative: tuple[uuid.UUID, str],
    signal: DetectedSignal,
) -> dict[str, Any]:
    return {
        "id": signal.event_id,
        "type": WebhookEventType.SIGNAL_DETECTED.value,
        "createdAt": _time(event.at),
        "sponsor": sponsor,
        "collaborative": {
            "id": encode_global_id("Collaborative", collaborative[0]),
            "code": collaborative[1],
        },
        "data": {
            "receiptId": str(signal.receipt_id),
            "team": signal.team_code,
            "measure": signal.measure_code,
            "chart": signal.chart.value,
            "chartType": signal.chart_type,
            "rules": signal.rules,
            "rule": signal.rule.value,
            "side": signal.side.value if signal.side is not None else None,
            "variation": signal.variation.value if signal.variation is not None else None,
            "periods": list(signal.periods),
            "detectedAt": _time(event.at),
        },
    }


class WebhookDispatcher:
    """Records and sends the webhook deliveries of one process (see the module docstring)."""

    def __init__(self, state: AppState, events: LiveEvents) -> None:
        self._state = state
        self._events = events
        self._settings = state.settings
        self._stream: EventStream | None = None
        self._client: httpx.AsyncClient | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._wake = asyncio.Event()
        self._next_retry: float | None = None
        self._sponsors: set[uuid.UUID] | None = None
        self._loaded_at = 0.0
        self._reconnects = 0
        # An engine of its own: background work never takes a request's pooled connection.
        self._engine = create_engine(self._settings.database_url, pool_size=2)
        self._sessions = create_sessionmaker(self._engine)

    async def start(self) -> None:
        """Begin collecting events and sending deliveries."""
        self._events.bus.watch_webhooks(self._webhooks_changed)
        self._stream = self._events.subscribe(None)
        self._client = httpx.AsyncClient(
            timeout=self._settings.webhook_timeout_seconds,
            follow_redirects=False,
            headers={"User-Agent": USER_AGENT},
            trust_env=False,
        )
        self._tasks = [
            asyncio.create_task(self._collect(self._stream), name="collabx-webhook-collect"),
            asyncio.create_task(self._send_loop(), name="collabx-webhook-send"),
        ]

    async def stop(self) -> None:
        """Stop both tasks; attempts in flight are abandoned (their lease expires, and another
        process or the next start retries them)."""
        if self._stream is not None:
            self._stream.close()
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks = []
        if self._client is not None:
            await self._client.aclose()
            self._client = None
        await self._engine.dispose()

    # --- collect -------------------------------------------------------------------------------

    async def _collect(self, stream: EventStream) -> None:
        async for event in stream:
            try:
                if await self.record(event):
                    self._wake.set()
            except Exception:
                logger.exception("could not record webhook deliveries of %s", event.event_id)

    def _webhooks_changed(self, event: WebhooksChanged) -> None:
        if self._sponsors is not None:
            self._sponsors.add(event.sponsor_id)  # a deletion may leave others: look them up

    async def _has_webhooks(self, sponsor_id: uuid.UUID) -> bool:
        """Whether the sponsor may have webhooks (reloading the set when it may be stale)."""
        bus = self._events.bus
        stale = time.monotonic() - self._loaded_at > RELOAD_SECONDS
        if self._sponsors is None or stale or bus.reconnects != self._reconnects:
            self._reconnects = bus.reconnects
            async with self._sessions() as session:
                self._sponsors = await sponsors_with_webhooks(session)
            self._loaded_at = time.monotonic()
        return sponsor_id in self._sponsors

    async def record(self, event: MeasureDataEvent) -> int:
        """Record the deliveries of one event; how many were new in this process."""
        if not await self._has_webhooks(event.sponsor_id):
            return 0
        sessions = self._sessions
        async with sessions() as session:
            subscribers = await subscribers_of(
                session, event.sponsor_id, event.collaborative_ids or None
            )
            if not subscribers:
                return 0
            creators = {
                client_id: await get_client_by_client_id(session, client_id)
                for client_id in {s.created_by for s in subscribers}
            }
        allowed = [s for s in subscribers if _allowed(creators[s.created_by])]
        if not allowed:
            return 0
        changes = await self._events.changes(event)
        wants_signals = any(WebhookEventType.SIGNAL_DETECTED in s.events for s in allowed)
        signals = await self._events.signals(event) if wants_signals else ()
        affected = {change.collaborative_id for change in changes}
        async with sessions() as session:
            codes = await collaborative_codes(session, event.sponsor_id, affected)
        deliveries: list[NewDelivery] = []
        for subscriber in allowed:
            creator = creators[subscriber.created_by]
            assert creator is not None
            deliveries.extend(self._deliveries(event, subscriber, creator, changes, signals, codes))
        if not deliveries:
            return 0
        async with sessions.begin() as session:
            return await record_deliveries(session, deliveries, now=utcnow())

    def _deliveries(
        self,
        event: MeasureDataEvent,
        subscriber: Subscriber,
        creator: ClientRecord,
        changes: Sequence[DataChange],
        signals: Sequence[DetectedSignal],
        codes: dict[uuid.UUID, str],
    ) -> list[NewDelivery]:
        teams = _teams(creator)
        found: list[NewDelivery] = []
        for collaborative_id in sorted(subscriber.collaborative_ids & codes.keys()):
            collaborative = (collaborative_id, codes[collaborative_id])
            if WebhookEventType.MEASURE_DATA_SUBMITTED in subscriber.events:
                visible = [
                    change
                    for change in changes
                    if change.collaborative_id == collaborative_id
                    and (teams is None or change.team_id in teams)
                ]
                if visible:
                    event_id = f"{event.event_id}:{collaborative_id}"
                    found.append(
                        NewDelivery(
                            sponsor_id=event.sponsor_id,
                            webhook_id=subscriber.webhook_id,
                            event_id=event_id,
                            event_type=WebhookEventType.MEASURE_DATA_SUBMITTED,
                            payload=_measure_data_body(
                                event, event_id, creator.sponsor_slug, collaborative, visible
                            ),
                        )
                    )
            if WebhookEventType.SIGNAL_DETECTED in subscriber.events:
                found.extend(
                    NewDelivery(
                        sponsor_id=event.sponsor_id,
                        webhook_id=subscriber.webhook_id,
                        event_id=signal.event_id,
                        event_type=WebhookEventType.SIGNAL_DETECTED,
                        payload=_signal_body(event, creator.sponsor_slug, collaborative, signal),
                    )
                    for signal in signals
                    if signal.collaborative_id == collaborative_id
                    and (teams is None or signal.team_id in teams)
                )
        return found

    # --- send ----------------------------------------------------------------------------------

    async def _send_loop(self) -> None:
        while True:
            try:
                sent = await self.send_due()
            except Exception:
                logger.exception("could not send webhook deliveries")
                sent = 0
            if sent >= BATCH:
                continue  # more may be due
            wait = self._settings.webhook_poll_seconds
            if self._next_retry is not None:
                wait = max(0.0, min(wait, self._next_retry - time.monotonic()))
                self._next_retry = None
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=wait)
            self._wake.clear()

    async def send_due(self) -> int:
        """Send the deliveries due now (at most :data:`BATCH`); how many were attempted."""
        lease = timedelta(seconds=self._settings.webhook_timeout_seconds * 2 + 5)
        async with self._sessions.begin() as session:
            due = await claim_due_deliveries(session, now=utcnow(), limit=BATCH, lease=lease)
        if due:
            await asyncio.gather(*(self._attempt(delivery) for delivery in due))
        return len(due)

    async def _attempt(self, delivery: DueDelivery) -> None:
        settings = self._settings
        client = self._client
        assert client is not None, "started"
        status: int | None = None
        error = ""
        permanent = False
        problem = await url_address_problem(
            delivery.url, allow_private=settings.webhook_allow_private
        )
        if problem is not None:
            error, permanent = f"refused: {problem}", True
        else:
            body = encode_payload(delivery.payload)
            timestamp = str(int(time.time()))
            headers = {
                "Content-Type": "application/json",
                "X-CollabX-Event": delivery.event_type.value,
                "X-CollabX-Delivery": encode_global_id("WebhookDelivery", delivery.id),
                "X-CollabX-Timestamp": timestamp,
                "X-CollabX-Signature": signature(delivery.secret, timestamp, body),
            }
            try:
                async with client.stream(
                    "POST", delivery.url, content=body, headers=headers
                ) as response:
                    status = response.status_code
            except httpx.HTTPError as exc:
                error = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
        succeeded = status is not None and 200 <= status < 300
        if status is not None and not succeeded:
            error = f"HTTP {status}"
        now = utcnow()
        retry_at = None
        if not succeeded and not permanent and delivery.attempt < settings.webhook_max_attempts:
            delay = retry_delay(
                delivery.attempt,
                base=settings.webhook_retry_base_seconds,
                cap=settings.webhook_retry_max_seconds,
            )
            retry_at = now + timedelta(seconds=delay)
            due = time.monotonic() + delay
            self._next_retry = due if self._next_retry is None else min(self._next_retry, due)
        async with self._sessions.begin() as session:
            await finish_attempt(
                session,
                delivery,
                now=now,
                status_code=status,
                error=error,
                succeeded=succeeded,
                retry_at=retry_at,
            )
