"""The ``Error`` interface, the shared error types of mutation unions, and top-level errors.

Expected failures of a mutation are members of its result union (``NotFoundError``...). Failures
that are not the caller's data — a missing scope, a malformed argument — are top-level GraphQL
errors carrying ``extensions.code``; they are public and never masked.
"""

from __future__ import annotations

import strawberry
from graphql import GraphQLError

from db.errors import Conflict, DomainError, InvalidInput, NotFound


@strawberry.interface(description="An expected failure, with a stable machine-readable code.")
class Error:
    message: str = strawberry.field(description="What went wrong, for people.")
    code: str = strawberry.field(description="What went wrong, for programs (e.g. NOT_FOUND).")


@strawberry.type(description="The object named does not exist (or belongs to another sponsor).")
class NotFoundError(Error):
    field: str | None = strawberry.field(default=None, description="The input field that named it.")


@strawberry.type(description="The caller may not do this.")
class ForbiddenError(Error):
    pass


@strawberry.type(description="An input value is not acceptable.")
class ValidationError(Error):
    field: str | None = strawberry.field(
        default=None, description="The input field at fault (camelCase)."
    )


@strawberry.type(description="The change conflicts with existing data (e.g. a code is taken).")
class ConflictError(Error):
    field: str | None = strawberry.field(
        default=None, description="The input field at fault (camelCase)."
    )


DomainErrorResult = NotFoundError | ValidationError | ConflictError
"""The union members a domain exception maps to (include all three in every mutation union)."""


def camel_case(name: str) -> str:
    """``snake_case`` field names of the domain as GraphQL's ``camelCase``."""
    head, *rest = name.split("_")
    return head + "".join(part.title() for part in rest)


def error_from_domain(exc: DomainError) -> DomainErrorResult:
    """The union member for a domain exception of ``db.queries``."""
    field = camel_case(exc.field) if exc.field is not None else None
    if isinstance(exc, NotFound):
        return NotFoundError(message=exc.message, code="NOT_FOUND", field=field)
    if isinstance(exc, Conflict):
        return ConflictError(message=exc.message, code="CONFLICT", field=field)
    if isinstance(exc, InvalidInput):
        return ValidationError(message=exc.message, code="VALIDATION", field=field)
    return ValidationError(message=exc.message, code=exc.code, field=field)


class PublicError(GraphQLError):
    """A top-level error meant for the caller (never masked), with ``extensions.code``."""

    def __init__(self, message: str, code: str) -> None:
        super().__init__(message, extensions={"code": code})


def forbidden(message: str) -> PublicError:
    """Top-level FORBIDDEN error."""
    return PublicError(message, "FORBIDDEN")


def invalid_argument(message: str) -> PublicError:
    """Top-level VALIDATION error for a malformed argument (bad cursor, id, page size)."""
    return PublicError(message, "VALIDATION")
