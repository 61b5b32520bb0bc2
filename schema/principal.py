"""Who is calling: built from a validated bearer token at the HTTP edge, read by resolvers."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from db.enums import ClientKind


@dataclass(frozen=True)
class Principal:
    """The authenticated client behind a request.

    ``scopes`` are those of the token that the client still holds (a scope taken away from a client
    stops working at once). ``team_ids`` bind an EHR integration to the teams it may write for.
    """

    client_id: str
    kind: ClientKind
    sponsor_id: uuid.UUID
    sponsor_slug: str
    scopes: frozenset[str]
    team_ids: frozenset[uuid.UUID]
    token_id: str = ""
    external: bool = False

    def has_scope(self, scope: str) -> bool:
        """True when the token grants ``scope``."""
        return scope in self.scopes

    @property
    def is_team_bound(self) -> bool:
        """True for a client restricted to its own teams (EHR integrations)."""
        return self.kind is ClientKind.EHR_INTEGRATION
