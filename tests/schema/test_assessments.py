"""IHI Assessment Scale: recording (and replacing) scores, labels and validation, the team's
trajectory, the collaborative's monthly summary; permissions, tenancy, audit."""

from __future__ import annotations

from typing import Any

from db.enums import ClientKind
from tests.content import audit_events, client_token, data, error_codes
from tests.factories import Tenant, TenantFactory
from tests.programs import build_program

RECORD = """
mutation Record($input: RecordAssessmentInput!) {
  recordAssessment(input: $input) {
    __typename
    ... on RecordAssessmentSuccess {
      replaced
      assessment { id period rater score label justification recordedBy team { code } }
    }
    ... on Error { code message }
    ... on ValidationError { field }
    ... on NotFoundError { field }
  }
}
"""

TRAJECTORY = """
query Trajectory($code: String!, $rater: AssessmentRater, $from: Period, $to: Period) {
  team(code: $code) { assessments(rater: $rater, from: $from, to: $to) {
    period rater score label } }
}
"""

SUMMARY = """
query Summary($code: String!, $period: Period!, $rater: AssessmentRater) {
  collaborative(code: $code) {
    assessmentSummary(period: $period, rater: $rater) {
      period rater teamsAssessed meanScore medianScore teamsAtFourOrAbove shareAtFourOrAbove
      distribution { score label teams }
      gaps { team { code } facultyScore selfScore gap }
      meanGap meanAbsoluteGap
    }
  }
}
"""

SCALE = "{ assessmentScale { score label } }"


async def _record(tenant: Tenant, token: str | None = None, **fields: Any) -> dict[str, Any]:
    values = {"team": "a-team-0", "period": "2024-05", "rater": "FACULTY", "score": 3.0, **fields}
    body = data(await tenant.gql(RECORD, {"input": values}, token=token))
    result: dict[str, Any] = body["recordAssessment"]
    return result


async def test_scores_carry_their_level_and_a_rerecord_replaces(tenant: Tenant) -> None:
    await build_program(tenant, "a")
    first = await _record(tenant, score=2.5, justification="Tests under way.")
    assert first["__typename"] == "RecordAssessmentSuccess", first
    assert first["replaced"] is False
    assessment = first["assessment"]
    assert assessment["label"] == "Changes tested, but no improvement"
    assert assessment["team"] == {"code": "a-team-0"}
    assert assessment["recordedBy"] == tenant.admin_id

    again = await _record(tenant, score=3.0, justification="Process measure moving.")
    assert again["replaced"] is True
    assert again["assessment"]["id"] == assessment["id"]
    assert again["assessment"]["label"] == "Modest improvement"
    await _record(tenant, rater="SELF", score=3.5)
    await _record(tenant, period="2024-06", score=4.0)
    await _record(tenant, period="2024-04", score=0.5)

    trajectory = data(await tenant.gql(TRAJECTORY, {"code": "a-team-0"}))["team"]["assessments"]
    assert [(a["period"], a["rater"], a["score"], a["label"]) for a in trajectory] == [
        ("2024-04", "FACULTY", 0.5, "Intent to participate"),
        ("2024-05", "FACULTY", 3.0, "Modest improvement"),
        ("2024-05", "SELF", 3.5, "Improvement"),
        ("2024-06", "FACULTY", 4.0, "Significant improvement"),
    ]
    faculty_may = data(
        await tenant.gql(
            TRAJECTORY, {"code": "a-team-0", "rater": "FACULTY", "from": "2024-05", "to": "2024-05"}
        )
    )["team"]["assessments"]
    assert [a["score"] for a in faculty_may] == [3.0]

    events = await audit_events(tenant, "Assessment")
    assert [e.action for e in events][:2] == ["assessment.record", "assessment.replace"]
    replace = events[1]
    assert replace.before is not None and replace.before["score"] == 2.5
    assert replace.after is not None and replace.after["score"] == 3.0
    assert replace.after["justification"] == "Process measure moving."

    scale = data(await tenant.gql(SCALE))["assessmentScale"]
    assert [level["score"] for level in scale] == [x / 2 for x in range(1, 11)]
    assert scale[-1]["label"] == "Outstanding sustainable results"


async def test_scores_off_the_scale_and_other_bad_input_are_refused(tenant: Tenant) -> None:
    await build_program(tenant, "a")
    for score in (0.25, 5.5, 0.0, 1.2, -1.0):
        refused = await _record(tenant, score=score)
        assert (refused["__typename"], refused["code"], refused["field"]) == (
            "ValidationError",
            "VALIDATION",
            "score",
        ), score
    future = await _record(tenant, period="2999-01")
    assert (future["code"], future["field"]) == ("VALIDATION", "period")
    unknown = await _record(tenant, team="nope")
    assert (unknown["code"], unknown["field"]) == ("NOT_FOUND", "team")
    wordy = await _record(tenant, justification="x" * 5_001)
    assert (wordy["code"], wordy["field"]) == ("VALIDATION", "justification")
    body = await tenant.gql(
        RECORD,
        {"input": {"team": "a-team-0", "period": "2024-13", "rater": "SELF", "score": 2.0}},
    )
    assert error_codes(body) == ["VALIDATION"]
    assert await audit_events(tenant, "Assessment") == []


async def test_the_summary_shows_distribution_headline_and_gaps(tenant: Tenant) -> None:
    await build_program(tenant, "a", teams=4)
    await build_program(tenant, "b")
    for number, faculty, self_score in (
        (0, 4.0, 4.5),
        (1, 3.5, 3.5),
        (2, 4.5, 4.0),
        (3, 2.0, None),
    ):
        await _record(tenant, team=f"a-team-{number}", score=faculty)
        if self_score is not None:
            await _record(tenant, team=f"a-team-{number}", rater="SELF", score=self_score)
    await _record(tenant, team="a-team-0", period="2024-04", score=1.0)  # another month
    await _record(tenant, team="b-team-0", score=5.0)  # another collaborative

    summary = data(await tenant.gql(SUMMARY, {"code": "a", "period": "2024-05"}))
    summary = summary["collaborative"]["assessmentSummary"]
    assert summary["rater"] == "FACULTY"
    assert summary["teamsAssessed"] == 4
    assert summary["teamsAtFourOrAbove"] == 2
    assert summary["shareAtFourOrAbove"] == 0.5
    assert summary["meanScore"] == 3.5 and summary["medianScore"] == 3.75
    counts = {d["score"]: d["teams"] for d in summary["distribution"]}
    assert len(counts) == 10
    assert counts == {**dict.fromkeys(counts, 0), 2.0: 1, 3.5: 1, 4.0: 1, 4.5: 1}
    assert [(g["team"]["code"], g["gap"]) for g in summary["gaps"]] == [
        ("a-team-0", 0.5),
        ("a-team-1", 0.0),
        ("a-team-2", -0.5),
    ]
    assert summary["meanGap"] == 0.0
    assert abs(summary["meanAbsoluteGap"] - 1 / 3) < 1e-9

    by_self = data(await tenant.gql(SUMMARY, {"code": "a", "period": "2024-05", "rater": "SELF"}))
    by_self = by_self["collaborative"]["assessmentSummary"]
    assert by_self["teamsAssessed"] == 3 and by_self["teamsAtFourOrAbove"] == 2
    empty = data(await tenant.gql(SUMMARY, {"code": "a", "period": "2023-01"}))
    empty = empty["collaborative"]["assessmentSummary"]
    assert empty["teamsAssessed"] == 0 and empty["shareAtFourOrAbove"] is None
    assert empty["gaps"] == [] and empty["meanGap"] is None


async def test_who_may_score_and_read(tenant: Tenant) -> None:
    await build_program(tenant, "a", teams=2)
    await _record(tenant, team="a-team-1", score=3.0)
    ehr = await client_token(tenant, ClientKind.EHR_INTEGRATION, teams=("a-team-0",))

    own_self = await _record(tenant, ehr, rater="SELF", score=3.5)
    assert own_self["__typename"] == "RecordAssessmentSuccess", own_self
    own_faculty = await _record(tenant, ehr, rater="FACULTY", score=5.0)
    assert (own_faculty["__typename"], own_faculty["code"]) == ("ForbiddenError", "FORBIDDEN")
    other_self = await _record(tenant, ehr, team="a-team-1", rater="SELF", score=3.5)
    assert other_self["__typename"] == "ForbiddenError"

    mine = data(await tenant.gql(TRAJECTORY, {"code": "a-team-0"}, token=ehr))
    assert [a["rater"] for a in mine["team"]["assessments"]] == ["SELF"]
    body = await tenant.gql(TRAJECTORY, {"code": "a-team-1"}, token=ehr)
    assert error_codes(body) == ["FORBIDDEN"]
    body = await tenant.gql(SUMMARY, {"code": "a", "period": "2024-05"}, token=ehr)
    assert error_codes(body) == ["FORBIDDEN"]

    dashboard = await client_token(tenant, ClientKind.DASHBOARD)
    body = await tenant.gql(
        RECORD,
        {"input": {"team": "a-team-0", "period": "2024-05", "rater": "SELF", "score": 2.0}},
        token=dashboard,
    )
    assert error_codes(body) == ["FORBIDDEN"]
    summary = data(await tenant.gql(SUMMARY, {"code": "a", "period": "2024-05"}, token=dashboard))
    assert summary["collaborative"]["assessmentSummary"]["teamsAssessed"] == 1

    events = await audit_events(tenant, "Assessment")
    ehr_events = [e for e in events if e.actor_kind == "EHR_INTEGRATION"]
    assert len(ehr_events) == 1 and ehr_events[0].after is not None
    assert ehr_events[0].after["rater"] == "SELF"


async def test_other_sponsors_cannot_score_or_read(tenants: TenantFactory) -> None:
    owner, stranger = await tenants.create(), await tenants.create()
    await build_program(owner, "a")
    await _record(owner, score=3.0)
    refused = await _record(stranger, score=3.0)
    assert (refused["code"], refused["field"]) == ("NOT_FOUND", "team")
    assert data(await stranger.gql(TRAJECTORY, {"code": "a-team-0"}))["team"] is None
    assert (
        data(await stranger.gql(SUMMARY, {"code": "a", "period": "2024-05"}))["collaborative"]
        is None
    )
