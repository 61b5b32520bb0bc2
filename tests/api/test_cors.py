"""CORS for browser dashboards: off by default, allowed origins only when configured."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from asgi_lifespan import LifespanManager

from api.app import create_app
from tests.conftest import make_settings

PREFLIGHT = {
    "Origin": "https://dashboard.example.org",
    "Access-Control-Request-Method": "POST",
    "Access-Control-Request-Headers": "authorization,content-type",
}


async def _client(database_url: str, origins: list[str]) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(make_settings(database_url, cors_origins=origins))
    async with LifespanManager(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            yield client


@pytest.fixture
async def cors_http(database_url: str) -> AsyncIterator[httpx.AsyncClient]:
    async for client in _client(database_url, ["https://dashboard.example.org"]):
        yield client


async def test_configured_origin_passes_the_preflight(cors_http: httpx.AsyncClient) -> None:
    response = await cors_http.options("/graphql", headers=PREFLIGHT)
    assert response.status_code == 200
    assert response.headers["access-control-allow-origin"] == "https://dashboard.example.org"
    assert "authorization" in response.headers["access-control-allow-headers"].lower()


async def test_other_origins_are_refused(cors_http: httpx.AsyncClient) -> None:
    response = await cors_http.options(
        "/graphql", headers={**PREFLIGHT, "Origin": "https://evil.example"}
    )
    assert response.status_code == 400
    assert "access-control-allow-origin" not in response.headers


async def test_no_cors_headers_by_default(http: httpx.AsyncClient) -> None:
    response = await http.get("/healthz", headers={"Origin": "https://dashboard.example.org"})
    assert "access-control-allow-origin" not in response.headers
