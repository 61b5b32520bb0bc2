"""The demo's partner view, tried as a new user would: `demo-partner` gets a token, lists the
agreement shared with its sponsor, and reads the shared aggregate (suppressed) — and nothing of
the collaboratives the agreement does not name."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from asgi_lifespan import LifespanManager

from api.app import create_app
from api.demo import DEMO_CLIENTS, ensure_demo_clients
from db.demo import DEMO_SHARED_COLLABORATIVE, DEMO_SPONSOR_SLUGS, seed_demo
from db.migrations import upgrade_to_head
from tests.conftest import make_settings

pytestmark = pytest.mark.timeout(180)

GRANTOR = DEMO_SPONSOR_SLUGS[0]


@pytest.fixture
async def demo_http(empty_database_url: str) -> AsyncIterator[httpx.AsyncClient]:
    await asyncio.to_thread(upgrade_to_head, empty_database_url)
    application = create_app(make_settings(empty_database_url, demo=True))
    async with LifespanManager(application):
        state = application.state.collabx
        async with state.sessionmaker.begin() as session:
            await seed_demo(session)
            await ensure_demo_clients(session)
        transport = httpx.ASGITransport(app=application)
        async with httpx.AsyncClient(transport=transport, base_url="http://demo.test") as client:
            yield client


async def _gql(http: httpx.AsyncClient, token: str, query: str, **variables: Any) -> Any:
    response = await http.post(
        "/graphql",
        json={"query": query, "variables": variables},
        headers={"Authorization": f"Bearer {token}"},
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert "errors" not in body, body
    return body["data"]


async def test_demo_partner_sees_the_shared_aggregate_at_once(
    demo_http: httpx.AsyncClient,
) -> None:
    partner = next(client for client in DEMO_CLIENTS if client.client_id == "demo-partner")
    response = await demo_http.post(
        "/oauth/token",
        data={"grant_type": "client_credentials"},
        auth=(partner.client_id, partner.secret),
    )
    token = response.json()["access_token"]
    found = await _gql(
        demo_http,
        token,
        """{ sharingAgreements { nodes { level grantor { slug } grantee { slug }
              collaboratives { code } measures { code } validFrom validTo status } } }""",
    )
    (agreement,) = found["sharingAgreements"]["nodes"]
    assert agreement["level"] == "AGGREGATE" and agreement["status"] == "IN_FORCE"
    assert agreement["grantor"]["slug"] == GRANTOR
    assert agreement["grantee"]["slug"] == partner.sponsor_slug
    assert agreement["collaboratives"] == [{"code": DEMO_SHARED_COLLABORATIVE}]
    measures = [m["code"] for m in agreement["measures"]]
    assert "asthma-control" in measures and agreement["validTo"] is None
    seen = await _gql(
        demo_http,
        token,
        """query ($sponsor: String!, $c: [String!]) {
             aggregate(measure: "asthma-control", sponsor: $sponsor,
                       scope: {collaboratives: $c}) {
               exact suppressionPolicy { cellMin minTeams }
               pooledDefinitions { sponsorSlug measureCode basis }
               points { period teamsReporting rate suppressed } } }""",
        sponsor=GRANTOR,
        c=[DEMO_SHARED_COLLABORATIVE],
    )
    aggregate = seen["aggregate"]
    assert aggregate["exact"] is False
    assert aggregate["suppressionPolicy"] == {"cellMin": 11, "minTeams": 3}
    assert len(aggregate["points"]) >= 12
    assert any(point["rate"] is not None for point in aggregate["points"])
    # another collaborative of the grantor is not shared: its aggregate is empty
    other = await _gql(
        demo_http,
        token,
        """query ($sponsor: String!) {
             aggregate(measure: "asthma-control", sponsor: $sponsor,
                       scope: {collaboratives: ["cyshcn-medical-home"]}) { points { period } } }""",
        sponsor=GRANTOR,
    )
    assert other["aggregate"]["points"] == []
