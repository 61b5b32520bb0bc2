"""Tokens of an external identity provider (dashboard users), checked against its JWKS."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import AsyncIterator, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest
from asgi_lifespan import LifespanManager
from joserfc import jwt
from joserfc.jwk import ECKey

from api.app import create_app
from tests.conftest import TEST_AUDIENCE, make_settings
from tests.factories import Tenant

IDP_ISSUER = "https://idp.example.test"
IDP_KEY = ECKey.generate_key("P-256", parameters={"kid": "idp-1", "alg": "ES256"}, private=True)
VIEWER = {"query": "{ viewer { clientId kind scopes sponsor { slug } } }"}


class _JwksHandler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        body = json.dumps({"keys": [IDP_KEY.as_dict(private=False)]}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        return


@pytest.fixture(scope="module")
def jwks_url() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _JwksHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/jwks.json"
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
async def idp_http(database_url: str, jwks_url: str) -> AsyncIterator[httpx.AsyncClient]:
    settings = make_settings(database_url, external_issuer=IDP_ISSUER, external_jwks_url=jwks_url)
    app = create_app(settings)
    async with LifespanManager(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            yield client


def idp_token(key: ECKey = IDP_KEY, **claims: Any) -> str:
    now = int(time.time())
    payload = {
        "iss": IDP_ISSUER,
        "aud": TEST_AUDIENCE,
        "sub": "user-42",
        "iat": now,
        "exp": now + 300,
        **claims,
    }
    return jwt.encode({"alg": "ES256", "kid": "idp-1", "typ": "JWT"}, payload, key, ["ES256"])


async def test_external_token_makes_a_dashboard_principal(
    idp_http: httpx.AsyncClient, tenant: Tenant
) -> None:
    token = idp_token(sponsor=tenant.slug, scope="program:read data:write")
    response = await idp_http.post(
        "/graphql", json=VIEWER, headers={"Authorization": f"Bearer {token}"}
    )
    assert response.status_code == 200, response.text
    viewer = response.json()["data"]["viewer"]
    assert viewer == {
        "clientId": "external:user-42",
        "kind": "DASHBOARD",
        "scopes": ["program:read"],
        "sponsor": {"slug": tenant.slug},
    }


async def test_our_own_tokens_still_work_beside_it(
    idp_http: httpx.AsyncClient, tenant: Tenant
) -> None:
    token = await tenant.token()
    response = await idp_http.post(
        "/graphql", json=VIEWER, headers={"Authorization": f"Bearer {token}"}
    )
    assert response.json()["data"]["viewer"]["kind"] == "ADMIN"


@pytest.mark.parametrize(
    "claims",
    [
        {"sponsor": "no-such-sponsor"},
        {"aud": "another-api"},
        {"exp": int(time.time()) - 600, "iat": int(time.time()) - 900},
        {},
    ],
    ids=["unknown-sponsor", "wrong-audience", "expired", "no-sponsor"],
)
async def test_bad_external_tokens_are_401(
    idp_http: httpx.AsyncClient, tenant: Tenant, claims: dict[str, Any]
) -> None:
    token = idp_token(**{"sponsor": tenant.slug, **claims})
    if not claims:
        token = idp_token()
    response = await idp_http.post(
        "/graphql", json=VIEWER, headers={"Authorization": f"Bearer {token}"}
    )
    assert response.status_code == 401
    assert response.headers["www-authenticate"].startswith("Bearer")


async def test_token_signed_by_another_key_is_401(
    idp_http: httpx.AsyncClient, tenant: Tenant
) -> None:
    impostor = ECKey.generate_key("P-256", parameters={"kid": "idp-1"}, private=True)
    token = idp_token(impostor, sponsor=tenant.slug)
    response = await idp_http.post(
        "/graphql", json=VIEWER, headers={"Authorization": f"Bearer {token}"}
    )
    assert response.status_code == 401
