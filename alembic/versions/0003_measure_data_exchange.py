"""Measure data exchange: receipts, idempotency keys, value history, tombstones, period locks.

Every table is a tenant table keyed by (sponsor_id, id); foreign keys between tenant tables
include sponsor_id (Citus). Deleted data points leave ``data_point_tombstones`` rows for the delta
export instead of a flag on ``data_points``, so readers of live data need no filter.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-25 21:23:14.360233
"""

from collections.abc import Sequence

import sqlalchemy as sa

from alembic import op

revision: str = "0003"
down_revision: str | Sequence[str] | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
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
        sa.ForeignKeyConstraint(
            ["sponsor_id"],
            ["sponsors.id"],
            name=op.f("fk_data_point_history_sponsor_id_sponsors"),
            ondelete="RESTRICT",
        ),
        sa.PrimaryKeyConstraint("sponsor_id", "id", name=op.f("pk_data_point_history")),
    )
    with op.batch_alter_table("data_point_history", schema=None) as batch_op:
        batch_op.create_index(
            "ix_data_point_history_sponsor_point",
            ["sponsor_id", "data_point_id", "at"],
            unique=False,
        )
        batch_op.create_index(
            "ix_data_point_history_sponsor_receipt", ["sponsor_id", "receipt_id"], unique=False
        )

    op.create_table(
        "idempotency_keys",
        sa.Column("client_id", sa.String(length=128), nullable=False),
        sa.Column("key", sa.String(length=255), nullable=False),
        sa.Column("operation", sa.String(length=16), nullable=False),
        sa.Column("request_hash", sa.String(length=64), nullable=False),
        sa.Column("receipt_id", sa.Uuid(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("sponsor_id", sa.Uuid(), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.ForeignKeyConstraint(
            ["sponsor_id"],
            ["sponsors.id"],
            name=op.f("fk_idempotency_keys_sponsor_id_sponsors"),
            ondelete="RESTRICT",
        ),
        sa.PrimaryKeyConstraint("sponsor_id", "id", name=op.f("pk_idempotency_keys")),
        sa.UniqueConstraint(
            "sponsor_id",
            "client_id",
            "key",
            name=op.f("uq_idempotency_keys_sponsor_id_client_id_key"),
        ),
    )
    with op.batch_alter_table("idempotency_keys", schema=None) as batch_op:
        batch_op.create_index("ix_idempotency_keys_expires_at", ["expires_at"], unique=False)

    op.create_table(
        "measure_data_receipts",
        sa.Column("operation", sa.String(length=16), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("source", sa.String(length=32), nullable=False),
        sa.Column("client_id", sa.String(length=128), nullable=False),
        sa.Column("request_id", sa.String(length=64), nullable=False),
        sa.Column("idempotency_key", sa.String(length=255), nullable=True),
        sa.Column("atomic", sa.Boolean(), nullable=False),
        sa.Column("row_count", sa.Integer(), nullable=False),
        sa.Column("created", sa.Integer(), nullable=False),
        sa.Column("updated", sa.Integer(), nullable=False),
        sa.Column("unchanged", sa.Integer(), nullable=False),
        sa.Column("deleted", sa.Integer(), nullable=False),
        sa.Column("rejected", sa.Integer(), nullable=False),
        sa.Column("conflicts", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("sponsor_id", sa.Uuid(), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.ForeignKeyConstraint(
            ["sponsor_id"],
            ["sponsors.id"],
            name=op.f("fk_measure_data_receipts_sponsor_id_sponsors"),
            ondelete="RESTRICT",
        ),
        sa.PrimaryKeyConstraint("sponsor_id", "id", name=op.f("pk_measure_data_receipts")),
    )
    with op.batch_alter_table("measure_data_receipts", schema=None) as batch_op:
        batch_op.create_index(
            "ix_measure_data_receipts_sponsor_created", ["sponsor_id", "created_at"], unique=False
        )

    op.create_table(
        "period_locks",
        sa.Column("collaborative_id", sa.Uuid(), nullable=False),
        sa.Column("through_period", sa.String(length=7), nullable=False),
        sa.Column("locked_by", sa.String(length=128), nullable=False),
        sa.Column("locked_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("sponsor_id", sa.Uuid(), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.ForeignKeyConstraint(
            ["sponsor_id", "collaborative_id"],
            ["collaboratives.sponsor_id", "collaboratives.id"],
            name=op.f("fk_period_locks_sponsor_id_collaborative_id_collaboratives"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["sponsor_id"],
            ["sponsors.id"],
            name=op.f("fk_period_locks_sponsor_id_sponsors"),
            ondelete="RESTRICT",
        ),
        sa.PrimaryKeyConstraint("sponsor_id", "id", name=op.f("pk_period_locks")),
        sa.UniqueConstraint(
            "sponsor_id",
            "collaborative_id",
            name=op.f("uq_period_locks_sponsor_id_collaborative_id"),
        ),
    )
    op.create_table(
        "data_point_tombstones",
        sa.Column("team_id", sa.Uuid(), nullable=False),
        sa.Column("measure_id", sa.Uuid(), nullable=False),
        sa.Column("measure_version", sa.Integer(), nullable=False),
        sa.Column("period", sa.String(length=7), nullable=False),
        sa.Column("stratum", sa.String(length=64), nullable=False),
        sa.Column("receipt_id", sa.Uuid(), nullable=False),
        sa.Column("deleted_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("deleted_by", sa.String(length=128), nullable=False),
        sa.Column("sponsor_id", sa.Uuid(), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.ForeignKeyConstraint(
            ["sponsor_id", "measure_id"],
            ["measures.sponsor_id", "measures.id"],
            name=op.f("fk_data_point_tombstones_sponsor_id_measure_id_measures"),
        ),
        sa.ForeignKeyConstraint(
            ["sponsor_id", "team_id"],
            ["teams.sponsor_id", "teams.id"],
            name=op.f("fk_data_point_tombstones_sponsor_id_team_id_teams"),
        ),
        sa.ForeignKeyConstraint(
            ["sponsor_id"],
            ["sponsors.id"],
            name=op.f("fk_data_point_tombstones_sponsor_id_sponsors"),
            ondelete="RESTRICT",
        ),
        sa.PrimaryKeyConstraint("sponsor_id", "id", name=op.f("pk_data_point_tombstones")),
        sa.UniqueConstraint(
            "sponsor_id",
            "team_id",
            "measure_id",
            "period",
            "stratum",
            name=op.f("uq_data_point_tombstones_sponsor_id_team_id_measure_id_period_stratum"),
        ),
    )
    with op.batch_alter_table("data_point_tombstones", schema=None) as batch_op:
        batch_op.create_index(
            "ix_data_point_tombstones_sponsor_deleted", ["sponsor_id", "deleted_at"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("data_point_tombstones", schema=None) as batch_op:
        batch_op.drop_index("ix_data_point_tombstones_sponsor_deleted")

    op.drop_table("data_point_tombstones")
    op.drop_table("period_locks")
    with op.batch_alter_table("measure_data_receipts", schema=None) as batch_op:
        batch_op.drop_index("ix_measure_data_receipts_sponsor_created")

    op.drop_table("measure_data_receipts")
    with op.batch_alter_table("idempotency_keys", schema=None) as batch_op:
        batch_op.drop_index("ix_idempotency_keys_expires_at")

    op.drop_table("idempotency_keys")
    with op.batch_alter_table("data_point_history", schema=None) as batch_op:
        batch_op.drop_index("ix_data_point_history_sponsor_receipt")
        batch_op.drop_index("ix_data_point_history_sponsor_point")

    op.drop_table("data_point_history")
