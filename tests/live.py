"""Test helpers for subscriptions: an in-process WebSocket client that drives the ASGI app in the
test's own event loop (the whole middleware stack runs, no threads), and the protocol's steps."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Callable
from types import TracebackType
from typing import Any

from starlette.types import ASGIApp, Message

from api.state import AppState

PROTOCOL = "graphql-transport-ws"


class Closed(Exception):
    """The server closed the socket."""

    def __init__(self, code: int, reason: str) -> None:
        super().__init__(f"closed {code}: {reason}")
        self.code = code
        self.reason = reason


class AsgiWebSocket:
    """A WebSocket client for an ASGI app: ``async with AsgiWebSocket(app) as ws``."""

    def __init__(
        self,
        app: ASGIApp,
        path: str = "/graphql",
        *,
        subprotocols: tuple[str, ...] = (PROTOCOL,),
        headers: list[tuple[bytes, bytes]] | None = None,
    ) -> None:
        self.app = app
        self.scope: dict[str, Any] = {
            "type": "websocket",
            "asgi": {"version": "3.0"},
            "path": path,
            "raw_path": path.encode(),
            "query_string": b"",
            "headers": [
                (b"host", b"collabx.test"),
                (b"sec-websocket-protocol", ", ".join(subprotocols).encode()),
                *(headers or []),
            ],
            "subprotocols": list(subprotocols),
            "scheme": "ws",
            "server": ("collabx.test", 80),
            "client": ("127.0.0.1", 50000),
            "root_path": "",
        }
        self._to_app: asyncio.Queue[Message] = asyncio.Queue()
        self._from_app: asyncio.Queue[Message] = asyncio.Queue()
        self._task: asyncio.Task[None] | None = None
        self.accepted: Message | None = None
        self.closed: Closed | None = None
        self._peeked: Message | None = None

    async def _receive(self) -> Message:
        return await self._to_app.get()

    async def _send(self, message: Message) -> None:
        await self._from_app.put(message)

    async def __aenter__(self) -> AsgiWebSocket:
        self._task = asyncio.ensure_future(self.app(self.scope, self._receive, self._send))
        await self._to_app.put({"type": "websocket.connect"})
        first = await self._next_message(5)
        if first["type"] == "websocket.accept":
            self.accepted = first
        else:
            self.closed = Closed(first.get("code", 1000), first.get("reason", ""))
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self._to_app.put({"type": "websocket.disconnect", "code": 1000})
        if self._task is not None:
            try:
                await asyncio.wait_for(self._task, timeout=5)
            except TimeoutError:
                self._task.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await self._task

    async def _next_message(self, seconds: float) -> Message:
        if self._peeked is not None:
            message, self._peeked = self._peeked, None
            return message
        return await asyncio.wait_for(self._from_app.get(), timeout=seconds)

    async def send_json(self, document: dict[str, Any]) -> None:
        """A text frame with ``document``."""
        await self._to_app.put({"type": "websocket.receive", "text": json.dumps(document)})

    async def receive_json(self, within: float = 5.0) -> dict[str, Any]:
        """The next text frame; :class:`Closed` when the server closed the socket."""
        if self.closed is not None:
            raise self.closed
        message = await self._next_message(within)
        if message["type"] == "websocket.close":
            self.closed = Closed(message.get("code", 1000), message.get("reason") or "")
            raise self.closed
        document: dict[str, Any] = json.loads(message["text"])
        return document

    async def nothing_within(self, seconds: float) -> bool:
        """True when the server sends nothing for ``seconds``."""
        try:
            message = await self._next_message(seconds)
        except TimeoutError:
            return True
        self._peeked = message  # kept for the next receive
        return False

    # --- graphql-transport-ws -----------------------------------------------------------------

    async def init(self, payload: dict[str, Any] | None) -> dict[str, Any]:
        """connection_init with ``payload``; the server's answer (connection_ack)."""
        message: dict[str, Any] = {"type": "connection_init"}
        if payload is not None:
            message["payload"] = payload
        await self.send_json(message)
        return await self.receive_json()

    async def subscribe(
        self, operation_id: str, query: str, variables: dict[str, Any] | None = None
    ) -> None:
        """A subscribe message."""
        await self.send_json(
            {
                "id": operation_id,
                "type": "subscribe",
                "payload": {"query": query, "variables": variables or {}},
            }
        )


async def wait_for(condition: Callable[[], bool], seconds: float = 5.0) -> None:
    """Poll ``condition`` until it holds (or fail after ``seconds``)."""
    deadline = asyncio.get_running_loop().time() + seconds
    while not condition():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.01)


async def wait_for_subscribers(state: AppState, count: int, seconds: float = 5.0) -> None:
    """Until the app's event bus has ``count`` subscribers (a subscribe is processed
    asynchronously: data committed before it is registered is, rightly, not delivered)."""
    events = state.events
    assert events is not None
    await wait_for(lambda: events.bus.subscribers >= count, seconds)
