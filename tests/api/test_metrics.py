"""GET /metrics: Prometheus text with request counts by route; optional token."""

from __future__ import annotations

import httpx
from asgi_lifespan import LifespanManager

from api.app import create_app
from tests.conftest import make_settings


async def test_requests_are_counted_by_route(http: httpx.AsyncClient) -> None:
    await http.get("/healthz")
    await http.post("/graphql", json={"query": "{ viewer { kind } }"})
    response = await http.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    text = response.text
    assert 'collabx_http_requests_total{method="GET",route="/healthz",status="200"}' in text
    assert 'route="/graphql",status="401"' in text
    assert "collabx_http_request_duration_seconds_bucket" in text


async def test_metrics_token_protects_the_endpoint(database_url: str) -> None:
    app = create_app(make_settings(database_url, metrics_token="s3cret"))
    async with LifespanManager(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            assert (await client.get("/metrics")).status_code == 401
            wrong = await client.get("/metrics", headers={"Authorization": "Bearer nope"})
            assert wrong.status_code == 401
            right = await client.get("/metrics", headers={"Authorization": "Bearer s3cret"})
            assert right.status_code == 200
