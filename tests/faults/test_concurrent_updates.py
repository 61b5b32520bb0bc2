"""Concurrent conflicting updates of one data point: last writer wins, and every write is audited.

CollabX chose last-writer-wins over optimistic ``expectedVersion`` checks: EHR integrations
resubmit whole months from their source systems, which are the truth; refusing a resubmission
because someone else wrote in between would only make them retry the same values. Instead
concurrent writers of a team are serialized (PostgreSQL advisory lock per team, SQLite's write
lock) and every write is recorded in its call's change set with the values before and after,
the client and the receipt. So the history of a point is one unbroken chain: each write's "before"
is the previous write's "after", and the last "after" is what is stored. Both backends.
"""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

from sqlalchemy import func, select
from starlette.applications import Starlette

from api.state import AppState
from db.models import AuditEvent, DataPoint, DataPointChangeSet, MeasureDataReceipt
from db.queries.history import entries_of
from tests.factories import Tenant
from tests.faults.support import SUBMIT
from tests.programs import build_program

WRITERS = 20


async def _write(tenant: Tenant, token: str, numerator: int) -> dict[str, Any]:
    row = {
        "team": "lww-team-0",
        "measure": "lww-control",
        "period": "2024-06",
        "numerator": numerator,
        "denominator": 100,
        "annotation": f"writer {numerator}",
    }
    body = await tenant.gql(SUBMIT, {"input": {"rows": [row]}}, token=token)
    receipt: dict[str, Any] = body["data"]["submitMeasureData"]
    return receipt


async def test_concurrent_updates_of_one_point_are_last_writer_wins_and_audited(
    app: Starlette, tenant: Tenant
) -> None:
    await build_program(tenant, "lww")
    token = await tenant.token()
    numerators = list(range(1, WRITERS + 1))
    receipts = await asyncio.gather(*(_write(tenant, token, n) for n in numerators))
    assert all(r["status"] == "COMPLETED" for r in receipts), receipts
    assert sorted((r["created"], r["updated"]) for r in receipts) == [(0, 1)] * (WRITERS - 1) + [
        (1, 0)
    ]
    state: AppState = app.state.collabx
    sponsor = tenant.sponsor_id
    async with state.sessionmaker() as session:
        point = (
            await session.scalars(select(DataPoint).where(DataPoint.sponsor_id == sponsor))
        ).one()
        change_sets = (
            await session.scalars(
                select(DataPointChangeSet).where(DataPointChangeSet.sponsor_id == sponsor)
            )
        ).all()
        stored_receipts = await session.scalar(
            select(func.count())
            .select_from(MeasureDataReceipt)
            .where(MeasureDataReceipt.sponsor_id == sponsor)
        )
        audited = await session.scalar(
            select(func.count())
            .select_from(AuditEvent)
            .where(AuditEvent.sponsor_id == sponsor, AuditEvent.action == "measure_data.submit")
        )
    assert stored_receipts == WRITERS and audited == WRITERS
    # One change set per writer, naming its receipt: one creation, then one update each.
    assert {change_set.id for change_set in change_sets} == {
        uuid.UUID(r["receiptId"]) for r in receipts
    }
    updating = {uuid.UUID(r["receiptId"]) for r in receipts if r["updated"] == 1}
    written = [
        (change_set.id, entry)
        for change_set in change_sets
        if change_set.id in updating
        for entry in entries_of(change_set.changes)
    ]
    history = [entry for _, entry in written]
    assert len(history) == WRITERS - 1
    assert all(row.action == "UPDATE" and row.data_point_id == point.id for row in history)
    # The chain: created value -> ... -> stored value, through every writer exactly once.
    assert all(row.before is not None and row.after is not None for row in history)
    steps = {row.before["numerator"]: row.after["numerator"] for row in history}  # type: ignore[index]
    assert len(steps) == WRITERS - 1
    first = next(iter(set(numerators) - set(steps.values())))
    chain = [first]
    while chain[-1] in steps:
        chain.append(steps[chain[-1]])
    assert sorted(chain) == numerators
    assert chain[-1] == point.numerator  # the last writer won
    assert point.annotation == f"writer {point.numerator}"
    last = next(
        receipt_id
        for receipt_id, row in written
        if row.after is not None and row.after["numerator"] == point.numerator
    )
    assert last == point.receipt_id  # stored by the writer that wrote last
