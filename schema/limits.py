"""Query limits, checked before anything executes: depth, aliases, tokens, directives and cost.

Every limit answers a GraphQL error with ``extensions.code = "QUERY_TOO_COMPLEX"``, a message
naming the limit and its value, and ``extensions.limit`` / ``extensions.max``. A value of 0
switches a limit off. The tokens limit is enforced by the parser (the document is never fully
parsed); the others are validation rules, so nothing runs when one of them fails.

Depth and aliases reuse strawberry's ``QueryDepthLimiter`` and ``MaxAliasesLimiter`` rules and
relabel their errors. Directives and cost are our own rules. Those rules walk the document with
every fragment spread expanded, which a few fragments spreading each other twice make
exponential: a first check (linear) refuses documents whose expansion exceeds 10,000 fields.

Cost formula (an upper bound of the objects a query may resolve):

* a scalar or enum field, and every introspection field (``__typename``, ``__schema``...),
  costs 0;
* a field returning an object, interface or union costs ``1 + m * cost(its selections)``;
* ``m`` is the page size of a connection: the field's ``first`` argument (a literal, the
  request's variable, or the variable's default), 20 (the default page size) when absent or
  null, clamped to 0..max page size (a larger ``first`` is refused by the page-size check).
  A field taking a list ``ids`` argument (``nodes(ids:)``) multiplies by the number of ids.
  Every other field, lists included, has ``m = 1``;
* the selections of fragments and inline fragments are added to where they are spread; every
  operation of the document is checked.

So ``collaboratives(first: 50) { nodes { teams(first: 50) { nodes { code } } } }`` costs
``1 + 50 * (1 + (1 + 50 * (1 + 0)))`` = 2,601, and three nested ``first: 100`` connections cost
over a million. The default limit, 50,000, admits the dashboard query of
``tests/schema/test_no_n_plus_one.py`` (about 25,000).
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from graphql import (
    ASTValidationRule,
    DirectiveNode,
    DocumentNode,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLError,
    GraphQLField,
    GraphQLInterfaceType,
    GraphQLNamedType,
    GraphQLObjectType,
    GraphQLSchema,
    InlineFragmentNode,
    IntValueNode,
    ListValueNode,
    NullValueNode,
    OperationDefinitionNode,
    SelectionSetNode,
    ValidationContext,
    ValidationRule,
    ValueNode,
    VariableNode,
    Visitor,
    get_named_type,
    get_nullable_type,
    is_list_type,
    visit,
)
from strawberry.extensions import MaxAliasesLimiter, QueryDepthLimiter, SchemaExtension

QUERY_TOO_COMPLEX = "QUERY_TOO_COMPLEX"
DEFAULT_PAGE_SIZE = 20  # schema.pagination.DEFAULT_PAGE_SIZE (not imported: no cycle)


@dataclass(frozen=True)
class QueryLimits:
    """The limits of one schema (from settings at the edge); 0 switches a limit off."""

    max_depth: int = 10
    max_aliases: int = 15
    max_tokens: int = 2_000
    max_directives: int = 50
    max_cost: int = 50_000
    max_expanded_fields: int = 10_000
    max_page_size: int = 100
    default_page_size: int = DEFAULT_PAGE_SIZE
    introspection: bool = True
    suggestions: bool = False


def too_complex(
    message: str, *, limit: str, maximum: int, nodes: Any = None, **extra: object
) -> GraphQLError:
    """The error of a query limit: code QUERY_TOO_COMPLEX, the limit's name and value."""
    return GraphQLError(
        f"Query too complex: {message}",
        nodes,
        extensions={"code": QUERY_TOO_COMPLEX, "limit": limit, "max": maximum, **extra},
    )


def _relabelled(rule: type[ASTValidationRule], make_error: Any) -> type[ValidationRule]:
    """Runs a strawberry limiter rule and turns its first error into ours.

    Strawberry's limiters do all their work in ``__init__`` and report errors without a code,
    so the context's error callback is swapped while they run.
    """

    class Relabelled(ValidationRule):
        def __init__(self, context: ValidationContext) -> None:
            super().__init__(context)
            reported: list[GraphQLError] = []
            original = context.on_error
            context.on_error = reported.append  # type: ignore[method-assign,assignment]
            try:
                rule(context)
            finally:
                context.on_error = original  # type: ignore[method-assign]
            if reported:
                context.report_error(make_error(reported[0]))

    return Relabelled


@functools.cache  # built once per limit: every operation adds these rules
def depth_rule(max_depth: int) -> type[ValidationRule]:
    """strawberry's QueryDepthLimiter, answering QUERY_TOO_COMPLEX."""
    inner = QueryDepthLimiter(max_depth=max_depth).validation_rules[0]

    def error(found: GraphQLError) -> GraphQLError:
        return too_complex(
            f"it is nested deeper than the depth limit of {max_depth}.",
            limit="depth",
            maximum=max_depth,
            nodes=found.nodes,
        )

    return _relabelled(inner, error)


_ALIASES_FOUND = re.compile(r"^(\d+) aliases found")


@functools.cache  # built once per limit: every operation adds these rules
def aliases_rule(max_aliases: int) -> type[ValidationRule]:
    """strawberry's MaxAliasesLimiter, answering QUERY_TOO_COMPLEX."""
    inner = MaxAliasesLimiter(max_alias_count=max_aliases).validation_rules[0]

    def error(found: GraphQLError) -> GraphQLError:
        match = _ALIASES_FOUND.match(found.message)
        count = f"{match.group(1)} aliases exceed" if match else "its aliases exceed"
        return too_complex(
            f"{count} the alias limit of {max_aliases}.", limit="aliases", maximum=max_aliases
        )

    return _relabelled(inner, error)


class _DirectiveCounter(Visitor):
    def __init__(self) -> None:
        super().__init__()
        self.count = 0

    def enter_directive(self, node: DirectiveNode, *_: object) -> None:
        self.count += 1


@functools.cache  # built once per limit: every operation adds these rules
def directives_rule(max_directives: int) -> type[ValidationRule]:
    """At most ``max_directives`` directive uses in the whole document."""

    class DirectiveLimit(ValidationRule):
        def __init__(self, context: ValidationContext) -> None:
            super().__init__(context)
            counter = _DirectiveCounter()
            visit(context.document, counter)
            if counter.count > max_directives:
                context.report_error(
                    too_complex(
                        f"{counter.count} directives exceed the directive limit of "
                        f"{max_directives}.",
                        limit="directives",
                        maximum=max_directives,
                    )
                )

    return DirectiveLimit


class _Cost:
    """The cost of one operation (see the module docstring for the formula)."""

    def __init__(
        self,
        schema: GraphQLSchema,
        fragments: Mapping[str, FragmentDefinitionNode],
        operation: OperationDefinitionNode,
        variables: Mapping[str, object],
        limits: QueryLimits,
    ) -> None:
        self.schema = schema
        self.fragments = fragments
        self.limits = limits
        self.variables: dict[str, object] = {}
        for definition in operation.variable_definitions or ():
            name = definition.variable.name.value
            if name in variables:
                self.variables[name] = variables[name]
            elif definition.default_value is not None:
                self.variables[name] = _literal(definition.default_value, {})

    def selections(
        self,
        selection_set: SelectionSetNode,
        parent: GraphQLNamedType | None,
        seen: frozenset[str] = frozenset(),
    ) -> int:
        total = 0
        for selection in selection_set.selections:
            if isinstance(selection, FieldNode):
                total += self.field(selection, parent, seen)
            elif isinstance(selection, InlineFragmentNode):
                condition = selection.type_condition
                target = self.schema.get_type(condition.name.value) if condition else parent
                total += self.selections(selection.selection_set, target, seen)
            elif isinstance(selection, FragmentSpreadNode):
                name = selection.name.value
                fragment = self.fragments.get(name)
                if fragment is None or name in seen:
                    continue  # unknown or cyclic: other validation rules report it
                target = self.schema.get_type(fragment.type_condition.name.value)
                total += self.selections(fragment.selection_set, target, seen | {name})
        return total

    def field(self, node: FieldNode, parent: GraphQLNamedType | None, seen: frozenset[str]) -> int:
        if node.selection_set is None or node.name.value.startswith("__"):
            return 0
        if not isinstance(parent, GraphQLObjectType | GraphQLInterfaceType):
            return 0
        definition = parent.fields.get(node.name.value)
        if definition is None:
            return 0
        inner = self.selections(node.selection_set, get_named_type(definition.type), seen)
        return 1 + self.multiplier(definition, node) * inner

    def multiplier(self, definition: GraphQLField, node: FieldNode) -> int:
        arguments = {argument.name.value: argument.value for argument in node.arguments or ()}
        ceiling = self.limits.max_page_size
        if "first" in definition.args:
            first = _literal(arguments["first"], self.variables) if "first" in arguments else None
            if first is None:
                return min(self.limits.default_page_size, ceiling)
            if isinstance(first, int) and not isinstance(first, bool):
                return max(0, min(first, ceiling))
            return ceiling  # not an integer: refused later; count the worst case
        ids = definition.args.get("ids")
        if ids is not None and is_list_type(get_nullable_type(ids.type)):
            given = _literal(arguments["ids"], self.variables) if "ids" in arguments else None
            return max(1, min(len(given), ceiling)) if isinstance(given, list) else ceiling
        return 1


def _literal(value: ValueNode, variables: Mapping[str, object]) -> object:
    """The Python value of an int, list, null or variable literal (else None)."""
    if isinstance(value, VariableNode):
        return variables.get(value.name.value)
    if isinstance(value, IntValueNode):
        return int(value.value)
    if isinstance(value, ListValueNode):
        return [_literal(item, variables) for item in value.values]
    if isinstance(value, NullValueNode):
        return None
    return None


def operation_costs(
    schema: GraphQLSchema,
    document: DocumentNode,
    variables: Mapping[str, object] | None = None,
    limits: QueryLimits | None = None,
) -> Iterator[tuple[OperationDefinitionNode, int]]:
    """Each operation of ``document`` with its cost (also for rate limiting by cost)."""
    limits = limits or QueryLimits()
    fragments = {
        definition.name.value: definition
        for definition in document.definitions
        if isinstance(definition, FragmentDefinitionNode)
    }
    for definition in document.definitions:
        if isinstance(definition, OperationDefinitionNode):
            calculator = _Cost(schema, fragments, definition, variables or {}, limits)
            root = schema.get_root_type(definition.operation)
            yield definition, calculator.selections(definition.selection_set, root)


def cost_rule(limits: QueryLimits, variables: Mapping[str, object] | None) -> type[ValidationRule]:
    """Refuses an operation whose cost exceeds ``limits.max_cost``."""

    class CostLimit(ValidationRule):
        def __init__(self, context: ValidationContext) -> None:
            super().__init__(context)
            costs = operation_costs(context.schema, context.document, variables, limits)
            for operation, cost in costs:
                if cost > limits.max_cost:
                    context.report_error(
                        too_complex(
                            f"its cost {cost} exceeds the cost limit of {limits.max_cost} "
                            "(cost = requested page sizes * nesting).",
                            limit="cost",
                            maximum=limits.max_cost,
                            nodes=[operation],
                            cost=cost,
                        )
                    )

    return CostLimit


def expanded_fields(document: DocumentNode) -> int:
    """How many fields the operations of ``document`` hold with every fragment spread expanded.

    Computed once per fragment (linear time), although the number itself can be exponential:
    ``fragment A on Query { ...B ...B }`` doubles B. The depth, alias and cost rules walk the
    expanded tree, so this bound keeps them from being turned into a CPU bomb.
    """
    fragments = {
        definition.name.value: definition
        for definition in document.definitions
        if isinstance(definition, FragmentDefinitionNode)
    }
    sizes: dict[str, int] = {}

    def size(selection_set: SelectionSetNode | None) -> int:
        total = 0
        for selection in selection_set.selections if selection_set else ():
            if isinstance(selection, FieldNode):
                total += 1 + size(selection.selection_set)
            elif isinstance(selection, InlineFragmentNode):
                total += size(selection.selection_set)
            elif isinstance(selection, FragmentSpreadNode):
                name = selection.name.value
                if name not in sizes and name in fragments:
                    sizes[name] = 0  # a cycle counts nothing (NoFragmentCyclesRule reports it)
                    sizes[name] = size(fragments[name].selection_set)
                total += sizes.get(name, 0)
        return total

    return sum(
        size(definition.selection_set)
        for definition in document.definitions
        if isinstance(definition, OperationDefinitionNode)
    )


def limits_rule(
    limits: QueryLimits, variables: Mapping[str, object] | None
) -> type[ValidationRule]:
    """One rule applying every enabled limit, after bounding the work they may do."""
    rules: list[type[ValidationRule]] = []
    if limits.max_depth:
        rules.append(depth_rule(limits.max_depth))
    if limits.max_aliases:
        rules.append(aliases_rule(limits.max_aliases))
    if limits.max_directives:
        rules.append(directives_rule(limits.max_directives))
    if limits.max_cost:
        rules.append(cost_rule(limits, variables))

    class QueryLimitsRule(ValidationRule):
        def __init__(self, context: ValidationContext) -> None:
            super().__init__(context)
            maximum = limits.max_expanded_fields
            if maximum:
                fields = expanded_fields(context.document)
                if fields > maximum:
                    context.report_error(
                        too_complex(
                            f"with its fragments expanded it has {fields} fields, more than the "
                            f"expanded-fields limit of {maximum}.",
                            limit="expandedFields",
                            maximum=maximum,
                        )
                    )
                    return
            for rule in rules:  # each does its work when built, reporting to the context
                rule(context)

    return QueryLimitsRule


_SUGGESTION = re.compile(r" Did you mean [^?]*\?")
_TOO_MANY_TOKENS = re.compile(r"Document contains more than \d+ tokens")


def without_suggestions(message: str) -> str:
    """``message`` without graphql-core's "Did you mean …?" hints (they leak the schema)."""
    return _SUGGESTION.sub("", message)


class QueryLimitsExtension(SchemaExtension):
    """Applies :class:`QueryLimits` to every operation (pass a factory, not an instance)."""

    def __init__(self, limits: QueryLimits) -> None:
        self.limits = limits

    def on_operation(self) -> Iterator[None]:
        context = self.execution_context
        limits = self.limits
        if limits.max_tokens:
            context.parse_options["max_tokens"] = limits.max_tokens
        rule = limits_rule(limits, context.variables)
        context.validation_rules = (*context.validation_rules, rule)
        yield
        result = context.result
        if not limits.suggestions and result is not None:
            for error in result.errors or ():
                error.message = without_suggestions(error.message)

    def on_parse(self) -> Iterator[None]:
        yield
        # The parser's own error is a syntax error without a code: make it a limit error.
        for error in self.execution_context.pre_execution_errors or ():
            if _TOO_MANY_TOKENS.match(error.message.removeprefix("Syntax Error: ")):
                error.message = (
                    f"Query too complex: it has more tokens than the token limit of "
                    f"{self.limits.max_tokens}."
                )
                error.extensions = {
                    "code": QUERY_TOO_COMPLEX,
                    "limit": "tokens",
                    "max": self.limits.max_tokens,
                }
