"""Long lists of scalars or of plain input objects in variables are coerced in one loop
(schema/fast_variables.py, issue 3) with exactly graphql-core's result: the same coerced values
and sources for good input, the same errors (messages and paths) for bad input, on the real
schema's ingest inputs (columns and rows) and on a small schema with a top-level list."""

from __future__ import annotations

import math
from typing import Any

import pytest
from graphql import (
    DocumentNode,
    GraphQLArgument,
    GraphQLField,
    GraphQLFloat,
    GraphQLInputField,
    GraphQLInputObjectType,
    GraphQLInt,
    GraphQLList,
    GraphQLNonNull,
    GraphQLObjectType,
    GraphQLSchema,
    GraphQLString,
    parse,
)
from graphql.execution import Executor
from strawberry.schema.schema import StrawberryGraphQLCoreExecutionContext

from schema.fast_variables import BULK_ITEMS, FastVariablesExecutionContext, bulk_lists
from schema.schema import schema as collabx_schema

ROWS = 100
assert ROWS >= BULK_ITEMS

INGEST = parse(
    """
    mutation Ingest($input: SubmitMeasureDataColumnsInput!) {
      submitMeasureDataColumns(input: $input) { __typename }
    }
    """
)


def _columns(rows: int = ROWS) -> dict[str, list[Any]]:
    return {
        "team": [f"team-{i % 3}" for i in range(rows)],
        "measure": ["m1"] * rows,
        "period": [f"2024-{1 + i % 12:02d}" for i in range(rows)],
        "numerator": [i if i % 7 else None for i in range(rows)],
        "denominator": [100] * rows,
        "value": [None if i % 2 else i / 3 for i in range(rows)],
        "stratum": [""] * rows,
        "annotation": [None if i % 5 else f"note {i}" for i in range(rows)],
    }


class _Recording(StrawberryGraphQLCoreExecutionContext):
    """Records the variables graphql-core is given (it sits below the fast context)."""

    given: list[dict[str, Any] | None] = []

    @classmethod
    def build(cls, *args: Any, **kwargs: Any) -> Any:
        _Recording.given.append(args[4] if len(args) > 4 else kwargs.get("raw_variable_values"))
        return super().build(*args, **kwargs)


class _Spied(FastVariablesExecutionContext, _Recording):
    """The fast context over the recording one."""


def _through_fast_path(schema: GraphQLSchema, document: DocumentNode, raw: dict[str, Any]) -> Any:
    """Build with the fast context; assert graphql-core was given the variables once, with every
    long list taken out (so the lists in the result are the fast path's)."""
    _Recording.given.clear()
    built = _build(_Spied, schema, document, raw)
    assert not isinstance(built, list)
    (given,) = _Recording.given
    assert given is not None and given is not raw
    assert not _long_lists(given), "graphql-core coerced a long list itself"
    return built


def _long_lists(value: Any) -> bool:
    if isinstance(value, list):
        return len(value) >= BULK_ITEMS
    if isinstance(value, dict):
        return any(_long_lists(item) for item in value.values())
    return False


def _build(
    context: type[Executor[Any]], schema: GraphQLSchema, document: DocumentNode, raw: dict[str, Any]
) -> Any:
    return context.build(schema, document, raw_variable_values=raw)


def _same_as_graphql_core(
    schema: GraphQLSchema, document: DocumentNode, raw: dict[str, Any]
) -> Any:
    """Build with both contexts; assert the same outcome; the fast one's result."""
    fast = _build(FastVariablesExecutionContext, schema, document, raw)
    plain = _build(Executor, schema, document, raw)
    if isinstance(plain, list):
        assert isinstance(fast, list)
        assert [e.formatted for e in fast] == [e.formatted for e in plain]
        return fast
    assert not isinstance(fast, list), [e.message for e in fast]
    assert fast.variable_values.coerced == plain.variable_values.coerced
    # (a signature object is built anew by each build: the sources compare by their values)
    assert {k: v.value for k, v in fast.variable_values.sources.items()} == {
        k: v.value for k, v in plain.variable_values.sources.items()
    }
    return fast


def _ingest_schema() -> GraphQLSchema:
    return collabx_schema._schema


def test_good_columns_coerce_as_graphql_core_does() -> None:
    columns = _columns()
    raw: dict[str, Any] = {"input": {"columns": columns, "atomic": False}}
    assert bulk_lists(_ingest_schema(), INGEST, None, raw)
    built = _same_as_graphql_core(_ingest_schema(), INGEST, raw)
    fast = _through_fast_path(_ingest_schema(), INGEST, raw)
    assert fast.variable_values.coerced == built.variable_values.coerced
    coerced = built.variable_values.coerced["input"]
    assert coerced["columns"]["team"][:3] == ["team-0", "team-1", "team-2"]
    assert coerced["atomic"] is False and coerced["dryRun"] is False  # defaults still applied
    assert columns["team"][0] == "team-0"  # the caller's variables untouched
    assert raw["input"]["columns"] is columns


@pytest.mark.parametrize(
    ("column", "position", "bad"),
    [
        ("team", 70, None),  # a null in a list of non-null items
        ("period", 80, 202401),  # not a string
        ("numerator", 90, True),  # Count refuses booleans
        ("denominator", 64, "5"),  # ... and strings
        ("value", 99, "1.5"),  # Float refuses strings
        ("stratum", 0, ["nested"]),  # a list where a scalar belongs
    ],
)
def test_a_bad_item_gets_graphql_cores_error(column: str, position: int, bad: Any) -> None:
    columns = _columns()
    columns[column][position] = bad
    raw = {"input": {"columns": columns}}
    assert bulk_lists(_ingest_schema(), INGEST, None, raw) is None  # graphql-core's own path
    errors = _same_as_graphql_core(_ingest_schema(), INGEST, raw)
    assert isinstance(errors, list) and errors


def test_an_error_outside_the_lists_gets_graphql_cores_error() -> None:
    raw = {"input": {"columns": _columns(), "atomic": "yes", "unknown": 1}}
    assert bulk_lists(_ingest_schema(), INGEST, None, raw)  # the lists themselves are fine
    errors = _same_as_graphql_core(_ingest_schema(), INGEST, raw)
    assert isinstance(errors, list) and "atomic" in errors[0].message


def test_short_lists_and_no_variables_stay_on_graphql_cores_path() -> None:
    raw = {"input": {"columns": _columns(BULK_ITEMS - 1)}}
    assert bulk_lists(_ingest_schema(), INGEST, None, raw) is None
    _same_as_graphql_core(_ingest_schema(), INGEST, raw)
    assert bulk_lists(_ingest_schema(), INGEST, None, {}) is None


def _small_schema() -> GraphQLSchema:
    point = GraphQLInputObjectType(
        "Point",
        {
            "x": GraphQLInputField(GraphQLList(GraphQLFloat), out_name="xs"),
            "tags": GraphQLInputField(GraphQLList(GraphQLNonNull(GraphQLString))),
        },
    )
    return GraphQLSchema(
        GraphQLObjectType(
            "Query",
            {
                "sum": GraphQLField(
                    GraphQLInt,
                    args={
                        "values": GraphQLArgument(GraphQLNonNull(GraphQLList(GraphQLInt))),
                        "point": GraphQLArgument(point),
                    },
                )
            },
        )
    )


SUM = parse("query Sum($values: [Int]!, $point: Point) { sum(values: $values, point: $point) }")


def test_top_level_lists_and_renamed_fields() -> None:
    raw = {
        "values": [None if i % 9 == 0 else i for i in range(200)],
        "point": {"x": [i / 2 for i in range(100)], "tags": ["a"] * 100},
    }
    assert len(bulk_lists(_small_schema(), SUM, None, raw) or []) == 3
    built = _same_as_graphql_core(_small_schema(), SUM, raw)
    assert built.variable_values.coerced["point"]["xs"][3] == 1.5  # by the field's out_name
    fast = _through_fast_path(_small_schema(), SUM, raw)
    assert fast.variable_values.coerced == built.variable_values.coerced


@pytest.mark.parametrize(
    "values",
    [
        [*range(100), 2**31],  # beyond Int's 32 bits
        [*range(100), math.inf],
        [*range(100), "7"],
    ],
)
def test_top_level_bad_items(values: list[Any]) -> None:
    errors = _same_as_graphql_core(_small_schema(), SUM, {"values": values})
    assert isinstance(errors, list) and errors


INGEST_ROWS = parse(
    """
    mutation IngestRows($input: SubmitMeasureDataInput!) {
      submitMeasureData(input: $input) { __typename }
    }
    """
)


def _rows(rows: int = ROWS) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    for i in range(rows):
        row: dict[str, Any] = {"team": f"team-{i % 3}", "measure": "m1", "period": "2024-01"}
        if i % 2:
            row |= {"numerator": i, "denominator": 100}  # stratum, annotation: defaults
        else:
            row |= {"value": i / 3, "stratum": "payer:x", "annotation": None}
        found.append(row)
    return found


def test_rows_as_input_objects_coerce_as_graphql_core_does() -> None:
    rows = _rows()
    raw: dict[str, Any] = {"input": {"rows": rows, "idempotencyKey": "k"}}
    built = _same_as_graphql_core(_ingest_schema(), INGEST_ROWS, raw)
    fast = _through_fast_path(_ingest_schema(), INGEST_ROWS, raw)
    assert fast.variable_values.coerced == built.variable_values.coerced
    coerced = built.variable_values.coerced["input"]["rows"]
    assert (coerced[1]["stratum"], coerced[1]["annotation"]) == ("", None)  # the defaults
    assert coerced[0]["annotation"] is None and coerced[0]["value"] == 0.0
    assert rows[1] == {"team": "team-1", "measure": "m1", "period": "2024-01"} | {
        "numerator": 1,
        "denominator": 100,
    }  # the caller's rows untouched


@pytest.mark.parametrize(
    ("position", "change"),
    [
        (70, {"unknown": 1}),  # a field the input type does not have
        (80, {"team": None}),  # null for a non-null field
        (90, {"numerator": "five"}),  # Count refuses text
        (99, {"value": True}),  # Float refuses booleans
    ],
)
def test_a_bad_row_gets_graphql_cores_error(position: int, change: dict[str, Any]) -> None:
    rows = _rows()
    rows[position] = rows[position] | change
    raw = {"input": {"rows": rows}}
    assert bulk_lists(_ingest_schema(), INGEST_ROWS, None, raw) is None
    errors = _same_as_graphql_core(_ingest_schema(), INGEST_ROWS, raw)
    assert isinstance(errors, list) and errors


@pytest.mark.parametrize("bad", [None, "a row", {"measure": "m1", "period": "2024-01"}])
def test_a_missing_or_malformed_row_gets_graphql_cores_error(bad: Any) -> None:
    rows: list[Any] = list(_rows())
    rows[75] = bad  # null in a list of non-null rows, not an object, a required field missing
    errors = _same_as_graphql_core(_ingest_schema(), INGEST_ROWS, {"input": {"rows": rows}})
    assert isinstance(errors, list) and errors
