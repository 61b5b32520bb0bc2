"""Sharing agreements across sponsors, their read-access log, pseudonym keys, measure links.

Tenant tables keyed by (sponsor_id, id) with the grantor (or the declaring sponsor) as tenant;
foreign keys include sponsor_id (Citus). ``sharing_agreements`` is also indexed by grantee, the
lookup every cross-sponsor read makes; ``sharing_access_log`` by (sponsor, time), the grantor's
``accessLog`` order.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-25 23:54:50.075526
"""

from collections.abc import Sequence

import sqlalchemy as sa

from alembic import op

revision: str = "0006"
down_revision: str | Sequence[str] | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "pseudonym_keys",
        sa.Column("sponsor_id", sa.Uuid(), nullable=False),
        sa.Column("grantee_sponsor_id", sa.Uuid(), nullable=False),
        sa.Column("secret", sa.LargeBinary(length=32), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["grantee_sponsor_id"],
            ["sponsors.id"],
            name=op.f("fk_pseudonym_keys_grantee_sponsor_id_sponsors"),
            ondelete="RESTRICT",
        ),
        sa.ForeignKeyConstraint(
            ["sponsor_id"],
            ["sponsors.id"],
            name=op.f("fk_pseudonym_keys_sponsor_id_sponsors"),
            ondelete="RESTRICT",
        ),
        sa.PrimaryKeyConstraint("sponsor_id", "grantee_sponsor_id", name=op.f("pk_pseudonym_keys")),
    )
    op.create_table(
        "sharing_agreements",
        sa.Column("grantee_sponsor_id", sa.Uuid(), nullable=False),
        sa.Column(
            "level",
            sa.Enum(
                "AGGREGATE",
                "TEAM_DEIDENTIFIED",
                "TEAM_IDENTIFIED",
                name="sharinglevel",
                native_enum=False,
                length=32,
            ),
            nullable=False,
        ),
        sa.Column("all_collaboratives", sa.Boolean(), nullable=False),
        sa.Column("all_measures", sa.Boolean(), nullable=False),
        sa.Column("cell_min", sa.Integer(), nullable=False),
        sa.Column("min_teams", sa.Integer(), nullable=False),
        sa.Column("purpose", sa.Text(), nullable=False),
        sa.Column("valid_from", sa.DateTime(timezone=True), nullable=False),
        sa.Column("valid_to", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_by", sa.String(length=128), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("revoked_by", sa.String(length=128), nullable=True),
        sa.Column("sponsor_id", sa.Uuid(), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.ForeignKeyConstraint(
            ["grantee_sponsor_id"],
            ["sponsors.id"],
            name=op.f("fk_sharing_agreements_grantee_sponsor_id_sponsors"),
            ondelete="RESTRICT",
        ),
        sa.ForeignKeyConstraint(
            ["sponsor_id"],
            ["sponsors.id"],
            name=op.f("fk_sharing_agreements_sponsor_id_sponsors"),
            ondelete="RESTRICT",
        ),
        sa.PrimaryKeyConstraint("sponsor_id", "id", name=op.f("pk_sharing_agreements")),
    )
    with op.batch_alter_table("sharing_agreements", schema=None) as batch_op:
        batch_op.create_index(
            "ix_sharing_agreements_grantee", ["grantee_sponsor_id", "sponsor_id"], unique=False
        )
        batch_op.create_index(
            "ix_sharing_agreements_sponsor_created", ["sponsor_id", "created_at"], unique=False
        )

    op.create_table(
        "measure_equivalences",
        sa.Column("measure_id", sa.Uuid(), nullable=False),
        sa.Column("other_sponsor_id", sa.Uuid(), nullable=False),
        sa.Column("other_measure_code", sa.String(length=64), nullable=False),
        sa.Column("declared_by", sa.String(length=128), nullable=False),
        sa.Column("declared_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("sponsor_id", sa.Uuid(), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.ForeignKeyConstraint(
            ["other_sponsor_id"],
            ["sponsors.id"],
            name=op.f("fk_measure_equivalences_other_sponsor_id_sponsors"),
            ondelete="RESTRICT",
        ),
        sa.ForeignKeyConstraint(
            ["sponsor_id", "measure_id"],
            ["measures.sponsor_id", "measures.id"],
            name=op.f("fk_measure_equivalences_sponsor_id_measure_id_measures"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["sponsor_id"],
            ["sponsors.id"],
            name=op.f("fk_measure_equivalences_sponsor_id_sponsors"),
            ondelete="RESTRICT",
        ),
        sa.PrimaryKeyConstraint("sponsor_id", "id", name=op.f("pk_measure_equivalences")),
        sa.UniqueConstraint(
            "sponsor_id",
            "measure_id",
            "other_sponsor_id",
            "other_measure_code",
            name=op.f(
                "uq_measure_equivalences_sponsor_id_measure_id_other_sponsor_id_other_measure_code"
            ),
        ),
    )
    with op.batch_alter_table("measure_equivalences", schema=None) as batch_op:
        batch_op.create_index(
            "ix_measure_equivalences_other",
            ["other_sponsor_id", "other_measure_code"],
            unique=False,
        )

    op.create_table(
        "sharing_access_log",
        sa.Column("agreement_id", sa.Uuid(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("reader_client_id", sa.String(length=128), nullable=False),
        sa.Column("reader_sponsor_id", sa.Uuid(), nullable=False),
        sa.Column("operation", sa.String(length=64), nullable=False),
        sa.Column(
            "level",
            sa.Enum(
                "AGGREGATE",
                "TEAM_DEIDENTIFIED",
                "TEAM_IDENTIFIED",
                name="sharinglevel",
                native_enum=False,
                length=32,
            ),
            nullable=False,
        ),
        sa.Column("collaborative_codes", sa.JSON(), nullable=False),
        sa.Column("measure_code", sa.String(length=64), nullable=False),
        sa.Column("teams_read", sa.Integer(), nullable=False),
        sa.Column("request_id", sa.String(length=64), nullable=False),
        sa.Column("detail", sa.JSON(), nullable=False),
        sa.Column("sponsor_id", sa.Uuid(), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.ForeignKeyConstraint(
            ["reader_sponsor_id"],
            ["sponsors.id"],
            name=op.f("fk_sharing_access_log_reader_sponsor_id_sponsors"),
            ondelete="RESTRICT",
        ),
        sa.ForeignKeyConstraint(
            ["sponsor_id", "agreement_id"],
            ["sharing_agreements.sponsor_id", "sharing_agreements.id"],
            name=op.f("fk_sharing_access_log_sponsor_id_agreement_id_sharing_agreements"),
        ),
        sa.ForeignKeyConstraint(
            ["sponsor_id"],
            ["sponsors.id"],
            name=op.f("fk_sharing_access_log_sponsor_id_sponsors"),
            ondelete="RESTRICT",
        ),
        sa.PrimaryKeyConstraint("sponsor_id", "id", name=op.f("pk_sharing_access_log")),
    )
    with op.batch_alter_table("sharing_access_log", schema=None) as batch_op:
        batch_op.create_index(
            "ix_sharing_access_log_sponsor_at", ["sponsor_id", "at"], unique=False
        )

    op.create_table(
        "sharing_agreement_collaboratives",
        sa.Column("sponsor_id", sa.Uuid(), nullable=False),
        sa.Column("agreement_id", sa.Uuid(), nullable=False),
        sa.Column("collaborative_id", sa.Uuid(), nullable=False),
        sa.ForeignKeyConstraint(
            ["sponsor_id", "agreement_id"],
            ["sharing_agreements.sponsor_id", "sharing_agreements.id"],
            name=op.f(
                "fk_sharing_agreement_collaboratives_sponsor_id_agreement_id_sharing_agreements"
            ),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["sponsor_id", "collaborative_id"],
            ["collaboratives.sponsor_id", "collaboratives.id"],
            name=op.f(
                "fk_sharing_agreement_collaboratives_sponsor_id_collaborative_id_collaboratives"
            ),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["sponsor_id"],
            ["sponsors.id"],
            name=op.f("fk_sharing_agreement_collaboratives_sponsor_id_sponsors"),
        ),
        sa.PrimaryKeyConstraint(
            "sponsor_id",
            "agreement_id",
            "collaborative_id",
            name=op.f("pk_sharing_agreement_collaboratives"),
        ),
    )
    op.create_table(
        "sharing_agreement_measures",
        sa.Column("sponsor_id", sa.Uuid(), nullable=False),
        sa.Column("agreement_id", sa.Uuid(), nullable=False),
        sa.Column("measure_id", sa.Uuid(), nullable=False),
        sa.ForeignKeyConstraint(
            ["sponsor_id", "agreement_id"],
            ["sharing_agreements.sponsor_id", "sharing_agreements.id"],
            name=op.f("fk_sharing_agreement_measures_sponsor_id_agreement_id_sharing_agreements"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["sponsor_id", "measure_id"],
            ["measures.sponsor_id", "measures.id"],
            name=op.f("fk_sharing_agreement_measures_sponsor_id_measure_id_measures"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["sponsor_id"],
            ["sponsors.id"],
            name=op.f("fk_sharing_agreement_measures_sponsor_id_sponsors"),
        ),
        sa.PrimaryKeyConstraint(
            "sponsor_id", "agreement_id", "measure_id", name=op.f("pk_sharing_agreement_measures")
        ),
    )


def downgrade() -> None:
    op.drop_table("sharing_agreement_measures")
    op.drop_table("sharing_agreement_collaboratives")
    with op.batch_alter_table("sharing_access_log", schema=None) as batch_op:
        batch_op.drop_index("ix_sharing_access_log_sponsor_at")

    op.drop_table("sharing_access_log")
    with op.batch_alter_table("measure_equivalences", schema=None) as batch_op:
        batch_op.drop_index("ix_measure_equivalences_other")

    op.drop_table("measure_equivalences")
    with op.batch_alter_table("sharing_agreements", schema=None) as batch_op:
        batch_op.drop_index("ix_sharing_agreements_sponsor_created")
        batch_op.drop_index("ix_sharing_agreements_grantee")

    op.drop_table("sharing_agreements")
    op.drop_table("pseudonym_keys")
