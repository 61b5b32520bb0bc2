"""Run and control charts through GraphQL, against published values, on both backends.

Data are loaded with ``submitMeasureData`` and read back as ``team.measureSeries`` charts, so the
whole path (ingest, series SQL, gapless months, units, GraphQL) is checked to 1e-6 against:

* the qicharts2 vignette (ANALYTICS.md): run chart median -0.0909573, longest run 3 (limit 8),
  crossings 15 (limit 8), no signal; I chart centre 0.1240693, limits -2.589494 / 2.837633;
* the NHSRplotthedots ``deviations`` vignette: mean 1.9444444, screened MDC limits -0.7155556 /
  4.6044444 with point 5 a special cause; unscreened -3.0626144 / 6.9515033;
* Montgomery, Introduction to Statistical Quality Control, Example 7.1 (p chart of orange-juice
  cans, n = 50): p̄ 0.2313, limits 0.0524 / 0.4102, samples 15 and 23 out; revised without them
  0.2150, 0.0407 / 0.3893 (published to 4 decimals);
* qicharts2's regression reference ``tbl_7.4_1.rds`` (Montgomery Table 7.4, varying n): p̄
  0.0955102041 with per-size limits (here as a percentage: multiplier 100).
"""

from __future__ import annotations

from typing import Any

import pytest
from starlette.applications import Starlette

from analytics.periods import add_months
from db.enums import ClientKind
from tests.factories import Tenant
from tests.schema.test_no_n_plus_one import counted_statements

START = "2020-01"
COLLABORATIVE = "spc"
TEAM = "spc-team"

VIGNETTE_Y = [
    -1.189454, 0.388581, -0.344333, -0.547896, 0.980662, -0.236646, 0.809740, -0.744780,
    -0.259787, -0.183084, 0.518630, 0.883465, 0.589829, -0.196705, 0.659594, -0.260585,
    -0.572506, 1.406558, 0.504271, -0.700281, 1.423423, -1.042658, 0.001169, 1.090455,
]  # fmt: skip
DEVIATIONS = [1.0, 2, 1, 2, 10, 1, 2, 1, 2, 1, 2, 1, 2, 1, 2, 1, 2, 1]
ORANGE_JUICE_30 = [12, 15, 8, 10, 4, 7, 16, 9, 14, 10, 5, 6, 17, 12, 22, 8, 10, 5, 13, 11, 20,
                   18, 24, 15, 9, 12, 7, 13, 9, 6]  # fmt: skip
TBL_07_04_N = [100, 80, 80, 100, 110, 110, 100, 100, 90, 90, 110, 120, 120, 120, 110, 80, 80, 80,
               90, 100, 100, 100, 100, 90, 90]  # fmt: skip
TBL_07_04_D = [12, 8, 6, 9, 10, 12, 11, 16, 10, 6, 20, 15, 9, 8, 6, 8, 10, 7, 5, 8, 5, 8, 10, 6, 9]

CREATE = """
mutation Create(
  $collaborative: CreateCollaborativeInput!, $organization: CreateOrganizationInput!
) {
  createCollaborative(input: $collaborative) { __typename }
  createOrganization(input: $organization) { __typename }
}
"""
DEFINE = """
mutation Define($measure: DefineMeasureInput!, $add: AddMeasureToCollaborativeInput!) {
  defineMeasure(input: $measure) { __typename }
  addMeasureToCollaborative(input: $add) { __typename }
}
"""
ENROLL = """
mutation Enroll($input: EnrollTeamInput!) { enrollTeam(input: $input) { __typename } }
"""
SUBMIT = """
mutation Submit($input: SubmitMeasureDataInput!) {
  submitMeasureData(input: $input) {
    __typename ... on MeasureDataReceipt { created rejected conflicts { index code message } }
    ... on Error { code message }
  }
}
"""

SIGNALS = "signals { rule periods side variation }"
RUN_PART = f"""
fromPeriod toPeriod centerLine usefulObservations longestRun longestRunLimit crossings
crossingsLimit runs runsLowerLimit runsUpperLimit {SIGNALS}
"""
RUN_CHART = f"""
rules computable reason
parts {{ {RUN_PART} }}
{SIGNALS}
points {{ period value centerLine onCenterLine excluded part }}
"""
CONTROL_CHART = f"""
chart rules screenMovingRanges computable reason
parts {{ {RUN_PART} movingRangeMean }}
points {{
  period value numerator denominator centerLine lowerLimit upperLimit outsideLimits excluded part
}}
{SIGNALS}
"""

RUN = f"""
query Run($team: String!, $measure: String!, $rules: RunChartRules, $freeze: Int, $parts: [Int!],
          $exclude: [Int!]) {{
  team(code: $team) {{
    measureSeries(measure: $measure) {{
      runChart(rules: $rules, freeze: $freeze, parts: $parts, exclude: $exclude) {{ {RUN_CHART} }}
    }}
  }}
}}
"""
CONTROL = f"""
query Control($team: String!, $measure: String!, $chart: ControlChartType, $freeze: Int,
              $parts: [Int!], $exclude: [Int!], $screen: Boolean, $rules: ControlChartRules) {{
  team(code: $team) {{
    measureSeries(measure: $measure) {{
      controlChart(chart: $chart, freeze: $freeze, parts: $parts, exclude: $exclude,
                   screenMovingRanges: $screen, rules: $rules) {{ {CONTROL_CHART} }}
    }}
  }}
}}
"""
SERIES_CHARTS = """
query SeriesCharts($team: String!) {
  team(code: $team) {
    series {
      measure { code }
      runChart { computable signals { rule } parts { centerLine } }
      controlChart { chart computable points { upperLimit } }
    }
  }
}
"""
SERIES_PLAIN = """
query SeriesPlain($team: String!) {
  team(code: $team) { series { measure { code } points { period value } } }
}
"""


# --- helpers (also used by test_aggregates) ----------------------------------------------------


def months(count: int, start: str = START) -> list[str]:
    """``count`` consecutive periods from ``start``."""
    return [add_months(start, i) for i in range(count)]


def data(body: dict[str, Any]) -> dict[str, Any]:
    """The data of a response that must have no errors."""
    assert "errors" not in body, body
    result: dict[str, Any] = body["data"]
    return result


def error_codes(body: dict[str, Any]) -> list[str]:
    return [error.get("extensions", {}).get("code") for error in body.get("errors", [])]


async def create_collaborative(tenant: Tenant, code: str = COLLABORATIVE) -> None:
    """A collaborative and an organization ``<code>-org``."""
    body = await tenant.gql(
        CREATE,
        {
            "collaborative": {"code": code, "name": f"Program {code}", "topic": "SPC"},
            "organization": {"code": f"{code}-org", "name": f"Clinic {code}"},
        },
    )
    assert {v["__typename"] for v in data(body).values()} == {
        "CreateCollaborativeSuccess",
        "CreateOrganizationSuccess",
    }, body


async def define_measure(
    tenant: Tenant,
    code: str,
    scoring: str,
    *,
    collaborative: str = COLLABORATIVE,
    multiplier: float = 1.0,
    direction: str = "INCREASE",
    goal: float | None = None,
    add_to_set: bool = True,
) -> None:
    """Define a measure and add it to the collaborative's set (with ``goal``)."""
    measure: dict[str, Any] = {
        "code": code,
        "name": f"Measure {code}",
        "type": "OUTCOME",
        "scoring": scoring,
        "improvementDirection": direction,
        "multiplier": multiplier,
    }
    if scoring in ("PROPORTION", "RATE", "RATIO"):
        measure.update(numerator="Events", denominator="Eligible")
    add = {"collaborative": collaborative, "measure": code, "goal": goal}
    document = (
        DEFINE
        if add_to_set
        else DEFINE.replace(
            "  addMeasureToCollaborative(input: $add) { __typename }\n", ""
        ).replace(", $add: AddMeasureToCollaborativeInput!", "")
    )
    variables: dict[str, Any] = {"measure": measure}
    if add_to_set:
        variables["add"] = add
    body = await tenant.gql(document, variables)
    assert all(
        v["__typename"] in ("DefineMeasureSuccess", "AddMeasureToCollaborativeSuccess")
        for v in data(body).values()
    ), body


async def enroll(tenant: Tenant, team: str, collaborative: str = COLLABORATIVE) -> None:
    body = await tenant.gql(
        ENROLL,
        {
            "input": {
                "collaborative": collaborative,
                "organization": f"{collaborative}-org",
                "code": team,
                "name": f"Team {team}",
            }
        },
    )
    assert data(body)["enrollTeam"]["__typename"] == "EnrollTeamSuccess", body


async def submit(tenant: Tenant, rows: list[dict[str, Any]]) -> None:
    """Load rows through submitMeasureData; every row must be accepted."""
    body = await tenant.gql(SUBMIT, {"input": {"rows": rows}})
    receipt = data(body)["submitMeasureData"]
    assert receipt["__typename"] == "MeasureDataReceipt", receipt
    assert receipt["rejected"] == 0, receipt


def value_rows(
    team: str, measure: str, values: list[float], start: str = START
) -> list[dict[str, Any]]:
    return [
        {"team": team, "measure": measure, "period": period, "value": value}
        for period, value in zip(months(len(values), start), values, strict=True)
    ]


def count_rows(
    team: str, measure: str, numerators: list[int], denominators: list[int], start: str = START
) -> list[dict[str, Any]]:
    return [
        {"team": team, "measure": measure, "period": period, "numerator": n, "denominator": d}
        for period, n, d in zip(
            months(len(numerators), start), numerators, denominators, strict=True
        )
    ]


async def setup_team(tenant: Tenant) -> None:
    """Collaborative ``spc`` with team ``spc-team`` (no measures yet)."""
    await create_collaborative(tenant)
    await enroll(tenant, TEAM)


async def run_chart(tenant: Tenant, measure: str, **variables: Any) -> dict[str, Any]:
    body = await tenant.gql(RUN, {"team": TEAM, "measure": measure, **variables})
    chart: dict[str, Any] = data(body)["team"]["measureSeries"]["runChart"]
    return chart


async def control_chart(tenant: Tenant, measure: str, **variables: Any) -> dict[str, Any]:
    body = await tenant.gql(CONTROL, {"team": TEAM, "measure": measure, **variables})
    chart: dict[str, Any] = data(body)["team"]["measureSeries"]["controlChart"]
    return chart


def outside_periods(chart: dict[str, Any]) -> list[str]:
    return [
        period
        for signal in chart["signals"]
        if signal["rule"] == "OUTSIDE_LIMITS"
        for period in signal["periods"]
    ]


# --- published examples --------------------------------------------------------------------


async def test_qicharts2_vignette_run_and_i_chart(tenant: Tenant) -> None:
    await setup_team(tenant)
    await define_measure(tenant, "vignette", "MEAN")
    await submit(tenant, value_rows(TEAM, "vignette", VIGNETTE_Y))

    chart = await run_chart(tenant, "vignette")
    assert chart["computable"] and chart["rules"] == "ANHOEJ" and chart["reason"] is None
    (part,) = chart["parts"]
    assert part["centerLine"] == pytest.approx(-0.0909573, abs=1e-6)
    assert (part["longestRun"], part["longestRunLimit"]) == (3, 8)
    assert (part["crossings"], part["crossingsLimit"]) == (15, 8)
    assert part["usefulObservations"] == 24
    assert (part["fromPeriod"], part["toPeriod"]) == (START, "2021-12")
    assert part["signals"] == [] and chart["signals"] == []
    assert [p["period"] for p in chart["points"]] == months(24)
    assert [p["value"] for p in chart["points"]] == pytest.approx(VIGNETTE_Y, abs=1e-12)

    for variables in ({"chart": "I"}, {}):  # a MEAN measure gets the I chart by default
        control = await control_chart(tenant, "vignette", **variables)
        assert control["chart"] == "I" and control["computable"]
        for point in control["points"]:
            assert point["centerLine"] == pytest.approx(0.1240693, abs=1e-6)
            assert point["lowerLimit"] == pytest.approx(-2.589494, abs=1e-6)
            assert point["upperLimit"] == pytest.approx(2.837633, abs=1e-6)
            assert not point["outsideLimits"]
        assert control["signals"] == []


async def test_nhsr_deviations_mdc_screened_and_unscreened(tenant: Tenant) -> None:
    await setup_team(tenant)
    await define_measure(tenant, "deviations", "MEAN", direction="INCREASE")
    await submit(tenant, value_rows(TEAM, "deviations", DEVIATIONS))

    screened = await control_chart(tenant, "deviations", rules="MDC", screen=True)
    assert (screened["rules"], screened["screenMovingRanges"]) == ("MDC", True)
    point = screened["points"][0]
    assert point["centerLine"] == pytest.approx(1.9444444, abs=1e-6)
    assert point["lowerLimit"] == pytest.approx(-0.7155556, abs=1e-6)
    assert point["upperLimit"] == pytest.approx(4.6044444, abs=1e-6)
    # "a single blue special cause improvement point": point 5, and only it
    assert screened["signals"] == [
        {
            "rule": "OUTSIDE_LIMITS",
            "periods": ["2020-05"],
            "side": "HIGH",
            "variation": "IMPROVEMENT",
        }
    ]

    unscreened = await control_chart(tenant, "deviations", rules="MDC", screen=False)
    point = unscreened["points"][0]
    assert point["centerLine"] == pytest.approx(1.9444444, abs=1e-6)
    assert point["lowerLimit"] == pytest.approx(-3.0626144, abs=1e-6)
    assert point["upperLimit"] == pytest.approx(6.9515033, abs=1e-6)
    assert outside_periods(unscreened) == ["2020-05"]


async def test_montgomery_example_7_1_p_chart(tenant: Tenant) -> None:
    await setup_team(tenant)
    await define_measure(tenant, "cans", "PROPORTION", direction="DECREASE")
    await submit(tenant, count_rows(TEAM, "cans", ORANGE_JUICE_30, [50] * 30))

    chart = await control_chart(tenant, "cans")  # P by default for a proportion
    assert chart["chart"] == "P"
    point = chart["points"][0]
    assert (point["numerator"], point["denominator"]) == (12, 50)
    assert round(point["centerLine"], 4) == 0.2313
    assert round(point["lowerLimit"], 4) == 0.0524
    assert round(point["upperLimit"], 4) == 0.4102
    assert outside_periods(chart) == ["2021-03", "2021-11"]  # samples 15 and 23
    # higher than the limit means more nonconforming cans: a concern for a DECREASE measure
    assert {s["variation"] for s in chart["signals"] if s["rule"] == "OUTSIDE_LIMITS"} == {
        "CONCERN"
    }

    revised = await control_chart(tenant, "cans", exclude=[15, 23])
    point = revised["points"][0]
    assert round(point["centerLine"], 4) == 0.2150
    assert round(point["lowerLimit"], 4) == 0.0407
    assert round(point["upperLimit"], 4) == 0.3893
    assert [p["excluded"] for p in revised["points"]].count(True) == 2


async def test_qicharts2_reference_p_chart_in_percent(tenant: Tenant) -> None:
    await setup_team(tenant)
    await define_measure(tenant, "boards", "PROPORTION", multiplier=100)
    await submit(tenant, count_rows(TEAM, "boards", TBL_07_04_D, TBL_07_04_N))

    chart = await control_chart(tenant, "boards", chart="P")
    expected = {  # tbl_7.4_1.rds, as proportions; the chart is in percent
        100: (0.00733469473, 0.183685713),
        80: (0.0, 0.194093421),
        110: (0.0114381546, 0.179582254),
        90: (0.00256505628, 0.188455352),
        120: (0.0150173449, 0.176003063),
    }
    for point, size, count in zip(chart["points"], TBL_07_04_N, TBL_07_04_D, strict=True):
        lower, upper = expected[size]
        assert point["value"] == pytest.approx(count / size * 100, abs=1e-9)
        assert point["centerLine"] == pytest.approx(9.55102041, abs=1e-6)
        assert point["lowerLimit"] == pytest.approx(lower * 100, abs=1e-6)
        assert point["upperLimit"] == pytest.approx(upper * 100, abs=1e-6)
    assert outside_periods(chart) == ["2020-11"]
    (part,) = chart["parts"]
    assert (part["usefulObservations"], part["longestRun"], part["crossings"]) == (25, 5, 10)


# --- behaviour -----------------------------------------------------------------------------


async def test_parts_freeze_and_ihi_rules(tenant: Tenant) -> None:
    await setup_team(tenant)
    await define_measure(tenant, "vignette", "MEAN")
    await submit(tenant, value_rows(TEAM, "vignette", VIGNETTE_Y))

    split = await run_chart(tenant, "vignette", parts=[12])
    first, second = split["parts"]
    assert (first["fromPeriod"], first["toPeriod"]) == ("2020-01", "2020-12")
    assert (second["fromPeriod"], second["toPeriod"]) == ("2021-01", "2021-12")
    assert {p["part"] for p in split["points"][:12]} == {0}
    assert {p["part"] for p in split["points"][12:]} == {1}

    frozen = await run_chart(tenant, "vignette", freeze=12)
    (part,) = frozen["parts"]
    median_of_first_12 = sorted(VIGNETTE_Y[:12])[5:7]
    assert part["centerLine"] == pytest.approx(sum(median_of_first_12) / 2, abs=1e-12)

    ihi = await run_chart(tenant, "vignette", rules="IHI")
    assert ihi["rules"] == "IHI"
    (part,) = ihi["parts"]
    assert part["runs"] == 16
    assert isinstance(part["runsLowerLimit"], int) and isinstance(part["runsUpperLimit"], int)
    assert part["runsLowerLimit"] <= 16 <= part["runsUpperLimit"]


async def test_ihi_shift_is_an_improvement_in_the_measure_direction(tenant: Tenant) -> None:
    await setup_team(tenant)
    await define_measure(tenant, "up", "MEAN", direction="INCREASE")
    await define_measure(tenant, "down", "MEAN", direction="DECREASE")
    values = [5.0, 4, 6, 5, 4, 6, 5, 4, 9, 10, 11, 9, 10, 12, 11, 10]
    await submit(tenant, value_rows(TEAM, "up", values) + value_rows(TEAM, "down", values))

    for measure, meaning in (("up", "IMPROVEMENT"), ("down", "CONCERN")):
        chart = await run_chart(tenant, measure, rules="IHI")
        shifts = [s for s in chart["signals"] if s["rule"] == "SHIFT"]
        high = [s for s in shifts if s["side"] == "HIGH"]
        assert high and high[0]["variation"] == meaning, chart["signals"]
        assert high[0]["periods"] == months(8, "2020-09")


async def test_missing_months_are_null_points_that_positions_count(tenant: Tenant) -> None:
    await setup_team(tenant)
    await define_measure(tenant, "gappy", "MEAN")
    rows = value_rows(TEAM, "gappy", [1.0, 2.0, 3.0, 4.0, 5.0, 6.0])
    del rows[2:4]  # 2020-03 and 2020-04 not reported
    await submit(tenant, rows)

    chart = await run_chart(tenant, "gappy", exclude=[6])
    assert [p["period"] for p in chart["points"]] == months(6)
    assert [p["value"] for p in chart["points"]] == [1.0, 2.0, None, None, 5.0, 6.0]
    assert chart["points"][5]["excluded"]
    assert chart["parts"][0]["centerLine"] == pytest.approx(2.0)  # median of 1, 2, 5

    control = await control_chart(tenant, "gappy")
    gap = control["points"][2]
    assert gap["value"] is None and gap["upperLimit"] is None and not gap["outsideLimits"]

    # the series itself lists only the months reported
    body = await tenant.gql(
        'query($t: String!) { team(code: $t) { measureSeries(measure: "gappy") '
        "{ points { period } } } }",
        {"t": TEAM},
    )
    assert len(data(body)["team"]["measureSeries"]["points"]) == 4


@pytest.mark.parametrize(
    ("variables", "fragment"),
    [
        ({"freeze": 0}, "freeze"),
        ({"freeze": 25}, "freeze"),
        ({"parts": [24]}, "parts"),
        ({"parts": [0]}, "parts"),
        ({"parts": [12, 6]}, "increasing"),
        ({"exclude": [3, 3]}, "increasing"),
        ({"exclude": [25]}, "exclude"),
        ({"exclude": [-1]}, "exclude"),
        ({"freeze": 6, "parts": [12]}, "not both"),
    ],
)
async def test_bad_positions_are_validation_errors(
    tenant: Tenant, variables: dict[str, Any], fragment: str
) -> None:
    await setup_team(tenant)
    await define_measure(tenant, "vignette", "MEAN")
    await submit(tenant, value_rows(TEAM, "vignette", VIGNETTE_Y))
    for document in (RUN, CONTROL):
        body = await tenant.gql(document, {"team": TEAM, "measure": "vignette", **variables})
        assert error_codes(body) == ["VALIDATION"], body
        assert fragment in body["errors"][0]["message"]
        assert body["data"]["team"]["measureSeries"] is None


async def test_count_charts_need_a_measure_with_counts(tenant: Tenant) -> None:
    await setup_team(tenant)
    await define_measure(tenant, "vignette", "MEAN")
    await submit(tenant, value_rows(TEAM, "vignette", VIGNETTE_Y))
    for chart in ("P", "U", "P_PRIME", "U_PRIME"):
        body = await tenant.gql(CONTROL, {"team": TEAM, "measure": "vignette", "chart": chart})
        assert error_codes(body) == ["VALIDATION"], body
    for chart in ("I", "MR", "C"):
        control = await control_chart(tenant, "vignette", chart=chart)
        assert control["chart"] == chart and control["computable"]


async def test_no_data_and_one_point(tenant: Tenant) -> None:
    await setup_team(tenant)
    await define_measure(tenant, "empty", "PROPORTION")
    await define_measure(tenant, "single", "PROPORTION", multiplier=100)
    await submit(tenant, count_rows(TEAM, "single", [3], [4]))

    empty = await run_chart(tenant, "empty")
    assert (empty["computable"], empty["reason"]) == (False, "NO_DATA")
    assert empty["parts"] == [] and empty["points"] == [] and empty["signals"] == []
    control = await control_chart(tenant, "empty", freeze=3)  # nothing to count positions in
    assert (control["computable"], control["reason"], control["chart"]) == (False, "NO_DATA", "P")

    single = await run_chart(tenant, "single")
    assert single["computable"] and single["signals"] == []
    assert single["points"] == [
        {
            "period": START,
            "value": 75.0,
            "centerLine": 75.0,
            "onCenterLine": True,
            "excluded": False,
            "part": 0,
        }
    ]
    (part,) = single["parts"]
    assert part["usefulObservations"] == 0 and part["longestRun"] is None
    control = await control_chart(tenant, "single")
    (point,) = control["points"]
    assert point["centerLine"] == pytest.approx(75.0)
    assert point["lowerLimit"] == pytest.approx(75.0 - 300 * (0.75 * 0.25 / 4) ** 0.5)
    assert point["upperLimit"] == pytest.approx(100.0)  # clipped at 1, times the multiplier
    moving = await control_chart(tenant, "single", chart="I")
    assert moving["points"][0]["upperLimit"] is None  # no moving range: no I-chart limits


async def test_team_series_charts_cost_no_sql_per_chart(app: Starlette, tenant: Tenant) -> None:
    await setup_team(tenant)
    await enroll(tenant, "spc-team-2")
    await enroll(tenant, "spc-team-3")
    await define_measure(tenant, "vignette", "MEAN")
    await define_measure(tenant, "deviations", "MEAN")
    rows = value_rows(TEAM, "vignette", VIGNETTE_Y) + value_rows(TEAM, "deviations", DEVIATIONS)
    await submit(tenant, rows)
    await tenant.token()

    def data_statements(statements: list[str]) -> list[str]:
        """Statements reading series and measures (not background work of other features)."""
        return [s for s in statements if "data_points" in s or "FROM measures" in s]

    with counted_statements(app) as statements:
        body = await tenant.gql(SERIES_CHARTS, {"team": TEAM})
    series = data(body)["team"]["series"]
    assert [s["measure"]["code"] for s in series] == ["vignette", "deviations"]
    assert all(s["runChart"]["computable"] and s["controlChart"]["chart"] == "I" for s in series)
    with_charts = data_statements(statements)
    with counted_statements(app) as statements:
        data(await tenant.gql(SERIES_PLAIN, {"team": TEAM}))
    # the series (one statement) and the measures (one batch): charts add nothing
    assert len(with_charts) == len(data_statements(statements)) == 2, with_charts


async def test_ehr_client_charts_its_own_team_only(tenant: Tenant) -> None:
    await setup_team(tenant)
    await enroll(tenant, "other-team")
    await define_measure(tenant, "vignette", "MEAN")
    await submit(
        tenant,
        value_rows(TEAM, "vignette", VIGNETTE_Y) + value_rows("other-team", "vignette", [1.0]),
    )
    client_id, secret = await tenant.add_client(ClientKind.EHR_INTEGRATION, teams=(TEAM,))
    token = await tenant.token(client_id, secret)
    body = await tenant.gql(RUN, {"team": TEAM, "measure": "vignette"}, token=token)
    assert data(body)["team"]["measureSeries"]["runChart"]["parts"][0]["longestRun"] == 3
    body = await tenant.gql(RUN, {"team": "other-team", "measure": "vignette"}, token=token)
    assert error_codes(body) == ["FORBIDDEN"]
