"""Sharing agreements on both backends: what a grantee's clients see at each level, expiry and
revocation taking effect at once, pseudonyms, the access log, administration errors and audit,
and the cross-program measure registry (pooling only equivalent measures)."""

from __future__ import annotations

import json
import uuid
from typing import Any

import pytest
from sqlalchemy import select

from analytics.suppression import SuppressionPolicy
from api.state import AppState
from db.enums import Scoring
from db.models import AuditEvent
from db.queries.sharing import SharedPoint
from schema.sharing.queries import disclosed_points
from tests.factories import Tenant, TenantFactory
from tests.schema.sharing_setup import (
    AGGREGATE,
    CREATE_AGREEMENT,
    DENOMINATOR,
    MEASURE,
    NUMERATORS,
    OTHER_MEASURE,
    PERIODS,
    PRIVATE,
    PRIVATE_NUMERATOR,
    PRIVATE_TEAM,
    REVOKE,
    SECRET_TEAM_NAME,
    SHARED,
    SHARED_SERIES,
    SHARED_TEAMS,
    build_grantor,
    hours,
    partner_token,
    share,
)
from tests.schema.test_charts import (
    count_rows,
    create_collaborative,
    data,
    define_measure,
    enroll,
    error_codes,
    submit,
)

pytestmark = pytest.mark.timeout(120)

AGREEMENTS = """
query Agreements($role: SharingRole, $inForce: Boolean) {
  sharingAgreements(role: $role, inForce: $inForce) {
    totalCount
    nodes { id level status grantor { slug } grantee { slug }
            collaboratives { code } measures { code } validFrom validTo }
  }
}
"""
ACCESS_LOG = """
query Log($agreement: ID) {
  accessLog(agreement: $agreement) {
    totalCount
    nodes { readerClientId readerSponsor { slug } operation level collaborativeCodes
            measureCode teamsRead agreement { id } }
  }
}
"""
SPONSORS = "{ sponsors { slug } }"


async def _aggregate(
    reader: Tenant, token: str, grantor: Tenant, **variables: Any
) -> dict[str, Any] | None:
    body = await reader.gql(
        AGGREGATE, {"measure": MEASURE, "sponsor": grantor.slug, **variables}, token=token
    )
    result: dict[str, Any] | None = data(body)["aggregate"]
    return result


async def _series(reader: Tenant, token: str, grantor: Tenant, **variables: Any) -> Any:
    body = await reader.gql(
        SHARED_SERIES,
        {"sponsor": grantor.slug, "collaborative": SHARED, "measure": MEASURE, **variables},
        token=token,
    )
    return data(body)["sharedTeamSeries"]


async def _share_everything(grantor: Tenant, grantee: Tenant) -> dict[str, Any]:
    """An AGGREGATE agreement over every collaborative and measure of the grantor."""
    body = await grantor.gql(
        CREATE_AGREEMENT,
        {
            "input": {
                "grantee": grantee.slug,
                "allCollaboratives": True,
                "allMeasures": True,
                "level": "AGGREGATE",
            }
        },
    )
    agreement: dict[str, Any] = data(body)["createSharingAgreement"]["agreement"]
    return agreement


@pytest.fixture
async def parties(tenants: TenantFactory) -> tuple[Tenant, Tenant]:
    grantor = await tenants.create("Grantor")
    await build_grantor(grantor)
    return grantor, await tenants.create("Grantee")


async def test_nothing_shared_reads_as_nothing_there(parties: tuple[Tenant, Tenant]) -> None:
    grantor, grantee = parties
    token = await partner_token(grantee)
    assert await _aggregate(grantee, token, grantor) is None
    assert await _series(grantee, token, grantor) is None
    listed = data(await grantee.gql(AGREEMENTS, token=token))["sharingAgreements"]
    assert listed["totalCount"] == 0
    assert [s["slug"] for s in data(await grantee.gql(SPONSORS))["sponsors"]] == [grantee.slug]


async def test_aggregate_level_shows_only_the_named_collaborative_suppressed(
    parties: tuple[Tenant, Tenant],
) -> None:
    grantor, grantee = parties
    await share(grantor, grantee, cell_min=5, min_teams=2)
    token = await partner_token(grantee)
    seen = await _aggregate(grantee, token, grantor)
    assert seen is not None
    assert seen["exact"] is False
    assert seen["suppressionPolicy"] == {"cellMin": 5, "minTeams": 2}
    assert seen["pooledDefinitions"] == [
        {"sponsorSlug": grantor.slug, "measureCode": MEASURE, "basis": "SAME"}
    ]
    total = sum(NUMERATORS.values())  # the private collaborative's counts are not in it
    assert [p["period"] for p in seen["points"]] == list(PERIODS)
    for point in seen["points"]:
        assert point["teamsReporting"] == len(SHARED_TEAMS)
        assert point["numerator"] == total
        assert point["denominator"] == DENOMINATOR * len(SHARED_TEAMS)
        assert point["suppressed"] is False
    # naming the private collaborative gives nothing; teams and strata are refused
    hidden = await _aggregate(grantee, token, grantor, scope={"collaboratives": [PRIVATE]})
    assert hidden is not None and hidden["points"] == []
    for variables in ({"scope": {"teams": [SHARED_TEAMS[0]]}}, {"stratum": "female"}):
        body = await grantee.gql(
            AGGREGATE, {"measure": MEASURE, "sponsor": grantor.slug, **variables}, token=token
        )
        assert error_codes(body) == ["FORBIDDEN"], body
    # a measure the agreement does not name does not exist for the grantee
    other = await grantee.gql(
        AGGREGATE, {"measure": OTHER_MEASURE, "sponsor": grantor.slug}, token=token
    )
    assert data(other)["aggregate"] is None
    # team series are not part of an AGGREGATE agreement
    assert await _series(grantee, token, grantor) is None


async def test_the_default_policy_hides_small_cells_the_grantor_sees(
    parties: tuple[Tenant, Tenant],
) -> None:
    grantor, grantee = parties
    await share(grantor, grantee, cell_min=11, min_teams=5)
    token = await partner_token(grantee)
    seen = await _aggregate(grantee, token, grantor)
    assert seen is not None
    assert all(p["suppressionReason"] == "TOO_FEW_TEAMS" for p in seen["points"])
    assert all(p["numerator"] is None and p["rate"] is None for p in seen["points"])
    own = data(await grantor.gql(AGGREGATE, {"measure": MEASURE}))["aggregate"]
    assert own["exact"] is True and own["points"][0]["numerator"] == PRIVATE_NUMERATOR + sum(
        NUMERATORS.values()
    )


async def test_revocation_and_expiry_stop_access_at_once(parties: tuple[Tenant, Tenant]) -> None:
    grantor, grantee = parties
    agreement = await share(grantor, grantee)
    token = await partner_token(grantee)
    assert await _aggregate(grantee, token, grantor) is not None
    revoked = data(await grantor.gql(REVOKE, {"id": agreement["id"]}))["revokeSharingAgreement"]
    assert revoked["__typename"] == "RevokeSharingAgreementSuccess"
    assert revoked["agreement"]["status"] == "REVOKED"
    assert await _aggregate(grantee, token, grantor) is None
    again = data(await grantor.gql(REVOKE, {"id": agreement["id"]}))["revokeSharingAgreement"]
    assert again["code"] == "CONFLICT"
    # the grantee's revoke attempt is not its to make (and it has no admin over it)
    body = await grantee.gql(REVOKE, {"id": agreement["id"]})
    assert data(body)["revokeSharingAgreement"]["code"] == "NOT_FOUND"

    expired = await share(grantor, grantee, valid_from=hours(-48), valid_to=hours(-24))
    assert expired["status"] == "EXPIRED"
    scheduled = await share(grantor, grantee, valid_from=hours(24))
    assert scheduled["status"] == "SCHEDULED"
    assert await _aggregate(grantee, token, grantor) is None
    listed = data(await grantee.gql(AGREEMENTS, token=token))["sharingAgreements"]
    assert sorted(n["status"] for n in listed["nodes"]) == ["EXPIRED", "REVOKED", "SCHEDULED"]
    in_force = data(await grantee.gql(AGREEMENTS, {"inForce": True}, token=token))
    assert in_force["sharingAgreements"]["totalCount"] == 0


async def test_deidentified_series_use_stable_pseudonyms_per_grantee(
    tenants: TenantFactory, parties: tuple[Tenant, Tenant]
) -> None:
    grantor, grantee = parties
    third = await tenants.create("Third")
    await share(grantor, grantee, level="TEAM_DEIDENTIFIED", cell_min=5)
    await share(grantor, third, level="TEAM_DEIDENTIFIED", cell_min=5)
    token = await partner_token(grantee)
    first = await _series(grantee, token, grantor)
    again = await _series(grantee, await partner_token(grantee), grantor)
    assert first == again  # stable across reads and clients of the grantee
    names = [node["team"] for node in first["nodes"]]
    assert len(names) == len(SHARED_TEAMS) == first["totalCount"]
    assert all(name.startswith("anon-") for name in names)
    text = json.dumps(first)
    assert not any(team in text for team in SHARED_TEAMS) and SECRET_TEAM_NAME not in text
    assert all(node["teamName"] is None and node["identified"] is False for node in first["nodes"])
    # the small numerator (3 < cellMin 5) is hidden with its value, and so is the next smallest
    # (20): else the aggregate's total minus the three shown numerators would give the 3 back
    points = [p for node in first["nodes"] for p in node["points"]]
    hidden = [p for p in points if p["suppressed"]]
    assert len(hidden) == 2 * len(PERIODS)
    assert all(p["numerator"] is None and p["value"] is None for p in hidden)
    assert all(p["denominator"] == DENOMINATOR for p in hidden)
    shown = sorted({p["numerator"] for p in points if not p["suppressed"]})
    assert shown == [30, 40]
    aggregate = await _aggregate(grantee, token, grantor)
    assert aggregate is not None
    for point in aggregate["points"]:
        in_period = [p for p in points if p["period"] == point["period"]]
        remainder = point["numerator"] - sum(p["numerator"] or 0 for p in in_period)
        assert remainder == 3 + 20  # only the sum of two hidden cells, not a small cell
    # another grantee sees other pseudonyms for the same teams
    third_names = [
        n["team"] for n in (await _series(third, await partner_token(third), grantor))["nodes"]
    ]
    assert set(third_names).isdisjoint(names)
    # paging by pseudonym
    page = await _series(grantee, token, grantor, first=3)
    assert page["pageInfo"]["hasNextPage"] is True
    rest = await _series(grantee, token, grantor, after=page["pageInfo"]["endCursor"])
    assert [n["team"] for n in page["nodes"] + rest["nodes"]] == names
    # the private collaborative is not shared
    body = await grantee.gql(
        SHARED_SERIES,
        {"sponsor": grantor.slug, "collaborative": PRIVATE, "measure": MEASURE},
        token=token,
    )
    assert data(body)["sharedTeamSeries"] is None


async def test_identified_series_show_teams_as_the_grantor_sees_them(
    parties: tuple[Tenant, Tenant],
) -> None:
    grantor, grantee = parties
    await share(grantor, grantee, level="TEAM_IDENTIFIED")
    token = await partner_token(grantee)
    seen = await _series(grantee, token, grantor)
    assert [n["team"] for n in seen["nodes"]] == sorted(SHARED_TEAMS)
    alpha = seen["nodes"][0]
    assert alpha["identified"] is True and alpha["teamName"].endswith(SHARED_TEAMS[0])
    assert [p["numerator"] for p in alpha["points"]] == [NUMERATORS["shr-alpha"]] * 3
    assert not any(p["suppressed"] for n in seen["nodes"] for p in n["points"])
    aggregate = await _aggregate(grantee, token, grantor)
    assert aggregate is not None and aggregate["exact"] is True
    assert PRIVATE_TEAM not in json.dumps(seen)


async def test_every_shared_read_is_in_the_grantors_access_log(
    app: Any, parties: tuple[Tenant, Tenant]
) -> None:
    grantor, grantee = parties
    agreement = await share(grantor, grantee, level="TEAM_DEIDENTIFIED")
    client_id, secret = await grantee.add_client(__import__("db.enums").enums.ClientKind.PARTNER)
    token = await grantee.token(client_id, secret)
    await _aggregate(grantee, token, grantor)
    await _series(grantee, token, grantor)
    log = data(await grantor.gql(ACCESS_LOG, {"agreement": agreement["id"]}))["accessLog"]
    assert log["totalCount"] == 2
    series, aggregate = log["nodes"]  # newest first
    assert series["operation"] == "sharedTeamSeries" and aggregate["operation"] == "aggregate"
    for entry in log["nodes"]:
        assert entry["readerClientId"] == client_id
        assert entry["readerSponsor"]["slug"] == grantee.slug
        assert entry["measureCode"] == MEASURE
        assert entry["level"] == "TEAM_DEIDENTIFIED"
        assert entry["agreement"]["id"] == agreement["id"]
    assert series["teamsRead"] == len(SHARED_TEAMS) and series["collaborativeCodes"] == [SHARED]
    # the grantee cannot read the grantor's log, the grantor's own reads are not logged
    body = await grantee.gql(ACCESS_LOG)
    assert data(body)["accessLog"]["totalCount"] == 0
    await grantor.gql(AGGREGATE, {"measure": MEASURE})
    log = data(await grantor.gql(ACCESS_LOG))["accessLog"]
    assert log["totalCount"] == 2


async def test_agreements_are_listed_to_both_sides_and_sponsors_become_visible(
    parties: tuple[Tenant, Tenant],
) -> None:
    grantor, grantee = parties
    agreement = await share(grantor, grantee, measures=[MEASURE, OTHER_MEASURE])
    assert agreement["grantor"]["slug"] == grantor.slug
    assert agreement["grantee"]["slug"] == grantee.slug
    assert agreement["collaboratives"] == [{"code": SHARED}]
    assert agreement["measures"] == [{"code": OTHER_MEASURE}, {"code": MEASURE}]  # by code
    token = await partner_token(grantee)
    listed = data(await grantee.gql(AGREEMENTS, token=token))["sharingAgreements"]
    assert [n["id"] for n in listed["nodes"]] == [agreement["id"]]
    as_grantor = data(await grantor.gql(AGREEMENTS, {"role": "GRANTOR"}))["sharingAgreements"]
    assert as_grantor["totalCount"] == 1
    # a partner (no admin) may not list a grantor's side
    body = await grantee.gql(AGREEMENTS, {"role": "GRANTOR"}, token=token)
    assert error_codes(body) == ["FORBIDDEN"]
    slugs = {s["slug"] for s in data(await grantee.gql(SPONSORS, token=None))["sponsors"]}
    assert slugs == {grantor.slug, grantee.slug}
    everything = await share(grantor, grantee, collaboratives=None, measures=None)
    every = await _share_everything(grantor, grantee)
    assert {c["code"] for c in every["collaboratives"]} == {SHARED, PRIVATE}
    assert everything["collaboratives"] == [{"code": SHARED}]


@pytest.mark.parametrize(
    ("change", "code", "field"),
    [
        ({"grantee": "no-such-sponsor"}, "NOT_FOUND", None),
        ({"collaboratives": ["nope"]}, "NOT_FOUND", None),
        ({"measures": ["nope"]}, "NOT_FOUND", None),
        ({"allCollaboratives": True}, "VALIDATION", "collaboratives"),
        ({"collaboratives": None}, "VALIDATION", "collaboratives"),
        ({"cellMin": 0}, "VALIDATION", "cellMin"),
        ({"minTeams": 0}, "VALIDATION", "minTeams"),
        (
            {"validFrom": "2030-01-02T00:00:00Z", "validTo": "2030-01-01T00:00:00Z"},
            "VALIDATION",
            "validTo",
        ),
        ({"purpose": "x\u0000y"}, "VALIDATION", "purpose"),
    ],
)
async def test_bad_agreements_are_typed_errors_and_write_nothing(
    app: Any, parties: tuple[Tenant, Tenant], change: dict[str, Any], code: str, field: str | None
) -> None:
    grantor, grantee = parties
    variables = {
        "grantee": grantee.slug,
        "collaboratives": [SHARED],
        "measures": [MEASURE],
        "level": "AGGREGATE",
        **change,
    }
    variables = {k: v for k, v in variables.items() if v is not None}
    body = await grantor.gql(CREATE_AGREEMENT, {"input": variables})
    result = data(body)["createSharingAgreement"]
    assert (result["code"], result.get("field")) == (code, field), result
    listed = data(await grantor.gql(AGREEMENTS))["sharingAgreements"]
    assert listed["totalCount"] == 0


async def test_sharing_with_oneself_and_without_admin_is_refused(
    parties: tuple[Tenant, Tenant],
) -> None:
    grantor, grantee = parties
    body = await grantor.gql(
        CREATE_AGREEMENT,
        {
            "input": {
                "grantee": grantor.slug,
                "allCollaboratives": True,
                "allMeasures": True,
                "level": "AGGREGATE",
            }
        },
    )
    assert data(body)["createSharingAgreement"]["code"] == "VALIDATION"
    body = await grantor.gql(
        CREATE_AGREEMENT,
        {
            "input": {
                "grantee": grantee.slug,
                "allCollaboratives": True,
                "allMeasures": True,
                "level": "AGGREGATE",
            }
        },
        token=await partner_token(grantor),
    )
    assert error_codes(body) == ["FORBIDDEN"]


async def test_creation_and_revocation_are_audited(
    app: Any, parties: tuple[Tenant, Tenant]
) -> None:
    grantor, grantee = parties
    agreement = await share(grantor, grantee)
    await grantor.gql(REVOKE, {"id": agreement["id"]})
    state: AppState = app.state.collabx
    async with state.sessionmaker() as session:
        events = list(
            await session.scalars(
                select(AuditEvent)
                .where(
                    AuditEvent.sponsor_id == grantor.sponsor_id,
                    AuditEvent.entity_type == "SharingAgreement",
                )
                .order_by(AuditEvent.at)
            )
        )
    assert [e.action for e in events] == ["sharing_agreement.create", "sharing_agreement.revoke"]
    assert events[0].before is None and events[0].after is not None
    assert events[1].before is not None and events[1].before["revoked_at"] is None
    assert events[1].after is not None and events[1].after["revoked_at"] is not None


# --- the cross-program measure registry ----------------------------------------------------

LINK = """
mutation Link($input: LinkEquivalentMeasureInput!) {
  linkEquivalentMeasure(input: $input) {
    __typename
    ... on LinkEquivalentMeasureSuccess { equivalence { measure equivalentSponsor
                                                        equivalentMeasure accepted } }
    ... on Error { code }
  }
}
"""
UNLINK = """
mutation Unlink($input: LinkEquivalentMeasureInput!) {
  unlinkEquivalentMeasure(input: $input) { __typename ... on Error { code } }
}
"""
EQUIVALENCES = "{ measureEquivalences { measure equivalentSponsor equivalentMeasure accepted } }"


async def _grantee_program(grantee: Tenant, measure: str, canonical: str | None = None) -> None:
    """The grantee's own program: three teams reporting ``measure`` 50/100."""
    await create_collaborative(grantee, "own-prog")
    await define_measure(grantee, measure, "PROPORTION", collaborative="own-prog")
    if canonical is not None:
        body = await grantee.gql(
            """mutation D($input: DefineMeasureInput!) { defineMeasure(input: $input) {
                 __typename } }""",
            {
                "input": {
                    "code": measure,
                    "name": f"Measure {measure}",
                    "type": "OUTCOME",
                    "scoring": "PROPORTION",
                    "improvementDirection": "INCREASE",
                    "numerator": "Events",
                    "denominator": "Eligible",
                    "fhirCanonical": canonical,
                }
            },
        )
        assert data(body)["defineMeasure"]["__typename"] == "DefineMeasureSuccess", body
    rows: list[dict[str, Any]] = []
    for team in ("own-1", "own-2", "own-3"):
        await enroll(grantee, team, "own-prog")
        rows += count_rows(team, measure, [50] * 3, [100] * 3, PERIODS[0])
    await submit(grantee, rows)


async def _pooled(grantee: Tenant, grantor: Tenant, measure: str) -> dict[str, Any]:
    body = await grantee.gql(
        AGGREGATE,
        {"measure": measure, "scope": {"sponsors": [grantee.slug, grantor.slug]}},
    )
    result: dict[str, Any] = data(body)["aggregate"]
    return result


async def test_pooling_across_sponsors_needs_a_link_accepted_by_both_sides(
    parties: tuple[Tenant, Tenant],
) -> None:
    grantor, grantee = parties
    await _grantee_program(grantee, "b-prop")
    await share(grantor, grantee, level="TEAM_IDENTIFIED")
    alone = await _pooled(grantee, grantor, "b-prop")
    assert [d["sponsorSlug"] for d in alone["pooledDefinitions"]] == [grantee.slug]
    assert alone["points"][0]["teamsReporting"] == 3

    link = {"measure": MEASURE, "equivalentSponsor": grantee.slug, "equivalentMeasure": "b-prop"}
    declared = data(await grantor.gql(LINK, {"input": link}))["linkEquivalentMeasure"]
    assert declared["equivalence"]["accepted"] is False
    half = await _pooled(grantee, grantor, "b-prop")
    assert [d["sponsorSlug"] for d in half["pooledDefinitions"]] == [grantee.slug]

    back = {"measure": "b-prop", "equivalentSponsor": grantor.slug, "equivalentMeasure": MEASURE}
    accepted = data(await grantee.gql(LINK, {"input": back}))["linkEquivalentMeasure"]
    assert accepted["equivalence"]["accepted"] is True
    both = await _pooled(grantee, grantor, "b-prop")
    assert {
        (d["sponsorSlug"], d["measureCode"], d["basis"]) for d in both["pooledDefinitions"]
    } == {
        (grantee.slug, "b-prop", "SAME"),
        (grantor.slug, MEASURE, "LINKED"),
    }
    point = both["points"][0]
    assert point["teamsReporting"] == 3 + len(SHARED_TEAMS)
    assert point["numerator"] == 150 + sum(NUMERATORS.values())
    assert point["denominator"] == 300 + DENOMINATOR * len(SHARED_TEAMS)
    assert data(await grantor.gql(EQUIVALENCES))["measureEquivalences"][0]["accepted"] is True
    # declaring twice conflicts; withdrawing one side stops pooling at once
    again = data(await grantor.gql(LINK, {"input": link}))["linkEquivalentMeasure"]
    assert again["code"] == "CONFLICT"
    gone = data(await grantor.gql(UNLINK, {"input": link}))["unlinkEquivalentMeasure"]
    assert gone["__typename"] == "UnlinkEquivalentMeasureSuccess"
    after = await _pooled(grantee, grantor, "b-prop")
    assert [d["sponsorSlug"] for d in after["pooledDefinitions"]] == [grantee.slug]


async def test_a_shared_fhir_canonical_pools_without_links_but_never_without_an_agreement(
    parties: tuple[Tenant, Tenant],
) -> None:
    grantor, grantee = parties
    canonical = "http://example.org/fhir/Measure/asthma-shared"
    body = await grantor.gql(
        """mutation D($input: DefineMeasureInput!) { defineMeasure(input: $input) {
             __typename } }""",
        {
            "input": {
                "code": MEASURE,
                "name": f"Measure {MEASURE}",
                "type": "OUTCOME",
                "scoring": "PROPORTION",
                "improvementDirection": "INCREASE",
                "numerator": "Events",
                "denominator": "Eligible",
                "fhirCanonical": canonical,
            }
        },
    )
    assert data(body)["defineMeasure"]["__typename"] == "DefineMeasureSuccess", body
    await _grantee_program(grantee, "b-canon", canonical)
    unshared = await _pooled(grantee, grantor, "b-canon")
    assert [d["sponsorSlug"] for d in unshared["pooledDefinitions"]] == [grantee.slug]
    await share(grantor, grantee)
    pooled = await _pooled(grantee, grantor, "b-canon")
    assert {(d["sponsorSlug"], d["basis"]) for d in pooled["pooledDefinitions"]} == {
        (grantee.slug, "SAME"),
        (grantor.slug, "FHIR_CANONICAL"),
    }
    # an AGGREGATE agreement makes the pooled aggregate suppressed by its policy
    assert pooled["exact"] is False and pooled["suppressionPolicy"] == {"cellMin": 5, "minTeams": 2}
    assert pooled["points"][0]["teamsReporting"] == 3 + len(SHARED_TEAMS)


def test_a_small_denominator_hides_the_value_derived_from_it() -> None:
    """RATIO: 30 events over 4 units — the value would give the hidden denominator back."""
    team = uuid.uuid4()
    points = [SharedPoint(team, "t", "T", "2024-01", 30, 4, None)]
    (shown,) = disclosed_points(
        points, Scoring.RATIO, 1.0, SuppressionPolicy(cell_min=5, min_teams=1)
    ).values()
    assert shown.denominator is None and shown.value is None and shown.suppressed
    assert shown.numerator == 30


async def test_the_goal_line_of_an_unshared_collaborative_stays_hidden(
    parties: tuple[Tenant, Tenant],
) -> None:
    grantor, grantee = parties
    await define_measure(grantor, "m-goal", "PROPORTION", collaborative=PRIVATE, goal=80.0)
    body = await grantor.gql(
        """mutation Add($input: AddMeasureToCollaborativeInput!) {
             addMeasureToCollaborative(input: $input) { __typename } }""",
        {"input": {"collaborative": SHARED, "measure": "m-goal", "goal": 70.0}},
    )
    assert data(body)["addMeasureToCollaborative"]["__typename"].endswith("Success"), body
    await share(grantor, grantee, measures=["m-goal"])
    token = await partner_token(grantee)
    query = """query ($s: String!, $c: [String!]) {
      aggregate(measure: "m-goal", sponsor: $s, scope: {collaboratives: $c}) {
        goal points { period } }
    }"""
    shared = await grantee.gql(query, {"s": grantor.slug, "c": [SHARED]}, token=token)
    assert data(shared)["aggregate"]["goal"] == 70.0
    private = await grantee.gql(query, {"s": grantor.slug, "c": [PRIVATE]}, token=token)
    assert data(private)["aggregate"] == {"goal": None, "points": []}


async def test_an_ended_all_agreement_lists_nothing_to_the_grantee(
    parties: tuple[Tenant, Tenant],
) -> None:
    grantor, grantee = parties
    agreement = await _share_everything(grantor, grantee)
    assert {c["code"] for c in agreement["collaboratives"]} == {SHARED, PRIVATE}
    await grantor.gql(REVOKE, {"id": agreement["id"]})
    token = await partner_token(grantee)
    seen = data(await grantee.gql(AGREEMENTS, token=token))["sharingAgreements"]["nodes"]
    assert [(n["status"], n["collaboratives"], n["measures"]) for n in seen] == [
        ("REVOKED", [], [])
    ]
    own = data(await grantor.gql(AGREEMENTS, {"role": "GRANTOR"}))["sharingAgreements"]["nodes"]
    assert {c["code"] for c in own[0]["collaboratives"]} == {SHARED, PRIVATE}
