"""Which fields a query selects below the field being resolved.

Resolvers use it to skip work nobody asked for: a count over a whole table, a batched load of
related rows. Fragments (named and inline) are looked through; ``@skip``/``@include`` are not
evaluated, so a skipped field still counts as selected (the work is merely done for nothing).
"""

from __future__ import annotations

from strawberry.types.nodes import FragmentSpread, InlineFragment, SelectedField, Selection

from schema.context import Info


def _selects(selections: list[Selection], name: str) -> bool:
    for selection in selections:
        if isinstance(selection, SelectedField) and selection.name == name:
            return True
        if isinstance(selection, FragmentSpread | InlineFragment) and _selects(
            selection.selections, name
        ):
            return True
    return False


def selects(info: Info, name: str) -> bool:
    """Whether the field being resolved selects the subfield ``name`` (its GraphQL name)."""
    return any(_selects(field.selections, name) for field in info.selected_fields)
