"""Reject NUL bytes in every text argument of a query before anything runs.

PostgreSQL refuses ``\\x00`` in text while SQLite stores it, so a NUL in a lookup or filter would
be a database error on one backend and an empty answer on the other. Checking every string
literal of the document and every string in the variables gives one answer everywhere: a
VALIDATION error. Mutations are left to their own input checks, which answer with typed errors
naming the field (or, for measure data, a per-row INVALID_TEXT conflict).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from graphql import StringValueNode, Visitor, visit
from strawberry.extensions import SchemaExtension
from strawberry.types.graphql import OperationType

from schema.errors import PublicError

NUL = "\x00"


def _contains_nul(value: Any) -> bool:
    if isinstance(value, str):
        return NUL in value
    if isinstance(value, dict):
        return any(_contains_nul(k) or _contains_nul(v) for k, v in value.items())
    if isinstance(value, list | tuple):
        return any(_contains_nul(item) for item in value)
    return False


class _NulLiteralFinder(Visitor):
    def __init__(self) -> None:
        super().__init__()
        self.found = False

    def enter_string_value(self, node: StringValueNode, *_: Any) -> None:
        if NUL in node.value:
            self.found = True


class RejectNulBytes(SchemaExtension):
    """Fails the operation with VALIDATION when any text input holds a NUL byte."""

    def on_execute(self) -> Iterator[None]:
        context = self.execution_context
        if context.operation_type is OperationType.MUTATION:
            yield
            return
        if _contains_nul(context.variables or {}):
            raise PublicError("text inputs must not contain NUL bytes", "VALIDATION")
        document = context.graphql_document
        if document is not None:
            finder = _NulLiteralFinder()
            visit(document, finder)
            if finder.found:
                raise PublicError("text inputs must not contain NUL bytes", "VALIDATION")
        yield
