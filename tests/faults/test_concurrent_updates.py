"""Concurrent conflicting updates of one data point: last writer wins, and every write is audited.

CollabX chose last-writer-wins over optimistic ``expectedVersion`` checks: EHR integrations
resubmit whole months from their source systems, which are the truth; refusing a resubmission
because someone else wrote in between would only make them retry the same values. Instead
concurrent writers of a team are serialized (PostgreSQL advisory lock per team, SQLite's write
lock) and every change leaves a ``data_point_history`` row with the values before and after, the
client and the receipt. So the history of a point is one unbroken chain: each write's "before"
is the previous write's "after", and the last "after" is what is stored. Both backends.
"""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

from sqlalchemy import func, select
from starlette.applications import Starlette

from api.state import AppState
from db.models import AuditEvent, DataPoint, DataPointHistory, MeasureDataReceipt
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
        history = list(
            await session.scalars(
                select(DataPointHistory).where(DataPointHistory.sponsor_id == sponsor)
            )
        )
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
    # One history row per update, each naming its writer's receipt.
    assert len(history) == WRITERS - 1
    assert all(row.action == "UPDATE" and row.data_point_id == point.id for row in history)
    updating = {uuid.UUID(r["receiptId"]) for r in receipts if r["updated"] == 1}
    assert {row.receipt_id for row in history} == updating
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
    last = next(row for row in history if row.after["numerator"] == point.numerator)  # type: ignore[index]
    assert last.receipt_id == point.receipt_id  # stored by the writer that wrote last
