"""Bulk export ``GET /export/data-points``: NDJSON and CSV content, filters, tombstones with
``updatedSince``, formula escaping, parameter errors, scopes, EHR restriction, tenancy, and a
streamed body read in keyset pages (never the whole export at once)."""

from __future__ import annotations

import asyncio
import csv
import io
import json
from collections.abc import MutableMapping
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette

import api.export
from db.enums import ClientKind
from db.queries import exchange
from tests.api.exchange_data import (
    BALANCING,
    MEAN,
    PROPORTION,
    TEAM,
    TEAM_B,
    setup_exchange,
    submit,
)
from tests.factories import Tenant, TenantFactory

DELETE = """
mutation Delete($input: DeleteMeasureDataInput!) {
  deleteMeasureData(input: $input) { __typename ... on MeasureDataReceipt { deleted } }
}
"""

NASTY = ['=HYPERLINK("http://x")', "+1", "-2", "@SUM(A1)", "\tlead", "\rlead", "plain"]


def _rows() -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    for index, annotation in enumerate(NASTY):
        rows.append(
            {
                "team": TEAM,
                "measure": PROPORTION,
                "period": f"2024-{index + 1:02d}",
                "numerator": index,
                "denominator": 10,
                "annotation": annotation,
                "stratum": "-x" if index == 2 else "",
            }
        )
    rows.append({"team": TEAM, "measure": MEAN, "period": "2024-01", "value": -1.5})
    rows.append(
        {
            "team": TEAM_B,
            "measure": BALANCING,
            "period": "2024-02",
            "numerator": 2,
            "denominator": 900,
        }
    )
    return rows


async def export(tenant: Tenant, params: Any = None, *, token: str | None = None) -> httpx.Response:
    return await tenant.factory.http.get(
        "/export/data-points",
        params=params,
        headers={"Authorization": f"Bearer {token or await tenant.token()}"},
    )


def ndjson(response: httpx.Response) -> list[dict[str, Any]]:
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/x-ndjson"
    return [json.loads(line) for line in response.text.splitlines()]


def csv_rows(response: httpx.Response) -> list[dict[str, str]]:
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "text/csv; charset=utf-8"
    return list(csv.DictReader(io.StringIO(response.text, newline="")))


async def test_ndjson_export_filters_and_tombstones(tenant: Tenant, tenants: TenantFactory) -> None:
    await setup_exchange(tenant)
    assert (await submit(tenant, _rows()))["status"] == "COMPLETED"
    response = await export(tenant)
    assert response.headers["content-disposition"].startswith("attachment; filename=")
    records = ndjson(response)
    assert len(records) == 9
    assert [r["updatedAt"] for r in records] == sorted(r["updatedAt"] for r in records)
    mean = next(r for r in records if r["measure"] == MEAN)
    assert mean == mean | {
        "collaborative": "dm",
        "team": TEAM,
        "measureVersion": 1,
        "period": "2024-01",
        "stratum": "",
        "numerator": None,
        "denominator": None,
        "value": -1.5,
        "annotation": "",
        "status": "SUBMITTED",
        "deleted": False,
        "source": "graphql",
    }
    assert {r["annotation"] for r in records if r["measure"] == PROPORTION} == set(NASTY)

    assert len(ndjson(await export(tenant, {"measure": PROPORTION}))) == 7
    assert len(ndjson(await export(tenant, {"team": TEAM_B}))) == 1
    assert len(ndjson(await export(tenant, {"collaborative": "dm"}))) == 9
    assert len(ndjson(await export(tenant, {"collaborative": "dm2"}))) == 0
    assert len(ndjson(await export(tenant, {"from": "2024-02", "to": "2024-03"}))) == 3
    assert ndjson(await export(tenant, {"measure": "unknown"})) == []

    # deletions: tombstones in an incremental export, not in a full one
    since = records[-1]["updatedAt"]
    body = await tenant.gql(
        DELETE,
        {"input": {"rows": [{"team": TEAM, "measure": MEAN, "period": "2024-01"}]}},
    )
    assert body["data"]["deleteMeasureData"]["deleted"] == 1
    full = ndjson(await export(tenant))
    assert len(full) == 8 and not any(r["deleted"] for r in full)
    delta = ndjson(await export(tenant, {"updatedSince": since}))
    tombstones = [r for r in delta if r["deleted"]]
    assert len(tombstones) == 1 and tombstones[0]["measure"] == MEAN
    assert tombstones[0]["value"] is None and tombstones[0]["status"] is None
    live_only = ndjson(await export(tenant, {"updatedSince": since, "includeDeleted": "false"}))
    assert not any(r["deleted"] for r in live_only)
    with_deleted = ndjson(await export(tenant, {"includeDeleted": "true"}))
    assert len(with_deleted) == 9

    # another tenant exports nothing of this one
    stranger = await tenants.create()
    assert ndjson(await export(stranger)) == []


async def test_csv_export_escapes_formulas(tenant: Tenant) -> None:
    await setup_exchange(tenant)
    await submit(tenant, _rows())
    rows = csv_rows(await export(tenant, {"format": "csv"}))
    assert list(rows[0]) == list(api.export.COLUMNS)
    assert len(rows) == 9
    annotations = {row["annotation"] for row in rows if row["measure"] == PROPORTION}
    assert annotations == {
        '\'=HYPERLINK("http://x")',
        "'+1",
        "'-2",
        "'@SUM(A1)",
        "'\tlead",
        "'\rlead",
        "plain",
    }
    strata = {row["stratum"] for row in rows}
    assert strata == {"", "'-x"}
    mean = next(row for row in rows if row["measure"] == MEAN)
    assert mean["value"] == "-1.5"  # a number, not text: never a formula
    assert mean["numerator"] == "" and mean["deleted"] == "false"
    for row in rows:
        for cell in row.values():
            assert not cell.startswith(("=", "+", "@", "\t", "\r")), row
    assert api.export.safe_cell("a=b") == "a=b"


async def test_bad_parameters_scopes_and_ehr_restriction(
    tenant: Tenant, http: httpx.AsyncClient
) -> None:
    await setup_exchange(tenant)
    await submit(tenant, _rows())
    for params, parameter in (
        ({"from": "2024-13"}, "from"),
        ({"to": "24-01"}, "to"),
        ({"from": "2024-05", "to": "2024-01"}, "to"),
        ({"format": "xml"}, "format"),
        ({"updatedSince": "yesterday"}, "updatedSince"),
        ({"includeDeleted": "maybe"}, "includeDeleted"),
        ({"measure": "x" * 65}, "measure"),
        ({"colour": "red"}, "colour"),
        ([("measure", "a"), ("measure", "b")], "measure"),
    ):
        response = await export(tenant, params)
        assert response.status_code == 400, params
        error = response.json()["errors"][0]
        assert error["extensions"] == {"code": "BAD_REQUEST", "parameter": parameter}, params
        assert error["message"]

    assert (await http.get("/export/data-points")).status_code == 401
    partner = await tenant.token(*await tenant.add_client(ClientKind.PARTNER))
    forbidden = await export(tenant, token=partner)
    assert forbidden.status_code == 403
    assert forbidden.json()["errors"][0]["extensions"]["code"] == "FORBIDDEN"

    ehr = await tenant.token(*await tenant.add_client(ClientKind.EHR_INTEGRATION, teams=(TEAM_B,)))
    own = ndjson(await export(tenant, token=ehr))
    assert {r["team"] for r in own} == {TEAM_B} and len(own) == 1
    assert ndjson(await export(tenant, {"team": TEAM}, token=ehr)) == []
    unbound = await tenant.token(*await tenant.add_client(ClientKind.EHR_INTEGRATION))
    assert ndjson(await export(tenant, token=unbound)) == []


async def test_export_streams_in_pages(
    tenant: Tenant, app: Starlette, monkeypatch: pytest.MonkeyPatch
) -> None:
    await setup_exchange(tenant)
    rows = [
        {
            "team": TEAM,
            "measure": PROPORTION,
            "period": f"{2000 + index // 12}-{index % 12 + 1:02d}",
            "numerator": 1,
            "denominator": 2,
            "stratum": f"s{stratum}",
        }
        for index in range(60)
        for stratum in range(5)
    ]
    assert (await submit(tenant, rows))["created"] == 300
    events: list[str] = []
    read_page = exchange.export_page

    async def counting_page(*args: Any, **kwargs: Any) -> Any:
        events.append("read")
        return await read_page(*args, **kwargs)

    monkeypatch.setattr(api.export, "EXPORT_PAGE", 40)
    monkeypatch.setattr(api.export, "export_page", counting_page)

    token = await tenant.token()
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": "/export/data-points",
        "raw_path": b"/export/data-points",
        "query_string": b"format=csv",
        "root_path": "",
        "headers": [(b"host", b"collabx.test"), (b"authorization", f"Bearer {token}".encode())],
        "client": ("127.0.0.1", 1234),
        "server": ("collabx.test", 80),
    }
    chunks: list[bytes] = []
    requested = False
    finished = asyncio.Event()

    async def receive() -> MutableMapping[str, Any]:
        nonlocal requested
        if not requested:
            requested = True
            return {"type": "http.request", "body": b"", "more_body": False}
        await finished.wait()  # the client stays until the response is complete
        return {"type": "http.disconnect"}

    async def send(message: MutableMapping[str, Any]) -> None:
        if message["type"] == "http.response.start":
            assert message["status"] == 200
        if message["type"] == "http.response.body":
            if message.get("body"):
                events.append("send")
                chunks.append(message["body"])
            if not message.get("more_body", False):
                finished.set()

    await app(scope, receive, send)
    assert events.count("read") == 8  # 300 rows in pages of 40, the last one short
    # the first page went out before the last one was read: nothing buffers the export
    assert events.index("send") < len(events) - 1 - events[::-1].index("read")
    assert len(chunks) == 9  # the header, then one chunk per page
    parsed = list(csv.DictReader(io.StringIO(b"".join(chunks).decode(), newline="")))
    assert len(parsed) == 300
    assert len({row["id"] for row in parsed}) == 300
