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
* every HTTP error has a JSON body ``{"errors": [{"message", "extensions": {"code"}}]}``.
"""

from __future__ import annotations

import json
from typing import Any

from cross_web import AsyncHTTPRequestAdapter, HTTPException
from graphql import GraphQLError
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import Receive, Scope, Send
from starlette.websockets import WebSocket
from strawberry.asgi import GraphQL
from strawberry.http import GraphQLHTTPResponse, GraphQLRequestData
from strawberry.http.parse_content_type import parse_content_type
from strawberry.schema.exceptions import CannotGetOperationTypeError, InvalidOperationTypeError
from strawberry.types import ExecutionResult

from api.settings import Settings
from api.state import AppState
from schema.context import Context, Limits
from schema.limits import QueryLimits
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
}


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
    """GraphQL over HTTP; the principal comes from the bearer middleware."""

    def __init__(self, state: AppState) -> None:
        settings = state.settings
        super().__init__(
            build_schema(query_limits(settings)),
            graphql_ide="graphiql" if settings.debug else None,
            allow_queries_via_get=True,
        )
        self._state = state
        self._limits = Limits(
            max_page_size=settings.max_page_size, max_batch_rows=settings.max_batch_rows
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await super().__call__(scope, receive, send)
            return
        request = Request(scope=scope, receive=receive)
        media_type = negotiate(request.headers.get("accept", ""))
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
            loaders=Loaders(self._state.sessionmaker, principal.sponsor_id if principal else None),
            limits=self._limits,
            request_id=request_id,
        )

    async def get_root_value(self, request: Request | WebSocket) -> Any:
        return None

    async def get_sub_response(self, request: Request | WebSocket) -> Response:
        return _SubResponse(negotiate(request.headers.get("accept", "")))

    async def parse_http_body(self, request: AsyncHTTPRequestAdapter) -> GraphQLRequestData:
        """The GraphQL request of a GET query string or a POST JSON object, or a 4xx."""
        if request.method == "GET":
            data: object = self.parse_query_params(request.query_params)
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
            return json.loads(body.decode("utf-8"))
        except ValueError as exc:  # JSONDecodeError and UnicodeDecodeError
            raise GraphQLHTTPError(400, "The request body is not valid JSON.") from exc

    async def execute_single(
        self,
        request: Request,
        request_adapter: AsyncHTTPRequestAdapter,
        sub_response: Response,
        context: Context,
        root_value: None,
        request_data: GraphQLRequestData,
    ) -> ExecutionResult:
        """strawberry's, with 405 for mutations over GET and unknown operations as errors."""
        try:
            return await super().execute_single(
                request, request_adapter, sub_response, context, root_value, request_data
            )
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

    async def process_result(
        self, request: Request, result: ExecutionResult
    ) -> GraphQLHTTPResponse:
        """For GraphQL-response clients a request error (nothing ran: no error has a path) has
        no ``data`` entry, and so answers 400; application/json clients keep ``data: null``."""
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
        """200, or 400 for a request error when the client accepts the GraphQL media type."""
        media_type = sub_response.negotiated if isinstance(sub_response, _SubResponse) else JSON
        status = 200
        if media_type == GRAPHQL_RESPONSE_JSON and (
            not isinstance(response_data, dict) or "data" not in response_data
        ):
            status = 400
        response = Response(
            self.encode_json(response_data),
            status_code=status,
            media_type=f"{media_type}; charset=utf-8",
        )
        response.headers.raw.extend(sub_response.headers.raw)
        if sub_response.background:
            response.background = sub_response.background
        if sub_response.status_code:
            response.status_code = sub_response.status_code
        return response
