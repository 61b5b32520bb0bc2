"""The strawberry GraphQL view: typed Context per request and GraphQL-over-HTTP conformance.

Follows https://graphql.github.io/graphql-over-http/draft/ (checked by the ``graphql-http``
audit in tests/api/test_graphql_over_http.py):

* the response media type follows ``Accept``: ``application/graphql-response+json`` when the
  client asks for it (then a request error — parse, validation, variable coercion, unknown
  operation, a query limit — answers 400 and carries no ``data``), ``application/json``
  otherwise (then every well-formed request answers 200 with ``data: null``, as before);
* POST bodies must be ``application/json`` (UTF-8) — else 415; malformed JSON, a body that is
  not an object, a batch (JSON array), a missing ``query`` or parameters of the wrong type
  answer 400; a mutation over GET answers 405 with ``Allow: POST``;
* every HTTP error has a JSON body ``{"errors": [{"message", "extensions": {"code"}}]}``;
* JSON bodies are strict: ``NaN`` and ``Infinity`` (which Python's parser accepts), an object
  with a duplicate key (parsers disagree on which one wins) and text that is not Unicode (a lone
  surrogate escape such as ``"\\ud800"``, which no database can store) are 400.

Hot paths (see bench/ and issue 7):

* **Document cache**: parsed documents are kept per query text (an LRU of
  :data:`DOCUMENT_CACHE_SIZE` entries, texts up to :data:`MAX_CACHED_QUERY_CHARS` characters),
  and a text that once passed validation is not validated again — only its cost is checked
  again, because the cost depends on the variables (page sizes). Validation depends on nothing
  else (schema, limits and introspection setting are fixed per process).
* **Automatic persisted queries** (Apollo's protocol): a request may carry
  ``extensions.persistedQuery = {"version": 1, "sha256Hash": "<hex SHA-256 of the query>"}``
  without ``query``; the server answers ``PersistedQueryNotFound`` (code
  ``PERSISTED_QUERY_NOT_FOUND``, HTTP 200 for application/json clients, 400 for
  application/graphql-response+json) when it does not know the hash, and the client then sends
  query and hash together once; a hash that does not match the query is a 400
  (``PERSISTED_QUERY_HASH_MISMATCH``). Each API process keeps its own LRU of
  :data:`PERSISTED_QUERY_CACHE_SIZE` queries, so behind a load balancer a client may be asked
  again once per process. Works over GET too (``extensions`` as a JSON query parameter).
* **orjson** encodes responses (api/json_encoding.py; :mod:`json` for what orjson refuses).

Before a request runs, its operation is parsed once more to charge the client's rate-limit
bucket by query cost (api/ratelimit.py: 429 with ``Retry-After``, code ``RATE_LIMITED``) and to
name the operation for metrics and the access log. A database outage in a resolver
(``SERVICE_UNAVAILABLE``, see schema/masking.py) answers 503 with ``Retry-After``.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections import OrderedDict
from collections.abc import Iterator
from datetime import timedelta
from typing import Any, Generic, TypeVar

from cross_web import AsyncHTTPRequestAdapter, HTTPException
from graphql import (
    DocumentNode,
    GraphQLError,
    GraphQLSchema,
    OperationDefinitionNode,
    TypeInfo,
    ValidationContext,
    parse,
)
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import Receive, Scope, Send
from starlette.websockets import WebSocket
from strawberry.asgi import GraphQL
from strawberry.extensions import SchemaExtension
from strawberry.http import GraphQLHTTPResponse, GraphQLRequestData
from strawberry.http.parse_content_type import parse_content_type
from strawberry.schema.exceptions import CannotGetOperationTypeError, InvalidOperationTypeError
from strawberry.subscriptions import GRAPHQL_TRANSPORT_WS_PROTOCOL
from strawberry.types import ExecutionResult

from api.heavy import GateBusy, HeavyQueryGate
from api.json_encoding import encode_json
from api.metrics import GraphQLOperation
from api.settings import Settings
from api.state import AppState
from api.subscriptions import CollabXTransportWSHandler, connection_id
from schema.context import Context, Limits
from schema.limits import QueryLimits, cost_rule, expanded_fields, operation_costs
from schema.loaders import Loaders
from schema.principal import Principal
from schema.schema import build_schema

GRAPHQL_RESPONSE_JSON = "application/graphql-response+json"
JSON = "application/json"

_CODES = {
    400: "BAD_REQUEST",
    404: "NOT_FOUND",
    405: "METHOD_NOT_ALLOWED",
    413: "BODY_TOO_LARGE",
    415: "UNSUPPORTED_MEDIA_TYPE",
    429: "RATE_LIMITED",
}
SERVICE_UNAVAILABLE = "SERVICE_UNAVAILABLE"
UNAVAILABLE_RETRY_AFTER = "1"

DOCUMENT_CACHE_SIZE = 256
"""Parsed (and validated) documents kept per process, by query text. With the token limit
(2,000 tokens: an AST of at most a few hundred KB) the cache stays within tens of MB even when
filled with the largest documents; clients use a handful."""
MAX_CACHED_QUERY_CHARS = 16_384
"""Longer query texts are parsed and validated every time (and not persisted)."""
PERSISTED_QUERY_CACHE_SIZE = 1_024
"""Automatic persisted queries kept per process, by SHA-256 (at most 16 MiB of text)."""
PERSISTED_QUERY_NOT_FOUND = "PERSISTED_QUERY_NOT_FOUND"
PERSISTED_QUERY_HASH_MISMATCH = "PERSISTED_QUERY_HASH_MISMATCH"
_SHA256_HEX = re.compile(r"[0-9a-f]{64}")


K = TypeVar("K")
V = TypeVar("V")


class _Lru(Generic[K, V]):
    """A small least-recently-used mapping (one event loop per process: no locking needed)."""

    def __init__(self, size: int) -> None:
        self.size = size
        self._items: OrderedDict[K, V] = OrderedDict()

    def get(self, key: K) -> V | None:
        found = self._items.get(key)
        if found is not None:
            self._items.move_to_end(key)
        return found

    def put(self, key: K, value: V) -> None:
        self._items[key] = value
        self._items.move_to_end(key)
        while len(self._items) > self.size:
            self._items.popitem(last=False)

    def __len__(self) -> int:
        return len(self._items)


class DocumentCache:
    """Parsed documents by query text, and which texts passed validation."""

    def __init__(self, size: int = DOCUMENT_CACHE_SIZE) -> None:
        self._documents: _Lru[str, DocumentNode] = _Lru(size)
        self._valid: _Lru[str, bool] = _Lru(size)
        self._expanded: _Lru[str, int] = _Lru(size)

    def document(self, query: str) -> DocumentNode | None:
        return self._documents.get(query)

    def remember(self, query: str, document: DocumentNode) -> None:
        if len(query) <= MAX_CACHED_QUERY_CHARS:
            self._documents.put(query, document)

    def parse(self, query: str, max_tokens: int | None) -> DocumentNode:
        """The document of ``query`` (parsed once; GraphQLError when it does not parse)."""
        found = self._documents.get(query)
        if found is None:
            found = parse(query, max_tokens=max_tokens)
            self.remember(query, found)
        return found

    def expanded_fields(self, query: str, document: DocumentNode) -> int:
        """``expanded_fields(document)`` of the document of ``query`` (counted once)."""
        found = self._expanded.get(query)
        if found is None:
            found = expanded_fields(document)
            if len(query) <= MAX_CACHED_QUERY_CHARS:
                self._expanded.put(query, found)
        return found

    def is_valid(self, query: str) -> bool:
        return self._valid.get(query) is not None

    def mark_valid(self, query: str) -> None:
        if len(query) <= MAX_CACHED_QUERY_CHARS:
            self._valid.put(query, True)


def _cost_errors(
    schema: GraphQLSchema,
    document: DocumentNode,
    limits: QueryLimits,
    variables: dict[str, Any] | None,
) -> list[GraphQLError]:
    """The errors of the cost limit alone (the one validation rule that reads the variables),
    without walking the document as a full validation does."""
    errors: list[GraphQLError] = []
    if limits.max_cost:
        context = ValidationContext(schema, document, TypeInfo(schema), errors.append)
        cost_rule(limits, variables)(context)
    return errors


class CachedDocuments(SchemaExtension):
    """Skips parsing and validation of a query text seen (and found valid) before; the cost
    limit is still checked against each request's variables."""

    def __init__(self, cache: DocumentCache, limits: QueryLimits) -> None:
        self.cache = cache
        self.limits = limits

    def on_parse(self) -> Iterator[None]:
        context = self.execution_context
        query = context.query
        if context.graphql_document is None and query:
            context.graphql_document = self.cache.document(query)
        yield
        if query and context.graphql_document is not None and not context.pre_execution_errors:
            self.cache.remember(query, context.graphql_document)

    def on_validate(self) -> Iterator[None]:
        context = self.execution_context
        query = context.query
        document = context.graphql_document
        hit = (
            bool(query)
            and document is not None
            and context.pre_execution_errors is None
            and self.cache.is_valid(query or "")
        )
        if hit:
            assert document is not None
            context.pre_execution_errors = _cost_errors(
                context.schema._schema, document, self.limits, context.variables
            )
        yield
        if not hit and query and context.pre_execution_errors == []:
            # Valid with these variables: valid for any (only the cost reads them).
            self.cache.mark_valid(query)


class _PersistedQueryStore:
    """Automatic persisted queries of this process: query texts by SHA-256 (hex)."""

    def __init__(self, size: int = PERSISTED_QUERY_CACHE_SIZE) -> None:
        self._queries: _Lru[str, str] = _Lru(size)

    def resolve(self, query: str | None, persisted: object, media_type: str) -> str:
        """The query of a request carrying ``extensions.persistedQuery``, or a GraphQLHTTPError."""
        if not isinstance(persisted, dict):
            raise GraphQLHTTPError(400, "`extensions.persistedQuery` must be an object.")
        version = persisted.get("version")
        digest = persisted.get("sha256Hash")
        if version != 1:
            raise GraphQLHTTPError(
                400, "Unsupported persisted query version: only version 1 is supported."
            )
        if not isinstance(digest, str) or not _SHA256_HEX.fullmatch(digest.lower()):
            raise GraphQLHTTPError(
                400, "`extensions.persistedQuery.sha256Hash` must be a hex SHA-256."
            )
        digest = digest.lower()
        if query is None:
            found = self._queries.get(digest)
            if found is None:
                status = 400 if media_type == GRAPHQL_RESPONSE_JSON else 200
                raise GraphQLHTTPError(
                    status, "PersistedQueryNotFound", code=PERSISTED_QUERY_NOT_FOUND
                )
            return found
        if hashlib.sha256(query.encode("utf-8", "surrogatepass")).hexdigest() != digest:
            raise GraphQLHTTPError(
                400,
                "provided sha does not match query",
                code=PERSISTED_QUERY_HASH_MISMATCH,
            )
        if len(query) <= MAX_CACHED_QUERY_CHARS:
            self._queries.put(digest, query)
        return query


_SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89a-fA-F]")


class _BadJson(ValueError):
    """JSON that Python would accept but we do not; ``str(exc)`` says why."""


def _no_constant(name: str) -> object:
    """``json.loads`` hook: NaN, Infinity and -Infinity are not JSON (RFC 8259)."""
    raise _BadJson(f"{name} is not a JSON value")


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """``json.loads`` hook: an object may not name a key twice."""
    result = dict(pairs)
    if len(result) != len(pairs):
        seen: set[str] = set()
        for key, _ in pairs:
            if key in seen:
                raise _BadJson(f"the key {key[:40]!r} appears twice in one object")
            seen.add(key)
    return result


def _has_lone_surrogate(value: object) -> bool:
    """Whether any string in ``value`` (keys included) holds an unpaired UTF-16 surrogate."""
    if isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return True
        return False
    if isinstance(value, dict):
        return any(_has_lone_surrogate(k) or _has_lone_surrogate(v) for k, v in value.items())
    if isinstance(value, list):
        return any(_has_lone_surrogate(item) for item in value)
    return False


def _operation_record(scope: Scope) -> GraphQLOperation:
    """The request's operation record in ``scope["state"]`` (created on first use)."""
    state = scope.setdefault("state", {})
    record = state.get("graphql")
    if not isinstance(record, GraphQLOperation):
        record = state["graphql"] = GraphQLOperation()
    return record


def _unavailable(response_data: GraphQLHTTPResponse) -> bool:
    """Whether a response reports a database outage (SERVICE_UNAVAILABLE)."""
    for error in response_data.get("errors") or ():
        extensions = error.get("extensions") if isinstance(error, dict) else None
        if isinstance(extensions, dict) and extensions.get("code") == SERVICE_UNAVAILABLE:
            return True
    return False


def _outcome(result: ExecutionResult) -> str:
    """How a GraphQL result went, for metrics and the access log."""
    errors = result.errors or []
    if not errors:
        return "success"
    codes = {(error.extensions or {}).get("code") for error in errors}
    if SERVICE_UNAVAILABLE in codes:
        return "unavailable"
    if "INTERNAL_SERVER_ERROR" in codes:
        return "error"
    if result.data is None and all(error.path is None for error in errors):
        return "rejected"
    return "partial"


class GraphQLHTTPError(Exception):
    """An HTTP-level failure of a GraphQL request (answered with a JSON ``errors`` body)."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        code: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.code = code or _CODES.get(status, "BAD_REQUEST")
        self.headers = headers or {}


def negotiate(accept: str) -> str:
    """The response media type for an ``Accept`` header (application/json unless asked).

    The highest ``q`` wins; on a tie the GraphQL response type beats application/json, which
    beats wildcards (a wildcard or no header at all means application/json, as the spec says
    for legacy clients).
    """
    best: tuple[float, int] = (0.0, -1)
    chosen = JSON
    for item in accept.split(","):
        media, *params = (part.strip() for part in item.split(";"))
        media = media.lower()
        quality = 1.0
        for param in params:
            name, _, value = param.partition("=")
            if name.strip().lower() == "q":
                try:
                    quality = float(value)
                except ValueError:
                    quality = 0.0
        if media == GRAPHQL_RESPONSE_JSON:
            rank, candidate = 2, GRAPHQL_RESPONSE_JSON
        elif media == JSON:
            rank, candidate = 1, JSON
        elif media in ("*/*", "application/*"):
            rank, candidate = 0, JSON
        else:
            continue
        if quality > 0 and (quality, rank) > best:
            best, chosen = (quality, rank), candidate
    return chosen


def _wants_graphql_response(request: Request) -> bool:
    """Whether the client negotiated application/graphql-response+json (spec status codes)."""
    return negotiate(request.headers.get("accept", "")) == GRAPHQL_RESPONSE_JSON


def error_response(error: GraphQLHTTPError, media_type: str) -> Response:
    """The JSON body of an HTTP-level error, in the negotiated media type."""
    body = {"errors": [{"message": error.message, "extensions": {"code": error.code}}]}
    return Response(
        json.dumps(body, separators=(",", ":")),
        status_code=error.status,
        media_type=f"{media_type}; charset=utf-8",
        headers=error.headers,
    )


def query_limits(settings: Settings) -> QueryLimits:
    """The schema's query limits from settings (suggestions only in debug)."""
    return QueryLimits(
        max_depth=settings.max_query_depth,
        max_aliases=settings.max_query_aliases,
        max_tokens=settings.max_query_tokens,
        max_directives=settings.max_query_directives,
        max_cost=settings.max_query_cost,
        max_page_size=settings.max_page_size,
        introspection=settings.introspection,
        suggestions=settings.debug,
    )


class _SubResponse(Response):
    """strawberry's per-request sub-response, remembering the negotiated media type."""

    def __init__(self, media_type: str) -> None:
        super().__init__()
        self.negotiated = media_type
        self.status_code = None  # type: ignore[assignment]  # strawberry: "not set"
        del self.headers["content-length"]


class CollabXGraphQL(GraphQL[Context, None]):
    """GraphQL over HTTP (the principal comes from the bearer middleware) and subscriptions over
    WebSocket (graphql-transport-ws, authenticated on connection_init: api/subscriptions.py)."""

    graphql_transport_ws_handler_class = CollabXTransportWSHandler

    def __init__(self, state: AppState) -> None:
        settings = state.settings
        self._query_limits = query_limits(settings)
        schema = build_schema(self._query_limits)
        self.documents = DocumentCache()
        self.heavy = HeavyQueryGate(
            threshold=settings.heavy_query_cost,
            concurrency=settings.heavy_query_concurrency,
            wait_seconds=settings.heavy_query_wait_seconds,
        )
        self.persisted_queries = _PersistedQueryStore()
        documents, limits = self.documents, self._query_limits
        schema.extensions = (*schema.extensions, lambda: CachedDocuments(documents, limits))
        super().__init__(
            schema,
            graphql_ide="graphiql" if settings.debug else None,
            allow_queries_via_get=True,
            subscription_protocols=(GRAPHQL_TRANSPORT_WS_PROTOCOL,),
            connection_init_wait_timeout=timedelta(
                seconds=settings.ws_connection_init_timeout_seconds
            ),
            max_subscriptions_per_connection=None,  # counted by the handler, with a code
            allowed_origins=settings.cors_origins,
        )
        self.state = state
        self._graphql_schema = schema._schema
        self._state = state
        self._limits = Limits(
            max_page_size=settings.max_page_size,
            max_batch_rows=settings.max_batch_rows,
            webhook_allow_private=settings.webhook_allow_private,
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await super().__call__(scope, receive, send)
            return
        request = Request(scope=scope, receive=receive)
        media_type = negotiate(request.headers.get("accept", ""))
        _operation_record(scope)
        try:
            response = await self.run(request)
        except GraphQLHTTPError as exc:
            response = error_response(exc, media_type)
        except HTTPException as exc:
            headers = {"Allow": "GET, POST"} if exc.status_code == 405 else None
            error = GraphQLHTTPError(exc.status_code, exc.reason, headers=headers)
            response = error_response(error, media_type)
        await response(scope, receive, send)

    async def get_context(
        self, request: Request | WebSocket, response: Response | WebSocket | None
    ) -> Context:
        principal: Principal | None = request.scope.get("state", {}).get("principal")
        request_id: str = request.scope.get("state", {}).get("request_id", "")
        return Context(
            request=request,
            response=response if isinstance(response, Response) else None,
            principal=principal,
            db=self._state.sessionmaker,
            read_db=self._state.read_sessionmaker,
            loaders=Loaders(
                self._state.read_sessionmaker, principal.sponsor_id if principal else None
            ),
            limits=self._limits,
            request_id=request_id or connection_id(),
            ingest_observer=self._state.metrics,
            events=self._state.events,
        )

    async def get_root_value(self, request: Request | WebSocket) -> Any:
        return None

    async def get_sub_response(self, request: Request | WebSocket) -> Response:
        return _SubResponse(negotiate(request.headers.get("accept", "")))

    def should_render_graphql_ide(self, request: Any) -> bool:
        """A GET carrying a persisted query (``extensions`` without ``query``) is a request."""
        return bool(
            super().should_render_graphql_ide(request)
            and request.query_params.get("extensions") is None
        )

    async def parse_http_body(self, request: AsyncHTTPRequestAdapter) -> GraphQLRequestData:
        """The GraphQL request of a GET query string or a POST JSON object, or a 4xx."""
        if request.method == "GET":
            data: object = self.parse_query_params(request.query_params)
            if _has_lone_surrogate(data):
                raise GraphQLHTTPError(400, "The request holds text that is not valid Unicode.")
        else:
            data = await self._json_body(request)
        if isinstance(data, list):
            raise GraphQLHTTPError(
                400,
                "Batched requests (a JSON array of operations) are not supported: send one "
                "operation per request.",
            )
        if not isinstance(data, dict):
            raise GraphQLHTTPError(400, "The request body must be a JSON object.")
        query = data.get("query")
        extensions = data.get("extensions")
        operation_name = data.get("operationName")
        variables = data.get("variables")
        if not isinstance(extensions, dict | None):
            raise GraphQLHTTPError(400, "`extensions` must be an object or null.")
        if query is None and not (extensions and "persistedQuery" in extensions):
            raise GraphQLHTTPError(400, "The request has no `query`.")
        if not isinstance(query, str | None):
            raise GraphQLHTTPError(400, "`query` must be a string.")
        if not isinstance(operation_name, str | None):
            raise GraphQLHTTPError(400, "`operationName` must be a string or null.")
        if not isinstance(variables, dict | None):
            raise GraphQLHTTPError(400, "`variables` must be an object or null.")
        if extensions and "persistedQuery" in extensions:
            query = self.persisted_queries.resolve(
                query, extensions["persistedQuery"], negotiate(request.headers.get("accept", ""))
            )
        return GraphQLRequestData(
            query=query,
            variables=variables,
            operation_name=operation_name,
            extensions=extensions,
            protocol="http",
        )

    async def _json_body(self, request: AsyncHTTPRequestAdapter) -> object:
        media_type, params = parse_content_type(request.content_type or "")
        if request.content_type is None or media_type.lower() != JSON:
            raise GraphQLHTTPError(
                415, f"POST bodies must be {JSON} (got {request.content_type or 'none'})."
            )
        if params.get("charset", "utf-8").lower() not in ("utf-8", "utf8"):
            raise GraphQLHTTPError(415, f"POST bodies must be {JSON} in UTF-8.")
        body = await request.get_body()
        if not body.strip():
            raise GraphQLHTTPError(400, "The request body is empty: send {query, variables}.")
        try:
            data = json.loads(
                body.decode("utf-8"), parse_constant=_no_constant, object_pairs_hook=_unique_keys
            )
        except _BadJson as exc:
            raise GraphQLHTTPError(400, f"The request body is not valid JSON: {exc}.") from exc
        except ValueError as exc:  # JSONDecodeError and UnicodeDecodeError
            raise GraphQLHTTPError(400, "The request body is not valid JSON.") from exc
        if _SURROGATE_ESCAPE.search(body) and _has_lone_surrogate(data):
            raise GraphQLHTTPError(
                400, "The request body holds text that is not valid Unicode (a lone surrogate)."
            )
        return data

    async def execute_single(
        self,
        request: Request,
        request_adapter: AsyncHTTPRequestAdapter,
        sub_response: Response,
        context: Context,
        root_value: None,
        request_data: GraphQLRequestData,
    ) -> ExecutionResult:
        """strawberry's, with 405 for mutations over GET and unknown operations as errors,
        after naming the operation and charging its cost to the client's rate limit.
        Subscriptions are a request error here: they are served over WebSocket."""
        await self._charge(request, request_data)
        if _operation_record(request.scope).type == "subscription":
            error = GraphQLError(
                "Subscriptions are served over WebSocket: connect to /graphql with the "
                "graphql-transport-ws protocol.",
                extensions={"code": "OPERATION_NOT_ALLOWED"},
            )
            return ExecutionResult(data=None, errors=[error])
        try:
            async with self.heavy.slot(_operation_record(request.scope).cost):
                return await super().execute_single(
                    request, request_adapter, sub_response, context, root_value, request_data
                )
        except GateBusy as exc:
            raise GraphQLHTTPError(
                503,
                f"The server is busy with other large queries ({exc}); retry shortly.",
                code=SERVICE_UNAVAILABLE,
                headers={"Retry-After": UNAVAILABLE_RETRY_AFTER},
            ) from exc
        except HTTPException as exc:
            cause = exc.__cause__
            if isinstance(cause, InvalidOperationTypeError) and request_adapter.method == "GET":
                raise GraphQLHTTPError(
                    405,
                    f"{exc.reason}: send mutations with POST.",
                    headers={"Allow": "POST"},
                ) from exc
            if isinstance(cause, CannotGetOperationTypeError):
                error = GraphQLError(
                    cause.as_http_error_reason(), extensions={"code": "UNKNOWN_OPERATION"}
                )
                return ExecutionResult(data=None, errors=[error])
            raise

    def _analyse(self, request_data: GraphQLRequestData) -> tuple[str | None, str, int]:
        """(operation name, type, cost) of the operation a request selects; cost 1 when it
        cannot be told (the request fails later with a proper error)."""
        name = request_data.operation_name
        if not request_data.query:
            return name, "unknown", 1
        try:
            document = self.documents.parse(
                request_data.query, self._query_limits.max_tokens or None
            )
        except GraphQLError:
            return name, "unknown", 1
        operations = [
            definition
            for definition in document.definitions
            if isinstance(definition, OperationDefinitionNode)
        ]
        if name is not None:
            chosen = [op for op in operations if op.name is not None and op.name.value == name]
        else:
            chosen = operations if len(operations) == 1 else []
        if len(chosen) != 1:
            return name, "unknown", 1
        operation = chosen[0]
        name = operation.name.value if operation.name is not None else None
        bound = self._query_limits.max_expanded_fields
        if bound and self.documents.expanded_fields(request_data.query, document) > bound:
            return name, operation.operation.value, 1  # refused before anything runs
        costs = operation_costs(
            self._graphql_schema, document, request_data.variables, self._query_limits
        )
        cost = next((cost for op, cost in costs if op is operation), 1)
        maximum = self._query_limits.max_cost
        if maximum and cost > maximum:
            cost = 1  # refused by the cost limit before anything runs: charged as a request
        return name, operation.operation.value, max(1, cost)

    async def _charge(self, request: Request, request_data: GraphQLRequestData) -> None:
        """Name the operation; charge its cost; 429 when the client's bucket is empty."""
        record = _operation_record(request.scope)
        record.name, record.type, record.cost = self._analyse(request_data)
        limiter = self._state.rate_limiter
        if limiter is None:
            return
        principal: Principal | None = request.scope.get("state", {}).get("principal")
        client = (
            principal.client_id
            if principal
            else f"ip:{request.client.host if request.client else ''}"
        )
        decision = await limiter.charge_graphql(client, record.cost)
        if not decision.allowed:
            record.outcome = "rate_limited"
            seconds = decision.retry_after_seconds
            raise GraphQLHTTPError(
                429,
                f"Rate limit exceeded: this request costs {record.cost} and the client's "
                f"bucket of {limiter.graphql.capacity:g} (refilling "
                f"{limiter.graphql.refill_per_second:g} per second) holds "
                f"{int(decision.remaining)}; retry in {seconds} s.",
                code="RATE_LIMITED",
                headers={"Retry-After": str(seconds)},
            )

    async def process_result(
        self, request: Request, result: ExecutionResult
    ) -> GraphQLHTTPResponse:
        """For GraphQL-response clients a request error (nothing ran: no error has a path) has
        no ``data`` entry, and so answers 400; application/json clients keep ``data: null``."""
        _operation_record(request.scope).outcome = _outcome(result)
        response = await super().process_result(request, result)
        request_error = result.data is None and all(e.path is None for e in result.errors or [])
        if request_error and result.errors and _wants_graphql_response(request):
            response.pop("data", None)
        return response

    def create_response(
        self,
        response_data: GraphQLHTTPResponse | list[GraphQLHTTPResponse],
        sub_response: Response,
    ) -> Response:
        """200, or 400 for a request error when the client accepts the GraphQL media type, or
        503 with ``Retry-After`` when the database was unavailable (the client may retry)."""
        media_type = sub_response.negotiated if isinstance(sub_response, _SubResponse) else JSON
        status = 200
        if media_type == GRAPHQL_RESPONSE_JSON and (
            not isinstance(response_data, dict) or "data" not in response_data
        ):
            status = 400
        if isinstance(response_data, dict) and _unavailable(response_data):
            status = 503
            sub_response.headers["Retry-After"] = UNAVAILABLE_RETRY_AFTER
        response = Response(
            encode_json(response_data),  # orjson (the view's encode_json also serves WebSocket)
            status_code=status,
            media_type=f"{media_type}; charset=utf-8",
        )
        response.headers.raw.extend(sub_response.headers.raw)
        if sub_response.background:
            response.background = sub_response.background
        if sub_response.status_code:
            response.status_code = sub_response.status_code
        return response
