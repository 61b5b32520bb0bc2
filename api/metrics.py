"""Prometheus metrics and ``GET /metrics``.

Families (each app has its own registry: several apps live in one test process):

* ``collabx_http_requests_total{method,route,status}`` and
  ``collabx_http_request_duration_seconds{method,route}``: every HTTP request;
* ``collabx_graphql_operations_total{operation,type,outcome}`` and
  ``collabx_graphql_operation_duration_seconds{operation,type}``: GraphQL requests by operation
  name (at most :data:`MAX_OPERATION_NAMES` distinct names, then ``other``; ``anonymous``
  without a name) and outcome (``success``, ``partial``, ``rejected``: nothing ran, ``error``:
  an unexpected error, ``unavailable``: database outage, ``rate_limited``, ``bad_request``);
* ``collabx_ingest_calls_total{source,status}``, ``collabx_ingest_rows_total{source,result}``
  (created, updated, unchanged, deleted, rejected) and
  ``collabx_ingest_rejected_rows_total{source,code}``: measure data submitted through any path
  (GraphQL, FHIR, import) that calls :meth:`Metrics.observe_receipt`;
* ``collabx_rate_limited_total{endpoint}``: requests refused with 429;
* ``collabx_db_pool_connections{state}`` (``checked_out``, ``idle``, ``overflow``) and
  ``collabx_db_pool_size``: the connection pool, read at scrape time.

``/metrics`` is open unless ``COLLABX_METRICS_TOKEN`` is set; then it needs
``Authorization: Bearer <token>``.
"""

from __future__ import annotations

import hmac
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.exposition import generate_latest
from prometheus_client.registry import Collector
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncEngine

    from api.state import AppState
    from db.queries.data import Receipt

MAX_OPERATION_NAMES = 200
"""Distinct operation names kept as label values (client-chosen: unbounded otherwise)."""
_OPERATION_NAME = re.compile(r"^[_A-Za-z][_0-9A-Za-z]{0,63}$")
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)


@dataclass
class GraphQLOperation:
    """What the GraphQL view learnt about a request, for metrics and the access log; kept in
    ``scope["state"]["graphql"]``."""

    name: str | None = None
    type: str = "unknown"
    outcome: str = "bad_request"
    cost: int = 0


class PoolCollector(Collector):
    """Reads the engine's connection pool when scraped (nothing to update on the hot path)."""

    def __init__(self) -> None:
        self.engine: AsyncEngine | None = None

    def collect(self) -> Iterator[GaugeMetricFamily]:
        connections = GaugeMetricFamily(
            "collabx_db_pool_connections",
            "Database connections of the pool by state.",
            labels=["state"],
        )
        size = GaugeMetricFamily("collabx_db_pool_size", "Configured size of the pool.")
        pool: Any = self.engine.pool if self.engine is not None else None
        if pool is not None and hasattr(pool, "checkedout"):
            connections.add_metric(["checked_out"], float(pool.checkedout()))
            connections.add_metric(["idle"], float(pool.checkedin()))
            connections.add_metric(["overflow"], float(max(0, pool.overflow())))
            size.add_metric([], float(pool.size()))
        yield connections
        yield size


class Metrics:
    """The metric families of one app."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "collabx_http_requests",
            "HTTP requests by method, route and status.",
            ["method", "route", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "collabx_http_request_duration_seconds",
            "Time to the end of the response, by method and route.",
            ["method", "route"],
            registry=self.registry,
            buckets=LATENCY_BUCKETS,
        )
        self.operations = Counter(
            "collabx_graphql_operations",
            "GraphQL requests by operation name, operation type and outcome.",
            ["operation", "type", "outcome"],
            registry=self.registry,
        )
        self.operation_latency = Histogram(
            "collabx_graphql_operation_duration_seconds",
            "Time to the end of the response of GraphQL requests, by operation.",
            ["operation", "type"],
            registry=self.registry,
            buckets=LATENCY_BUCKETS,
        )
        self.ingest_calls = Counter(
            "collabx_ingest_calls",
            "Measure data calls by source and receipt status (or error code).",
            ["source", "status"],
            registry=self.registry,
        )
        self.ingest_rows = Counter(
            "collabx_ingest_rows",
            "Measure data rows by source and what happened to them (dry runs excluded).",
            ["source", "result"],
            registry=self.registry,
        )
        self.ingest_rejected = Counter(
            "collabx_ingest_rejected_rows",
            "Rejected measure data rows by source and conflict code.",
            ["source", "code"],
            registry=self.registry,
        )
        self.rate_limited = Counter(
            "collabx_rate_limited",
            "Requests refused by a rate limit (429), by endpoint.",
            ["endpoint"],
            registry=self.registry,
        )
        self.pool = PoolCollector()
        self.registry.register(self.pool)
        self._operation_names: set[str] = set()

    def bind_engine(self, engine: AsyncEngine | None) -> None:
        """Report this engine's pool (the lifespan calls it; None when it ends)."""
        self.pool.engine = engine

    def operation_label(self, name: str | None) -> str:
        """A bounded label value for a client-chosen operation name."""
        if not name:
            return "anonymous"
        if not _OPERATION_NAME.match(name):
            return "other"
        if name not in self._operation_names:
            if len(self._operation_names) >= MAX_OPERATION_NAMES:
                return "other"
            self._operation_names.add(name)
        return name

    def observe_receipt(self, source: str, receipt: Receipt) -> None:
        """Count a measure data call that answered a receipt (replays count as calls only)."""
        self.ingest_calls.labels(source, receipt.status.value).inc()
        if receipt.replayed or receipt.status.value == "DRY_RUN":
            return
        for result in ("created", "updated", "unchanged", "deleted", "rejected"):
            count = getattr(receipt, result)
            if count:
                self.ingest_rows.labels(source, result).inc(count)
        for conflict in receipt.conflicts:
            self.ingest_rejected.labels(source, conflict.code).inc()

    def observe_ingest_error(self, source: str, code: str) -> None:
        """Count a measure data call refused as a whole (BATCH_TOO_LARGE, ...)."""
        self.ingest_calls.labels(source, code).inc()


def _route_of(scope: Scope) -> str:
    """The route template (never the raw path: unbounded label values would bloat the registry)."""
    for route in scope["app"].routes:
        match, _ = route.matches(scope)
        if match is Match.FULL:
            return str(getattr(route, "path", "other"))
    return "unmatched"


class MetricsMiddleware:
    """Counts and times every HTTP request."""

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def send_recording(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_recording)
        finally:
            elapsed = time.perf_counter() - started
            route = _route_of(scope)
            method = scope["method"]
            self.metrics.requests.labels(method, route, str(status)).inc()
            self.metrics.latency.labels(method, route).observe(elapsed)
            operation = scope.get("state", {}).get("graphql")
            if isinstance(operation, GraphQLOperation):
                name = self.metrics.operation_label(operation.name)
                self.metrics.operations.labels(name, operation.type, operation.outcome).inc()
                self.metrics.operation_latency.labels(name, operation.type).observe(elapsed)


async def metrics_endpoint(request: Request) -> Response:
    """GET /metrics — Prometheus text format."""
    state: AppState = request.app.state.collabx
    token = state.settings.metrics_token
    if token is not None and token.get_secret_value():
        presented = request.headers.get("authorization", "")
        expected = f"Bearer {token.get_secret_value()}"
        if not hmac.compare_digest(presented.encode(), expected.encode()):
            return JSONResponse(
                {"error": "a valid metrics token is required"},
                status_code=401,
                headers={"WWW-Authenticate": 'Bearer realm="metrics"'},
            )
    metrics: Metrics = request.app.state.metrics
    return Response(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)
