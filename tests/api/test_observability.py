"""Observability: one JSON access line per request (never a secret), metrics by GraphQL operation
and outcome, ingest rows and rejections by code, the pool gauge, and /readyz while the database
is unreachable."""

from __future__ import annotations

import json
import logging
import subprocess
import sys

import httpx
import pytest
from asgi_lifespan import LifespanManager

from api.app import create_app
from api.logs import JsonFormatter, log_config, redact
from api.metrics import MAX_OPERATION_NAMES, Metrics
from tests.conftest import make_settings
from tests.factories import Tenant
from tests.programs import build_program

VIEWER = "query WhoAmI { viewer { clientId } }"
SUBMIT = """
mutation Deliver($input: SubmitMeasureDataInput!) {
  submitMeasureData(input: $input) {
    __typename ... on MeasureDataReceipt { status created rejected conflicts { code } }
  }
}
"""
CLOSED_PORT_URL = "postgresql+asyncpg://postgres@127.0.0.1:1/collabx"


def _access_records(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [record for record in caplog.records if record.name == "collabx.access"]


async def test_one_json_access_line_per_request_without_secrets(
    tenant: Tenant, http: httpx.AsyncClient, caplog: pytest.LogCaptureFixture
) -> None:
    token = await tenant.token()
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="collabx.access"):
        response = await http.post(
            "/graphql?debug=1",
            json={"query": VIEWER, "operationName": "WhoAmI"},
            headers={"Authorization": f"Bearer {token}", "X-Request-ID": "trace-me-1"},
        )
        issued = await http.post(
            "/oauth/token",
            data={"grant_type": "client_credentials"},
            auth=(tenant.admin_id, tenant.admin_secret),
        )
    assert response.status_code == 200 and issued.status_code == 200
    records = _access_records(caplog)
    assert len(records) == 2
    lines = [JsonFormatter().format(record) for record in records]
    graphql = json.loads(lines[0])
    assert graphql["request_id"] == "trace-me-1" == response.headers["x-request-id"]
    assert graphql["client_id"] == tenant.admin_id
    assert graphql["operation"] == "WhoAmI" and graphql["operation_type"] == "query"
    assert graphql["outcome"] == "success" and graphql["status"] == 200
    assert graphql["path"] == "/graphql" and graphql["duration_ms"] >= 0
    assert graphql["cost"] == 1 and graphql["level"] == "info"
    assert json.loads(lines[1])["path"] == "/oauth/token"
    for line in lines:
        assert token not in line
        assert tenant.admin_secret not in line
        assert issued.json()["access_token"] not in line
        assert "debug=1" not in line  # no query strings


def test_formatter_redacts_credentials_in_messages() -> None:
    text = redact(
        "Authorization: Bearer eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJ4In0.c2ln and "
        "client_secret=hunter2&grant_type=client_credentials, Basic dXNlcjpwYXNz"
    )
    assert "eyJ" not in text and "hunter2" not in text and "dXNlcjpwYXNz" not in text
    record = logging.LogRecord(
        "collabx", logging.ERROR, __file__, 1, "token %s", ("eyJa.eyJb.c",), None
    )
    entry = json.loads(JsonFormatter().format(record))
    assert entry["message"] == "token [redacted-jwt]" and entry["level"] == "error"


def test_serve_logging_config_writes_json_lines() -> None:
    """What ``collabx serve`` installs: JSON on stderr, uvicorn's own access log silenced."""
    config = log_config("json")
    assert config["loggers"]["uvicorn.access"]["handlers"] == []
    script = (
        "import logging, logging.config, sys\n"
        "from api.logs import log_config\n"
        "logging.config.dictConfig(log_config('json'))\n"
        "logging.getLogger('collabx.access').info('GET /x 200', extra={'status': 200,"
        " 'request_id': 'r1', 'client_id': 'c1', 'operation': 'Op', 'duration_ms': 1.5})\n"
        "logging.getLogger('uvicorn.error').info('Started server process')\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=30, check=True
    )
    lines = [json.loads(line) for line in result.stderr.splitlines()]
    assert lines[0]["request_id"] == "r1" and lines[0]["operation"] == "Op"
    assert lines[0]["logger"] == "collabx.access" and lines[0]["duration_ms"] == 1.5
    assert lines[1]["logger"] == "uvicorn.error"


async def test_metrics_count_operations_ingest_rows_and_the_pool(
    tenant: Tenant, http: httpx.AsyncClient
) -> None:
    await build_program(tenant, "obs")
    await tenant.gql(VIEWER)
    await tenant.gql("query Broken { nope }")
    rows = [
        {
            "team": "obs-team-0",
            "measure": "obs-control",
            "period": "2024-01",
            "numerator": 3,
            "denominator": 10,
        },
        {
            "team": "obs-team-0",
            "measure": "obs-control",
            "period": "2024-02",
            "numerator": 30,
            "denominator": 10,
        },
        {
            "team": "nobody",
            "measure": "obs-control",
            "period": "2024-03",
            "numerator": 1,
            "denominator": 2,
        },
    ]
    body = await tenant.gql(SUBMIT, {"input": {"rows": rows, "atomic": False}})
    receipt = body["data"]["submitMeasureData"]
    assert receipt["status"] == "PARTIAL" and receipt["created"] == 1 and receipt["rejected"] == 2
    text = (await http.get("/metrics")).text
    assert (
        'collabx_graphql_operations_total{operation="WhoAmI",outcome="success",type="query"}'
        in text
    )
    assert 'operation="Broken",outcome="rejected",type="query"' in text
    assert 'operation="Deliver",outcome="success",type="mutation"' in text
    assert 'collabx_graphql_operation_duration_seconds_bucket{le="0.005",operation="WhoAmI"' in text
    assert 'collabx_ingest_calls_total{source="graphql",status="PARTIAL"}' in text
    assert 'collabx_ingest_rows_total{result="created",source="graphql"}' in text
    assert (
        'collabx_ingest_rejected_rows_total{code="NUMERATOR_EXCEEDS_DENOMINATOR",source="graphql"}'
        in text
    )
    assert 'collabx_ingest_rejected_rows_total{code="UNKNOWN_TEAM",source="graphql"}' in text
    assert 'collabx_db_pool_connections{state="checked_out"}' in text
    assert 'collabx_db_pool_connections{state="idle"}' in text
    assert "collabx_db_pool_size" in text


def test_operation_names_are_bounded_label_values() -> None:
    metrics = Metrics()
    names = {metrics.operation_label(f"Op{number}") for number in range(MAX_OPERATION_NAMES + 50)}
    assert len(names) == MAX_OPERATION_NAMES + 1 and "other" in names
    assert metrics.operation_label(None) == "anonymous"
    assert metrics.operation_label("Op0") == "Op0"


async def test_readyz_is_503_while_the_database_is_unreachable() -> None:
    app = create_app(make_settings(CLOSED_PORT_URL))
    async with LifespanManager(app):  # starts anyway: the keys load on first use
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            ready = await client.get("/readyz")
            assert ready.status_code == 503
            assert ready.json()["status"] == "unavailable"
            assert "unreachable" in ready.json()["reason"]
            assert (await client.get("/healthz")).status_code == 200
            token = await client.post(
                "/oauth/token", data={"grant_type": "client_credentials"}, auth=("a", "b")
            )
            assert token.status_code == 503 and token.headers["retry-after"] == "1"
            assert token.json()["error"] == "temporarily_unavailable"
            fake = "eyJhbGciOiJFUzI1NiIsInR5cCI6ImF0K2p3dCIsImtpZCI6IngifQ.e30.c2ln"
            graphql = await client.post(
                "/graphql",
                json={"query": "{ viewer { kind } }"},
                headers={"Authorization": f"Bearer {fake}"},
            )
            assert graphql.status_code == 503, graphql.text
            assert graphql.json()["errors"][0]["extensions"]["code"] == "SERVICE_UNAVAILABLE"
            metrics = (await client.get("/metrics")).text
            assert 'route="/readyz",status="503"' in metrics
