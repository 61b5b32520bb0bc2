"""Migration 0009 regroups the per-point history rows into one change set per receipt, and its
downgrade expands them back; on PostgreSQL the view ``data_point_history`` shows a change set
one row per point. Both backends."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa

from alembic import command
from db.migrations import alembic_config
from db.queries.history import entries_of
from db.sessions import create_engine

SPONSOR = uuid.uuid4()
UPDATING, DELETING = uuid.uuid4(), uuid.uuid4()
POINT_A, POINT_B = uuid.uuid4(), uuid.uuid4()
TEAM, MEASURE = uuid.uuid4(), uuid.uuid4()
AT = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)

sponsors = sa.table(
    "sponsors",
    sa.column("id", sa.Uuid()),
    sa.column("slug", sa.String()),
    sa.column("name", sa.String()),
    sa.column("description", sa.String()),
    sa.column("created_at", sa.DateTime(timezone=True)),
)
history = sa.table(
    "data_point_history",
    *(
        sa.column(name, sa.Uuid())
        for name in ("sponsor_id", "id", "data_point_id", "team_id", "measure_id", "receipt_id")
    ),
    *(sa.column(name, sa.String()) for name in ("period", "stratum", "action", "client_id")),
    sa.column("before", sa.JSON()),
    sa.column("after", sa.JSON()),
    sa.column("at", sa.DateTime(timezone=True)),
)
change_sets = sa.table(
    "data_point_change_sets",
    sa.column("sponsor_id", sa.Uuid()),
    sa.column("id", sa.Uuid()),
    sa.column("client_id", sa.String()),
    sa.column("changes", sa.JSON()),
)


def _values(numerator: int, annotation: str = "") -> dict[str, Any]:
    return {
        "measure_version": 1,
        "numerator": numerator,
        "denominator": 10,
        "value": None,
        "annotation": annotation,
        "status": "SUBMITTED",
    }


def _history_row(
    receipt: uuid.UUID,
    point: uuid.UUID,
    period: str,
    action: str,
    before: dict[str, Any] | None,
    after: dict[str, Any] | None,
) -> dict[str, Any]:
    return {
        "sponsor_id": SPONSOR,
        "id": uuid.uuid4(),
        "data_point_id": point,
        "team_id": TEAM,
        "measure_id": MEASURE,
        "receipt_id": receipt,
        "period": period,
        "stratum": "",
        "action": action,
        "client_id": "ehr-1",
        "before": before,
        "after": after,
        "at": AT,
    }


MANY = 150
"""More receipts than the migration reads at a time (100), one update each."""
ROWS = [
    _history_row(UPDATING, POINT_A, "2024-01", "UPDATE", _values(5), _values(6, "fixed")),
    _history_row(UPDATING, POINT_B, "2024-02", "RESTORE", None, _values(2)),
    _history_row(DELETING, POINT_A, "2024-01", "DELETE", _values(6, "fixed"), None),
    *(
        _history_row(uuid.uuid4(), uuid.uuid4(), "2023-12", "UPDATE", _values(n), _values(n + 1))
        for n in range(MANY)
    ),
]


async def _run(url: str, statement: Any, rows: list[dict[str, Any]] | None = None) -> list[Any]:
    engine = create_engine(url, pool_size=1)
    try:
        async with engine.begin() as connection:
            if rows is not None:
                await connection.execute(statement, rows)
                return []
            return list((await connection.execute(statement)).mappings())
    finally:
        await engine.dispose()


async def test_history_rows_become_change_sets_and_back(empty_database_url: str) -> None:
    config = alembic_config(empty_database_url)
    await asyncio.to_thread(command.upgrade, config, "0008")
    sponsor = {"id": SPONSOR, "slug": "s", "name": "S", "description": "", "created_at": AT}
    await _run(empty_database_url, sponsors.insert(), [sponsor])
    await _run(empty_database_url, history.insert(), ROWS)

    await asyncio.to_thread(command.upgrade, config, "0009")
    stored = {row["id"]: row for row in await _run(empty_database_url, sa.select(change_sets))}
    assert len(stored) == 2 + MANY and {UPDATING, DELETING} <= set(stored)
    assert (
        sorted(
            entries_of(stored[row["receipt_id"]]["changes"])[0].before["numerator"]  # type: ignore[index]
            for row in ROWS[3:]
        )
        == list(range(MANY))
    )
    updated = entries_of(stored[UPDATING]["changes"])
    # (in any order: the old rows' ids are random, so is their order within a receipt)
    assert sorted((e.action, e.period, str(e.data_point_id)) for e in updated) == [
        ("RESTORE", "2024-02", str(POINT_B)),
        ("UPDATE", "2024-01", str(POINT_A)),
    ]
    by_action = {e.action: e for e in updated}
    assert by_action["UPDATE"].before == _values(5)
    assert by_action["UPDATE"].after == _values(6, "fixed")
    assert by_action["RESTORE"].before is None and by_action["RESTORE"].after == _values(2)
    (deleted,) = entries_of(stored[DELETING]["changes"])
    assert (deleted.action, deleted.before, deleted.after) == ("DELETE", _values(6, "fixed"), None)
    assert stored[DELETING]["client_id"] == "ehr-1"

    if empty_database_url.startswith("postgresql"):
        view = await _run(
            empty_database_url,
            sa.text(
                "SELECT receipt_id, data_point_id, action, before_numerator, after_numerator,"
                " after_annotation, position, before, after FROM data_point_history"
                " WHERE period > '2023-12' ORDER BY action"
            ),
        )
        assert [
            (r["receipt_id"], r["data_point_id"], r["action"], r["before_numerator"]) for r in view
        ] == [
            (DELETING, POINT_A, "DELETE", 6),
            (UPDATING, POINT_B, "RESTORE", None),
            (UPDATING, POINT_A, "UPDATE", 5),
        ]
        assert [(r["after_numerator"], r["after_annotation"]) for r in view] == [
            (None, None),
            (2, ""),
            (6, "fixed"),
        ]
        assert [(r["before"], r["after"]) for r in view] == [  # the old table's JSON columns
            (_values(6, "fixed"), None),
            (None, _values(2)),
            (_values(5), _values(6, "fixed")),
        ]

    await asyncio.to_thread(command.downgrade, config, "0008")
    back = await _run(empty_database_url, sa.select(history))
    assert sorted(
        (r["receipt_id"], r["data_point_id"], r["action"], r["before"], r["after"]) for r in back
    ) == sorted(
        (r["receipt_id"], r["data_point_id"], r["action"], r["before"], r["after"]) for r in ROWS
    )
