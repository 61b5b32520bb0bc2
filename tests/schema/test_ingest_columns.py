"""The compact form of submitMeasureData: ``submitMeasureDataColumns`` (parallel column lists).

Every rule of the typed form holds for the same rows sent as columns, through real HTTP on both
backends: the same per-row codes at the same indexes (index = position in the lists), atomic and
not, dry runs, idempotency keys shared with the typed form (the same rows are the same request in
either form), the batch limit; and the form's own rule: lists of unequal lengths are a typed
VALIDATION error naming the column, checked before anything else.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from asgi_lifespan import LifespanManager
from starlette.applications import Starlette

from api.app import create_app
from db.enums import ClientKind
from tests.conftest import make_settings
from tests.factories import Tenant, TenantFactory
from tests.schema.test_measure_data import (
    COUNT,
    MEAN,
    OUTSIDER,
    RATE,
    RECEIPT_FIELDS,
    TEAM,
    TEAM_B,
    conflict_codes,
    counts,
    delete,
    error_codes,
    history,
    key,
    next_month,
    row,
    series,
    setup_program,
    submit,
)

SUBMIT_COLUMNS = f"""
mutation SubmitColumns($input: SubmitMeasureDataColumnsInput!) {{
  submitMeasureDataColumns(input: $input) {{
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

FIELDS = ("team", "measure", "period", "numerator", "denominator", "value", "stratum", "annotation")
DEFAULTS: dict[str, Any] = {"stratum": ""}


def columns(rows: list[dict[str, Any]]) -> dict[str, list[Any]]:
    """The rows as parallel lists; a column no row uses is left out."""
    found: dict[str, list[Any]] = {}
    for name in FIELDS:
        if any(name in r for r in rows):
            found[name] = [r.get(name, DEFAULTS.get(name)) for r in rows]
    return found


async def submit_columns(
    tenant: Tenant, cols: dict[str, list[Any]], *, token: str | None = None, **options: Any
) -> dict[str, Any]:
    body = await tenant.gql(SUBMIT_COLUMNS, {"input": {"columns": cols, **options}}, token=token)
    assert "errors" not in body, body
    result: dict[str, Any] = body["data"]["submitMeasureDataColumns"]
    return result


def comparable(receipt: dict[str, Any]) -> dict[str, Any]:
    """A receipt without what differs between two calls (id, time)."""
    return {k: v for k, v in receipt.items() if k not in ("receiptId", "submittedAt")}


def every_code_rows() -> list[dict[str, Any]]:
    """One row per per-row code (as in the typed form's test), and valid rows."""
    return [
        row("2024-01"),  # 0 valid
        row(team="nobody"),  # 1 UNKNOWN_TEAM
        row(measure="nothing"),  # 2 UNKNOWN_MEASURE
        row(team=OUTSIDER),  # 3 NOT_ENROLLED
        row("2024-02", -1, 10),  # 4 INVALID_COUNT
        row("2024-03", 2.5, 10),  # 5 INVALID_COUNT
        row("2024-04", 5, 2**53),  # 6 INVALID_COUNT (too large)
        row("2024-05", 11, 10),  # 7 NUMERATOR_EXCEEDS_DENOMINATOR
        row("2024-06", 1, 0),  # 8 ZERO_DENOMINATOR
        row("2024-07", 5, None),  # 9 MISSING_VALUE
        row("2024-07", None, None, measure=MEAN),  # 10 MISSING_VALUE
        row("2024-1"),  # 11 INVALID_PERIOD
        row("0000-05"),  # 12 INVALID_PERIOD
        row(next_month()),  # 13 FUTURE_PERIOD
        row("2024-01"),  # 14 DUPLICATE_ROW of row 0
        row("2024-08", annotation="bad\x00text"),  # 15 INVALID_TEXT
        row("2023-08", annotation="x" * 2001),  # 16 INVALID_TEXT
        row("2024-09", stratum="s" * 65),  # 17 INVALID_TEXT
        row("2024-10", None, None, measure=COUNT, value=-2),  # 18 INVALID_COUNT
        row("2024-11", 3, 10, measure=RATE, stratum="payer:medicaid", annotation="ok"),  # 19
        row("2024-12", None, None, measure=MEAN, value=4.5),  # 20 valid
    ]


EXPECTED_CODES = {
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
    13: ["FUTURE_PERIOD"],
    14: ["DUPLICATE_ROW"],
    15: ["INVALID_TEXT"],
    16: ["INVALID_TEXT"],
    17: ["INVALID_TEXT"],
    18: ["INVALID_COUNT"],
}


async def test_columns_write_what_the_rows_would(app: Starlette, tenant: Tenant) -> None:
    await setup_program(tenant)
    rows = [
        row("2024-01", 5, 10),
        row("2024-02", 6, 10, annotation="new form"),
        row("2024-01", 2, 10, team=TEAM_B),
        row("2024-01", None, None, measure=MEAN, value=3.25),
    ]
    receipt = await submit_columns(tenant, columns(rows))
    assert receipt["__typename"] == "MeasureDataReceipt", receipt
    assert (receipt["status"], receipt["rows"], receipt["created"]) == ("COMPLETED", 4, 4)
    assert receipt["source"] == "graphql" and receipt["conflicts"] == []
    points = await series(tenant)
    assert [(p["period"], p["numerator"], p["denominator"]) for p in points[:2]] == [
        ("2024-01", 5, 10),
        ("2024-02", 6, 10),
    ]
    assert points[1]["annotations"] == ["new form"]
    assert points[0]["receiptId"] == receipt["receiptId"]
    assert [p["value"] for p in await series(tenant, measure=MEAN)][:1] == [3.25]
    # the same rows through the typed form change nothing
    typed = await submit(tenant, rows)
    assert (typed["unchanged"], typed["created"], typed["updated"]) == (4, 0, 0)
    # and a changed value through the columns updates the point
    changed = await submit_columns(tenant, columns([row("2024-01", 7, 10)]))
    assert (changed["updated"], changed["created"]) == (1, 0)
    assert (await counts(app, tenant))["data_points"] == 4


async def test_every_row_code_at_the_same_index_as_the_typed_form(
    app: Starlette, tenant: Tenant
) -> None:
    await setup_program(tenant)
    rows = every_code_rows()
    typed = await submit(tenant, rows, atomic=False, dryRun=True)
    compact = await submit_columns(tenant, columns(rows), atomic=False, dryRun=True)
    assert conflict_codes(compact) == EXPECTED_CODES, compact["conflicts"]
    assert compact["conflicts"] == typed["conflicts"]
    assert comparable(compact) == comparable(typed)
    fields = {c["index"]: c["field"] for c in compact["conflicts"]}
    assert (fields[1], fields[4], fields[9], fields[10]) == (
        "team",
        "numerator",
        "denominator",
        "value",
    )
    assert (fields[11], fields[15], fields[17]) == ("period", "annotation", "stratum")

    written = await submit_columns(tenant, columns(rows), atomic=False)
    assert written["status"] == "PARTIAL"
    assert conflict_codes(written) == EXPECTED_CODES
    assert (written["created"], written["rejected"]) == (3, len(EXPECTED_CODES))
    assert (await counts(app, tenant))["data_points"] == 3


async def test_atomic_columns_with_a_bad_row_write_nothing(app: Starlette, tenant: Tenant) -> None:
    await setup_program(tenant)
    before = await counts(app, tenant)
    receipt = await submit_columns(
        tenant,
        {
            "team": [TEAM, TEAM, TEAM],
            "measure": ["control"] * 3,
            "period": ["2024-01", "2024-02", "2024-03"],
            "numerator": [5, 11, None],
            "denominator": [10, 10, 10],
        },
    )
    assert (receipt["status"], receipt["atomic"], receipt["rejected"]) == ("REJECTED", True, 2)
    assert conflict_codes(receipt) == {1: ["NUMERATOR_EXCEEDS_DENOMINATOR"], 2: ["MISSING_VALUE"]}
    assert (receipt["created"], receipt["updated"], receipt["unchanged"]) == (0, 0, 0)
    after = await counts(app, tenant)
    assert after["data_points"] == before["data_points"] == 0
    assert after["measure_data_receipts"] == 1  # the attempt is on record


async def test_idempotency_keys_are_shared_with_the_typed_form(
    app: Starlette, tenant: Tenant
) -> None:
    await setup_program(tenant)
    rows = [row("2024-01", 5, 10), row("2024-02", 6, 10, stratum="payer:x")]
    first = await submit_columns(tenant, columns(rows), idempotencyKey="cols-1")
    assert first["status"] == "COMPLETED" and first["idempotencyKey"] == "cols-1"
    before = await counts(app, tenant)

    # the same rows as columns (counts as floats are the same numbers) or as rows replay
    again = await submit_columns(
        tenant, columns([row("2024-01", 5.0, 10), rows[1]]), idempotencyKey="cols-1"
    )
    typed = await submit(tenant, rows, idempotencyKey="cols-1")
    for replay in (again, typed):
        assert replay["receiptId"] == first["receiptId"] and replay["replayed"] is True
        assert (replay["created"], replay["updated"]) == (2, 0)
    assert await counts(app, tenant) == before

    # other rows, or another atomicity, under the same key: a mismatch in either form
    other = await submit_columns(tenant, columns([row("2024-01", 9, 10)]), idempotencyKey="cols-1")
    assert (other["__typename"], other["code"]) == (
        "IdempotencyMismatchError",
        "IDEMPOTENCY_MISMATCH",
    )
    assert other["idempotencyKey"] == "cols-1"
    not_atomic = await submit_columns(tenant, columns(rows), idempotencyKey="cols-1", atomic=False)
    assert not_atomic["code"] == "IDEMPOTENCY_MISMATCH"
    typed_other = await submit(tenant, [row("2024-01", 9, 10)], idempotencyKey="cols-1")
    assert typed_other["code"] == "IDEMPOTENCY_MISMATCH"
    assert await counts(app, tenant) == before

    # a key first used by the typed form replays through the columns
    typed_first = await submit(tenant, [row("2024-03")], idempotencyKey="rows-1")
    replay = await submit_columns(tenant, columns([row("2024-03")]), idempotencyKey="rows-1")
    assert replay["receiptId"] == typed_first["receiptId"] and replay["replayed"] is True

    # a rejected call does not keep its key
    rejected = await submit_columns(
        tenant, columns([row("2024-04", 11, 10)]), idempotencyKey="cols-2"
    )
    assert rejected["status"] == "REJECTED"
    fixed = await submit_columns(tenant, columns([row("2024-04", 9, 10)]), idempotencyKey="cols-2")
    assert fixed["status"] == "COMPLETED" and fixed["receiptId"] != rejected["receiptId"]


async def test_dry_run_of_columns_writes_nothing(app: Starlette, tenant: Tenant) -> None:
    await setup_program(tenant)
    await submit(tenant, [row("2024-01", 5, 10)])
    before = await counts(app, tenant)
    rows = [row("2024-01", 5, 10), row("2024-02", 6, 10), row("2024-01", 3, 10, team=TEAM_B)]
    dry = await submit_columns(tenant, columns(rows), dryRun=True, idempotencyKey="dry-cols")
    assert dry["status"] == "DRY_RUN"
    assert (dry["created"], dry["updated"], dry["unchanged"]) == (2, 0, 1)
    assert await counts(app, tenant) == before
    real = await submit_columns(tenant, columns(rows), idempotencyKey="dry-cols")
    assert real["status"] == "COMPLETED" and real["created"] == 2
    peek = await submit_columns(tenant, columns(rows), idempotencyKey="dry-cols", dryRun=True)
    assert peek["receiptId"] == real["receiptId"] and peek["replayed"] is True


@pytest.mark.parametrize(
    "short", ["measure", "period", "numerator", "denominator", "value", "stratum", "annotation"]
)
async def test_columns_of_unequal_lengths_are_a_validation_error(
    app: Starlette, tenant: Tenant, short: str
) -> None:
    await setup_program(tenant)
    cols: dict[str, list[Any]] = {
        "team": [TEAM, TEAM],
        "measure": ["control", "control"],
        "period": ["2024-01", "2024-02"],
        "numerator": [1, 2],
        "denominator": [10, 10],
        "value": [None, None],
        "stratum": ["", ""],
        "annotation": [None, "x"],
    }
    cols[short] = cols[short][:1]
    result = await submit_columns(tenant, cols, idempotencyKey="uneven")
    assert result["__typename"] == "ValidationError", result
    assert (result["code"], result["field"]) == ("VALIDATION", f"columns.{short}")
    assert "team has 2 values" in result["message"]
    after = await counts(app, tenant)
    assert (after["measure_data_receipts"], after["idempotency_keys"], after["data_points"]) == (
        0,
        0,
        0,
    )


async def test_input_level_validation_of_columns(tenant: Tenant) -> None:
    await setup_program(tenant)
    empty = await submit_columns(tenant, {"team": [], "measure": [], "period": []})
    assert (empty["__typename"], empty["code"], empty["field"]) == (
        "ValidationError",
        "VALIDATION",
        "columns",
    )
    long_key = await submit_columns(tenant, columns([row()]), idempotencyKey="k" * 256)
    assert (long_key["__typename"], long_key["field"]) == ("ValidationError", "idempotencyKey")
    body = await tenant.gql(SUBMIT_COLUMNS, {"input": {"columns": columns([row(numerator="5")])}})
    assert error_codes(body) == ["VALIDATION"]  # a count is a JSON number
    body = await tenant.gql(
        SUBMIT_COLUMNS, {"input": {"columns": {"team": [TEAM], "measure": ["control"]}}}
    )
    assert error_codes(body) == ["VALIDATION"]  # period is required


async def test_team_bound_clients_and_scopes(tenant: Tenant) -> None:
    await setup_program(tenant)
    ehr_id, ehr_secret = await tenant.add_client(ClientKind.EHR_INTEGRATION, teams=(TEAM,))
    token = await tenant.token(ehr_id, ehr_secret)
    receipt = await submit_columns(
        tenant,
        columns([row("2024-01"), row("2024-01", team=TEAM_B)]),
        atomic=False,
        token=token,
    )
    assert receipt["status"] == "PARTIAL" and receipt["clientId"] == ehr_id
    assert [(c["index"], c["code"], c["field"]) for c in receipt["conflicts"]] == [
        (1, "FORBIDDEN", "team")
    ]
    unbound_id, unbound_secret = await tenant.add_client(ClientKind.EHR_INTEGRATION)
    unbound = await submit_columns(
        tenant, columns([row("2024-03")]), token=await tenant.token(unbound_id, unbound_secret)
    )
    assert (unbound["__typename"], unbound["code"]) == ("ForbiddenError", "FORBIDDEN")
    dashboard_id, dashboard_secret = await tenant.add_client(ClientKind.DASHBOARD)
    body = await tenant.gql(
        SUBMIT_COLUMNS,
        {"input": {"columns": columns([row()])}},
        token=await tenant.token(dashboard_id, dashboard_secret),
    )
    assert error_codes(body) == ["FORBIDDEN"]


@pytest.fixture
async def small_batch_http(database_url: str) -> AsyncIterator[tuple[Starlette, httpx.AsyncClient]]:
    app = create_app(make_settings(database_url, max_batch_rows=5))
    async with LifespanManager(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://collabx.test") as client:
            yield app, client


async def test_columns_over_the_batch_limit_are_a_clear_error(
    small_batch_http: tuple[Starlette, httpx.AsyncClient],
) -> None:
    app, http = small_batch_http
    tenant = await TenantFactory(app, http).create()
    await setup_program(tenant)
    rows = [row(f"2024-{month:02d}") for month in range(1, 7)]
    result = await submit_columns(tenant, columns(rows))
    assert result["__typename"] == "BatchTooLargeError", result
    assert (result["code"], result["maxRows"], result["rows"]) == ("BATCH_TOO_LARGE", 5, 6)
    assert (await counts(app, tenant))["measure_data_receipts"] == 0
    fits = await submit_columns(tenant, columns(rows[:5]))
    assert (fits["status"], fits["created"]) == ("COMPLETED", 5)


async def test_ten_thousand_rows_as_columns(app: Starlette, tenant: Tenant) -> None:
    """The batch limit in one call, with strata, then every row updated (history for each)."""
    await setup_program(tenant)
    months = [f"{year}-{month:02d}" for year in range(1990, 2021) for month in range(1, 13)]
    keys = [
        (period, measure, stratum)
        for period in months
        for measure in ("control", RATE)
        for stratum in ("", *"abcdefghijklm")
    ][:10_000]
    cols: dict[str, list[Any]] = {
        "team": [TEAM] * len(keys),
        "measure": [measure for _, measure, _ in keys],
        "period": [period for period, _, _ in keys],
        "stratum": [stratum for _, _, stratum in keys],
        "numerator": [index % 50 for index in range(len(keys))],
        "denominator": [50] * len(keys),
    }
    receipt = await submit_columns(tenant, cols)
    assert (receipt["status"], receipt["created"]) == ("COMPLETED", 10_000), receipt["conflicts"][
        :3
    ]
    cols["numerator"] = [(index + 1) % 50 for index in range(len(keys))]
    cols["annotation"] = ["month end"] * len(keys)
    again = await submit_columns(tenant, cols, idempotencyKey="ten-thousand")
    assert (again["status"], again["updated"], again["unchanged"]) == ("COMPLETED", 10_000, 0)
    assert (await counts(app, tenant))["data_points"] == 10_000
    updates = [e for s, e in await history(app, tenant) if str(s.id) == again["receiptId"]]
    assert len(updates) == 10_000 and {e.action for e in updates} == {"UPDATE"}
    points = [p for p in await series(tenant) if p["numerator"] is not None]  # all patients
    expected = [period for period, measure, stratum in keys if measure == "control" and not stratum]
    assert [p["period"] for p in points] == expected
    assert all(p["annotations"] == ["month end"] for p in points)


async def test_a_thousand_rows_as_columns(app: Starlette, tenant: Tenant) -> None:
    await setup_program(tenant)
    teams, measures = [TEAM, TEAM_B], ["control", RATE]
    rows = [
        row(f"{2000 + year}-{month:02d}", month, 20, team=team, measure=measure)
        for team in teams
        for measure in measures
        for year in range(21)
        for month in range(1, 13)
    ][:1000]
    receipt = await submit_columns(tenant, columns(rows))
    assert (receipt["status"], receipt["created"]) == ("COMPLETED", 1000)
    again = await submit_columns(
        tenant, columns([r | {"numerator": r["numerator"] - 1} for r in rows])
    )
    assert (again["status"], again["updated"]) == ("COMPLETED", 1000)
    recorded = [e for s, e in await history(app, tenant) if str(s.id) == again["receiptId"]]
    assert len(recorded) == 1000 and {e.action for e in recorded} == {"UPDATE"}
    assert [e.after["numerator"] for e in recorded if e.after] == [r["numerator"] - 1 for r in rows]
    assert [e.before["numerator"] for e in recorded if e.before] == [r["numerator"] for r in rows]
    assert [e.period for e in recorded] == [r["period"] for r in rows]


async def test_history_of_updates_and_restorations(app: Starlette, tenant: Tenant) -> None:
    await setup_program(tenant)
    first = await submit_columns(tenant, columns([row("2024-01", 5, 10), row("2024-02", 1, 10)]))
    assert first["created"] == 2
    await delete(tenant, [key("2024-02")])
    update = await submit_columns(
        tenant, columns([row("2024-01", 6, 10, annotation="fixed"), row("2024-02", 2, 10)])
    )
    assert (update["updated"], update["created"]) == (1, 1)  # 2024-02 comes back
    recorded = [(str(s.id), e) for s, e in await history(app, tenant)]
    by_action = {(e.action, e.period): (receipt_id, e) for receipt_id, e in recorded}
    assert set(by_action) == {
        ("CREATE", "2024-01"),
        ("CREATE", "2024-02"),
        ("DELETE", "2024-02"),
        ("UPDATE", "2024-01"),
        ("RESTORE", "2024-02"),
    }
    receipt_id, updated = by_action[("UPDATE", "2024-01")]
    assert updated.before is not None and updated.after is not None
    assert (updated.before["numerator"], updated.before["annotation"]) == (5, "")
    assert (updated.after["numerator"], updated.after["annotation"]) == (6, "fixed")
    assert updated.before["status"] == updated.after["status"] == "SUBMITTED"
    restored_receipt, restored = by_action[("RESTORE", "2024-02")]
    assert restored.before is None and restored.after is not None
    assert (restored.after["numerator"], restored.after["denominator"]) == (2, 10)
    assert restored.data_point_id == by_action[("DELETE", "2024-02")][1].data_point_id
    assert {receipt_id, restored_receipt} == {update["receiptId"]}
    assert len({receipt_id for receipt_id, _ in recorded}) == 3  # create, delete, update


async def test_a_change_set_spells_out_every_column_of_every_point(
    app: Starlette, tenant: Tenant
) -> None:
    """The stored document itself (both backends build it their own way): one entry per point
    in every column, all-'' strata and annotations written out, the after status per point."""
    await setup_program(tenant)
    await submit_columns(tenant, columns([row("2024-01", 1, 10), row("2024-02", 2, 10)]))
    update = await submit_columns(
        tenant,
        columns([row("2024-01", 3, 10), row("2024-03", 4, 10), row("2024-04", 5, 10)]),
    )
    assert (update["created"], update["updated"]) == (2, 1)
    (change_set,) = {s for s, _ in await history(app, tenant) if str(s.id) == update["receiptId"]}
    changes = change_set.changes
    assert changes["period"] == ["2024-01", "2024-03", "2024-04"]
    assert changes["stratum"] == ["", "", ""]
    assert changes["action"] == ["UPDATE", "CREATE", "CREATE"]
    assert changes["before"]["numerator"] == [1, None, None]
    assert changes["before"]["status"] == ["SUBMITTED", None, None]
    assert changes["after"]["numerator"] == [3, 4, 5]
    assert changes["after"]["annotation"] == ["", "", ""]
    assert changes["after"]["status"] == ["SUBMITTED"] * 3
    lengths = {len(changes[name]) for name in ("data_point_id", "team_id", "measure_id")}
    lengths |= {len(column) for side in ("before", "after") for column in changes[side].values()}
    assert lengths == {3}
