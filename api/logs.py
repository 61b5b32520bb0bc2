"""Structured logs: one JSON object per line, and one access line per HTTP request.

``collabx serve`` configures logging with :func:`log_config` (``COLLABX_LOG_FORMAT=json``, the
default, or ``text``). The access line (logger ``collabx.access``) carries the request id, the
client id of the token, the GraphQL operation name, type, cost and outcome, the route, the
status and the duration; never headers, bodies, query strings, variables, secrets or tokens.
As a second line of defence the formatter blanks anything in a message that looks like a bearer
token, a JWT or a ``client_secret`` parameter.
"""

from __future__ import annotations

import json
import logging
import re
import time
from datetime import UTC, datetime
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.metrics import GraphQLOperation

access_logger = logging.getLogger("collabx.access")

ACCESS_FIELDS = (
    "request_id",
    "method",
    "path",
    "status",
    "duration_ms",
    "client_id",
    "client_ip",
    "operation",
    "operation_type",
    "cost",
    "outcome",
)
"""The attributes an access record carries (in ``record.__dict__``), in output order."""

_SECRETS = (
    (re.compile(r"(?i)\b(bearer|basic)\s+[A-Za-z0-9._~+/=-]+"), r"\1 [redacted]"),
    (re.compile(r"\beyJ[A-Za-z0-9_-]*\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*"), "[redacted-jwt]"),
    (re.compile(r"(?i)(client_secret|secret|password)=([^&\s]+)"), r"\1=[redacted]"),
)


def redact(text: str) -> str:
    """``text`` with anything that looks like a credential blanked."""
    for pattern, replacement in _SECRETS:
        text = pattern.sub(replacement, text)
    return text


class JsonFormatter(logging.Formatter):
    """A log record as one line of JSON: time, level, logger, message, access fields, error."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": redact(record.getMessage()),
        }
        for name in ACCESS_FIELDS:
            value = record.__dict__.get(name)
            if value is not None:
                entry[name] = value
        if record.exc_info:
            entry["error"] = redact(self.formatException(record.exc_info))
        return json.dumps(entry, ensure_ascii=False, default=str)


class TextFormatter(logging.Formatter):
    """Plain lines for people, with the same redaction."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        return redact(super().format(record))


def log_config(log_format: str = "json", *, debug: bool = False) -> dict[str, Any]:
    """A ``logging.config.dictConfig`` (and uvicorn ``log_config``) for the server."""
    formatter = "api.logs.JsonFormatter" if log_format == "json" else "api.logs.TextFormatter"
    level = "DEBUG" if debug else "INFO"
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"collabx": {"()": formatter}},
        "handlers": {
            "stderr": {
                "class": "logging.StreamHandler",
                "formatter": "collabx",
                "stream": "ext://sys.stderr",
            }
        },
        "loggers": {
            "uvicorn": {"handlers": ["stderr"], "level": level, "propagate": False},
            "uvicorn.error": {"handlers": ["stderr"], "level": level, "propagate": False},
            "uvicorn.access": {"handlers": [], "level": "WARNING", "propagate": False},
            "collabx": {"handlers": ["stderr"], "level": level, "propagate": False},
            # strawberry logs every GraphQL error with a traceback, expected ones (validation,
            # NOT_FOUND...) included; unexpected ones are logged by schema.masking with the
            # request id, so strawberry's own lines only show in debug.
            "strawberry.execution": {
                "handlers": ["stderr"] if debug else [],
                "level": level if debug else "CRITICAL",
                "propagate": False,
            },
        },
        "root": {"handlers": ["stderr"], "level": "WARNING"},
    }


class AccessLogMiddleware:
    """Logs one line per HTTP request when its response has been sent (or it failed)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def recording_send(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, recording_send)
        finally:
            self._log(scope, status, time.perf_counter() - started)

    @staticmethod
    def _log(scope: Scope, status: int, elapsed: float) -> None:
        state = scope.get("state", {})
        principal = state.get("principal")
        operation = state.get("graphql")
        client = scope.get("client")
        fields: dict[str, Any] = {
            "request_id": state.get("request_id"),
            "method": scope.get("method"),
            "path": scope.get("path"),
            "status": status,
            "duration_ms": round(elapsed * 1000, 2),
            "client_id": getattr(principal, "client_id", None),
            "client_ip": client[0] if client else None,
        }
        if isinstance(operation, GraphQLOperation):
            fields.update(
                operation=operation.name or "anonymous",
                operation_type=operation.type,
                cost=operation.cost,
                outcome=operation.outcome,
            )
        summary = f"{fields['method']} {fields['path']} {status} {fields['duration_ms']} ms"
        if isinstance(operation, GraphQLOperation):
            summary += f" {fields['operation']} {operation.outcome}"
        access_logger.info(summary, extra=fields)
