"""Improvement content: change packages, PDSA cycles, IHI assessments and survey instruments.

Every table is a tenant table keyed by (sponsor_id, id), and every foreign key between tenant
tables includes sponsor_id (Citus). Care Model domains of a change concept, an instrument's
scales and a survey response's answers are JSON: they are read and written as a whole, never
filtered on in SQL.
"""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Enum,
    Float,
    ForeignKeyConstraint,
    Index,
    Integer,
    PrimaryKeyConstraint,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from db.base import CODE_LENGTH, Base, TenantMixin, TimestampMixin, utcnow
from db.enums import AssessmentRater, PdsaAct, SurveyWave
from db.models.data import PERIOD_LENGTH

TITLE_LENGTH = 300
"""Longest title of a change concept, change idea or PDSA cycle."""
CLIENT_LENGTH = 128
"""Longest client id recorded as the writer of a row."""


# --- change packages ---------------------------------------------------------------------------


class ChangeConcept(TenantMixin, TimestampMixin, Base):
    """A general approach in a collaborative's change package, tagged with Care Model domains."""

    __tablename__ = "change_concepts"
    __table_args__ = (
        ForeignKeyConstraint(
            ["sponsor_id", "collaborative_id"],
            ["collaboratives.sponsor_id", "collaboratives.id"],
            ondelete="CASCADE",
        ),
        UniqueConstraint("sponsor_id", "collaborative_id", "title"),
    )

    collaborative_id: Mapped[uuid.UUID]
    title: Mapped[str] = mapped_column(String(TITLE_LENGTH))
    description: Mapped[str] = mapped_column(Text, default="")
    care_model_domains: Mapped[list[str]] = mapped_column(JSON, default=list)
    position: Mapped[int] = mapped_column(Integer, default=0)


class ChangeIdea(TenantMixin, TimestampMixin, Base):
    """A specific, testable change under a change concept."""

    __tablename__ = "change_ideas"
    __table_args__ = (
        ForeignKeyConstraint(
            ["sponsor_id", "concept_id"],
            ["change_concepts.sponsor_id", "change_concepts.id"],
            ondelete="CASCADE",
        ),
        UniqueConstraint("sponsor_id", "concept_id", "title"),
    )

    concept_id: Mapped[uuid.UUID]
    title: Mapped[str] = mapped_column(String(TITLE_LENGTH))
    description: Mapped[str] = mapped_column(Text, default="")
    position: Mapped[int] = mapped_column(Integer, default=0)


class ChangeConceptResource(Base):
    """A catalog resource linked to a change concept."""

    __tablename__ = "change_concept_resources"
    __table_args__ = (
        PrimaryKeyConstraint("sponsor_id", "concept_id", "resource_id"),
        ForeignKeyConstraint(["sponsor_id"], ["sponsors.id"]),
        ForeignKeyConstraint(
            ["sponsor_id", "concept_id"],
            ["change_concepts.sponsor_id", "change_concepts.id"],
            ondelete="CASCADE",
        ),
        ForeignKeyConstraint(
            ["sponsor_id", "resource_id"],
            ["resources.sponsor_id", "resources.id"],
            ondelete="CASCADE",
        ),
    )

    sponsor_id: Mapped[uuid.UUID]
    concept_id: Mapped[uuid.UUID]
    resource_id: Mapped[uuid.UUID]
    position: Mapped[int] = mapped_column(Integer, default=0)


class ChangeIdeaResource(Base):
    """A catalog resource linked to a change idea."""

    __tablename__ = "change_idea_resources"
    __table_args__ = (
        PrimaryKeyConstraint("sponsor_id", "idea_id", "resource_id"),
        ForeignKeyConstraint(["sponsor_id"], ["sponsors.id"]),
        ForeignKeyConstraint(
            ["sponsor_id", "idea_id"],
            ["change_ideas.sponsor_id", "change_ideas.id"],
            ondelete="CASCADE",
        ),
        ForeignKeyConstraint(
            ["sponsor_id", "resource_id"],
            ["resources.sponsor_id", "resources.id"],
            ondelete="CASCADE",
        ),
    )

    sponsor_id: Mapped[uuid.UUID]
    idea_id: Mapped[uuid.UUID]
    resource_id: Mapped[uuid.UUID]
    position: Mapped[int] = mapped_column(Integer, default=0)


# --- PDSA cycles -------------------------------------------------------------------------------


class PdsaCycle(TenantMixin, TimestampMixin, Base):
    """One Plan-Do-Study-Act cycle of a team, optionally testing an idea of the change package
    and following an earlier cycle of the same team."""

    __tablename__ = "pdsa_cycles"
    __table_args__ = (
        ForeignKeyConstraint(["sponsor_id", "team_id"], ["teams.sponsor_id", "teams.id"]),
        ForeignKeyConstraint(
            ["sponsor_id", "change_idea_id"], ["change_ideas.sponsor_id", "change_ideas.id"]
        ),
        ForeignKeyConstraint(
            ["sponsor_id", "follows_id"], ["pdsa_cycles.sponsor_id", "pdsa_cycles.id"]
        ),
        Index("ix_pdsa_cycles_sponsor_team_start", "sponsor_id", "team_id", "start_date"),
    )

    team_id: Mapped[uuid.UUID]
    change_idea_id: Mapped[uuid.UUID | None]
    follows_id: Mapped[uuid.UUID | None]
    title: Mapped[str] = mapped_column(String(TITLE_LENGTH))
    aim: Mapped[str] = mapped_column(Text, default="")
    prediction: Mapped[str] = mapped_column(Text, default="")
    plan: Mapped[str] = mapped_column(Text, default="")
    start_date: Mapped[date]
    end_date: Mapped[date | None]
    what_happened: Mapped[str] = mapped_column(Text, default="")
    study: Mapped[str] = mapped_column(Text, default="")
    act: Mapped[PdsaAct | None] = mapped_column(
        Enum(PdsaAct, native_enum=False, length=16, validate_strings=True)
    )
    act_notes: Mapped[str] = mapped_column(Text, default="")
    created_by: Mapped[str] = mapped_column(String(CLIENT_LENGTH), default="")
    updated_by: Mapped[str] = mapped_column(String(CLIENT_LENGTH), default="")


class PdsaCycleMeasure(Base):
    """A measure a PDSA cycle is expected to move (its cycles annotate that measure's series)."""

    __tablename__ = "pdsa_cycle_measures"
    __table_args__ = (
        PrimaryKeyConstraint("sponsor_id", "cycle_id", "measure_id"),
        ForeignKeyConstraint(["sponsor_id"], ["sponsors.id"]),
        ForeignKeyConstraint(
            ["sponsor_id", "cycle_id"],
            ["pdsa_cycles.sponsor_id", "pdsa_cycles.id"],
            ondelete="CASCADE",
        ),
        ForeignKeyConstraint(["sponsor_id", "measure_id"], ["measures.sponsor_id", "measures.id"]),
        Index("ix_pdsa_cycle_measures_sponsor_measure", "sponsor_id", "measure_id"),
    )

    sponsor_id: Mapped[uuid.UUID]
    cycle_id: Mapped[uuid.UUID]
    measure_id: Mapped[uuid.UUID]


# --- IHI Assessment Scale ----------------------------------------------------------------------


class Assessment(TenantMixin, TimestampMixin, Base):
    """A team's score on the IHI Assessment Scale for one month, by faculty or by the team.

    One row per (team, period, rater): recording again replaces the score (and is audited).
    """

    __tablename__ = "assessments"
    __table_args__ = (
        ForeignKeyConstraint(["sponsor_id", "team_id"], ["teams.sponsor_id", "teams.id"]),
        UniqueConstraint("sponsor_id", "team_id", "period", "rater"),
    )

    team_id: Mapped[uuid.UUID]
    period: Mapped[str] = mapped_column(String(PERIOD_LENGTH))
    rater: Mapped[AssessmentRater] = mapped_column(
        Enum(AssessmentRater, native_enum=False, length=16, validate_strings=True)
    )
    score: Mapped[float] = mapped_column(Float)
    justification: Mapped[str] = mapped_column(Text, default="")
    recorded_by: Mapped[str] = mapped_column(String(CLIENT_LENGTH), default="")


# --- survey instruments ------------------------------------------------------------------------


class Instrument(TenantMixin, TimestampMixin, Base):
    """A survey instrument (e.g. the ACIC) a sponsor uses; its structure lives in versions."""

    __tablename__ = "instruments"
    __table_args__ = (UniqueConstraint("sponsor_id", "code"),)

    code: Mapped[str] = mapped_column(String(CODE_LENGTH))
    name: Mapped[str] = mapped_column(String(200))
    description: Mapped[str] = mapped_column(Text, default="")


class InstrumentVersion(TenantMixin, Base):
    """One immutable version of an instrument: its scale, missing-item rule and sections.

    ``scale`` is ``{"min", "max", "step", "bands": [{"min", "max", "label"}]}`` and interprets the
    overall score (and every section without a scale of its own). ``min_answered_share`` is the
    share of a section's items that must be answered for the section to be scored.
    """

    __tablename__ = "instrument_versions"
    __table_args__ = (
        ForeignKeyConstraint(
            ["sponsor_id", "instrument_id"],
            ["instruments.sponsor_id", "instruments.id"],
            ondelete="CASCADE",
        ),
        UniqueConstraint("sponsor_id", "instrument_id", "version"),
    )

    instrument_id: Mapped[uuid.UUID]
    version: Mapped[str] = mapped_column(String(32))
    source: Mapped[str] = mapped_column(Text, default="")
    scale: Mapped[dict[str, Any]] = mapped_column(JSON)
    min_answered_share: Mapped[float] = mapped_column(Float, default=0.5)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class InstrumentSection(TenantMixin, Base):
    """A section (subscale) of an instrument version; ``scale`` None uses the version's."""

    __tablename__ = "instrument_sections"
    __table_args__ = (
        ForeignKeyConstraint(
            ["sponsor_id", "version_id"],
            ["instrument_versions.sponsor_id", "instrument_versions.id"],
            ondelete="CASCADE",
        ),
        UniqueConstraint("sponsor_id", "version_id", "code"),
    )

    version_id: Mapped[uuid.UUID]
    code: Mapped[str] = mapped_column(String(CODE_LENGTH))
    title: Mapped[str] = mapped_column(String(TITLE_LENGTH))
    position: Mapped[int] = mapped_column(Integer)
    scale: Mapped[dict[str, Any] | None] = mapped_column(JSON)


class InstrumentItem(TenantMixin, Base):
    """An item of a section: a code unique in the version and a short label (no item text)."""

    __tablename__ = "instrument_items"
    __table_args__ = (
        ForeignKeyConstraint(
            ["sponsor_id", "section_id"],
            ["instrument_sections.sponsor_id", "instrument_sections.id"],
            ondelete="CASCADE",
        ),
        ForeignKeyConstraint(
            ["sponsor_id", "version_id"],
            ["instrument_versions.sponsor_id", "instrument_versions.id"],
            ondelete="CASCADE",
        ),
        UniqueConstraint("sponsor_id", "version_id", "code"),
    )

    version_id: Mapped[uuid.UUID]
    section_id: Mapped[uuid.UUID]
    code: Mapped[str] = mapped_column(String(CODE_LENGTH))
    label: Mapped[str] = mapped_column(String(TITLE_LENGTH))
    position: Mapped[int] = mapped_column(Integer)


class SurveyResponse(TenantMixin, TimestampMixin, Base):
    """A team's answers to an instrument version in one wave.

    ``wave_key`` is the wave's name, or the ISO date for DATED waves, so that one response per
    (team, instrument, wave) is a plain unique key on both backends; answering again replaces
    the answers. ``answers`` maps item codes to numbers; unanswered items are absent. Scores are
    computed on read (``analytics.survey_scoring``), never stored.
    """

    __tablename__ = "survey_responses"
    __table_args__ = (
        ForeignKeyConstraint(["sponsor_id", "team_id"], ["teams.sponsor_id", "teams.id"]),
        ForeignKeyConstraint(
            ["sponsor_id", "instrument_id"], ["instruments.sponsor_id", "instruments.id"]
        ),
        ForeignKeyConstraint(
            ["sponsor_id", "version_id"],
            ["instrument_versions.sponsor_id", "instrument_versions.id"],
        ),
        UniqueConstraint("sponsor_id", "team_id", "instrument_id", "wave_key"),
    )

    team_id: Mapped[uuid.UUID]
    instrument_id: Mapped[uuid.UUID]
    version_id: Mapped[uuid.UUID]
    wave: Mapped[SurveyWave] = mapped_column(
        Enum(SurveyWave, native_enum=False, length=16, validate_strings=True)
    )
    wave_key: Mapped[str] = mapped_column(String(16))
    administered_on: Mapped[date | None]
    answers: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    recorded_by: Mapped[str] = mapped_column(String(CLIENT_LENGTH), default="")
