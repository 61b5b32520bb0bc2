"""Test helpers for improvement content: the ACIC in a tenant, data points, EHR tokens, audit."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from api.state import AppState
from db.enums import ClientKind
from db.instruments import ACIC, bundled_instruments, read_definition
from db.models import AuditEvent
from db.queries.instruments import load_instrument
from tests.factories import Tenant

SUBMIT = """
mutation Submit($input: SubmitMeasureDataInput!) {
  submitMeasureData(input: $input) { __typename ... on MeasureDataReceipt { created rejected } }
}
"""


def data(body: dict[str, Any]) -> dict[str, Any]:
    """The data of a response that must have no errors."""
    assert "errors" not in body, body
    found: dict[str, Any] = body["data"]
    return found


def error_codes(body: dict[str, Any]) -> list[str]:
    """The ``extensions.code`` of every top-level error."""
    return [error.get("extensions", {}).get("code") for error in body.get("errors", [])]


async def load_acic(tenant: Tenant) -> None:
    """The bundled ACIC v3.5 structure in the tenant's sponsor."""
    state: AppState = tenant.factory.app.state.collabx
    definition = read_definition(bundled_instruments()[ACIC])
    async with state.sessionmaker.begin() as session:
        await load_instrument(session, tenant.sponsor_id, definition, actor=None)


async def submit_points(
    tenant: Tenant, team: str, measure: str, points: dict[str, tuple[int, int]]
) -> None:
    """Data points (period -> numerator, denominator) for a team, as its admin."""
    rows = [
        {"team": team, "measure": measure, "period": p, "numerator": n, "denominator": d}
        for p, (n, d) in points.items()
    ]
    body = data(await tenant.gql(SUBMIT, {"input": {"rows": rows}}))
    assert body["submitMeasureData"]["rejected"] == 0, body


async def client_token(
    tenant: Tenant,
    kind: ClientKind,
    *,
    teams: tuple[str, ...] = (),
    scopes: tuple[str, ...] | None = None,
) -> str:
    """A token of a new client of the tenant."""
    client_id, secret = await tenant.add_client(kind, teams=teams, scopes=scopes)
    return await tenant.token(client_id, secret)


async def audit_events(tenant: Tenant, entity_type: str) -> list[AuditEvent]:
    """The tenant's audit events about one kind of entity, oldest first."""
    state: AppState = tenant.factory.app.state.collabx
    async with state.sessionmaker() as session:
        rows = await session.scalars(
            select(AuditEvent)
            .where(
                AuditEvent.sponsor_id == tenant.sponsor_id, AuditEvent.entity_type == entity_type
            )
            .order_by(AuditEvent.at, AuditEvent.id)
        )
        return list(rows.all())
