"""The compact series form (``MeasureSeries.columns``): parallel column lists that say exactly
what the typed ``points`` say, for dashboards (issue 7)."""

from __future__ import annotations

from typing import Any

import pytest
from starlette.applications import Starlette

from schema.fast_lists import FastListsExecutionContext
from tests.factories import Tenant
from tests.schema.test_teams import add_measure, add_points, monthly, program

BOTH_FORMS = """
query Both($code: String!, $last: Int, $measures: [String!]) {
  team(code: $code) {
    series(last: $last, measures: $measures) {
      measure { code }
      points { period numerator denominator value }
      columns { periods numerators denominators values }
    }
  }
}
"""

COLUMNS_ONLY = """
query Columns($code: String!) {
  team(code: $code) {
    series { measure { code } columns { periods values } }
    measureSeries(measure: "control") { columns { periods numerators denominators values } }
  }
}
"""


def as_columns(points: list[dict[str, Any]]) -> dict[str, list[Any]]:
    return {
        "periods": [point["period"] for point in points],
        "numerators": [point["numerator"] for point in points],
        "denominators": [point["denominator"] for point in points],
        "values": [point["value"] for point in points],
    }


async def test_columns_say_what_points_say(app: Starlette, tenant: Tenant) -> None:
    await program(tenant, "asthma", {"t1": "mercy", "t2": "hope"})
    control = await add_measure(app, tenant, "asthma", "control", position=1)
    plans = await add_measure(app, tenant, "asthma", "plans", position=2)
    await add_points(
        app,
        tenant,
        "t1",
        control,
        [
            ("2024-01", 5, 10, None, ""),
            ("2024-02", 0, 0, None, "zero denominator"),
            ("2024-03", None, None, 42.5, ""),
            ("2024-04", 9, 10, None, ""),
        ],
    )
    await add_points(app, tenant, "t1", plans, monthly(2024, range(1, 4), numerator=3))

    for variables in ({"code": "t1"}, {"code": "t1", "last": 2}, {"code": "t2", "last": 12}):
        body = await tenant.gql(BOTH_FORMS, variables)
        assert "errors" not in body, body
        series = body["data"]["team"]["series"]
        assert [one["measure"]["code"] for one in series] == ["control", "plans"]
        for one in series:
            assert one["columns"] == as_columns(one["points"]), (variables, one)

    body = await tenant.gql(BOTH_FORMS, {"code": "t1", "last": 2})
    assert body["data"]["team"]["series"][0]["columns"] == {
        "periods": ["2024-03", "2024-04"],
        "numerators": [None, 9],
        "denominators": [None, 10],
        "values": [42.5, 90.0],
    }
    body = await tenant.gql(BOTH_FORMS, {"code": "t1", "last": 0})
    assert body["data"]["team"]["series"][0]["columns"] == {
        "periods": [],
        "numerators": [],
        "denominators": [],
        "values": [],
    }

    body = await tenant.gql(COLUMNS_ONLY, {"code": "t1"})
    assert "errors" not in body, body
    team = body["data"]["team"]
    assert team["series"][1] == {
        "measure": {"code": "plans"},
        "columns": {"periods": ["2024-01", "2024-02", "2024-03"], "values": [30.0, 30.0, 30.0]},
    }
    assert team["measureSeries"]["columns"]["values"] == [50.0, None, 42.5, 90.0]
    assert team["measureSeries"]["columns"]["numerators"] == [5, 0, None, 9]


PROVENANCE_AND_COLUMNS = """
query Mixed($code: String!) {
  team(code: $code) {
    dashboard: series(last: 3) { columns { periods } }
    detail: series(last: 3) {
      points { period annotations status measureVersion updatedBy }
      columns { periods values }
    }
    fragment: series(last: 3) { points { ...Provenance } }
  }
}
fragment Provenance on MeasureSeriesPoint { period annotations }
"""


async def test_provenance_is_read_only_when_shown_and_then_right(
    app: Starlette, tenant: Tenant
) -> None:
    await program(tenant, "asthma", {"t1": "mercy"})
    control = await add_measure(app, tenant, "asthma", "control", position=1)
    await add_points(
        app,
        tenant,
        "t1",
        control,
        [("2024-01", 5, 10, None, ""), ("2024-02", 0, 0, None, "zero denominator")],
    )
    body = await tenant.gql(PROVENANCE_AND_COLUMNS, {"code": "t1"})
    assert "errors" not in body, body
    team = body["data"]["team"]
    assert team["dashboard"] == [{"columns": {"periods": ["2024-01", "2024-02"]}}]
    detail = team["detail"][0]
    assert [p["annotations"] for p in detail["points"]] == [[], ["zero denominator"]]
    assert {p["status"] for p in detail["points"]} == {"SUBMITTED"}
    assert {p["measureVersion"] for p in detail["points"]} == {1}
    assert detail["columns"] == {"periods": ["2024-01", "2024-02"], "values": [50.0, None]}
    assert [p["annotations"] for p in team["fragment"][0]["points"]] == [[], ["zero denominator"]]


async def test_a_dashboards_series_list_is_completed_in_one_loop(
    app: Starlette, tenant: Tenant, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``measure`` and ``columns`` are plain attributes of a series, so the list of a team's
    series (measure fields and column lists included) skips graphql-core's per-field work."""
    await program(tenant, "copd", {"c1": "mercy"})
    control = await add_measure(app, tenant, "copd", "control", position=1)
    await add_points(app, tenant, "c1", control, monthly(2024, range(1, 4), numerator=2))
    completed: list[str] = []
    original = FastListsExecutionContext._complete_plain_objects

    def counting(self: FastListsExecutionContext, return_type: Any, *args: Any) -> list[Any]:
        found = original(self, return_type, *args)
        completed.append(return_type.name)
        return found

    monkeypatch.setattr(FastListsExecutionContext, "_complete_plain_objects", counting)
    result = await tenant.gql(
        'query { team(code: "c1") { series { measure { code name } '
        "columns { periods numerators denominators values } } } }"
    )
    series = result["data"]["team"]["series"]
    assert series == [
        {
            "measure": {"code": "control", "name": series[0]["measure"]["name"]},
            "columns": {
                "periods": ["2024-01", "2024-02", "2024-03"],
                "numerators": [2, 2, 2],
                "denominators": [10, 10, 10],
                "values": series[0]["columns"]["values"],
            },
        }
    ]
    assert "MeasureSeries" in completed
