"""The questions as a client of the real HTTP API asks them, and a lean HTTP/1.1 client.

The load generator must cost little CPU (it shares the box with the server and PostgreSQL), so
requests are pre-rendered bytes sent over keep-alive connections by :class:`HttpConnection` — a
minimal HTTP/1.1 client on asyncio streams (Content-Length and chunked bodies). Set-up and
verification use httpx.

GraphQL documents are module constants. Q2 is written against the SDL of the analytics issue
(``aggregate(measure:, scope: {collaboratives: [...]})`` → ``AggregateSeries { points {...}
runChart {...} }``); the driver skips it, saying why, when the live schema has no such field.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

from bench.targets import Q1_POINTS, Q1_TEAMS, Batch, Targets, Values

Q1_TYPED_DOCUMENT = f"""
query DashboardTyped($collaborative: String!) {{
  collaborative(code: $collaborative) {{
    code name topic startDate endDate
    teams(first: {Q1_TEAMS}) {{
      nodes {{
        code name organization {{ name state }}
        series(last: {Q1_POINTS}) {{
          measure {{ code name type unit }}
          points {{ period numerator denominator value }}
        }}
      }}
    }}
  }}
}}
"""

Q1_DOCUMENT = f"""
query Dashboard($collaborative: String!) {{
  collaborative(code: $collaborative) {{
    code name topic startDate endDate
    teams(first: {Q1_TEAMS}) {{
      nodes {{
        code name organization {{ name state }}
        series(last: {Q1_POINTS}) {{
          measure {{ code name type unit }}
          columns {{ periods numerators denominators values }}
        }}
      }}
    }}
  }}
}}
"""
"""Q1 as a dashboard asks it: the compact series form (parallel column lists instead of one
object per point; ``Q1_TYPED_DOCUMENT`` is the typed form, question Q1-typed)."""

Q2_DOCUMENT = """
query Aggregate($measure: String!, $collaborative: String!) {
  aggregate(measure: $measure, scope: {collaboratives: [$collaborative]}) {
    points { period teamsReporting numerator denominator rate medianOfTeamRates }
  }
}
"""

Q2_CHART_DOCUMENT = """
query AggregateChart($measure: String!, $collaborative: String!) {
  aggregate(measure: $measure, scope: {collaboratives: [$collaborative]}) {
    points { period teamsReporting numerator denominator rate medianOfTeamRates }
    runChart {
      parts { centerLine longestRun longestRunLimit crossings crossingsLimit }
      signals { rule }
    }
  }
}
"""

Q3_DOCUMENT = """
mutation Ingest($input: SubmitMeasureDataColumnsInput!) {
  submitMeasureDataColumns(input: $input) {
    __typename
    ... on MeasureDataReceipt { status rows created updated unchanged rejected }
    ... on Error { code message }
  }
}
"""
"""Q3 through the compact form (parallel column lists), the faster of the two public forms."""

Q3_TYPED_DOCUMENT = """
mutation IngestRows($input: SubmitMeasureDataInput!) {
  submitMeasureData(input: $input) {
    __typename
    ... on MeasureDataReceipt { status rows created updated unchanged rejected }
    ... on Error { code message }
  }
}
"""
"""Q3-typed: the same batches as one typed row object each."""

Q4_DOCUMENT = """
query Export($first: Int!, $after: String) {
  dataPoints(first: $first, after: $after) {
    pageInfo { hasNextPage endCursor }
    nodes {
      id period stratum numerator denominator value annotation status deleted
      updatedAt updatedBy team { code } measure { code }
    }
  }
}
"""

ROOT_FIELDS_DOCUMENT = "{ __schema { queryType { fields { name } } } }"


class BadResponse(Exception):
    """A response that is not the expected answer (HTTP error, GraphQL errors, rejected rows)."""


def graphql_body(document: str, variables: dict[str, Any]) -> bytes:
    """A compact GraphQL-over-HTTP POST body."""
    return json.dumps({"query": document, "variables": variables}, separators=(",", ":")).encode()


def q1_variables(targets: Targets) -> dict[str, Any]:
    return {"collaborative": targets.collaborative_code}


def q2_variables(targets: Targets) -> dict[str, Any]:
    return {"measure": targets.measure_code, "collaborative": targets.collaborative_code}


def q3_variables(batch: Batch, values: Sequence[Values], *, typed: bool = False) -> dict[str, Any]:
    """The ingest input of one batch, atomic: parallel columns (``submitMeasureDataColumns``),
    or with ``typed`` one row object per row (``submitMeasureData``). A measure's rows carry
    numerator and denominator, or a value; the other columns hold nulls there."""
    if typed:
        rows = []
        for row, value in zip(batch.rows, values, strict=True):
            item: dict[str, Any] = {"team": row.team_code, "measure": row.measure_code}
            item["period"] = row.period
            if value.value is None:
                item["numerator"] = value.numerator
                item["denominator"] = value.denominator
            else:
                item["value"] = value.value
            rows.append(item)
        return {"input": {"rows": rows, "atomic": True}}
    columns: dict[str, list[Any]] = {
        "team": [row.team_code for row in batch.rows],
        "measure": [row.measure_code for row in batch.rows],
        "period": [row.period for row in batch.rows],
        "numerator": [value.numerator for value in values],
        "denominator": [value.denominator for value in values],
    }
    if any(value.value is not None for value in values):
        columns["value"] = [value.value for value in values]
    return {"input": {"columns": columns, "atomic": True}}


def q3_document(question: str) -> str:
    """The document of Q3 (compact) or Q3-typed."""
    return Q3_TYPED_DOCUMENT if question == "Q3-typed" else Q3_DOCUMENT


Q5_PAGE_SIZE = 1_000
"""Q5 asks for every report of the month in one page (the bench server allows this size)."""


def q5_path(targets: Targets, measure: str) -> str:
    """The FHIR search of Q5: one measure's summary MeasureReports of one month, one page."""
    query = {"measure": measure, "period": targets.last_period, "_count": Q5_PAGE_SIZE}
    return "/fhir/MeasureReport?" + urlencode(query)


def points_of_columns(data: dict[str, Any]) -> dict[str, Any]:
    """A Q1 answer in Q1-typed's shape (``columns`` back to ``points``), for verification."""
    for team in data["collaborative"]["teams"]["nodes"]:
        for series in team["series"]:
            columns = series.pop("columns")
            series["points"] = [
                {
                    "period": period,
                    "numerator": numerator,
                    "denominator": denominator,
                    "value": value,
                }
                for period, numerator, denominator, value in zip(
                    columns["periods"],
                    columns["numerators"],
                    columns["denominators"],
                    columns["values"],
                    strict=True,
                )
            ]
    return data


def graphql_data(body: bytes) -> dict[str, Any]:
    """The ``data`` of a GraphQL response; BadResponse when it carries errors."""
    try:
        document = json.loads(body)
    except ValueError as exc:
        raise BadResponse(f"not JSON: {body[:200]!r}") from exc
    if document.get("errors"):
        raise BadResponse(json.dumps(document["errors"])[:500])
    data = document.get("data")
    if not isinstance(data, dict):
        raise BadResponse(f"no data: {body[:200]!r}")
    return data


def check_graphql(body: bytes) -> None:
    """Cheap check under load: a GraphQL answer without an ``errors`` member."""
    if b'"errors"' in body:
        raise BadResponse(body[:300].decode(errors="replace"))


def check_receipt(body: bytes, rows: int) -> None:
    """Q3: the receipt of a COMPLETED call that accepted every row (either form)."""
    data = graphql_data(body)
    receipt = data.get("submitMeasureDataColumns") or data.get("submitMeasureData") or {}
    if receipt.get("__typename") != "MeasureDataReceipt" or receipt.get("status") != "COMPLETED":
        raise BadResponse(json.dumps(receipt)[:300])
    if receipt["created"] + receipt["updated"] + receipt["unchanged"] != rows:
        raise BadResponse(f"receipt does not count {rows} rows: {receipt}")


# --- a lean HTTP/1.1 client ------------------------------------------------------------------


@dataclass(frozen=True)
class Request:
    """A pre-rendered request: the bytes on the wire."""

    wire: bytes

    @classmethod
    def build(
        cls,
        host: str,
        port: int,
        method: str,
        path: str,
        *,
        token: str | None = None,
        body: bytes = b"",
        content_type: str = "application/json",
    ) -> Request:
        lines = [f"{method} {path} HTTP/1.1", f"Host: {host}:{port}", "Accept: application/json"]
        if token is not None:
            lines.append(f"Authorization: Bearer {token}")
        if body or method == "POST":
            lines += [f"Content-Type: {content_type}", f"Content-Length: {len(body)}"]
        return cls(("\r\n".join(lines) + "\r\n\r\n").encode() + body)


class HttpConnection:
    """One keep-alive HTTP/1.1 connection; reconnects when the server closes it."""

    def __init__(self, host: str, port: int) -> None:
        self.host = host
        self.port = port
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None

    async def close(self) -> None:
        """Close the socket (and wait for it, so no transport is left for the GC)."""
        writer, self._reader, self._writer = self._writer, None, None
        if writer is not None:
            writer.close()
            with contextlib.suppress(ConnectionError, OSError):
                await writer.wait_closed()

    async def send(
        self, request: Request, sink: Callable[[bytes], None] | None = None
    ) -> tuple[int, bytes]:
        """Send ``request``; the status and the whole body (or, with ``sink``, hand the body's
        pieces to it as they arrive and return an empty body: flat memory for big exports)."""
        reused = self._writer is not None
        if self._writer is None:
            self._reader, self._writer = await asyncio.open_connection(
                self.host, self.port, limit=1 << 20
            )
        assert self._reader is not None and self._writer is not None
        reader = self._reader
        self._writer.write(request.wire)
        try:
            head = await reader.readuntil(b"\r\n\r\n")
        except (asyncio.IncompleteReadError, ConnectionResetError) as exc:
            # A kept-alive connection the server closed while idle (uvicorn closes them after
            # 5 s, e.g. while the floor's round runs): nothing reached the application, so the
            # request is sent again on a new connection, as HTTP clients do.
            partial = exc.partial if isinstance(exc, asyncio.IncompleteReadError) else b""
            if not reused or partial:
                raise
            await self.close()
            return await self.send(request, sink)
        status = int(head[9:12])
        headers: dict[bytes, bytes] = {}
        for line in head.split(b"\r\n")[1:]:
            name, sep, value = line.partition(b":")
            if sep:
                headers[name.strip().lower()] = value.strip().lower()
        parts: list[bytes] = []
        put = sink if sink is not None else parts.append
        if b"content-length" in headers:
            length = int(headers[b"content-length"])
            while length > 0:
                piece = await reader.read(min(length, 1 << 20))
                if not piece:
                    raise ConnectionError("connection closed inside a body")
                put(piece)
                length -= len(piece)
        elif headers.get(b"transfer-encoding") == b"chunked":
            while True:
                size = int((await reader.readline()).split(b";")[0].strip(), 16)
                if size == 0:
                    while (await reader.readline()) not in (b"\r\n", b"\n", b""):
                        pass
                    break
                put((await reader.readexactly(size + 2))[:-2])
        else:
            put(await reader.read())
            headers[b"connection"] = b"close"
        if headers.get(b"connection") == b"close":
            await self.close()
        return status, b"".join(parts)


def root_fields(introspection: dict[str, Any]) -> set[str]:
    """Names of the root query fields in an introspection answer."""
    fields = introspection["__schema"]["queryType"]["fields"]
    return {field["name"] for field in fields}
