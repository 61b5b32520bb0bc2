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

import weakref
from collections.abc import Iterator
from typing import Any

from graphql import DocumentNode, OperationDefinitionNode, StringValueNode, Visitor, visit
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


_MAX_REMEMBERED_DOCUMENTS = 1_024
_REMEMBERED: dict[int, tuple[weakref.ref[DocumentNode], frozenset[str], str | None]] = {}
"""Per parsed document (documents are cached per query text, api/graphql.py): its declared
variables and the problem of its literals, so a hot query is not walked on every request.
Keyed by identity and holding the document only weakly: an entry leaves with its document (a
document too big for the document cache is parsed anew per request and must not be pinned)."""


def _document_facts(document: DocumentNode) -> tuple[frozenset[str], str | None]:
    key = id(document)
    found = _REMEMBERED.get(key)
    if found is not None and found[0]() is document:
        return found[1], found[2]
    declared = frozenset(
        definition.variable.name.value
        for operation in document.definitions
        if isinstance(operation, OperationDefinitionNode)
        for definition in operation.variable_definitions or ()
    )
    checker = _LiteralChecker()
    visit(document, checker)
    if len(_REMEMBERED) >= _MAX_REMEMBERED_DOCUMENTS:
        _REMEMBERED.clear()

    def forget(_: object) -> None:
        entry = _REMEMBERED.get(key)
        if entry is not None and entry[0]() is None:
            del _REMEMBERED[key]

    _REMEMBERED[key] = (weakref.ref(document, forget), declared, checker.problem)
    return declared, checker.problem


class RejectNulBytes(SchemaExtension):
    """Fails a query with VALIDATION when a text input holds a NUL byte or is over-long."""

    def on_execute(self) -> Iterator[None]:
        context = self.execution_context
        if context.operation_type is OperationType.MUTATION:
            yield
            return
        document = context.graphql_document
        declared, literal_problem = (
            _document_facts(document) if document is not None else (frozenset(), None)
        )
        # Only declared variables reach resolvers; the others are ignored by GraphQL.
        used = {k: v for k, v in (context.variables or {}).items() if k in declared}
        problem = _text_problem(used)
        if problem:
            raise PublicError(problem, "VALIDATION")
        if literal_problem:
            raise PublicError(literal_problem, "VALIDATION")
        yield
