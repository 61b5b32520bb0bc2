"""Measure data exchange over GraphQL: submitMeasureData (every per-row code, atomic and not,
counts, idempotency, dry runs, batch limit), receipts, history and audit, team-bound clients,
period locks, deletions with tombstones, the delta export, and concurrent same-key calls."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from asgi_lifespan import LifespanManager
from sqlalchemy import func, select
from starlette.applications import Starlette

from api.app import create_app
from api.state import AppState
from db.enums import ClientKind
from db.models import (
    AuditEvent,
    DataPoint,
    DataPointChangeSet,
    DataPointTombstone,
    IdempotencyKey,
    MeasureDataReceipt,
)
from db.queries.history import HistoryEntry, entries_of
from schema.ids import decode_global_id
from tests.conftest import make_settings
from tests.factories import Tenant, TenantFactory

SETUP_PROGRAM = """
mutation Setup(
  $collaborative: CreateCollaborativeInput!, $other: CreateCollaborativeInput!,
  $organization: CreateOrganizationInput!,
  $proportion: DefineMeasureInput!, $mean: DefineMeasureInput!, $count: DefineMeasureInput!,
  $rate: DefineMeasureInput!
) {
  c1: createCollaborative(input: $collaborative) { __typename }
  c2: createCollaborative(input: $other) { __typename }
  o: createOrganization(input: $organization) { __typename }
  m1: defineMeasure(input: $proportion) { __typename }
  m2: defineMeasure(input: $mean) { __typename }
  m3: defineMeasure(input: $count) { __typename }
  m4: defineMeasure(input: $rate) { __typename }
}
"""

SETUP_ENROLLMENT = """
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

RECEIPT_FIELDS = """
receiptId status operation rows created updated unchanged deleted rejected atomic replayed
idempotencyKey clientId source submittedAt
conflicts { index code field message }
"""

SUBMIT = f"""
mutation Submit($input: SubmitMeasureDataInput!) {{
  submitMeasureData(input: $input) {{
    __typename
    ... on MeasureDataReceipt {{ {RECEIPT_FIELDS} }}
    ... on Error {{ code message }}
    ... on ValidationError {{ field }}
    ... on BatchTooLargeError {{ maxRows rows }}
    ... on IdempotencyMismatchError {{ idempotencyKey }}
    ... on InProgressError {{ retryAfterSeconds }}
  }}
}}
"""

DELETE = f"""
mutation Delete($input: DeleteMeasureDataInput!) {{
  deleteMeasureData(input: $input) {{
    __typename
    ... on MeasureDataReceipt {{ {RECEIPT_FIELDS} }}
    ... on Error {{ code message }}
  }}
}}
"""

RECEIPT = f"""
query Receipt($id: ID!) {{ receipt(id: $id) {{ {RECEIPT_FIELDS} }} }}
"""

SERIES = """
query Series($team: String!, $measure: String!) {
  team(code: $team) {
    measureSeries(measure: $measure) {
      points {
        period numerator denominator value annotations
        measureVersion status updatedAt updatedBy receiptId
      }
    }
  }
}
"""

DATA_POINTS = """
query Points($filter: DataPointFilter, $first: Int, $after: String) {
  dataPoints(filter: $filter, first: $first, after: $after) {
    totalCount
    pageInfo { hasNextPage endCursor }
    edges {
      cursor
      node {
        id team { code } measure { code } measureVersion period stratum numerator denominator
        value annotation status deleted updatedAt updatedBy receiptId
      }
    }
  }
}
"""

LOCK = """
mutation Lock($input: LockPeriodsInput!) {
  lockPeriods(input: $input) {
    __typename
    ... on LockPeriodsSuccess { collaborative { code } lock { through lockedBy lockedAt } changed }
    ... on Error { code message }
  }
}
"""

UNLOCK = """
mutation Unlock($input: UnlockPeriodsInput!) {
  unlockPeriods(input: $input) {
    __typename
    ... on UnlockPeriodsSuccess { collaborative { code } lock { through } changed }
    ... on Error { code message }
    ... on ValidationError { field }
  }
}
"""

NODE = """
query Node($id: ID!) {
  node(id: $id) { id ... on DataPoint { period deleted team { code } measure { code } } }
}
"""

PROPORTION = "control"
MEAN = "los"
COUNT = "falls"
RATE = "errors"
TEAM = "mercy"
TEAM_B = "river"
OUTSIDER = "lakeside"
"""Enrolled in the other collaborative, whose measure set is empty (NOT_ENROLLED)."""


# --- helpers -------------------------------------------------------------------------------


def _measure(code: str, scoring: str) -> dict[str, Any]:
    values: dict[str, Any] = {
        "code": code,
        "name": f"Measure {code}",
        "type": "OUTCOME",
        "scoring": scoring,
        "improvementDirection": "INCREASE",
    }
    if scoring in ("PROPORTION", "RATE", "RATIO"):
        values.update(numerator="Patients with the outcome", denominator="Eligible patients")
    return values


def _team(code: str, collaborative: str) -> dict[str, Any]:
    return {
        "collaborative": collaborative,
        "organization": "org",
        "code": code,
        "name": f"Team {code}",
    }


async def setup_program(tenant: Tenant) -> None:
    """Collaborative ``asthma`` (four measures, teams mercy and river) and ``other`` (no
    measures, team lakeside)."""
    body = await tenant.gql(
        SETUP_PROGRAM,
        {
            "collaborative": {"code": "asthma", "name": "Asthma", "topic": "Asthma"},
            "other": {"code": "other", "name": "Other", "topic": "Diabetes"},
            "organization": {"code": "org", "name": "Clinic"},
            "proportion": _measure(PROPORTION, "PROPORTION") | {"multiplier": 100},
            "mean": _measure(MEAN, "MEAN"),
            "count": _measure(COUNT, "COUNT"),
            "rate": _measure(RATE, "RATE") | {"multiplier": 1000},
        },
    )
    assert "errors" not in body, body
    body = await tenant.gql(
        SETUP_ENROLLMENT,
        {
            "a1": {"collaborative": "asthma", "measure": PROPORTION},
            "a2": {"collaborative": "asthma", "measure": MEAN},
            "a3": {"collaborative": "asthma", "measure": COUNT},
            "a4": {"collaborative": "asthma", "measure": RATE},
            "t1": _team(TEAM, "asthma"),
            "t2": _team(TEAM_B, "asthma"),
            "t3": _team(OUTSIDER, "other"),
        },
    )
    assert "errors" not in body, body
    assert {value["__typename"] for value in body["data"].values()} <= {
        "AddMeasureToCollaborativeSuccess",
        "EnrollTeamSuccess",
    }, body


def row(
    period: str = "2024-01",
    numerator: Any = 5,
    denominator: Any = 10,
    *,
    team: str = TEAM,
    measure: str = PROPORTION,
    **extra: Any,
) -> dict[str, Any]:
    values: dict[str, Any] = {"team": team, "measure": measure, "period": period}
    if numerator is not None:
        values["numerator"] = numerator
    if denominator is not None:
        values["denominator"] = denominator
    values.update(extra)
    return values


async def submit(
    tenant: Tenant, rows: list[dict[str, Any]], *, token: str | None = None, **options: Any
) -> dict[str, Any]:
    body = await tenant.gql(SUBMIT, {"input": {"rows": rows, **options}}, token=token)
    assert "errors" not in body, body
    result: dict[str, Any] = body["data"]["submitMeasureData"]
    return result


def key(
    period: str = "2024-01", *, team: str = TEAM, measure: str = PROPORTION, stratum: str = ""
) -> dict[str, Any]:
    return {"team": team, "measure": measure, "period": period, "stratum": stratum}


async def delete(tenant: Tenant, rows: list[dict[str, Any]], **options: Any) -> dict[str, Any]:
    body = await tenant.gql(DELETE, {"input": {"rows": rows, **options}})
    assert "errors" not in body, body
    result: dict[str, Any] = body["data"]["deleteMeasureData"]
    return result


async def series(tenant: Tenant, team: str = TEAM, measure: str = PROPORTION) -> list[Any]:
    body = await tenant.gql(SERIES, {"team": team, "measure": measure})
    assert "errors" not in body, body
    points: list[Any] = body["data"]["team"]["measureSeries"]["points"]
    return points


async def data_points(tenant: Tenant, token: str | None = None, **variables: Any) -> Any:
    body = await tenant.gql(DATA_POINTS, variables, token=token)
    assert "errors" not in body, body
    return body["data"]["dataPoints"]


def sessionmaker(app: Starlette) -> Any:
    state: AppState = app.state.collabx
    return state.sessionmaker


async def counts(app: Starlette, tenant: Tenant) -> dict[str, int]:
    """Rows of each data-exchange table in the tenant."""
    found: dict[str, int] = {}
    async with sessionmaker(app)() as session:
        for model in (
            DataPoint,
            DataPointChangeSet,
            DataPointTombstone,
            IdempotencyKey,
            MeasureDataReceipt,
            AuditEvent,
        ):
            found[model.__tablename__] = int(
                await session.scalar(
                    select(func.count())
                    .select_from(model)
                    .where(model.sponsor_id == tenant.sponsor_id)
                )
                or 0
            )
    return found


async def history(app: Starlette, tenant: Tenant) -> list[tuple[DataPointChangeSet, HistoryEntry]]:
    """Every recorded point of the tenant's change sets, with its change set, oldest first."""
    async with sessionmaker(app)() as session:
        change_sets = (
            await session.scalars(
                select(DataPointChangeSet)
                .where(DataPointChangeSet.sponsor_id == tenant.sponsor_id)
                .order_by(DataPointChangeSet.at)
            )
        ).all()
    return [
        (change_set, entry)
        for change_set in change_sets
        for entry in entries_of(change_set.changes)
    ]


def conflict_codes(receipt: dict[str, Any]) -> dict[int, list[str]]:
    found: dict[int, list[str]] = {}
    for conflict in receipt["conflicts"]:
        found.setdefault(conflict["index"], []).append(conflict["code"])
    return found


def error_codes(body: dict[str, Any]) -> list[str]:
    return [error.get("extensions", {}).get("code") for error in body.get("errors", [])]


def next_month() -> str:
    now = datetime.now(UTC)
    year, month = (now.year + 1, 1) if now.month == 12 else (now.year, now.month + 1)
    return f"{year:04d}-{month:02d}"


# --- submissions ---------------------------------------------------------------------------


async def test_submit_counts_created_updated_unchanged_and_series_shows_provenance(
    tenant: Tenant,
) -> None:
    await setup_program(tenant)
    first = await submit(
        tenant,
        [
            row("2024-01", 5, 10, annotation="Started huddles"),
            row("2024-02", 6, 10),
            row("2024-03", 7, 10),
            row("2024-01", None, None, measure=MEAN, value=3.5),
            row("2024-01", None, None, measure=COUNT, value=4),
            row("2024-01", 12, 4000, measure=RATE),
        ],
    )
    assert first["__typename"] == "MeasureDataReceipt", first
    assert (first["status"], first["created"], first["updated"], first["unchanged"]) == (
        "COMPLETED",
        6,
        0,
        0,
    )
    assert first["rejected"] == 0 and first["conflicts"] == []
    assert first["operation"] == "SUBMIT" and first["rows"] == 6 and first["replayed"] is False
    assert first["clientId"] == tenant.admin_id and first["source"] == "graphql"

    second = await submit(
        tenant,
        [
            row("2024-01", 5, 10, annotation="Started huddles"),  # same
            row("2024-02", 8, 10),  # changed
            row("2024-03", 7, 10, annotation="note"),  # annotation changed
            row("2024-04", 9, 10),  # new
        ],
    )
    assert (second["created"], second["updated"], second["unchanged"]) == (1, 2, 1), second

    points = await series(tenant)
    assert [(p["period"], p["numerator"], p["value"]) for p in points] == [
        ("2024-01", 5, 50.0),
        ("2024-02", 8, 80.0),
        ("2024-03", 7, 70.0),
        ("2024-04", 9, 90.0),
    ]
    assert points[0]["annotations"] == ["Started huddles"]
    assert points[0]["receiptId"] == first["receiptId"]  # unchanged: not rewritten
    assert points[1]["receiptId"] == second["receiptId"]
    assert {p["updatedBy"] for p in points} == {tenant.admin_id}
    assert {p["measureVersion"] for p in points} == {1}
    assert {p["status"] for p in points} == {"SUBMITTED"}
    assert all(p["updatedAt"] for p in points)
    mean = await series(tenant, measure=MEAN)
    assert [(p["numerator"], p["value"]) for p in mean] == [(None, 3.5)]
    rate = await series(tenant, measure=RATE)
    assert rate[0]["value"] == pytest.approx(3.0)

    body = await tenant.gql(RECEIPT, {"id": second["receiptId"]})
    assert body["data"]["receipt"] == {k: v for k, v in second.items() if k != "__typename"}


async def test_every_row_code_is_explained_and_valid_rows_are_written_when_not_atomic(
    app: Starlette, tenant: Tenant
) -> None:
    await setup_program(tenant)
    rows = [
        row("2024-01"),  # 0 valid
        row(team="nobody"),  # 1
        row(measure="nothing"),  # 2
        row(team=OUTSIDER),  # 3 measure not in its collaborative's set
        row("2024-02", -1, 10),  # 4
        row("2024-03", 2.5, 10),  # 5
        row("2024-04", 5, 2**53),  # 6 too large
        row("2024-05", 11, 10),  # 7
        row("2024-06", 1, 0),  # 8
        row("2024-07", 5, None),  # 9 proportion without a denominator
        row("2024-07", None, None, measure=MEAN),  # 10 mean without a value
        row("2024-1"),  # 11
        row("2024-00"),  # 12
        row("2024-13"),  # 13
        row("0000-05"),  # 14
        row(next_month()),  # 15
        row("2024-01"),  # 16 duplicate of row 0
        row("2024-08", annotation="bad\x00text"),  # 17
        row("2023-08", annotation="x" * 2001),  # 18
        row("2024-09", stratum="s" * 65),  # 19
        row("2024-09", stratum="a\x00b"),  # 20
        row("2024-10", None, None, measure=COUNT, value=-2),  # 21
        row("2024-11", None, None, measure=COUNT, value=1.5),  # 22
        row("2024-11", 3, 10, measure=RATE, stratum="payer:medicaid", annotation="ok"),  # 23
        row("2024-12", 12, 10, measure=RATE),  # 24 rate above 1 is fine
    ]
    receipt = await submit(tenant, rows, atomic=False)
    assert receipt["__typename"] == "MeasureDataReceipt", receipt
    assert receipt["status"] == "PARTIAL"
    codes = conflict_codes(receipt)
    assert codes == {
        1: ["UNKNOWN_TEAM"],
        2: ["UNKNOWN_MEASURE"],
        3: ["NOT_ENROLLED"],
        4: ["INVALID_COUNT"],
        5: ["INVALID_COUNT"],
        6: ["INVALID_COUNT"],
        7: ["NUMERATOR_EXCEEDS_DENOMINATOR"],
        8: ["ZERO_DENOMINATOR"],
        9: ["MISSING_VALUE"],
        10: ["MISSING_VALUE"],
        11: ["INVALID_PERIOD"],
        12: ["INVALID_PERIOD"],
        13: ["INVALID_PERIOD"],
        14: ["INVALID_PERIOD"],
        15: ["FUTURE_PERIOD"],
        16: ["DUPLICATE_ROW"],
        17: ["INVALID_TEXT"],
        18: ["INVALID_TEXT"],
        19: ["INVALID_TEXT"],
        20: ["INVALID_TEXT"],
        21: ["INVALID_COUNT"],
        22: ["INVALID_COUNT"],
    }, receipt["conflicts"]
    fields = {c["index"]: c["field"] for c in receipt["conflicts"]}
    assert fields[1] == "team" and fields[2] == "measure" and fields[4] == "numerator"
    assert fields[6] == "denominator" and fields[9] == "denominator" and fields[10] == "value"
    assert fields[11] == "period" and fields[17] == "annotation" and fields[19] == "stratum"
    assert all(c["message"] for c in receipt["conflicts"])
    assert (receipt["created"], receipt["rejected"]) == (3, 22)
    assert (await counts(app, tenant))["data_points"] == 3


async def test_atomic_batch_with_a_bad_row_writes_nothing_and_explains_it(
    app: Starlette, tenant: Tenant
) -> None:
    await setup_program(tenant)
    before = await counts(app, tenant)
    receipt = await submit(tenant, [row("2024-01"), row("2024-02", 11, 10), row("2024-03")])
    assert receipt["status"] == "REJECTED"
    assert (receipt["created"], receipt["updated"], receipt["unchanged"]) == (0, 0, 0)
    assert receipt["rejected"] == 1
    assert receipt["conflicts"] == [
        {
            "index": 1,
            "code": "NUMERATOR_EXCEEDS_DENOMINATOR",
            "field": "numerator",
            "message": receipt["conflicts"][0]["message"],
        }
    ]
    after = await counts(app, tenant)
    assert after["data_points"] == before["data_points"] == 0
    # the attempt itself is on record
    assert (
        after["measure_data_receipts"] == 1 and after["audit_events"] == before["audit_events"] + 1
    )


async def test_history_of_every_write_and_one_audit_event_per_batch(
    app: Starlette, tenant: Tenant
) -> None:
    await setup_program(tenant)
    before = await counts(app, tenant)
    first = await submit(tenant, [row("2024-01", 5, 10), row("2024-02", 6, 10)])
    second = await submit(
        tenant, [row("2024-01", 7, 10, annotation="fixed"), row("2024-02", 6, 10)]
    )
    assert (second["updated"], second["unchanged"]) == (1, 1)
    after = await counts(app, tenant)
    # one change set per call that wrote: both created points, then the one updated
    assert after["data_point_change_sets"] == before["data_point_change_sets"] + 2
    assert after["audit_events"] == before["audit_events"] + 2
    recorded = await history(app, tenant)
    assert [(str(s.id), e.action, e.period) for s, e in recorded] == [
        (first["receiptId"], "CREATE", "2024-01"),
        (first["receiptId"], "CREATE", "2024-02"),
        (second["receiptId"], "UPDATE", "2024-01"),
    ]
    created = recorded[0][1]
    assert created.before is None and created.after is not None
    assert (created.after["numerator"], created.after["denominator"]) == (5, 10)
    change_set, updated = recorded[2]
    assert updated.data_point_id == created.data_point_id
    assert updated.before is not None and updated.after is not None
    assert (updated.before["numerator"], updated.before["annotation"]) == (5, "")
    assert (updated.after["numerator"], updated.after["annotation"]) == (7, "fixed")
    assert updated.before["status"] == updated.after["status"] == "SUBMITTED"
    assert change_set.client_id == tenant.admin_id
    async with sessionmaker(app)() as session:
        events = (
            await session.scalars(
                select(AuditEvent).where(
                    AuditEvent.sponsor_id == tenant.sponsor_id,
                    AuditEvent.entity_type == "MeasureDataReceipt",
                )
            )
        ).all()
    by_receipt = {event.entity_id: event for event in events}
    assert set(by_receipt) == {first["receiptId"], second["receiptId"]}
    audited = by_receipt[second["receiptId"]]
    assert audited.action == "measure_data.submit"
    assert audited.after is not None and audited.after["updated"] == 1
    assert audited.after["unchanged"] == 1 and audited.actor_client_id == tenant.admin_id


# --- idempotency and dry runs -----------------------------------------------------------------


async def test_replaying_a_key_returns_the_first_receipt_and_writes_nothing(
    app: Starlette, tenant: Tenant
) -> None:
    await setup_program(tenant)
    rows = [row("2024-01", 5, 10), row("2024-02", 6, 10)]
    first = await submit(tenant, rows, idempotencyKey="batch-1")
    assert first["status"] == "COMPLETED" and first["idempotencyKey"] == "batch-1"
    before = await counts(app, tenant)

    # the same rows (counts written as floats are the same numbers) replay
    again = await submit(
        tenant, [row("2024-01", 5.0, 10), row("2024-02", 6, 10)], idempotencyKey="batch-1"
    )
    assert again["receiptId"] == first["receiptId"]
    assert again["replayed"] is True
    assert (again["created"], again["updated"]) == (2, 0)  # the first call's counts
    assert await counts(app, tenant) == before

    mismatch = await submit(tenant, [row("2024-01", 9, 10)], idempotencyKey="batch-1")
    assert mismatch["__typename"] == "IdempotencyMismatchError", mismatch
    assert mismatch["code"] == "IDEMPOTENCY_MISMATCH"
    atomic_differs = await submit(tenant, rows, idempotencyKey="batch-1", atomic=False)
    assert atomic_differs["code"] == "IDEMPOTENCY_MISMATCH"
    deletion = await delete(tenant, [key("2024-01")], idempotencyKey="batch-1")
    assert deletion["code"] == "IDEMPOTENCY_MISMATCH"
    assert await counts(app, tenant) == before

    # keys are per client: another client may use the same key for its own call
    other_id, other_secret = await tenant.add_client(ClientKind.ADMIN)
    token = await tenant.token(other_id, other_secret)
    other = await submit(tenant, [row("2024-03")], idempotencyKey="batch-1", token=token)
    assert other["status"] == "COMPLETED" and other["receiptId"] != first["receiptId"]


async def test_a_rejected_call_does_not_keep_its_key(app: Starlette, tenant: Tenant) -> None:
    await setup_program(tenant)
    rejected = await submit(tenant, [row("2024-01", 11, 10)], idempotencyKey="k-1")
    assert rejected["status"] == "REJECTED"
    fixed = await submit(tenant, [row("2024-01", 9, 10)], idempotencyKey="k-1")
    assert fixed["status"] == "COMPLETED" and fixed["created"] == 1
    assert fixed["receiptId"] != rejected["receiptId"]
    replay = await submit(tenant, [row("2024-01", 9, 10)], idempotencyKey="k-1")
    assert replay["receiptId"] == fixed["receiptId"] and replay["replayed"] is True
    # a partial call keeps its key
    partial = await submit(
        tenant, [row("2024-02"), row("2024-03", 11, 10)], atomic=False, idempotencyKey="k-2"
    )
    assert partial["status"] == "PARTIAL"
    again = await submit(
        tenant, [row("2024-02"), row("2024-03", 11, 10)], atomic=False, idempotencyKey="k-2"
    )
    assert again["receiptId"] == partial["receiptId"]


async def test_dry_run_checks_everything_and_writes_nothing(app: Starlette, tenant: Tenant) -> None:
    await setup_program(tenant)
    await submit(tenant, [row("2024-01", 5, 10)])
    before = await counts(app, tenant)
    dry = await submit(
        tenant,
        [row("2024-01", 5, 10), row("2024-02", 6, 10), row("2024-01", 3, 10, team=TEAM_B)],
        dryRun=True,
        idempotencyKey="dry-1",
    )
    assert dry["status"] == "DRY_RUN"
    assert (dry["created"], dry["updated"], dry["unchanged"]) == (2, 0, 1)
    assert await counts(app, tenant) == before
    body = await tenant.gql(RECEIPT, {"id": dry["receiptId"]})
    assert body["data"]["receipt"] is None  # dry runs are not stored

    bad = await submit(tenant, [row("2024-02", 6, 10), row("2024-03", -1, 10)], dryRun=True)
    assert bad["status"] == "DRY_RUN" and conflict_codes(bad) == {1: ["INVALID_COUNT"]}
    assert bad["created"] == 0  # atomic: the real call would write nothing
    partial = await submit(
        tenant, [row("2024-02", 6, 10), row("2024-03", -1, 10)], dryRun=True, atomic=False
    )
    assert (partial["created"], partial["rejected"]) == (1, 1)
    assert await counts(app, tenant) == before

    # the dry run did not keep its key: the real call may use it
    real = await submit(
        tenant,
        [row("2024-01", 5, 10), row("2024-02", 6, 10), row("2024-01", 3, 10, team=TEAM_B)],
        idempotencyKey="dry-1",
    )
    assert real["status"] == "COMPLETED" and real["created"] == 2
    # and a dry run of a used key answers what the real call would: the stored receipt
    peek = await submit(
        tenant,
        [row("2024-01", 5, 10), row("2024-02", 6, 10), row("2024-01", 3, 10, team=TEAM_B)],
        idempotencyKey="dry-1",
        dryRun=True,
    )
    assert peek["receiptId"] == real["receiptId"] and peek["replayed"] is True


@pytest.fixture
async def small_batch_http(database_url: str) -> AsyncIterator[tuple[Starlette, httpx.AsyncClient]]:
    app = create_app(make_settings(database_url, max_batch_rows=5))
    async with LifespanManager(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://collabx.test") as client:
            yield app, client


async def test_batch_over_the_configured_limit_is_a_clear_error(
    small_batch_http: tuple[Starlette, httpx.AsyncClient],
) -> None:
    app, http = small_batch_http
    tenant = await TenantFactory(app, http).create()
    await setup_program(tenant)
    rows = [row(f"2024-{month:02d}") for month in range(1, 7)]
    result = await submit(tenant, rows)
    assert result["__typename"] == "BatchTooLargeError", result
    assert (result["code"], result["maxRows"], result["rows"]) == ("BATCH_TOO_LARGE", 5, 6)
    assert (await counts(app, tenant))["measure_data_receipts"] == 0
    fits = await submit(tenant, rows[:5])
    assert fits["status"] == "COMPLETED"


async def test_input_level_validation(tenant: Tenant) -> None:
    await setup_program(tenant)
    empty = await submit(tenant, [])
    assert (empty["__typename"], empty["field"]) == ("ValidationError", "rows")
    long_key = await submit(tenant, [row()], idempotencyKey="k" * 256)
    assert (long_key["__typename"], long_key["field"]) == ("ValidationError", "idempotencyKey")
    body = await tenant.gql(SUBMIT, {"input": {"rows": [row(numerator="5")]}})
    assert error_codes(body) == ["VALIDATION"]  # a count is a JSON number


async def test_counts_beyond_32_bits_round_trip(tenant: Tenant) -> None:
    await setup_program(tenant)
    big = 2**53 - 1
    receipt = await submit(tenant, [row("2024-01", 2**40, big, measure=RATE)])
    assert receipt["status"] == "COMPLETED", receipt
    points = await series(tenant, measure=RATE)
    assert (points[0]["numerator"], points[0]["denominator"]) == (2**40, big)
    exported = await data_points(tenant, filter={"measure": RATE})
    assert exported["edges"][0]["node"]["denominator"] == big


# --- clients, scopes and tenancy ---------------------------------------------------------------


async def test_ehr_client_writes_and_reads_only_its_own_teams(
    app: Starlette, tenant: Tenant
) -> None:
    await setup_program(tenant)
    ehr_id, ehr_secret = await tenant.add_client(ClientKind.EHR_INTEGRATION, teams=(TEAM,))
    token = await tenant.token(ehr_id, ehr_secret)
    receipt = await submit(
        tenant, [row("2024-01"), row("2024-01", team=TEAM_B)], atomic=False, token=token
    )
    assert receipt["status"] == "PARTIAL"
    assert receipt["conflicts"][0]["index"] == 1
    assert (receipt["conflicts"][0]["code"], receipt["conflicts"][0]["field"]) == (
        "FORBIDDEN",
        "team",
    )
    await submit(tenant, [row("2024-02", team=TEAM_B)])  # the admin writes for any team

    own = await tenant.gql(RECEIPT, {"id": receipt["receiptId"]}, token=token)
    assert own["data"]["receipt"]["receiptId"] == receipt["receiptId"]
    admin_view = await tenant.gql(RECEIPT, {"id": receipt["receiptId"]})
    assert admin_view["data"]["receipt"]["clientId"] == ehr_id
    other_id, other_secret = await tenant.add_client(ClientKind.EHR_INTEGRATION, teams=(TEAM,))
    other_token = await tenant.token(other_id, other_secret)
    hidden = await tenant.gql(RECEIPT, {"id": receipt["receiptId"]}, token=other_token)
    assert hidden["data"]["receipt"] is None

    exported = await data_points(tenant, token=token)
    assert {edge["node"]["team"]["code"] for edge in exported["edges"]} == {TEAM}
    everything = await data_points(tenant)
    assert everything["totalCount"] == 2

    unbound_id, unbound_secret = await tenant.add_client(ClientKind.EHR_INTEGRATION)
    unbound = await submit(
        tenant, [row("2024-03")], token=await tenant.token(unbound_id, unbound_secret)
    )
    assert (unbound["__typename"], unbound["code"]) == ("ForbiddenError", "FORBIDDEN")


async def test_scopes_are_required(tenant: Tenant) -> None:
    await setup_program(tenant)
    dashboard_id, dashboard_secret = await tenant.add_client(ClientKind.DASHBOARD)
    dashboard = await tenant.token(dashboard_id, dashboard_secret)
    body = await tenant.gql(SUBMIT, {"input": {"rows": [row()]}}, token=dashboard)
    assert error_codes(body) == ["FORBIDDEN"]
    body = await tenant.gql(
        LOCK, {"input": {"collaborative": "asthma", "through": "2024-01"}}, token=dashboard
    )
    assert error_codes(body) == ["FORBIDDEN"]
    partner_id, partner_secret = await tenant.add_client(ClientKind.PARTNER)
    partner = await tenant.token(partner_id, partner_secret)
    body = await tenant.gql(DATA_POINTS, {}, token=partner)
    assert error_codes(body) == ["FORBIDDEN"]
    body = await tenant.gql(RECEIPT, {"id": str(uuid.uuid4())}, token=partner)
    assert error_codes(body) == ["FORBIDDEN"]
    ehr_id, ehr_secret = await tenant.add_client(
        ClientKind.EHR_INTEGRATION, scopes=("data:write",), teams=(TEAM,)
    )
    writer = await tenant.token(ehr_id, ehr_secret)
    body = await tenant.gql(RECEIPT, {"id": str(uuid.uuid4())}, token=writer)
    assert "errors" not in body and body["data"]["receipt"] is None  # data:write may read receipts


async def test_other_tenants_see_nothing(tenants: TenantFactory) -> None:
    first, second = await tenants.create(), await tenants.create()
    await setup_program(first)
    await setup_program(second)
    receipt = await submit(first, [row("2024-01")])
    body = await second.gql(RECEIPT, {"id": receipt["receiptId"]})
    assert body["data"]["receipt"] is None
    assert (await data_points(second))["totalCount"] == 0
    assert (await data_points(first))["totalCount"] == 1
    # codes resolve in the caller's own sponsor only
    only_theirs = await submit(second, [row("2024-01", team="x-" + TEAM)])
    assert conflict_codes(only_theirs) == {0: ["UNKNOWN_TEAM"]}
    body = await second.gql(RECEIPT, {"id": "not-a-uuid"})
    assert body["data"]["receipt"] is None


# --- period locks -------------------------------------------------------------------------------


async def test_locking_and_unlocking_periods(app: Starlette, tenant: Tenant) -> None:
    await setup_program(tenant)
    await submit(tenant, [row("2024-01"), row("2024-02"), row("2024-03")])
    body = await tenant.gql(LOCK, {"input": {"collaborative": "asthma", "through": "2024-02"}})
    locked = body["data"]["lockPeriods"]
    assert locked["__typename"] == "LockPeriodsSuccess", locked
    assert locked["lock"]["through"] == "2024-02" and locked["changed"] is True
    assert locked["lock"]["lockedBy"] == tenant.admin_id

    receipt = await submit(
        tenant,
        [row("2024-01", 9, 10), row("2024-03", 9, 10), row("2024-02", team=TEAM_B)],
        atomic=False,
    )
    assert conflict_codes(receipt) == {0: ["PERIOD_LOCKED"], 2: ["PERIOD_LOCKED"]}
    assert receipt["updated"] == 1
    deletion = await delete(tenant, [key("2024-02")])
    assert deletion["status"] == "REJECTED" and conflict_codes(deletion) == {0: ["PERIOD_LOCKED"]}
    statuses = [(p["period"], p["status"]) for p in await series(tenant)]
    assert statuses == [("2024-01", "LOCKED"), ("2024-02", "LOCKED"), ("2024-03", "SUBMITTED")]
    exported = await data_points(tenant)
    assert {e["node"]["period"]: e["node"]["status"] for e in exported["edges"]} == {
        "2024-01": "LOCKED",
        "2024-02": "LOCKED",
        "2024-03": "SUBMITTED",
    }

    # a lock only moves forward through lockPeriods
    body = await tenant.gql(LOCK, {"input": {"collaborative": "asthma", "through": "2024-01"}})
    assert body["data"]["lockPeriods"]["changed"] is False
    assert body["data"]["lockPeriods"]["lock"]["through"] == "2024-02"
    body = await tenant.gql(UNLOCK, {"input": {"collaborative": "asthma", "through": "2024-05"}})
    assert body["data"]["unlockPeriods"]["__typename"] == "ValidationError"
    body = await tenant.gql(UNLOCK, {"input": {"collaborative": "asthma", "through": "2024-01"}})
    assert body["data"]["unlockPeriods"]["lock"] == {"through": "2024-01"}
    assert (await submit(tenant, [row("2024-02", 1, 10)]))["updated"] == 1
    assert (await submit(tenant, [row("2024-01", 1, 10)]))["status"] == "REJECTED"
    body = await tenant.gql(UNLOCK, {"input": {"collaborative": "asthma"}})
    assert body["data"]["unlockPeriods"]["lock"] is None
    assert body["data"]["unlockPeriods"]["changed"] is True
    assert (await submit(tenant, [row("2024-01", 1, 10)]))["updated"] == 1

    body = await tenant.gql(LOCK, {"input": {"collaborative": "nope", "through": "2024-01"}})
    assert body["data"]["lockPeriods"]["code"] == "NOT_FOUND"
    async with sessionmaker(app)() as session:
        actions = (
            await session.scalars(
                select(AuditEvent.action).where(
                    AuditEvent.sponsor_id == tenant.sponsor_id,
                    AuditEvent.entity_type == "PeriodLock",
                )
            )
        ).all()
    assert sorted(actions) == ["periods.lock", "periods.unlock", "periods.unlock"]


# --- deletions and the delta export ---------------------------------------------------------------


async def test_delete_leaves_a_tombstone_and_removes_the_point_from_series(
    app: Starlette, tenant: Tenant
) -> None:
    await setup_program(tenant)
    await submit(tenant, [row("2024-01"), row("2024-02"), row("2024-02", stratum="payer:x")])
    original = await data_points(tenant, filter={"from": "2024-02", "to": "2024-02"})
    point_id = next(e["node"]["id"] for e in original["edges"] if e["node"]["stratum"] == "")
    receipt = await delete(
        tenant, [key("2024-02"), key("2024-05"), key("2024-02", team="nobody")], atomic=False
    )
    assert receipt["operation"] == "DELETE" and receipt["status"] == "PARTIAL"
    assert (receipt["deleted"], receipt["unchanged"], receipt["rejected"]) == (1, 1, 1)
    assert [p["period"] for p in await series(tenant)] == ["2024-01"]

    exported = await data_points(tenant)
    nodes = {(e["node"]["period"], e["node"]["stratum"]): e["node"] for e in exported["edges"]}
    tombstone = nodes[("2024-02", "")]
    assert tombstone["deleted"] is True and tombstone["id"] == point_id
    assert (tombstone["numerator"], tombstone["status"]) == (None, None)
    assert tombstone["receiptId"] == receipt["receiptId"]
    assert exported["edges"][-1]["node"]["id"] == point_id  # the latest change comes last
    assert nodes[("2024-02", "payer:x")]["deleted"] is False
    deleted = [(str(s.id), e) for s, e in await history(app, tenant) if e.action == "DELETE"]
    assert [(receipt_id, e.period, e.stratum) for receipt_id, e in deleted] == [
        (receipt["receiptId"], "2024-02", "")
    ]
    tombstoned = deleted[0][1]
    assert tombstoned.data_point_id == decode_global_id(point_id)[1] and tombstoned.after is None
    assert tombstoned.before is not None and tombstoned.before["numerator"] == 5

    again = await submit(tenant, [row("2024-02", 4, 10)])
    assert again["created"] == 1
    restored = await data_points(tenant, filter={"from": "2024-02", "to": "2024-02"})
    live = [e["node"] for e in restored["edges"] if e["node"]["stratum"] == ""]
    assert len(live) == 1 and live[0]["id"] == point_id and live[0]["deleted"] is False
    assert (await counts(app, tenant))["data_point_tombstones"] == 0


async def test_delta_export_pages_in_update_order_from_updated_since(tenant: Tenant) -> None:
    await setup_program(tenant)
    await submit(tenant, [row(f"2023-{m:02d}") for m in range(1, 13)])
    body = await tenant.gql(DATA_POINTS, {"first": 5})
    boundary = body["data"]["dataPoints"]["edges"][0]["node"]["updatedAt"]
    await asyncio.sleep(0.01)
    later = await submit(tenant, [row("2023-03", 1, 10), row("2024-01", team=TEAM_B)])
    assert (later["updated"], later["created"]) == (1, 1)
    since = later["submittedAt"]
    assert since > boundary

    seen: list[str] = []
    after: str | None = None
    while True:
        page = await data_points(tenant, first=5, after=after)
        assert page["totalCount"] == 13
        seen += [edge["node"]["id"] for edge in page["edges"]]
        if not page["pageInfo"]["hasNextPage"]:
            break
        after = page["pageInfo"]["endCursor"]
    assert len(seen) == len(set(seen)) == 13

    changed = await data_points(tenant, filter={"updatedSince": since})
    assert changed["totalCount"] == 2
    assert {(e["node"]["team"]["code"], e["node"]["period"]) for e in changed["edges"]} == {
        (TEAM, "2023-03"),
        (TEAM_B, "2024-01"),
    }
    assert {e["node"]["receiptId"] for e in changed["edges"]} == {later["receiptId"]}
    one_team = await data_points(tenant, filter={"team": TEAM_B, "measure": PROPORTION})
    assert one_team["totalCount"] == 1
    of_program = await data_points(tenant, filter={"collaborative": "other"})
    assert of_program["totalCount"] == 0
    body = await tenant.gql(DATA_POINTS, {"after": "garbage"})
    assert error_codes(body) == ["VALIDATION"]


async def test_data_points_resolve_by_global_id(tenant: Tenant) -> None:
    await setup_program(tenant)
    await submit(tenant, [row("2024-01"), row("2024-01", team=TEAM_B)])
    exported = await data_points(tenant)
    ids = {e["node"]["team"]["code"]: e["node"]["id"] for e in exported["edges"]}
    body = await tenant.gql(NODE, {"id": ids[TEAM]})
    assert body["data"]["node"] == {
        "id": ids[TEAM],
        "period": "2024-01",
        "deleted": False,
        "team": {"code": TEAM},
        "measure": {"code": PROPORTION},
    }
    await delete(tenant, [key("2024-01")])
    body = await tenant.gql(NODE, {"id": ids[TEAM]})
    assert body["data"]["node"]["deleted"] is True
    ehr_id, ehr_secret = await tenant.add_client(ClientKind.EHR_INTEGRATION, teams=(TEAM,))
    token = await tenant.token(ehr_id, ehr_secret)
    body = await tenant.gql(NODE, {"id": ids[TEAM_B]}, token=token)
    assert body["data"]["node"] is None
    body = await tenant.gql(NODE, {"id": ids[TEAM]}, token=token)
    assert body["data"]["node"]["id"] == ids[TEAM]


# --- volume and concurrency ----------------------------------------------------------------


async def test_ten_thousand_rows_in_one_call(app: Starlette, tenant: Tenant) -> None:
    await setup_program(tenant)
    months = [f"{year}-{month:02d}" for year in range(1990, 2021) for month in range(1, 13)]
    rows = [
        row(period, (index * 7) % 50, 50, measure=measure, stratum=stratum)
        for index, (period, measure, stratum) in enumerate(
            (period, measure, stratum)
            for period in months
            for measure in (PROPORTION, RATE)
            for stratum in ("", *"abcdefghijklm")
        )
    ][:10_000]
    assert len(rows) == 10_000
    receipt = await submit(tenant, rows)
    assert receipt["status"] == "COMPLETED" and receipt["created"] == 10_000, receipt["conflicts"][
        :3
    ]
    again = await submit(tenant, rows)
    assert again["unchanged"] == 10_000
    assert (await counts(app, tenant))["data_points"] == 10_000


async def test_concurrent_calls_with_the_same_key_write_once(
    app: Starlette, tenant: Tenant
) -> None:
    # PostgreSQL: the second call waits on the key's unique index; SQLite: on the write lock.
    await setup_program(tenant)
    token = await tenant.token()
    for attempt in range(10):
        rows = [row(f"2024-{month:02d}", attempt, 20, team=TEAM_B) for month in range(1, 13)]
        key = f"race-{attempt}"
        results = await asyncio.gather(
            submit(tenant, rows, idempotencyKey=key, token=token),
            submit(tenant, rows, idempotencyKey=key, token=token),
        )
        receipts = [r for r in results if r["__typename"] == "MeasureDataReceipt"]
        others = [r for r in results if r["__typename"] != "MeasureDataReceipt"]
        assert all(r["__typename"] == "InProgressError" for r in others), others
        assert receipts and len({r["receiptId"] for r in receipts}) == 1, results
        assert sum(not r["replayed"] for r in receipts) == 1
        async with sessionmaker(app)() as session:
            stored = await session.scalar(
                select(func.count())
                .select_from(MeasureDataReceipt)
                .where(
                    MeasureDataReceipt.sponsor_id == tenant.sponsor_id,
                    MeasureDataReceipt.idempotency_key == key,
                )
            )
        assert stored == 1
    exported = await data_points(tenant, filter={"team": TEAM_B})
    assert exported["totalCount"] == 12
    assert {e["node"]["numerator"] for e in exported["edges"]} == {9}


async def test_expired_keys_are_taken_over(app: Starlette, tenant: Tenant) -> None:
    await setup_program(tenant)
    first = await submit(tenant, [row("2024-01")], idempotencyKey="old")
    async with sessionmaker(app).begin() as session:
        key = await session.scalar(
            select(IdempotencyKey).where(
                IdempotencyKey.sponsor_id == tenant.sponsor_id, IdempotencyKey.key == "old"
            )
        )
        assert key is not None and key.status == "COMPLETED"
        assert key.expires_at - key.created_at >= timedelta(hours=24)
        key.expires_at = datetime.now(UTC) - timedelta(seconds=1)
    fresh = await submit(tenant, [row("2024-01", 2, 10)], idempotencyKey="old")
    assert fresh["status"] == "COMPLETED" and fresh["receiptId"] != first["receiptId"]
