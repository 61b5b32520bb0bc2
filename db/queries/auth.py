"""Clients, their team bindings and signing keys."""

from __future__ import annotations

import hashlib
import hmac
import secrets
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, delete, select, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from db.base import utcnow
from db.enums import ClientKind
from db.errors import Conflict, NotFound
from db.models import Client, ClientTeam, SigningKey, Sponsor, Team
from db.queries.audit import Actor, record_event

_HASH_SCHEME = "sha256"


def hash_secret(secret: str) -> str:
    """A salted SHA-256 of a client secret (secrets are 256-bit random: a slow KDF buys nothing)."""
    salt = secrets.token_hex(16)
    digest = hashlib.sha256(f"{salt}${secret}".encode()).hexdigest()
    return f"{_HASH_SCHEME}${salt}${digest}"


def verify_secret(secret: str, stored: str) -> bool:
    """Constant-time comparison of a presented secret with its stored hash."""
    try:
        scheme, salt, digest = stored.split("$", 2)
    except ValueError:
        return False
    if scheme != _HASH_SCHEME:
        return False
    candidate = hashlib.sha256(f"{salt}${secret}".encode()).hexdigest()
    return hmac.compare_digest(candidate, digest)


def new_secret() -> str:
    """A fresh random client secret (256 bits, URL-safe)."""
    return secrets.token_urlsafe(32)


@dataclass(frozen=True)
class ClientRecord:
    """A client with its sponsor slug and bound team ids, as authentication needs it."""

    id: uuid.UUID
    client_id: str
    name: str
    kind: ClientKind
    scopes: tuple[str, ...]
    sponsor_id: uuid.UUID
    sponsor_slug: str
    team_ids: tuple[uuid.UUID, ...]
    secret_hash: str
    created_at: datetime
    revoked_at: datetime | None


OPERATOR = "cli"
"""Who client changes are attributed to when an operator makes them with the ``collabx`` CLI."""


def _client_audit(record: ClientRecord) -> dict[str, Any]:
    """What the audit trail keeps of a client: never its secret or the secret's hash."""
    return {
        "client_id": record.client_id,
        "kind": record.kind.value,
        "scopes": " ".join(record.scopes),
        "team_ids": [str(team_id) for team_id in record.team_ids],
        "revoked_at": record.revoked_at.isoformat() if record.revoked_at else None,
    }


async def _audit_client(
    session: AsyncSession,
    action: str,
    record: ClientRecord,
    *,
    before: ClientRecord | None,
    actor: str,
) -> None:
    await record_event(
        session,
        Actor(client_id=actor, kind="OPERATOR", sponsor_id=record.sponsor_id),
        action=action,
        entity_type="Client",
        entity_id=record.id,
        before=_client_audit(before) if before is not None else None,
        after=_client_audit(record),
    )


async def _record(session: AsyncSession, client: Client, sponsor_slug: str) -> ClientRecord:
    team_ids = (
        await session.scalars(
            select(ClientTeam.team_id)
            .where(ClientTeam.client_id == client.id)
            .order_by(ClientTeam.team_id)
        )
    ).all()
    return ClientRecord(
        id=client.id,
        client_id=client.client_id,
        name=client.name,
        kind=client.kind,
        scopes=tuple(client.scope_list),
        sponsor_id=client.sponsor_id,
        sponsor_slug=sponsor_slug,
        team_ids=tuple(team_ids),
        secret_hash=client.secret_hash,
        created_at=client.created_at,
        revoked_at=client.revoked_at,
    )


async def get_client_by_client_id(session: AsyncSession, client_id: str) -> ClientRecord | None:
    """The client with this OAuth ``client_id`` (revoked ones included), or None."""
    row = (
        await session.execute(
            select(Client, Sponsor.slug)
            .join(Sponsor, Sponsor.id == Client.sponsor_id)
            .where(Client.client_id == client_id)
        )
    ).first()
    if row is None:
        return None
    return await _record(session, row[0], row[1])


@dataclass(frozen=True)
class TokenClient:
    """What checking a bearer token needs of its client: the fields of a principal."""

    client_id: str
    kind: ClientKind
    scopes: tuple[str, ...]
    sponsor_id: uuid.UUID
    sponsor_slug: str
    team_ids: tuple[uuid.UUID, ...]
    revoked: bool


_TOKEN_CLIENT = (
    select(
        Client.client_id,
        Client.kind,
        Client.scopes,
        Client.sponsor_id,
        Sponsor.slug,
        Client.revoked_at,
        ClientTeam.team_id,
    )
    .join(Sponsor, Sponsor.id == Client.sponsor_id)
    .outerjoin(ClientTeam, ClientTeam.client_id == Client.id)
    .where(Client.client_id == bindparam("client_id"))
    .order_by(ClientTeam.team_id)
)
""":func:`token_client`'s statement, built once: the client and its teams in one round trip."""


async def token_client(connection: AsyncConnection, client_id: str) -> TokenClient | None:
    """The client of a bearer token (revoked ones included, marked), or None — one statement
    on a plain connection (every authenticated request runs it, so no ORM session)."""
    rows = (await connection.execute(_TOKEN_CLIENT, {"client_id": client_id})).all()
    if not rows:
        return None
    first = rows[0]
    return TokenClient(
        client_id=first.client_id,
        kind=ClientKind(first.kind),
        scopes=tuple(first.scopes.split()),
        sponsor_id=first.sponsor_id,
        sponsor_slug=first.slug,
        team_ids=tuple(row.team_id for row in rows if row.team_id is not None),
        revoked=first.revoked_at is not None,
    )


async def list_clients(
    session: AsyncSession, *, sponsor_slug: str | None = None
) -> Sequence[ClientRecord]:
    """Every client (of one sponsor when given), oldest first."""
    query = select(Client, Sponsor.slug).join(Sponsor, Sponsor.id == Client.sponsor_id)
    if sponsor_slug is not None:
        query = query.where(Sponsor.slug == sponsor_slug)
    rows = (await session.execute(query.order_by(Client.created_at, Client.client_id))).all()
    return [await _record(session, client, slug) for client, slug in rows]


async def create_client(
    session: AsyncSession,
    *,
    sponsor_slug: str,
    kind: ClientKind,
    scopes: Sequence[str],
    team_codes: Sequence[str] = (),
    client_id: str | None = None,
    secret: str | None = None,
    name: str = "",
    actor: str = OPERATOR,
) -> tuple[ClientRecord, str]:
    """Create a client; returns it and its secret in clear (shown once, stored only hashed)."""
    sponsor = await session.scalar(select(Sponsor).where(Sponsor.slug == sponsor_slug))
    if sponsor is None:
        raise NotFound(f"no sponsor with slug {sponsor_slug!r}", field="sponsor")
    client_id = client_id or f"{kind.value.lower().replace('_', '-')}-{secrets.token_hex(8)}"
    if await session.scalar(select(Client.id).where(Client.client_id == client_id)):
        raise Conflict(f"client id {client_id!r} is taken", field="client_id")
    team_ids: list[uuid.UUID] = []
    for code in team_codes:
        team_id = await session.scalar(
            select(Team.id).where(Team.sponsor_id == sponsor.id, Team.code == code)
        )
        if team_id is None:
            raise NotFound(f"no team {code!r} in sponsor {sponsor_slug!r}", field="team")
        team_ids.append(team_id)
    secret = secret or new_secret()
    client = Client(
        id=uuid.uuid4(),
        client_id=client_id,
        sponsor_id=sponsor.id,
        name=name or client_id,
        kind=kind,
        scopes=" ".join(scopes),
        secret_hash=hash_secret(secret),
        created_at=utcnow(),
    )
    session.add(client)
    await session.flush()
    for team_id in team_ids:
        session.add(ClientTeam(client_id=client.id, sponsor_id=sponsor.id, team_id=team_id))
    await session.flush()
    record = await _record(session, client, sponsor.slug)
    await _audit_client(session, "client.create", record, before=None, actor=actor)
    return record, secret


async def revoke_client(
    session: AsyncSession, client_id: str, *, actor: str = OPERATOR
) -> ClientRecord:
    """Mark a client revoked: its tokens stop working at the next request."""
    before = await get_client_by_client_id(session, client_id)
    await session.execute(
        update(Client)
        .where(Client.client_id == client_id, Client.revoked_at.is_(None))
        .values(revoked_at=utcnow())
    )
    record = await get_client_by_client_id(session, client_id)
    if record is None:
        raise NotFound(f"no client {client_id!r}", field="client_id")
    if before is not None and before.revoked_at is None:
        await _audit_client(session, "client.revoke", record, before=before, actor=actor)
    return record


async def rotate_client_secret(
    session: AsyncSession, client_id: str, *, actor: str = OPERATOR
) -> tuple[ClientRecord, str]:
    """A new secret for a client; the old one stops working at once (issued tokens live on)."""
    secret = new_secret()
    await session.execute(
        update(Client)
        .where(Client.client_id == client_id, Client.revoked_at.is_(None))
        .values(secret_hash=hash_secret(secret), secret_rotated_at=utcnow())
    )
    record = await get_client_by_client_id(session, client_id)
    if record is None or record.revoked_at is not None:
        raise NotFound(f"no active client {client_id!r}", field="client_id")
    await _audit_client(session, "client.rotate_secret", record, before=record, actor=actor)
    return record, secret


async def delete_clients(session: AsyncSession, client_ids: Sequence[str]) -> int:
    """Delete clients by client id (used to remove demo clients); returns how many went."""
    result = await session.execute(delete(Client).where(Client.client_id.in_(client_ids)))
    return int(getattr(result, "rowcount", 0) or 0)


async def existing_client_ids(
    session: AsyncSession, client_ids: Sequence[str], *, include_revoked: bool = False
) -> list[str]:
    """Which of these client ids exist (and are not revoked, unless ``include_revoked``)."""
    query = select(Client.client_id).where(Client.client_id.in_(client_ids))
    if not include_revoked:
        query = query.where(Client.revoked_at.is_(None))
    return sorted((await session.scalars(query)).all())


async def list_signing_keys(session: AsyncSession) -> Sequence[SigningKey]:
    """All signing keys, newest first."""
    return (await session.scalars(select(SigningKey).order_by(SigningKey.created_at.desc()))).all()


async def add_signing_key(
    session: AsyncSession,
    *,
    kid: str,
    alg: str,
    private_jwk: dict[str, Any],
    public_jwk: dict[str, Any],
) -> SigningKey:
    """Store a new key and retire every key that was active (they keep verifying until expiry)."""
    now = utcnow()
    await session.execute(
        update(SigningKey).where(SigningKey.retired_at.is_(None)).values(retired_at=now)
    )
    key = SigningKey(
        kid=kid, alg=alg, private_jwk=private_jwk, public_jwk=public_jwk, created_at=now
    )
    session.add(key)
    await session.flush()
    return key
