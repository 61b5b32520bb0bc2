"""Authorization: scope permissions for fields, and the caller's tenant for lookups.

Scopes are checked once per field that opens a list or an object graph (never per list item).
A missing scope is a top-level error with ``extensions.code = "FORBIDDEN"``.
"""

from __future__ import annotations

import uuid
from functools import cache
from typing import Any

from strawberry.permission import BasePermission

from schema.context import Info
from schema.errors import PublicError
from schema.principal import Principal


class _ScopePermission(BasePermission):
    scope: str = ""
    error_extensions = {"code": "FORBIDDEN"}

    def has_permission(self, source: Any, info: Info, **kwargs: Any) -> bool:
        principal = info.context.principal
        return principal is not None and principal.has_scope(self.scope)


@cache
def HasScope(scope: str) -> type[BasePermission]:  # noqa: N802 (reads like a class at use sites)
    """A permission class requiring ``scope`` (one class per scope, reused)."""
    return type(
        f"HasScope_{scope.replace(':', '_')}",
        (_ScopePermission,),
        {"scope": scope, "message": f"this operation requires the scope {scope!r}"},
    )


def require_principal(info: Info) -> Principal:
    """The caller (resolvers only run behind authentication, except over websockets)."""
    principal = info.context.principal
    if principal is None:
        raise PublicError("authentication is required", "UNAUTHENTICATED")
    return principal


def visible_sponsor_id(info: Info, sponsor_slug: str | None) -> uuid.UUID | None:
    """The sponsor a code lookup is scoped to: the caller's own, or None when another sponsor's
    data is asked for (sharing agreements will widen this)."""
    principal = require_principal(info)
    if sponsor_slug is None or sponsor_slug == principal.sponsor_slug:
        return principal.sponsor_id
    return None
