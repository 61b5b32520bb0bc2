"""Lists of scalars, and lists of objects of plain fields, completed in one loop answer exactly
what graphql-core answers: the same data and the same errors at the same paths
(schema/fast_lists.py, issue 7); a permission or a resolver in the selection is never skipped."""

from __future__ import annotations

import asyncio
import enum
from typing import Any

import pytest
import strawberry
from strawberry.permission import BasePermission
from strawberry.schema.config import StrawberryConfig

from schema.fast_lists import FastListsExecutionContext
from schema.scalars import SCALAR_MAP, Count, Period


@strawberry.enum
class Colour(enum.Enum):
    RED = "red"
    BLUE = "blue"


async def _later(value: int) -> int:
    await asyncio.sleep(0)
    return value


class Never(BasePermission):
    message = "not for you"

    def has_permission(self, source: Any, info: Any, **kwargs: Any) -> bool:
        return False


@strawberry.type
class Point:
    period: Period
    numerator: int | None
    colour: Colour
    label: str
    secret: str = strawberry.field(default="hidden", permission_classes=[Never])

    @strawberry.field
    def doubled(self) -> int | None:
        return None if self.numerator is None else self.numerator * 2


POINTS = [
    Point(period=Period("2024-01"), numerator=3, colour=Colour.RED, label="a"),
    Point(period=Period("2024-02"), numerator=None, colour=Colour.BLUE, label="b"),
]


@strawberry.type
class Reading:
    """An item with nested objects as plain fields (a page of the export: point, team, measure)."""

    label: str
    point: Point
    spare: Point | None
    periods: list[Period]
    counts: list[int | None] | None


READINGS = [
    Reading(
        label="r1",
        point=POINTS[0],
        spare=POINTS[1],
        periods=[Period("2024-01"), Period("2024-02")],
        counts=[1, None],
    ),
    Reading(label="r2", point=POINTS[1], spare=None, periods=[], counts=None),
]


@strawberry.type
class Query:
    @strawberry.field
    def points(self) -> list[Point]:
        return POINTS

    @strawberry.field
    def maybe_points(self) -> list[Point | None]:
        return [POINTS[0], None]

    @strawberry.field
    def bad_points(self) -> list[Point] | None:
        bad = Point(period=Period("2024-13"), numerator=1, colour=Colour.RED, label="c")
        return [POINTS[0], bad]

    @strawberry.field
    def null_points(self) -> list[Point] | None:
        return [POINTS[0], None]  # type: ignore[list-item]

    @strawberry.field
    def readings(self) -> list[Reading]:
        return READINGS

    @strawberry.field
    def bad_readings(self) -> list[Reading] | None:
        bad = Point(period=Period("2024-13"), numerator=1, colour=Colour.RED, label="c")
        return [
            READINGS[0],
            Reading(
                label="r3",
                point=bad,
                spare=bad,
                periods=[Period("2024-01"), Period("2024-13")],
                counts=[None, 2],
            ),
        ]

    @strawberry.field
    def broken_readings(self) -> list[Reading] | None:
        return [
            Reading(
                label="r4",
                point=None,  # type: ignore[arg-type]
                spare=None,
                periods=[None],  # type: ignore[list-item]
                counts=[],
            )
        ]

    @strawberry.field
    def ints(self) -> list[int]:
        return [1, 2, 3]

    @strawberry.field
    def maybe_ints(self) -> list[int | None]:
        return [1, None, 3]

    @strawberry.field
    def tuple_floats(self) -> list[float | None]:
        return (1.5, None, 2)  # type: ignore[return-value]  # a tuple is a list too

    @strawberry.field
    def periods(self) -> list[Period]:
        return [Period("2024-01"), Period("2024-02")]

    @strawberry.field
    def bad_periods(self) -> list[Period | None]:
        return [Period("2024-01"), Period("2024-13"), Period("2024-03")]

    @strawberry.field
    def repeated_periods(self) -> list[Period | None]:
        return [Period(p) for p in ("2024-01", "2024-01", "2024-13", "2024-01", "2024-13")]

    @strawberry.field
    def bad_counts(self) -> list[Count] | None:
        return [Count(1), Count(2), True]  # type: ignore[list-item]  # a bool is no Count

    @strawberry.field
    def null_in_non_null(self) -> list[int] | None:
        return [1, None]  # type: ignore[list-item]

    @strawberry.field
    def colours(self) -> list[Colour]:
        return [Colour.RED, Colour.BLUE]

    @strawberry.field
    def awaitables(self) -> list[int]:
        return [_later(1), _later(2)]  # type: ignore[list-item]

    @strawberry.field
    def nested(self) -> list[list[int | None]]:
        return [[1, None], [], [3]]

    @strawberry.field
    def strings(self) -> list[str]:
        return ["a", "é", ""]


QUERY = """
{ ints maybeInts tupleFloats periods badPeriods repeatedPeriods badCounts nullInNonNull colours
  awaitables nested strings other: periods }
"""


def _schema(fast: bool) -> strawberry.Schema:
    return strawberry.Schema(
        query=Query,
        config=StrawberryConfig(scalar_map=SCALAR_MAP),
        execution_context_class=FastListsExecutionContext if fast else None,
    )


def _plain(result: Any) -> tuple[Any, list[tuple[str, Any]]]:
    errors = sorted((e.message, e.path) for e in result.errors or [])
    return result.data, errors


@pytest.mark.parametrize(
    "field", [None, "ints", "badPeriods", "repeatedPeriods", "badCounts", "nullInNonNull"]
)
async def test_same_data_and_errors_as_graphql_core(field: str | None) -> None:
    query = QUERY if field is None else f"{{ {field} }}"
    fast = await _schema(True).execute(query)
    plain = await _schema(False).execute(query)
    assert _plain(fast) == _plain(plain)


OBJECT_QUERIES = [
    "{ points { period numerator colour label __typename } }",
    "{ points { p: period n: numerator numerator } maybePoints { label } }",
    "{ points { period doubled } }",
    "{ points { label secret } }",
    "{ badPoints { period label } nullPoints { label } }",
    "query ($x: Boolean!) { points { period numerator @include(if: $x) label @skip(if: $x) } }",
    "{ points { ... on Point { colour } label } }",
    "{ readings { label point { period colour } spare { label numerator __typename } } }",
    "{ readings { point { period doubled } } }",
    "{ readings { point { label secret } } }",
    "{ badReadings { label point { period } spare { label } } }",
    "{ badReadings { spare { period } } brokenReadings { label point { label } } }",
    "{ readings { point { label } ... on Reading { point { period } } } }",
    "{ readings { label periods counts point { period } } }",
    "{ badReadings { periods counts } }",
    "{ brokenReadings { counts periods } }",
]


class CountingContext(FastListsExecutionContext):
    """Counts the lists the object loop completed."""

    completed = 0

    def _complete_plain_objects(self, *args: Any, **kwargs: Any) -> list[Any]:
        found = super()._complete_plain_objects(*args, **kwargs)
        CountingContext.completed += 1
        return found


@pytest.mark.parametrize("query", OBJECT_QUERIES)
async def test_lists_of_objects_answer_as_graphql_core(query: str) -> None:
    variables = {"x": True} if "$x" in query else None
    fast = await _schema(True).execute(query, variable_values=variables)
    plain = await _schema(False).execute(query, variable_values=variables)
    assert _plain(fast) == _plain(plain)


async def test_the_object_loop_takes_plain_fields_and_leaves_the_rest() -> None:
    schema = strawberry.Schema(
        query=Query,
        config=StrawberryConfig(scalar_map=SCALAR_MAP),
        execution_context_class=CountingContext,
    )
    CountingContext.completed = 0
    result = await schema.execute("{ points { period numerator colour label __typename } }")
    assert CountingContext.completed == 1
    assert result.data == {
        "points": [
            {
                "period": "2024-01",
                "numerator": 3,
                "colour": "RED",
                "label": "a",
                "__typename": "Point",
            },
            {
                "period": "2024-02",
                "numerator": None,
                "colour": "BLUE",
                "label": "b",
                "__typename": "Point",
            },
        ]
    }
    CountingContext.completed = 0
    denied = await schema.execute("{ points { label secret } }")
    assert CountingContext.completed == 0  # a permission: graphql-core's path, which checks it
    assert denied.data is None and [e.message for e in denied.errors or []] == ["not for you"]
    resolved = await schema.execute("{ points { doubled } }")
    assert CountingContext.completed == 0  # a resolver
    assert resolved.data == {"points": [{"doubled": 6}, {"doubled": None}]}
    bad = await schema.execute("{ badPoints { period } }")
    assert bad.data == {"badPoints": None}
    assert [e.path for e in bad.errors or []] == [["badPoints", 1, "period"]]


async def test_the_object_loop_takes_nested_objects_of_plain_fields() -> None:
    schema = strawberry.Schema(
        query=Query,
        config=StrawberryConfig(scalar_map=SCALAR_MAP),
        execution_context_class=CountingContext,
    )
    CountingContext.completed = 0
    result = await schema.execute(
        "{ readings { label point { period } spare { label } periods counts } }"
    )
    assert CountingContext.completed == 1
    assert result.data == {
        "readings": [
            {
                "label": "r1",
                "point": {"period": "2024-01"},
                "spare": {"label": "b"},
                "periods": ["2024-01", "2024-02"],
                "counts": [1, None],
            },
            {
                "label": "r2",
                "point": {"period": "2024-02"},
                "spare": None,
                "periods": [],
                "counts": None,
            },
        ]
    }
    CountingContext.completed = 0
    denied = await schema.execute("{ readings { point { secret } } }")
    assert CountingContext.completed == 0  # a permission one level down: graphql-core's path
    assert denied.data is None and [e.message for e in denied.errors or []] == ["not for you"]
    resolved = await schema.execute("{ readings { point { doubled } } }")
    assert CountingContext.completed == 0  # a resolver one level down
    assert resolved.data == {"readings": [{"point": {"doubled": 6}}, {"point": {"doubled": None}}]}
    broken = await schema.execute("{ brokenReadings { point { label } } }")
    assert broken.data == {"brokenReadings": None}
    assert [e.path for e in broken.errors or []] == [["brokenReadings", 0, "point"]]


async def test_what_the_fast_loop_answers() -> None:
    result = await _schema(True).execute(QUERY)
    data, errors = _plain(result)
    assert data is not None
    assert data["ints"] == [1, 2, 3]
    assert data["maybeInts"] == [1, None, 3]
    assert data["tupleFloats"] == [1.5, None, 2.0]
    assert data["periods"] == ["2024-01", "2024-02"]
    assert data["badPeriods"] == ["2024-01", None, "2024-03"]
    assert data["repeatedPeriods"] == ["2024-01", "2024-01", None, "2024-01", None]
    assert data["other"] == data["periods"]
    assert data["badCounts"] is None and data["nullInNonNull"] is None
    assert data["colours"] == ["RED", "BLUE"]
    assert data["awaitables"] == [1, 2]
    assert data["nested"] == [[1, None], [], [3]]
    assert sorted(path for _, path in errors) == [
        ["badCounts", 2],
        ["badPeriods", 1],
        ["nullInNonNull", 1],
        ["repeatedPeriods", 2],
        ["repeatedPeriods", 4],
    ]
