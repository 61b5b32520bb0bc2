"""FHIR R4 MeasureReport exchange: the example imports, every DEQM rule and ingest check answers
its status and OperationOutcome, idempotency by identifier, EHR binding, batch Bundles, search
Bundles that validate with fhir.resources R4B, paging, tenancy, and a lossless round trip."""

from __future__ import annotations

import copy
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
from asgi_lifespan import LifespanManager
from fhir.resources.R4B.bundle import Bundle
from fhir.resources.R4B.capabilitystatement import CapabilityStatement
from fhir.resources.R4B.measurereport import MeasureReport
from fhir.resources.R4B.operationoutcome import OperationOutcome

from api.app import create_app
from api.fhir import (
    CS_MEASURE_TYPE,
    DEQM_SCORING_EXT,
    EXT_ANNOTATION,
    EXT_MEASURE_TYPE,
    EXT_TEAM,
    deqm_issues,
)
from db.enums import ClientKind
from tests.api.exchange_data import (
    BALANCING,
    MEAN,
    ORGANIZATION,
    PROPORTION,
    TEAM,
    TEAM_B,
    TEAM_B2,
    example,
    points,
    setup_exchange,
    submit,
)
from tests.conftest import make_settings
from tests.factories import Tenant, TenantFactory

FHIR = "application/fhir+json"
LOCK = """
mutation Lock($input: LockPeriodsInput!) { lockPeriods(input: $input) { __typename } }
"""
DELETE = """
mutation Delete($input: DeleteMeasureDataInput!) {
  deleteMeasureData(input: $input) { __typename ... on MeasureDataReceipt { deleted } }
}
"""


async def _headers(tenant: Tenant, token: str | None = None) -> dict[str, str]:
    return {"Authorization": f"Bearer {token or await tenant.token()}", "Content-Type": FHIR}


async def post_report(
    tenant: Tenant, report: Any, *, token: str | None = None, **headers: str
) -> httpx.Response:
    """POST /fhir/MeasureReport."""
    return await tenant.factory.http.post(
        "/fhir/MeasureReport",
        json=report,
        headers={**await _headers(tenant, token), **headers},
    )


async def post_bundle(tenant: Tenant, bundle: Any, token: str | None = None) -> httpx.Response:
    """POST /fhir."""
    return await tenant.factory.http.post(
        "/fhir", json=bundle, headers=await _headers(tenant, token)
    )


async def search(
    tenant: Tenant, params: Any = None, *, token: str | None = None, url: str | None = None
) -> httpx.Response:
    """GET /fhir/MeasureReport (or a next link)."""
    return await tenant.factory.http.get(
        url or "/fhir/MeasureReport",
        params=params,
        headers={"Authorization": f"Bearer {token or await tenant.token()}"},
    )


def issues(response: httpx.Response) -> list[tuple[str, str | None, str | None]]:
    """(FHIR issue code, our code, first expression) of an OperationOutcome response; checks
    it validates."""
    assert response.headers["content-type"].startswith(FHIR), response.headers
    body = response.json()
    OperationOutcome.model_validate(body)
    return [
        (
            issue["code"],
            (issue.get("details", {}).get("coding") or [{}])[0].get("code"),
            (issue.get("expression") or [None])[0],
        )
        for issue in body["issue"]
    ]


def details(response: httpx.Response) -> set[str | None]:
    return {detail for _, detail, _ in issues(response)}


def bundle_of(reports: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "resourceType": "Bundle",
        "type": "batch",
        "entry": [
            {"resource": report, "request": {"method": "POST", "url": "MeasureReport"}}
            for report in reports
        ],
    }


def population(report: dict[str, Any], code: str) -> dict[str, Any]:
    for item in report["group"][0]["population"]:
        if item["code"]["coding"][0]["code"] == code:
            found: dict[str, Any] = item
            return found
    raise AssertionError(code)


# --- the example and idempotency ----------------------------------------------------------------


async def test_example_report_imports_and_replays_by_identifier(tenant: Tenant) -> None:
    await setup_exchange(tenant)
    response = await post_report(tenant, example())
    assert response.status_code == 201, response.text
    stored = response.json()
    MeasureReport.model_validate(stored)
    assert response.headers["location"].endswith(f"/fhir/MeasureReport/{stored['id']}")
    assert stored["measure"].endswith(f"/Measure/{PROPORTION}|1")
    assert population(stored, "numerator")["count"] == 156
    assert population(stored, "denominator")["count"] == 230  # 240 - 10 excluded
    assert stored["group"][0]["measureScore"]["value"] == round(156 / 230, 6)
    assert await points(tenant) == [
        {
            "team": TEAM,
            "measure": PROPORTION,
            "measureVersion": 1,
            "period": "2025-03",
            "stratum": "",
            "numerator": 156,
            "denominator": 230,
            "value": None,
            "annotation": "",
        }
    ]

    # the same report again (its id is the key): the first outcome, nothing written
    again = await post_report(tenant, example())
    assert again.status_code == 200, again.text
    assert again.json() == stored

    # the same id with other counts: the key was used with another request
    changed = example()
    population(changed, "numerator")["count"] = 150
    del changed["group"][0]["measureScore"]
    conflict = await post_report(tenant, changed)
    assert conflict.status_code == 409, conflict.text
    assert issues(conflict) == [("conflict", "IDEMPOTENCY_MISMATCH", "MeasureReport.identifier")]

    # a new identifier takes precedence over the id and updates the point
    changed["identifier"] = [{"system": "urn:ehr:reports", "value": "r-1"}]
    updated = await post_report(tenant, changed, Prefer="return=OperationOutcome")
    assert updated.status_code == 201, updated.text
    assert issues(updated)[0][0] == "informational"
    assert (await points(tenant))[0]["numerator"] == 150
    minimal = await post_report(tenant, changed, Prefer="return=minimal")
    assert minimal.status_code == 200 and minimal.content == b""
    assert minimal.headers["location"] == updated.headers["location"]

    read = await tenant.factory.http.get(
        updated.headers["location"], headers=await _headers(tenant)
    )
    assert read.status_code == 200
    assert population(read.json(), "numerator")["count"] == 150


# --- rules ---------------------------------------------------------------------------------------


Change = Callable[[dict[str, Any]], None]


def _set(path: str, value: Any) -> Change:
    def change(report: dict[str, Any]) -> None:
        target: Any = report
        parts = path.split(".")
        for part in parts[:-1]:
            target = target[int(part)] if part.isdigit() else target[part]
        if value is _DROP:
            del target[parts[-1]]
        else:
            target[parts[-1]] = value

    return change


_DROP = object()


def _counts(numerator: int, denominator: int) -> list[dict[str, Any]]:
    return [
        {"code": {"coding": [{"code": "numerator"}]}, "count": numerator},
        {"code": {"coding": [{"code": "denominator"}]}, "count": denominator},
    ]


NUMERATOR = "group.0.population.3"

RULES: list[tuple[str, list[Change], int, str, str | None]] = [
    ("not summary", [_set("type", "individual")], 422, "DEQM_TYPE", "MeasureReport.type"),
    ("not complete", [_set("status", "pending")], 422, "DEQM_STATUS", "MeasureReport.status"),
    (
        "unversioned canonical",
        [_set("measure", f"https://sponsor.example.org/fhir/Measure/{PROPORTION}")],
        422,
        "DEQM_MEASURE",
        "MeasureReport.measure",
    ),
    ("no date", [_set("date", _DROP)], 422, "DEQM_DATE", "MeasureReport.date"),
    ("no reporter", [_set("reporter", _DROP)], 422, "DEQM_REPORTER", "MeasureReport.reporter"),
    (
        "reporter not an organization",
        [_set("reporter", {"reference": "Practitioner/p1"})],
        422,
        "DEQM_REPORTER",
        "MeasureReport.reporter.reference",
    ),
    (
        "two months",
        [_set("period", {"start": "2025-02-01", "end": "2025-03-31"})],
        422,
        "DEQM_PERIOD",
        "MeasureReport.period",
    ),
    (
        "a year",
        [_set("period", {"start": "2024", "end": "2024"})],
        422,
        "DEQM_PERIOD",
        "MeasureReport.period",
    ),
    (
        "backwards",
        [_set("period", {"start": "2025-03-31", "end": "2025-03-01"})],
        422,
        "DEQM_PERIOD",
        "MeasureReport.period",
    ),
    (
        "score above 1",
        [_set("group.0.measureScore", {"value": 1.2})],
        422,
        "DEQM_SCORE_RANGE",
        "MeasureReport.group[0].measureScore",
    ),
    (
        "score not the counts",
        [_set("group.0.measureScore", {"value": 0.7})],
        422,
        "DEQM_SCORE_MISMATCH",
        "MeasureReport.group[0].measureScore",
    ),
    (
        "two groups",
        [lambda r: r["group"].append(copy.deepcopy(r["group"][0]))],
        422,
        "DEQM_GROUP",
        "MeasureReport.group",
    ),
    (
        "duplicate population",
        [
            lambda r: r["group"][0]["population"].append(
                copy.deepcopy(r["group"][0]["population"][3])
            )
        ],
        422,
        "DEQM_POPULATION",
        "MeasureReport.group[0].population[4].code",
    ),
    (
        "exclusions above the denominator",
        [_set("group.0.population.2.count", 241), _set("group.0.measureScore", _DROP)],
        422,
        "DEQM_POPULATION",
        "MeasureReport.group[0].population[1]",
    ),
    (
        "declared scoring differs",
        [_set("extension.0.valueCodeableConcept.coding.0.code", "ratio")],
        422,
        "DEQM_SCORING",
        f"MeasureReport.extension.where(url='{DEQM_SCORING_EXT}')",
    ),
    (
        "numerator above denominator",
        [_set(f"{NUMERATOR}.count", 231), _set("group.0.measureScore", _DROP)],
        422,
        "NUMERATOR_EXCEEDS_DENOMINATOR",
        "MeasureReport.group[0].population[3]",
    ),
    (
        "no numerator",
        [lambda r: r["group"][0]["population"].pop(3), _set("group.0.measureScore", _DROP)],
        422,
        "MISSING_VALUE",
        "MeasureReport.group[0]",
    ),
    (
        "the same stratum twice",
        [
            lambda r: r["group"][0].update(
                stratifier=[
                    {
                        "code": [{"text": "payer"}],
                        "stratum": [
                            {"value": {"text": "medicaid"}, "population": _counts(1, 2)},
                            {"value": {"text": "medicaid"}, "population": _counts(1, 3)},
                        ],
                    }
                ]
            )
        ],
        422,
        "DUPLICATE_ROW",
        "MeasureReport.group[0].stratifier[0].stratum[1]",
    ),
    (
        "unknown measure",
        [_set("measure", "https://sponsor.example.org/fhir/Measure/nope|1")],
        422,
        "UNKNOWN_MEASURE",
        "MeasureReport.measure",
    ),
    (
        "unknown version",
        [_set("measure", f"https://sponsor.example.org/fhir/Measure/{PROPORTION}|2.0.0")],
        422,
        "UNKNOWN_MEASURE",
        "MeasureReport.measure",
    ),
    (
        "measure not in the set",
        [_set("measure", "https://sponsor.example.org/fhir/Measure/other|1")],
        422,
        "NOT_ENROLLED",
        "MeasureReport.reporter",
    ),
    (
        "unknown organization",
        [_set("reporter", {"reference": "Organization/nobody"})],
        422,
        "UNKNOWN_TEAM",
        "MeasureReport.reporter",
    ),
    (
        "ambiguous organization",
        [_set("reporter", {"identifier": {"value": "org-b"}})],
        422,
        "AMBIGUOUS_REPORTER",
        "MeasureReport.reporter",
    ),
    (
        "team of another organization",
        [lambda r: r["extension"].append({"url": EXT_TEAM, "valueString": TEAM_B})],
        422,
        "UNKNOWN_TEAM",
        f"MeasureReport.extension.where(url='{EXT_TEAM}')",
    ),
    (
        "future month",
        [_set("period", {"start": "2999-01-01", "end": "2999-01-31"})],
        422,
        "FUTURE_PERIOD",
        "MeasureReport.period",
    ),
    (
        "malformed element",
        [_set(f"{NUMERATOR}.count", "many")],
        400,
        "INVALID_RESOURCE",
        "MeasureReport.group[0].population[3].count",
    ),
    ("unknown element", [_set("colour", "red")], 400, "INVALID_RESOURCE", "MeasureReport.colour"),
    ("missing status", [_set("status", _DROP)], 400, "INVALID_RESOURCE", "MeasureReport.status"),
    (
        "not a MeasureReport",
        [_set("resourceType", "Patient")],
        400,
        "INVALID_RESOURCE",
        "MeasureReport",
    ),
]


async def test_every_rule_answers_its_status_and_outcome(tenant: Tenant) -> None:
    await setup_exchange(tenant)
    for name, changes, status, detail, expression in RULES:
        report = example()
        del report["id"]
        for change in changes:
            change(report)
        response = await post_report(tenant, report)
        assert response.status_code == status, (name, response.text)
        found = issues(response)
        assert (detail, expression) in {(d, e) for _, d, e in found}, (name, found)
    assert await points(tenant) == []
    # an accepted rounding: 0.68 is 156/230 to two decimals
    rounded = example()
    rounded["group"][0]["measureScore"]["value"] = 0.68
    assert (await post_report(tenant, rounded)).status_code == 201


async def test_malformed_requests(tenant: Tenant) -> None:
    headers = await _headers(tenant)
    http = tenant.factory.http
    not_json = await http.post("/fhir/MeasureReport", content=b"{nope", headers=headers)
    assert not_json.status_code == 400
    assert details(not_json) == {"INVALID_JSON"}
    nan = await http.post("/fhir/MeasureReport", content=b'{"resourceType": NaN}', headers=headers)
    assert nan.status_code == 400
    text = await http.post(
        "/fhir/MeasureReport",
        content=b"{}",
        headers={**headers, "Content-Type": "text/plain"},
    )
    assert text.status_code == 415
    assert details(text) == {"UNSUPPORTED_MEDIA_TYPE"}
    no_token = await http.post("/fhir/MeasureReport", json=example())
    assert no_token.status_code == 401
    transaction = await post_bundle(tenant, {"resourceType": "Bundle", "type": "transaction"})
    assert transaction.status_code == 400
    assert issues(transaction)[0][2] == "Bundle.type"


async def test_locked_period_is_a_conflict(tenant: Tenant) -> None:
    await setup_exchange(tenant)
    body = await tenant.gql(LOCK, {"input": {"collaborative": "dm", "through": "2025-03"}})
    assert body["data"]["lockPeriods"]["__typename"] == "LockPeriodsSuccess"
    response = await post_report(tenant, example())
    assert response.status_code == 409
    assert issues(response) == [("conflict", "PERIOD_LOCKED", "MeasureReport.period")]


# --- authorization -------------------------------------------------------------------------------


async def test_scopes_and_ehr_team_binding(tenant: Tenant, tenants: TenantFactory) -> None:
    await setup_exchange(tenant)
    dashboard = await tenant.token(*await tenant.add_client(ClientKind.DASHBOARD))
    forbidden = await post_report(tenant, example(), token=dashboard)
    assert forbidden.status_code == 403
    assert issues(forbidden) == [("forbidden", "FORBIDDEN", None)]

    other_team = await tenant.token(
        *await tenant.add_client(ClientKind.EHR_INTEGRATION, teams=(TEAM_B,))
    )
    wrong = await post_report(tenant, example(), token=other_team)
    assert wrong.status_code == 403
    assert issues(wrong) == [("forbidden", "FORBIDDEN", "MeasureReport.reporter")]
    unbound = await tenant.token(*await tenant.add_client(ClientKind.EHR_INTEGRATION))
    assert (await post_report(tenant, example(), token=unbound)).status_code == 403

    own = await tenant.token(*await tenant.add_client(ClientKind.EHR_INTEGRATION, teams=(TEAM,)))
    assert (await post_report(tenant, example(), token=own)).status_code == 201
    # the id is the key per client: the admin's first use of it is a new call (unchanged)
    assert (await post_report(tenant, example())).status_code == 201

    # an EHR client bound to one of an organization's teams picks that one
    ambiguous = example()
    del ambiguous["id"]
    ambiguous["reporter"] = {"reference": "Organization/org-b"}
    b2 = await tenant.token(*await tenant.add_client(ClientKind.EHR_INTEGRATION, teams=(TEAM_B2,)))
    assert (await post_report(tenant, ambiguous, token=b2)).status_code == 201
    # the team extension names the team for everyone else
    ambiguous["extension"].append({"url": EXT_TEAM, "valueString": TEAM_B})
    assert (await post_report(tenant, ambiguous)).status_code == 201
    teams = {point["team"] for point in await points(tenant)}
    assert teams == {TEAM, TEAM_B, TEAM_B2}

    # another tenant's admin knows none of it
    stranger = await tenants.create()
    missing = await post_report(stranger, example())
    assert missing.status_code == 422
    assert details(missing) == {"UNKNOWN_MEASURE"}


# --- batch ---------------------------------------------------------------------------------------


async def test_batch_bundle_answers_each_entry(tenant: Tenant) -> None:
    await setup_exchange(tenant)
    valid = example()
    not_summary = example() | {"id": "second", "type": "individual"}
    unknown = example() | {"id": "third", "measure": "https://x.example/Measure/nope|1"}
    malformed = example() | {"id": "fourth", "status": 7}
    bundle = bundle_of([valid, not_summary, unknown, malformed, valid])
    bundle["entry"].append({"resource": example(), "request": {"method": "PUT", "url": "X"}})
    bundle["entry"].append({"request": {"method": "POST", "url": "MeasureReport"}})
    response = await post_bundle(tenant, bundle)
    assert response.status_code == 200, response.text
    body = response.json()
    Bundle.model_validate(body)
    assert body["type"] == "batch-response"
    statuses = [entry["response"]["status"] for entry in body["entry"]]
    assert statuses == [
        "201 Created",
        "422 Unprocessable Entity",
        "422 Unprocessable Entity",
        "400 Bad Request",
        "200 OK",
        "405 Method Not Allowed",
        "400 Bad Request",
    ]
    first = body["entry"][0]
    assert first["response"]["location"] == f"MeasureReport/{first['resource']['id']}"
    outcome = body["entry"][1]["response"]["outcome"]
    assert outcome["issue"][0]["expression"] == ["Bundle.entry[1].resource.type"]
    assert body["entry"][3]["response"]["outcome"]["issue"][0]["expression"] == [
        "Bundle.entry[3].resource.status"
    ]
    assert len(await points(tenant)) == 1

    too_many = bundle_of([valid] * 1_001)
    assert (await post_bundle(tenant, too_many)).status_code == 413


# --- search and round trip ---------------------------------------------------------------------


def _rows() -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    for month in ("2024-11", "2024-12", "2025-01"):
        rows.append(
            {
                "team": TEAM,
                "measure": PROPORTION,
                "period": month,
                "numerator": 7,
                "denominator": 9,
                "annotation": "=started huddles" if month == "2024-12" else None,
            }
        )
        rows.append({"team": TEAM, "measure": MEAN, "period": month, "value": -1.25 + 0.1})
        rows.append(
            {
                "team": TEAM_B,
                "measure": BALANCING,
                "period": month,
                "numerator": 3,
                "denominator": 1234,
            }
        )
    for stratum, numerator in (("payer:medicaid", 3), ("payer:private", 4), ("spanish", 1)):
        rows.append(
            {
                "team": TEAM,
                "measure": PROPORTION,
                "period": "2025-01",
                "numerator": numerator,
                "denominator": 5,
                "stratum": stratum,
                "annotation": f"note {stratum}",
            }
        )
    # a stratified report without the all-patients point
    rows.append(
        {
            "team": TEAM_B,
            "measure": PROPORTION,
            "period": "2025-01",
            "numerator": 0,
            "denominator": 2,
            "stratum": "a:b:c",
        }
    )
    return rows


async def all_reports(
    tenant: Tenant, params: Any = None, token: str | None = None
) -> tuple[list[dict[str, Any]], int]:
    """Every report of a search, following next links; (reports, pages)."""
    reports: list[dict[str, Any]] = []
    response = await search(tenant, params, token=token)
    pages = 0
    while True:
        assert response.status_code == 200, response.text
        body = response.json()
        Bundle.model_validate(body)
        assert body["type"] == "searchset"
        pages += 1
        reports += [entry["resource"] for entry in body.get("entry", [])]
        following = [link["url"] for link in body["link"] if link["relation"] == "next"]
        if not following:
            return reports, pages
        response = await search(tenant, token=token, url=following[0])


async def test_search_bundles_validate_meet_deqm_and_round_trip(
    tenant: Tenant, tenants: TenantFactory
) -> None:
    await setup_exchange(tenant)
    receipt = await submit(tenant, _rows())
    assert receipt["status"] == "COMPLETED", receipt
    reports, pages = await all_reports(tenant, {"_count": 3})
    assert len(reports) == 10 and pages == 4
    for report in reports:
        parsed = MeasureReport.model_validate(report)
        assert deqm_issues(parsed) == [], report
        for extension in report["extension"]:
            if extension["url"] == EXT_TEAM:
                assert extension["valueString"] in (TEAM, TEAM_B)
        score = report["group"][0].get("measureScore", {}).get("value")
        if report["measure"].split("/")[-1].startswith(PROPORTION) and score is not None:
            assert 0 <= score <= 1
    balancing = [r for r in reports if f"/{BALANCING}|" in r["measure"]]
    assert len(balancing) == 3
    types = [e for e in balancing[0]["extension"] if e["url"] == EXT_MEASURE_TYPE]
    assert types[0]["valueCodeableConcept"]["coding"][0] == {
        "system": CS_MEASURE_TYPE,
        "code": "balancing",
        "display": "Balancing",
    }
    assert balancing[0]["group"][0]["measureScore"]["value"] == round(3 / 1234 * 1000, 6)
    stratified = next(
        r
        for r in reports
        if r.get("group", [{}])[0].get("stratifier") and "population" in r["group"][0]
    )
    stratifiers = {
        (s["code"][0].get("text"), stratum["value"]["text"])
        for s in stratified["group"][0]["stratifier"]
        for stratum in s["stratum"]
    }
    assert stratifiers == {("payer", "medicaid"), ("payer", "private"), ("stratum", "spanish")}
    annotated = [
        r
        for r in reports
        if any(e["url"] == EXT_ANNOTATION for e in r["group"][0].get("extension", []))
    ]
    assert len(annotated) == 1

    expected = await points(tenant)
    # import the export into another tenant with the same program: identical points
    other = await tenants.create()
    await setup_exchange(other)
    response = await post_bundle(other, bundle_of(reports))
    statuses = {entry["response"]["status"] for entry in response.json()["entry"]}
    assert statuses == {"201 Created"}, response.text
    assert await points(other) == expected

    # delete everything here and import the export back: identical points again
    keys = [{k: point[k] for k in ("team", "measure", "period", "stratum")} for point in expected]
    deleted = await tenant.gql(DELETE, {"input": {"rows": keys}})
    assert deleted["data"]["deleteMeasureData"]["deleted"] == len(expected)
    assert await points(tenant) == []
    response = await post_bundle(tenant, bundle_of(reports))
    assert {entry["response"]["status"] for entry in response.json()["entry"]} == {"201 Created"}
    assert await points(tenant) == expected
    # and the re-exported reports equal the first export but for when they were written
    again, _ = await all_reports(tenant)

    def stable(report: dict[str, Any]) -> dict[str, Any]:
        return {k: v for k, v in report.items() if k not in ("meta", "date")}

    assert [stable(r) for r in again] == [stable(r) for r in reports]


async def test_search_parameters_paging_tenancy_and_read(
    tenant: Tenant, tenants: TenantFactory
) -> None:
    await setup_exchange(tenant)
    await submit(tenant, _rows())
    by_code, _ = await all_reports(tenant, {"measure": MEAN})
    assert len(by_code) == 3
    canonical = by_code[0]["measure"]
    by_canonical, _ = await all_reports(tenant, {"measure": canonical.split("|")[0]})
    assert by_canonical == by_code
    versioned, _ = await all_reports(tenant, {"measure": canonical})
    assert versioned == by_code
    wrong_version, _ = await all_reports(tenant, {"measure": canonical.split("|")[0] + "|9"})
    assert wrong_version == []
    both, _ = await all_reports(tenant, {"measure": f"{MEAN},{BALANCING}"})
    assert len(both) == 6
    reporter, _ = await all_reports(tenant, {"reporter": f"Organization/{ORGANIZATION}"})
    assert len(reporter) == 6
    period, _ = await all_reports(tenant, {"period": "2025-01"})
    assert len(period) == 4
    ranged, _ = await all_reports(tenant, [("period", "ge2024-12"), ("period", "lt2025-01")])
    assert len(ranged) == 3
    year, _ = await all_reports(tenant, {"period": "2024"})
    assert len(year) == 6
    unknown, _ = await all_reports(tenant, {"reporter": "nobody"})
    assert unknown == []

    for params in (
        {"colour": "red"},
        {"period": "March"},
        {"period": "ne2024-01"},
        {"_count": "0"},
        {"_count": "1000"},
        {"_cursor": "!!"},
    ):
        response = await search(tenant, params)
        assert response.status_code == 400, params
        assert details(response) == {"INVALID_PARAMETER"}, params

    # EHR integrations see their own teams only
    ehr = await tenant.token(*await tenant.add_client(ClientKind.EHR_INTEGRATION, teams=(TEAM_B,)))
    own, _ = await all_reports(tenant, token=ehr)
    assert {r["measure"].split("/")[-1].split("|")[0] for r in own} == {BALANCING, PROPORTION}
    assert len(own) == 4
    team_42_report = by_code[0]
    hidden = await tenant.factory.http.get(
        f"/fhir/MeasureReport/{team_42_report['id']}",
        headers={"Authorization": f"Bearer {ehr}"},
    )
    assert hidden.status_code == 404
    # a client without data:read
    writer = await tenant.token(
        *await tenant.add_client(ClientKind.EHR_INTEGRATION, scopes=("data:write",), teams=(TEAM,))
    )
    assert (await search(tenant, token=writer)).status_code == 403

    # read by id; another tenant sees nothing of it
    read = await tenant.factory.http.get(
        f"/fhir/MeasureReport/{team_42_report['id']}", headers=await _headers(tenant)
    )
    assert read.status_code == 200 and read.json() == team_42_report
    stranger = await tenants.create()
    assert (await all_reports(stranger))[0] == []
    foreign = await stranger.factory.http.get(
        f"/fhir/MeasureReport/{team_42_report['id']}", headers=await _headers(stranger)
    )
    assert foreign.status_code == 404
    assert details(foreign) == {"NOT_FOUND"}
    bogus = await tenant.factory.http.get(
        "/fhir/MeasureReport/not-an-id", headers=await _headers(tenant)
    )
    assert bogus.status_code == 404


async def test_capability_statement_is_open_and_valid(http: httpx.AsyncClient) -> None:
    response = await http.get("/fhir/metadata")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith(FHIR)
    statement = CapabilityStatement.model_validate(response.json())
    assert statement.fhirVersion == "4.0.1"
    resource = statement.rest[0].resource[0]  # type: ignore[index]
    assert resource.type == "MeasureReport"
    assert {i.code for i in resource.interaction or []} == {"create", "read", "search-type"}


async def test_body_over_the_fhir_limit_is_413_without_a_length(
    tenant: Tenant, database_url: str
) -> None:
    small = create_app(make_settings(database_url, max_fhir_body_bytes=1024))
    token = await tenant.token()

    async def chunks() -> AsyncIterator[bytes]:
        for _ in range(4):
            yield b" " * 512

    async with LifespanManager(small):
        transport = httpx.ASGITransport(app=small)
        async with httpx.AsyncClient(transport=transport, base_url="http://collabx.test") as client:
            response = await client.post(
                "/fhir/MeasureReport",
                content=chunks(),
                headers={"Authorization": f"Bearer {token}", "Content-Type": FHIR},
            )
    assert response.status_code == 413
    assert issues(response)[0][0] == "too-long"
