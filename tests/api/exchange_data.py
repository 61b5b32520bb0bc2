"""A program for the exchange tests (FHIR, bulk export, CSV import), built through GraphQL.

Collaborative ``dm`` has the measures of the FHIR example (``dm-a1c-lt-8``, a proportion), a
MEAN (``los``) and a BALANCING rate per 1,000 (``falls``); organization ``team-042`` (the
example's reporter) has team ``t42`` in it. Organization ``org-b`` has team ``tb`` in ``dm``
and team ``tb2`` in collaborative ``dm2``, which also has ``dm-a1c-lt-8`` (an ambiguous
reporter). Measure ``other`` is in no measure set.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from tests.factories import Tenant

EXAMPLE = Path(__file__).with_name("measurereport-summary.json")
"""A copy of shared/examples/measurereport-summary.json, so the repository tests on its own."""
PROPORTION = "dm-a1c-lt-8"
MEAN = "los"
BALANCING = "falls"
TEAM = "t42"
ORGANIZATION = "team-042"
TEAM_B = "tb"
TEAM_B2 = "tb2"
CANONICAL_BASE = "https://sponsor.example.org/fhir/Measure"

SETUP = """
mutation Setup(
  $dm: CreateCollaborativeInput!, $dm2: CreateCollaborativeInput!,
  $o1: CreateOrganizationInput!, $o2: CreateOrganizationInput!,
  $m1: DefineMeasureInput!, $m2: DefineMeasureInput!, $m3: DefineMeasureInput!,
  $m4: DefineMeasureInput!
) {
  dm: createCollaborative(input: $dm) { __typename }
  dm2: createCollaborative(input: $dm2) { __typename }
  o1: createOrganization(input: $o1) { __typename }
  o2: createOrganization(input: $o2) { __typename }
  m1: defineMeasure(input: $m1) { __typename }
  m2: defineMeasure(input: $m2) { __typename }
  m3: defineMeasure(input: $m3) { __typename }
  m4: defineMeasure(input: $m4) { __typename }
}
"""

ENROLL = """
mutation Enroll(
  $a1: AddMeasureToCollaborativeInput!, $a2: AddMeasureToCollaborativeInput!,
  $a3: AddMeasureToCollaborativeInput!, $a4: AddMeasureToCollaborativeInput!,
  $t1: EnrollTeamInput!, $t2: EnrollTeamInput!, $t3: EnrollTeamInput!
) {
  a1: addMeasureToCollaborative(input: $a1) { __typename }
  a2: addMeasureToCollaborative(input: $a2) { __typename }
  a3: addMeasureToCollaborative(input: $a3) { __typename }
  a4: addMeasureToCollaborative(input: $a4) { __typename }
  t1: enrollTeam(input: $t1) { __typename }
  t2: enrollTeam(input: $t2) { __typename }
  t3: enrollTeam(input: $t3) { __typename }
}
"""

SUBMIT = """
mutation Submit($input: SubmitMeasureDataInput!) {
  submitMeasureData(input: $input) {
    __typename
    ... on MeasureDataReceipt { status created updated unchanged rejected
                                conflicts { index code field message } }
    ... on Error { code message }
  }
}
"""

POINTS = """
query Points($filter: DataPointFilter, $first: Int, $after: String) {
  dataPoints(filter: $filter, first: $first, after: $after) {
    pageInfo { hasNextPage endCursor }
    edges { node {
      team { code } measure { code } measureVersion period stratum numerator denominator value
      annotation deleted updatedBy
    } }
  }
}
"""


def _measure(code: str, scoring: str, kind: str = "OUTCOME", **extra: Any) -> dict[str, Any]:
    values: dict[str, Any] = {
        "code": code,
        "name": f"Measure {code}",
        "type": kind,
        "scoring": scoring,
        "improvementDirection": "INCREASE",
    }
    if scoring in ("PROPORTION", "RATE", "RATIO"):
        values.update(numerator="Patients with the outcome", denominator="Eligible patients")
    values.update(extra)
    return values


def _ok(body: dict[str, Any]) -> None:
    assert "errors" not in body, body
    for value in body["data"].values():
        assert value["__typename"].endswith("Success"), body


async def setup_exchange(tenant: Tenant) -> None:
    """Build the program of the module docstring in ``tenant``."""
    _ok(
        await tenant.gql(
            SETUP,
            {
                "dm": {"code": "dm", "name": "Diabetes", "topic": "Diabetes"},
                "dm2": {"code": "dm2", "name": "Diabetes 2", "topic": "Diabetes"},
                "o1": {"code": ORGANIZATION, "name": "Clinic 42"},
                "o2": {"code": "org-b", "name": "Clinic B"},
                "m1": _measure(PROPORTION, "PROPORTION", multiplier=100),
                "m2": _measure(MEAN, "MEAN", "PROCESS"),
                "m3": _measure(BALANCING, "RATE", "BALANCING", multiplier=1000),
                "m4": _measure("other", "PROPORTION"),
            },
        )
    )
    _ok(
        await tenant.gql(
            ENROLL,
            {
                "a1": {"collaborative": "dm", "measure": PROPORTION},
                "a2": {"collaborative": "dm", "measure": MEAN},
                "a3": {"collaborative": "dm", "measure": BALANCING},
                "a4": {"collaborative": "dm2", "measure": PROPORTION},
                "t1": {
                    "collaborative": "dm",
                    "organization": ORGANIZATION,
                    "code": TEAM,
                    "name": "Team 42",
                },
                "t2": {"collaborative": "dm", "organization": "org-b", "code": TEAM_B, "name": "B"},
                "t3": {
                    "collaborative": "dm2",
                    "organization": "org-b",
                    "code": TEAM_B2,
                    "name": "B2",
                },
            },
        )
    )


def example() -> dict[str, Any]:
    """The shared example MeasureReport (a fresh copy)."""
    with EXAMPLE.open(encoding="utf-8") as handle:
        data: dict[str, Any] = json.load(handle)
    return data


async def submit(tenant: Tenant, rows: list[dict[str, Any]], **options: Any) -> dict[str, Any]:
    """submitMeasureData as the tenant's admin; the receipt."""
    body = await tenant.gql(SUBMIT, {"input": {"rows": rows, **options}})
    assert "errors" not in body, body
    receipt: dict[str, Any] = body["data"]["submitMeasureData"]
    return receipt


async def points(tenant: Tenant, **filter: Any) -> list[dict[str, Any]]:
    """Every live point of the tenant (delta export), as comparable dicts sorted by key."""
    found: list[dict[str, Any]] = []
    after: str | None = None
    while True:
        body = await tenant.gql(POINTS, {"filter": filter, "first": 100, "after": after})
        assert "errors" not in body, body
        connection = body["data"]["dataPoints"]
        for edge in connection["edges"]:
            node = edge["node"]
            if node["deleted"]:
                continue
            found.append(
                {
                    "team": node["team"]["code"],
                    "measure": node["measure"]["code"],
                    "measureVersion": node["measureVersion"],
                    "period": node["period"],
                    "stratum": node["stratum"],
                    "numerator": node["numerator"],
                    "denominator": node["denominator"],
                    "value": node["value"],
                    "annotation": node["annotation"],
                }
            )
        if not connection["pageInfo"]["hasNextPage"]:
            break
        after = connection["pageInfo"]["endCursor"]
    return sorted(found, key=lambda p: (p["team"], p["measure"], p["period"], p["stratum"]))
