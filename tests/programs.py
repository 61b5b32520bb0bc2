"""Builds a small program through the public mutations, for tests that need a realistic graph."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from tests.factories import Tenant

BUILD = """
mutation Build(
  $collaborative: CreateCollaborativeInput!
  $organization: CreateOrganizationInput!
  $measure: DefineMeasureInput!
) {
  createCollaborative(input: $collaborative) {
    __typename ... on CreateCollaborativeSuccess { collaborative { id } }
  }
  createOrganization(input: $organization) {
    __typename ... on CreateOrganizationSuccess { organization { id } }
  }
  defineMeasure(input: $measure) {
    __typename ... on DefineMeasureSuccess { measure { id versions { id } } }
  }
}
"""

ENROLL = """
mutation Enroll($team: EnrollTeamInput!, $add: AddMeasureToCollaborativeInput!,
                $resource: CreateResourceInput!) {
  enrollTeam(input: $team) { __typename ... on EnrollTeamSuccess { team { id } } }
  addMeasureToCollaborative(input: $add) { __typename }
  createResource(input: $resource) {
    __typename ... on CreateResourceSuccess { resource { id } }
  }
}
"""


@dataclass
class Program:
    """Global ids of what :func:`build_program` made, by type name."""

    code: str
    ids: dict[str, str] = field(default_factory=dict)
    team_codes: list[str] = field(default_factory=list)


def _data(body: dict[str, Any]) -> dict[str, Any]:
    assert "errors" not in body, body
    data: dict[str, Any] = body["data"]
    return data


async def build_program(tenant: Tenant, code: str = "prog", *, teams: int = 1) -> Program:
    """A collaborative with one measure in its set, ``teams`` enrolled teams and one resource."""
    built = _data(
        await tenant.gql(
            BUILD,
            {
                "collaborative": {
                    "code": code,
                    "name": f"Program {code}",
                    "topic": "Asthma",
                    "phases": [{"kind": "PREWORK", "seq": 1}],
                },
                "organization": {"code": f"{code}-org", "name": "Riverside Clinic", "state": "MO"},
                "measure": {
                    "code": f"{code}-control",
                    "name": "Asthma well controlled",
                    "type": "OUTCOME",
                    "scoring": "PROPORTION",
                    "numerator": "Patients with ACT >= 20",
                    "denominator": "Patients 5-17 with persistent asthma",
                    "multiplier": 100,
                    "improvementDirection": "INCREASE",
                },
            },
        )
    )
    program = Program(code=code)
    program.ids["Collaborative"] = built["createCollaborative"]["collaborative"]["id"]
    program.ids["Organization"] = built["createOrganization"]["organization"]["id"]
    program.ids["Measure"] = built["defineMeasure"]["measure"]["id"]
    program.ids["MeasureDefinition"] = built["defineMeasure"]["measure"]["versions"][0]["id"]
    for number in range(teams):
        team_code = f"{code}-team-{number}"
        enrolled = _data(
            await tenant.gql(
                ENROLL,
                {
                    "team": {
                        "collaborative": code,
                        "organization": f"{code}-org",
                        "code": team_code,
                        "name": f"Team {number}",
                        "members": [
                            {
                                "name": f"Lead {number}",
                                "email": f"lead{number}@{code}.example.org",
                                "role": "DAY_TO_DAY_LEAD",
                            }
                        ],
                    },
                    "add": {"collaborative": code, "measure": f"{code}-control", "goal": 80},
                    "resource": {
                        "kind": "TOOL",
                        "title": f"Asthma action plan template {number}",
                        "collaboratives": [code],
                        "careModelDomains": ["SELF_MANAGEMENT_SUPPORT"],
                    },
                },
            )
        )
        program.team_codes.append(team_code)
        program.ids.setdefault("Team", enrolled["enrollTeam"]["team"]["id"])
        program.ids.setdefault("Resource", enrolled["createResource"]["resource"]["id"])
    return program
