"""Liveness and readiness probes."""

from __future__ import annotations

from sqlalchemy.exc import SQLAlchemyError
from starlette.requests import Request
from starlette.responses import JSONResponse

from api.state import AppState
from db.migrations import current_revision, head_revision
from db.sessions import ping


async def healthz(request: Request) -> JSONResponse:
    """The process is up."""
    return JSONResponse({"status": "ok"})


async def readyz(request: Request) -> JSONResponse:
    """The database answers and its schema is at the newest migration."""
    state: AppState = request.app.state.collabx
    try:
        await ping(state.engine)
        revision = await current_revision(state.engine)
    except (SQLAlchemyError, OSError) as exc:
        return JSONResponse(
            {"status": "unavailable", "reason": f"database unreachable: {type(exc).__name__}"},
            status_code=503,
        )
    head = head_revision(state.settings.database_url)
    if revision != head:
        return JSONResponse(
            {"status": "unavailable", "reason": f"database at {revision}, migrations at {head}"},
            status_code=503,
        )
    return JSONResponse({"status": "ready", "revision": revision})
