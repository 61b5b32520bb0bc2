"""Faults of the database under load (PostgreSQL): connections killed in the middle of a batch,
and a crowd of duplicate deliveries of one batch.

* A batch whose connection is terminated (``pg_terminate_backend``) while it is inside its
  transaction writes nothing; the client gets 503 with ``Retry-After`` and
  ``SERVICE_UNAVAILABLE`` (not a masked 500); the next request succeeds (the pool pings the
  connections, which were killed too); the retry with the same idempotency key writes the batch
  once, and a replay after it writes nothing.
* :data:`DUPLICATES` concurrent deliveries of the same batch with the same idempotency key write
  it exactly once: one receipt, one set of points, one change set; every answer is that receipt
  (or a retryable IN_PROGRESS).
"""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette

from tests.factories import Tenant
from tests.faults.support import (
    SUBMIT,
    counts,
    holding_team_locks,
    rows_for,
    team_id,
    terminate,
    terminate_idle_pool,
    wait_for_batches,
)

DUPLICATES = 1_000
"""Concurrent deliveries of one batch, as the issue asks. On 2 cores the deliveries queued last
wait longer for a pooled connection than the pool's timeout and get a retryable 503
SERVICE_UNAVAILABLE, which is a correct answer; the test retries those and checks that every
delivery ends with the same single receipt and that the batch was written once."""


async def _submit(
    http: httpx.AsyncClient, token: str, rows: list[dict[str, Any]], key: str
) -> httpx.Response:
    return await http.post(
        "/graphql",
        json={"query": SUBMIT, "variables": {"input": {"rows": rows, "idempotencyKey": key}}},
        headers={"Authorization": f"Bearer {token}"},
    )


async def test_a_batch_whose_connection_is_killed_writes_nothing_and_its_retry_writes_once(
    pg_app: Starlette, pg_http: httpx.AsyncClient, pg_tenant: Tenant, pg_database: str
) -> None:
    token = await pg_tenant.token()
    rows = rows_for("fault-team-0", "fault-control", 600)
    team = await team_id(pg_app, pg_tenant, "fault-team-0")
    async with holding_team_locks(pg_database, [team]) as lock:
        request = asyncio.create_task(_submit(pg_http, token, rows, "batch-1"))
        batch = await wait_for_batches(lock, 1)
        await terminate(lock, batch)
        response = await request
        killed_idle = await terminate_idle_pool(lock)
    assert response.status_code == 503, response.text
    assert response.headers["retry-after"] == "1"
    error = response.json()["errors"][0]
    assert error["extensions"]["code"] == "SERVICE_UNAVAILABLE"
    assert error["extensions"]["retryAfter"] == 1 and error["extensions"]["requestId"]
    assert "Unexpected" not in error["message"]
    assert await counts(pg_app, pg_tenant, "batch-1") == {
        "points": 0,
        "history": 0,
        "receipts": 0,
        "keys": 0,
    }
    assert killed_idle >= 1  # the pool's idle connections died too
    # The next request succeeds: the pool pings on checkout and replaces dead connections.
    assert (await pg_tenant.gql("{ viewer { clientId } }"))["data"]["viewer"]["clientId"]
    retried = await _submit(pg_http, token, rows, "batch-1")
    assert retried.status_code == 200
    receipt = retried.json()["data"]["submitMeasureData"]
    assert receipt["status"] == "COMPLETED" and receipt["created"] == 600
    assert receipt["replayed"] is False
    replay = (await _submit(pg_http, token, rows, "batch-1")).json()["data"]["submitMeasureData"]
    assert replay["replayed"] is True and replay["receiptId"] == receipt["receiptId"]
    assert await counts(pg_app, pg_tenant, "batch-1") == {
        "points": 600,
        "history": 1,  # the change set of the one call that wrote
        "receipts": 1,
        "keys": 1,
    }
    metrics = (await pg_http.get("/metrics")).text
    assert 'operation="Submit",outcome="unavailable",type="mutation"' in metrics


@pytest.mark.slow
@pytest.mark.timeout(120)
async def test_a_crowd_of_duplicate_deliveries_writes_once(
    pg_app: Starlette, pg_http: httpx.AsyncClient, pg_tenant: Tenant
) -> None:
    token = await pg_tenant.token()
    rows = rows_for("fault-team-0", "fault-control", 24, numerator=3)
    responses = list(
        await asyncio.gather(*(_submit(pg_http, token, rows, "crowd") for _ in range(DUPLICATES)))
    )
    unexpected = sorted(
        {(r.status_code, r.text[:200]) for r in responses if r.status_code not in (200, 503)}
    )
    assert not unexpected, unexpected[:5]
    for index, response in enumerate(responses):
        if response.status_code == 503:
            assert response.json()["errors"][0]["extensions"]["code"] == "SERVICE_UNAVAILABLE"
            responses[index] = await _submit(pg_http, token, rows, "crowd")
    assert all(response.status_code == 200 for response in responses)
    results = [response.json()["data"]["submitMeasureData"] for response in responses]
    receipts = [r for r in results if r["__typename"] == "MeasureDataReceipt"]
    others = [r for r in results if r["__typename"] != "MeasureDataReceipt"]
    assert all(r["code"] == "IN_PROGRESS" for r in others), others[:3]
    assert len({r["receiptId"] for r in receipts}) == 1
    assert sum(not r["replayed"] for r in receipts) == 1
    assert receipts[0]["created"] == 24
    assert await counts(pg_app, pg_tenant, "crowd") == {
        "points": 24,
        "history": 1,
        "receipts": 1,
        "keys": 1,
    }
