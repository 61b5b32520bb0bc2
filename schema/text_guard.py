"""Reject NUL bytes and over-long text in every text argument of a query before anything runs.

PostgreSQL refuses ``\\x00`` in text while SQLite stores it, so a NUL in a lookup or filter would
be a database error on one backend and an empty answer on the other. Checking every string
literal of the document and every string in the variables gives one answer everywhere: a
VALIDATION error. Mutations are left to their own input checks, which answer with typed errors
naming the field (or, for measure data, a per-row INVALID_TEXT conflict).

Text arguments of queries (codes, ids, cursors, filters, searches) are short: any string longer
than :data:`MAX_QUERY_TEXT` characters is refused the same way, so no filter can hand the
database a megabyte ``LIKE`` pattern (SQLite refuses patterns over 50,000 bytes).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from graphql import OperationDefinitionNode, StringValueNode, Visitor, visit
from strawberry.extensions import SchemaExtension
from strawberry.types.graphql import OperationType

from schema.errors import PublicError

NUL = "\x00"
MAX_QUERY_TEXT = 1_000
"""Longest text argument of a query, in characters."""


def _problem(text: str) -> str | None:
    if NUL in text:
        return "text inputs must not contain NUL bytes"
    if len(text) > MAX_QUERY_TEXT:
        return f"text inputs of queries are at most {MAX_QUERY_TEXT} characters"
    return None


def _text_problem(value: Any) -> str | None:
    """The first problem of any string in ``value`` (keys included), or None."""
    if isinstance(value, str):
        return _problem(value)
    if isinstance(value, dict):
        for key, item in value.items():
            problem = _text_problem(key) or _text_problem(item)
            if problem:
                return problem
    if isinstance(value, list | tuple):
        for item in value:
            problem = _text_problem(item)
            if problem:
                return problem
    return None


class _LiteralChecker(Visitor):
    def __init__(self) -> None:
        super().__init__()
        self.problem: str | None = None

    def enter_string_value(self, node: StringValueNode, *_: Any) -> None:
        self.problem = self.problem or _problem(node.value)


class RejectNulBytes(SchemaExtension):
    """Fails a query with VALIDATION when a text input holds a NUL byte or is over-long."""

    def on_execute(self) -> Iterator[None]:
        context = self.execution_context
        if context.operation_type is OperationType.MUTATION:
            yield
            return
        document = context.graphql_document
        declared = {
            definition.variable.name.value
            for operation in (document.definitions if document is not None else ())
            if isinstance(operation, OperationDefinitionNode)
            for definition in operation.variable_definitions or ()
        }
        # Only declared variables reach resolvers; the others are ignored by GraphQL.
        used = {k: v for k, v in (context.variables or {}).items() if k in declared}
        problem = _text_problem(used)
        if problem:
            raise PublicError(problem, "VALIDATION")
        if document is not None:
            checker = _LiteralChecker()
            visit(document, checker)
            if checker.problem:
                raise PublicError(checker.problem, "VALIDATION")
        yield
