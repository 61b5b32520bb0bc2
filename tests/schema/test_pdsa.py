"""PDSA cycles: record and update, chains, links to change ideas and measures, their marks on
measure series; validation, permissions (faculty, team-bound EHR clients, dashboards), tenancy,
audit, and batching."""

from __future__ import annotations

from typing import Any

from starlette.applications import Starlette

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
from tests.schema.test_no_n_plus_one import counted_statements

ADD_CONCEPT = """
mutation Add($collaborative: String!) {
  addChangeConcept(input: {collaborative: $collaborative, title: "Self-management"}) {
    ... on AddChangeConceptSuccess { concept { id } }
  }
}
"""
ADD_IDEA = """
mutation Add($concept: ID!) {
  addChangeIdea(input: {concept: $concept, title: "Action plans"}) {
    ... on AddChangeIdeaSuccess { idea { id } }
  }
}
"""

CYCLE_FIELDS = """
  id title aim prediction plan startDate endDate whatHappened study act actNotes period status
  updatedBy
  changeIdea { title }
  follows { title }
  followedBy { title }
  measures { code }
  team { code }
"""

RECORD = f"""
mutation Record($input: RecordPdsaCycleInput!) {{
  recordPdsaCycle(input: $input) {{
    __typename
    ... on RecordPdsaCycleSuccess {{ pdsaCycle {{ {CYCLE_FIELDS} }} }}
    ... on Error {{ code message }}
    ... on ValidationError {{ field }}
    ... on NotFoundError {{ field }}
  }}
}}
"""

UPDATE = f"""
mutation Update($input: UpdatePdsaCycleInput!) {{
  updatePdsaCycle(input: $input) {{
    __typename
    ... on UpdatePdsaCycleSuccess {{ pdsaCycle {{ {CYCLE_FIELDS} }} }}
    ... on Error {{ code message }}
    ... on ValidationError {{ field }}
    ... on NotFoundError {{ field }}
  }}
}}
"""

TEAM_CYCLES = """
query Cycles($code: String!, $measure: String, $from: Period) {
  team(code: $code) { pdsaCycles(measure: $measure, from: $from) { title act status period } }
}
"""

SERIES = """
query Series($code: String!, $measure: String!, $from: Period, $to: Period) {
  team(code: $code) {
    measureSeries(measure: $measure, from: $from, to: $to) {
      points { period value }
      pdsaCycles { title period act }
    }
  }
}
"""

NODE = "query N($id: ID!) { node(id: $id) { __typename ... on PdsaCycle { title } } }"


async def _idea(tenant: Tenant, collaborative: str) -> str:
    concept = data(await tenant.gql(ADD_CONCEPT, {"collaborative": collaborative}))
    concept_id = concept["addChangeConcept"]["concept"]["id"]
    idea = data(await tenant.gql(ADD_IDEA, {"concept": concept_id}))
    idea_id: str = idea["addChangeIdea"]["idea"]["id"]
    return idea_id


async def _record(tenant: Tenant, token: str | None = None, **fields: Any) -> dict[str, Any]:
    values = {"title": "Test", "startDate": "2024-03-04", **fields}
    body = data(await tenant.gql(RECORD, {"input": values}, token=token))
    result: dict[str, Any] = body["recordPdsaCycle"]
    return result


async def _update(tenant: Tenant, token: str | None = None, **fields: Any) -> dict[str, Any]:
    body = data(await tenant.gql(UPDATE, {"input": fields}, token=token))
    result: dict[str, Any] = body["updatePdsaCycle"]
    return result


async def test_a_cycle_is_planned_run_studied_and_acted_on(tenant: Tenant) -> None:
    await build_program(tenant, "p")
    idea = await _idea(tenant, "p")
    planned = await _record(
        tenant,
        team="p-team-0",
        title="Action plan at every visit, one clinician",
        changeIdea=idea,
        aim="Can one clinician give a plan at every visit for a week?",
        prediction="8 of 10 families leave with a plan.",
        plan="Dr. A, Monday to Friday; the MA keeps a tally.",
        startDate="2099-03-04",
        endDate="2099-03-08",
        measures=["p-control", "p-control"],
    )
    assert planned["__typename"] == "RecordPdsaCycleSuccess", planned
    cycle = planned["pdsaCycle"]
    assert cycle["status"] == "PLANNED" and cycle["act"] is None
    assert cycle["period"] == "2099-03"
    assert cycle["changeIdea"] == {"title": "Action plans"}
    assert cycle["measures"] == [{"code": "p-control"}]
    assert cycle["team"] == {"code": "p-team-0"}
    assert cycle["updatedBy"] == tenant.admin_id

    done = await _update(
        tenant,
        id=cycle["id"],
        startDate="2024-03-04",
        endDate="2024-03-08",
        whatHappened="9 of 11 families got a plan.",
        study="Better than predicted.",
        act="ADOPT",
        actNotes="Spread to all clinicians.",
    )
    assert done["__typename"] == "UpdatePdsaCycleSuccess", done
    assert done["pdsaCycle"]["status"] == "COMPLETED"
    assert done["pdsaCycle"]["act"] == "ADOPT"
    assert done["pdsaCycle"]["aim"].startswith("Can one clinician")  # untouched
    assert done["pdsaCycle"]["period"] == "2024-03"

    follower = await _record(
        tenant, team="p-team-0", title="All clinicians", follows=cycle["id"], startDate="2024-04-01"
    )
    assert follower["pdsaCycle"]["follows"] == {
        "title": "Action plan at every visit, one clinician"
    }
    assert follower["pdsaCycle"]["status"] == "IN_PROGRESS"  # started, not decided
    listed = data(await tenant.gql(TEAM_CYCLES, {"code": "p-team-0"}))["team"]["pdsaCycles"]
    assert [(c["title"], c["act"]) for c in listed] == [
        ("Action plan at every visit, one clinician", "ADOPT"),
        ("All clinicians", None),
    ]
    by_measure = data(await tenant.gql(TEAM_CYCLES, {"code": "p-team-0", "measure": "p-control"}))
    assert [c["title"] for c in by_measure["team"]["pdsaCycles"]] == [
        "Action plan at every visit, one clinician"
    ]
    later = data(await tenant.gql(TEAM_CYCLES, {"code": "p-team-0", "from": "2024-04"}))
    assert [c["title"] for c in later["team"]["pdsaCycles"]] == ["All clinicians"]
    node = data(await tenant.gql(NODE, {"id": follower["pdsaCycle"]["id"]}))["node"]
    assert node == {"__typename": "PdsaCycle", "title": "All clinicians"}

    events = await audit_events(tenant, "PdsaCycle")
    assert [e.action for e in events] == [
        "pdsa_cycle.create",
        "pdsa_cycle.update",
        "pdsa_cycle.create",
    ]
    update = events[1]
    assert update.before is not None and update.before["act"] is None
    assert update.after is not None and update.after["act"] == "ADOPT"
    assert len(update.after["measures"]) == 1
    assert update.actor_client_id == tenant.admin_id


async def test_cycles_mark_the_series_of_their_measures(tenant: Tenant) -> None:
    await build_program(tenant, "s", teams=2)
    await submit_points(
        tenant,
        "s-team-0",
        "s-control",
        {f"2024-0{m}": (m * 10, 100) for m in range(1, 7)},
    )
    for title, start, measures in (
        ("Before the data", "2023-12-10", ["s-control"]),
        ("Tablet screening", "2024-03-04", ["s-control"]),
        ("Unlinked", "2024-03-10", []),
        ("Reminder calls", "2024-05-20", ["s-control"]),
        ("After the data", "2024-08-01", ["s-control"]),
    ):
        recorded = await _record(
            tenant, team="s-team-0", title=title, startDate=start, measures=measures
        )
        assert recorded["__typename"] == "RecordPdsaCycleSuccess", recorded
    await _record(tenant, team="s-team-1", title="Other team", measures=["s-control"])

    series = data(await tenant.gql(SERIES, {"code": "s-team-0", "measure": "s-control"}))
    marks = series["team"]["measureSeries"]["pdsaCycles"]
    assert [(m["title"], m["period"]) for m in marks] == [
        ("Tablet screening", "2024-03"),
        ("Reminder calls", "2024-05"),
    ]
    cut = data(
        await tenant.gql(SERIES, {"code": "s-team-0", "measure": "s-control", "from": "2024-04"})
    )
    assert [m["title"] for m in cut["team"]["measureSeries"]["pdsaCycles"]] == ["Reminder calls"]
    empty = data(await tenant.gql(SERIES, {"code": "s-team-1", "measure": "s-control"}))
    assert empty["team"]["measureSeries"]["pdsaCycles"] == []  # no points, no chart


async def test_invalid_cycles_are_refused_with_the_field(tenant: Tenant) -> None:
    await build_program(tenant, "v", teams=2)
    await build_program(tenant, "w")
    other_idea = await _idea(tenant, "w")
    first = (await _record(tenant, team="v-team-0"))["pdsaCycle"]
    second = (await _record(tenant, team="v-team-0", follows=first["id"]))["pdsaCycle"]
    other_team = (await _record(tenant, team="v-team-1"))["pdsaCycle"]

    cases: list[tuple[dict[str, Any], str, str]] = [
        ({"team": "nope"}, "NOT_FOUND", "team"),
        ({"team": "v-team-0", "title": " "}, "VALIDATION", "title"),
        ({"team": "v-team-0", "aim": "x" * 20_001}, "VALIDATION", "aim"),
        ({"team": "v-team-0", "endDate": "2024-03-01"}, "VALIDATION", "endDate"),
        ({"team": "v-team-0", "measures": ["nope"]}, "NOT_FOUND", "measures"),
        ({"team": "v-team-0", "changeIdea": other_idea}, "VALIDATION", "changeIdea"),
        ({"team": "v-team-0", "changeIdea": first["id"]}, "NOT_FOUND", "changeIdea"),
        ({"team": "v-team-0", "follows": other_team["id"]}, "VALIDATION", "follows"),
        ({"team": "v-team-0", "plan": "a\x00b"}, "VALIDATION", "plan"),
    ]
    for fields, code, field in cases:
        result = await _record(tenant, **fields)
        assert (result.get("code"), result.get("field")) == (code, field), (fields, result)

    loop = await _update(tenant, id=first["id"], follows=second["id"])
    assert (loop["code"], loop["field"]) == ("VALIDATION", "follows")
    itself = await _update(tenant, id=first["id"], follows=first["id"])
    assert (itself["code"], itself["field"]) == ("VALIDATION", "follows")
    missing = await _update(tenant, id="UGRzYUN5Y2xlOjE", title="x")
    assert missing["code"] == "NOT_FOUND"


async def test_team_bound_clients_write_for_their_own_teams_only(tenant: Tenant) -> None:
    await build_program(tenant, "e", teams=2)
    theirs = (await _record(tenant, team="e-team-1", title="Theirs"))["pdsaCycle"]
    ehr = await client_token(tenant, ClientKind.EHR_INTEGRATION, teams=("e-team-0",))

    own = await _record(tenant, ehr, team="e-team-0", title="Ours")
    assert own["__typename"] == "RecordPdsaCycleSuccess", own
    updated = await _update(tenant, ehr, id=own["pdsaCycle"]["id"], act="ADAPT")
    assert updated["pdsaCycle"]["act"] == "ADAPT"

    other = await _record(tenant, ehr, team="e-team-1", title="Not ours")
    assert (other["__typename"], other["code"]) == ("ForbiddenError", "FORBIDDEN")
    other_update = await _update(tenant, ehr, id=theirs["id"], act="ABANDON")
    assert other_update["__typename"] == "ForbiddenError"
    body = await tenant.gql(TEAM_CYCLES, {"code": "e-team-1"}, token=ehr)
    assert error_codes(body) == ["FORBIDDEN"]
    assert data(await tenant.gql(NODE, {"id": theirs["id"]}, token=ehr))["node"] is None
    mine = data(await tenant.gql(TEAM_CYCLES, {"code": "e-team-0"}, token=ehr))
    assert [c["title"] for c in mine["team"]["pdsaCycles"]] == ["Ours"]

    unbound = await client_token(tenant, ClientKind.EHR_INTEGRATION)
    nothing = await _record(tenant, unbound, team="e-team-0")
    assert nothing["__typename"] == "ForbiddenError"
    dashboard = await client_token(tenant, ClientKind.DASHBOARD)
    body = await tenant.gql(
        RECORD,
        {"input": {"team": "e-team-0", "title": "x", "startDate": "2024-01-01"}},
        token=dashboard,
    )
    assert error_codes(body) == ["FORBIDDEN"]
    readers = data(await tenant.gql(TEAM_CYCLES, {"code": "e-team-1"}, token=dashboard))
    assert [c["title"] for c in readers["team"]["pdsaCycles"]] == ["Theirs"]
    partner = await client_token(tenant, ClientKind.PARTNER)
    body = await tenant.gql(TEAM_CYCLES, {"code": "e-team-1"}, token=partner)
    assert error_codes(body) == ["FORBIDDEN"]


async def test_other_sponsors_see_nothing(tenants: TenantFactory) -> None:
    owner, stranger = await tenants.create(), await tenants.create()
    await build_program(owner, "t")
    cycle = (await _record(owner, team="t-team-0"))["pdsaCycle"]
    assert (await _record(stranger, team="t-team-0"))["code"] == "NOT_FOUND"
    assert (await _update(stranger, id=cycle["id"], act="ADOPT"))["code"] == "NOT_FOUND"
    assert data(await stranger.gql(NODE, {"id": cycle["id"]}))["node"] is None
    assert data(await stranger.gql(TEAM_CYCLES, {"code": "t-team-0"}))["team"] is None


DASHBOARD = """
{
  collaboratives(first: 10) {
    nodes {
      changePackage { concepts { title ideas { title } } }
      assessmentSummary(period: "2024-03") { teamsAssessed gaps { team { code } } }
      teams(first: 10) {
        nodes {
          code
          pdsaCycles { title follows { title } followedBy { title } changeIdea { title }
                       measures { code } }
          series { measure { code } pdsaCycles { title measures { code } } }
          assessments { score label team { code } }
          surveyResponses { wave instrument { code } version { version }
                            scores { overall subscales { score } } answers { item } }
        }
      }
    }
  }
}
"""


SCORE = """
mutation S($input: RecordAssessmentInput!) { recordAssessment(input: $input) { __typename } }
"""
ANSWER = """
mutation A($input: RecordSurveyResponseInput!) {
  recordSurveyResponse(input: $input) { __typename }
}
"""


async def _dashboard_statements(app: Starlette, tenant: Tenant) -> int:
    await tenant.token()
    with counted_statements(app) as statements:
        body = await tenant.gql(DASHBOARD)
    assert "errors" not in body, body
    # Background work (webhook deliveries after the writes above) may run meanwhile.
    return len([statement for statement in statements if "webhook" not in statement])


async def _fill(tenant: Tenant, code: str, teams: int) -> None:
    await build_program(tenant, code, teams=teams)
    if code in ("one", "a"):
        await load_acic(tenant)
    idea = await _idea(tenant, code)
    for number in range(teams):
        team = f"{code}-team-{number}"
        await submit_points(tenant, team, f"{code}-control", {"2024-03": (5, 10)})
        first = await _record(
            tenant, team=team, changeIdea=idea, measures=[f"{code}-control"], act="ADAPT"
        )
        await _record(
            tenant, team=team, follows=first["pdsaCycle"]["id"], measures=[f"{code}-control"]
        )
        for rater in ("FACULTY", "SELF"):
            score = {"team": team, "period": "2024-03", "rater": rater, "score": 3.0}
            body = await tenant.gql(SCORE, {"input": score})
            assert data(body)["recordAssessment"]["__typename"] == "RecordAssessmentSuccess"
        answers = [{"item": "org-goals", "value": 5}, {"item": "cis-registry", "value": 7}]
        response = {"team": team, "instrument": "acic", "wave": "BASELINE", "answers": answers}
        body = await tenant.gql(ANSWER, {"input": response})
        assert data(body)["recordSurveyResponse"]["__typename"] == "RecordSurveyResponseSuccess"


async def test_cycles_on_every_series_cost_the_same_statements(
    app: Starlette, tenants: TenantFactory
) -> None:
    small, large = await tenants.create(), await tenants.create()
    await _fill(small, "one", 1)
    for code in ("a", "b"):
        await _fill(large, code, 3)
    assert await _dashboard_statements(app, small) == await _dashboard_statements(app, large)
