"""Realistic demo data: two sponsors, three collaboratives, 33 teams and 18 months of measure data.

``seed_demo`` writes everything into the caller's session (the caller commits) and is idempotent:
when a demo sponsor slug is already present it writes nothing and returns ``created=False`` with all
counts at zero (counts are rows written by this call).

Choices that readers of the data must know:

* **Goals** (``collaborative_measures.goal``) are in the measure's *displayed* unit: the
  proportion or rate already multiplied by the version's ``multiplier`` (``80.0`` means 80 %,
  ``9.0`` means 9 per 1,000), the plain value for MEAN measures (minutes) and the plain count for
  COUNT measures. A goal of ``None`` (balancing measures) means "hold at baseline", explained in
  ``goal_description``.
* **PROPORTION and RATE** points carry ``numerator`` and ``denominator`` and ``value = None``; the
  displayed value is numerator / denominator x multiplier.
* **MEAN** points carry the team's monthly mean in ``value``; ``numerator`` and ``denominator`` are
  ``None``.
* **COUNT** points carry the count as ``value = float(count)``; ``numerator`` and ``denominator``
  are ``None``. So a point with a ``value`` is always read as-is, whatever its scoring.
* Periods are ``YYYY-MM``; the 18 months end with the month before ``today``. Points older than
  the last three months are APPROVED, the rest SUBMITTED. Some teams have gaps (an EHR conversion,
  a late start, one team that withdrew). ``asthma-action-plan`` has a version 2 used by the last 6
  months. Every point has stratum ``''``, source, created_by and updated_by ``seed``.
* Collaborative dates are laid out relative to ``today`` and the status follows from them, so the
  mix of ACTIVE and COMPLETED programs holds whenever the demo is seeded.
* Ids are ``uuid5`` of :data:`DEMO_NAMESPACE` and a readable name, identical across runs and
  databases; the numbers come from a fixed-seed ``random.Random`` and do not depend on ``today``.
"""

from __future__ import annotations

import math
import random
import re
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from sqlalchemy import insert, select
from sqlalchemy.ext.asyncio import AsyncSession

from analytics.suppression import DEFAULT_CELL_MIN, DEFAULT_MIN_TEAMS
from db.base import Base
from db.enums import (
    CareModelDomain,
    CollaborativeStatus,
    DataPointStatus,
    ImprovementDirection,
    MeasureType,
    PhaseKind,
    ResourceKind,
    Scoring,
    SharingLevel,
    StaffRole,
    TeamRole,
)
from db.models import (
    Collaborative,
    CollaborativeMeasure,
    DataPoint,
    Measure,
    MeasureVersion,
    Organization,
    Person,
    Phase,
    Resource,
    ResourceCollaborative,
    ResourceTag,
    Sponsor,
    StaffAssignment,
    Team,
    TeamMember,
)
from db.models.catalog import TAG_DOMAIN, TAG_TOPIC
from db.queries.audit import Actor
from db.queries.sharing import NewAgreement, create_agreement

DEMO_NAMESPACE = uuid.UUID("6f1d2c4e-8a4b-5e0f-9c1d-3b7a2e5f8d10")
"""Namespace of every demo id (``uuid5(DEMO_NAMESPACE, readable name)``)."""

DEMO_SPONSOR_SLUGS: tuple[str, str] = ("childrens-health-network", "state-perinatal-qc")
"""The children's-health network (first) and the state perinatal quality collaborative."""

DEMO_EHR_TEAM_CODES: tuple[str, str] = ("asthma-northgate-eastside", "asthma-northgate-westfield")
"""Two first-sponsor teams (one health system's two clinics) the demo EHR client is bound to."""

MONTHS = 18
"""Months of data per team and measure, ending with the month before ``today``."""
SUBMITTED_MONTHS = 3
"""The most recent months stay SUBMITTED; older points are APPROVED."""
RAMP_MONTHS = 4
"""Months a team takes to reach its full improvement after Learning Session 1."""
SEED = 20240917
"""Seed of the demo's random numbers: same data on every run."""
SMALL_SITE_VOLUME = 35
"""Teams with fewer eligible patients a month have no separate data lead."""
ACTOR = "seed"
"""``source``, ``created_by`` and ``updated_by`` of demo data points."""

Row = dict[str, Any]


@dataclass(frozen=True)
class DemoSummary:
    """What ``seed_demo`` wrote (all zero when the demo was already there)."""

    created: bool
    sponsors: int
    collaboratives: int
    teams: int
    measures: int
    data_points: int
    resources: int
    pdsa_cycles: int = 0
    assessments: int = 0
    survey_responses: int = 0


# --------------------------------------------------------------------------------------------------
# Specifications (the data, as small frozen records)
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SponsorSpec:
    slug: str
    name: str
    description: str
    website: str
    email_domain: str
    setting: str  # key of TEAM_TITLES: the kind of care its teams give


@dataclass(frozen=True)
class StaffSpec:
    sponsor: str
    name: str
    title: str


@dataclass(frozen=True)
class Definition:
    """The operational definition of one measure version."""

    name: str
    description: str
    numerator: str
    denominator: str
    exclusions: str
    data_source: str
    sampling: str


@dataclass(frozen=True)
class Trend:
    """How the demo series of a measure moves.

    ``baseline`` and ``improved`` are levels before Learning Session 1 and once a fully successful
    team has made its changes: a proportion (0-1), a rate per ``multiplier``, a mean in the unit or
    a count. ``volume`` scales the team's monthly volume (20-120) into this measure's denominator;
    ``spread`` is the team-to-team variation (absolute for proportions and means, relative for rates
    and counts); ``noise`` the month-to-month standard deviation of a mean.
    """

    baseline: float
    improved: float
    volume: float = 1.0
    spread: float = 0.05
    noise: float = 0.0


@dataclass(frozen=True)
class Revision:
    """A second definition version in force for the last ``months`` months."""

    definition: Definition
    months: int
    shift: float  # how much lower the stricter definition scores (proportion points)
    note: str  # annotation on the first point reported under it


@dataclass(frozen=True)
class MeasureSpec:
    sponsor: str
    code: str
    type: MeasureType
    scoring: Scoring
    direction: ImprovementDirection
    unit: str
    multiplier: float
    definition: Definition
    trend: Trend
    fhir: bool = False
    dhis2: str | None = None
    revision: Revision | None = None


@dataclass(frozen=True)
class MeasureUse:
    """A measure in a collaborative's set; ``goal`` is in the displayed unit (see module doc)."""

    code: str
    required: bool
    goal: float | None
    goal_description: str


@dataclass(frozen=True)
class CollaborativeSpec:
    sponsor: str
    code: str
    name: str
    topic: str
    aim: str  # ``{end}`` is replaced by the month the collaborative ends
    description: str
    team_label: str
    team_prefix: str
    start_index: int  # data month in which prework starts; Learning Session 1 is 2 months later
    action_period_months: int
    sustain_months: int
    staff: tuple[tuple[str, StaffRole], ...]  # (staff name, role)
    measures: tuple[MeasureUse, ...]
    change_notes: tuple[str, ...]  # annotations on the month of Learning Session 1

    @property
    def ls1_index(self) -> int:
        """The data month of Learning Session 1, when teams start testing changes."""
        return self.start_index + 2


@dataclass(frozen=True)
class OrganizationSpec:
    sponsor: str
    code: str
    name: str
    city: str
    state: str
    region: str


@dataclass(frozen=True)
class TeamSpec:
    collaborative: str
    organization: str
    volume: int  # eligible patients a month (20-120), the base of every denominator
    effect: float  # share of the collaborative's improvement this team achieves
    first_index: int = 0  # first month reported
    missing: tuple[int, ...] = ()
    withdrawn_index: int | None = None  # withdrew in this month; no data from it on
    notes: tuple[tuple[int, str], ...] = ()  # (month index, annotation) on the first measure


@dataclass(frozen=True)
class ResourceSpec:
    sponsor: str
    kind: ResourceKind
    title: str
    summary: str
    month: int  # published in this month of the data window (negative: before it)
    domains: tuple[CareModelDomain, ...]
    topics: tuple[str, ...]
    collaboratives: tuple[str, ...]


CHN, PQC = DEMO_SPONSOR_SLUGS

SPONSORS: tuple[SponsorSpec, ...] = (
    SponsorSpec(
        slug=CHN,
        name="Children's Health Quality Network",
        description=(
            "A network of children's hospitals, pediatric practices and community health centers "
            "in fourteen states that runs Breakthrough Series collaboratives on chronic conditions "
            "of childhood and shares what works across its members."
        ),
        website="https://www.chqn.example.org",
        email_domain="chqn.example.org",
        setting="pediatric",
    ),
    SponsorSpec(
        slug=PQC,
        name="Heartland Perinatal Quality Collaborative",
        description=(
            "Missouri's statewide network of birthing hospitals, clinicians, public health "
            "partners and families working to improve maternal and infant outcomes through "
            "data-driven quality improvement."
        ),
        website="https://www.heartlandpqc.example.org",
        email_domain="heartlandpqc.example.org",
        setting="perinatal",
    ),
)

STAFF: tuple[StaffSpec, ...] = (
    StaffSpec(CHN, "Maria Delgado-Reyes", "Pediatric Pulmonologist, Network Medical Director"),
    StaffSpec(CHN, "James Whitfield", "Pediatric Allergist and Immunologist"),
    StaffSpec(CHN, "Angela Brooks", "Certified Asthma Educator, RN"),
    StaffSpec(CHN, "Priya Raman", "Improvement Advisor"),
    StaffSpec(CHN, "Thomas Okafor", "Director, Learning Collaboratives"),
    StaffSpec(CHN, "Rachel Kim", "Data Manager"),
    StaffSpec(CHN, "Susan Marquardt", "Developmental-Behavioral Pediatrician"),
    StaffSpec(CHN, "Linda Castillo", "Family Leader and Parent Partner"),
    StaffSpec(CHN, "Kevin Tran", "General Pediatrician, Medical Home Faculty"),
    StaffSpec(PQC, "Elaine Forsythe", "Maternal-Fetal Medicine Physician"),
    StaffSpec(PQC, "Marcus Bell", "Obstetrician-Gynecologist"),
    StaffSpec(PQC, "Janet Holloway", "Perinatal Clinical Nurse Specialist, RNC-OB"),
    StaffSpec(PQC, "Dana Whitaker", "Improvement Advisor"),
    StaffSpec(PQC, "Carla Mendes", "Executive Director"),
    StaffSpec(PQC, "Brian Yoder", "Data Manager and Epidemiologist"),
)

# Titles of generated team members, by the sponsor's setting.
TEAM_TITLES: dict[str, dict[TeamRole, tuple[str, ...]]] = {
    "pediatric": {
        TeamRole.SENIOR_LEADER: (
            "Chief Medical Officer",
            "Medical Director",
            "Practice Administrator",
            "Vice President, Ambulatory Services",
        ),
        TeamRole.CLINICAL_CHAMPION: (
            "Pediatrician",
            "Pediatric Nurse Practitioner",
            "Family Physician",
        ),
        TeamRole.TECHNICAL_EXPERT: (
            "Certified Asthma Educator",
            "Clinical Informaticist",
            "Social Worker",
            "Clinical Pharmacist",
        ),
        TeamRole.DAY_TO_DAY_LEAD: ("RN Care Manager", "Nurse Manager", "Care Coordinator"),
        TeamRole.DATA_LEAD: (
            "Quality Improvement Specialist",
            "Data Analyst",
            "EHR Reporting Analyst",
        ),
        TeamRole.PATIENT_FAMILY_PARTNER: ("Parent Partner", "Family Advisor"),
        TeamRole.MEMBER: (
            "Medical Assistant",
            "Front Desk Coordinator",
            "Community Health Worker",
            "Registered Nurse",
        ),
    },
    "perinatal": {
        TeamRole.SENIOR_LEADER: (
            "Chief Nursing Officer",
            "Vice President, Women's Services",
            "Chief Medical Officer",
        ),
        TeamRole.CLINICAL_CHAMPION: (
            "Obstetrician-Gynecologist",
            "Maternal-Fetal Medicine Physician",
            "Certified Nurse-Midwife",
            "Family Physician (Obstetrics)",
        ),
        TeamRole.TECHNICAL_EXPERT: (
            "Clinical Pharmacist",
            "Perinatal Clinical Nurse Specialist",
            "Emergency Medicine Physician",
        ),
        TeamRole.DAY_TO_DAY_LEAD: (
            "Labor and Delivery Nurse Manager",
            "Perinatal Nurse Educator",
            "Women's Services Quality Coordinator",
        ),
        TeamRole.DATA_LEAD: (
            "Quality Data Abstractor",
            "Perinatal Data Coordinator",
            "Quality Analyst",
        ),
        TeamRole.PATIENT_FAMILY_PARTNER: ("Patient Partner", "Community Doula Partner"),
        TeamRole.MEMBER: (
            "Labor and Delivery Nurse",
            "Postpartum Nurse",
            "Emergency Department Nurse",
            "Anesthesiologist",
        ),
    },
}

FIRST_NAMES: tuple[str, ...] = (
    "Aaliyah", "Adrian", "Aisha", "Alejandro", "Amara", "Andrea", "Benjamin", "Carmen", "Chloe",
    "Daniel", "Deepa", "Elena", "Emeka", "Erin", "Fatima", "Gabriel", "Grace", "Hannah", "Hector",
    "Imani", "Isaac", "Jasmine", "Jonah", "Julia", "Kareem", "Katherine", "Keisha", "Laura", "Leah",
    "Lucas", "Mai", "Marcus", "Megan", "Miguel", "Nadia", "Nathan", "Olivia", "Omar", "Paul",
    "Rosa", "Ruth", "Samuel", "Sara", "Tanisha", "Tyler", "Vanessa", "Wei", "Xavier", "Yesenia",
    "Zoe",
)  # fmt: skip
LAST_NAMES: tuple[str, ...] = (
    "Abernathy", "Adeyemi", "Alvarez", "Bergstrom", "Bishop", "Chen", "Coleman", "Dawson",
    "Delacroix", "Espinoza", "Fitzgerald", "Gallagher", "Greenberg", "Haddad", "Hernandez", "Holt",
    "Ibarra", "Jackson", "Jensen", "Kaur", "Kowalski", "Lambert", "Lindqvist", "Mahoney",
    "Martinez", "McAllister", "Mendoza", "Nakamura", "Novak", "Nwosu", "O'Connell", "Olsen",
    "Patel", "Pham", "Quintero", "Ramirez", "Reyes", "Robinson", "Sandoval", "Schultz", "Shapiro",
    "Sullivan", "Tanaka", "Thompson", "Underwood", "Vasquez", "Washington", "Yamamoto", "Young",
    "Zielinski",
)  # fmt: skip

# --- Measure definitions --------------------------------------------------------------------------

_ASTHMA_DENOMINATOR = (
    "Patients aged 5-17 years with persistent asthma (active problem-list diagnosis, ICD-10-CM "
    "J45.3x-J45.5x) who had an office visit at the practice during the month."
)
_ASTHMA_EXCLUSIONS = (
    "Cystic fibrosis, bronchopulmonary dysplasia or other chronic lung disease; tracheostomy; "
    "patients receiving palliative care."
)
_ASTHMA_REGISTRY = (
    "Patients aged 5-17 years with persistent asthma on the practice's asthma registry on the last "
    "day of the month."
)
_CYSHCN_VISIT_DENOMINATOR = (
    "Children and youth 0-21 years on the practice's CYSHCN registry (identified with the CSHCN "
    "Screener or a complexity tier) who had a visit during the month."
)
_CYSHCN_EXCLUSIONS = (
    "Children who established care in the past 30 days; children who transferred care to another "
    "practice during the month."
)
_SEVERE_HTN_DENOMINATOR = (
    "Pregnant and postpartum people (up to 6 weeks after birth) with persistent severe-range blood "
    "pressure - systolic >= 160 mmHg or diastolic >= 110 mmHg on two readings 15 minutes apart - "
    "in the emergency department, labor and delivery, antepartum or postpartum units during the "
    "month."
)
_SEVERE_HTN_EXCLUSIONS = (
    "People already receiving an intravenous antihypertensive infusion when the severe reading "
    "occurred; readings in the operating room under anesthesia care."
)
_HDP_DISCHARGES = (
    "People discharged during the month after a delivery hospitalization with a hypertensive "
    "disorder of pregnancy (ICD-10-CM O10-O16: chronic or gestational hypertension, preeclampsia, "
    "eclampsia, HELLP syndrome)."
)
_PDSA = Definition(
    name="PDSA cycles completed",
    description=(
        "Number of Plan-Do-Study-Act cycles the team completed and documented during the month: "
        "a simple signal of how actively the team is testing changes."
    ),
    numerator=(
        "PDSA cycles completed during the month with a documented prediction, a study of the "
        "results against it and an act decision (adopt, adapt or abandon)."
    ),
    denominator="Not applicable: a count.",
    exclusions="Cycles planned but not run; the same cycle reported again in a later month.",
    data_source="Team PDSA worksheets uploaded to the collaborative workspace.",
    sampling="All cycles.",
)
_PDSA_TREND = Trend(baseline=0.6, improved=4.5, spread=0.3)

MEASURES: tuple[MeasureSpec, ...] = (
    MeasureSpec(
        sponsor=CHN,
        code="asthma-control",
        type=MeasureType.OUTCOME,
        scoring=Scoring.PROPORTION,
        direction=ImprovementDirection.INCREASE,
        unit="%",
        multiplier=100.0,
        definition=Definition(
            name="Asthma well controlled",
            description=(
                "Percentage of children and adolescents with persistent asthma seen during the "
                "month whose asthma was well controlled by a validated control test."
            ),
            numerator=(
                "Patients in the denominator whose most recent Childhood Asthma Control Test "
                "(ages 5-11) or Asthma Control Test (ages 12-17) score in the month was 20 or "
                "higher."
            ),
            denominator=_ASTHMA_DENOMINATOR,
            exclusions=_ASTHMA_EXCLUSIONS,
            data_source="EHR registry report, validated by chart review of 5 records a quarter.",
            sampling=(
                "All eligible patients; practices with more than 40 eligible visits may review a "
                "random sample of 20 charts."
            ),
        ),
        trend=Trend(baseline=0.49, improved=0.76, spread=0.06),
        fhir=True,
        dhis2="CHN_ASTHMA_CTRL",
    ),
    MeasureSpec(
        sponsor=CHN,
        code="asthma-control-assessment",
        type=MeasureType.PROCESS,
        scoring=Scoring.PROPORTION,
        direction=ImprovementDirection.INCREASE,
        unit="%",
        multiplier=100.0,
        definition=Definition(
            name="Asthma control assessed",
            description=(
                "Percentage of patients with persistent asthma seen during the month whose asthma "
                "control was assessed with a validated tool at the visit."
            ),
            numerator=(
                "Patients in the denominator with a C-ACT or ACT score documented at a visit "
                "during the month."
            ),
            denominator=_ASTHMA_DENOMINATOR,
            exclusions=_ASTHMA_EXCLUSIONS,
            data_source="EHR registry report (structured C-ACT/ACT flowsheet rows).",
            sampling="All eligible patients.",
        ),
        trend=Trend(baseline=0.40, improved=0.90, spread=0.08),
    ),
    MeasureSpec(
        sponsor=CHN,
        code="asthma-action-plan",
        type=MeasureType.PROCESS,
        scoring=Scoring.PROPORTION,
        direction=ImprovementDirection.INCREASE,
        unit="%",
        multiplier=100.0,
        definition=Definition(
            name="Written asthma action plan",
            description=(
                "Percentage of patients with persistent asthma seen during the month who have a "
                "written asthma action plan reviewed or updated in the past 12 months."
            ),
            numerator=(
                "Patients in the denominator with a written asthma action plan documented as given "
                "to the family in the 12 months ending on the last day of the month."
            ),
            denominator=_ASTHMA_DENOMINATOR,
            exclusions=_ASTHMA_EXCLUSIONS,
            data_source="Chart review (asthma action plan template in the EHR).",
            sampling="Up to 20 randomly selected eligible patients a month; all if fewer.",
        ),
        trend=Trend(baseline=0.35, improved=0.82, spread=0.07),
        fhir=True,
        revision=Revision(
            definition=Definition(
                name="Written asthma action plan shared with school",
                description=(
                    "Percentage of patients with persistent asthma seen during the month who have "
                    "a written asthma action plan updated in the past 12 months and, for "
                    "school-age children, shared with the school. Version 2: faculty added the "
                    "school step after teams reported that plans rarely reached school nurses."
                ),
                numerator=(
                    "Patients in the denominator with a written asthma action plan given to the "
                    "family in the 12 months ending on the last day of the month and, when the "
                    "child attends school or child care, sent to the school nurse or child-care "
                    "provider with the family's consent."
                ),
                denominator=_ASTHMA_DENOMINATOR,
                exclusions=(
                    _ASTHMA_EXCLUSIONS + " For the school step only: families who declined "
                    "consent to share the plan (documented)."
                ),
                data_source="Chart review (action plan template and release-of-information form).",
                sampling="Up to 20 randomly selected eligible patients a month; all if fewer.",
            ),
            months=6,
            shift=0.08,
            note="Definition v2: the plan must also be shared with the school",
        ),
    ),
    MeasureSpec(
        sponsor=CHN,
        code="asthma-controller-medication",
        type=MeasureType.PROCESS,
        scoring=Scoring.PROPORTION,
        direction=ImprovementDirection.INCREASE,
        unit="%",
        multiplier=100.0,
        definition=Definition(
            name="Controller medication prescribed",
            description=(
                "Percentage of patients with persistent asthma seen during the month who have an "
                "active prescription for a guideline-recommended controller medication."
            ),
            numerator=(
                "Patients in the denominator with an active prescription for an inhaled "
                "corticosteroid, alone or combined with a long-acting beta agonist, or another "
                "controller recommended by the NAEPP guidelines."
            ),
            denominator=_ASTHMA_DENOMINATOR,
            exclusions=(
                _ASTHMA_EXCLUSIONS + " Documented intolerance of all controller options or a "
                "documented family decision to decline controller therapy."
            ),
            data_source="EHR medication list via registry report.",
            sampling="All eligible patients.",
        ),
        trend=Trend(baseline=0.62, improved=0.87, spread=0.06),
        dhis2="CHN_ASTHMA_ICS",
    ),
    MeasureSpec(
        sponsor=CHN,
        code="asthma-ed-visits",
        type=MeasureType.OUTCOME,
        scoring=Scoring.RATE,
        direction=ImprovementDirection.DECREASE,
        unit="per 1,000 patients",
        multiplier=1000.0,
        definition=Definition(
            name="Asthma emergency visits and hospitalizations",
            description=(
                "Asthma-related emergency department visits and hospital admissions per 1,000 "
                "patients on the practice's persistent-asthma registry, per month."
            ),
            numerator=(
                "Emergency department visits and inpatient or observation admissions with a "
                "primary diagnosis of asthma (ICD-10-CM J45.x) during the month among patients on "
                "the registry; each event counts."
            ),
            denominator=_ASTHMA_REGISTRY,
            exclusions=(
                "A transfer between emergency departments or from the emergency department to an "
                "admission counts once. " + _ASTHMA_EXCLUSIONS
            ),
            data_source="Hospital ADT notifications and monthly payer claims feeds.",
            sampling="All events; no sampling.",
        ),
        trend=Trend(baseline=14.0, improved=8.5, volume=6.0, spread=0.25),
        fhir=True,
        dhis2="CHN_ASTHMA_ED",
    ),
    MeasureSpec(
        sponsor=CHN,
        code="visit-cycle-time",
        type=MeasureType.BALANCING,
        scoring=Scoring.MEAN,
        direction=ImprovementDirection.DECREASE,
        unit="minutes",
        multiplier=1.0,
        definition=Definition(
            name="Visit cycle time",
            description=(
                "Mean minutes from check-in to check-out for planned chronic-condition visits, "
                "watched so that new assessment and care-planning steps do not lengthen visits."
            ),
            numerator="Sum of the minutes from check-in to check-out of the sampled visits.",
            denominator="Number of sampled visits (at least 10 a month).",
            exclusions=(
                "Visits converted to a transfer or a direct admission; visits with a missing "
                "check-in or check-out time stamp."
            ),
            data_source="EHR visit time stamps (arrival and check-out events).",
            sampling="10 consecutive planned visits starting on the second Tuesday of the month.",
        ),
        trend=Trend(baseline=52.0, improved=55.0, spread=6.0, noise=3.0),
    ),
    MeasureSpec(
        sponsor=CHN,
        code="pdsa-cycles",
        type=MeasureType.PROCESS,
        scoring=Scoring.COUNT,
        direction=ImprovementDirection.INCREASE,
        unit="cycles",
        multiplier=1.0,
        definition=_PDSA,
        trend=_PDSA_TREND,
    ),
    MeasureSpec(
        sponsor=CHN,
        code="shared-care-plan",
        type=MeasureType.PROCESS,
        scoring=Scoring.PROPORTION,
        direction=ImprovementDirection.INCREASE,
        unit="%",
        multiplier=100.0,
        definition=Definition(
            name="Shared plan of care",
            description=(
                "Percentage of children and youth with special health care needs (CYSHCN) seen "
                "during the month who have a shared plan of care, developed with the family, "
                "reviewed or updated in the past 12 months."
            ),
            numerator=(
                "Children in the denominator with a shared plan of care - family goals, medical "
                "summary, action steps and who is responsible for each - created or updated with "
                "the family in the 12 months ending on the last day of the month."
            ),
            denominator=_CYSHCN_VISIT_DENOMINATOR,
            exclusions=_CYSHCN_EXCLUSIONS,
            data_source="Chart review (shared plan of care template in the EHR).",
            sampling="Up to 20 randomly selected eligible children a month; all if fewer.",
        ),
        trend=Trend(baseline=0.25, improved=0.70, spread=0.08),
        fhir=True,
    ),
    MeasureSpec(
        sponsor=CHN,
        code="care-coordinator-identified",
        type=MeasureType.PROCESS,
        scoring=Scoring.PROPORTION,
        direction=ImprovementDirection.INCREASE,
        unit="%",
        multiplier=100.0,
        definition=Definition(
            name="Care coordinator identified",
            description=(
                "Percentage of CYSHCN seen during the month with a named care coordinator "
                "documented in the chart and known to the family."
            ),
            numerator=(
                "Children in the denominator with a named care coordinator documented in the "
                "chart whose family confirmed at the visit that they know how to reach them."
            ),
            denominator=_CYSHCN_VISIT_DENOMINATOR,
            exclusions=_CYSHCN_EXCLUSIONS,
            data_source="Chart review and the visit's family check-in form.",
            sampling="Up to 20 randomly selected eligible children a month; all if fewer.",
        ),
        trend=Trend(baseline=0.40, improved=0.84, spread=0.07),
    ),
    MeasureSpec(
        sponsor=CHN,
        code="family-partnership",
        type=MeasureType.OUTCOME,
        scoring=Scoring.PROPORTION,
        direction=ImprovementDirection.INCREASE,
        unit="%",
        multiplier=100.0,
        definition=Definition(
            name="Families who feel like partners in care",
            description=(
                "Percentage of surveyed families of CYSHCN who answer 'always' to 'Do you feel "
                "like a partner in your child's care?'"
            ),
            numerator="Completed surveys answering 'always' to the partnership item.",
            denominator=(
                "Family experience of partnership surveys completed during the month (paper, "
                "tablet or text-message link), in English or Spanish."
            ),
            exclusions=(
                "Surveys with the partnership item left blank; a second survey from the same "
                "family in the same month."
            ),
            data_source="Family experience of partnership survey (10 items).",
            sampling="Offer the survey to the families at 20 consecutive CYSHCN visits a month.",
        ),
        trend=Trend(baseline=0.55, improved=0.78, volume=0.45, spread=0.05),
    ),
    MeasureSpec(
        sponsor=CHN,
        code="transition-readiness",
        type=MeasureType.PROCESS,
        scoring=Scoring.PROPORTION,
        direction=ImprovementDirection.INCREASE,
        unit="%",
        multiplier=100.0,
        definition=Definition(
            name="Transition readiness assessed",
            description=(
                "Percentage of youth 14-21 years with special health care needs seen during the "
                "month who completed a transition readiness assessment in the past 12 months."
            ),
            numerator=(
                "Youth in the denominator with a completed transition readiness assessment (for "
                "example Got Transition's Transition Readiness Assessment) in the 12 months "
                "ending on the last day of the month."
            ),
            denominator="Youth 14-21 years on the CYSHCN registry with a visit during the month.",
            exclusions=(
                _CYSHCN_EXCLUSIONS + " Youth whose intellectual disability makes "
                "self-assessment inappropriate, when a caregiver version is not used."
            ),
            data_source="Chart review (transition flowsheet).",
            sampling="All eligible youth.",
        ),
        trend=Trend(baseline=0.15, improved=0.52, volume=0.4, spread=0.06),
    ),
    MeasureSpec(
        sponsor=CHN,
        code="cyshcn-ed-visits",
        type=MeasureType.OUTCOME,
        scoring=Scoring.RATE,
        direction=ImprovementDirection.DECREASE,
        unit="per 1,000 children",
        multiplier=1000.0,
        definition=Definition(
            name="Emergency department visits among CYSHCN",
            description=(
                "Emergency department visits per 1,000 children and youth on the practice's "
                "CYSHCN registry, per month."
            ),
            numerator=(
                "Emergency department visits, treat-and-release or admitted, during the month by "
                "children on the CYSHCN registry; each visit counts."
            ),
            denominator=(
                "Children and youth 0-21 years on the practice's CYSHCN registry on the last day "
                "of the month."
            ),
            exclusions=(
                "Visits made on the medical home's instruction for a planned procedure or direct "
                "admission."
            ),
            data_source="Hospital ADT notifications and monthly payer claims feeds.",
            sampling="All events; no sampling.",
        ),
        trend=Trend(baseline=38.0, improved=29.0, volume=5.0, spread=0.2),
        dhis2="CHN_CYSHCN_ED",
    ),
    MeasureSpec(
        sponsor=PQC,
        code="severe-htn-timely-treatment",
        type=MeasureType.PROCESS,
        scoring=Scoring.PROPORTION,
        direction=ImprovementDirection.INCREASE,
        unit="%",
        multiplier=100.0,
        definition=Definition(
            name="Timely treatment of severe hypertension",
            description=(
                "Percentage of pregnant and postpartum people with persistent severe-range blood "
                "pressure who received first-line antihypertensive medication within 60 minutes."
            ),
            numerator=(
                "People in the denominator who received intravenous labetalol, intravenous "
                "hydralazine or immediate-release oral nifedipine within 60 minutes of the first "
                "severe-range reading."
            ),
            denominator=_SEVERE_HTN_DENOMINATOR,
            exclusions=_SEVERE_HTN_EXCLUSIONS,
            data_source="Chart review of cases found by the EHR severe blood-pressure report.",
            sampling="All cases; hospitals with more than 30 cases a month review the first 30.",
        ),
        trend=Trend(baseline=0.45, improved=0.84, volume=0.5, spread=0.07),
        fhir=True,
        dhis2="PQC_HTN_TIMELY",
    ),
    MeasureSpec(
        sponsor=PQC,
        code="time-to-treatment",
        type=MeasureType.PROCESS,
        scoring=Scoring.MEAN,
        direction=ImprovementDirection.DECREASE,
        unit="minutes",
        multiplier=1.0,
        definition=Definition(
            name="Minutes to first antihypertensive dose",
            description=(
                "Mean minutes from the first severe-range blood pressure to the first dose of a "
                "first-line antihypertensive, among treated cases."
            ),
            numerator="Sum over treated cases of the minutes from the first severe reading to the "
            "first dose.",
            denominator="Cases of persistent severe hypertension treated during the month.",
            exclusions=_SEVERE_HTN_EXCLUSIONS,
            data_source="Chart review (vital signs and medication administration record).",
            sampling="All treated cases.",
        ),
        trend=Trend(baseline=78.0, improved=42.0, spread=8.0, noise=6.0),
    ),
    MeasureSpec(
        sponsor=PQC,
        code="postpartum-bp-follow-up",
        type=MeasureType.PROCESS,
        scoring=Scoring.PROPORTION,
        direction=ImprovementDirection.INCREASE,
        unit="%",
        multiplier=100.0,
        definition=Definition(
            name="Postpartum blood pressure check",
            description=(
                "Percentage of people with a hypertensive disorder of pregnancy whose blood "
                "pressure was checked within 72 hours of discharge (severe hypertension) or "
                "within 10 days (other hypertensive disorders)."
            ),
            numerator=(
                "People in the denominator with a blood pressure recorded at a clinic visit, a "
                "home-monitoring upload or a telehealth visit within 72 hours of discharge if they "
                "had severe hypertension, otherwise within 10 days."
            ),
            denominator=_HDP_DISCHARGES,
            exclusions=(
                "Discharges against medical advice; maternal deaths; transfers to another "
                "acute-care hospital."
            ),
            data_source="EHR discharge report linked to outpatient and remote-monitoring records.",
            sampling="All eligible discharges.",
        ),
        trend=Trend(baseline=0.30, improved=0.68, volume=0.8, spread=0.08),
    ),
    MeasureSpec(
        sponsor=PQC,
        code="htn-discharge-education",
        type=MeasureType.PROCESS,
        scoring=Scoring.PROPORTION,
        direction=ImprovementDirection.INCREASE,
        unit="%",
        multiplier=100.0,
        definition=Definition(
            name="Postpartum preeclampsia warning-sign education",
            description=(
                "Percentage of people with a hypertensive disorder of pregnancy who received "
                "teach-back education on postpartum warning signs before discharge."
            ),
            numerator=(
                "People in the denominator with documented teach-back education on postpartum "
                "preeclampsia warning signs (for example the POST-BIRTH warning signs) and when "
                "to call or return, before discharge."
            ),
            denominator=_HDP_DISCHARGES,
            exclusions="Transfers to another acute-care hospital; maternal deaths.",
            data_source="EHR discharge education flowsheet.",
            sampling="All eligible discharges.",
        ),
        trend=Trend(baseline=0.52, improved=0.92, volume=0.8, spread=0.06),
    ),
    MeasureSpec(
        sponsor=PQC,
        code="severe-htn-debrief",
        type=MeasureType.PROCESS,
        scoring=Scoring.PROPORTION,
        direction=ImprovementDirection.INCREASE,
        unit="%",
        multiplier=100.0,
        definition=Definition(
            name="Debrief after severe hypertension events",
            description=(
                "Percentage of cases of persistent severe hypertension followed by a documented "
                "team debrief within 24 hours."
            ),
            numerator="Cases in the denominator with a team debrief documented within 24 hours.",
            denominator="Cases of persistent severe hypertension treated during the month.",
            exclusions=_SEVERE_HTN_EXCLUSIONS,
            data_source="Unit debrief log.",
            sampling="All cases.",
        ),
        trend=Trend(baseline=0.18, improved=0.62, volume=0.5, spread=0.08),
    ),
    MeasureSpec(
        sponsor=PQC,
        code="smm-rate",
        type=MeasureType.OUTCOME,
        scoring=Scoring.RATE,
        direction=ImprovementDirection.DECREASE,
        unit="per 10,000 deliveries",
        multiplier=10000.0,
        definition=Definition(
            name="Severe maternal morbidity",
            description=(
                "Severe maternal morbidity, excluding cases identified only by blood transfusion, "
                "per 10,000 delivery hospitalizations."
            ),
            numerator=(
                "Delivery hospitalizations discharged during the month with at least one of the "
                "CDC's severe maternal morbidity indicators, excluding those identified only by "
                "blood transfusion."
            ),
            denominator=(
                "Delivery hospitalizations (births at 20 weeks' gestation or later) discharged "
                "during the month."
            ),
            exclusions="Ectopic and molar pregnancies; pregnancies ending before 20 weeks.",
            data_source="Hospital discharge data (ICD-10-CM/PCS codes), validated by chart review.",
            sampling="All delivery hospitalizations.",
        ),
        trend=Trend(baseline=84.0, improved=65.0, volume=2.5, spread=0.2),
        fhir=True,
        dhis2="PQC_SMM",
    ),
    MeasureSpec(
        sponsor=PQC,
        code="treatment-hypotension",
        type=MeasureType.BALANCING,
        scoring=Scoring.PROPORTION,
        direction=ImprovementDirection.DECREASE,
        unit="%",
        multiplier=100.0,
        definition=Definition(
            name="Maternal hypotension after treatment",
            description=(
                "Percentage of people treated for severe hypertension whose blood pressure fell "
                "below 90/60 mmHg within 2 hours of the first dose: guards against overtreatment "
                "as treatment gets faster."
            ),
            numerator="People in the denominator with a reading below 90/60 mmHg within 2 hours.",
            denominator="Cases of persistent severe hypertension treated during the month.",
            exclusions=(
                _SEVERE_HTN_EXCLUSIONS + " Hypotension explained by hemorrhage or neuraxial "
                "anesthesia."
            ),
            data_source="Chart review (vital signs after the first dose).",
            sampling="All treated cases.",
        ),
        trend=Trend(baseline=0.04, improved=0.05, volume=0.5, spread=0.01),
    ),
    MeasureSpec(
        sponsor=PQC,
        code="pdsa-cycles",
        type=MeasureType.PROCESS,
        scoring=Scoring.COUNT,
        direction=ImprovementDirection.INCREASE,
        unit="cycles",
        multiplier=1.0,
        definition=_PDSA,
        trend=_PDSA_TREND,
    ),
)

_PDSA_USE = MeasureUse("pdsa-cycles", False, 4.0, "At least 4 completed PDSA cycles a month.")

COLLABORATIVES: tuple[CollaborativeSpec, ...] = (
    CollaborativeSpec(
        sponsor=CHN,
        code="pediatric-asthma",
        name="Pediatric Asthma Control Collaborative",
        topic="Pediatric asthma",
        aim=(
            "By {end}, participating practices will increase the percentage of children and "
            "adolescents 5-17 years old with persistent asthma whose asthma is well controlled "
            "(C-ACT/ACT score of 20 or higher) from 45% to 70%, and reduce asthma emergency "
            "department visits and hospitalizations per 1,000 patients with persistent asthma by "
            "30%."
        ),
        description=(
            "A Breakthrough Series collaborative of pediatric and family practices and community "
            "health centers implementing the NAEPP asthma guidelines: control assessment at every "
            "visit, written asthma action plans shared with schools, controller medication for "
            "persistent asthma, and follow-up within days of an emergency visit."
        ),
        team_label="Asthma Team",
        team_prefix="asthma",
        start_index=4,
        action_period_months=5,
        sustain_months=0,
        staff=(
            ("Maria Delgado-Reyes", StaffRole.CHAIR),
            ("James Whitfield", StaffRole.FACULTY),
            ("Angela Brooks", StaffRole.FACULTY),
            ("Priya Raman", StaffRole.IMPROVEMENT_ADVISOR),
            ("Thomas Okafor", StaffRole.DIRECTOR),
            ("Rachel Kim", StaffRole.DATA_MANAGER),
        ),
        measures=(
            MeasureUse(
                "asthma-control", True, 70.0, "70% of patients with well-controlled asthma."
            ),
            MeasureUse("asthma-ed-visits", True, 9.0, "At most 9 visits per 1,000 a month."),
            MeasureUse("asthma-control-assessment", True, 90.0, "90% assessed at every visit."),
            MeasureUse("asthma-action-plan", True, 80.0, "80% with a current action plan."),
            MeasureUse("asthma-controller-medication", False, 85.0, "85% on a controller."),
            MeasureUse(
                "visit-cycle-time",
                True,
                None,
                "Balancing: hold visit cycle time at or below the baseline of about 52 minutes.",
            ),
            _PDSA_USE,
        ),
        change_notes=(
            "Started standardized asthma action plans at every persistent-asthma visit",
            "Began C-ACT/ACT screening on a tablet at check-in",
            "Pre-visit planning huddle now flags patients due for a controller review",
            "Care manager calls families within 2 days of an asthma ED visit",
        ),
    ),
    CollaborativeSpec(
        sponsor=CHN,
        code="cyshcn-medical-home",
        name="Medical Home for Children and Youth with Special Health Care Needs",
        topic="Medical home for CYSHCN",
        aim=(
            "By {end}, participating practices will ensure that 70% of children and youth with "
            "special health care needs seen each month have a shared plan of care updated in the "
            "past 12 months (baseline 25%), and that 75% of surveyed families report they always "
            "feel like partners in their child's care (baseline 55%)."
        ),
        description=(
            "A collaborative of primary care practices building family-centered medical homes "
            "for children with medical complexity and other special health care needs: a "
            "CYSHCN registry, named care coordinators, shared plans of care, family partners on "
            "the team and planned transition to adult care."
        ),
        team_label="Medical Home Team",
        team_prefix="medhome",
        start_index=3,
        action_period_months=3,
        sustain_months=3,
        staff=(
            ("Susan Marquardt", StaffRole.CHAIR),
            ("Linda Castillo", StaffRole.FACULTY),
            ("Kevin Tran", StaffRole.FACULTY),
            ("Priya Raman", StaffRole.IMPROVEMENT_ADVISOR),
            ("Thomas Okafor", StaffRole.DIRECTOR),
            ("Rachel Kim", StaffRole.DATA_MANAGER),
        ),
        measures=(
            MeasureUse("shared-care-plan", True, 70.0, "70% with a current shared plan of care."),
            MeasureUse("family-partnership", True, 75.0, "75% of families always feel partners."),
            MeasureUse("care-coordinator-identified", True, 80.0, "80% with a named coordinator."),
            MeasureUse("cyshcn-ed-visits", True, 30.0, "At most 30 visits per 1,000 a month."),
            MeasureUse("transition-readiness", False, 50.0, "50% of youth 14-21 assessed."),
            MeasureUse(
                "visit-cycle-time",
                False,
                None,
                "Balancing: hold visit cycle time at or below the baseline of about 52 minutes.",
            ),
            _PDSA_USE,
        ),
        change_notes=(
            "Built a CYSHCN registry with complexity tiers",
            "Parent partner joined the weekly team huddle",
            "Care coordinator introduced to every family on the registry",
            "Piloted the shared plan of care template with 5 families",
        ),
    ),
    CollaborativeSpec(
        sponsor=PQC,
        code="severe-hypertension",
        name="Severe Hypertension in Pregnancy Collaborative",
        topic="Hypertensive disorders of pregnancy and severe maternal morbidity",
        aim=(
            "By {end}, participating birthing hospitals will treat 80% of pregnant and postpartum "
            "people with persistent severe-range blood pressure within 60 minutes (baseline 45%) "
            "and reduce severe maternal morbidity per 10,000 delivery hospitalizations by 20%."
        ),
        description=(
            "A statewide collaborative of birthing hospitals implementing the severe hypertension "
            "in pregnancy patient safety bundle: standard treatment algorithms and medication "
            "kits, simulation drills, debriefs, patient education on warning signs and blood "
            "pressure checks within days of discharge."
        ),
        team_label="Severe Hypertension Team",
        team_prefix="htn",
        start_index=5,
        action_period_months=4,
        sustain_months=0,
        staff=(
            ("Elaine Forsythe", StaffRole.CHAIR),
            ("Marcus Bell", StaffRole.FACULTY),
            ("Janet Holloway", StaffRole.FACULTY),
            ("Dana Whitaker", StaffRole.IMPROVEMENT_ADVISOR),
            ("Carla Mendes", StaffRole.DIRECTOR),
            ("Brian Yoder", StaffRole.DATA_MANAGER),
        ),
        measures=(
            MeasureUse("severe-htn-timely-treatment", True, 80.0, "80% treated within 60 minutes."),
            MeasureUse("smm-rate", True, 65.0, "20% below the collaborative's baseline."),
            MeasureUse("time-to-treatment", True, 60.0, "Mean under 60 minutes."),
            MeasureUse("postpartum-bp-follow-up", True, 70.0, "70% checked after discharge."),
            MeasureUse("htn-discharge-education", False, 90.0, "90% with teach-back education."),
            MeasureUse("severe-htn-debrief", False, 60.0, "60% of cases debriefed."),
            MeasureUse(
                "treatment-hypotension",
                True,
                None,
                "Balancing: hold below 5% while treatment gets faster.",
            ),
            _PDSA_USE,
        ),
        change_notes=(
            "Hypertension emergency kits stocked on L&D and in the ED",
            "Order set with the treatment algorithm went live",
            "First in-situ severe hypertension simulation drill",
            "Nurses may now give the first dose under a standing order",
        ),
    ),
)

ORGANIZATIONS: tuple[OrganizationSpec, ...] = (
    OrganizationSpec(CHN, "northgate-eastside", "Northgate Health Eastside Pediatrics",
                     "Columbus", "OH", "Midwest"),
    OrganizationSpec(CHN, "northgate-westfield", "Northgate Health Westfield Pediatrics",
                     "Columbus", "OH", "Midwest"),
    OrganizationSpec(CHN, "riverbend-pediatrics", "Riverbend Pediatrics", "Dayton", "OH",
                     "Midwest"),
    OrganizationSpec(CHN, "lakeshore-childrens", "Lakeshore Children's Clinic", "Milwaukee", "WI",
                     "Midwest"),
    OrganizationSpec(CHN, "cedar-valley-chc", "Cedar Valley Community Health Center",
                     "Cedar Rapids", "IA", "Midwest"),
    OrganizationSpec(CHN, "sandhills-rural-health", "Sandhills Rural Health Clinic", "Kearney",
                     "NE", "Midwest"),
    OrganizationSpec(CHN, "bluegrass-pediatrics", "Bluegrass Pediatric Associates", "Lexington",
                     "KY", "South"),
    OrganizationSpec(CHN, "piedmont-childrens", "Piedmont Children's Primary Care", "Greensboro",
                     "NC", "South"),
    OrganizationSpec(CHN, "harbor-point-fhc", "Harbor Point Family Health Center", "Baltimore",
                     "MD", "Northeast"),
    OrganizationSpec(CHN, "three-rivers-pediatrics", "Three Rivers Pediatric Care", "Pittsburgh",
                     "PA", "Northeast"),
    OrganizationSpec(CHN, "mesa-verde-pediatrics", "Mesa Verde Pediatrics", "Albuquerque", "NM",
                     "West"),
    OrganizationSpec(CHN, "summit-childrens-pulmonary", "Summit Children's Hospital Pulmonary "
                     "Clinic", "Denver", "CO", "West"),
    OrganizationSpec(CHN, "great-lakes-complex-care", "Great Lakes Children's Complex Care "
                     "Clinic", "Grand Rapids", "MI", "Midwest"),
    OrganizationSpec(CHN, "magnolia-pediatrics", "Magnolia Pediatrics", "Jackson", "MS", "South"),
    OrganizationSpec(CHN, "willamette-family-medicine", "Willamette Family Medicine", "Salem",
                     "OR", "West"),
    OrganizationSpec(CHN, "capitol-hill-pediatrics", "Capitol Hill Pediatric Group",
                     "Washington", "DC", "Northeast"),
    OrganizationSpec(CHN, "prairie-wind-pediatrics", "Prairie Wind Pediatrics", "Wichita", "KS",
                     "Midwest"),
    OrganizationSpec(CHN, "chesapeake-community-peds", "Chesapeake Community Pediatrics",
                     "Norfolk", "VA", "South"),
    OrganizationSpec(CHN, "desert-bloom-childrens", "Desert Bloom Children's Clinic", "Tucson",
                     "AZ", "West"),
    OrganizationSpec(PQC, "gateway-womens-infants", "Gateway Women's and Infants Hospital",
                     "St. Louis", "MO", "St. Louis"),
    OrganizationSpec(PQC, "confluence-womens", "Confluence Women's Hospital", "St. Charles", "MO",
                     "St. Louis"),
    OrganizationSpec(PQC, "riverfront-medical", "Riverfront Medical Center", "Kansas City", "MO",
                     "Kansas City"),
    OrganizationSpec(PQC, "northland-hospital", "Northland Hospital", "Liberty", "MO",
                     "Kansas City"),
    OrganizationSpec(PQC, "ozark-regional", "Ozark Regional Medical Center", "Springfield", "MO",
                     "Southwest"),
    OrganizationSpec(PQC, "four-states-regional", "Four States Regional Hospital", "Joplin", "MO",
                     "Southwest"),
    OrganizationSpec(PQC, "mid-missouri-university", "Mid-Missouri University Hospital",
                     "Columbia", "MO", "Central"),
    OrganizationSpec(PQC, "capital-region-medical", "Capital Region Medical Center",
                     "Jefferson City", "MO", "Central"),
    OrganizationSpec(PQC, "mississippi-bluffs", "Mississippi Bluffs Medical Center",
                     "Cape Girardeau", "MO", "Southeast"),
    OrganizationSpec(PQC, "bootheel-community", "Bootheel Community Hospital", "Kennett", "MO",
                     "Southeast"),
    OrganizationSpec(PQC, "chariton-valley", "Chariton Valley Hospital", "Kirksville", "MO",
                     "Northeast"),
)  # fmt: skip

_EHR_GAP = (
    "Reporting resumed after the EHR conversion; the two previous months could not be abstracted"
)

TEAMS: tuple[TeamSpec, ...] = (
    TeamSpec("pediatric-asthma", "northgate-eastside", 96, 1.0),
    TeamSpec("pediatric-asthma", "northgate-westfield", 74, 0.85),
    TeamSpec("pediatric-asthma", "riverbend-pediatrics", 58, 0.9),
    TeamSpec("pediatric-asthma", "lakeshore-childrens", 110, 1.05),
    TeamSpec("pediatric-asthma", "cedar-valley-chc", 82, 1.1),
    TeamSpec("pediatric-asthma", "sandhills-rural-health", 24, 0.7, missing=(9, 10),
             notes=((11, _EHR_GAP),)),
    TeamSpec("pediatric-asthma", "bluegrass-pediatrics", 65, 0.95),
    TeamSpec("pediatric-asthma", "piedmont-childrens", 47, 0.6),
    TeamSpec("pediatric-asthma", "harbor-point-fhc", 120, 0.8),
    TeamSpec("pediatric-asthma", "three-rivers-pediatrics", 88, 0.2,
             notes=((12, "Clinical champion on leave; testing paused"),)),
    TeamSpec("pediatric-asthma", "mesa-verde-pediatrics", 39, 0.9, missing=(13,)),
    TeamSpec("pediatric-asthma", "summit-childrens-pulmonary", 102, 1.0),
    TeamSpec("cyshcn-medical-home", "riverbend-pediatrics", 41, 0.9),
    TeamSpec("cyshcn-medical-home", "cedar-valley-chc", 55, 1.0),
    TeamSpec("cyshcn-medical-home", "great-lakes-complex-care", 84, 1.1),
    TeamSpec("cyshcn-medical-home", "magnolia-pediatrics", 33, 0.4, withdrawn_index=9,
             notes=((8, "Care coordinator position vacant; team withdrawing next month"),)),
    TeamSpec("cyshcn-medical-home", "willamette-family-medicine", 46, 0.8),
    TeamSpec("cyshcn-medical-home", "capitol-hill-pediatrics", 68, 0.95),
    TeamSpec("cyshcn-medical-home", "prairie-wind-pediatrics", 29, 1.05),
    TeamSpec("cyshcn-medical-home", "chesapeake-community-peds", 61, 0.7),
    TeamSpec("cyshcn-medical-home", "desert-bloom-childrens", 52, 0.85, missing=(6,)),
    TeamSpec("cyshcn-medical-home", "harbor-point-fhc", 77, 0.6),
    TeamSpec("severe-hypertension", "gateway-womens-infants", 118, 1.0),
    TeamSpec("severe-hypertension", "confluence-womens", 72, 0.9),
    TeamSpec("severe-hypertension", "riverfront-medical", 105, 1.05),
    TeamSpec("severe-hypertension", "northland-hospital", 44, 0.8),
    TeamSpec("severe-hypertension", "ozark-regional", 86, 0.95),
    TeamSpec("severe-hypertension", "four-states-regional", 38, 0.65),
    TeamSpec("severe-hypertension", "mid-missouri-university", 97, 1.1),
    TeamSpec("severe-hypertension", "capital-region-medical", 51, 0.75),
    TeamSpec("severe-hypertension", "mississippi-bluffs", 40, 0.85),
    TeamSpec("severe-hypertension", "bootheel-community", 21, 1.0, missing=(12, 13)),
    TeamSpec("severe-hypertension", "chariton-valley", 23, 0.9, first_index=4,
             notes=((4, "First month of baseline: older records are on paper charts"),)),
)  # fmt: skip

_D = CareModelDomain
_ASTHMA, _MEDHOME, _HTN = "pediatric-asthma", "cyshcn-medical-home", "severe-hypertension"

RESOURCES: tuple[ResourceSpec, ...] = (
    ResourceSpec(
        CHN, ResourceKind.TOOLKIT, "Pediatric Asthma Change Package",
        "The collaborative's change package: four change concepts and 22 change ideas for "
        "guideline-based asthma care in primary care, with example measures and PDSA worksheets "
        "for each idea.",
        -2, (_D.DELIVERY_SYSTEM_DESIGN, _D.DECISION_SUPPORT), ("asthma",), (_ASTHMA,),
    ),
    ResourceSpec(
        CHN, ResourceKind.TOOL, "Asthma Action Plan Template (English and Spanish)",
        "A one-page green-yellow-red zone action plan with pictures of each inhaler, ready to "
        "print or to load into the EHR. Includes a consent line for sharing with the school nurse.",
        -1, (_D.SELF_MANAGEMENT_SUPPORT,), ("asthma",), (_ASTHMA,),
    ),
    ResourceSpec(
        CHN, ResourceKind.TOOL, "Asthma Control Test Scoring Guide for Clinics",
        "How to administer and score the Childhood Asthma Control Test and the Asthma Control "
        "Test, what a score below 20 means, and how to record it in a structured EHR field.",
        0, (_D.DECISION_SUPPORT, _D.CLINICAL_INFORMATION_SYSTEMS), ("asthma",), (_ASTHMA,),
    ),
    ResourceSpec(
        CHN, ResourceKind.CHANGE_CONCEPT, "Assess asthma control at every visit",
        "Make control assessment a routine part of every visit by a child with persistent asthma, "
        "not only asthma visits, so that step-up and step-down decisions rest on current data.",
        -2, (_D.DECISION_SUPPORT, _D.DELIVERY_SYSTEM_DESIGN), ("asthma",), (_ASTHMA,),
    ),
    ResourceSpec(
        CHN, ResourceKind.CHANGE_IDEA, "Pre-visit planning huddle flags patients due for a plan",
        "Each morning the care team reviews the day's schedule against the asthma registry and "
        "flags children due for a control test, an action plan update or a flu vaccine.",
        3, (_D.DELIVERY_SYSTEM_DESIGN, _D.CLINICAL_INFORMATION_SYSTEMS), ("asthma",), (_ASTHMA,),
    ),
    ResourceSpec(
        CHN, ResourceKind.CHANGE_IDEA, "Send the asthma action plan to the school nurse",
        "With the family's consent, fax or send the updated action plan and a medication "
        "authorization form to the school nurse on the day of the visit.",
        9, (_D.COMMUNITY_RESOURCES, _D.SELF_MANAGEMENT_SUPPORT), ("asthma", "schools"), (_ASTHMA,),
    ),
    ResourceSpec(
        CHN, ResourceKind.CHANGE_IDEA, "Teach-back for inhaler and spacer technique",
        "Ask the child to show how they use the inhaler with the spacer at every visit and "
        "correct technique on the spot; document the result in the asthma flowsheet.",
        5, (_D.SELF_MANAGEMENT_SUPPORT,), ("asthma",), (_ASTHMA,),
    ),
    ResourceSpec(
        CHN, ResourceKind.IMPROVEMENT_STORY,
        "How a community health center cut asthma ED visits with community health workers",
        "Cedar Valley Community Health Center paired families of children with poorly controlled "
        "asthma with a community health worker for home visits and trigger reduction. Emergency "
        "visits fell by a third in nine months.",
        13, (_D.COMMUNITY_RESOURCES, _D.SELF_MANAGEMENT_SUPPORT), ("asthma", "equity"), (_ASTHMA,),
    ),
    ResourceSpec(
        CHN, ResourceKind.WEBINAR, "Building an asthma registry in your EHR",
        "A 60-minute webinar with two practices that built asthma registries from problem-list "
        "and medication data, including the queries they use and how they keep the list clean.",
        4, (_D.CLINICAL_INFORMATION_SYSTEMS,), ("asthma", "data"), (_ASTHMA,),
    ),
    ResourceSpec(
        CHN, ResourceKind.WEBINAR, "Engaging school nurses as asthma partners",
        "School nurses and practice teams discuss how to share action plans, stock spacers at "
        "school and agree on who calls whom after a rescue inhaler is used at school.",
        10, (_D.COMMUNITY_RESOURCES,), ("asthma", "schools"), (_ASTHMA,),
    ),
    ResourceSpec(
        CHN, ResourceKind.TRAINING, "Model for Improvement and PDSA basics for primary care teams",
        "A self-paced course on the three questions of the Model for Improvement, writing an aim, "
        "choosing measures and running small PDSA cycles with a prediction.",
        -4, (_D.HEALTH_SYSTEM,), ("quality-improvement",), (_ASTHMA, _MEDHOME),
    ),
    ResourceSpec(
        CHN, ResourceKind.TRAINING, "Reading your team's data: run charts and control charts",
        "How to build a run chart with a median, apply the shift, trend and runs rules, and when "
        "to move to a p-chart or u-chart; with worked examples from collaborative data.",
        6, (_D.CLINICAL_INFORMATION_SYSTEMS,), ("quality-improvement", "data"),
        (_ASTHMA, _MEDHOME),
    ),
    ResourceSpec(
        CHN, ResourceKind.CONFERENCE, "Children's Health Quality Network Annual Learning Congress",
        "Two days of team storyboards, faculty plenaries and peer-to-peer sessions where teams "
        "from every collaborative share their results and the changes that produced them.",
        14, (_D.HEALTH_SYSTEM,), ("quality-improvement",), (_ASTHMA, _MEDHOME),
    ),
    ResourceSpec(
        CHN, ResourceKind.TOOLKIT, "Medical Home Change Package for CYSHCN",
        "Change concepts and ideas for a family-centered medical home for children and youth "
        "with special health care needs, from identification and registry to care coordination "
        "and transition.",
        1, (_D.DELIVERY_SYSTEM_DESIGN, _D.HEALTH_SYSTEM), ("medical-home", "cyshcn"), (_MEDHOME,),
    ),
    ResourceSpec(
        CHN, ResourceKind.TOOL, "Shared Plan of Care Template",
        "A two-page plan written with the family: goals in the family's words, a medical summary, "
        "action steps with owners and dates, and contacts for every specialist and agency.",
        2, (_D.CLINICAL_INFORMATION_SYSTEMS, _D.SELF_MANAGEMENT_SUPPORT),
        ("medical-home", "cyshcn", "family-engagement"), (_MEDHOME,),
    ),
    ResourceSpec(
        CHN, ResourceKind.TOOL, "Family Experience of Partnership Survey",
        "A ten-item family survey in English and Spanish, with instructions for sampling 20 "
        "visits a month and a spreadsheet that computes the partnership measure.",
        2, (_D.SELF_MANAGEMENT_SUPPORT, _D.HEALTH_SYSTEM), ("medical-home", "family-engagement"),
        (_MEDHOME,),
    ),
    ResourceSpec(
        CHN, ResourceKind.CHANGE_CONCEPT, "Partner with families in care planning",
        "Families are the constant in a child's life: plan care with them, not for them, and "
        "make their goals the first section of every plan of care.",
        1, (_D.SELF_MANAGEMENT_SUPPORT, _D.DELIVERY_SYSTEM_DESIGN),
        ("medical-home", "family-engagement"), (_MEDHOME,),
    ),
    ResourceSpec(
        CHN, ResourceKind.CHANGE_CONCEPT, "Coordinate care across the medical neighborhood",
        "Name one care coordinator per child and agree with specialists, schools and community "
        "agencies on how information flows back to the medical home.",
        1, (_D.COMMUNITY_RESOURCES, _D.DELIVERY_SYSTEM_DESIGN), ("medical-home", "cyshcn"),
        (_MEDHOME,),
    ),
    ResourceSpec(
        CHN, ResourceKind.CHANGE_IDEA, "Keep a CYSHCN registry with complexity tiers",
        "Identify children with special health care needs with a screener at well visits and "
        "tier them by complexity so that care coordination time goes where it is needed most.",
        4, (_D.CLINICAL_INFORMATION_SYSTEMS,), ("medical-home", "cyshcn", "data"), (_MEDHOME,),
    ),
    ResourceSpec(
        CHN, ResourceKind.CHANGE_IDEA, "Start transition readiness assessment at age 14",
        "Give every youth a transition readiness assessment at the first visit after their 14th "
        "birthday and repeat it yearly; use the results to set self-management goals.",
        7, (_D.DECISION_SUPPORT, _D.SELF_MANAGEMENT_SUPPORT), ("medical-home", "transition"),
        (_MEDHOME,),
    ),
    ResourceSpec(
        CHN, ResourceKind.IMPROVEMENT_STORY, "A parent partner on the improvement team",
        "Prairie Wind Pediatrics invited a parent of a child with medical complexity to the "
        "weekly huddle. Her first PDSA - a pre-visit call to families - became the practice's "
        "standard within three months.",
        11, (_D.HEALTH_SYSTEM, _D.SELF_MANAGEMENT_SUPPORT), ("medical-home", "family-engagement"),
        (_MEDHOME,),
    ),
    ResourceSpec(
        CHN, ResourceKind.WEBINAR, "Sustaining the care coordinator role",
        "Practice leaders explain how they fund care coordination with chronic care management "
        "and care coordination billing codes and payer incentive programs.",
        12, (_D.HEALTH_SYSTEM,), ("medical-home", "sustainability"), (_MEDHOME,),
    ),
    ResourceSpec(
        CHN, ResourceKind.CHANGE_CONCEPT, "Use registry data for population management",
        "Move from visit-by-visit care to managing a whole population: keep a registry, review "
        "it on a schedule and reach out to patients who are overdue before they are in crisis.",
        -3, (_D.CLINICAL_INFORMATION_SYSTEMS, _D.DELIVERY_SYSTEM_DESIGN), ("data",),
        (_ASTHMA, _MEDHOME),
    ),
    ResourceSpec(
        PQC, ResourceKind.TOOLKIT, "Severe Hypertension in Pregnancy Implementation Guide",
        "A step-by-step guide to the severe hypertension patient safety bundle: readiness, "
        "recognition and prevention, response, and reporting and systems learning, with sample "
        "policies from member hospitals.",
        3, (_D.DELIVERY_SYSTEM_DESIGN, _D.DECISION_SUPPORT), ("hypertension", "maternal-safety"),
        (_HTN,),
    ),
    ResourceSpec(
        PQC, ResourceKind.TOOL, "Severe Hypertension Treatment Algorithms",
        "Pocket cards and order-set content for first-line treatment with intravenous labetalol, "
        "intravenous hydralazine or oral nifedipine, including repeat-dose timing and when to "
        "call for help.",
        4, (_D.DECISION_SUPPORT,), ("hypertension",), (_HTN,),
    ),
    ResourceSpec(
        PQC, ResourceKind.CHANGE_IDEA, "Stock a hypertension emergency kit on every unit",
        "Keep a sealed kit with first-line medications, the algorithm and a timer on labor and "
        "delivery, postpartum and in the emergency department, checked every shift.",
        6, (_D.DELIVERY_SYSTEM_DESIGN,), ("hypertension",), (_HTN,),
    ),
    ResourceSpec(
        PQC, ResourceKind.TRAINING, "In-situ simulation drills for severe hypertension",
        "A drill kit with scenarios, a debrief guide and an observer checklist for 20-minute "
        "drills on the unit, including emergency department presentations after discharge.",
        7, (_D.HEALTH_SYSTEM, _D.DELIVERY_SYSTEM_DESIGN), ("hypertension", "simulation"), (_HTN,),
    ),
    ResourceSpec(
        PQC, ResourceKind.IMPROVEMENT_STORY,
        "Blood pressure checks within 72 hours at a rural hospital",
        "Bootheel Community Hospital loaned validated cuffs to every patient with hypertension "
        "at discharge and called on day 3; follow-up checks rose from one in four to two in three.",
        14, (_D.COMMUNITY_RESOURCES, _D.SELF_MANAGEMENT_SUPPORT), ("hypertension", "postpartum"),
        (_HTN,),
    ),
    ResourceSpec(
        PQC, ResourceKind.WEBINAR, "Postpartum preeclampsia warning signs families remember",
        "Patient partners and nurse educators share teach-back scripts and discharge materials "
        "about headaches, vision changes and shortness of breath after birth.",
        9, (_D.SELF_MANAGEMENT_SUPPORT,), ("hypertension", "postpartum"), (_HTN,),
    ),
    ResourceSpec(
        PQC, ResourceKind.CONFERENCE, "Heartland Perinatal Quality Summit",
        "The annual statewide meeting of hospital teams, public health and families: storyboards, "
        "state severe maternal morbidity data and the launch of the next initiative.",
        15, (_D.HEALTH_SYSTEM, _D.COMMUNITY_RESOURCES), ("maternal-safety",), (_HTN,),
    ),
)  # fmt: skip


# --------------------------------------------------------------------------------------------------
# Generation
# --------------------------------------------------------------------------------------------------

INSERT_ORDER: tuple[type[Base], ...] = (
    Sponsor,
    Person,
    Collaborative,
    Phase,
    StaffAssignment,
    Measure,
    MeasureVersion,
    CollaborativeMeasure,
    Organization,
    Team,
    TeamMember,
    DataPoint,
    Resource,
    ResourceTag,
    ResourceCollaborative,
)
"""Tables in foreign-key order."""

SPONSOR_BY_SLUG = {spec.slug: spec for spec in SPONSORS}
STAFF_BY_NAME = {spec.name: spec for spec in STAFF}
MEASURE_BY_KEY = {(spec.sponsor, spec.code): spec for spec in MEASURES}
COLLABORATIVE_BY_CODE = {spec.code: spec for spec in COLLABORATIVES}
ORGANIZATION_BY_CODE = {spec.code: spec for spec in ORGANIZATIONS}


def _uid(*parts: str) -> uuid.UUID:
    """A stable id from a readable name."""
    return uuid.uuid5(DEMO_NAMESPACE, "/".join(parts))


def _add_months(first: date, months: int) -> date:
    """The first day of the month ``months`` after the month of ``first``."""
    index = first.year * 12 + first.month - 1 + months
    return date(index // 12, index % 12 + 1, 1)


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")


def _email(name: str, domain: str) -> str:
    local = ".".join(re.sub(r"[^a-z]", "", part.lower()) for part in name.split())
    return f"{local}@{domain}"


@dataclass(frozen=True)
class _Calendar:
    """The data window: ``MONTHS`` months ending with the month before ``today``."""

    today: date
    first_month: date

    @classmethod
    def ending_before(cls, today: date) -> _Calendar:
        return cls(today=today, first_month=_add_months(today.replace(day=1), -MONTHS))

    def month(self, index: int) -> date:
        return _add_months(self.first_month, index)

    def period(self, index: int) -> str:
        return self.month(index).strftime("%Y-%m")

    def at(self, day: date) -> datetime:
        """Mid-afternoon UTC of ``day``, never later than the day before ``today``."""
        return datetime.combine(min(day, self.today - timedelta(days=1)), time(15, 0), UTC)

    @property
    def setup_at(self) -> datetime:
        """When the sponsors set up their programs: just before the data window."""
        return self.at(self.first_month - timedelta(days=20))


@dataclass(frozen=True)
class _Schedule:
    """A collaborative's phases: (kind, name, first day, last day) in order."""

    phases: tuple[tuple[PhaseKind, str, date, date], ...]

    @property
    def start(self) -> date:
        return self.phases[0][2]

    @property
    def end(self) -> date:
        return self.phases[-1][3]


def _schedule(spec: CollaborativeSpec, calendar: _Calendar) -> _Schedule:
    """Prework (2 months), three learning sessions and action periods, congress, sustain."""
    day = timedelta(days=1)
    start = calendar.month(spec.start_index)
    sessions = [
        _add_months(start, 2 + k * spec.action_period_months).replace(day=10) for k in range(3)
    ]
    congress = _add_months(start, 2 + 3 * spec.action_period_months).replace(day=10)
    phases = [(PhaseKind.PREWORK, "Prework", start, sessions[0] - day)]
    for number, session in enumerate(sessions, start=1):
        following = sessions[number] if number < len(sessions) else congress
        phases.append(
            (PhaseKind.LEARNING_SESSION, f"Learning Session {number}", session, session + day)
        )
        phases.append(
            (PhaseKind.ACTION_PERIOD, f"Action Period {number}", session + 2 * day, following - day)
        )
    phases.append((PhaseKind.CONGRESS, "Summative Congress", congress, congress + day))
    if spec.sustain_months:
        sustain_end = _add_months(congress, spec.sustain_months + 1) - day
        phases.append((PhaseKind.SUSTAIN, "Holding the Gains", congress + 2 * day, sustain_end))
    return _Schedule(tuple(phases))


def _status(schedule: _Schedule, today: date) -> CollaborativeStatus:
    if schedule.end < today:
        return CollaborativeStatus.COMPLETED
    return CollaborativeStatus.ACTIVE if schedule.start <= today else CollaborativeStatus.PLANNED


class _Builder:
    """Accumulates the rows of every table; people are deduplicated by sponsor and name."""

    def __init__(self, calendar: _Calendar) -> None:
        self.calendar = calendar
        self.rng = random.Random(SEED)  # noqa: S311 - demo data, not security
        self.rows: dict[type[Base], list[Row]] = {model: [] for model in INSERT_ORDER}
        self.names: dict[str, set[str]] = {spec.slug: set() for spec in SPONSORS}
        self.leaders: dict[str, uuid.UUID] = {}  # organization code -> senior leader
        self.schedules = {spec.code: _schedule(spec, calendar) for spec in COLLABORATIVES}

    def add(self, model: type[Base], **row: Any) -> None:
        self.rows[model].append(row)

    def person(self, sponsor: str, name: str, email: str, title: str) -> uuid.UUID:
        """Add a person once; return their id."""
        person_id = _uid(sponsor, "person", email)
        if name not in self.names[sponsor]:
            self.names[sponsor].add(name)
            at = self.calendar.setup_at
            self.add(
                Person,
                sponsor_id=_uid("sponsor", sponsor),
                id=person_id,
                name=name,
                email=email,
                title=title,
                created_at=at,
                updated_at=at,
            )
        return person_id

    def new_name(self, sponsor: str) -> str:
        """A first and last name not yet used in this sponsor."""
        while True:
            name = f"{self.rng.choice(FIRST_NAMES)} {self.rng.choice(LAST_NAMES)}"
            if name not in self.names[sponsor]:
                return name


def _add_sponsors(builder: _Builder) -> None:
    for spec in SPONSORS:
        builder.add(
            Sponsor,
            id=_uid("sponsor", spec.slug),
            slug=spec.slug,
            name=spec.name,
            description=spec.description,
            website=spec.website,
            created_at=builder.calendar.setup_at,
        )


def _add_collaboratives(builder: _Builder) -> None:
    at = builder.calendar.setup_at
    for spec in COLLABORATIVES:
        sponsor_id = _uid("sponsor", spec.sponsor)
        collaborative_id = _uid(spec.sponsor, "collaborative", spec.code)
        schedule = builder.schedules[spec.code]
        builder.add(
            Collaborative,
            sponsor_id=sponsor_id,
            id=collaborative_id,
            code=spec.code,
            name=spec.name,
            topic=spec.topic,
            aim=spec.aim.format(end=f"{schedule.end:%B %Y}"),
            description=spec.description,
            status=_status(schedule, builder.calendar.today),
            start_date=schedule.start,
            end_date=schedule.end,
            created_at=at,
            updated_at=at,
        )
        for seq, (kind, name, start, end) in enumerate(schedule.phases, start=1):
            builder.add(
                Phase,
                sponsor_id=sponsor_id,
                id=_uid(spec.code, "phase", str(seq)),
                collaborative_id=collaborative_id,
                kind=kind,
                seq=seq,
                name=name,
                start_date=start,
                end_date=end,
            )
        domain = SPONSOR_BY_SLUG[spec.sponsor].email_domain
        for name, role in spec.staff:
            staff = STAFF_BY_NAME[name]
            person_id = builder.person(spec.sponsor, name, _email(name, domain), staff.title)
            builder.add(
                StaffAssignment,
                sponsor_id=sponsor_id,
                id=_uid(spec.code, "staff", name, role),
                collaborative_id=collaborative_id,
                person_id=person_id,
                role=role,
            )


def _version_rows(spec: MeasureSpec, calendar: _Calendar) -> Iterator[Row]:
    definitions = [(1, spec.definition, calendar.setup_at)]
    if spec.revision is not None:
        since = calendar.month(MONTHS - spec.revision.months)
        definitions.append((2, spec.revision.definition, calendar.at(since)))
    for version, definition, created_at in definitions:
        yield {
            "sponsor_id": _uid("sponsor", spec.sponsor),
            "id": _uid(spec.sponsor, "measure", spec.code, "version", str(version)),
            "measure_id": _uid(spec.sponsor, "measure", spec.code),
            "version": version,
            "name": definition.name,
            "description": definition.description,
            "type": spec.type,
            "scoring": spec.scoring,
            "numerator": definition.numerator,
            "denominator": definition.denominator,
            "exclusions": definition.exclusions,
            "unit": spec.unit,
            "multiplier": spec.multiplier,
            "improvement_direction": spec.direction,
            "data_source": definition.data_source,
            "sampling": definition.sampling,
            "frequency": "MONTHLY",
            "fhir_canonical": (
                f"https://measures.example.org/Measure/{spec.code}|{version}.0"
                if spec.fhir
                else None
            ),
            "external_codes": {"dhis2": spec.dhis2} if spec.dhis2 else {},
            "created_at": created_at,
        }


def _add_measures(builder: _Builder) -> None:
    at = builder.calendar.setup_at
    for spec in MEASURES:
        builder.add(
            Measure,
            sponsor_id=_uid("sponsor", spec.sponsor),
            id=_uid(spec.sponsor, "measure", spec.code),
            code=spec.code,
            current_version=2 if spec.revision else 1,
            created_at=at,
            updated_at=at,
        )
        builder.rows[MeasureVersion].extend(_version_rows(spec, builder.calendar))
    for collaborative in COLLABORATIVES:
        for position, use in enumerate(collaborative.measures):
            builder.add(
                CollaborativeMeasure,
                sponsor_id=_uid("sponsor", collaborative.sponsor),
                collaborative_id=_uid(collaborative.sponsor, "collaborative", collaborative.code),
                measure_id=_uid(collaborative.sponsor, "measure", use.code),
                required=use.required,
                goal=use.goal,
                goal_description=use.goal_description,
                position=position,
                added_at=at,
            )


def _add_organizations(builder: _Builder) -> None:
    at = builder.calendar.setup_at
    for spec in ORGANIZATIONS:
        builder.add(
            Organization,
            sponsor_id=_uid("sponsor", spec.sponsor),
            id=_uid(spec.sponsor, "organization", spec.code),
            code=spec.code,
            name=spec.name,
            city=spec.city,
            state=spec.state,
            region=spec.region,
            created_at=at,
            updated_at=at,
        )


def _team_code(spec: TeamSpec) -> str:
    return f"{COLLABORATIVE_BY_CODE[spec.collaborative].team_prefix}-{spec.organization}"


def _team_roles(builder: _Builder, spec: TeamSpec) -> list[TeamRole]:
    """The core roles, a family partner on most teams, and some extra hands."""
    roles = [TeamRole.CLINICAL_CHAMPION, TeamRole.DAY_TO_DAY_LEAD, TeamRole.DATA_LEAD]
    if builder.rng.random() < 0.75:
        roles.append(TeamRole.PATIENT_FAMILY_PARTNER)
    if builder.rng.random() < 0.4:
        roles.append(TeamRole.TECHNICAL_EXPERT)
    roles.extend([TeamRole.MEMBER] * builder.rng.randint(0, 2))
    if spec.volume < SMALL_SITE_VOLUME:  # the day-to-day lead also pulls the data
        roles.remove(TeamRole.DATA_LEAD)
    return roles


def _add_team_members(builder: _Builder, spec: TeamSpec, sponsor: str, team_id: uuid.UUID) -> None:
    titles = TEAM_TITLES[SPONSOR_BY_SLUG[sponsor].setting]
    domain = f"{spec.organization}.example.org"
    # One senior leader per organization, shared by its teams in several collaboratives.
    if spec.organization not in builder.leaders:
        name = builder.new_name(sponsor)
        title = builder.rng.choice(titles[TeamRole.SENIOR_LEADER])
        builder.leaders[spec.organization] = builder.person(
            sponsor, name, _email(name, domain), title
        )
    members = [(builder.leaders[spec.organization], TeamRole.SENIOR_LEADER)]
    for role in _team_roles(builder, spec):
        name = builder.new_name(sponsor)
        person_domain = "example.net" if role is TeamRole.PATIENT_FAMILY_PARTNER else domain
        title = builder.rng.choice(titles[role])
        person_id = builder.person(sponsor, name, _email(name, person_domain), title)
        members.append((person_id, role))
        if role is TeamRole.DAY_TO_DAY_LEAD and spec.volume < SMALL_SITE_VOLUME:
            members.append((person_id, TeamRole.DATA_LEAD))
    for person_id, role in members:
        builder.add(
            TeamMember,
            sponsor_id=_uid("sponsor", sponsor),
            id=_uid(str(team_id), "member", str(person_id), role),
            team_id=team_id,
            person_id=person_id,
            role=role,
        )


def _numbered_teams() -> Iterator[tuple[int, TeamSpec]]:
    """Each team with its 0-based number inside its collaborative (spreads dates and notes)."""
    seen: dict[str, int] = {}
    for spec in TEAMS:
        seen[spec.collaborative] = seen.get(spec.collaborative, -1) + 1
        yield seen[spec.collaborative], spec


def _add_teams(builder: _Builder) -> None:
    at = builder.calendar.setup_at
    for number, spec in _numbered_teams():
        collaborative = COLLABORATIVE_BY_CODE[spec.collaborative]
        sponsor = collaborative.sponsor
        organization = ORGANIZATION_BY_CODE[spec.organization]
        assert organization.sponsor == sponsor, spec
        team_id = _uid(sponsor, "team", _team_code(spec))
        start = builder.schedules[spec.collaborative].start
        withdrawn_on = (
            None
            if spec.withdrawn_index is None
            else builder.calendar.month(spec.withdrawn_index).replace(day=15)
        )
        builder.add(
            Team,
            sponsor_id=_uid("sponsor", sponsor),
            id=team_id,
            code=_team_code(spec),
            name=f"{organization.name} {collaborative.team_label}",
            organization_id=_uid(sponsor, "organization", spec.organization),
            collaborative_id=_uid(sponsor, "collaborative", spec.collaborative),
            joined_on=start + timedelta(days=3 + 4 * number),  # enrolled during prework
            withdrawn_on=withdrawn_on,
            created_at=at,
            updated_at=at,
        )
        _add_team_members(builder, spec, sponsor, team_id)


def _poisson(rng: random.Random, mean: float) -> int:
    """A Poisson draw (Knuth's method; a normal approximation for large means)."""
    if mean <= 0:
        return 0
    if mean > 30:
        return max(0, round(rng.gauss(mean, math.sqrt(mean))))
    limit, count, product = math.exp(-mean), 0, rng.random()
    while product > limit:
        count += 1
        product *= rng.random()
    return count


def _team_level(rng: random.Random, spec: MeasureSpec) -> float:
    """A team's lasting difference from the collaborative's level.

    Additive for proportions and means, a factor for rates and counts.
    """
    if spec.scoring in (Scoring.RATE, Scoring.COUNT):
        return max(0.3, 1.0 + rng.gauss(0.0, spec.trend.spread))
    return rng.gauss(0.0, spec.trend.spread)


def _observe(
    rng: random.Random, spec: MeasureSpec, level: float, target: float, volume: int
) -> tuple[int | None, int | None, float | None]:
    """One month's (numerator, denominator, value) around ``target``."""
    trend = spec.trend
    if spec.scoring is Scoring.PROPORTION:
        p = min(0.99, max(0.01, target + level))
        n = max(1, round(volume * trend.volume * rng.uniform(0.8, 1.2)))
        k = round(rng.gauss(n * p, math.sqrt(n * p * (1 - p))))  # binomial, approximately
        return min(n, max(0, k)), n, None
    if spec.scoring is Scoring.RATE:
        n = max(1, round(volume * trend.volume * rng.uniform(0.97, 1.03)))
        return _poisson(rng, target * level / spec.multiplier * n), n, None
    if spec.scoring is Scoring.COUNT:
        return None, None, float(_poisson(rng, target * level))
    return None, None, round(max(1.0, target + level + rng.gauss(0.0, trend.noise)), 1)


def _progress(index: int, ls1_index: int, effect: float) -> float:
    """Share of the full improvement a team shows in month ``index``: none before LS1."""
    if index < ls1_index:
        return 0.0
    return effect * min(1.0, (index - ls1_index + 1) / RAMP_MONTHS)


def _reports(spec: TeamSpec, index: int) -> bool:
    if index < spec.first_index or index in spec.missing:
        return False
    return spec.withdrawn_index is None or index < spec.withdrawn_index


def _annotation(
    spec: TeamSpec, number: int, collaborative: CollaborativeSpec, position: int, index: int
) -> str:
    """Notes go on the first measure; every other team notes its first change at LS1."""
    if position != 0:
        return ""
    notes = dict(spec.notes)
    if index in notes:
        return notes[index]
    if index == collaborative.ls1_index and number % 2 == 0:
        return collaborative.change_notes[(number // 2) % len(collaborative.change_notes)]
    return ""


def _target(measure: MeasureSpec, team: TeamSpec, index: int) -> float:
    """The expected level of a team's measure in month ``index`` (before the team's offset)."""
    trend = measure.trend
    progress = _progress(index, COLLABORATIVE_BY_CODE[team.collaborative].ls1_index, team.effect)
    target = trend.baseline + (trend.improved - trend.baseline) * progress
    if measure.revision is not None and index >= MONTHS - measure.revision.months:
        target -= measure.revision.shift  # the stricter definition scores lower
    return target


def _data_point(
    builder: _Builder, team: TeamSpec, number: int, position: int, level: float, index: int
) -> Row:
    """The row of one team's measure (the ``position``-th of its collaborative) in one month."""
    calendar = builder.calendar
    collaborative = COLLABORATIVE_BY_CODE[team.collaborative]
    sponsor, use = collaborative.sponsor, collaborative.measures[position]
    measure = MEASURE_BY_KEY[(sponsor, use.code)]
    target = _target(measure, team, index)
    numerator, denominator, value = _observe(builder.rng, measure, level, target, team.volume)
    revised_from = MONTHS - measure.revision.months if measure.revision else MONTHS
    annotation = _annotation(team, number, collaborative, position, index)
    if measure.revision is not None and index == revised_from:
        annotation = measure.revision.note
    # Teams submit a few days into the next month; faculty approve three weeks later.
    submitted = calendar.at(calendar.month(index + 1) + timedelta(days=4 + number % 7))
    approved = index < MONTHS - SUBMITTED_MONTHS
    return {
        "sponsor_id": _uid("sponsor", sponsor),
        "id": _uid(sponsor, "data", _team_code(team), use.code, calendar.period(index)),
        "team_id": _uid(sponsor, "team", _team_code(team)),
        "measure_id": _uid(sponsor, "measure", use.code),
        "measure_version": 2 if index >= revised_from else 1,
        "period": calendar.period(index),
        "stratum": "",
        "numerator": numerator,
        "denominator": denominator,
        "value": value,
        "annotation": annotation,
        "status": DataPointStatus.APPROVED if approved else DataPointStatus.SUBMITTED,
        "source": ACTOR,
        "receipt_id": None,
        "created_at": submitted,
        "created_by": ACTOR,
        "updated_at": calendar.at(submitted.date() + timedelta(days=21)) if approved else submitted,
        "updated_by": ACTOR,
    }


def _add_data_points(builder: _Builder) -> None:
    rows = builder.rows[DataPoint]
    for number, team in _numbered_teams():
        collaborative = COLLABORATIVE_BY_CODE[team.collaborative]
        for position, use in enumerate(collaborative.measures):
            level = _team_level(builder.rng, MEASURE_BY_KEY[(collaborative.sponsor, use.code)])
            rows.extend(
                _data_point(builder, team, number, position, level, index)
                for index in range(MONTHS)
                if _reports(team, index)
            )


def _add_resources(builder: _Builder) -> None:
    for spec in RESOURCES:
        sponsor_id = _uid("sponsor", spec.sponsor)
        slug = _slug(spec.title)
        resource_id = _uid(spec.sponsor, "resource", slug)
        published_on = builder.calendar.month(spec.month) + timedelta(days=(len(slug) % 20) + 1)
        at = builder.calendar.at(published_on)
        builder.add(
            Resource,
            sponsor_id=sponsor_id,
            id=resource_id,
            kind=spec.kind,
            title=spec.title,
            summary=spec.summary,
            url=f"{SPONSOR_BY_SLUG[spec.sponsor].website}/resources/{slug}",
            published_on=published_on,
            created_at=at,
            updated_at=at,
        )
        tags = [(TAG_DOMAIN, domain.value) for domain in spec.domains]
        tags += [(TAG_TOPIC, topic) for topic in spec.topics]
        for tag_kind, value in tags:
            builder.add(
                ResourceTag,
                sponsor_id=sponsor_id,
                resource_id=resource_id,
                tag_kind=tag_kind,
                value=value,
            )
        for code in spec.collaboratives:
            builder.add(
                ResourceCollaborative,
                sponsor_id=sponsor_id,
                resource_id=resource_id,
                collaborative_id=_uid(spec.sponsor, "collaborative", code),
            )


def build_demo_rows(today: date) -> dict[type[Base], list[Row]]:
    """Every demo row, per model in foreign-key order (pure: no database)."""
    builder = _Builder(_Calendar.ending_before(today))
    _add_sponsors(builder)
    _add_collaboratives(builder)
    _add_measures(builder)
    _add_organizations(builder)
    _add_teams(builder)
    _add_data_points(builder)
    _add_resources(builder)
    return builder.rows


DEMO_SHARED_COLLABORATIVE = "pediatric-asthma"
"""The collaborative whose aggregates the first demo sponsor shares with the second."""


async def _add_sharing_agreement(session: AsyncSession) -> None:
    """The demo's one agreement: the second sponsor (whose client is ``demo-partner``) may read
    AGGREGATE data of one collaborative of the first, every measure of its set, under the
    default suppression policy; created through the audited path, as an admin would."""
    grantor = await session.scalar(select(Sponsor.id).where(Sponsor.slug == CHN))
    assert grantor is not None, "the demo sponsors were inserted above"
    measure_codes = [
        use.code
        for spec in COLLABORATIVES
        if spec.code == DEMO_SHARED_COLLABORATIVE
        for use in spec.measures
    ]
    await create_agreement(
        session,
        Actor(client_id="demo-seed", kind="ADMIN", sponsor_id=grantor),
        NewAgreement(
            grantee_slug=PQC,
            collaborative_codes=[DEMO_SHARED_COLLABORATIVE],
            measure_codes=measure_codes,
            level=SharingLevel.AGGREGATE,
            cell_min=DEFAULT_CELL_MIN,
            min_teams=DEFAULT_MIN_TEAMS,
            purpose="Demo: compare pediatric asthma outcomes across the two demo programs.",
            valid_from=datetime.combine(date(2020, 1, 1), time(), tzinfo=UTC),
            valid_to=None,
        ),
    )


async def seed_demo(session: AsyncSession, *, today: date | None = None) -> DemoSummary:
    """Insert the demo data into ``session`` (the caller commits); a no-op when already there."""
    present = await session.scalar(
        select(Sponsor.id).where(Sponsor.slug.in_(DEMO_SPONSOR_SLUGS)).limit(1)
    )
    if present is not None:
        return DemoSummary(False, 0, 0, 0, 0, 0, 0)
    today = today or date.today()
    rows = build_demo_rows(today)
    for model in INSERT_ORDER:
        if rows[model]:
            await session.execute(insert(model), rows[model])  # one executemany per table
    from db.demo_content import seed_demo_content  # it builds on this module's specifications

    content = await seed_demo_content(session, today=today)
    await _add_sharing_agreement(session)
    return DemoSummary(
        created=True,
        sponsors=len(rows[Sponsor]),
        collaboratives=len(rows[Collaborative]),
        teams=len(rows[Team]),
        measures=len(rows[Measure]),
        data_points=len(rows[DataPoint]),
        resources=len(rows[Resource]),
        pdsa_cycles=content.pdsa_cycles,
        assessments=content.assessments,
        survey_responses=content.survey_responses,
    )
