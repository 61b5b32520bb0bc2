"""Domain exceptions raised by ``db.queries``; the GraphQL layer maps each to a typed error.

- :class:`NotFound` — the object does not exist *for this sponsor* (another tenant's object is
  indistinguishable from a missing one).
- :class:`Conflict` — a unique key is taken (a code already used in this sponsor, a duplicate
  enrollment, a measure already in a set). Raised instead of letting ``IntegrityError`` escape.
- :class:`InvalidInput` — a value the database would accept but the domain does not (dates out of
  order, unknown enum-like text), with the input field it concerns.
"""

from __future__ import annotations


class DomainError(Exception):
    """Base of the expected failures of the persistence layer."""

    code = "VALIDATION"

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field


class NotFound(DomainError):
    """The object does not exist for the caller's sponsor."""

    code = "NOT_FOUND"


class Conflict(DomainError):
    """A unique key is already taken."""

    code = "CONFLICT"


class InvalidInput(DomainError):
    """A value the domain does not accept."""

    code = "VALIDATION"
