"""Survey instruments and responses: the ACIC structure, server-side scoring with the
missing-item rule, waves, replacement, validation, permissions, tenancy, audit — and the
dashboard's one query: a team's run chart with its PDSA cycles, its assessment trajectory and
its ACIC baseline versus final by subscale."""

from __future__ import annotations

from typing import Any

from db.enums import ClientKind
from tests.content import (
    audit_events,
    client_token,
    data,
    error_codes,
    load_acic,
    submit_points,
)
from tests.factories import Tenant, TenantFactory
from tests.programs import build_program

INSTRUMENTS = """
{
  instruments {
    code name
    currentVersion {
      version minAnsweredShare itemCount
      scale { min max step bands { min max label } }
      sections { code title items { code label scale { max } } }
    }
    versions { version instrument { code } }
  }
}
"""

RECORD = """
mutation Record($input: RecordSurveyResponseInput!) {
  recordSurveyResponse(input: $input) {
    __typename
    ... on RecordSurveyResponseSuccess {
      replaced
      surveyResponse {
        id wave administeredOn recordedBy
        instrument { code } version { version } team { code }
        answers { item value }
        scores {
          overall complete overallBand { label }
          subscales { code title score band { label } answeredItems totalItems }
        }
      }
    }
    ... on Error { code message }
    ... on ValidationError { field }
    ... on NotFoundError { field }
  }
}
"""

RESPONSES = """
query Responses($code: String!, $instrument: String, $wave: SurveyWave) {
  team(code: $code) {
    surveyResponses(instrument: $instrument, wave: $wave) {
      wave administeredOn scores { overall }
    }
  }
}
"""

SUBSCALE_ITEMS = {
    "organization": ["org-leadership", "org-goals", "org-improvement-strategy",
                     "org-incentives", "org-senior-leaders", "org-benefits"],
    "community-linkages": ["com-outside-resources", "com-partnerships", "com-health-plans"],
    "self-management-support": ["sms-assessment", "sms-support", "sms-concerns",
                                "sms-behavior-change"],
    "decision-support": ["ds-guidelines", "ds-specialists", "ds-provider-education",
                         "ds-informing-patients"],
    "delivery-system-design": ["dsd-team-functioning", "dsd-team-leadership",
                               "dsd-appointments", "dsd-follow-up", "dsd-planned-visits",
                               "dsd-continuity"],
    "clinical-information-systems": ["cis-registry", "cis-reminders", "cis-feedback",
                                     "cis-subgroups", "cis-treatment-plans"],
    "integration": ["int-informing-patients", "int-information-systems",
                    "int-community-programs", "int-organizational-planning",
                    "int-routine-follow-up", "int-guidelines"],
}  # fmt: skip


def _answers(levels: dict[str, int], skip: tuple[str, ...] = ()) -> list[dict[str, Any]]:
    """Every item of each subscale answered with the subscale's level (except ``skip``)."""
    return [
        {"item": item, "value": levels[section]}
        for section, items in SUBSCALE_ITEMS.items()
        for item in items
        if item not in skip
    ]


BASELINE = {
    "organization": 4,
    "community-linkages": 2,
    "self-management-support": 3,
    "decision-support": 5,
    "delivery-system-design": 3,
    "clinical-information-systems": 2,
    "integration": 2,
}
FINAL = {
    "organization": 6,
    "community-linkages": 5,
    "self-management-support": 8,
    "decision-support": 9,
    "delivery-system-design": 8,
    "clinical-information-systems": 7,
    "integration": 6,
}


async def _record(tenant: Tenant, token: str | None = None, **fields: Any) -> dict[str, Any]:
    values = {
        "team": "i-team-0",
        "instrument": "acic",
        "wave": "BASELINE",
        "administeredOn": "2024-01-20",
        "answers": _answers(BASELINE),
        **fields,
    }
    body = data(await tenant.gql(RECORD, {"input": values}, token=token))
    result: dict[str, Any] = body["recordSurveyResponse"]
    return result


async def _program(tenant: Tenant, teams: int = 1) -> None:
    await build_program(tenant, "i", teams=teams)
    await load_acic(tenant)


async def test_the_acic_ships_with_seven_subscales_and_34_items(tenant: Tenant) -> None:
    await load_acic(tenant)
    (acic,) = data(await tenant.gql(INSTRUMENTS))["instruments"]
    assert acic["code"] == "acic"
    version = acic["currentVersion"]
    assert version["version"] == "3.5" and version["itemCount"] == 34
    assert version["minAnsweredShare"] == 0.5
    assert [len(s["items"]) for s in version["sections"]] == [6, 3, 4, 4, 6, 5, 6]
    assert [s["code"] for s in version["sections"]] == list(SUBSCALE_ITEMS)
    assert [[i["code"] for i in s["items"]] for s in version["sections"]] == list(
        SUBSCALE_ITEMS.values()
    )
    assert version["scale"] == {
        "min": 0,
        "max": 11,
        "step": 1,
        "bands": [
            {"min": 0, "max": 2, "label": "Limited support for chronic illness care"},
            {"min": 3, "max": 5, "label": "Basic support for chronic illness care"},
            {"min": 6, "max": 8, "label": "Reasonably good support for chronic illness care"},
            {"min": 9, "max": 11, "label": "Fully developed chronic illness care"},
        ],
    }
    assert acic["versions"] == [{"version": "3.5", "instrument": {"code": "acic"}}]


async def test_responses_are_scored_by_the_server(tenant: Tenant) -> None:
    await _program(tenant)
    recorded = await _record(tenant)
    assert recorded["__typename"] == "RecordSurveyResponseSuccess", recorded
    response = recorded["surveyResponse"]
    assert (response["wave"], response["version"], response["team"]) == (
        "BASELINE",
        {"version": "3.5"},
        {"code": "i-team-0"},
    )
    assert len(response["answers"]) == 34
    assert response["answers"][0] == {"item": "org-leadership", "value": 4}
    scores = response["scores"]
    assert [s["score"] for s in scores["subscales"]] == list(BASELINE.values())
    assert scores["subscales"][3]["band"] == {"label": "Basic support for chronic illness care"}
    assert scores["overall"] == sum(BASELINE.values()) / 7  # mean of subscales: 3.0
    assert scores["overallBand"] == {"label": "Basic support for chronic illness care"}
    assert scores["complete"] is True


SPARSE = ("com-partnerships", "com-health-plans", "org-goals", "org-benefits", "org-incentives")


async def test_the_missing_item_rule(tenant: Tenant) -> None:
    await _program(tenant)
    # 1 of 3 community items and 3 of 6 organization items answered.
    sparse = await _record(
        tenant,
        answers=[
            *_answers(BASELINE, skip=SPARSE),
            {"item": "org-incentives", "value": None},  # null: not answered
        ],
    )
    scores = sparse["surveyResponse"]["scores"]
    by_code = {s["code"]: s for s in scores["subscales"]}
    assert by_code["community-linkages"] == {
        **by_code["community-linkages"],
        "score": None,
        "band": None,
        "answeredItems": 1,
        "totalItems": 3,
    }
    assert by_code["organization"]["score"] == 4  # 3 of 6: half is enough
    assert by_code["organization"]["answeredItems"] == 3
    assert scores["overall"] is None and scores["complete"] is False
    assert scores["overallBand"] is None
    assert len(sparse["surveyResponse"]["answers"]) == 29


async def test_waves_replacement_and_order(tenant: Tenant) -> None:
    await _program(tenant)
    await _record(tenant, wave="FINAL", administeredOn="2024-12-10", answers=_answers(FINAL))
    first = await _record(tenant)
    again = await _record(tenant, answers=_answers({**BASELINE, "organization": 5}))
    assert first["replaced"] is False and again["replaced"] is True
    assert again["surveyResponse"]["id"] == first["surveyResponse"]["id"]
    await _record(tenant, wave="DATED", administeredOn="2024-06-01")
    await _record(tenant, wave="DATED", administeredOn="2024-03-01")
    listed = data(await tenant.gql(RESPONSES, {"code": "i-team-0"}))["team"]["surveyResponses"]
    assert [(r["wave"], r["administeredOn"]) for r in listed] == [
        ("BASELINE", "2024-01-20"),
        ("DATED", "2024-03-01"),
        ("DATED", "2024-06-01"),
        ("FINAL", "2024-12-10"),
    ]
    finals = data(await tenant.gql(RESPONSES, {"code": "i-team-0", "wave": "FINAL"}))
    assert len(finals["team"]["surveyResponses"]) == 1
    none = data(await tenant.gql(RESPONSES, {"code": "i-team-0", "instrument": "mhi"}))
    assert none["team"]["surveyResponses"] == []

    events = await audit_events(tenant, "SurveyResponse")
    assert [e.action for e in events][:3] == [
        "survey_response.record",
        "survey_response.record",
        "survey_response.replace",
    ]
    replaced = events[2]
    assert replaced.before is not None and replaced.before["answers"]["org-leadership"] == 4
    assert replaced.after is not None and replaced.after["answers"]["org-leadership"] == 5


async def test_bad_responses_name_the_field(tenant: Tenant) -> None:
    await _program(tenant)
    cases: list[tuple[dict[str, Any], str, str]] = [
        ({"answers": [{"item": "org-goals", "value": 12}]}, "VALIDATION", "answers"),
        ({"answers": [{"item": "org-goals", "value": 7.5}]}, "VALIDATION", "answers"),
        ({"answers": [{"item": "org-goals", "value": -1}]}, "VALIDATION", "answers"),
        ({"answers": [{"item": "nope", "value": 1}]}, "VALIDATION", "answers"),
        (
            {"answers": [{"item": "org-goals", "value": 1}, {"item": "org-goals", "value": 2}]},
            "VALIDATION",
            "answers",
        ),
        ({"wave": "DATED", "administeredOn": None}, "VALIDATION", "administeredOn"),
        ({"administeredOn": "2999-01-01"}, "VALIDATION", "administeredOn"),
        ({"instrument": "mhi"}, "NOT_FOUND", "instrument"),
        ({"version": "9.9"}, "NOT_FOUND", "version"),
        ({"version": "bad version"}, "VALIDATION", "version"),
        ({"team": "nope"}, "NOT_FOUND", "team"),
    ]
    for fields, code, field in cases:
        result = await _record(tenant, **fields)
        assert (result.get("code"), result.get("field")) == (code, field), (fields, result)
    assert await audit_events(tenant, "SurveyResponse") == []


async def test_who_may_answer_and_read(tenants: TenantFactory) -> None:
    tenant, stranger = await tenants.create(), await tenants.create()
    await _program(tenant, teams=2)
    await _record(tenant, team="i-team-1")
    ehr = await client_token(tenant, ClientKind.EHR_INTEGRATION, teams=("i-team-0",))
    own = await _record(tenant, ehr)
    assert own["__typename"] == "RecordSurveyResponseSuccess", own
    other = await _record(tenant, ehr, team="i-team-1")
    assert (other["__typename"], other["code"]) == ("ForbiddenError", "FORBIDDEN")
    body = await tenant.gql(RESPONSES, {"code": "i-team-1"}, token=ehr)
    assert error_codes(body) == ["FORBIDDEN"]
    dashboard = await client_token(tenant, ClientKind.DASHBOARD)
    body = await tenant.gql(
        RECORD,
        {"input": {"team": "i-team-0", "instrument": "acic", "wave": "FINAL", "answers": []}},
        token=dashboard,
    )
    assert error_codes(body) == ["FORBIDDEN"]
    read = data(await tenant.gql(RESPONSES, {"code": "i-team-1"}, token=dashboard))
    assert len(read["team"]["surveyResponses"]) == 1

    assert data(await stranger.gql(INSTRUMENTS))["instruments"] == []
    assert data(await stranger.gql('{ instrument(code: "acic") { code } }'))["instrument"] is None
    assert (await _record(stranger))["code"] == "NOT_FOUND"
    node = "query N($id: ID!) { node(id: $id) { id } }"
    response_id = own["surveyResponse"]["id"]
    assert data(await stranger.gql(node, {"id": response_id}))["node"] is None
    assert data(await tenant.gql(node, {"id": response_id}))["node"] == {"id": response_id}


ADD_CONCEPT = """
mutation {
  addChangeConcept(input: {collaborative: "d", title: "Assess control"}) {
    ... on AddChangeConceptSuccess { concept { id } }
  }
}
"""
ADD_IDEA = """
mutation Idea($concept: ID!) {
  addChangeIdea(input: {concept: $concept, title: "Tablet at check-in"}) {
    ... on AddChangeIdeaSuccess { idea { id } }
  }
}
"""
RECORD_CYCLE = """
mutation Cycle($input: RecordPdsaCycleInput!) {
  recordPdsaCycle(input: $input) { __typename ... on RecordPdsaCycleSuccess { pdsaCycle { id } } }
}
"""
RECORD_ASSESSMENT = """
mutation Score($input: RecordAssessmentInput!) { recordAssessment(input: $input) { __typename } }
"""

TEAM_DASHBOARD = """
query TeamDashboard($team: String!, $measure: String!) {
  team(code: $team) {
    code name
    measureSeries(measure: $measure) {
      measure { code name }
      points { period value annotations }
      pdsaCycles { period title act changeIdea { title } follows { title } }
    }
    assessments(rater: FACULTY) { period score label }
    selfAssessments: assessments(rater: SELF) { period score label }
    surveyResponses(instrument: "acic") {
      wave administeredOn
      scores { overall overallBand { label } subscales { code title score band { label } } }
    }
  }
}
"""


async def test_one_query_gives_run_chart_with_cycles_trajectory_and_acic(tenant: Tenant) -> None:
    """The issue's "done when": everything a team dashboard shows, from one query."""
    await build_program(tenant, "d")
    await load_acic(tenant)
    team, measure = "d-team-0", "d-control"
    await submit_points(
        tenant,
        team,
        measure,
        {f"2024-{m:02d}": (40 + 4 * m, 100) for m in range(1, 10)},
    )
    concept = data(await tenant.gql(ADD_CONCEPT))["addChangeConcept"]["concept"]["id"]
    idea = data(await tenant.gql(ADD_IDEA, {"concept": concept}))["addChangeIdea"]["idea"]["id"]
    first = data(
        await tenant.gql(
            RECORD_CYCLE,
            {
                "input": {
                    "team": team,
                    "title": "Tablet, one clinician",
                    "changeIdea": idea,
                    "startDate": "2024-03-05",
                    "act": "ADAPT",
                    "measures": [measure],
                }
            },
        )
    )["recordPdsaCycle"]["pdsaCycle"]["id"]
    await tenant.gql(
        RECORD_CYCLE,
        {
            "input": {
                "team": team,
                "title": "Tablet, whole clinic",
                "changeIdea": idea,
                "follows": first,
                "startDate": "2024-05-06",
                "act": "ADOPT",
                "measures": [measure],
            }
        },
    )
    for month, score in ((1, 1.0), (3, 2.0), (5, 3.0), (7, 3.5), (9, 4.0)):
        for rater, value in (("FACULTY", score), ("SELF", min(5.0, score + 0.5))):
            body = await tenant.gql(
                RECORD_ASSESSMENT,
                {
                    "input": {
                        "team": team,
                        "period": f"2024-{month:02d}",
                        "rater": rater,
                        "score": value,
                    }
                },
            )
            assert data(body)["recordAssessment"]["__typename"] == "RecordAssessmentSuccess"
    await _record(tenant, team=team)
    await _record(
        tenant, team=team, wave="FINAL", administeredOn="2024-09-25", answers=_answers(FINAL)
    )

    found = data(await tenant.gql(TEAM_DASHBOARD, {"team": team, "measure": measure}))["team"]
    series = found["measureSeries"]
    assert len(series["points"]) == 9
    assert [(c["period"], c["title"], c["act"]) for c in series["pdsaCycles"]] == [
        ("2024-03", "Tablet, one clinician", "ADAPT"),
        ("2024-05", "Tablet, whole clinic", "ADOPT"),
    ]
    assert series["pdsaCycles"][1]["follows"] == {"title": "Tablet, one clinician"}
    assert series["pdsaCycles"][0]["changeIdea"] == {"title": "Tablet at check-in"}
    assert [(a["period"], a["score"]) for a in found["assessments"]] == [
        ("2024-01", 1.0),
        ("2024-03", 2.0),
        ("2024-05", 3.0),
        ("2024-07", 3.5),
        ("2024-09", 4.0),
    ]
    assert found["assessments"][-1]["label"] == "Significant improvement"
    assert [a["score"] for a in found["selfAssessments"]][-1] == 4.5
    baseline, final = found["surveyResponses"]
    assert (baseline["wave"], final["wave"]) == ("BASELINE", "FINAL")
    change = {
        before["code"]: after["score"] - before["score"]
        for before, after in zip(
            baseline["scores"]["subscales"], final["scores"]["subscales"], strict=True
        )
    }
    assert change == {code: FINAL[code] - BASELINE[code] for code in BASELINE}
    assert baseline["scores"]["overallBand"]["label"].startswith("Basic support")
    assert final["scores"]["overallBand"]["label"].startswith("Reasonably good support")
