"""Data point history as one change set per receipt.

``data_point_history`` held one row per updated, restored or deleted point, with two JSON
objects and three indexes: for a 1,000-row batch that was more PostgreSQL time than the upsert
of the points themselves. ``data_point_change_sets`` holds one row per call (``id`` = the
receipt's id) with every point it wrote as parallel JSON columns, created points included
(``db.models.DataPointChangeSet``). Existing history rows are regrouped by receipt; on
PostgreSQL a view under the old name shows the change sets one row per point, for auditors'
SQL: the old columns but ``id``, plus the values before and after as columns and ``position``
(from 1) in the call; unlike the old table it lists created points too (action ``CREATE``), and
a look-up of one point unpacks every change set of its sponsor (the old per-point index is
gone with the rows it indexed). Calls from before the migration that only created points have
no change set (the old history did not record creations). The downgrade expands the change
sets back into rows, created points left out.

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-26 09:00:00
"""

import uuid
from collections.abc import Iterator, Sequence
from itertools import groupby
from typing import Any

import sqlalchemy as sa

from alembic import op

revision: str = "0009"
down_revision: str | Sequence[str] | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

KEY_FIELDS = ("data_point_id", "team_id", "measure_id", "period", "stratum", "action")
VALUE_FIELDS = ("measure_version", "numerator", "denominator", "value", "annotation", "status")
RECEIPTS_PER_READ = 100
"""Receipts whose history (upgrade) or change sets (downgrade) are read, converted and inserted
at a time: memory holds one page, never the table."""

change_sets = sa.table(
    "data_point_change_sets",
    sa.column("sponsor_id", sa.Uuid()),
    sa.column("id", sa.Uuid()),
    sa.column("client_id", sa.String()),
    sa.column("at", sa.DateTime(timezone=True)),
    sa.column("changes", sa.JSON()),
)
history = sa.table(
    "data_point_history",
    sa.column("sponsor_id", sa.Uuid()),
    sa.column("id", sa.Uuid()),
    sa.column("data_point_id", sa.Uuid()),
    sa.column("team_id", sa.Uuid()),
    sa.column("measure_id", sa.Uuid()),
    sa.column("period", sa.String()),
    sa.column("stratum", sa.String()),
    sa.column("action", sa.String()),
    sa.column("before", sa.JSON()),
    sa.column("after", sa.JSON()),
    sa.column("client_id", sa.String()),
    sa.column("receipt_id", sa.Uuid()),
    sa.column("at", sa.DateTime(timezone=True)),
)

HISTORY_VIEW = """
CREATE VIEW data_point_history AS
SELECT c.sponsor_id, c.id AS receipt_id, c.client_id, c.at, p.position,
       CAST(p.data_point_id AS uuid) AS data_point_id, CAST(p.team_id AS uuid) AS team_id,
       CAST(p.measure_id AS uuid) AS measure_id, p.period, p.stratum, p.action,
       CAST(p.before_measure_version AS integer) AS before_measure_version,
       CAST(p.before_numerator AS bigint) AS before_numerator,
       CAST(p.before_denominator AS bigint) AS before_denominator,
       CAST(p.before_value AS double precision) AS before_value,
       p.before_annotation, p.before_status,
       CAST(p.after_measure_version AS integer) AS after_measure_version,
       CAST(p.after_numerator AS bigint) AS after_numerator,
       CAST(p.after_denominator AS bigint) AS after_denominator,
       CAST(p.after_value AS double precision) AS after_value,
       p.after_annotation, p.after_status,
       CASE WHEN p.before_status IS NOT NULL THEN json_build_object(
           'measure_version', CAST(p.before_measure_version AS integer),
           'numerator', CAST(p.before_numerator AS bigint),
           'denominator', CAST(p.before_denominator AS bigint),
           'value', CAST(p.before_value AS double precision),
           'annotation', p.before_annotation, 'status', p.before_status) END AS before,
       CASE WHEN p.after_status IS NOT NULL THEN json_build_object(
           'measure_version', CAST(p.after_measure_version AS integer),
           'numerator', CAST(p.after_numerator AS bigint),
           'denominator', CAST(p.after_denominator AS bigint),
           'value', CAST(p.after_value AS double precision),
           'annotation', p.after_annotation, 'status', p.after_status) END AS after
FROM data_point_change_sets AS c
CROSS JOIN LATERAL ROWS FROM (
    json_array_elements_text(c.changes -> 'data_point_id'),
    json_array_elements_text(c.changes -> 'team_id'),
    json_array_elements_text(c.changes -> 'measure_id'),
    json_array_elements_text(c.changes -> 'period'),
    json_array_elements_text(c.changes -> 'stratum'),
    json_array_elements_text(c.changes -> 'action'),
    json_array_elements_text(c.changes -> 'before' -> 'measure_version'),
    json_array_elements_text(c.changes -> 'before' -> 'numerator'),
    json_array_elements_text(c.changes -> 'before' -> 'denominator'),
    json_array_elements_text(c.changes -> 'before' -> 'value'),
    json_array_elements_text(c.changes -> 'before' -> 'annotation'),
    json_array_elements_text(c.changes -> 'before' -> 'status'),
    json_array_elements_text(c.changes -> 'after' -> 'measure_version'),
    json_array_elements_text(c.changes -> 'after' -> 'numerator'),
    json_array_elements_text(c.changes -> 'after' -> 'denominator'),
    json_array_elements_text(c.changes -> 'after' -> 'value'),
    json_array_elements_text(c.changes -> 'after' -> 'annotation'),
    json_array_elements_text(c.changes -> 'after' -> 'status')
) WITH ORDINALITY AS p(
    data_point_id, team_id, measure_id, period, stratum, action,
    before_measure_version, before_numerator, before_denominator, before_value,
    before_annotation, before_status,
    after_measure_version, after_numerator, after_denominator, after_value,
    after_annotation, after_status, position)
"""
"""One row per point of every change set (the elements of the parallel columns, zipped by
position; a deletion's missing ``after`` reads as nulls), with ``before`` and ``after`` also as
the JSON objects the old table held."""


def upgrade() -> None:
    op.create_table(
        "data_point_change_sets",
        sa.Column("client_id", sa.String(length=128), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("changes", sa.JSON(), nullable=False),
        sa.Column("sponsor_id", sa.Uuid(), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.ForeignKeyConstraint(
            ["sponsor_id"],
            ["sponsors.id"],
            name=op.f("fk_data_point_change_sets_sponsor_id_sponsors"),
            ondelete="RESTRICT",
        ),
        sa.PrimaryKeyConstraint("sponsor_id", "id", name=op.f("pk_data_point_change_sets")),
    )
    connection = op.get_bind()
    if connection.dialect.name == "postgresql" and _has_lz4(connection):
        # A change set's JSON (~200 KB per 1,000 points) is compressed when stored: lz4 takes
        # half the time of the default pglz (where the server is built with it).
        op.execute("ALTER TABLE data_point_change_sets ALTER COLUMN changes SET COMPRESSION lz4")
    for page in _change_sets_of_history(connection):
        connection.execute(change_sets.insert(), page)
    op.drop_table("data_point_history")
    if connection.dialect.name == "postgresql":
        op.execute(HISTORY_VIEW)


def downgrade() -> None:
    connection = op.get_bind()
    if connection.dialect.name == "postgresql":
        op.execute("DROP VIEW data_point_history")
    op.create_table(
        "data_point_history",
        sa.Column("data_point_id", sa.Uuid(), nullable=False),
        sa.Column("team_id", sa.Uuid(), nullable=False),
        sa.Column("measure_id", sa.Uuid(), nullable=False),
        sa.Column("period", sa.String(length=7), nullable=False),
        sa.Column("stratum", sa.String(length=64), nullable=False),
        sa.Column("action", sa.String(length=16), nullable=False),
        sa.Column("before", sa.JSON(), nullable=True),
        sa.Column("after", sa.JSON(), nullable=True),
        sa.Column("client_id", sa.String(length=128), nullable=False),
        sa.Column("receipt_id", sa.Uuid(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("sponsor_id", sa.Uuid(), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.PrimaryKeyConstraint("sponsor_id", "id", name=op.f("pk_data_point_history")),
    )
    with op.batch_alter_table("data_point_history", schema=None) as batch_op:
        batch_op.create_index(
            "ix_data_point_history_sponsor_point", ["sponsor_id", "data_point_id", "at"]
        )
        batch_op.create_index("ix_data_point_history_sponsor_receipt", ["sponsor_id", "receipt_id"])
    for rows in _history_of_change_sets(connection):
        if rows:
            connection.execute(history.insert(), rows)
    op.drop_table("data_point_change_sets")


def _has_lz4(connection: sa.Connection) -> bool:
    return bool(
        connection.scalar(
            sa.text(
                "SELECT 'lz4' = ANY(enumvals) FROM pg_settings"
                " WHERE name = 'default_toast_compression'"
            )
        )
    )


def _change_sets_of_history(connection: sa.Connection) -> Iterator[list[dict[str, Any]]]:
    """The change sets of a page of receipts at a time: one per (sponsor, receipt) of the
    history rows, points in the rows' id order (plain reads: a server-side cursor would keep
    the table busy)."""
    receipts = connection.execute(
        sa.select(history.c.sponsor_id, history.c.receipt_id)
        .distinct()
        .order_by(history.c.sponsor_id, history.c.receipt_id)
    ).all()
    for start in range(0, len(receipts), RECEIPTS_PER_READ):
        page = [tuple(receipt) for receipt in receipts[start : start + RECEIPTS_PER_READ]]
        rows = connection.execute(
            sa.select(history)
            .where(sa.tuple_(history.c.sponsor_id, history.c.receipt_id).in_(page))
            .order_by(history.c.sponsor_id, history.c.receipt_id, history.c.id)
        ).mappings()
        yield list(_grouped_history(rows))


def _grouped_history(rows: Iterator[sa.RowMapping]) -> Iterator[dict[str, Any]]:
    for (sponsor_id, receipt_id), grouped in groupby(
        rows, key=lambda row: (row["sponsor_id"], row["receipt_id"])
    ):
        points = list(grouped)
        changes: dict[str, Any] = {
            name: [str(point[name]) for point in points] for name in KEY_FIELDS
        }
        for side in ("before", "after"):
            values = [point[side] or {} for point in points]
            changes[side] = {name: [value.get(name) for value in values] for name in VALUE_FIELDS}
        if all(point["after"] is None for point in points):
            changes["after"] = None  # a deletion
        yield {
            "sponsor_id": sponsor_id,
            "id": receipt_id,
            "client_id": points[0]["client_id"],
            "at": points[0]["at"],
            "changes": changes,
        }


def _history_of_change_sets(connection: sa.Connection) -> Iterator[list[dict[str, Any]]]:
    """The rows of the old history, a page of change sets at a time in key order: updated,
    restored and deleted points (not created ones)."""
    after: tuple[Any, Any] | None = None
    while True:
        query = sa.select(change_sets).order_by(change_sets.c.sponsor_id, change_sets.c.id)
        if after is not None:
            query = query.where(sa.tuple_(change_sets.c.sponsor_id, change_sets.c.id) > after)
        page = connection.execute(query.limit(RECEIPTS_PER_READ)).mappings().all()
        if not page:
            return
        yield list(_expanded_change_sets(iter(page)))
        after = (page[-1]["sponsor_id"], page[-1]["id"])


def _expanded_change_sets(rows: Iterator[sa.RowMapping]) -> Iterator[dict[str, Any]]:
    for change_set in rows:
        changes = change_set["changes"]
        for position, action in enumerate(changes["action"]):
            if action == "CREATE":
                continue
            yield {
                "sponsor_id": change_set["sponsor_id"],
                "id": uuid.uuid4(),
                **{name: changes[name][position] for name in ("period", "stratum", "action")},
                **{
                    name: uuid.UUID(changes[name][position])
                    for name in ("data_point_id", "team_id", "measure_id")
                },
                "before": _side(changes["before"], position),
                "after": _side(changes["after"], position),
                "client_id": change_set["client_id"],
                "receipt_id": change_set["id"],
                "at": change_set["at"],
            }


def _side(columns: dict[str, list[Any]] | None, position: int) -> dict[str, Any] | None:
    if columns is None:
        return None
    values = {name: columns[name][position] for name in VALUE_FIELDS}
    return None if all(value is None for value in values.values()) else values
