"""Bulk export of data points: ``GET /export/data-points`` as NDJSON or CSV, streamed.

Query parameters (all optional): ``collaborative``, ``measure``, ``team`` (codes), ``from`` and
``to`` (``YYYY-MM``, inclusive), ``updatedSince`` (ISO 8601; without a zone, UTC; inclusive),
``includeDeleted`` (``true``/``false``; default: true exactly when ``updatedSince`` is given,
so an incremental sync learns about deletions while a full export lists live points only) and
``format`` (``ndjson``, the default, or ``csv``). A bad parameter answers 400 with a JSON body
``{"errors": [{"message", "extensions": {"code": "BAD_REQUEST", "parameter"}}]}``; a token
without ``data:read`` answers 403 the same way. EHR integrations get their own teams' points.

The body streams: the points are read in keyset pages of :data:`EXPORT_PAGE` rows in the
delta-export order (updated_at, id), each page in its own short session, and each page is
written out before the next one is read — nothing holds the whole export. A point written while
the export runs may appear twice (its old and new position): the last line of a key wins.

CSV cells that are text and start with ``=``, ``+``, ``-``, ``@``, a tab or a carriage return
are prefixed with a single quote, so that a spreadsheet never runs them as a formula (OWASP CSV
injection). Numbers are written by us from numeric columns and are never formulas; they are not
touched (a negative MEAN value stays a number).
"""

from __future__ import annotations

import csv
import io
import json
import logging
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from api.state import AppState
from db.base import CODE_LENGTH
from db.ingest import period_problem
from db.queries.exchange import ExportFilter, ExportRow, export_page
from db.queries.paging import Keyset
from schema.principal import Principal

logger = logging.getLogger("collabx.export")

EXPORT_PAGE = 1_000
"""Rows read per statement (and written per chunk)."""
PARAMETERS = frozenset(
    {"collaborative", "measure", "team", "from", "to", "updatedSince", "includeDeleted", "format"}
)
COLUMNS = (
    "id",
    "collaborative",
    "team",
    "measure",
    "measureVersion",
    "period",
    "stratum",
    "numerator",
    "denominator",
    "value",
    "annotation",
    "status",
    "deleted",
    "source",
    "updatedAt",
    "updatedBy",
    "receiptId",
)
FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")


class BadParameter(Exception):
    """A query parameter that cannot be used (400)."""

    def __init__(self, parameter: str, message: str) -> None:
        super().__init__(message)
        self.parameter = parameter
        self.message = message


def _error(status: int, code: str, message: str, parameter: str | None = None) -> JSONResponse:
    extensions: dict[str, Any] = {"code": code}
    if parameter is not None:
        extensions["parameter"] = parameter
    return JSONResponse(
        {"errors": [{"message": message, "extensions": extensions}]}, status_code=status
    )


def _code(params: Any, name: str) -> str | None:
    value = params.get(name)
    if value is None:
        return None
    if not value or "\x00" in value or len(value) > CODE_LENGTH:
        raise BadParameter(name, f"{name} is a code of 1-{CODE_LENGTH} characters")
    return str(value)


def _period(params: Any, name: str) -> str | None:
    value = params.get(name)
    if value is None:
        return None
    problem = period_problem(value) if "\x00" not in value else "period must not contain NUL"
    if problem is not None:
        raise BadParameter(name, f"{name}: {problem}")
    return str(value)


def _since(params: Any) -> datetime | None:
    value = params.get("updatedSince")
    if value is None:
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError as exc:
        raise BadParameter(
            "updatedSince", "updatedSince is an ISO 8601 date-time, e.g. 2025-04-01T00:00:00Z"
        ) from exc
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def _flag(params: Any, name: str, default: bool) -> bool:
    value = params.get(name)
    if value is None:
        return default
    if value.lower() in ("true", "1"):
        return True
    if value.lower() in ("false", "0"):
        return False
    raise BadParameter(name, f"{name} is true or false")


def parse_parameters(params: Any, principal: Principal) -> tuple[ExportFilter, str]:
    """The filter and format of a request's query parameters, or BadParameter."""
    unknown = sorted(set(params.keys()) - PARAMETERS)
    if unknown:
        raise BadParameter(
            unknown[0][:40],
            f"unknown parameter {unknown[0][:40]!r}; known: {', '.join(sorted(PARAMETERS))}",
        )
    for name in params:
        if len(params.getlist(name)) > 1:
            raise BadParameter(name, f"{name} is given more than once")
    output = params.get("format", "ndjson")
    if output not in ("ndjson", "csv"):
        raise BadParameter("format", "format is ndjson or csv")
    from_period, to_period = _period(params, "from"), _period(params, "to")
    if from_period is not None and to_period is not None and from_period > to_period:
        raise BadParameter("to", f"to ({to_period}) is before from ({from_period})")
    since = _since(params)
    filter = ExportFilter(
        collaborative_code=_code(params, "collaborative"),
        measure_code=_code(params, "measure"),
        team_code=_code(params, "team"),
        from_period=from_period,
        to_period=to_period,
        updated_since=since,
        team_ids=principal.team_ids if principal.is_team_bound else None,
        include_deleted=_flag(params, "includeDeleted", since is not None),
    )
    return filter, output


async def export_rows(
    state: AppState, sponsor_id: Any, filter: ExportFilter, *, page_size: int
) -> AsyncIterator[list[ExportRow]]:
    """The export, one keyset page at a time, each read in its own short session."""
    after: Keyset | None = None
    while True:
        async with state.sessionmaker() as session:
            page = await export_page(
                session, sponsor_id, filter=filter, limit=page_size, after=after
            )
        if page:
            yield page
        if len(page) < page_size:
            return
        after = page[-1].keyset


def safe_cell(text: str) -> str:
    """A text cell a spreadsheet will not run as a formula."""
    return "'" + text if text.startswith(FORMULA_PREFIXES) else text


def _record(row: ExportRow) -> dict[str, Any]:
    return {
        "id": str(row.id),
        "collaborative": row.collaborative_code,
        "team": row.team_code,
        "measure": row.measure_code,
        "measureVersion": row.measure_version,
        "period": row.period,
        "stratum": row.stratum,
        "numerator": row.numerator,
        "denominator": row.denominator,
        "value": row.value,
        "annotation": row.annotation,
        "status": row.status.value if row.status is not None else None,
        "deleted": row.deleted,
        "source": row.source,
        "updatedAt": row.updated_at.isoformat().replace("+00:00", "Z"),
        "updatedBy": row.updated_by,
        "receiptId": str(row.receipt_id) if row.receipt_id is not None else None,
    }


def ndjson_chunk(rows: list[ExportRow]) -> bytes:
    """One page as NDJSON lines."""
    return "".join(
        json.dumps(_record(row), ensure_ascii=False, separators=(",", ":")) + "\n" for row in rows
    ).encode()


def csv_chunk(rows: list[ExportRow], *, header: bool = False) -> bytes:
    """One page as CSV lines (with the header line first when asked)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    if header:
        writer.writerow(COLUMNS)
    for row in rows:
        record = _record(row)
        writer.writerow([_csv_cell(record[column]) for column in COLUMNS])
    return buffer.getvalue().encode()


def _csv_cell(value: Any) -> str:
    """Empty for null, true/false, numbers as Python writes them, text escaped."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    return safe_cell(str(value))


async def _body(
    state: AppState,
    sponsor_id: Any,
    filter: ExportFilter,
    encode: Callable[[list[ExportRow]], bytes],
    header: bytes,
) -> AsyncIterator[bytes]:
    if header:
        yield header
    try:
        async for page in export_rows(state, sponsor_id, filter, page_size=EXPORT_PAGE):
            yield encode(page)
    except Exception:
        logger.exception("export stream failed; the response is cut short")
        raise


async def export_data_points(request: Request) -> Response:
    """``GET /export/data-points``: every visible point, streamed (see the module docstring)."""
    principal = request.scope.get("state", {}).get("principal")
    if not isinstance(principal, Principal):
        return _error(401, "UNAUTHENTICATED", "a bearer token is required")
    if not principal.has_scope("data:read"):
        return _error(403, "FORBIDDEN", "this export requires the scope 'data:read'")
    try:
        filter, output = parse_parameters(request.query_params, principal)
    except BadParameter as exc:
        return _error(400, "BAD_REQUEST", exc.message, exc.parameter)
    state: AppState = request.app.state.collabx
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    if output == "csv":
        media_type = "text/csv; charset=utf-8"
        header = csv_chunk([], header=True)
        encode: Callable[[list[ExportRow]], bytes] = csv_chunk
    else:
        media_type = "application/x-ndjson"
        header = b""
        encode = ndjson_chunk
    return StreamingResponse(
        _body(state, principal.sponsor_id, filter, encode, header),
        media_type=media_type,
        headers={
            "Content-Disposition": f'attachment; filename="data-points-{stamp}.{output}"',
            "Cache-Control": "no-store",
        },
    )


def export_routes() -> list[Route]:
    """The export routes, mounted by the app factory."""
    return [Route("/export/data-points", export_data_points, methods=["GET"])]
