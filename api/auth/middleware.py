"""Bearer authentication at the HTTP edge: 401 with ``WWW-Authenticate`` before any GraphQL runs.

A pure ASGI middleware. Open paths pass through without a principal; every other HTTP request
needs a valid token of ours (or of the configured external provider) whose client still exists
and is not revoked. The principal is put in ``scope["state"]["principal"]``. WebSocket
connections pass through: they authenticate on ``connection_init`` with :func:`authenticate`
(api/subscriptions.py).

Verified signatures are remembered: a token whose signature and registered claims were checked
is not verified again for :data:`VERIFIED_TOKEN_SECONDS` seconds (never past its ``exp`` plus
the clock leeway), an LRU of :data:`VERIFIED_TOKEN_CACHE_SIZE` tokens per process. The key store
itself is re-read only every ``REFRESH_SECONDS`` (60 s, api/auth/keys.py), so a token signed by a
key removed from the store may keep working for up to the sum of the two, about two minutes
(rotation retires keys and keeps them verifying; nothing removes one today, so this is a bound).

The client is read on every request by default: a revoked client, a scope taken away or a team
binding changed takes effect at once. ``COLLABX_AUTH_CACHE_SECONDS`` > 0 lets each process reuse
a token's principal for that long (two queries and a pooled connection less per request), and
then such a change takes up to that many seconds to reach every process.
"""

from __future__ import annotations

import base64
import json
import time
import weakref
from collections import OrderedDict
from typing import Any

from starlette.datastructures import QueryParams
from starlette.types import ASGIApp, Receive, Scope, Send

from api.auth.keys import KeyStore
from api.auth.tokens import (
    CLOCK_LEEWAY_SECONDS,
    InvalidToken,
    unverified_header,
    validate_access_token,
)
from api.demo import DEMO_CLIENT_IDS
from api.state import AppState
from db.enums import DEFAULT_SCOPES, ClientKind
from db.queries.auth import token_client
from db.queries.sponsors import get_sponsor_by_slug
from schema.principal import Principal

OPEN_PATHS = frozenset(
    {
        "/oauth/token",
        "/healthz",
        "/readyz",
        "/metrics",
        "/fhir/metadata",
        "/favicon.ico",
        "/dashboard",
    }
)
# The dashboard's page and assets hold no data: it reads the API with the user's token.
OPEN_PREFIXES = ("/.well-known/", "/dashboard/")


VERIFIED_TOKEN_SECONDS = 60.0
"""How long a verified token's claims are reused without checking its signature again."""
VERIFIED_TOKEN_CACHE_SIZE = 4_096
"""Verified tokens remembered per process."""


class VerifiedTokens:
    """Claims of tokens whose signature and registered claims were verified, by token text."""

    def __init__(self, size: int = VERIFIED_TOKEN_CACHE_SIZE) -> None:
        self.size = size
        self._claims: OrderedDict[str, tuple[float, dict[str, Any]]] = OrderedDict()

    def get(self, token: str, now: float) -> dict[str, Any] | None:
        found = self._claims.get(token)
        if found is None:
            return None
        until, claims = found
        if now >= until:
            del self._claims[token]
            return None
        return claims

    def put(self, token: str, claims: dict[str, Any], now: float) -> None:
        expires = claims.get("exp")
        until = now + VERIFIED_TOKEN_SECONDS
        if isinstance(expires, int | float):
            until = min(until, float(expires) + CLOCK_LEEWAY_SECONDS)
        self._claims[token] = (until, claims)
        self._claims.move_to_end(token)
        while len(self._claims) > self.size:
            self._claims.popitem(last=False)


_VERIFIED: weakref.WeakKeyDictionary[KeyStore, VerifiedTokens] = weakref.WeakKeyDictionary()


def _verified(state: AppState) -> VerifiedTokens:
    """The verified-token cache of the app's key store (one per app: tests build many)."""
    found = _VERIFIED.get(state.keys)
    if found is None:
        found = _VERIFIED[state.keys] = VerifiedTokens()
    return found


async def _claims(state: AppState, token: str) -> dict[str, Any]:
    """The verified claims of one of our tokens (signature checked at most once a minute)."""
    cache = _verified(state)
    now = time.time()
    claims = cache.get(token, now)
    if claims is None:
        settings = state.settings
        claims = await validate_access_token(
            state.keys, token, issuer=settings.issuer, audience=settings.audience
        )
        cache.put(token, claims, now)
    return claims


def _is_open(scope: Scope, state: AppState) -> bool:
    path: str = scope["path"]
    if path in OPEN_PATHS or path.startswith(OPEN_PREFIXES):
        return True
    # GraphiQL's page (debug only) is a browser GET asking for HTML and carrying no operation;
    # the parameters are decoded first, so an encoded "query" cannot slip through.
    if state.settings.debug and path == "/graphql" and scope.get("method") == "GET":
        headers = dict(scope.get("headers") or [])
        accept = headers.get(b"accept", b"").decode("latin-1")
        params = QueryParams(scope.get("query_string", b"").decode("latin-1"))
        return "text/html" in accept and not ({"query", "extensions"} & set(params.keys()))
    return False


def _bearer(scope: Scope) -> str | None:
    for name, value in scope.get("headers") or []:
        if name == b"authorization":
            header: str = value.decode("latin-1")
            scheme, _, token = header.partition(" ")
            if scheme.lower() == "bearer" and token.strip():
                return token.strip()
            return ""
    return None


async def _unauthorized(send: Send, error: str | None, description: str) -> None:
    challenge = 'Bearer realm="collabx"'
    if error:
        challenge += f', error="{error}", error_description="{description}"'
    body = json.dumps(
        {"errors": [{"message": description, "extensions": {"code": "UNAUTHENTICATED"}}]}
    ).encode()
    await send(
        {
            "type": "http.response.start",
            "status": 401,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                (b"www-authenticate", challenge.encode()),
                (b"cache-control", b"no-store"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


class Principals:
    """Principals by token text, each kept ``seconds`` (``COLLABX_AUTH_CACHE_SECONDS``)."""

    def __init__(self, seconds: float, size: int = VERIFIED_TOKEN_CACHE_SIZE) -> None:
        self.seconds = seconds
        self.size = size
        self._principals: OrderedDict[str, tuple[float, Principal]] = OrderedDict()

    def get(self, token: str, now: float) -> Principal | None:
        found = self._principals.get(token)
        if found is None:
            return None
        if now >= found[0]:
            del self._principals[token]
            return None
        return found[1]

    def put(self, token: str, principal: Principal, now: float) -> None:
        self._principals[token] = (now + self.seconds, principal)
        self._principals.move_to_end(token)
        while len(self._principals) > self.size:
            self._principals.popitem(last=False)


_PRINCIPALS: weakref.WeakKeyDictionary[KeyStore, Principals] = weakref.WeakKeyDictionary()


async def authenticate(state: AppState, token: str) -> Principal:
    """The principal behind a bearer token, or InvalidToken (reused for
    ``COLLABX_AUTH_CACHE_SECONDS`` when that is set)."""
    seconds = state.settings.auth_cache_seconds
    if seconds <= 0:
        return await _authenticate(state, token)
    cache = _PRINCIPALS.get(state.keys)
    if cache is None or cache.seconds != seconds:
        cache = _PRINCIPALS[state.keys] = Principals(seconds)
    now = time.monotonic()
    principal = cache.get(token, now)
    # The verified claims bound the entry by the token's own expiry (and hold our tokens only).
    if principal is None or _verified(state).get(token, time.time()) is None:
        principal = await _authenticate(state, token)
        if _verified(state).get(token, time.time()) is not None:
            cache.put(token, principal, now)
    return principal


async def _authenticate(state: AppState, token: str) -> Principal:
    settings = state.settings
    external = state.external_keys
    if external is not None:
        claims_preview = _unverified_issuer(token)
        if claims_preview == external.issuer and external.issuer != settings.issuer:
            return await _external_principal(state, token)
    claims = await _claims(state, token)
    async with state.read_engine.connect() as connection:
        client = await token_client(connection, claims["client_id"])
    if client is None or client.revoked:
        raise InvalidToken("the client has been revoked")
    if client.client_id in DEMO_CLIENT_IDS and not settings.demo:
        raise InvalidToken("demo clients only work in demo mode")
    if claims["sponsor"] != client.sponsor_slug or claims["sub"] != client.client_id:
        raise InvalidToken("token does not match its client")
    # A scope taken away from the client stops working even in tokens issued before.
    scopes = frozenset(claims["scope"].split()) & frozenset(client.scopes)
    return Principal(
        client_id=client.client_id,
        kind=client.kind,
        sponsor_id=client.sponsor_id,
        sponsor_slug=client.sponsor_slug,
        scopes=scopes,
        team_ids=frozenset(client.team_ids),
        token_id=claims["jti"],
    )


def _unverified_issuer(token: str) -> str | None:
    """Peek at ``iss`` to route the token to the right validator (it is verified afterwards)."""
    unverified_header(token)
    payload = token.split(".")[1]
    try:
        claims: Any = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    except ValueError as exc:
        raise InvalidToken("token payload is not valid base64url JSON") from exc
    return claims.get("iss") if isinstance(claims, dict) else None


async def _external_principal(state: AppState, token: str) -> Principal:
    assert state.external_keys is not None
    claims = await state.external_keys.validate(token)
    sponsor_slug = claims.get(state.settings.external_sponsor_claim)
    if not isinstance(sponsor_slug, str):
        raise InvalidToken("external token names no sponsor")
    async with state.sessionmaker() as session:
        sponsor = await get_sponsor_by_slug(session, sponsor_slug)
    if sponsor is None:
        raise InvalidToken("external token names an unknown sponsor")
    allowed = frozenset(DEFAULT_SCOPES[ClientKind.DASHBOARD])
    asked = claims.get("scope")
    scopes = frozenset(asked.split()) & allowed if isinstance(asked, str) else allowed
    return Principal(
        client_id=f"external:{claims['sub']}",
        kind=ClientKind.DASHBOARD,
        sponsor_id=sponsor.id,
        sponsor_slug=sponsor.slug,
        scopes=scopes,
        team_ids=frozenset(),
        token_id=str(claims.get("jti", "")),
        external=True,
    )


class BearerAuthMiddleware:
    """Authenticates every non-open HTTP request."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        if scope["type"] == "websocket":
            # Subscriptions authenticate on connection_init (api/subscriptions.py): browsers
            # cannot send headers with a WebSocket handshake. Other paths have no route.
            await self.app(scope, receive, send)
            return
        state: AppState = scope["app"].state.collabx
        if _is_open(scope, state):
            await self.app(scope, receive, send)
            return
        token = _bearer(scope)
        if token is None:
            await _unauthorized(send, None, "a bearer token is required")
            return
        if not token:
            await _unauthorized(send, "invalid_request", "malformed Authorization header")
            return
        try:
            principal = await authenticate(state, token)
        except InvalidToken as exc:
            await _unauthorized(send, "invalid_token", str(exc).replace('"', "'"))
            return
        scope.setdefault("state", {})["principal"] = principal
        await self.app(scope, receive, send)
