"""POST /oauth/token (RFC 6749 §4.4, errors per §5.2), JWKS and RFC 8414 metadata."""

from __future__ import annotations

import base64
import json
from typing import Any

import httpx
from joserfc import jwt
from joserfc.jwk import KeySet

from db.enums import ClientKind
from tests.conftest import TEST_AUDIENCE, TEST_ISSUER
from tests.factories import Tenant

GRANT = {"grant_type": "client_credentials"}


def _decode(part: str) -> dict[str, Any]:
    decoded: dict[str, Any] = json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))
    return decoded


def _claims(token: str) -> tuple[dict[str, Any], dict[str, Any]]:
    header_b64, payload_b64, _ = token.split(".")
    return _decode(header_b64), _decode(payload_b64)


async def test_basic_auth_issues_an_rfc9068_access_token(
    http: httpx.AsyncClient, tenant: Tenant
) -> None:
    response = await http.post(
        "/oauth/token", data=GRANT, auth=(tenant.admin_id, tenant.admin_secret)
    )
    assert response.status_code == 200
    assert response.headers["cache-control"] == "no-store"
    body = response.json()
    assert body["token_type"] == "Bearer"
    assert body["expires_in"] == 3600
    assert "program:write" in body["scope"].split()
    header, claims = _claims(body["access_token"])
    assert header["typ"] == "at+jwt"
    assert header["alg"] == "ES256"
    assert header["kid"]
    assert claims["iss"] == TEST_ISSUER
    assert claims["aud"] == TEST_AUDIENCE
    assert claims["sub"] == claims["client_id"] == tenant.admin_id
    assert claims["sponsor"] == tenant.slug
    assert claims["scope"] == body["scope"]
    assert claims["exp"] - claims["iat"] == 3600
    assert claims["jti"]


async def test_token_verifies_against_the_published_jwks(
    http: httpx.AsyncClient, tenant: Tenant
) -> None:
    token = await tenant.token()
    jwks = (await http.get("/.well-known/jwks.json")).json()
    assert all("d" not in key for key in jwks["keys"]), "private key material must not leak"
    decoded = jwt.decode(token, KeySet.import_key_set(jwks), algorithms=["ES256", "RS256"])
    assert decoded.claims["sub"] == tenant.admin_id


async def test_client_secret_in_the_body_is_accepted(
    http: httpx.AsyncClient, tenant: Tenant
) -> None:
    data = {**GRANT, "client_id": tenant.admin_id, "client_secret": tenant.admin_secret}
    response = await http.post("/oauth/token", data=data)
    assert response.status_code == 200


async def test_requested_scope_narrows_the_token(http: httpx.AsyncClient, tenant: Tenant) -> None:
    response = await http.post(
        "/oauth/token",
        data={**GRANT, "scope": "catalog:read program:read"},
        auth=(tenant.admin_id, tenant.admin_secret),
    )
    assert response.status_code == 200
    assert response.json()["scope"] == "program:read catalog:read"


async def test_wrong_secret_is_invalid_client_401(http: httpx.AsyncClient, tenant: Tenant) -> None:
    response = await http.post("/oauth/token", data=GRANT, auth=(tenant.admin_id, "wrong"))
    assert response.status_code == 401
    assert response.json()["error"] == "invalid_client"
    assert response.headers["www-authenticate"].startswith("Basic")


async def test_unknown_client_is_invalid_client_401(
    http: httpx.AsyncClient, tenant: Tenant
) -> None:
    response = await http.post("/oauth/token", data=GRANT, auth=("nobody", "x"))
    assert response.status_code == 401
    assert response.json()["error"] == "invalid_client"


async def test_no_client_authentication_is_invalid_client(
    http: httpx.AsyncClient, tenant: Tenant
) -> None:
    response = await http.post("/oauth/token", data=GRANT)
    assert response.status_code == 401
    assert response.json()["error"] == "invalid_client"


async def test_unknown_scope_is_invalid_scope_400(http: httpx.AsyncClient, tenant: Tenant) -> None:
    response = await http.post(
        "/oauth/token", data={**GRANT, "scope": "root"}, auth=(tenant.admin_id, tenant.admin_secret)
    )
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_scope"
    assert "root" in response.json()["error_description"]


async def test_scope_not_granted_to_the_client_is_invalid_scope(
    http: httpx.AsyncClient, tenant: Tenant
) -> None:
    client_id, secret = await tenant.add_client(ClientKind.DASHBOARD)
    response = await http.post(
        "/oauth/token", data={**GRANT, "scope": "program:write"}, auth=(client_id, secret)
    )
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_scope"


async def test_other_grant_types_are_unsupported(http: httpx.AsyncClient, tenant: Tenant) -> None:
    response = await http.post(
        "/oauth/token",
        data={"grant_type": "password", "username": "a", "password": "b"},
        auth=(tenant.admin_id, tenant.admin_secret),
    )
    assert response.status_code == 400
    assert response.json()["error"] == "unsupported_grant_type"


async def test_missing_grant_type_is_invalid_request(
    http: httpx.AsyncClient, tenant: Tenant
) -> None:
    response = await http.post("/oauth/token", data={}, auth=(tenant.admin_id, tenant.admin_secret))
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_request"


async def test_json_body_is_invalid_request(http: httpx.AsyncClient, tenant: Tenant) -> None:
    response = await http.post(
        "/oauth/token", json=GRANT, auth=(tenant.admin_id, tenant.admin_secret)
    )
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_request"


async def test_two_authentication_methods_are_invalid_request(
    http: httpx.AsyncClient, tenant: Tenant
) -> None:
    response = await http.post(
        "/oauth/token",
        data={**GRANT, "client_id": tenant.admin_id, "client_secret": tenant.admin_secret},
        auth=(tenant.admin_id, tenant.admin_secret),
    )
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_request"


async def test_metadata_describes_the_server(http: httpx.AsyncClient, tenant: Tenant) -> None:
    response = await http.get("/.well-known/oauth-authorization-server")
    assert response.status_code == 200
    document = response.json()
    assert document["issuer"] == TEST_ISSUER
    assert document["token_endpoint"] == f"{TEST_ISSUER}/oauth/token"
    assert document["jwks_uri"] == f"{TEST_ISSUER}/.well-known/jwks.json"
    assert document["grant_types_supported"] == ["client_credentials"]
    assert "data:write" in document["scopes_supported"]
