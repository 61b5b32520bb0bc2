"""The strawberry GraphQL view: builds the typed Context per request."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.websockets import WebSocket
from strawberry.asgi import GraphQL

from api.state import AppState
from schema.context import Context, Limits
from schema.loaders import Loaders
from schema.principal import Principal
from schema.schema import schema


class CollabXGraphQL(GraphQL[Context, None]):
    """GraphQL over HTTP; the principal comes from the bearer middleware."""

    def __init__(self, state: AppState) -> None:
        settings = state.settings
        super().__init__(
            schema,
            graphql_ide="graphiql" if settings.debug else None,
            allow_queries_via_get=True,
        )
        self._state = state
        self._limits = Limits(
            max_page_size=settings.max_page_size, max_batch_rows=settings.max_batch_rows
        )

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
