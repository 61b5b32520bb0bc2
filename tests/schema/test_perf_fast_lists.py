"""Lists of scalars completed in one loop answer exactly what graphql-core answers: the same
data and the same errors at the same paths (schema/fast_lists.py, issue 7)."""

from __future__ import annotations

import asyncio
import enum
from typing import Any

import pytest
import strawberry
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


@strawberry.type
class Query:
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
