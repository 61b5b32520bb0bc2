"""Improvement content: change packages, PDSA cycles, IHI assessments, survey instruments.

Every table is a tenant table keyed by (sponsor_id, id) or by sponsor_id and its natural key, and
every foreign key between tenant tables includes sponsor_id (Citus). Care Model domains, scales
and survey answers are JSON columns, read and written whole.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-25 21:52:13.909860
"""

from collections.abc import Sequence

import sqlalchemy as sa

from alembic import op

revision: str = "0004"
down_revision: str | Sequence[str] | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "instruments",
        sa.Column("code", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("sponsor_id", sa.Uuid(), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["sponsor_id"],
            ["sponsors.id"],
            name=op.f("fk_instruments_sponsor_id_sponsors"),
            ondelete="RESTRICT",
        ),
        sa.PrimaryKeyConstraint("sponsor_id", "id", name=op.f("pk_instruments")),
        sa.UniqueConstraint("sponsor_id", "code", name=op.f("uq_instruments_sponsor_id_code")),
    )
    op.create_table(
        "change_concepts",
        sa.Column("collaborative_id", sa.Uuid(), nullable=False),
        sa.Column("title", sa.String(length=300), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("care_model_domains", sa.JSON(), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("sponsor_id", sa.Uuid(), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["sponsor_id", "collaborative_id"],
            ["collaboratives.sponsor_id", "collaboratives.id"],
            name=op.f("fk_change_concepts_sponsor_id_collaborative_id_collaboratives"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["sponsor_id"],
            ["sponsors.id"],
            name=op.f("fk_change_concepts_sponsor_id_sponsors"),
            ondelete="RESTRICT",
        ),
        sa.PrimaryKeyConstraint("sponsor_id", "id", name=op.f("pk_change_concepts")),
        sa.UniqueConstraint(
            "sponsor_id",
            "collaborative_id",
            "title",
            name=op.f("uq_change_concepts_sponsor_id_collaborative_id_title"),
        ),
    )
    op.create_table(
        "instrument_versions",
        sa.Column("instrument_id", sa.Uuid(), nullable=False),
        sa.Column("version", sa.String(length=32), nullable=False),
        sa.Column("source", sa.Text(), nullable=False),
        sa.Column("scale", sa.JSON(), nullable=False),
        sa.Column("min_answered_share", sa.Float(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("sponsor_id", sa.Uuid(), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.ForeignKeyConstraint(
            ["sponsor_id", "instrument_id"],
            ["instruments.sponsor_id", "instruments.id"],
            name=op.f("fk_instrument_versions_sponsor_id_instrument_id_instruments"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["sponsor_id"],
            ["sponsors.id"],
            name=op.f("fk_instrument_versions_sponsor_id_sponsors"),
            ondelete="RESTRICT",
        ),
        sa.PrimaryKeyConstraint("sponsor_id", "id", name=op.f("pk_instrument_versions")),
        sa.UniqueConstraint(
            "sponsor_id",
            "instrument_id",
            "version",
            name=op.f("uq_instrument_versions_sponsor_id_instrument_id_version"),
        ),
    )
    op.create_table(
        "assessments",
        sa.Column("team_id", sa.Uuid(), nullable=False),
        sa.Column("period", sa.String(length=7), nullable=False),
        sa.Column(
            "rater",
            sa.Enum("FACULTY", "SELF", name="assessmentrater", native_enum=False, length=16),
            nullable=False,
        ),
        sa.Column("score", sa.Float(), nullable=False),
        sa.Column("justification", sa.Text(), nullable=False),
        sa.Column("recorded_by", sa.String(length=128), nullable=False),
        sa.Column("sponsor_id", sa.Uuid(), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["sponsor_id", "team_id"],
            ["teams.sponsor_id", "teams.id"],
            name=op.f("fk_assessments_sponsor_id_team_id_teams"),
        ),
        sa.ForeignKeyConstraint(
            ["sponsor_id"],
            ["sponsors.id"],
            name=op.f("fk_assessments_sponsor_id_sponsors"),
            ondelete="RESTRICT",
        ),
        sa.PrimaryKeyConstraint("sponsor_id", "id", name=op.f("pk_assessments")),
        sa.UniqueConstraint(
            "sponsor_id",
            "team_id",
            "period",
            "rater",
            name=op.f("uq_assessments_sponsor_id_team_id_period_rater"),
        ),
    )
    op.create_table(
        "change_concept_resources",
        sa.Column("sponsor_id", sa.Uuid(), nullable=False),
        sa.Column("concept_id", sa.Uuid(), nullable=False),
        sa.Column("resource_id", sa.Uuid(), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["sponsor_id", "concept_id"],
            ["change_concepts.sponsor_id", "change_concepts.id"],
            name=op.f("fk_change_concept_resources_sponsor_id_concept_id_change_concepts"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["sponsor_id", "resource_id"],
            ["resources.sponsor_id", "resources.id"],
            name=op.f("fk_change_concept_resources_sponsor_id_resource_id_resources"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["sponsor_id"],
            ["sponsors.id"],
            name=op.f("fk_change_concept_resources_sponsor_id_sponsors"),
        ),
        sa.PrimaryKeyConstraint(
            "sponsor_id", "concept_id", "resource_id", name=op.f("pk_change_concept_resources")
        ),
    )
    op.create_table(
        "change_ideas",
        sa.Column("concept_id", sa.Uuid(), nullable=False),
        sa.Column("title", sa.String(length=300), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("sponsor_id", sa.Uuid(), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["sponsor_id", "concept_id"],
            ["change_concepts.sponsor_id", "change_concepts.id"],
            name=op.f("fk_change_ideas_sponsor_id_concept_id_change_concepts"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["sponsor_id"],
            ["sponsors.id"],
            name=op.f("fk_change_ideas_sponsor_id_sponsors"),
            ondelete="RESTRICT",
        ),
        sa.PrimaryKeyConstraint("sponsor_id", "id", name=op.f("pk_change_ideas")),
        sa.UniqueConstraint(
            "sponsor_id",
            "concept_id",
            "title",
            name=op.f("uq_change_ideas_sponsor_id_concept_id_title"),
        ),
    )
    op.create_table(
        "instrument_sections",
        sa.Column("version_id", sa.Uuid(), nullable=False),
        sa.Column("code", sa.String(length=64), nullable=False),
        sa.Column("title", sa.String(length=300), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("scale", sa.JSON(), nullable=True),
        sa.Column("sponsor_id", sa.Uuid(), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.ForeignKeyConstraint(
            ["sponsor_id", "version_id"],
            ["instrument_versions.sponsor_id", "instrument_versions.id"],
            name=op.f("fk_instrument_sections_sponsor_id_version_id_instrument_versions"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["sponsor_id"],
            ["sponsors.id"],
            name=op.f("fk_instrument_sections_sponsor_id_sponsors"),
            ondelete="RESTRICT",
        ),
        sa.PrimaryKeyConstraint("sponsor_id", "id", name=op.f("pk_instrument_sections")),
        sa.UniqueConstraint(
            "sponsor_id",
            "version_id",
            "code",
            name=op.f("uq_instrument_sections_sponsor_id_version_id_code"),
        ),
    )
    op.create_table(
        "survey_responses",
        sa.Column("team_id", sa.Uuid(), nullable=False),
        sa.Column("instrument_id", sa.Uuid(), nullable=False),
        sa.Column("version_id", sa.Uuid(), nullable=False),
        sa.Column(
            "wave",
            sa.Enum(
                "BASELINE",
                "MIDPOINT",
                "FINAL",
                "DATED",
                name="surveywave",
                native_enum=False,
                length=16,
            ),
            nullable=False,
        ),
        sa.Column("wave_key", sa.String(length=16), nullable=False),
        sa.Column("administered_on", sa.Date(), nullable=True),
        sa.Column("answers", sa.JSON(), nullable=False),
        sa.Column("recorded_by", sa.String(length=128), nullable=False),
        sa.Column("sponsor_id", sa.Uuid(), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["sponsor_id", "instrument_id"],
            ["instruments.sponsor_id", "instruments.id"],
            name=op.f("fk_survey_responses_sponsor_id_instrument_id_instruments"),
        ),
        sa.ForeignKeyConstraint(
            ["sponsor_id", "team_id"],
            ["teams.sponsor_id", "teams.id"],
            name=op.f("fk_survey_responses_sponsor_id_team_id_teams"),
        ),
        sa.ForeignKeyConstraint(
            ["sponsor_id", "version_id"],
            ["instrument_versions.sponsor_id", "instrument_versions.id"],
            name=op.f("fk_survey_responses_sponsor_id_version_id_instrument_versions"),
        ),
        sa.ForeignKeyConstraint(
            ["sponsor_id"],
            ["sponsors.id"],
            name=op.f("fk_survey_responses_sponsor_id_sponsors"),
            ondelete="RESTRICT",
        ),
        sa.PrimaryKeyConstraint("sponsor_id", "id", name=op.f("pk_survey_responses")),
        sa.UniqueConstraint(
            "sponsor_id",
            "team_id",
            "instrument_id",
            "wave_key",
            name=op.f("uq_survey_responses_sponsor_id_team_id_instrument_id_wave_key"),
        ),
    )
    op.create_table(
        "change_idea_resources",
        sa.Column("sponsor_id", sa.Uuid(), nullable=False),
        sa.Column("idea_id", sa.Uuid(), nullable=False),
        sa.Column("resource_id", sa.Uuid(), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["sponsor_id", "idea_id"],
            ["change_ideas.sponsor_id", "change_ideas.id"],
            name=op.f("fk_change_idea_resources_sponsor_id_idea_id_change_ideas"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["sponsor_id", "resource_id"],
            ["resources.sponsor_id", "resources.id"],
            name=op.f("fk_change_idea_resources_sponsor_id_resource_id_resources"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["sponsor_id"],
            ["sponsors.id"],
            name=op.f("fk_change_idea_resources_sponsor_id_sponsors"),
        ),
        sa.PrimaryKeyConstraint(
            "sponsor_id", "idea_id", "resource_id", name=op.f("pk_change_idea_resources")
        ),
    )
    op.create_table(
        "instrument_items",
        sa.Column("version_id", sa.Uuid(), nullable=False),
        sa.Column("section_id", sa.Uuid(), nullable=False),
        sa.Column("code", sa.String(length=64), nullable=False),
        sa.Column("label", sa.String(length=300), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("sponsor_id", sa.Uuid(), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.ForeignKeyConstraint(
            ["sponsor_id", "section_id"],
            ["instrument_sections.sponsor_id", "instrument_sections.id"],
            name=op.f("fk_instrument_items_sponsor_id_section_id_instrument_sections"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["sponsor_id", "version_id"],
            ["instrument_versions.sponsor_id", "instrument_versions.id"],
            name=op.f("fk_instrument_items_sponsor_id_version_id_instrument_versions"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["sponsor_id"],
            ["sponsors.id"],
            name=op.f("fk_instrument_items_sponsor_id_sponsors"),
            ondelete="RESTRICT",
        ),
        sa.PrimaryKeyConstraint("sponsor_id", "id", name=op.f("pk_instrument_items")),
        sa.UniqueConstraint(
            "sponsor_id",
            "version_id",
            "code",
            name=op.f("uq_instrument_items_sponsor_id_version_id_code"),
        ),
    )
    op.create_table(
        "pdsa_cycles",
        sa.Column("team_id", sa.Uuid(), nullable=False),
        sa.Column("change_idea_id", sa.Uuid(), nullable=True),
        sa.Column("follows_id", sa.Uuid(), nullable=True),
        sa.Column("title", sa.String(length=300), nullable=False),
        sa.Column("aim", sa.Text(), nullable=False),
        sa.Column("prediction", sa.Text(), nullable=False),
        sa.Column("plan", sa.Text(), nullable=False),
        sa.Column("start_date", sa.Date(), nullable=False),
        sa.Column("end_date", sa.Date(), nullable=True),
        sa.Column("what_happened", sa.Text(), nullable=False),
        sa.Column("study", sa.Text(), nullable=False),
        sa.Column(
            "act",
            sa.Enum(
                "ADOPT", "ADAPT", "ABANDON", "EXPAND", name="pdsaact", native_enum=False, length=16
            ),
            nullable=True,
        ),
        sa.Column("act_notes", sa.Text(), nullable=False),
        sa.Column("created_by", sa.String(length=128), nullable=False),
        sa.Column("updated_by", sa.String(length=128), nullable=False),
        sa.Column("sponsor_id", sa.Uuid(), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["sponsor_id", "change_idea_id"],
            ["change_ideas.sponsor_id", "change_ideas.id"],
            name=op.f("fk_pdsa_cycles_sponsor_id_change_idea_id_change_ideas"),
        ),
        sa.ForeignKeyConstraint(
            ["sponsor_id", "follows_id"],
            ["pdsa_cycles.sponsor_id", "pdsa_cycles.id"],
            name=op.f("fk_pdsa_cycles_sponsor_id_follows_id_pdsa_cycles"),
        ),
        sa.ForeignKeyConstraint(
            ["sponsor_id", "team_id"],
            ["teams.sponsor_id", "teams.id"],
            name=op.f("fk_pdsa_cycles_sponsor_id_team_id_teams"),
        ),
        sa.ForeignKeyConstraint(
            ["sponsor_id"],
            ["sponsors.id"],
            name=op.f("fk_pdsa_cycles_sponsor_id_sponsors"),
            ondelete="RESTRICT",
        ),
        sa.PrimaryKeyConstraint("sponsor_id", "id", name=op.f("pk_pdsa_cycles")),
    )
    with op.batch_alter_table("pdsa_cycles", schema=None) as batch_op:
        batch_op.create_index(
            "ix_pdsa_cycles_sponsor_team_start",
            ["sponsor_id", "team_id", "start_date"],
            unique=False,
        )

    op.create_table(
        "pdsa_cycle_measures",
        sa.Column("sponsor_id", sa.Uuid(), nullable=False),
        sa.Column("cycle_id", sa.Uuid(), nullable=False),
        sa.Column("measure_id", sa.Uuid(), nullable=False),
        sa.ForeignKeyConstraint(
            ["sponsor_id", "cycle_id"],
            ["pdsa_cycles.sponsor_id", "pdsa_cycles.id"],
            name=op.f("fk_pdsa_cycle_measures_sponsor_id_cycle_id_pdsa_cycles"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["sponsor_id", "measure_id"],
            ["measures.sponsor_id", "measures.id"],
            name=op.f("fk_pdsa_cycle_measures_sponsor_id_measure_id_measures"),
        ),
        sa.ForeignKeyConstraint(
            ["sponsor_id"], ["sponsors.id"], name=op.f("fk_pdsa_cycle_measures_sponsor_id_sponsors")
        ),
        sa.PrimaryKeyConstraint(
            "sponsor_id", "cycle_id", "measure_id", name=op.f("pk_pdsa_cycle_measures")
        ),
    )
    with op.batch_alter_table("pdsa_cycle_measures", schema=None) as batch_op:
        batch_op.create_index(
            "ix_pdsa_cycle_measures_sponsor_measure", ["sponsor_id", "measure_id"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("pdsa_cycle_measures", schema=None) as batch_op:
        batch_op.drop_index("ix_pdsa_cycle_measures_sponsor_measure")

    op.drop_table("pdsa_cycle_measures")
    with op.batch_alter_table("pdsa_cycles", schema=None) as batch_op:
        batch_op.drop_index("ix_pdsa_cycles_sponsor_team_start")

    op.drop_table("pdsa_cycles")
    op.drop_table("instrument_items")
    op.drop_table("change_idea_resources")
    op.drop_table("survey_responses")
    op.drop_table("instrument_sections")
    op.drop_table("change_ideas")
    op.drop_table("change_concept_resources")
    op.drop_table("assessments")
    op.drop_table("instrument_versions")
    op.drop_table("change_concepts")
    op.drop_table("instruments")
