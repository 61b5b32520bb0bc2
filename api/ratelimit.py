"""Per-client rate limiting: token buckets, in process or shared through Redis.

**GraphQL.** Every client (the ``client_id`` of its token) has a bucket of
``COLLABX_RATE_LIMIT_CAPACITY`` units that refills at ``COLLABX_RATE_LIMIT_REFILL_PER_SECOND``.
A request is charged its query cost (:func:`schema.limits.operation_costs`: requested page sizes
multiplied down the nesting), at least 1, before anything runs. An empty bucket answers **429**
with ``Retry-After`` (whole seconds) and ``{"errors": [{"extensions": {"code":
"RATE_LIMITED"}}]}``; nothing is charged then. A cost above the capacity is charged as the
capacity (the query limits refuse what is too costly anyway).

**Token endpoint.** Failed client authentications (``invalid_client``) are charged to two buckets,
one per claimed ``client_id`` and one per client IP address
(``COLLABX_RATE_LIMIT_TOKEN_CAPACITY`` / ``..._TOKEN_IP_CAPACITY``, refilled at
``..._TOKEN_REFILL_PER_SECOND``); while either is empty the endpoint answers 429
(``temporarily_unavailable``) with ``Retry-After`` without checking the secret, which stops
brute force. Successful requests cost nothing.

**Backends.** Without ``COLLABX_REDIS_URL`` the buckets live in the process (a bounded map).
With it, one Lua script per request takes from a Redis hash atomically, using Redis's clock, so
every API process shares the same buckets. Should Redis fail, the process falls back to its own
buckets for :data:`REDIS_RETRY_SECONDS` and logs a warning: an outage of Redis degrades the
limits, never the API.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import logging
import math
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol
from urllib.parse import parse_qsl, unquote

from redis.asyncio import BlockingConnectionPool, Redis
from redis.exceptions import RedisError
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

if TYPE_CHECKING:
    from api.settings import Settings

logger = logging.getLogger("collabx.ratelimit")

RATE_LIMITED = "RATE_LIMITED"
REDIS_RETRY_SECONDS = 5.0
"""How long a process uses its own buckets after Redis failed."""
MAX_FORM_BYTES = 8 * 1024
"""Token request bodies beyond this are refused by the endpoint; not worth parsing here."""
REDIS_CONNECTIONS = 32
"""Connections to Redis per process."""
MAX_MEMORY_BUCKETS = 100_000
"""Most buckets one process keeps (full buckets are dropped first, then the least recent)."""


@dataclass(frozen=True)
class Rule:
    """A bucket's size and how fast it refills."""

    capacity: float
    refill_per_second: float


@dataclass(frozen=True)
class Decision:
    """The answer of a bucket: allowed or not, what is left, and when to come back."""

    allowed: bool
    remaining: float
    retry_after: float

    @property
    def retry_after_seconds(self) -> int:
        """``Retry-After`` in whole seconds (at least 1)."""
        return max(1, math.ceil(self.retry_after))


class Buckets(Protocol):
    """A store of token buckets."""

    async def take(self, key: str, cost: float, rule: Rule) -> Decision:
        """Take ``cost`` tokens from ``key`` if it holds that many (``cost`` 0 only looks)."""
        ...

    async def close(self) -> None:
        """Release connections."""
        ...


def _refilled(tokens: float, elapsed: float, rule: Rule) -> float:
    return min(rule.capacity, tokens + max(0.0, elapsed) * rule.refill_per_second)


def _decide(tokens: float, cost: float, rule: Rule) -> tuple[Decision, float]:
    """The decision for a bucket holding ``tokens``, and the tokens left after it."""
    if tokens >= cost:
        return Decision(True, tokens - cost, 0.0), tokens - cost
    return Decision(False, tokens, (cost - tokens) / rule.refill_per_second), tokens


class MemoryBuckets:
    """Buckets in this process (one event loop, so no locking is needed)."""

    def __init__(
        self,
        *,
        clock: Callable[[], float] = time.monotonic,
        max_buckets: int = MAX_MEMORY_BUCKETS,
    ) -> None:
        self._clock = clock
        self._max = max_buckets
        # key -> (tokens, updated at, rule)
        self._buckets: OrderedDict[str, tuple[float, float, Rule]] = OrderedDict()

    def __len__(self) -> int:
        return len(self._buckets)

    async def take(self, key: str, cost: float, rule: Rule) -> Decision:
        now = self._clock()
        entry = self._buckets.get(key)
        tokens = rule.capacity if entry is None else _refilled(entry[0], now - entry[1], rule)
        decision, left = _decide(tokens, cost, rule)
        self._buckets[key] = (left, now, rule)
        self._buckets.move_to_end(key)
        if len(self._buckets) > self._max:
            self._evict(now)
        return decision

    def _evict(self, now: float) -> None:
        """Drop buckets that are full again (they equal a new one), then the least recent."""
        for key, (tokens, updated, rule) in list(self._buckets.items()):
            if _refilled(tokens, now - updated, rule) >= rule.capacity:
                del self._buckets[key]
        while len(self._buckets) > self._max:
            self._buckets.popitem(last=False)

    async def close(self) -> None:
        self._buckets.clear()


TAKE_SCRIPT = """
local capacity = tonumber(ARGV[1])
local rate = tonumber(ARGV[2])
local cost = tonumber(ARGV[3])
local clock = redis.call('TIME')
local now = tonumber(clock[1]) + tonumber(clock[2]) / 1000000
local state = redis.call('HMGET', KEYS[1], 'tokens', 'ts')
local tokens = tonumber(state[1])
local ts = tonumber(state[2])
if tokens == nil or ts == nil then
  tokens = capacity
  ts = now
end
tokens = math.min(capacity, tokens + math.max(0, now - ts) * rate)
local allowed = 0
local retry = 0
if tokens >= cost then
  tokens = tokens - cost
  allowed = 1
else
  retry = (cost - tokens) / rate
end
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'ts', tostring(now))
redis.call('PEXPIRE', KEYS[1], math.ceil(capacity / rate * 1000) + 1000)
return {allowed, tostring(tokens), tostring(retry)}
"""
"""Refill, take and store in one atomic step, on Redis's clock (processes' clocks may differ).
A bucket expires once it would be full again, so idle clients cost no memory."""


class RedisBuckets:
    """Buckets in Redis, shared by every process that uses the same URL and prefix."""

    def __init__(self, url: str, *, fallback: Buckets | None = None) -> None:
        # A blocking pool: a burst of requests waits for a connection instead of failing.
        pool = BlockingConnectionPool.from_url(
            url,
            max_connections=REDIS_CONNECTIONS,
            timeout=1,
            socket_connect_timeout=0.5,
            socket_timeout=0.5,
            health_check_interval=30,
        )
        self._redis = Redis.from_pool(pool)
        self._script = self._redis.register_script(TAKE_SCRIPT)
        self._fallback = fallback or MemoryBuckets()
        self._down_until = 0.0

    async def take(self, key: str, cost: float, rule: Rule) -> Decision:
        if time.monotonic() < self._down_until:
            return await self._fallback.take(key, cost, rule)
        try:
            raw = await self._script(keys=[key], args=[rule.capacity, rule.refill_per_second, cost])
        except (RedisError, OSError) as exc:
            self._down_until = time.monotonic() + REDIS_RETRY_SECONDS
            logger.warning(
                "rate limiting falls back to in-process buckets for %.0f s: Redis failed (%s)",
                REDIS_RETRY_SECONDS,
                type(exc).__name__,
            )
            return await self._fallback.take(key, cost, rule)
        allowed, remaining, retry = raw
        return Decision(bool(int(allowed)), float(remaining), float(retry))

    async def close(self) -> None:
        await self._redis.aclose()
        await self._fallback.close()


def _digest(identity: str) -> str:
    """A short, safe key part for any text (client ids and addresses are caller-supplied)."""
    return hashlib.sha256(identity.encode("utf-8", "surrogatepass")).hexdigest()[:32]


class RateLimiter:
    """The rate-limit rules of one app over a bucket store."""

    def __init__(
        self,
        buckets: Buckets,
        *,
        graphql: Rule,
        token_client: Rule,
        token_ip: Rule,
        prefix: str = "collabx:rl:",
        on_limited: Callable[[str], None] | None = None,
    ) -> None:
        self.buckets = buckets
        self.graphql = graphql
        self.token_client = token_client
        self.token_ip = token_ip
        self.prefix = prefix
        self._on_limited = on_limited

    @classmethod
    def from_settings(
        cls, settings: Settings, *, on_limited: Callable[[str], None] | None = None
    ) -> RateLimiter | None:
        """The configured limiter, or None when rate limiting is switched off."""
        if not settings.rate_limit_enabled:
            return None
        buckets: Buckets
        if settings.redis_url is not None and settings.redis_url.get_secret_value():
            buckets = RedisBuckets(settings.redis_url.get_secret_value())
        else:
            buckets = MemoryBuckets()
        refill = settings.rate_limit_token_refill_per_second
        return cls(
            buckets,
            graphql=Rule(settings.rate_limit_capacity, settings.rate_limit_refill_per_second),
            token_client=Rule(settings.rate_limit_token_capacity, refill),
            token_ip=Rule(settings.rate_limit_token_ip_capacity, refill),
            prefix=settings.redis_key_prefix,
            on_limited=on_limited,
        )

    def _limited(self, what: str, decision: Decision) -> Decision:
        if not decision.allowed and self._on_limited is not None:
            self._on_limited(what)
        return decision

    async def charge_graphql(self, client: str, cost: int) -> Decision:
        """Charge one GraphQL request of ``cost`` (at least 1, at most the capacity)."""
        amount = min(max(1, cost), self.graphql.capacity)
        key = f"{self.prefix}gql:{_digest(client)}"
        return self._limited("graphql", await self.buckets.take(key, amount, self.graphql))

    def _token_keys(self, client_id: str | None, address: str) -> list[tuple[str, Rule]]:
        keys = [(f"{self.prefix}tok-ip:{_digest(address)}", self.token_ip)]
        if client_id:
            keys.append((f"{self.prefix}tok-client:{_digest(client_id)}", self.token_client))
        return keys

    async def check_token(self, client_id: str | None, address: str) -> Decision:
        """Whether a token request may try to authenticate (each bucket holds an attempt)."""
        for key, rule in self._token_keys(client_id, address):
            seen = await self.buckets.take(key, 0, rule)
            if seen.remaining < 1:
                blocked = Decision(
                    False, seen.remaining, (1 - seen.remaining) / rule.refill_per_second
                )
                return self._limited("token", blocked)
        return Decision(True, 0.0, 0.0)

    async def token_failed(self, client_id: str | None, address: str) -> None:
        """Charge a failed client authentication to the client id and the address."""
        for key, rule in self._token_keys(client_id, address):
            await self.buckets.take(key, 1, rule)

    async def close(self) -> None:
        """Release the bucket store."""
        await self.buckets.close()


def claimed_client_id(request: Request, body: bytes) -> str | None:
    """The client id a token request claims (Basic or form), unverified, or None."""
    header = request.headers.get("authorization", "")
    scheme, _, encoded = header.partition(" ")
    if scheme.lower() == "basic":
        try:
            decoded = base64.b64decode(encoded.strip(), validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError):
            return None
        client_id, separator, _ = decoded.partition(":")
        return unquote(client_id.replace("+", " ")) if separator else None
    if len(body) > MAX_FORM_BYTES:
        return None
    try:
        pairs = parse_qsl(body.decode("utf-8"), keep_blank_values=True)
    except (UnicodeDecodeError, ValueError):
        return None
    for name, value in pairs:
        if name == "client_id":
            return value
    return None


def rate_limited_token_endpoint(
    endpoint: Callable[[Request], Awaitable[Response]],
) -> Callable[[Request], Awaitable[Response]]:
    """``endpoint`` (POST /oauth/token) behind the brute-force limits."""

    async def limited(request: Request) -> Response:
        limiter: RateLimiter | None = request.app.state.collabx.rate_limiter
        if limiter is None:
            return await endpoint(request)
        body = await request.body()  # cached on the request: the endpoint reads it again
        client_id = claimed_client_id(request, body)
        address = request.client.host if request.client else "unknown"
        decision = await limiter.check_token(client_id, address)
        if not decision.allowed:
            seconds = decision.retry_after_seconds
            return JSONResponse(
                {
                    "error": "temporarily_unavailable",
                    "error_description": (
                        f"too many failed client authentications; retry in {seconds} s"
                    ),
                },
                status_code=429,
                headers={
                    "Retry-After": str(seconds),
                    "Cache-Control": "no-store",
                    "Pragma": "no-cache",
                },
            )
        response = await endpoint(request)
        if response.status_code == 401:
            await limiter.token_failed(client_id, address)
        return response

    return limited
