"""503 with ``Retry-After`` when the database cannot be reached, instead of a 500.

Authentication, the token endpoint and FHIR touch the database outside GraphQL; when the
connection is gone (:func:`db.availability.is_unavailable`) their exception reaches this
middleware, which answers 503 in the format of the path (OAuth error JSON on ``/oauth/token``,
an OperationOutcome under ``/fhir``, GraphQL-style ``errors`` elsewhere) with
``extensions.code = "SERVICE_UNAVAILABLE"``. Every other exception passes on, to be logged and
answered 500 by Starlette. GraphQL resolvers are covered by ``schema.masking`` and the view.
"""

from __future__ import annotations

import json
import logging

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from db.availability import is_unavailable

logger = logging.getLogger("collabx.http")

SERVICE_UNAVAILABLE = "SERVICE_UNAVAILABLE"
RETRY_AFTER_SECONDS = 1
MESSAGE = "The database is unavailable right now; retry shortly."


def unavailable_body(path: str) -> tuple[bytes, bytes]:
    """(content type, body) of a 503 on ``path``."""
    if path == "/oauth/token":
        document: object = {"error": "temporarily_unavailable", "error_description": MESSAGE}
        return b"application/json", json.dumps(document).encode()
    if path == "/fhir" or path.startswith("/fhir/"):
        document = {
            "resourceType": "OperationOutcome",
            "issue": [{"severity": "error", "code": "transient", "diagnostics": MESSAGE}],
        }
        return b"application/fhir+json", json.dumps(document).encode()
    document = {
        "errors": [
            {
                "message": MESSAGE,
                "extensions": {"code": SERVICE_UNAVAILABLE, "retryAfter": RETRY_AFTER_SECONDS},
            }
        ]
    }
    return b"application/json", json.dumps(document).encode()


class UnavailableMiddleware:
    """Turns a database outage that escapes an endpoint into a retryable 503."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, receive, tracking_send)
        except Exception as exc:
            if started or not is_unavailable(exc):
                raise
            logger.warning(
                "database unavailable: %s %s answered 503 (request %s): %s",
                scope.get("method"),
                scope.get("path"),
                scope.get("state", {}).get("request_id", ""),
                type(exc).__name__,
            )
            content_type, body = unavailable_body(scope.get("path", ""))
            await send(
                {
                    "type": "http.response.start",
                    "status": 503,
                    "headers": [
                        (b"content-type", content_type),
                        (b"content-length", str(len(body)).encode()),
                        (b"retry-after", str(RETRY_AFTER_SECONDS).encode()),
                        (b"cache-control", b"no-store"),
                    ],
                }
            )
            await send({"type": "http.response.body", "body": body})
