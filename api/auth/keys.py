"""Token signing keys: stored in the database with a ``kid``, cached in the process.

The newest key signs. Retired keys stay in the JWKS (and keep verifying) until every token they
signed has expired, so ``collabx keys rotate`` never cuts a live token. Other processes see a
rotation within ``REFRESH_SECONDS``, or at once when they meet an unknown ``kid``.
"""

from __future__ import annotations

import asyncio
import secrets
import time
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from joserfc.jwk import ECKey, KeyParameters, RSAKey
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from db.base import utcnow
from db.queries.auth import add_signing_key, list_signing_keys

REFRESH_SECONDS = 60.0
"""How old the cached key set may get before it is re-read."""
UNKNOWN_KID_REFRESH_SECONDS = 1.0
"""Least time between two re-reads caused by unknown kids (so garbage kids cannot flood the DB)."""

SigningKeyType = ECKey | RSAKey


def generate_key(alg: str) -> tuple[str, dict[str, Any], dict[str, Any]]:
    """A new key pair for ``alg``: (kid, private JWK, public JWK)."""
    kid = secrets.token_urlsafe(12)
    parameters: KeyParameters = {"kid": kid, "alg": alg, "use": "sig"}
    key: SigningKeyType
    if alg == "ES256":
        key = ECKey.generate_key("P-256", parameters=parameters, private=True)
    elif alg == "RS256":
        key = RSAKey.generate_key(2048, parameters=parameters, private=True)
    else:
        raise ValueError(f"unsupported signing algorithm {alg}")
    return kid, key.as_dict(private=True), key.as_dict(private=False)


async def rotate_keys(session: AsyncSession, alg: str) -> str:
    """Create a new signing key (retiring the current one); returns its kid."""
    kid, private_jwk, public_jwk = generate_key(alg)
    await add_signing_key(session, kid=kid, alg=alg, private_jwk=private_jwk, public_jwk=public_jwk)
    return kid


def _import(jwk: dict[str, Any]) -> SigningKeyType:
    if jwk.get("kty") == "RSA":
        return RSAKey.import_key(jwk)
    return ECKey.import_key(jwk)


@dataclass(frozen=True)
class _Snapshot:
    signing: SigningKeyType
    signing_alg: str
    verifying: dict[str, SigningKeyType]
    public_jwks: list[dict[str, Any]]
    loaded_at: float


class KeyStore:
    """The process's view of the signing keys."""

    def __init__(
        self, sessionmaker: async_sessionmaker[AsyncSession], *, alg: str, token_ttl: int
    ) -> None:
        self._sessionmaker = sessionmaker
        self._alg = alg
        self._token_ttl = token_ttl
        self._snapshot: _Snapshot | None = None
        self._lock = asyncio.Lock()
        self._last_forced = 0.0

    async def load(self) -> None:
        """Read the keys, creating the first one when the database has none."""
        async with self._sessionmaker.begin() as session:
            keys = await list_signing_keys(session)
            if not keys:
                await rotate_keys(session, self._alg)
                keys = await list_signing_keys(session)
        # Keys retired longer ago than a token lives sign nothing that is still valid.
        horizon = utcnow() - timedelta(seconds=self._token_ttl + 60)
        live = [k for k in keys if k.retired_at is None or k.retired_at > horizon]
        # Newest first: the first unretired key signs (two rotations racing leave the newest).
        active = next((k for k in keys if k.retired_at is None), keys[0])
        self._snapshot = _Snapshot(
            signing=_import(active.private_jwk),
            signing_alg=active.alg,
            verifying={k.kid: _import(k.public_jwk) for k in live},
            public_jwks=[k.public_jwk for k in live],
            loaded_at=time.monotonic(),
        )

    async def _current(self) -> _Snapshot:
        snapshot = self._snapshot
        if snapshot is None or time.monotonic() - snapshot.loaded_at > REFRESH_SECONDS:
            async with self._lock:
                if self._snapshot is snapshot:
                    await self.load()
            snapshot = self._snapshot
        assert snapshot is not None
        return snapshot

    async def signing_key(self) -> tuple[SigningKeyType, str]:
        """The key that signs new tokens, and its algorithm."""
        snapshot = await self._current()
        return snapshot.signing, snapshot.signing_alg

    async def verifying_key(self, kid: str) -> SigningKeyType | None:
        """The public key for ``kid``, re-reading the store once when the kid is unknown."""
        snapshot = await self._current()
        key = snapshot.verifying.get(kid)
        if key is None and time.monotonic() - self._last_forced > UNKNOWN_KID_REFRESH_SECONDS:
            self._last_forced = time.monotonic()
            async with self._lock:
                await self.load()
            assert self._snapshot is not None
            key = self._snapshot.verifying.get(kid)
        return key

    async def jwks(self) -> dict[str, Any]:
        """The public JWKS document."""
        snapshot = await self._current()
        return {"keys": snapshot.public_jwks}
