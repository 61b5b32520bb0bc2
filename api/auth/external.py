"""Tokens of an external identity provider (for dashboard users), accepted beside our own.

Configured by ``COLLABX_EXTERNAL_ISSUER`` and ``COLLABX_EXTERNAL_JWKS_URL``. Such a token makes a
``DASHBOARD`` principal of the sponsor named in its ``sponsor`` claim
(``COLLABX_EXTERNAL_SPONSOR_CLAIM``), with the dashboard scopes it asks for in ``scope`` (all
dashboard scopes when it asks for none).
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import httpx
from joserfc.errors import JoseError
from joserfc.jwk import KeySet

from api.auth.tokens import (
    ALLOWED_ALGORITHMS,
    InvalidToken,
    unverified_header,
    verify_signed_claims,
)

JWKS_CACHE_SECONDS = 300.0
UNKNOWN_KID_REFRESH_SECONDS = 10.0


class ExternalKeys:
    """The external provider's JWKS, fetched over HTTP and cached."""

    def __init__(self, *, issuer: str, jwks_url: str, audience: str) -> None:
        self.issuer = issuer
        self.audience = audience
        self._jwks_url = jwks_url
        self._key_set: KeySet | None = None
        self._fetched_at = 0.0
        self._lock = asyncio.Lock()

    async def _fetch(self) -> KeySet:
        async with httpx.AsyncClient(timeout=5.0) as client:
            response = await client.get(self._jwks_url)
            response.raise_for_status()
        try:
            document: Any = response.json()
            key_set = KeySet.import_key_set(document)
        except (JoseError, ValueError, TypeError, KeyError) as exc:
            raise InvalidToken("the identity provider's JWKS is not usable") from exc
        self._key_set = key_set
        self._fetched_at = time.monotonic()
        return key_set

    async def key_set(self, kid: str | None) -> KeySet:
        """The provider's keys, re-fetched when stale or when ``kid`` is unknown."""
        async with self._lock:
            age = time.monotonic() - self._fetched_at
            known = (
                self._key_set is not None
                and kid is not None
                and any(key.kid == kid for key in self._key_set.keys)
            )
            if (
                self._key_set is None
                or age > JWKS_CACHE_SECONDS
                or (not known and age > UNKNOWN_KID_REFRESH_SECONDS)
            ):
                try:
                    return await self._fetch()
                except (httpx.HTTPError, InvalidToken) as exc:
                    # Keep serving with the keys we had; without any, the token cannot be checked.
                    if self._key_set is None:
                        raise InvalidToken("the identity provider's keys are unusable") from exc
            assert self._key_set is not None
            return self._key_set

    async def validate(self, token: str) -> dict[str, Any]:
        """Validate an external token; returns its claims or raises InvalidToken."""
        header = unverified_header(token)
        kid = header.get("kid")
        key_set = await self.key_set(kid if isinstance(kid, str) else None)
        return verify_signed_claims(
            token,
            key_set,
            algorithms=ALLOWED_ALGORITHMS,
            issuer=self.issuer,
            audience=self.audience,
        )
