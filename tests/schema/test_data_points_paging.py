"""The delta export's paging after its optimisation (issue 7): each branch of the live/tombstone
union is cut to one page before the union, and ``totalCount`` is counted only when selected."""

from __future__ import annotations

import asyncio
from typing import Any

from tests.factories import Tenant
from tests.schema.test_measure_data import delete, key, row, setup_program, submit

WITHOUT_TOTAL = """
query Points($first: Int, $after: String) {
  dataPoints(first: $first, after: $after) {
    pageInfo { hasNextPage endCursor }
    nodes { id period deleted }
  }
}
"""

TOTAL_IN_FRAGMENT = """
query Points($first: Int, $after: String) {
  dataPoints(first: $first, after: $after) { ...Counted }
}
fragment Counted on DataPointConnection { ... on DataPointConnection { totalCount } }
"""


async def _walk(tenant: Tenant, first: int) -> list[dict[str, Any]]:
    """Every node of the export, page by page, without asking for ``totalCount``."""
    seen: list[dict[str, Any]] = []
    after: str | None = None
    while True:
        body = await tenant.gql(WITHOUT_TOTAL, {"first": first, "after": after})
        assert "errors" not in body, body
        page = body["data"]["dataPoints"]
        seen += page["nodes"]
        if not page["pageInfo"]["hasNextPage"]:
            return seen
        after = page["pageInfo"]["endCursor"]


async def test_pages_interleave_live_points_and_tombstones_in_change_order(
    tenant: Tenant,
) -> None:
    await setup_program(tenant)
    await submit(tenant, [row(f"2023-{m:02d}") for m in range(1, 13)])
    await asyncio.sleep(0.01)
    gone = await delete(tenant, [key(f"2023-{m:02d}") for m in (2, 5, 7)])
    assert gone["deleted"] == 3
    await asyncio.sleep(0.01)
    await submit(tenant, [row("2024-01"), row("2023-03", 1, 10)])

    for first in (1, 2, 5, 100):
        nodes = await _walk(tenant, first)
        assert len(nodes) == len({node["id"] for node in nodes}) == 13
        assert [node["deleted"] for node in nodes[-5:]] == [True, True, True, False, False]
        assert {node["period"] for node in nodes if node["deleted"]} == {
            "2023-02",
            "2023-05",
            "2023-07",
        }
        assert [node["period"] for node in nodes[-2:]] in (
            ["2024-01", "2023-03"],
            ["2023-03", "2024-01"],
        )


async def test_total_count_is_counted_when_selected_through_fragments(tenant: Tenant) -> None:
    await setup_program(tenant)
    await submit(tenant, [row(f"2023-{m:02d}") for m in range(1, 7)])
    await delete(tenant, [key("2023-01")])
    first = await tenant.gql(WITHOUT_TOTAL, {"first": 2})
    after = first["data"]["dataPoints"]["pageInfo"]["endCursor"]
    body = await tenant.gql(TOTAL_IN_FRAGMENT, {"first": 2, "after": after})
    assert "errors" not in body, body
    assert body["data"]["dataPoints"]["totalCount"] == 6
