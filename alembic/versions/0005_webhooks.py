"""Webhooks: partner endpoints, the collaboratives they listen to, and the delivery queue.

Tenant tables keyed by (sponsor_id, id); foreign keys include sponsor_id (Citus). Deleting a
webhook or a collaborative removes its links and deliveries. ``webhook_deliveries`` is unique per
(sponsor, webhook, event id), so every API process may record an event and it is sent once; its
(status, next_attempt_at) index serves the workers' queue.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-25 22:09:34.486939
"""

from collections.abc import Sequence

import sqlalchemy as sa

from alembic import op

revision: str = "0005"
down_revision: str | Sequence[str] | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "webhooks",
        sa.Column("url", sa.String(length=2000), nullable=False),
        sa.Column("events", sa.JSON(), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("secret", sa.String(length=128), nullable=False),
        sa.Column("created_by", sa.String(length=128), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("sponsor_id", sa.Uuid(), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.ForeignKeyConstraint(
            ["sponsor_id"],
            ["sponsors.id"],
            name=op.f("fk_webhooks_sponsor_id_sponsors"),
            ondelete="RESTRICT",
        ),
        sa.PrimaryKeyConstraint("sponsor_id", "id", name=op.f("pk_webhooks")),
    )
    with op.batch_alter_table("webhooks", schema=None) as batch_op:
        batch_op.create_index(
            "ix_webhooks_sponsor_created", ["sponsor_id", "created_at"], unique=False
        )

    op.create_table(
        "webhook_collaboratives",
        sa.Column("sponsor_id", sa.Uuid(), nullable=False),
        sa.Column("webhook_id", sa.Uuid(), nullable=False),
        sa.Column("collaborative_id", sa.Uuid(), nullable=False),
        sa.ForeignKeyConstraint(
            ["sponsor_id", "collaborative_id"],
            ["collaboratives.sponsor_id", "collaboratives.id"],
            name=op.f("fk_webhook_collaboratives_sponsor_id_collaborative_id_collaboratives"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["sponsor_id", "webhook_id"],
            ["webhooks.sponsor_id", "webhooks.id"],
            name=op.f("fk_webhook_collaboratives_sponsor_id_webhook_id_webhooks"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["sponsor_id"],
            ["sponsors.id"],
            name=op.f("fk_webhook_collaboratives_sponsor_id_sponsors"),
        ),
        sa.PrimaryKeyConstraint(
            "sponsor_id", "webhook_id", "collaborative_id", name=op.f("pk_webhook_collaboratives")
        ),
    )
    with op.batch_alter_table("webhook_collaboratives", schema=None) as batch_op:
        batch_op.create_index(
            "ix_webhook_collaboratives_collaborative",
            ["sponsor_id", "collaborative_id"],
            unique=False,
        )

    op.create_table(
        "webhook_deliveries",
        sa.Column("webhook_id", sa.Uuid(), nullable=False),
        sa.Column("event_id", sa.String(length=200), nullable=False),
        sa.Column(
            "event_type",
            sa.Enum(
                "MEASURE_DATA_SUBMITTED",
                "SIGNAL_DETECTED",
                name="webhookeventtype",
                native_enum=False,
                length=32,
            ),
            nullable=False,
        ),
        sa.Column("payload", sa.JSON(), nullable=False),
        sa.Column(
            "status",
            sa.Enum(
                "PENDING",
                "SUCCEEDED",
                "FAILED",
                name="webhookdeliverystatus",
                native_enum=False,
                length=16,
            ),
            nullable=False,
        ),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_attempt_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_status_code", sa.Integer(), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("delivered_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("sponsor_id", sa.Uuid(), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.ForeignKeyConstraint(
            ["sponsor_id", "webhook_id"],
            ["webhooks.sponsor_id", "webhooks.id"],
            name=op.f("fk_webhook_deliveries_sponsor_id_webhook_id_webhooks"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["sponsor_id"],
            ["sponsors.id"],
            name=op.f("fk_webhook_deliveries_sponsor_id_sponsors"),
            ondelete="RESTRICT",
        ),
        sa.PrimaryKeyConstraint("sponsor_id", "id", name=op.f("pk_webhook_deliveries")),
        sa.UniqueConstraint(
            "sponsor_id",
            "webhook_id",
            "event_id",
            name=op.f("uq_webhook_deliveries_sponsor_id_webhook_id_event_id"),
        ),
    )
    with op.batch_alter_table("webhook_deliveries", schema=None) as batch_op:
        batch_op.create_index(
            "ix_webhook_deliveries_sponsor_webhook_created",
            ["sponsor_id", "webhook_id", "created_at"],
            unique=False,
        )
        batch_op.create_index(
            "ix_webhook_deliveries_status_next", ["status", "next_attempt_at"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("webhook_deliveries", schema=None) as batch_op:
        batch_op.drop_index("ix_webhook_deliveries_status_next")
        batch_op.drop_index("ix_webhook_deliveries_sponsor_webhook_created")

    op.drop_table("webhook_deliveries")
    with op.batch_alter_table("webhook_collaboratives", schema=None) as batch_op:
        batch_op.drop_index("ix_webhook_collaboratives_collaborative")

    op.drop_table("webhook_collaboratives")
    with op.batch_alter_table("webhooks", schema=None) as batch_op:
        batch_op.drop_index("ix_webhooks_sponsor_created")

    op.drop_table("webhooks")
