"""Lists of scalars completed in one loop (issue 7: the compact series form of dashboards).

graphql-core completes every list item on its own: a path entry, ``complete_value``, the leaf
check, a try block — about 1 µs per item, which for a dashboard's parallel column lists
(12,600 points x 4 columns) is most of the response. :class:`FastListsExecutionContext`
completes a list whose items are a scalar or an enum (nullable or not) in one loop over the
type's output coercion, and hands anything unusual — an awaitable item, a null in a non-null
list, a value the scalar refuses, ``@stream`` — to graphql-core's own path, which then reports
the error with its exact path. The output is the same; only the work per item is less.

Text items are coerced once per distinct value and list type in an operation (a dashboard's
12,600 periods are 18 distinct months, and ``Period`` checks each against a pattern): output
coercion of a scalar is a function of the value alone.

Lists of *objects* whose selected fields are all plain — strawberry's basic fields (an
attribute read: no resolver, no permission class, no field extension, no arguments) of a leaf
type, a list of a leaf type, or an object type whose own selection is plain in turn, or
``__typename`` — are
completed the same way, one loop building each item's dict (the typed series points of a
dashboard, an aggregate's monthly points, a page of the delta export with each point's team and
measure, a dashboard's series with their measures and column lists): graphql-core would run
its whole field machinery for every field of every item. Anything else in the selection (a
resolver, a permission, an abstract type, a list of objects inside an item, ``@defer``,
``@stream``) leaves the list to graphql-core.
"""

from __future__ import annotations

import functools
import operator
from collections.abc import Callable, Iterable
from typing import Any, NamedTuple

from graphql import (
    GraphQLLeafType,
    GraphQLList,
    GraphQLNonNull,
    GraphQLObjectType,
    GraphQLOutputType,
    GraphQLResolveInfo,
    is_leaf_type,
)
from graphql.execution.collect_fields import FieldDetailsList
from graphql.pyutils import AwaitableOrValue, Path, Undefined

from schema.fast_variables import FastVariablesExecutionContext

_PLAIN = frozenset({str, int, float, bool})
"""Item types that are never awaitable (checked before asking ``is_awaitable``)."""
MAX_REMEMBERED_TEXTS = 4_096
"""Distinct text items remembered per list type and operation."""


STRAWBERRY_FIELD = "strawberry-definition"
"""The key under which strawberry keeps its field definition in a GraphQLField's extensions."""
BASIC_RESOLVER = "_get_basic_result"
"""The name of the resolver strawberry gives a basic field (an attribute read, nothing else)."""


class _PlainField(NamedTuple):
    """How to complete one response key of an object by reading an attribute."""

    key: str
    resolve: Any
    """Reads the field of an item (the attribute itself for strawberry's default resolver,
    else the basic field's resolver); None for ``__typename``."""
    coerce: Any
    """Output coercion of a leaf."""
    non_null: bool
    nested: tuple[GraphQLObjectType, list[_PlainField]] | None = None
    """An object field: its type and the plain fields selected on it."""
    items: tuple[GraphQLLeafType, bool] | None = None
    """A list of leaves: the item type and whether items are non-null."""


class _Unusual(Exception):
    """An item the fast loop leaves to graphql-core."""


def _through_resolver(resolve: Any, item: Any) -> Any:
    return resolve(item, None)  # a basic field's resolver ignores its info


def _plain_field(
    return_type: GraphQLObjectType,
    response_key: str,
    details: Any,
    nested_plan: Callable[[GraphQLObjectType, Any], list[_PlainField] | None],
) -> _PlainField | None:
    """How to complete one response key of an object by reading an attribute (None: not plain);
    ``nested_plan`` gives the plan of an object-typed field's own selection."""
    if any(detail.defer_usage is not None for detail in details):
        return None
    name = details[0].node.name.value
    if name == "__typename":
        return _PlainField(response_key, None, None, True)
    field = return_type.fields.get(name)
    if field is None or field.args:
        return None
    resolve = field.resolve
    definition = (field.extensions or {}).get(STRAWBERRY_FIELD)
    if (
        definition is None
        or not definition.is_basic_field
        or getattr(resolve, "__name__", "") != BASIC_RESOLVER
    ):
        return None
    if definition.default_resolver is getattr:
        resolve = operator.attrgetter(definition.python_name)  # what strawberry would call
    else:
        resolve = functools.partial(_through_resolver, field.resolve)
    non_null = isinstance(field.type, GraphQLNonNull)
    inner = field.type.of_type if isinstance(field.type, GraphQLNonNull) else field.type
    if is_leaf_type(inner):
        return _PlainField(response_key, resolve, inner.coerce_output_value, non_null)
    if isinstance(inner, GraphQLObjectType):
        plan = nested_plan(inner, details)
        if plan is not None:
            return _PlainField(response_key, resolve, None, non_null, nested=(inner, plan))
    if isinstance(inner, GraphQLList):
        item = inner.of_type
        item_non_null = isinstance(item, GraphQLNonNull)
        leaf = item.of_type if isinstance(item, GraphQLNonNull) else item
        if is_leaf_type(leaf):
            return _PlainField(response_key, resolve, None, non_null, items=(leaf, item_non_null))
    return None


class FastListsExecutionContext(FastVariablesExecutionContext):
    """strawberry's execution context with a one-loop completion of lists of leaves (and long
    lists of leaves in variables coerced in one loop, :mod:`schema.fast_variables`)."""

    _texts: dict[object, dict[str, Any]] | None = None
    _streams: bool | None = None
    _plans: dict[tuple[GraphQLObjectType, int], tuple[Any, list[_PlainField] | None]] | None = None

    def _may_stream(self) -> bool:
        """Whether the schema has ``@stream`` at all (a document cannot use it otherwise)."""
        if self._streams is None:
            self._streams = self.schema.get_directive("stream") is not None
        return self._streams

    def complete_iterable_value(
        self,
        item_type: GraphQLOutputType,
        field_details_list: FieldDetailsList,
        info: GraphQLResolveInfo[Any],
        path: Path,
        items: Iterable[Any],
        position_context: Any,
    ) -> AwaitableOrValue[list[Any]]:
        non_null = isinstance(item_type, GraphQLNonNull)
        leaf = item_type.of_type if isinstance(item_type, GraphQLNonNull) else item_type
        if (
            is_leaf_type(leaf)
            and isinstance(items, list | tuple)
            and (not self._may_stream() or self.get_stream_usage(field_details_list, path) is None)
        ):
            try:  # anything unusual: graphql-core's path below reports it with its exact path
                return self._leaves(leaf, non_null, items)
            except Exception:  # noqa: S110
                pass
        if (
            isinstance(leaf, GraphQLObjectType)
            and isinstance(items, list | tuple)
            and not self._has_middleware()
            and (not self._may_stream() or self.get_stream_usage(field_details_list, path) is None)
        ):
            plan = self._plain_plan(leaf, field_details_list)
            if plan is not None:
                try:
                    return self._complete_plain_objects(leaf, plan, info, items, non_null)
                except Exception:  # noqa: S110 - graphql-core's path below reports it
                    pass
        return super().complete_iterable_value(
            item_type, field_details_list, info, path, items, position_context
        )

    def _texts_of(self, coerce: Any) -> dict[str, Any]:
        """The text values coerced so far by one output coercion in this operation."""
        if self._texts is None:
            self._texts = {}
        return self._texts.setdefault(coerce, {})

    def _leaves(self, leaf: Any, non_null: bool, items: list[Any] | tuple[Any, ...]) -> list[Any]:
        """A list of leaves, each through the type's output coercion (text items once per
        distinct value); raises on anything unusual."""
        coerce = leaf.coerce_output_value
        is_awaitable = self.is_awaitable
        texts = self._texts_of(coerce)
        completed: list[Any] = []
        append = completed.append
        for item in items:
            if item is None:
                if non_null:
                    raise _Unusual
                append(None)
                continue
            kind = type(item)
            if kind is str:
                value = texts.get(item)
                if value is not None:
                    append(value)
                    continue
            elif kind not in _PLAIN and is_awaitable(item):
                raise _Unusual
            value = coerce(item)
            if value is None or value is Undefined:
                raise _Unusual
            if kind is str and len(texts) < MAX_REMEMBERED_TEXTS:
                texts[item] = value
            append(value)
        return completed

    def _has_middleware(self) -> bool:
        """Whether field middleware wraps resolvers (strawberry's extensions with ``resolve``)."""
        manager = self.middleware_manager
        return manager is not None and bool(manager.middlewares)

    def _plain_plan(
        self, return_type: GraphQLObjectType, field_details_list: FieldDetailsList
    ) -> list[_PlainField] | None:
        """The plain fields selected on ``return_type`` (None when any is not), once per
        selection (keyed as graphql-core keys its own memo: type and selection identity)."""
        if self._plans is None:
            self._plans = {}
        key = (return_type, id(field_details_list))
        cached = self._plans.get(key)
        if cached is not None:
            return cached[1]
        grouped, new_defer_usages, _ = self.collect_subfields(return_type, field_details_list)
        plan: list[_PlainField] | None = None
        if not new_defer_usages:
            fields = [
                _plain_field(return_type, name, details, self._plain_plan)
                for name, details in grouped.items()
            ]
            plan = [field for field in fields if field is not None]
            if len(plan) != len(fields) or (
                self._may_stream() and any(field.items is not None for field in plan)
            ):
                plan = None  # (a list inside an item could carry @stream)
        # Keep the selection alive with the plan, so that its id cannot be reused meanwhile.
        self._plans[key] = (field_details_list, plan)
        return plan

    def _complete_plain_objects(
        self,
        return_type: GraphQLObjectType,
        plan: list[_PlainField],
        info: GraphQLResolveInfo[Any],
        items: Iterable[Any],
        non_null: bool,
    ) -> list[Any]:
        """Each item as the dict of its plain fields; raises on anything unusual."""
        completed: list[Any] = []
        for item in items:
            if item is None:
                if non_null:
                    raise _Unusual
                completed.append(None)
                continue
            completed.append(self._plain_object(return_type, plan, info, item))
        return completed

    def _plain_object(
        self,
        return_type: GraphQLObjectType,
        plan: list[_PlainField],
        info: GraphQLResolveInfo[Any],
        item: Any,
    ) -> dict[str, Any]:
        """One object (not null) as the dict of its plain fields; raises on anything unusual."""
        is_type_of = return_type.is_type_of
        if is_type_of is not None and is_type_of(item, info) is not True:
            raise _Unusual
        is_awaitable = self.is_awaitable
        fields: dict[str, Any] = {}
        for key, resolve, coerce, field_non_null, nested, items in plan:
            if resolve is None:
                fields[key] = return_type.name
                continue
            value = resolve(item)
            if value is None:
                if field_non_null:
                    raise _Unusual
                fields[key] = None
                continue
            if type(value) not in _PLAIN and is_awaitable(value):
                raise _Unusual
            if nested is not None:
                fields[key] = self._plain_object(nested[0], nested[1], info, value)
                continue
            if items is not None:
                if not isinstance(value, list | tuple):
                    raise _Unusual
                fields[key] = self._leaves(items[0], items[1], value)
                continue
            if type(value) is str:  # coerced once per distinct text, as in lists of leaves
                texts = self._texts_of(coerce)
                coerced = texts.get(value)
                if coerced is None:
                    coerced = coerce(value)
                    if coerced is None or coerced is Undefined:
                        raise _Unusual
                    if len(texts) < MAX_REMEMBERED_TEXTS:
                        texts[value] = coerced
                fields[key] = coerced
                continue
            coerced = coerce(value)
            if coerced is None or coerced is Undefined:
                raise _Unusual
            fields[key] = coerced
        return fields
