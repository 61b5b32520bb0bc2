"""A nested dashboard query costs the same number of SQL statements for 1 or many rows."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import event
from starlette.applications import Starlette

from api.state import AppState
from tests.factories import Tenant, TenantFactory
from tests.programs import build_program

DASHBOARD = """
{
  viewer { kind sponsor { slug } }
  collaboratives(first: 50) {
    totalCount
    nodes {
      code sponsor { slug } phases { kind } staff { role person { name } }
      measures(first: 20) {
        totalCount nodes { required goal measure { code versions { version } } }
      }
      resources(first: 10) { nodes { title careModelDomains topics collaboratives { code } } }
      teams(first: 50) {
        totalCount
        nodes {
          code organization { code name } collaborative { code }
          members { role person { email } }
          series(last: 12) { measure { code } points { period numerator denominator value } }
        }
      }
    }
  }
  measures(first: 50) { nodes { code versions { version } } }
  resources(first: 50) { nodes { title collaboratives { code } } }
  teams(first: 50) { nodes { code organization { code } collaborative { code } } }
}
"""


@contextmanager
def counted_statements(app: Starlette) -> Iterator[list[str]]:
    """Every SQL statement the app's engine runs inside the block."""
    state: AppState = app.state.collabx
    statements: list[str] = []

    def record(*args: Any) -> None:
        statements.append(str(args[2]))

    event.listen(state.engine.sync_engine, "before_cursor_execute", record)
    try:
        yield statements
    finally:
        event.remove(state.engine.sync_engine, "before_cursor_execute", record)


async def _run(app: Starlette, tenant: Tenant) -> int:
    await tenant.token()  # the token request is not part of the count
    with counted_statements(app) as statements:
        body = await tenant.gql(DASHBOARD)
    assert "errors" not in body, body
    return len(statements)


async def test_statement_count_does_not_grow_with_rows(
    app: Starlette, tenants: TenantFactory
) -> None:
    small, large = await tenants.create(), await tenants.create()
    await build_program(small, "one", teams=1)
    for code in ("a", "b", "c"):
        await build_program(large, code, teams=3)
    small_count = await _run(app, small)
    large_count = await _run(app, large)
    assert large_count == small_count, (small_count, large_count)
    assert small_count <= 30, small_count  # 28 today: a regression guard
