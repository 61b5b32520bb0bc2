"""Every root field is guarded by a scope, so a new query or mutation cannot ship unguarded."""

from __future__ import annotations

from strawberry.types.base import get_object_definition

from schema.schema import Mutation, Query

CHECKED_INSIDE = {
    "viewer": "anyone authenticated may ask who they are",
    "sponsors": "answers the caller's own sponsor and those sharing with it (public profile)",
    "sponsor": "answers the caller's own sponsor and those sharing with it (public profile)",
    "node": "checks the scope of the type the id names",
    "nodes": "checks the scope of the type each id names",
}


def _unguarded(root: type) -> list[str]:
    definition = get_object_definition(root, strict=True)
    return [
        field.python_name
        for field in definition.fields
        if not field.permission_classes and field.python_name not in CHECKED_INSIDE
    ]


def test_every_query_requires_a_scope() -> None:
    assert _unguarded(Query) == []


def test_every_mutation_requires_a_scope() -> None:
    assert _unguarded(Mutation) == []
