"""The application factory: routes, middleware, and a lifespan that owns every resource."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware
from starlette.routing import Route, WebSocketRoute
from starlette.types import Receive, Scope, Send

from api.auth.endpoints import jwks_endpoint, metadata_endpoint, token_endpoint
from api.auth.external import ExternalKeys
from api.auth.keys import KeyStore
from api.auth.middleware import BearerAuthMiddleware
from api.availability import UnavailableMiddleware
from api.dashboard import dashboard_routes
from api.export import export_routes
from api.fhir import fhir_routes
from api.graphql import CollabXGraphQL
from api.health import healthz, readyz
from api.limits import SizeLimitMiddleware
from api.live import start_live, stop_live
from api.logs import AccessLogMiddleware
from api.maintenance import Maintenance
from api.metrics import Metrics, MetricsMiddleware, metrics_endpoint
from api.middleware import RequestIdMiddleware
from api.ratelimit import RateLimiter, rate_limited_token_endpoint
from api.settings import Settings
from api.state import AppState
from db.availability import is_unavailable
from db.sessions import create_engine, create_sessionmaker, read_only

logger = logging.getLogger("collabx.app")


def create_app(settings: Settings) -> Starlette:
    """A CollabX ASGI app; nothing connects until its lifespan starts."""

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        engine = create_engine(settings.database_url)
        sessionmaker = create_sessionmaker(engine)
        read_engine = read_only(engine)
        keys = KeyStore(
            sessionmaker, alg=settings.signing_alg, token_ttl=settings.token_ttl_seconds
        )
        external = None
        if settings.external_issuer and settings.external_jwks_url:
            external = ExternalKeys(
                issuer=settings.external_issuer,
                jwks_url=settings.external_jwks_url,
                audience=settings.external_audience or settings.audience,
            )
        state = AppState(
            settings=settings,
            engine=engine,
            sessionmaker=sessionmaker,
            read_engine=read_engine,
            read_sessionmaker=create_sessionmaker(read_engine),
            keys=keys,
            external_keys=external,
            metrics=metrics,
            rate_limiter=RateLimiter.from_settings(
                settings, on_limited=lambda endpoint: metrics.rate_limited.labels(endpoint).inc()
            ),
        )
        maintenance = Maintenance(state)
        try:
            try:
                await keys.load()
            except Exception as exc:
                if not is_unavailable(exc):
                    raise
                # Start anyway: /readyz says 503 and the keys load on first use.
                logger.warning("database unreachable at start-up (%s)", type(exc).__name__)
            await start_live(state)
            maintenance.start()
            app.state.collabx = state
            metrics.bind_engine(engine)
            graphql.bind(state)
            yield
        finally:
            await maintenance.stop()
            await stop_live(state)
            metrics.bind_engine(None)
            if state.rate_limiter is not None:
                await state.rate_limiter.close()
            await engine.dispose()

    graphql = _LazyGraphQL()
    metrics = Metrics()
    middleware = [
        Middleware(RequestIdMiddleware),
        Middleware(AccessLogMiddleware),
        Middleware(MetricsMiddleware, metrics=metrics),
        Middleware(UnavailableMiddleware),
    ]
    if settings.cors_origins:
        middleware.append(
            Middleware(
                CORSMiddleware,
                allow_origins=settings.cors_origins,
                allow_methods=["GET", "POST", "OPTIONS"],
                allow_headers=["Authorization", "Content-Type", "X-Request-ID"],
                expose_headers=["X-Request-ID"],
                max_age=600,
            )
        )
    middleware.append(
        Middleware(
            SizeLimitMiddleware,
            max_body_bytes=settings.max_body_bytes,
            max_fhir_body_bytes=settings.max_fhir_body_bytes,
            max_header_bytes=settings.max_header_bytes,
        )
    )
    middleware.append(Middleware(BearerAuthMiddleware))
    routes = [
        Route("/oauth/token", rate_limited_token_endpoint(token_endpoint), methods=["POST"]),
        Route("/.well-known/jwks.json", jwks_endpoint, methods=["GET"]),
        Route("/.well-known/oauth-authorization-server", metadata_endpoint, methods=["GET"]),
        Route("/healthz", healthz, methods=["GET"]),
        Route("/readyz", readyz, methods=["GET"]),
        Route("/metrics", metrics_endpoint, methods=["GET"]),
        Route("/graphql", graphql, methods=["GET", "POST"]),
        WebSocketRoute("/graphql", graphql),
        *fhir_routes(),
        *export_routes(),
        *dashboard_routes(),
    ]
    app = Starlette(routes=routes, middleware=middleware, lifespan=lifespan, debug=False)
    app.state.metrics = metrics
    return app


class _LazyGraphQL:
    """The GraphQL ASGI app, created when the lifespan has built the shared state."""

    def __init__(self) -> None:
        self._app: CollabXGraphQL | None = None

    def bind(self, state: AppState) -> None:
        self._app = CollabXGraphQL(state)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        assert self._app is not None, "the lifespan has not run"
        await self._app(scope, receive, send)
