"""HTTP size limits at the edge: request headers (431) and request bodies (413).

A pure ASGI middleware that never buffers: it counts the body bytes as the app reads them and
stops the request once the limit is passed, whether or not a ``Content-Length`` was sent (a
declared length over the limit is refused before anything is read). The limit is
``max_fhir_body_bytes`` under ``/fhir`` and ``max_body_bytes`` everywhere else (``/graphql``: a
10,000-row submitMeasureData batch is about 2 MiB of JSON).

A client that goes away mid-body makes Starlette raise ``ClientDisconnect``; it is logged quietly
here instead of surfacing as an ASGI error with a traceback — nothing has been written, since
the app had not got its whole request.

Put a proxy with its own (smaller) header limit in front in production: uvicorn itself accepts
very large headers.
"""

from __future__ import annotations

import json
import logging

from starlette.requests import ClientDisconnect
from starlette.types import ASGIApp, Message, Receive, Scope, Send

logger = logging.getLogger("collabx.http")

FHIR_PREFIX = "/fhir"


class _BodyTooLarge(Exception):
    """Raised inside ``receive`` when the body passes its limit (caught by the middleware)."""


def _is_fhir(path: str) -> bool:
    return path == FHIR_PREFIX or path.startswith(FHIR_PREFIX + "/")


def _error_body(path: str, message: str, code: str, fhir_code: str) -> tuple[bytes, bytes]:
    """(content type, body): a FHIR OperationOutcome under /fhir, GraphQL-style errors elsewhere."""
    if _is_fhir(path):
        outcome = {
            "resourceType": "OperationOutcome",
            "issue": [{"severity": "error", "code": fhir_code, "diagnostics": message}],
        }
        return b"application/fhir+json", json.dumps(outcome).encode()
    errors = {"errors": [{"message": message, "extensions": {"code": code}}]}
    return b"application/json", json.dumps(errors).encode()


async def _reject(send: Send, status: int, path: str, message: str, code: str) -> None:
    content_type, body = _error_body(path, message, code, "too-long")
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", content_type),
                (b"content-length", str(len(body)).encode()),
                (b"connection", b"close"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


class SizeLimitMiddleware:
    """431 for oversized request headers, 413 for oversized bodies; quiet client disconnects."""

    def __init__(
        self, app: ASGIApp, *, max_body_bytes: int, max_fhir_body_bytes: int, max_header_bytes: int
    ) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes
        self.max_fhir_body_bytes = max_fhir_body_bytes
        self.max_header_bytes = max_header_bytes

    def body_limit(self, path: str) -> int:
        """The body limit of a request path."""
        return self.max_fhir_body_bytes if _is_fhir(path) else self.max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        path: str = scope.get("path", "")
        headers: list[tuple[bytes, bytes]] = scope.get("headers") or []
        header_bytes = sum(len(name) + len(value) for name, value in headers)
        if header_bytes > self.max_header_bytes:
            message = (
                f"Request headers are {header_bytes} bytes; the header limit is "
                f"{self.max_header_bytes} bytes."
            )
            if scope["type"] == "websocket":
                await send({"type": "websocket.close", "code": 1008, "reason": message[:120]})
                return
            await _reject(send, 431, path, message, "HEADERS_TOO_LARGE")
            return
        if scope["type"] == "websocket":
            await self.app(scope, receive, send)
            return
        await self._http(scope, receive, send, path, headers)

    async def _http(
        self,
        scope: Scope,
        receive: Receive,
        send: Send,
        path: str,
        headers: list[tuple[bytes, bytes]],
    ) -> None:
        limit = self.body_limit(path)
        too_large = f"The request body exceeds the body limit of {limit} bytes."
        for name, value in headers:
            if name == b"content-length":
                try:
                    declared = int(value)
                except ValueError:
                    declared = 0
                if declared > limit:
                    await _reject(send, 413, path, too_large, "BODY_TOO_LARGE")
                    return
        received = 0
        started = False

        async def counting_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise _BodyTooLarge
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, counting_receive, tracking_send)
        except _BodyTooLarge:
            if not started:
                await _reject(send, 413, path, too_large, "BODY_TOO_LARGE")
        except ClientDisconnect:
            logger.info(
                "client disconnected before its request body was complete: %s %s (request %s)",
                scope.get("method"),
                path,
                scope.get("state", {}).get("request_id", ""),
            )
