"""Long lists in variables coerced in one loop (issue 3: both forms of ingest).

graphql-core coerces a variable's value item by item through its recursive
``coerce_input_value`` (a non-null check, a list check, an input-object check, the leaf's own
coercion — about 0.7 µs per item, more per input object) after walking the whole value once
more to check its nesting depth. A 1,000-row ``submitMeasureDataColumns`` call carries five
lists of 1,000 scalars (a sixth of the API's CPU per batch went there); a ``submitMeasureData``
call, 1,000 row objects (~7 ms).

:class:`FastVariablesExecutionContext` takes every list of at least :data:`BULK_ITEMS` scalars
or enum values — or of *plain* input objects, whose fields are all scalars or enum values (the
rows of ``submitMeasureData``) — out of the raw variables, coerces each item in one loop (a
leaf with its type's own ``coerce_input_value``, an object field by field, defaults filled in
as graphql-core fills them), lets graphql-core coerce the rest of the variables (with empty
lists in their place, which every list type accepts), and puts the coerced lists back.
The result is the one graphql-core computes. Whenever anything is unusual — an item the leaf
refuses, a null in a non-null list, an input object with an output type of its own, any
coercion error elsewhere in the variables — graphql-core coerces the original variables itself,
so errors keep its exact messages and paths.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

from graphql import (
    DocumentNode,
    GraphQLError,
    GraphQLInputObjectType,
    GraphQLInputType,
    GraphQLLeafType,
    GraphQLList,
    GraphQLNonNull,
    GraphQLSchema,
    OperationDefinitionNode,
    is_leaf_type,
    is_required_input_field,
    type_from_ast,
)
from graphql.execution.values import VariableValues
from graphql.pyutils import Undefined
from graphql.utilities.coerce_input_value import coerce_default_value
from strawberry.schema.schema import StrawberryGraphQLCoreExecutionContext

BULK_ITEMS = 64
"""Shortest list coerced here; shorter lists are cheap enough for graphql-core's path."""


class _BulkList(NamedTuple):
    """A long list of leaves or plain input objects inside a variable, and its coerced items."""

    variable: str
    raw_path: tuple[str, ...]
    """Input-object field names from the variable's value down to the list."""
    coerced_path: tuple[str, ...]
    """The same fields by the names graphql-core gives them in the coerced value."""
    coerced: list[Any]


def _coerced_leaves(items: list[Any], leaf: GraphQLLeafType, non_null: bool) -> list[Any] | None:
    """Each item through the leaf's own input coercion; None when any item is refused (or is a
    null where the list's items are non-null)."""
    coerce: Callable[[Any], Any] | None = leaf.coerce_input_value
    if coerce is None:
        return None
    coerced: list[Any] = []
    append = coerced.append
    for item in items:
        if item is None:
            if non_null:
                return None
            append(None)
            continue
        try:
            value = coerce(item)
        except Exception:  # refused: graphql-core reports it with its path
            return None
        if value is Undefined:
            return None
        append(value)
    return coerced


class _ScalarField(NamedTuple):
    """How to coerce one field of a plain input object."""

    name: str
    key: str
    """The field's key in the coerced dict (its ``out_name``, else its name)."""
    coerce: Callable[[Any], Any]
    non_null: bool
    required: bool
    default: Any
    """The coerced default (``Undefined``: none; the field is then left out)."""


def _plain_fields(type_: GraphQLInputObjectType) -> list[_ScalarField] | None:
    """The fields of an input object whose fields are all leaves, with the default output
    type; None for any other input object."""
    if type_.out_type is not GraphQLInputObjectType.out_type or type_.is_one_of:
        return None
    plan: list[_ScalarField] = []
    for name, field in type_.fields.items():
        field_type = field.type
        non_null = isinstance(field_type, GraphQLNonNull)
        leaf = field_type.of_type if isinstance(field_type, GraphQLNonNull) else field_type
        if not is_leaf_type(leaf) or leaf.coerce_input_value is None:
            return None
        plan.append(
            _ScalarField(
                name,
                field.out_name or name,
                leaf.coerce_input_value,
                non_null,
                is_required_input_field(field),
                coerce_default_value(field),
            )
        )
    return plan


def _coerced_objects(
    items: list[Any], plan: list[_ScalarField], non_null: bool
) -> list[Any] | None:
    """Each item coerced as graphql-core coerces an input object of leaves; None when any item
    is not one it would accept (an unknown or missing field, a refused value, a null where
    none may be)."""
    names = {field.name for field in plan}
    # plain tuples: unpacking an exact tuple takes the interpreter's fast path, a NamedTuple not
    fields = [tuple(field) for field in plan]
    coerced: list[Any] = []
    append = coerced.append
    for item in items:
        if item is None:
            if non_null:
                return None
            append(None)
            continue
        if not isinstance(item, dict) or not names.issuperset(item):
            return None
        values: dict[str, Any] = {}
        # (the per-value steps of _coerced_leaves, inlined: a call per value costs more)
        for name, key, coerce, field_non_null, required, default in fields:
            raw = item.get(name, Undefined)
            if raw is Undefined:
                if required:
                    return None
                if default is not Undefined:
                    values[key] = default
                continue
            if raw is None:
                if field_non_null:
                    return None
                values[key] = None
                continue
            try:
                value = coerce(raw)
            except Exception:  # refused: graphql-core reports it with its path
                return None
            if value is Undefined:
                return None
            values[key] = value
        append(values)  # the default output type (checked by _plain_fields) is the dict
    return coerced


def _bulk_lists_of(
    variable: str,
    value: Any,
    type_: GraphQLInputType,
    raw_path: tuple[str, ...],
    coerced_path: tuple[str, ...],
    found: list[_BulkList],
) -> bool:
    """Collect the long lists of ``value`` this module coerces; False when one of them holds an
    item it cannot coerce (graphql-core then coerces the whole variables itself)."""
    if isinstance(type_, GraphQLNonNull):
        type_ = type_.of_type
    if isinstance(type_, GraphQLList):
        item_type = type_.of_type
        non_null = isinstance(item_type, GraphQLNonNull)
        leaf = item_type.of_type if isinstance(item_type, GraphQLNonNull) else item_type
        if not isinstance(value, list) or len(value) < BULK_ITEMS:
            return True
        coerced: list[Any] | None
        if is_leaf_type(leaf):
            coerced = _coerced_leaves(value, leaf, non_null)
        elif isinstance(leaf, GraphQLInputObjectType):
            plan = _plain_fields(leaf)
            if plan is None:
                return True  # left to graphql-core
            coerced = _coerced_objects(value, plan, non_null)
        else:
            return True  # a list of lists: left to graphql-core
        if coerced is None:
            return False
        found.append(_BulkList(variable, raw_path, coerced_path, coerced))
        return True
    if isinstance(type_, GraphQLInputObjectType) and isinstance(value, dict):
        if type_.out_type is not GraphQLInputObjectType.out_type or type_.is_one_of:
            return True  # left to graphql-core whole: its coerced value may not be a dict
        for name, field in type_.fields.items():
            if name in value and not _bulk_lists_of(
                variable,
                value[name],
                field.type,
                (*raw_path, name),
                (*coerced_path, field.out_name or name),
                found,
            ):
                return False
    return True


def _operation(document: DocumentNode, name: str | None) -> OperationDefinitionNode | None:
    operations = [
        definition
        for definition in document.definitions
        if isinstance(definition, OperationDefinitionNode)
    ]
    if name is None:
        return operations[0] if len(operations) == 1 else None
    return next((op for op in operations if op.name is not None and op.name.value == name), None)


def bulk_lists(
    schema: GraphQLSchema,
    document: DocumentNode,
    operation_name: str | None,
    raw: dict[str, Any],
) -> list[_BulkList] | None:
    """The long lists (of leaves or plain input objects) of the operation's variables,
    coerced (None: there are none, or one that graphql-core must coerce itself)."""
    operation = _operation(document, operation_name)
    if operation is None or not operation.variable_definitions:
        return None
    found: list[_BulkList] = []
    for definition in operation.variable_definitions:
        name = definition.variable.name.value
        if name not in raw:
            continue
        type_ = type_from_ast(schema, definition.type)
        if type_ is None:
            return None
        if not _bulk_lists_of(name, raw[name], type_, (), (), found):  # type: ignore[arg-type]
            return None
    return found or None


def _without(value: Any, path: tuple[str, ...]) -> Any:
    """A copy of ``value`` with an empty list at ``path`` (the dicts on the way are copied)."""
    if not path:
        return []
    copied = dict(value)
    copied[path[0]] = _without(value[path[0]], path[1:])
    return copied


def _put(coerced: Any, path: tuple[str, ...], items: list[Any]) -> bool:
    """Put ``items`` at ``path`` of a coerced value; False when the path is not plain dicts."""
    for key in path[:-1]:
        if not isinstance(coerced, dict) or key not in coerced:
            return False
        coerced = coerced[key]
    if not isinstance(coerced, dict) or path[-1] not in coerced:
        return False
    coerced[path[-1]] = items
    return True


class FastVariablesExecutionContext(StrawberryGraphQLCoreExecutionContext):
    """strawberry's execution context with long leaf lists in variables coerced in one loop."""

    @classmethod
    def build(
        cls,
        schema: GraphQLSchema,
        document: DocumentNode,
        root_value: Any = None,
        context_value: Any = None,
        raw_variable_values: dict[str, Any] | None = None,
        operation_name: str | None = None,
        *args: Any,
        **kwargs: Any,
    ) -> list[GraphQLError] | Any:
        graphql_core = super().build

        def built(variables: dict[str, Any] | None) -> list[GraphQLError] | Any:
            return graphql_core(
                schema,
                document,
                root_value,
                context_value,
                variables,
                operation_name,
                *args,
                **kwargs,
            )

        bulk = (
            bulk_lists(schema, document, operation_name, raw_variable_values)
            if raw_variable_values
            else None
        )
        if bulk is None or raw_variable_values is None:
            return built(raw_variable_values)
        light = dict(raw_variable_values)
        for found in bulk:
            light[found.variable] = _without(light[found.variable], found.raw_path)
        executor = built(light)
        if not isinstance(executor, list) and _restore(
            executor.variable_values, bulk, raw_variable_values
        ):
            return executor
        # An error elsewhere, or a coerced value that is not plain dicts: graphql-core's own path.
        return built(raw_variable_values)


def _restore(variable_values: VariableValues, bulk: list[_BulkList], raw: dict[str, Any]) -> bool:
    """The coerced lists and the original raw values back into graphql-core's result."""
    for found in bulk:
        if not found.coerced_path:
            if found.variable not in variable_values.coerced:
                return False
            variable_values.coerced[found.variable] = found.coerced
        elif not _put(
            variable_values.coerced.get(found.variable), found.coerced_path, found.coerced
        ):
            return False
    for variable in {found.variable for found in bulk}:
        source = variable_values.sources.get(variable)
        if source is not None:
            variable_values.sources[variable] = source._replace(value=raw[variable])
    return True
