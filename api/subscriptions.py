"""GraphQL subscriptions over WebSocket: ``graphql-transport-ws`` on ``/graphql``.

The protocol is https://github.com/enisdenjo/graphql-ws/blob/master/PROTOCOL.md (strawberry
implements it; this module adds authentication and CollabX's limits). Only ``graphql-transport-ws``
is offered: a client asking for the legacy ``graphql-ws`` subprotocol alone is closed with 4406.

**Authentication on ``connection_init``.** The HTTP handshake needs no token (browsers cannot
set headers on a WebSocket); the first message must carry one in its payload, in either form:

* ``{"type": "connection_init", "payload": {"Authorization": "Bearer <token>"}}`` — what
  graphql-ws clients send as ``connectionParams`` when they mimic the HTTP header;
* ``{"type": "connection_init", "payload": {"token": "<token>"}}``.

The token is validated exactly as a bearer token over HTTP (same issuer, audience, key,
client-revocation and scope checks). Then the server answers ``connection_ack``.

**Close codes** (the protocol's, plus 4403 as it recommends for a refused connection):

* 4400 — a malformed message, or a ``connection_init`` payload that is not an object;
* 4401 — Unauthorized: no token, an invalid or expired token, a revoked client (also later,
  when a re-check fails or the token expires while connected), or ``subscribe`` before
  ``connection_ack``;
* 4403 — Forbidden: the client's scopes or teams changed while connected (reconnect to get the
  new rights);
* 4406 — no acceptable subprotocol; 4408 — no ``connection_init`` within
  ``COLLABX_WS_CONNECTION_INIT_TIMEOUT_SECONDS``; 4409 — an operation id already in use;
  4429 — a second ``connection_init``; 1011 — the database could not be asked (retry).

**Per-operation errors** (an ``error`` message for that id; the connection stays open): a missing
scope (``FORBIDDEN``), a collaborative that is not the caller's (``NOT_FOUND``), a validation
error, more than ``COLLABX_WS_MAX_SUBSCRIPTIONS`` operations at once on one connection
(``TOO_MANY_SUBSCRIPTIONS`` — the protocol has no close code for it, and closing would drop the
other subscriptions), and queries or mutations (``OPERATION_NOT_ALLOWED``: send those over HTTP,
where body limits and rate limits apply).

**Staying authorized.** Before an event is delivered, the token is checked again when the last
check is older than ``COLLABX_WS_REAUTH_SECONDS`` (default 5 s): a revoked client's socket is
closed with 4401 and receives nothing more; changed scopes or teams close it with 4403. When the
token expires the socket is closed with 4401; clients reconnect with a fresh token.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import dataclasses
import json
import logging
import time
import uuid
from datetime import timedelta
from typing import TYPE_CHECKING, Any, cast

from graphql import GraphQLError, OperationDefinitionNode, parse
from starlette.websockets import WebSocketState
from strawberry.subscriptions.protocols.graphql_transport_ws.handlers import (
    BaseGraphQLTransportWSHandler,
)
from strawberry.subscriptions.protocols.graphql_transport_ws.types import (
    ConnectionInitMessage,
    Message,
    SubscribeMessage,
)

from api.auth.middleware import authenticate
from api.auth.tokens import InvalidToken
from api.state import AppState
from schema.context import Context
from schema.loaders import Loaders
from schema.principal import Principal

if TYPE_CHECKING:
    from strawberry.http.async_base_view import AsyncBaseHTTPView, AsyncWebSocketAdapter
    from strawberry.schema import BaseSchema

logger = logging.getLogger("collabx.subscriptions")

MAX_REASON = 120
"""A close reason is at most 123 bytes (RFC 6455); ours stay ASCII and below."""
MAX_MESSAGE_BYTES = 1024 * 1024
"""Largest WebSocket message a client may send (``collabx serve`` passes it to uvicorn, which
closes the socket with 1009 beyond): subscription documents are small, and uvicorn's default of
16 MiB would let one message cost far more than an HTTP request may."""


def token_of(payload: dict[str, Any]) -> str | None:
    """The bearer token of a ``connection_init`` payload, or None."""
    for name in ("Authorization", "authorization"):
        header: object = payload.get(name)
        if isinstance(header, str):
            scheme, _, token = header.strip().partition(" ")
            if scheme.lower() == "bearer" and token.strip():
                return token.strip()
            return None
    given: object = payload.get("token")
    if isinstance(given, str) and given.strip():
        return given.strip()
    return None


def _expires_at(token: str) -> float | None:
    """``exp`` of a token already validated (read without checking the signature again)."""
    try:
        part = token.split(".")[1]
        claims = json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))
        exp = claims.get("exp") if isinstance(claims, dict) else None
    except (IndexError, ValueError):
        return None
    return float(exp) if isinstance(exp, int | float) else None


def _operation_type(payload: dict[str, Any], max_tokens: int | None) -> str | None:
    """query, mutation or subscription — None when that cannot be told here (strawberry then
    answers the syntax or selection error itself)."""
    query = payload.get("query")
    if not isinstance(query, str):
        return None
    try:
        document = parse(query, max_tokens=max_tokens)
    except GraphQLError:
        return None
    operations = [d for d in document.definitions if isinstance(d, OperationDefinitionNode)]
    name = payload.get("operationName")
    if isinstance(name, str):
        operations = [op for op in operations if op.name is not None and op.name.value == name]
    if len(operations) != 1:
        return None
    return operations[0].operation.value


def _same_rights(before: Principal, after: Principal) -> bool:
    return (before.kind, before.sponsor_id, before.scopes, before.team_ids) == (
        after.kind,
        after.sponsor_id,
        after.scopes,
        after.team_ids,
    )


class CollabXTransportWSHandler(BaseGraphQLTransportWSHandler[Context, None]):
    """strawberry's graphql-transport-ws handler with token authentication on
    ``connection_init``, re-checks before delivery, expiry, and CollabX's operation rules."""

    def __init__(
        self,
        view: AsyncBaseHTTPView[Any, Any, Any, Any, Any, Context, None],
        websocket: AsyncWebSocketAdapter,
        context: Context,
        root_value: None,
        schema: BaseSchema,
        connection_init_wait_timeout: timedelta,
        max_subscriptions_per_connection: int | None = None,
    ) -> None:
        super().__init__(
            view,
            websocket,
            context,
            root_value,
            schema,
            connection_init_wait_timeout,
            max_subscriptions_per_connection,
        )
        self._token = ""
        self._principal: Principal | None = None
        self._checked_at = 0.0
        self._check_lock = asyncio.Lock()
        self._closed = False
        self._expiry: asyncio.Task[None] | None = None

    @property
    def state(self) -> AppState:
        """The app's shared state (the view carries it)."""
        view: Any = self.view
        return cast(AppState, view.state)

    async def close(self, code: int, reason: str) -> None:
        """Close the socket once (later sends are dropped)."""
        if self._closed:
            return
        self._closed = True
        with contextlib.suppress(Exception):
            await self.websocket.close(code=code, reason=reason[:MAX_REASON])

    def _socket_open(self) -> bool:
        ws = getattr(self.websocket, "ws", None)
        state = getattr(ws, "application_state", WebSocketState.CONNECTED)
        return not self._closed and state != WebSocketState.DISCONNECTED

    async def handle_connection_init(self, message: ConnectionInitMessage) -> None:
        """Authenticate the payload's token; ack, or close with 4401."""
        if self.connection_timed_out:
            return
        if self.connection_init_timeout_task:
            self.connection_init_timeout_task.cancel()
        payload = message.get("payload")
        if payload is None:
            payload = {}
        if not isinstance(payload, dict):
            await self.close(4400, "Invalid connection init payload")
            return
        if self.connection_init_received:
            await self.close(4429, "Too many initialisation requests")
            return
        self.connection_init_received = True
        token = token_of(payload)
        if token is None:
            await self.close(
                4401,
                "Unauthorized: send the token in connection_init "
                '({"Authorization": "Bearer ..."} or {"token": "..."})',
            )
            return
        try:
            principal = await authenticate(self.state, token)
        except InvalidToken as exc:
            await self.close(4401, f"Unauthorized: {exc}".replace('"', "'"))
            return
        except Exception:
            logger.exception("could not authenticate a websocket connection")
            await self.close(1011, "Authentication is unavailable; retry shortly")
            return
        self._token, self._principal, self._checked_at = token, principal, time.monotonic()
        self.context = dataclasses.replace(
            self.context,
            principal=principal,
            loaders=Loaders(self.state.read_sessionmaker, principal.sponsor_id),
        )
        expires = _expires_at(token)
        if expires is not None:
            self._expiry = asyncio.create_task(self._expire(max(0.0, expires - time.time())))
        await self.send_message({"type": "connection_ack"})
        self.connection_acknowledged = True

    async def _expire(self, delay: float) -> None:
        await asyncio.sleep(delay)
        await self.close(4401, "Unauthorized: the token expired; reconnect with a new token")

    async def handle_subscribe(self, message: SubscribeMessage) -> None:
        """Subscriptions only, at most the configured number at once; the rest as strawberry."""
        if self.connection_acknowledged and message["id"] not in self.operations:
            settings = self.state.settings
            payload = message["payload"]
            kind = _operation_type(cast(dict[str, Any], payload), settings.max_query_tokens or None)
            if kind is not None and kind != "subscription":
                await self._refuse(
                    message["id"],
                    f"only subscriptions run over WebSocket; send a {kind} over HTTP POST",
                    "OPERATION_NOT_ALLOWED",
                )
                return
            if len(self.operations) >= settings.ws_max_subscriptions:
                await self._refuse(
                    message["id"],
                    f"at most {settings.ws_max_subscriptions} subscriptions per connection; "
                    "complete one or open another connection",
                    "TOO_MANY_SUBSCRIPTIONS",
                )
                return
        await super().handle_subscribe(message)

    async def _refuse(self, operation_id: str, text: str, code: str) -> None:
        error = GraphQLError(text, extensions={"code": code})
        await self.send_message({"id": operation_id, "type": "error", "payload": [error.formatted]})

    async def send_message(self, message: Message) -> None:
        """Send, unless the socket is closed; events only while the client is still allowed."""
        if not self._socket_open():
            return
        if message["type"] == "next" and not await self._still_authorized():
            return
        try:
            await super().send_message(message)
        except RuntimeError:  # the socket was closed meanwhile (strawberry's own closes)
            self._closed = True

    async def _still_authorized(self) -> bool:
        """Re-validate the token and client when the last check is older than the setting."""
        original = self._principal
        if original is None:
            return False
        async with self._check_lock:
            if self._closed:
                return False
            if time.monotonic() - self._checked_at < self.state.settings.ws_reauth_seconds:
                return True
            try:
                principal = await authenticate(self.state, self._token)
            except InvalidToken as exc:
                await self.close(4401, f"Unauthorized: {exc}".replace('"', "'"))
                return False
            except Exception:
                logger.exception("could not re-check a websocket client; event withheld")
                return False
            if not _same_rights(original, principal):
                await self.close(4403, "Forbidden: the client's scopes or teams changed; reconnect")
                return False
            self._checked_at = time.monotonic()
            return True

    async def shutdown(self) -> None:
        """Stop the expiry timer, then strawberry's clean-up of every operation."""
        if self._expiry is not None:
            self._expiry.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._expiry
        await super().shutdown()


def connection_id() -> str:
    """An id for a WebSocket connection's log lines (HTTP requests have a request id)."""
    return f"ws-{uuid.uuid4().hex}"
