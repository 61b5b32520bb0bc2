"""Rate limits: GraphQL buckets charged by query cost, brute-force limits on the token endpoint,
in process and shared through a real Redis (127.0.0.1:6379).

The Redis tests use a random key prefix each and delete their keys afterwards. They skip when
Redis does not answer, unless ``COLLABX_REQUIRE_REDIS=1`` (CI) makes that a failure.
"""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest
from asgi_lifespan import LifespanManager
from redis.asyncio import Redis
from redis.exceptions import RedisError
from starlette.applications import Starlette

from api.app import create_app
from api.ratelimit import MemoryBuckets, RateLimiter, RedisBuckets, Rule
from api.state import AppState
from db.enums import ClientKind
from tests.conftest import REQUIRE_REDIS_ENV, make_settings
from tests.factories import Tenant, TenantFactory

REDIS_URL = "redis://127.0.0.1:6379/0"
CLOSED_REDIS_URL = "redis://127.0.0.1:1/0"
LIST_21 = "{ collaboratives(first: 20) { nodes { code } } }"
"""Costs 1 + 20 * 1 = 21 (schema.limits: the connection times its page size of nodes)."""
VIEWER_1 = "{ viewer { clientId } }"
"""Costs 1."""


@asynccontextmanager
async def serving(
    database_url: str, **overrides: Any
) -> AsyncIterator[tuple[Starlette, httpx.AsyncClient, TenantFactory]]:
    """An app of its own with ``overrides``, its client and a tenant factory."""
    app = create_app(make_settings(database_url, **overrides))
    async with LifespanManager(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://collabx.test") as http:
            yield app, http, TenantFactory(app, http)


async def _post(http: httpx.AsyncClient, token: str, query: str) -> httpx.Response:
    return await http.post(
        "/graphql", json={"query": query}, headers={"Authorization": f"Bearer {token}"}
    )


def _assert_rate_limited(response: httpx.Response) -> int:
    assert response.status_code == 429, response.text
    retry_after = int(response.headers["retry-after"])
    assert retry_after >= 1
    error = response.json()["errors"][0]
    assert error["extensions"]["code"] == "RATE_LIMITED"
    assert "Rate limit" in error["message"]
    return retry_after


@pytest.fixture
async def redis_prefix() -> AsyncIterator[str]:
    """A random key prefix on the real Redis, its keys deleted afterwards."""
    client = Redis.from_url(REDIS_URL, socket_connect_timeout=1, socket_timeout=2)
    try:
        await client.ping()
    except (RedisError, OSError) as exc:
        await client.aclose()
        if os.environ.get(REQUIRE_REDIS_ENV) == "1":
            pytest.fail(f"{REQUIRE_REDIS_ENV}=1 but Redis at {REDIS_URL} does not answer: {exc}")
        pytest.skip(f"Redis at {REDIS_URL} does not answer")
    prefix = f"collabx-test:{uuid.uuid4().hex}:"
    try:
        yield prefix
    finally:
        keys = [key async for key in client.scan_iter(match=f"{prefix}*")]
        if keys:
            await client.delete(*keys)
        await client.aclose()


# --- GraphQL, in process ---------------------------------------------------------------------


async def test_graphql_requests_are_charged_by_cost_and_refused_with_429(
    database_url: str,
) -> None:
    async with serving(
        database_url, rate_limit_capacity=50, rate_limit_refill_per_second=0.001
    ) as (_app, http, tenants):
        tenant = await tenants.create()
        token = await tenant.token()
        for _ in range(2):  # 21 + 21 of 50
            assert (await _post(http, token, LIST_21)).status_code == 200
        refused = await _post(http, token, LIST_21)  # 21 > 8 left
        assert _assert_rate_limited(refused) >= (21 - 8) / 0.001 - 1
        # Nothing was charged for the refused request: a cheap one still fits.
        cheap = await _post(http, token, VIEWER_1)
        assert cheap.status_code == 200 and cheap.json()["data"]["viewer"]["clientId"]
        # The GraphQL media type gets the same 429.
        graphql_client = await http.post(
            "/graphql",
            json={"query": LIST_21},
            headers={
                "Authorization": f"Bearer {token}",
                "Accept": "application/graphql-response+json",
            },
        )
        _assert_rate_limited(graphql_client)
        # Another client has a bucket of its own.
        other_id, other_secret = await tenant.add_client(ClientKind.DASHBOARD)
        other = await tenant.token(other_id, other_secret)
        assert (await _post(http, other, LIST_21)).status_code == 200
        metrics = (await http.get("/metrics")).text
        assert 'collabx_rate_limited_total{endpoint="graphql"} 2.0' in metrics
        assert 'outcome="rate_limited"' in metrics


async def test_default_limits_are_generous(tenant: Tenant, app: Starlette) -> None:
    state: AppState = app.state.collabx
    limiter = state.rate_limiter
    assert limiter is not None
    assert limiter.graphql.capacity >= 4 * 50_000  # four queries at the cost limit
    for _ in range(20):
        body = await tenant.gql(LIST_21)
        assert "errors" not in body


async def test_rate_limiting_can_be_switched_off(database_url: str) -> None:
    async with serving(database_url, rate_limit_enabled=False, rate_limit_capacity=1) as (
        app,
        http,
        tenants,
    ):
        assert app.state.collabx.rate_limiter is None
        tenant = await tenants.create()
        token = await tenant.token()
        for _ in range(3):
            assert (await _post(http, token, LIST_21)).status_code == 200


# --- token endpoint ----------------------------------------------------------------------------


async def test_token_endpoint_stops_brute_force_per_client_id(database_url: str) -> None:
    async with serving(
        database_url,
        rate_limit_token_capacity=3,
        rate_limit_token_ip_capacity=100,
        rate_limit_token_refill_per_second=0.01,
    ) as (_, http, tenants):
        tenant = await tenants.create()
        grant = {"grant_type": "client_credentials"}
        for _ in range(3):
            wrong = await http.post("/oauth/token", data=grant, auth=(tenant.admin_id, "nope"))
            assert wrong.status_code == 401
        right = await http.post(
            "/oauth/token", data=grant, auth=(tenant.admin_id, tenant.admin_secret)
        )
        assert right.status_code == 429, right.text
        assert int(right.headers["retry-after"]) >= 1
        assert right.json()["error"] == "temporarily_unavailable"
        assert right.headers["cache-control"] == "no-store"
        # The same limit through client_secret_post, and other clients are not affected.
        body = {**grant, "client_id": tenant.admin_id, "client_secret": tenant.admin_secret}
        assert (await http.post("/oauth/token", data=body)).status_code == 429
        other_id, other_secret = await tenant.add_client(ClientKind.DASHBOARD)
        ok = await http.post("/oauth/token", data=grant, auth=(other_id, other_secret))
        assert ok.status_code == 200
        # Successful requests cost nothing.
        for _ in range(5):
            again = await http.post("/oauth/token", data=grant, auth=(other_id, other_secret))
            assert again.status_code == 200


async def test_token_endpoint_stops_brute_force_per_address(database_url: str) -> None:
    async with serving(
        database_url,
        rate_limit_token_capacity=100,
        rate_limit_token_ip_capacity=4,
        rate_limit_token_refill_per_second=0.01,
    ) as (_, http, tenants):
        tenant = await tenants.create()
        grant = {"grant_type": "client_credentials"}
        for number in range(4):  # a different unknown client id each time
            wrong = await http.post("/oauth/token", data=grant, auth=(f"guess-{number}", "x"))
            assert wrong.status_code == 401
        blocked = await http.post(
            "/oauth/token", data=grant, auth=(tenant.admin_id, tenant.admin_secret)
        )
        assert blocked.status_code == 429
        metrics = (await http.get("/metrics")).text
        assert 'collabx_rate_limited_total{endpoint="token"} 1.0' in metrics


# --- buckets -----------------------------------------------------------------------------------


async def test_memory_buckets_refill_and_stay_bounded() -> None:
    now = [0.0]
    buckets = MemoryBuckets(clock=lambda: now[0], max_buckets=10)
    rule = Rule(capacity=10, refill_per_second=2)
    assert (await buckets.take("a", 10, rule)).allowed
    refused = await buckets.take("a", 1, rule)
    assert not refused.allowed and refused.retry_after == pytest.approx(0.5)
    now[0] = 1.0
    assert (await buckets.take("a", 2, rule)).allowed  # refilled 2
    assert not (await buckets.take("a", 1, rule)).allowed
    for number in range(50):
        await buckets.take(f"k{number}", 1, rule)
    assert len(buckets) <= 10


async def test_limiter_charges_at_most_the_capacity() -> None:
    limiter = RateLimiter(
        MemoryBuckets(),
        graphql=Rule(100, 0.001),
        token_client=Rule(1, 1),
        token_ip=Rule(1, 1),
    )
    assert (await limiter.charge_graphql("c", 10**9)).allowed  # charged 100
    assert not (await limiter.charge_graphql("c", 0)).allowed  # at least 1


# --- Redis -----------------------------------------------------------------------------------


async def test_redis_buckets_take_atomically(redis_prefix: str) -> None:
    buckets = RedisBuckets(REDIS_URL)
    rule = Rule(capacity=50, refill_per_second=0.001)
    try:
        decisions = await asyncio.gather(
            *(buckets.take(f"{redis_prefix}race", 1, rule) for _ in range(120))
        )
        assert sum(d.allowed for d in decisions) == 50
        refused = next(d for d in decisions if not d.allowed)
        assert refused.retry_after > 0
        assert (await buckets.take(f"{redis_prefix}other", 50, rule)).allowed
    finally:
        await buckets.close()
    client = Redis.from_url(REDIS_URL)
    try:
        ttl = await client.pttl(f"{redis_prefix}race")
        assert 0 < ttl <= 50 / 0.001 * 1000 + 1000  # expires once it would be full again
    finally:
        await client.aclose()


async def test_two_processes_share_their_buckets_through_redis(
    database_url: str, redis_prefix: str
) -> None:
    shared = {
        "redis_url": REDIS_URL,
        "redis_key_prefix": redis_prefix,
        "rate_limit_capacity": 50,
        "rate_limit_refill_per_second": 0.001,
    }
    async with serving(database_url, **shared) as (_, first, tenants):
        tenant = await tenants.create()
        token = await tenant.token()
        async with serving(database_url, **shared) as (_, second, _tenants):
            assert (await _post(first, token, LIST_21)).status_code == 200
            assert (await _post(second, token, LIST_21)).status_code == 200
            _assert_rate_limited(await _post(first, token, LIST_21))
            _assert_rate_limited(await _post(second, token, LIST_21))
    client = Redis.from_url(REDIS_URL)
    try:
        assert [key async for key in client.scan_iter(match=f"{redis_prefix}gql:*")]
    finally:
        await client.aclose()


async def test_token_failures_are_shared_through_redis(
    database_url: str, redis_prefix: str
) -> None:
    shared = {
        "redis_url": REDIS_URL,
        "redis_key_prefix": redis_prefix,
        "rate_limit_token_capacity": 2,
        "rate_limit_token_refill_per_second": 0.01,
    }
    grant = {"grant_type": "client_credentials"}
    async with serving(database_url, **shared) as (_, first, tenants):
        tenant = await tenants.create()
        async with serving(database_url, **shared) as (_, second, _tenants):
            assert (
                await first.post("/oauth/token", data=grant, auth=(tenant.admin_id, "x"))
            ).status_code == 401
            assert (
                await second.post("/oauth/token", data=grant, auth=(tenant.admin_id, "x"))
            ).status_code == 401
            credentials = (tenant.admin_id, tenant.admin_secret)
            assert (
                await first.post("/oauth/token", data=grant, auth=credentials)
            ).status_code == 429


async def test_an_unreachable_redis_falls_back_to_local_buckets(database_url: str) -> None:
    async with serving(
        database_url,
        redis_url=CLOSED_REDIS_URL,
        rate_limit_capacity=50,
        rate_limit_refill_per_second=0.001,
    ) as (_, http, tenants):
        tenant = await tenants.create()
        token = await tenant.token()
        assert (await _post(http, token, LIST_21)).status_code == 200
        assert (await _post(http, token, LIST_21)).status_code == 200
        _assert_rate_limited(await _post(http, token, LIST_21))
