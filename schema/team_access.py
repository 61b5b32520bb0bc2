"""Who may read and write a team's improvement content: PDSA cycles, assessments, surveys.

Writing:

* **Faculty and staff** — a client with ``program:write`` that is not team-bound — write for
  every team of their sponsor: PDSA cycles, FACULTY and SELF assessments, survey responses, and
  the collaborative's change package.
* **Team-bound clients** (EHR integrations, ``principal.is_team_bound``) write for their own
  teams only (``principal.team_ids``): PDSA cycles, SELF assessments and survey responses. They
  need ``data:write`` — the scope they already hold to push their teams' measure data — or
  ``program:write``. FACULTY scores and the change package are never theirs to write.

Anything else is a ``ForbiddenError`` union member (code FORBIDDEN); a client holding neither
scope is stopped before the resolver with a top-level FORBIDDEN error.

Reading needs ``program:read``; a team-bound client reads only its own teams' content (another
team's field is a top-level FORBIDDEN error, another team's object through ``node`` is null).
"""

from __future__ import annotations

import uuid
from functools import cache
from typing import Any

from strawberry.permission import BasePermission

from db.errors import DomainError
from db.queries.content import TeamNotPermitted
from schema.context import Info
from schema.errors import (
    ConflictError,
    ForbiddenError,
    NotFoundError,
    ValidationError,
    error_from_domain,
    forbidden,
)
from schema.permissions import require_principal
from schema.principal import Principal

TEAM_WRITE_SCOPES = ("program:write", "data:write")
"""Either scope lets a mutation on team content run; the resolver then checks the team."""


class _AnyScopePermission(BasePermission):
    scopes: tuple[str, ...] = ()
    error_extensions = {"code": "FORBIDDEN"}

    def has_permission(self, source: Any, info: Info, **kwargs: Any) -> bool:
        principal = info.context.principal
        return principal is not None and any(principal.has_scope(s) for s in self.scopes)


@cache
def HasAnyScope(*scopes: str) -> type[BasePermission]:  # noqa: N802 (reads like a class)
    """A permission class requiring at least one of ``scopes``."""
    names = " or ".join(repr(scope) for scope in scopes)
    return type(
        f"HasAnyScope_{'_'.join(s.replace(':', '_') for s in scopes)}",
        (_AnyScopePermission,),
        {"scopes": scopes, "message": f"this operation requires the scope {names}"},
    )


def writable_team_ids(principal: Principal) -> frozenset[uuid.UUID] | None:
    """The teams the caller may write content for: None for every team of its sponsor (staff),
    else its own teams; TeamNotPermitted when it may write for none."""
    if principal.is_team_bound:
        if not principal.team_ids or not any(principal.has_scope(s) for s in TEAM_WRITE_SCOPES):
            raise TeamNotPermitted("this client is bound to no team it may write for")
        return principal.team_ids
    if not principal.has_scope("program:write"):
        raise TeamNotPermitted("writing a team's content requires the scope 'program:write'")
    return None


def require_staff(principal: Principal) -> None:
    """TeamNotPermitted unless the caller is faculty or staff (program:write, not team-bound)."""
    if principal.is_team_bound or not principal.has_scope("program:write"):
        raise TeamNotPermitted("only faculty and staff clients may do this")


ContentError = NotFoundError | ValidationError | ConflictError | ForbiddenError


def content_error(exc: DomainError) -> ContentError:
    """The union member of a failed content write (TeamNotPermitted is FORBIDDEN)."""
    if isinstance(exc, TeamNotPermitted):
        return ForbiddenError(message=exc.message, code="FORBIDDEN")
    return error_from_domain(exc)


def check_team_read(info: Info, team_id: uuid.UUID) -> None:
    """Team-bound clients read only their own teams' content (top-level FORBIDDEN)."""
    principal = require_principal(info)
    if principal.is_team_bound and team_id not in principal.team_ids:
        raise forbidden("this client may read the content of its own teams only")


def may_read_team(info: Info, team_id: uuid.UUID) -> bool:
    """False for another team's content read by a team-bound client (``node`` answers null)."""
    principal = require_principal(info)
    return not principal.is_team_bound or team_id in principal.team_ids
