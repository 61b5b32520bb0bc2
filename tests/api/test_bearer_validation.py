"""Bearer validation at the edge: every bad token gets 401 + WWW-Authenticate before GraphQL."""

from __future__ import annotations

import base64
import json
import time
from typing import Any

import httpx
import pytest
from joserfc import jwt
from joserfc.jwk import ECKey, OctKey
from starlette.applications import Starlette

from api.auth.keys import rotate_keys
from api.state import AppState
from db.enums import ClientKind
from db.queries.auth import revoke_client
from tests.conftest import TEST_AUDIENCE, TEST_ISSUER
from tests.factories import Tenant

VIEWER = {"query": "{ viewer { clientId } }"}


async def _claims(tenant: Tenant, **overrides: Any) -> dict[str, Any]:
    now = int(time.time())
    claims: dict[str, Any] = {
        "iss": TEST_ISSUER,
        "aud": TEST_AUDIENCE,
        "sub": tenant.admin_id,
        "client_id": tenant.admin_id,
        "sponsor": tenant.slug,
        "scope": "program:read",
        "iat": now,
        "exp": now + 300,
        "jti": "test-jti",
    }
    claims.update(overrides)
    return {k: v for k, v in claims.items() if v is not None}


async def _forge(app: Starlette, claims: dict[str, Any], **header: Any) -> str:
    state: AppState = app.state.collabx
    key, alg = await state.keys.signing_key()
    full_header = {"alg": alg, "typ": "at+jwt", "kid": key.kid, **header}
    return jwt.encode(full_header, claims, key, algorithms=[full_header["alg"]])


async def _call(http: httpx.AsyncClient, token: str | None) -> httpx.Response:
    headers = {"Authorization": f"Bearer {token}"} if token is not None else {}
    return await http.post("/graphql", json=VIEWER, headers=headers)


def _assert_401(response: httpx.Response, error: str | None = "invalid_token") -> None:
    assert response.status_code == 401, response.text
    challenge = response.headers["www-authenticate"]
    assert challenge.startswith("Bearer")
    if error:
        assert f'error="{error}"' in challenge
    assert response.json()["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"


async def test_forged_token_with_valid_claims_is_accepted(
    app: Starlette, http: httpx.AsyncClient, tenant: Tenant
) -> None:
    # The control case: the forging helper itself produces acceptable tokens.
    response = await _call(http, await _forge(app, await _claims(tenant)))
    assert response.status_code == 200
    assert response.json()["data"]["viewer"]["clientId"] == tenant.admin_id


async def test_missing_token(http: httpx.AsyncClient, tenant: Tenant) -> None:
    _assert_401(await _call(http, None), error=None)


async def test_malformed_token(http: httpx.AsyncClient, tenant: Tenant) -> None:
    _assert_401(await _call(http, "not.a-token"))
    _assert_401(await _call(http, "abc"))


async def test_non_bearer_scheme(http: httpx.AsyncClient, tenant: Tenant) -> None:
    response = await http.post("/graphql", json=VIEWER, headers={"Authorization": "Basic eDp5"})
    _assert_401(response, error="invalid_request")


async def test_expired_token(app: Starlette, http: httpx.AsyncClient, tenant: Tenant) -> None:
    past = int(time.time()) - 3600
    token = await _forge(app, await _claims(tenant, iat=past - 300, exp=past))
    _assert_401(await _call(http, token))


async def test_wrong_audience(app: Starlette, http: httpx.AsyncClient, tenant: Tenant) -> None:
    token = await _forge(app, await _claims(tenant, aud="someone-else"))
    _assert_401(await _call(http, token))


async def test_wrong_issuer(app: Starlette, http: httpx.AsyncClient, tenant: Tenant) -> None:
    token = await _forge(app, await _claims(tenant, iss="https://evil.example"))
    _assert_401(await _call(http, token))


async def test_missing_exp(app: Starlette, http: httpx.AsyncClient, tenant: Tenant) -> None:
    claims = await _claims(tenant)
    del claims["exp"]
    _assert_401(await _call(http, await _forge(app, claims)))


async def test_wrong_typ(app: Starlette, http: httpx.AsyncClient, tenant: Tenant) -> None:
    token = await _forge(app, await _claims(tenant), typ="JWT")
    _assert_401(await _call(http, token))


async def test_alg_none(http: httpx.AsyncClient, tenant: Tenant) -> None:
    def part(data: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(json.dumps(data).encode()).decode().rstrip("=")

    header = {"alg": "none", "typ": "at+jwt", "kid": "x"}
    token = f"{part(header)}.{part(await _claims(tenant))}."
    _assert_401(await _call(http, token))


async def test_hs256_signed_with_the_public_key(
    app: Starlette, http: httpx.AsyncClient, tenant: Tenant
) -> None:
    state: AppState = app.state.collabx
    jwks = await state.keys.jwks()
    public = jwks["keys"][0]
    secret = OctKey.import_key(json.dumps(public, sort_keys=True).encode())
    header = {"alg": "HS256", "typ": "at+jwt", "kid": public["kid"]}
    token = jwt.encode(header, await _claims(tenant), secret, algorithms=["HS256"])
    _assert_401(await _call(http, token))


async def test_unknown_kid(http: httpx.AsyncClient, tenant: Tenant) -> None:
    stranger = ECKey.generate_key("P-256", parameters={"kid": "unknown-kid"}, private=True)
    header = {"alg": "ES256", "typ": "at+jwt", "kid": "unknown-kid"}
    token = jwt.encode(header, await _claims(tenant), stranger, algorithms=["ES256"])
    _assert_401(await _call(http, token))


async def test_signature_by_another_key_under_a_known_kid(
    app: Starlette, http: httpx.AsyncClient, tenant: Tenant
) -> None:
    state: AppState = app.state.collabx
    key, _ = await state.keys.signing_key()
    stranger = ECKey.generate_key("P-256", private=True)
    header = {"alg": "ES256", "typ": "at+jwt", "kid": key.kid}
    token = jwt.encode(header, await _claims(tenant), stranger, algorithms=["ES256"])
    _assert_401(await _call(http, token))


async def test_sponsor_claim_must_match_the_client(
    app: Starlette, http: httpx.AsyncClient, tenant: Tenant, tenants: Any
) -> None:
    other = await tenants.create()
    token = await _forge(app, await _claims(tenant, sponsor=other.slug))
    _assert_401(await _call(http, token))


async def test_revoked_client_tokens_stop_working_at_once(
    app: Starlette, http: httpx.AsyncClient, tenant: Tenant
) -> None:
    client_id, secret = await tenant.add_client(ClientKind.DASHBOARD)
    token = await tenant.token(client_id, secret)
    assert (await _call(http, token)).status_code == 200
    state: AppState = app.state.collabx
    async with state.sessionmaker.begin() as session:
        await revoke_client(session, client_id)
    _assert_401(await _call(http, token))
    refused = await http.post(
        "/oauth/token", data={"grant_type": "client_credentials"}, auth=(client_id, secret)
    )
    assert refused.status_code == 401


async def test_key_rotation_keeps_old_tokens_valid(
    app: Starlette, http: httpx.AsyncClient, tenant: Tenant
) -> None:
    old_token = await tenant.token()
    state: AppState = app.state.collabx
    async with state.sessionmaker.begin() as session:
        new_kid = await rotate_keys(session, "ES256")
    await state.keys.load()
    new_token = await tenant.factory.token(tenant.admin_id, tenant.admin_secret)
    header = json.loads(base64.urlsafe_b64decode(new_token.split(".")[0] + "=="))
    assert header["kid"] == new_kid
    jwks = (await http.get("/.well-known/jwks.json")).json()
    kids = {key["kid"] for key in jwks["keys"]}
    old_kid = json.loads(base64.urlsafe_b64decode(old_token.split(".")[0] + "=="))["kid"]
    assert {old_kid, new_kid} <= kids
    assert (await _call(http, old_token)).status_code == 200
    assert (await _call(http, new_token)).status_code == 200


@pytest.mark.parametrize("path", ["/healthz", "/.well-known/jwks.json"])
async def test_open_paths_need_no_token(http: httpx.AsyncClient, app: Starlette, path: str) -> None:
    assert (await http.get(path)).status_code == 200
