"""Apollo Federation v2: entity keys and the authorization of ``_entities``.

Entities are keyed by ``sponsorSlug code`` (codes are unique only per sponsor), ``Sponsor`` by
``slug``. A representation is resolved only for a caller holding ``program:read`` and only within
the caller's own sponsor: another sponsor's key resolves to null, as if it did not exist.
"""

from __future__ import annotations

import uuid

from strawberry.federation.schema_directives import Key
from strawberry.federation.types import FieldSet

from schema.context import Info
from schema.errors import forbidden
from schema.permissions import require_principal

ENTITY_SCOPE = "program:read"


def entity_sponsor_id(info: Info, sponsor_slug: str | None) -> uuid.UUID | None:
    """The caller's sponsor when ``sponsor_slug`` names it, else None; FORBIDDEN without scope."""
    principal = require_principal(info)
    if not principal.has_scope(ENTITY_SCOPE):
        raise forbidden(f"this operation requires the scope {ENTITY_SCOPE!r}")
    if sponsor_slug != principal.sponsor_slug:
        return None
    return principal.sponsor_id


async def sponsor_slug_of(info: Info, sponsor_id: uuid.UUID) -> str:
    """The slug of a row's sponsor (batched with every other lookup of the level)."""
    row = await info.context.loaders.sponsor_by_id.load(sponsor_id)
    assert row is not None, "rows reference an existing sponsor"
    return row.slug


SPONSOR_CODE_KEY = Key(fields=FieldSet("sponsorSlug code"))
"""The key of Collaborative, Team, Organization and Measure: codes are unique per sponsor."""

SLUG_KEY = Key(fields=FieldSet("slug"))
"""The key of Sponsor."""
