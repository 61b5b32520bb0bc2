"""``aggregate`` and ``collaborative.scorecard`` through GraphQL on both backends: values against
the Python reference, scopes, suppression per reader (0, 1, 10, 11, complements, too few teams,
complementary across collaboratives), rows fetched from SQL, and the demo's improvement signal.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date
from typing import Any

import httpx
import pytest
from asgi_lifespan import LifespanManager
from sqlalchemy import event
from starlette.applications import Starlette

from analytics.aggregates import (
    mean_of_rates,
    median_of_rates,
    pooled_rate,
    teams_meeting_goal,
)
from analytics.periods import add_months
from analytics.suppression import (
    DEFAULT_POLICY,
    Cell,
    SuppressionPolicy,
    SuppressionReason,
)
from api.app import create_app
from api.state import AppState
from db.demo import DEMO_SPONSOR_SLUGS, seed_demo
from db.enums import ClientKind
from db.migrations import upgrade_to_head
from db.queries.auth import create_client
from schema.aggregates.access import aggregate_access, disclose_total
from schema.principal import Principal
from tests.conftest import make_settings
from tests.db.test_aggregate_sql import MeasureDef, PointDef, build
from tests.factories import Tenant, TenantFactory
from tests.schema.test_charts import (
    count_rows,
    create_collaborative,
    data,
    define_measure,
    enroll,
    error_codes,
    months,
    submit,
    value_rows,
)
from tests.schema.test_no_n_plus_one import counted_statements

POINT_FIELDS = """
period teamsReporting numerator denominator rate meanOfTeamRates medianOfTeamRates
teamsMeetingGoal suppressed suppressionReason
"""
AGGREGATE = f"""
query Aggregate($measure: String!, $scope: AggregateScope, $from: Period, $to: Period,
                $stratum: String) {{
  aggregate(measure: $measure, scope: $scope, from: $from, to: $to, stratum: $stratum) {{
    measure {{ code }} stratum goal exact suppressionPolicy {{ cellMin minTeams }}
    points {{ {POINT_FIELDS} }}
  }}
}}
"""
AGGREGATE_CHARTS = """
query AggregateCharts($measure: String!, $scope: AggregateScope, $rules: RunChartRules,
                      $freeze: Int) {
  aggregate(measure: $measure, scope: $scope) {
    exact
    points { period rate suppressed }
    runChart(rules: $rules, freeze: $freeze) {
      computable reason
      parts { centerLine longestRun longestRunLimit }
      points { period value }
      signals { rule periods side variation }
    }
    controlChart {
      chart computable reason
      points { period value numerator denominator centerLine lowerLimit upperLimit }
    }
  }
}
"""
ADD = """
mutation Add($input: AddMeasureToCollaborativeInput!) {
  addMeasureToCollaborative(input: $input) { __typename }
}
"""
SCORECARD = """
query Scorecard($code: String!, $period: Period, $rules: RunChartRules) {
  collaborative(code: $code) {
    scorecard(period: $period, rules: $rules) {
      period rules exact
      measures {
        measure { code } required goal teamsReporting numerator denominator rate
        teamsMeetingGoal teamsWithImprovementSignal teamsWithConcernSignal
        signals { rule periods side variation } signalsComputable suppressed suppressionReason
      }
    }
  }
}
"""
SCORECARDS = """
{
  collaboratives(first: 20) {
    nodes { code scorecard { period measures { teamsReporting rate teamsWithImprovementSignal
            signals { rule } } } }
  }
}
"""


# --- helpers ---------------------------------------------------------------------------------


async def aggregate(
    tenant: Tenant, measure: str, *, token: str | None = None, **variables: Any
) -> dict[str, Any]:
    body = await tenant.gql(AGGREGATE, {"measure": measure, **variables}, token=token)
    result: dict[str, Any] = data(body)["aggregate"]
    return result


async def client_token(tenant: Tenant, kind: ClientKind, **options: Any) -> str:
    client_id, secret = await tenant.add_client(kind, **options)
    return await tenant.token(client_id, secret)


TEAMS_A = ["ta1", "ta2", "ta3", "ta4"]  # an even number of teams
TEAMS_B = ["tb1", "tb2"]
COUNTS = {
    "ta1": [(7, 10), (21, 30), (5, 9)],
    "ta2": [(3, 7), (14, 20), (0, 4)],
    "ta3": [(9, 11), (2, 3), (8, 8)],
    "ta4": [(1, 3), (50, 61), (6, 13)],
    "tb1": [(4, 5), (3, 9), (7, 7)],
    "tb2": [(12, 40), (30, 33), (2, 2)],
}
GOAL = 60.0


async def setup_two_collaboratives(tenant: Tenant) -> None:
    """``ca`` (4 teams) and ``cb`` (2 teams), measure ``control`` (percent, goal 60 in ``ca``,
    none in ``cb``), three months of counts."""
    await create_collaborative(tenant, "ca")
    await create_collaborative(tenant, "cb")
    await define_measure(
        tenant, "control", "PROPORTION", collaborative="ca", multiplier=100, goal=GOAL
    )
    body = await tenant.gql(ADD, {"input": {"collaborative": "cb", "measure": "control"}})
    assert (
        data(body)["addMeasureToCollaborative"]["__typename"] == "AddMeasureToCollaborativeSuccess"
    )
    for team in TEAMS_A:
        await enroll(tenant, team, "ca")
    for team in TEAMS_B:
        await enroll(tenant, team, "cb")
    rows: list[dict[str, Any]] = []
    for team, counts in COUNTS.items():
        rows += count_rows(team, "control", [n for n, _ in counts], [d for _, d in counts])
    await submit(tenant, rows)


def _expected(teams: list[str], index: int) -> dict[str, Any]:
    numerators = [COUNTS[t][index][0] for t in teams]
    denominators = [COUNTS[t][index][1] for t in teams]
    rates = [n / d * 100 for n, d in zip(numerators, denominators, strict=True)]
    return {
        "teamsReporting": len(teams),
        "numerator": sum(numerators),
        "denominator": sum(denominators),
        "rate": pooled_rate(numerators, denominators, 100.0),
        "meanOfTeamRates": mean_of_rates(rates),
        "medianOfTeamRates": median_of_rates(rates),
        "teamsMeetingGoal": teams_meeting_goal(rates, GOAL, "INCREASE"),
    }


def _check(point: dict[str, Any], expected: dict[str, Any], *, goal: bool) -> None:
    assert point["teamsReporting"] == expected["teamsReporting"]
    assert (point["numerator"], point["denominator"]) == (
        expected["numerator"],
        expected["denominator"],
    )
    for name in ("rate", "meanOfTeamRates", "medianOfTeamRates"):
        assert point[name] == pytest.approx(expected[name], rel=1e-12), name
    assert point["teamsMeetingGoal"] == (expected["teamsMeetingGoal"] if goal else None)
    assert (point["suppressed"], point["suppressionReason"]) == (False, None)


# --- values and scopes -----------------------------------------------------------------------


async def test_aggregate_of_one_collaborative_matches_the_reference(tenant: Tenant) -> None:
    await setup_two_collaboratives(tenant)
    result = await aggregate(tenant, "control", scope={"collaboratives": ["ca"]})
    assert result["measure"] == {"code": "control"}
    assert (result["exact"], result["suppressionPolicy"], result["stratum"]) == (True, None, "")
    assert result["goal"] == GOAL
    assert [p["period"] for p in result["points"]] == months(3)
    for index, point in enumerate(result["points"]):
        _check(point, _expected(TEAMS_A, index), goal=True)  # 4 teams: an even median


async def test_default_scope_is_every_team_and_has_no_single_goal(tenant: Tenant) -> None:
    await setup_two_collaboratives(tenant)
    everyone = await aggregate(tenant, "control")
    assert everyone["goal"] is None
    for index, point in enumerate(everyone["points"]):
        _check(point, _expected(TEAMS_A + TEAMS_B, index), goal=False)  # 6 teams: even
    own = await aggregate(tenant, "control", scope={"sponsors": [tenant.slug]})
    assert own["points"] == everyone["points"]
    both = await aggregate(tenant, "control", scope={"collaboratives": ["ca", "cb"]})
    assert both["points"] == everyone["points"]


async def test_scope_filters_windows_and_unknown_names(tenant: Tenant) -> None:
    await setup_two_collaboratives(tenant)
    teams = await aggregate(tenant, "control", scope={"teams": ["ta1", "tb2"]})
    for index, point in enumerate(teams["points"]):
        _check(point, _expected(["ta1", "tb2"], index), goal=False)
    mixed = await aggregate(tenant, "control", scope={"collaboratives": ["ca"], "teams": ["tb1"]})
    assert mixed["points"] == []  # every list must match
    window = await aggregate(tenant, "control", **{"from": "2020-02", "to": "2020-02"})
    assert [p["period"] for p in window["points"]] == ["2020-02"]
    # one other sponsor named alone: the measure code is looked up there (it is not shared)
    other_sponsor = await tenant.gql(
        AGGREGATE, {"measure": "control", "scope": {"sponsors": ["someone-else"]}}
    )
    assert data(other_sponsor)["aggregate"] is None
    # beside the caller's own, a sponsor that shares nothing adds nothing
    with_other = await aggregate(
        tenant, "control", scope={"sponsors": [tenant.slug, "someone-else"]}
    )
    assert with_other["points"] == (await aggregate(tenant, "control"))["points"]
    unknown = await aggregate(tenant, "control", scope={"collaboratives": ["nope"]})
    assert unknown["points"] == [] and unknown["goal"] is None
    body = await tenant.gql(AGGREGATE, {"measure": "no-such-measure"})
    assert data(body)["aggregate"] is None
    body = await tenant.gql(AGGREGATE, {"measure": "control", "from": "2020-03", "to": "2020-01"})
    assert error_codes(body) == ["VALIDATION"]
    body = await tenant.gql(AGGREGATE, {"measure": "control", "stratum": "x" * 65})
    assert error_codes(body) == ["VALIDATION"]
    body = await tenant.gql(AGGREGATE, {"measure": "control", "scope": {"teams": ["t"] * 101}})
    assert error_codes(body) == ["VALIDATION"]


async def test_tenancy_and_scopes(tenant: Tenant, tenants: TenantFactory) -> None:
    await setup_two_collaboratives(tenant)
    stranger = await tenants.create()
    body = await stranger.gql(AGGREGATE, {"measure": "control"})
    assert data(body)["aggregate"] is None
    body = await stranger.gql(
        AGGREGATE, {"measure": "control", "scope": {"sponsors": [tenant.slug]}}
    )
    assert data(body)["aggregate"] is None
    ehr = await client_token(tenant, ClientKind.EHR_INTEGRATION, teams=("ta1",))
    body = await tenant.gql(AGGREGATE, {"measure": "control"}, token=ehr)
    assert error_codes(body) == ["FORBIDDEN"]  # no aggregate:read by default
    dashboard = await client_token(tenant, ClientKind.DASHBOARD)
    seen = await aggregate(tenant, "control", token=dashboard)
    assert seen["exact"] and all(not p["suppressed"] for p in seen["points"])


async def test_charts_of_an_aggregate_chart_the_pooled_rate(tenant: Tenant) -> None:
    await setup_two_collaboratives(tenant)
    body = await tenant.gql(
        AGGREGATE_CHARTS, {"measure": "control", "scope": {"collaboratives": ["ca"]}}
    )
    result = data(body)["aggregate"]
    rates = [p["rate"] for p in result["points"]]
    run = result["runChart"]
    assert run["computable"] and [p["value"] for p in run["points"]] == rates
    assert run["parts"][0]["centerLine"] == pytest.approx(sorted(rates)[1])
    control = result["controlChart"]
    assert control["chart"] == "P" and control["computable"]
    numerators = [sum(COUNTS[t][i][0] for t in TEAMS_A) for i in range(3)]
    denominators = [sum(COUNTS[t][i][1] for t in TEAMS_A) for i in range(3)]
    assert [p["numerator"] for p in control["points"]] == numerators
    assert [p["denominator"] for p in control["points"]] == denominators
    p_bar = sum(numerators) / sum(denominators)
    for point, size in zip(control["points"], denominators, strict=True):
        sigma = (p_bar * (1 - p_bar) / size) ** 0.5
        assert point["centerLine"] == pytest.approx(p_bar * 100, rel=1e-12)
        assert point["lowerLimit"] == pytest.approx(max(0.0, p_bar - 3 * sigma) * 100, rel=1e-9)
        assert point["upperLimit"] == pytest.approx(min(1.0, p_bar + 3 * sigma) * 100, rel=1e-9)


async def test_mean_and_count_measures(tenant: Tenant) -> None:
    await create_collaborative(tenant, "cm")
    await define_measure(tenant, "wait", "MEAN", collaborative="cm", direction="DECREASE", goal=50)
    await define_measure(tenant, "falls", "COUNT", collaborative="cm", direction="DECREASE")
    teams = ["m1", "m2", "m3", "m4"]
    for team in teams:
        await enroll(tenant, team, "cm")
    waits = {"m1": [52.5, 48.0], "m2": [61.0, 59.9], "m3": [45.3, 44.0], "m4": [50.0, 50.0]}
    falls = {"m1": [3.0, 1.0], "m2": [0.0, 2.0], "m3": [5.0, 4.0], "m4": [1.0, 1.0]}
    rows: list[dict[str, Any]] = []
    for team in teams:
        rows += value_rows(team, "wait", waits[team]) + value_rows(team, "falls", falls[team])
    rows[0] |= {"numerator": 3, "denominator": 30}  # a MEAN point may carry counts too
    await submit(tenant, rows)
    wait = await aggregate(tenant, "wait", scope={"collaboratives": ["cm"]})
    for index, point in enumerate(wait["points"]):
        values = [waits[t][index] for t in teams]
        assert point["numerator"] is None and point["denominator"] is None
        assert point["rate"] == pytest.approx(mean_of_rates(values))
        assert point["meanOfTeamRates"] == pytest.approx(mean_of_rates(values))
        assert point["medianOfTeamRates"] == pytest.approx(median_of_rates(values))
        assert point["teamsMeetingGoal"] == teams_meeting_goal(values, 50.0, "DECREASE")
    count = await aggregate(tenant, "falls", scope={"collaboratives": ["cm"]})
    assert [p["rate"] for p in count["points"]] == [9.0, 8.0]  # the total count
    assert [p["teamsMeetingGoal"] for p in count["points"]] == [None, None]  # no goal line
    body = await tenant.gql(AGGREGATE_CHARTS, {"measure": "falls"})
    assert data(body)["aggregate"]["controlChart"]["chart"] == "C"


# --- suppression -----------------------------------------------------------------------------


def _principal(
    kind: ClientKind, sponsor: uuid.UUID, teams: frozenset[uuid.UUID] = frozenset()
) -> Principal:
    return Principal(
        client_id="c",
        kind=kind,
        sponsor_id=sponsor,
        sponsor_slug="s",
        scopes=frozenset({"aggregate:read"}),
        team_ids=teams,
    )


def test_aggregate_access_per_reader() -> None:
    sponsor, other = uuid.uuid4(), uuid.uuid4()
    own_team, other_team = uuid.uuid4(), uuid.uuid4()
    for kind in (ClientKind.ADMIN, ClientKind.DASHBOARD):
        assert aggregate_access(_principal(kind, sponsor), sponsor_id=sponsor).exact
        assert (
            aggregate_access(_principal(kind, other), sponsor_id=sponsor).policy == DEFAULT_POLICY
        )
    partner = aggregate_access(_principal(ClientKind.PARTNER, sponsor), sponsor_id=sponsor)
    assert partner.policy == SuppressionPolicy(cell_min=11, min_teams=3)
    ehr = _principal(ClientKind.EHR_INTEGRATION, sponsor, frozenset({own_team}))
    assert aggregate_access(ehr, sponsor_id=sponsor, scope_team_ids=frozenset({own_team})).exact
    for scope in (None, frozenset(), frozenset({own_team, other_team})):
        access = aggregate_access(ehr, sponsor_id=sponsor, scope_team_ids=scope)
        assert access.policy == DEFAULT_POLICY


@pytest.mark.parametrize(
    ("numerator", "reason"),
    [(0, None), (1, SuppressionReason.SMALL_CELL), (10, SuppressionReason.SMALL_CELL), (11, None)],
)
def test_disclose_total_cell_rules(numerator: int, reason: SuppressionReason | None) -> None:
    cell = Cell(numerator, 300, 3)
    seen = disclose_total([cell], cell, DEFAULT_POLICY, multiplier=100)
    assert seen.reason is reason
    assert seen.numerator == (None if reason else numerator)
    assert seen.denominator == 300
    assert seen.rate == (None if reason else pytest.approx(numerator / 3))


def test_disclose_total_complementary() -> None:
    shown, small, zero = Cell(50, 300, 3), Cell(5, 300, 3), Cell(0, 300, 3)
    other_small = Cell(7, 300, 3)
    total = disclose_total([shown, small], Cell(55, 600, 6), DEFAULT_POLICY)
    assert total.reason is SuppressionReason.COMPLEMENTARY and total.numerator is None
    assert disclose_total([shown, zero], Cell(50, 600, 6), DEFAULT_POLICY).reason is None
    # two hidden parts adding up to 12 (not small) from 6 teams reveal nothing small
    three = disclose_total([shown, small, other_small], Cell(62, 900, 9), DEFAULT_POLICY)
    assert three.reason is None and three.numerator == 62
    few = disclose_total([shown, Cell(40, 300, 2)], Cell(90, 600, 5), DEFAULT_POLICY)
    assert few.reason is SuppressionReason.COMPLEMENTARY  # the other part: 2 teams
    assert disclose_total([shown], Cell(50, 300, 2), DEFAULT_POLICY).reason is (
        SuppressionReason.TOO_FEW_TEAMS
    )


SMALL_TEAMS = ["s1", "s2", "s3"]
# numerator per team and month (denominator 100 each): Σ 0, 1, 10, 11, and 295 of 300 (a small
# complement); in the sixth month only two teams report.
SMALL_NUMERATORS = [[0, 0, 0], [1, 0, 0], [4, 3, 3], [4, 4, 3], [98, 99, 98], [20, 30]]


async def setup_small_counts(tenant: Tenant) -> None:
    await create_collaborative(tenant, "small")
    await define_measure(
        tenant, "control", "PROPORTION", collaborative="small", multiplier=100, goal=5
    )
    for team in SMALL_TEAMS:
        await enroll(tenant, team, "small")
    rows: list[dict[str, Any]] = []
    for period, numerators in zip(months(6), SMALL_NUMERATORS, strict=True):
        rows += [
            {
                "team": team,
                "measure": "control",
                "period": period,
                "numerator": n,
                "denominator": 100,
            }
            for team, n in zip(SMALL_TEAMS, numerators, strict=False)
        ]
    await submit(tenant, rows)


async def test_partner_sees_0_1_10_11_and_complements_suppressed(tenant: Tenant) -> None:
    await setup_small_counts(tenant)
    partner = await client_token(tenant, ClientKind.PARTNER)
    seen = await aggregate(tenant, "control", token=partner, scope={"collaboratives": ["small"]})
    assert seen["exact"] is False
    assert seen["suppressionPolicy"] == {"cellMin": 11, "minTeams": 3}
    points = {p["period"]: p for p in seen["points"]}
    jan, feb, mar, apr, may, jun = (points[p] for p in months(6))
    assert (jan["numerator"], jan["rate"], jan["suppressed"]) == (0, 0.0, False)
    for hidden in (feb, mar):  # 1 and 10
        assert (hidden["numerator"], hidden["rate"], hidden["denominator"]) == (None, None, 300)
        assert (hidden["suppressed"], hidden["suppressionReason"]) == (True, "SMALL_CELL")
        assert hidden["meanOfTeamRates"] is None and hidden["medianOfTeamRates"] is None
        assert hidden["teamsMeetingGoal"] is None and hidden["teamsReporting"] == 3
    assert (apr["numerator"], apr["suppressed"]) == (11, False)
    assert apr["rate"] == pytest.approx(11 / 3)
    assert apr["teamsMeetingGoal"] == 0
    # 295 of 300: the 5 without the event are a small cell, so the numerator goes too
    assert (may["numerator"], may["denominator"], may["suppressionReason"]) == (
        None,
        300,
        "SMALL_CELL",
    )
    assert (jun["teamsReporting"], jun["numerator"], jun["denominator"]) == (2, None, None)
    assert jun["suppressionReason"] == "TOO_FEW_TEAMS"

    # the staff see every value
    exact = await aggregate(tenant, "control", scope={"collaboratives": ["small"]})
    assert exact["exact"] and [p["numerator"] for p in exact["points"]] == [0, 1, 10, 11, 295, 50]
    assert not any(p["suppressed"] for p in exact["points"])

    # a partner's charts of a series with hidden values are not computable, and leak nothing
    body = await tenant.gql(
        AGGREGATE_CHARTS,
        {"measure": "control", "scope": {"collaboratives": ["small"]}},
        token=partner,
    )
    charts = data(body)["aggregate"]
    for name in ("runChart", "controlChart"):
        assert (charts[name]["computable"], charts[name]["reason"]) == (False, "SUPPRESSED")
        assert charts[name]["points"] == []
    body = await tenant.gql(
        AGGREGATE_CHARTS, {"measure": "control", "scope": {"collaboratives": ["small"]}}
    )
    assert data(body)["aggregate"]["runChart"]["computable"] is True

    # no team-identified or stratified aggregates for a suppressed reader
    for variables in ({"scope": {"teams": ["s1", "s2", "s3"]}}, {"stratum": "age:5-11"}):
        body = await tenant.gql(AGGREGATE, {"measure": "control", **variables}, token=partner)
        assert error_codes(body) == ["FORBIDDEN"], body


async def test_partner_total_of_collaboratives_is_complementary_suppressed(tenant: Tenant) -> None:
    # x: Σ 50; y: Σ 5 (small); z: Σ 7 (small); w: Σ 0. Three teams each, denominators 100.
    sums = {"x": [20, 20, 10], "y": [2, 2, 1], "z": [3, 2, 2], "w": [0, 0, 0]}
    rows: list[dict[str, Any]] = []
    for code in sums:
        await create_collaborative(tenant, code)
    await define_measure(tenant, "control", "PROPORTION", collaborative="x", multiplier=100)
    for code, numerators in sums.items():
        if code != "x":
            body = await tenant.gql(ADD, {"input": {"collaborative": code, "measure": "control"}})
            assert "errors" not in body
        for number, n in enumerate(numerators):
            team = f"{code}-team-{number}"
            await enroll(tenant, team, code)
            rows.append(
                {
                    "team": team,
                    "measure": "control",
                    "period": "2020-01",
                    "numerator": n,
                    "denominator": 100,
                }
            )
    await submit(tenant, rows)
    partner = await client_token(tenant, ClientKind.PARTNER)

    async def seen(*codes: str) -> dict[str, Any]:
        result = await aggregate(
            tenant, "control", token=partner, scope={"collaboratives": list(codes)}
        )
        (point,) = result["points"]
        found: dict[str, Any] = point
        return found

    assert (await seen("x"))["numerator"] == 50
    assert (await seen("y"))["suppressionReason"] == "SMALL_CELL"
    # x + y would give y back as (x + y) - x
    both = await seen("x", "y")
    assert (both["numerator"], both["denominator"], both["suppressionReason"]) == (
        None,
        None,
        "COMPLEMENTARY",
    )
    assert both["teamsReporting"] == 6
    assert (await seen("x", "w"))["numerator"] == 50  # w's 0 is shown anyway
    # y and z are each hidden, but together they come to 12 of 6 teams: nothing small is revealed
    three = await seen("x", "y", "z")
    assert (three["numerator"], three["suppressed"]) == (62, False)
    # the default scope covers every collaborative: x, y, z, w → shown
    everyone = await aggregate(tenant, "control", token=partner)
    assert everyone["points"][0]["numerator"] == 62


async def test_ehr_client_sees_its_own_teams_exactly(tenant: Tenant) -> None:
    await setup_small_counts(tenant)
    ehr = await client_token(
        tenant,
        ClientKind.EHR_INTEGRATION,
        scopes=("data:write", "program:read", "data:read", "aggregate:read"),
        teams=("s1",),
    )
    own = await aggregate(tenant, "control", token=ehr, scope={"teams": ["s1"]})
    assert own["exact"] and [p["numerator"] for p in own["points"]] == [0, 1, 4, 4, 98, 20]
    assert not any(p["suppressed"] for p in own["points"])
    collaborative = await aggregate(
        tenant, "control", token=ehr, scope={"collaboratives": ["small"]}
    )
    assert collaborative["exact"] is False
    assert [p["suppressed"] for p in collaborative["points"]] == [
        False,
        True,
        True,
        False,
        True,
        True,
    ]
    body = await tenant.gql(
        AGGREGATE, {"measure": "control", "scope": {"teams": ["s1", "s2"]}}, token=ehr
    )
    assert error_codes(body) == ["FORBIDDEN"]
    card = data(await tenant.gql(SCORECARD, {"code": "small"}, token=ehr))["collaborative"]
    scorecard = card["scorecard"]
    assert (scorecard["exact"], scorecard["period"]) == (False, "2020-06")
    (measure,) = scorecard["measures"]
    assert (measure["suppressed"], measure["suppressionReason"]) == (True, "TOO_FEW_TEAMS")
    assert (measure["numerator"], measure["rate"], measure["teamsMeetingGoal"]) == (None,) * 3
    assert measure["teamsWithImprovementSignal"] is None
    assert (measure["signalsComputable"], measure["signals"]) == (False, [])


# --- rows fetched ----------------------------------------------------------------------------


@contextmanager
def counted_rows(app: Starlette) -> Iterator[list[int]]:
    """The number of rows each SQL statement run inside the block returned to Python.

    The async adapters of both drivers (aiosqlite, asyncpg) fetch a statement's whole result
    into the DB-API cursor's ``_rows`` buffer when it executes, so it holds every row the
    statement brought into the process. Only statements that read measures or their data are
    counted (authentication and other features' background work run in the same engine).
    """
    state: AppState = app.state.collabx
    counts: list[int] = []

    def record(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        if "measure" not in statement or "webhook" in statement:
            return
        rows = getattr(cursor, "_rows", None)
        counts.append(len(rows) if rows is not None else 0)

    event.listen(state.engine.sync_engine, "after_cursor_execute", record)
    try:
        yield counts
    finally:
        event.remove(state.engine.sync_engine, "after_cursor_execute", record)


BIG_PERIODS = months(18, "2023-01")


async def _load_collaborative(app: Starlette, tenant: Tenant, code: str, teams: int) -> None:
    """``teams`` teams x 18 months of one measure, with fast core inserts."""
    state: AppState = app.state.collabx
    team_codes = [f"{code}-{number:04d}" for number in range(teams)]
    points = [
        PointDef(team, f"{code}-m", period, (number * 7 + month) % 40, 40)
        for number, team in enumerate(team_codes)
        for month, period in enumerate(BIG_PERIODS)
    ]
    async with state.sessionmaker.begin() as session:
        await build(
            session,
            sponsor_id=tenant.sponsor_id,
            collaboratives={code: team_codes},
            measures=[MeasureDef(f"{code}-m", goal=50.0)],
            points=points,
        )


async def _rows_fetched(app: Starlette, tenant: Tenant, code: str) -> tuple[list[int], Any]:
    await tenant.token()
    variables = {"measure": f"{code}-m", "scope": {"collaboratives": [code]}}
    with counted_rows(app) as counts:
        body = await tenant.gql(AGGREGATE_CHARTS, variables)
    return counts, data(body)["aggregate"]


async def test_a_big_collaborative_answers_from_sql_with_rows_per_period(
    app: Starlette, tenant: Tenant
) -> None:
    """300 teams x 18 months (5,400 points) and 3 teams x 18 months fetch the same rows: a few
    per period. The issue's 1,200 teams take the very same code path (only the SQL grows)."""
    await _load_collaborative(app, tenant, "big", 300)
    await _load_collaborative(app, tenant, "tiny", 3)
    big_counts, big = await _rows_fetched(app, tenant, "big")
    tiny_counts, tiny = await _rows_fetched(app, tenant, "tiny")
    assert sum(big_counts) == sum(tiny_counts), (big_counts, tiny_counts)
    # The first read recomputes the series' rollups: the measure with its goal line, the
    # pending change (one per series; no stored series yet, read in the same statement), the
    # totals and the medians per period (18 + 18 rows), then the statements storing them.
    periods = len(BIG_PERIODS)
    assert big_counts[:4] == [1, 1, periods, periods], big_counts
    assert max(big_counts) == periods  # the per-period statements: 18 rows each
    # Later reads take the stored cells (no change is pending): 18 rows, however many teams.
    again, stored = await _rows_fetched(app, tenant, "big")
    assert again == [1, periods], again
    assert stored == big
    assert len(big["points"]) == 18 and big["runChart"]["computable"]
    first = big["points"][0]
    numerators = [(number * 7) % 40 for number in range(300)]
    assert first["rate"] == pytest.approx(pooled_rate(numerators, [40] * 300, 100.0))
    assert tiny["points"][0]["rate"] == pytest.approx(pooled_rate([0, 7, 14], [40] * 3, 100.0))


# --- scorecards ------------------------------------------------------------------------------


async def setup_scorecard(tenant: Tenant, code: str = "card") -> None:
    """Teams 1 and 2 improve after month 8 (controlled up), team 3 does not; a MEAN measure too."""
    await create_collaborative(tenant, code)
    await define_measure(
        tenant, f"{code}-control", "PROPORTION", collaborative=code, multiplier=100, goal=60
    )
    await define_measure(tenant, f"{code}-wait", "MEAN", collaborative=code, direction="DECREASE")
    flat = [40, 45, 42, 44, 41, 43, 45, 42, 44, 41, 43, 42, 44, 41, 43, 45]
    improving = [*flat[:8], 60, 64, 66, 63, 65, 67, 64, 66]
    rows: list[dict[str, Any]] = []
    for number, series in enumerate((improving, improving, flat), start=1):
        team = f"{code}-{number}"
        await enroll(tenant, team, code)
        rows += count_rows(team, f"{code}-control", series, [100] * 16)
        rows += value_rows(team, f"{code}-wait", [50.0 - v / 10 for v in series])
    await submit(tenant, rows)


async def test_scorecard_counts_improving_teams_and_reads_the_collaborative_series(
    tenant: Tenant,
) -> None:
    await setup_scorecard(tenant)
    body = await tenant.gql(SCORECARD, {"code": "card"})
    card = data(body)["collaborative"]["scorecard"]
    assert (card["period"], card["rules"], card["exact"]) == ("2021-04", "ANHOEJ", True)
    control, wait = card["measures"]
    assert control["measure"] == {"code": "card-control"} and control["required"]
    assert (control["teamsReporting"], control["numerator"], control["denominator"]) == (
        3,
        66 + 66 + 45,
        300,
    )
    assert control["rate"] == pytest.approx(177 / 3)
    assert (control["goal"], control["teamsMeetingGoal"]) == (60.0, 2)
    assert (control["teamsWithImprovementSignal"], control["teamsWithConcernSignal"]) == (2, 2)
    assert control["signalsComputable"] and not control["suppressed"]
    improvement = [s for s in control["signals"] if s["variation"] == "IMPROVEMENT"]
    assert improvement and improvement[0]["rule"] == "LONG_RUN"
    assert improvement[0]["periods"] == months(8, "2020-09")
    # lower waits are better: the same teams improve on the MEAN measure
    assert wait["teamsWithImprovementSignal"] == 2 and wait["goal"] is None
    assert wait["teamsMeetingGoal"] is None

    body = await tenant.gql(SCORECARD, {"code": "card", "period": "2020-08", "rules": "IHI"})
    early = data(body)["collaborative"]["scorecard"]
    assert (early["period"], early["rules"]) == ("2020-08", "IHI")
    assert early["measures"][0]["teamsWithImprovementSignal"] == 0
    assert early["measures"][0]["numerator"] == 42 + 42 + 42


async def test_scorecard_scopes_and_batching(
    app: Starlette, tenant: Tenant, tenants: TenantFactory
) -> None:
    await setup_scorecard(tenant)
    ehr = await client_token(tenant, ClientKind.EHR_INTEGRATION, teams=("card-1",))
    body = await tenant.gql(SCORECARD, {"code": "card"}, token=ehr)
    assert error_codes(body) == ["FORBIDDEN"]  # program:read without aggregate:read
    dashboard = await client_token(tenant, ClientKind.DASHBOARD)
    body = await tenant.gql(SCORECARD, {"code": "card"}, token=dashboard)
    assert data(body)["collaborative"]["scorecard"]["exact"] is True

    small, large = await tenants.create(), await tenants.create()
    await setup_scorecard(small, "one")
    for code in ("a", "b", "c"):
        await setup_scorecard(large, code)
    counts = []
    for who in (small, large):
        await who.token()
        with counted_statements(app) as statements:
            cards = data(await who.gql(SCORECARDS))["collaboratives"]["nodes"]
        assert all(c["scorecard"]["measures"][0]["teamsWithImprovementSignal"] == 2 for c in cards)
        # statements of the program and its data (not background work of other features)
        relevant = ("collaborative", "data_points", "measure", "teams")
        others = ("webhook", "client")
        counts.append(
            len(
                [
                    s
                    for s in statements
                    if any(w in s for w in relevant) and not any(w in s for w in others)
                ]
            )
        )
    assert counts[0] == counts[1], counts


async def test_scorecard_without_data(tenant: Tenant) -> None:
    await create_collaborative(tenant, "empty")
    await define_measure(tenant, "e-control", "PROPORTION", collaborative="empty", goal=10)
    card = data(await tenant.gql(SCORECARD, {"code": "empty"}))["collaborative"]["scorecard"]
    assert card["period"] is None
    (measure,) = card["measures"]
    assert (measure["teamsReporting"], measure["rate"], measure["signalsComputable"]) == (
        0,
        None,
        False,
    )
    assert measure["signals"] == [] and measure["teamsWithImprovementSignal"] == 0


# --- the demo data -------------------------------------------------------------------------


DEMO_TODAY = date(2026, 11, 25)
DEMO_INTERVENTION = "2025-11"
"""Learning Session 1 of pediatric-asthma: data month 6 of the 18 ending 2026-10."""


async def test_demo_shows_an_improvement_signal_after_the_intervention(
    empty_database_url: str,
) -> None:
    await asyncio.to_thread(upgrade_to_head, empty_database_url)
    application = create_app(make_settings(empty_database_url))
    async with LifespanManager(application):
        state: AppState = application.state.collabx
        async with state.sessionmaker.begin() as session:
            await seed_demo(session, today=DEMO_TODAY)
        async with state.sessionmaker.begin() as session:
            record, secret = await create_client(
                session,
                sponsor_slug=DEMO_SPONSOR_SLUGS[0],
                kind=ClientKind.DASHBOARD,
                scopes=("program:read", "data:read", "aggregate:read"),
            )
        transport = httpx.ASGITransport(app=application)
        async with httpx.AsyncClient(transport=transport, base_url="http://collabx.test") as http:
            response = await http.post(
                "/oauth/token",
                data={"grant_type": "client_credentials"},
                auth=(record.client_id, secret),
            )
            token = response.json()["access_token"]

            async def ask(query: str, variables: dict[str, Any]) -> dict[str, Any]:
                reply = await http.post(
                    "/graphql",
                    json={"query": query, "variables": variables},
                    headers={"Authorization": f"Bearer {token}"},
                )
                return data(reply.json())

            scope = {"collaboratives": ["pediatric-asthma"]}
            for rules, wanted in (("ANHOEJ", {"LONG_RUN"}), ("IHI", {"SHIFT", "LONG_RUN"})):
                result = await ask(
                    AGGREGATE_CHARTS, {"measure": "asthma-control", "scope": scope, "rules": rules}
                )
                run = result["aggregate"]["runChart"]
                assert run["computable"]
                improving = [
                    s
                    for s in run["signals"]
                    if s["rule"] in wanted and s["variation"] == "IMPROVEMENT"
                ]
                assert improving, run["signals"]
                assert all(p > DEMO_INTERVENTION for s in improving for p in s["periods"])
            # against the months before the intervention, every later month is above the baseline
            baseline = add_months(DEMO_INTERVENTION, -1)
            frozen = await ask(
                AGGREGATE_CHARTS,
                {"measure": "asthma-control", "scope": scope, "freeze": 6},
            )
            run = frozen["aggregate"]["runChart"]
            assert run["points"][5]["period"] == baseline
            (long_run,) = [s for s in run["signals"] if s["rule"] == "LONG_RUN"]
            assert long_run["variation"] == "IMPROVEMENT"
            assert long_run["periods"][-12:] == months(12, DEMO_INTERVENTION)

            card = await ask(SCORECARD, {"code": "pediatric-asthma"})
            scorecard = card["collaborative"]["scorecard"]
            assert scorecard["period"] == "2026-10"
            control = next(
                m for m in scorecard["measures"] if m["measure"]["code"] == "asthma-control"
            )
            assert 0 < control["teamsWithImprovementSignal"] <= control["teamsReporting"]
            assert control["goal"] == 70.0 and control["teamsMeetingGoal"] is not None
            assert any(s["variation"] == "IMPROVEMENT" for s in control["signals"])


async def test_an_aggregate_follows_every_submission_through_its_rollups(tenant: Tenant) -> None:
    """The first read stores the collaborative's rollups; a correction submitted afterwards (an
    ingest batch: one statement, one trigger run on PostgreSQL) shows in the next read, and the
    reads after it answer the same from the stored rollups."""
    await setup_two_collaboratives(tenant)
    before = await aggregate(tenant, "control", scope={"collaboratives": ["ca"]})
    _check(before["points"][0], _expected(TEAMS_A, 0), goal=True)
    counts_after = dict(COUNTS, ta1=[(1, 10), *COUNTS["ta1"][1:]])
    await submit(tenant, count_rows("ta1", "control", [1, 21, 5], [10, 30, 9]))
    after = await aggregate(tenant, "control", scope={"collaboratives": ["ca"]})
    numerators = [counts_after[t][0][0] for t in TEAMS_A]
    assert after["points"][0]["numerator"] == sum(numerators) != before["points"][0]["numerator"]
    rates = [counts_after[t][0][0] / counts_after[t][0][1] * 100 for t in TEAMS_A]
    assert after["points"][0]["medianOfTeamRates"] == pytest.approx(median_of_rates(rates))
    assert after["points"][1:] == before["points"][1:]
    assert await aggregate(tenant, "control", scope={"collaboratives": ["ca"]}) == after
