"""Data point history without its foreign key to sponsors.

A history row is only ever written beside its data point (whose sponsor the data point's own
keys check), and the key check locked the sponsor row once per history row: 1,000 row locks per
ingest batch, a MultiXact as soon as two batches of one sponsor run at once. SQLite rebuilds
the table (batch mode).

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-26 03:30:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0008"
down_revision: str | Sequence[str] | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("data_point_history", schema=None) as batch_op:
        batch_op.drop_constraint(
            batch_op.f("fk_data_point_history_sponsor_id_sponsors"), type_="foreignkey"
        )


def downgrade() -> None:
    with op.batch_alter_table("data_point_history", schema=None) as batch_op:
        batch_op.create_foreign_key(
            batch_op.f("fk_data_point_history_sponsor_id_sponsors"),
            "sponsors",
            ["sponsor_id"],
            ["id"],
            ondelete="RESTRICT",
        )
