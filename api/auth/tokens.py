"""Issuing and validating access tokens (RFC 9068 JWT profile: ``typ: at+jwt``).

Validation is strict and explicit: the header's ``alg`` must be on the allow-list and match the
key's algorithm (so ``none`` and HS256-with-the-public-key fail), ``kid`` must name a known key, and
``iss``, ``aud``, ``exp``, ``iat``, ``sub``, ``jti`` are all required.
"""

from __future__ import annotations

import base64
import json
import secrets
import time
from dataclasses import dataclass
from typing import Any

from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import ECKey, KeySet, RSAKey
from joserfc.jwt import JWTClaimsRegistry

from api.auth.keys import KeyStore

ALLOWED_ALGORITHMS = ("ES256", "RS256")
"""The only algorithms a token may be signed with."""
ACCESS_TOKEN_TYP = "at+jwt"  # noqa: S105 (a media type, not a secret)
CLOCK_LEEWAY_SECONDS = 30


class InvalidToken(Exception):
    """The bearer token cannot be accepted; ``str(exc)`` says why (sent in WWW-Authenticate)."""


@dataclass(frozen=True)
class IssuedToken:
    """An access token and what the token endpoint says about it."""

    access_token: str
    expires_in: int
    scope: str


async def issue_token(
    keys: KeyStore,
    *,
    issuer: str,
    audience: str,
    ttl: int,
    client_id: str,
    sponsor_slug: str,
    scopes: list[str],
) -> IssuedToken:
    """Sign an access token for a client."""
    key, alg = await keys.signing_key()
    now = int(time.time())
    scope = " ".join(scopes)
    claims: dict[str, Any] = {
        "iss": issuer,
        "sub": client_id,
        "aud": audience,
        "iat": now,
        "nbf": now,
        "exp": now + ttl,
        "jti": secrets.token_urlsafe(16),
        "client_id": client_id,
        "scope": scope,
        "sponsor": sponsor_slug,
    }
    header = {"alg": alg, "typ": ACCESS_TOKEN_TYP, "kid": key.kid}
    token = jwt.encode(header, claims, key, algorithms=[alg])
    return IssuedToken(access_token=token, expires_in=ttl, scope=scope)


def unverified_header(token: str) -> dict[str, Any]:
    """The JOSE header of a compact JWS, decoded but not trusted yet."""
    parts = token.split(".")
    if len(parts) != 3:
        raise InvalidToken("token is not a compact JWS")
    try:
        padded = parts[0] + "=" * (-len(parts[0]) % 4)
        header = json.loads(base64.urlsafe_b64decode(padded.encode("ascii")))
    except (ValueError, UnicodeError) as exc:
        raise InvalidToken("token header is not valid base64url JSON") from exc
    if not isinstance(header, dict):
        raise InvalidToken("token header is not a JSON object")
    return header


def verify_signed_claims(
    token: str,
    key: ECKey | RSAKey | KeySet,
    *,
    algorithms: tuple[str, ...],
    issuer: str,
    audience: str,
) -> dict[str, Any]:
    """Check signature and registered claims; returns the claims."""
    header = unverified_header(token)
    alg = header.get("alg")
    if alg not in algorithms:
        raise InvalidToken(f"algorithm {alg!r} is not accepted")
    if isinstance(key, ECKey | RSAKey) and key.alg and key.alg != alg:
        raise InvalidToken("algorithm does not match the signing key")
    try:
        decoded = jwt.decode(token, key, algorithms=list(algorithms))
        registry = JWTClaimsRegistry(
            leeway=CLOCK_LEEWAY_SECONDS,
            iss={"essential": True, "value": issuer},
            aud={"essential": True, "value": audience},
            exp={"essential": True},
            iat={"essential": True},
            sub={"essential": True},
        )
        registry.validate(decoded.claims)
    except JoseError as exc:
        raise InvalidToken(_describe(exc)) from exc
    except (ValueError, TypeError) as exc:
        raise InvalidToken("token could not be decoded") from exc
    return dict(decoded.claims)


def _describe(exc: JoseError) -> str:
    description = getattr(exc, "description", "") or exc.error
    return str(description)


async def validate_access_token(
    keys: KeyStore, token: str, *, issuer: str, audience: str
) -> dict[str, Any]:
    """Validate one of our own access tokens; returns its claims or raises InvalidToken."""
    header = unverified_header(token)
    if header.get("typ") != ACCESS_TOKEN_TYP:
        raise InvalidToken("token type must be at+jwt")
    kid = header.get("kid")
    if not isinstance(kid, str) or not kid:
        raise InvalidToken("token has no key id")
    key = await keys.verifying_key(kid)
    if key is None:
        raise InvalidToken("token was signed by an unknown key")
    claims = verify_signed_claims(
        token, key, algorithms=ALLOWED_ALGORITHMS, issuer=issuer, audience=audience
    )
    for name in ("jti", "client_id", "scope", "sponsor"):
        if not isinstance(claims.get(name), str):
            raise InvalidToken(f"token lacks the {name} claim")
    return claims
