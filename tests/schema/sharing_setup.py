"""A grantor sponsor with a shared and a private collaborative, and helpers to share with a
grantee (used by the sharing tests and the adversarial partner walk)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from db.enums import ClientKind
from tests.factories import Tenant
from tests.schema.test_charts import (
    ENROLL,
    count_rows,
    create_collaborative,
    data,
    define_measure,
    submit,
)

SHARED = "shared-prog"
PRIVATE = "hidden-prog"
MEASURE = "m-prop"
OTHER_MEASURE = "m-private"
SECRET_TEAM_NAME = "Zyxwv Secret Clinic"
"""Every team of the grantor is named after this marker: it must never reach a grantee."""
SHARED_TEAMS = ("shr-alpha", "shr-bravo", "shr-charlie", "shr-delta")
PRIVATE_TEAM = "hid-echo"
PERIODS = ("2024-01", "2024-02", "2024-03")
NUMERATORS = {"shr-alpha": 3, "shr-bravo": 20, "shr-charlie": 30, "shr-delta": 40}
DENOMINATOR = 100
PRIVATE_NUMERATOR, PRIVATE_DENOMINATOR = 7_777, 9_999
"""The private team's counts: neither may reach a grantee, alone or in a sum."""

CREATE_AGREEMENT = """
mutation Create($input: CreateSharingAgreementInput!) {
  createSharingAgreement(input: $input) {
    __typename
    ... on CreateSharingAgreementSuccess {
      agreement { id level status cellMin minTeams collaboratives { code } measures { code }
                  grantor { slug } grantee { slug } validFrom validTo }
    }
    ... on Error { code message }
    ... on ValidationError { field }
  }
}
"""
REVOKE = """
mutation Revoke($id: ID!) {
  revokeSharingAgreement(input: {id: $id}) {
    __typename
    ... on RevokeSharingAgreementSuccess { agreement { status revokedAt } }
    ... on Error { code message }
  }
}
"""
AGGREGATE = """
query Agg($measure: String!, $sponsor: String, $scope: AggregateScope, $stratum: String) {
  aggregate(measure: $measure, sponsor: $sponsor, scope: $scope, stratum: $stratum) {
    measure { code } exact suppressionPolicy { cellMin minTeams }
    pooledDefinitions { sponsorSlug measureCode basis }
    points { period teamsReporting numerator denominator rate suppressed suppressionReason }
  }
}
"""
SHARED_SERIES = """
query Series($sponsor: String!, $collaborative: String!, $measure: String!, $first: Int,
             $after: String) {
  sharedTeamSeries(sponsor: $sponsor, collaborative: $collaborative, measure: $measure,
                   first: $first, after: $after) {
    totalCount pageInfo { hasNextPage endCursor }
    nodes { team teamName identified
            points { period numerator denominator value suppressed } }
  }
}
"""


@dataclass
class Grantor:
    """The grantor tenant and what it holds."""

    tenant: Tenant


async def build_grantor(tenant: Tenant) -> Grantor:
    """Two collaboratives of one grantor: SHARED (four teams, one with small numerators) and
    PRIVATE (one team); measure MEASURE in both sets, OTHER_MEASURE in SHARED only."""
    await create_collaborative(tenant, SHARED)
    await create_collaborative(tenant, PRIVATE)
    await define_measure(tenant, MEASURE, "PROPORTION", collaborative=SHARED)
    body = await tenant.gql(
        """mutation Add($input: AddMeasureToCollaborativeInput!) {
             addMeasureToCollaborative(input: $input) { __typename } }""",
        {"input": {"collaborative": PRIVATE, "measure": MEASURE}},
    )
    assert data(body)["addMeasureToCollaborative"]["__typename"].endswith("Success"), body
    await define_measure(tenant, OTHER_MEASURE, "PROPORTION", collaborative=SHARED)
    rows: list[dict[str, Any]] = []
    for team in SHARED_TEAMS:
        await _enroll_named(tenant, team, SHARED)
        numerators = [NUMERATORS[team]] * len(PERIODS)
        rows += count_rows(team, MEASURE, numerators, [DENOMINATOR] * len(PERIODS), PERIODS[0])
        rows += count_rows(team, OTHER_MEASURE, [1, 1, 1], [2, 2, 2], PERIODS[0])
    await _enroll_named(tenant, PRIVATE_TEAM, PRIVATE)
    rows += count_rows(
        PRIVATE_TEAM, MEASURE, [PRIVATE_NUMERATOR] * 3, [PRIVATE_DENOMINATOR] * 3, PERIODS[0]
    )
    await submit(tenant, rows)
    return Grantor(tenant)


async def _enroll_named(tenant: Tenant, team: str, collaborative: str) -> None:
    """Enrol ``team`` under a name carrying SECRET_TEAM_NAME."""
    body = await tenant.gql(
        ENROLL,
        {
            "input": {
                "collaborative": collaborative,
                "organization": f"{collaborative}-org",
                "code": team,
                "name": f"{SECRET_TEAM_NAME} {team}",
            }
        },
    )
    assert data(body)["enrollTeam"]["__typename"] == "EnrollTeamSuccess", body


async def share(
    grantor: Tenant,
    grantee: Tenant,
    *,
    level: str = "AGGREGATE",
    collaboratives: list[str] | None = None,
    measures: list[str] | None = None,
    cell_min: int = 5,
    min_teams: int = 2,
    valid_from: datetime | None = None,
    valid_to: datetime | None = None,
) -> dict[str, Any]:
    """Create an agreement from ``grantor`` to ``grantee``; the agreement as answered."""
    variables: dict[str, Any] = {
        "grantee": grantee.slug,
        "collaboratives": collaboratives if collaboratives is not None else [SHARED],
        "measures": measures if measures is not None else [MEASURE],
        "level": level,
        "cellMin": cell_min,
        "minTeams": min_teams,
        "purpose": "test",
    }
    if valid_from is not None:
        variables["validFrom"] = valid_from.isoformat()
    if valid_to is not None:
        variables["validTo"] = valid_to.isoformat()
    body = await grantor.gql(CREATE_AGREEMENT, {"input": variables})
    result = data(body)["createSharingAgreement"]
    assert result["__typename"] == "CreateSharingAgreementSuccess", result
    agreement: dict[str, Any] = result["agreement"]
    return agreement


async def partner_token(tenant: Tenant) -> str:
    """A token of a new PARTNER client of ``tenant`` (scopes aggregate:read catalog:read)."""
    client_id, secret = await tenant.add_client(ClientKind.PARTNER)
    return await tenant.token(client_id, secret)


def hours(count: float) -> datetime:
    """Now plus ``count`` hours (negative: in the past)."""
    return datetime.now(UTC) + timedelta(hours=count)
