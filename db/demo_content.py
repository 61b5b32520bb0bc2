"""Demo improvement content: change packages, PDSA cycles, monthly IHI assessments and ACIC waves.

Seeded by :func:`db.demo.seed_demo` together with the rest of the demo, from the same team
specifications, so that the content tells the measures' story:

* **Change packages** — four concepts per collaborative, each with two or three ideas, linked to
  the catalog resources of the demo and to the measures they should move. The change each team
  notes on its first measure at Learning Session 1 is the first idea it tests.
* **PDSA cycles** — from Learning Session 1, each team runs chains of cycles (a small test, a
  wider one, then the whole practice), one chain per idea. Teams with a larger share of the
  improvement (``TeamSpec.effect``) start chains more often and adopt more; the weakest adapt
  and abandon. Cycles stop when a team pauses or withdraws; the newest cycle may still be open.
* **Assessments** — every team, every month from prework, by faculty and by the team: 1.0 while
  forming, 1.5 planning, then 2.0 plus the team's progress on its measures (the same ramp as the
  data), with 0.5 more once a gain is sustained. Most teams rate themselves half a point higher
  early on and agree with faculty later.
* **ACIC** (v3.5 structure, loaded into both sponsors) — the children's-health teams answer it at
  baseline (prework), midpoint (Learning Session 2) and, for the medical-home collaborative that
  has ended, at the final congress. Subscales the collaboratives work on improve most. One team
  leaves two of the three community-linkage items blank at baseline, so that subscale (and the
  overall score) is not scored — the missing-item rule at work.

Ids are ``uuid5`` like the rest of the demo; numbers come from a fixed-seed generator.
"""

from __future__ import annotations

import math
import random
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

from sqlalchemy import insert
from sqlalchemy.ext.asyncio import AsyncSession

from analytics.assessment_scale import LEVELS
from db.base import Base
from db.demo import (
    ACTOR,
    CHN,
    COLLABORATIVE_BY_CODE,
    MONTHS,
    PQC,
    RESOURCES,
    CollaborativeSpec,
    TeamSpec,
    _Calendar,
    _numbered_teams,
    _progress,
    _schedule,
    _slug,
    _team_code,
    _uid,
)
from db.enums import AssessmentRater, CareModelDomain, PdsaAct, SurveyWave
from db.instruments import ACIC, InstrumentDefinition, bundled_instruments, read_definition
from db.instruments import scale_to_json as _scale_json
from db.models import (
    Assessment,
    ChangeConcept,
    ChangeConceptResource,
    ChangeIdea,
    ChangeIdeaResource,
    Instrument,
    InstrumentItem,
    InstrumentSection,
    InstrumentVersion,
    PdsaCycle,
    PdsaCycleMeasure,
    SurveyResponse,
)

CONTENT_SEED = 20241105
"""Seed of the content's random numbers."""

Row = dict[str, Any]
_D = CareModelDomain

INSERT_ORDER: tuple[type[Base], ...] = (
    ChangeConcept,
    ChangeIdea,
    ChangeConceptResource,
    ChangeIdeaResource,
    PdsaCycle,
    PdsaCycleMeasure,
    Assessment,
    Instrument,
    InstrumentVersion,
    InstrumentSection,
    InstrumentItem,
    SurveyResponse,
)
"""The content tables in foreign-key order."""


@dataclass(frozen=True)
class IdeaSpec:
    title: str
    description: str
    measures: tuple[str, ...]
    resources: tuple[str, ...] = ()  # catalog titles
    note: int | None = None  # index of the collaborative's change note it is


@dataclass(frozen=True)
class ConceptSpec:
    title: str
    description: str
    domains: tuple[CareModelDomain, ...]
    resources: tuple[str, ...]
    ideas: tuple[IdeaSpec, ...]


PACKAGES: dict[str, tuple[ConceptSpec, ...]] = {
    "pediatric-asthma": (
        ConceptSpec(
            "Assess asthma control at every visit",
            "Make a validated control test part of every visit by a child with persistent "
            "asthma, so that treatment decisions rest on current data.",
            (_D.DECISION_SUPPORT, _D.DELIVERY_SYSTEM_DESIGN),
            ("Assess asthma control at every visit",
             "Asthma Control Test Scoring Guide for Clinics"),
            (
                IdeaSpec("C-ACT/ACT on a tablet at check-in",
                         "Families complete the control test on a tablet while they wait; the "
                         "score files to a structured EHR field.",
                         ("asthma-control-assessment",), note=1),
                IdeaSpec("Pre-visit planning huddle flags patients due for a plan",
                         "The morning huddle checks the schedule against the registry and flags "
                         "children due for a control test, a plan update or a controller review.",
                         ("asthma-control-assessment", "asthma-action-plan"),
                         ("Pre-visit planning huddle flags patients due for a plan",), note=2),
                IdeaSpec("Step up controller therapy when the score is below 20",
                         "A score below 20 prompts a controller review with the guideline's "
                         "step-up table at the same visit.",
                         ("asthma-controller-medication", "asthma-control")),
            ),
        ),
        ConceptSpec(
            "Support self-management with written action plans",
            "Every family leaves with a current, written plan that says what to do in the "
            "green, yellow and red zones, and can show how to use the inhaler.",
            (_D.SELF_MANAGEMENT_SUPPORT,),
            ("Asthma Action Plan Template (English and Spanish)",),
            (
                IdeaSpec("Standardized action plan at every persistent-asthma visit",
                         "One plan template for every clinician, reviewed with the family at "
                         "every persistent-asthma visit.",
                         ("asthma-action-plan",),
                         ("Asthma Action Plan Template (English and Spanish)",), note=0),
                IdeaSpec("Teach-back for inhaler and spacer technique",
                         "The child shows the technique at every visit; staff correct it on the "
                         "spot and note it in the flowsheet.",
                         ("asthma-control",), ("Teach-back for inhaler and spacer technique",)),
            ),
        ),
        ConceptSpec(
            "Link families with schools and community resources",
            "Asthma is managed where children live and learn: share plans with schools and "
            "connect families with help at home.",
            (_D.COMMUNITY_RESOURCES, _D.SELF_MANAGEMENT_SUPPORT),
            ("Engaging school nurses as asthma partners",),
            (
                IdeaSpec("Send the asthma action plan to the school nurse",
                         "With the family's consent, send the updated plan and a medication form "
                         "to the school nurse on the day of the visit.",
                         ("asthma-action-plan",),
                         ("Send the asthma action plan to the school nurse",)),
                IdeaSpec("Community health worker home visits for trigger reduction",
                         "Families of children with poorly controlled asthma get home visits to "
                         "find and reduce triggers.",
                         ("asthma-ed-visits", "asthma-control"),
                         ("How a community health center cut asthma ED visits with community "
                          "health workers",)),
            ),
        ),
        ConceptSpec(
            "Use registry data for population management",
            "Keep a registry of every child with persistent asthma, review it on a schedule and "
            "reach out before a crisis.",
            (_D.CLINICAL_INFORMATION_SYSTEMS, _D.DELIVERY_SYSTEM_DESIGN),
            ("Use registry data for population management",
             "Building an asthma registry in your EHR"),
            (
                IdeaSpec("Care manager calls families within 2 days of an ED visit",
                         "The ED notification feed lists children seen overnight; the care "
                         "manager calls each family and books a follow-up visit.",
                         ("asthma-ed-visits",), note=3),
                IdeaSpec("Monthly registry review of children overdue for a visit",
                         "Once a month the team lists registry patients without a visit in six "
                         "months and invites them.",
                         ("asthma-control-assessment",)),
            ),
        ),
    ),
    "cyshcn-medical-home": (
        ConceptSpec(
            "Identify children with special health care needs",
            "Know who they are: screen, keep a registry and tier children by complexity so care "
            "coordination time goes where it is needed.",
            (_D.CLINICAL_INFORMATION_SYSTEMS,),
            ("Use registry data for population management",),
            (
                IdeaSpec("Keep a CYSHCN registry with complexity tiers",
                         "Identify children with a screener at well visits and tier them by "
                         "complexity in the registry.",
                         ("care-coordinator-identified",),
                         ("Keep a CYSHCN registry with complexity tiers",), note=0),
                IdeaSpec("Screen with the CSHCN Screener at well visits",
                         "Families complete the five-item screener at every well visit from "
                         "age one.",
                         ("care-coordinator-identified",)),
            ),
        ),
        ConceptSpec(
            "Partner with families in care planning",
            "Plan care with families, not for them, and put their goals first in every plan.",
            (_D.SELF_MANAGEMENT_SUPPORT, _D.DELIVERY_SYSTEM_DESIGN),
            ("Partner with families in care planning", "Family Experience of Partnership Survey"),
            (
                IdeaSpec("Pilot the shared plan of care template with families",
                         "Write the plan with the family at a planned visit: their goals, a "
                         "medical summary and action steps with owners.",
                         ("shared-care-plan",), ("Shared Plan of Care Template",), note=3),
                IdeaSpec("Parent partner joins the weekly team huddle",
                         "A parent of a child with medical complexity joins the huddle and "
                         "reviews new workflows from a family's point of view.",
                         ("family-partnership",), ("A parent partner on the improvement team",),
                         note=1),
            ),
        ),
        ConceptSpec(
            "Coordinate care across the medical neighborhood",
            "One named care coordinator per child, and agreed ways for information to flow back "
            "from specialists, schools and agencies.",
            (_D.COMMUNITY_RESOURCES, _D.DELIVERY_SYSTEM_DESIGN),
            ("Coordinate care across the medical neighborhood",),
            (
                IdeaSpec("Introduce the care coordinator to every family on the registry",
                         "The coordinator meets each family at their next visit and leaves a "
                         "card with a direct number.",
                         ("care-coordinator-identified", "family-partnership"), note=2),
                IdeaSpec("Follow-up call within 2 days of an ED visit",
                         "The coordinator calls the family after every emergency visit and "
                         "updates the plan of care.",
                         ("cyshcn-ed-visits",)),
            ),
        ),
        ConceptSpec(
            "Plan the transition to adult care",
            "Start early, assess readiness every year and set self-management goals with the "
            "youth.",
            (_D.DECISION_SUPPORT, _D.SELF_MANAGEMENT_SUPPORT),
            (),
            (
                IdeaSpec("Start transition readiness assessment at age 14",
                         "Every youth completes a readiness assessment at the first visit after "
                         "their 14th birthday, repeated yearly.",
                         ("transition-readiness",),
                         ("Start transition readiness assessment at age 14",)),
            ),
        ),
    ),
    "severe-hypertension": (
        ConceptSpec(
            "Readiness: every unit ready for a hypertensive emergency",
            "Medications, algorithms and people ready wherever a pregnant or postpartum person "
            "may present with severe hypertension.",
            (_D.DELIVERY_SYSTEM_DESIGN, _D.HEALTH_SYSTEM),
            ("Severe Hypertension in Pregnancy Implementation Guide",),
            (
                IdeaSpec("Stock a hypertension emergency kit on every unit",
                         "A sealed kit with first-line medications, the algorithm and a timer "
                         "on L&D, postpartum and in the ED, checked every shift.",
                         ("severe-htn-timely-treatment", "time-to-treatment"),
                         ("Stock a hypertension emergency kit on every unit",), note=0),
                IdeaSpec("In-situ simulation drills for severe hypertension",
                         "Twenty-minute drills on the unit with a debrief, including ED "
                         "presentations after discharge.",
                         ("severe-htn-timely-treatment",),
                         ("In-situ simulation drills for severe hypertension",), note=2),
            ),
        ),
        ConceptSpec(
            "Recognition and prevention",
            "Recognize persistent severe-range pressure at once and start treatment within the "
            "hour, without overtreating.",
            (_D.DECISION_SUPPORT, _D.CLINICAL_INFORMATION_SYSTEMS),
            ("Severe Hypertension Treatment Algorithms",),
            (
                IdeaSpec("Order set with the treatment algorithm",
                         "An order set that follows the algorithm, with repeat-dose timers and "
                         "when to call for help.",
                         ("time-to-treatment", "treatment-hypotension"),
                         ("Severe Hypertension Treatment Algorithms",), note=1),
                IdeaSpec("Standing order: nurses give the first dose",
                         "Nurses start first-line treatment under a standing order while the "
                         "provider is on the way.",
                         ("severe-htn-timely-treatment", "treatment-hypotension"), note=3),
            ),
        ),
        ConceptSpec(
            "Response and follow-up after birth",
            "People go home knowing the warning signs and with a blood pressure check within "
            "days.",
            (_D.SELF_MANAGEMENT_SUPPORT, _D.COMMUNITY_RESOURCES),
            ("Postpartum preeclampsia warning signs families remember",),
            (
                IdeaSpec("Teach-back on postpartum warning signs at discharge",
                         "Nurses use teach-back on headaches, vision changes and shortness of "
                         "breath before discharge.",
                         ("htn-discharge-education",),
                         ("Postpartum preeclampsia warning signs families remember",)),
                IdeaSpec("Blood pressure check within 72 hours of discharge",
                         "Loan a validated cuff at discharge and call on day 3 for the reading.",
                         ("postpartum-bp-follow-up",),
                         ("Blood pressure checks within 72 hours at a rural hospital",)),
            ),
        ),
        ConceptSpec(
            "Reporting and systems learning",
            "Learn from every case: debrief, review and share what the data show.",
            (_D.HEALTH_SYSTEM,),
            (),
            (
                IdeaSpec("Debrief every severe hypertension case",
                         "A five-minute debrief with a checklist after every case, reviewed "
                         "monthly by the team.",
                         ("severe-htn-debrief",)),
            ),
        ),
    ),
}  # fmt: skip
"""Each collaborative's change package."""

LEVEL_NOTES: dict[float, str] = {
    0.5: "Signed up; the team has not met yet.",
    1.0: "Team formed; charter and aim statement drafted.",
    1.5: "Baseline data collection under way and first tests planned.",
    2.0: "Testing changes; the measures have not moved yet.",
    2.5: "Several changes tested; no improvement in the measures yet.",
    3.0: "Early improvement in the process measures.",
    3.5: "Process measures improving; the outcome starting to move.",
    4.0: "Significant improvement in the outcome measure, near the goal.",
    4.5: "Improvement sustained for several months; changes are standard work.",
    5.0: "Goal reached and sustained; the team is spreading its changes.",
}
"""Faculty justifications by level."""

ACIC_SPONSORS = (CHN, PQC)
"""Sponsors the ACIC is loaded into (its responses are the children's-health teams')."""
ACIC_COLLABORATIVES = ("pediatric-asthma", "cyshcn-medical-home")
ACIC_FOCUS: dict[str, dict[str, float]] = {
    "pediatric-asthma": {
        "organization": 0.4,
        "community-linkages": 0.6,
        "self-management-support": 1.0,
        "decision-support": 1.0,
        "delivery-system-design": 0.9,
        "clinical-information-systems": 0.8,
        "integration": 0.7,
    },
    "cyshcn-medical-home": {
        "organization": 0.5,
        "community-linkages": 0.9,
        "self-management-support": 0.9,
        "decision-support": 0.6,
        "delivery-system-design": 1.0,
        "clinical-information-systems": 0.9,
        "integration": 0.8,
    },
}
"""How much of a team's gain each ACIC subscale shows, by collaborative."""
ACIC_GAIN = 4.5
"""Subscale points a team with its full improvement (effect 1.0) gains by the final wave."""
BLANK_AT_BASELINE = ("asthma-sandhills-rural-health", ("com-partnerships", "com-health-plans"))
"""A team that left two community-linkage items blank at baseline ("don't know")."""


@dataclass(frozen=True)
class ContentSummary:
    """Rows of improvement content the demo wrote."""

    change_concepts: int
    change_ideas: int
    pdsa_cycles: int
    assessments: int
    survey_responses: int


class _Content:
    """Accumulates the content rows."""

    def __init__(self, calendar: _Calendar) -> None:
        self.calendar = calendar
        self.rng = random.Random(CONTENT_SEED)  # noqa: S311 - demo data, not security
        self.rows: dict[type[Base], list[Row]] = {model: [] for model in INSERT_ORDER}
        self.ideas: dict[str, list[tuple[uuid.UUID, IdeaSpec]]] = {}

    def add(self, model: type[Base], **row: Any) -> None:
        self.rows[model].append(row)


def _sponsor_id(sponsor: str) -> uuid.UUID:
    return _uid("sponsor", sponsor)


def _resource_id(sponsor: str, title: str) -> uuid.UUID:
    assert any(r.sponsor == sponsor and r.title == title for r in RESOURCES), title
    return _uid(sponsor, "resource", _slug(title))


def _add_packages(content: _Content) -> None:
    at = content.calendar.setup_at
    for code, concepts in PACKAGES.items():
        spec = COLLABORATIVE_BY_CODE[code]
        sponsor_id = _sponsor_id(spec.sponsor)
        ideas: list[tuple[uuid.UUID, IdeaSpec]] = []
        for position, concept in enumerate(concepts):
            concept_id = _uid(spec.sponsor, "change-concept", code, _slug(concept.title))
            content.add(
                ChangeConcept,
                sponsor_id=sponsor_id,
                id=concept_id,
                collaborative_id=_uid(spec.sponsor, "collaborative", code),
                title=concept.title,
                description=concept.description,
                care_model_domains=[d.value for d in CareModelDomain if d in concept.domains],
                position=position,
                created_at=at,
                updated_at=at,
            )
            for index, title in enumerate(concept.resources):
                content.add(
                    ChangeConceptResource,
                    sponsor_id=sponsor_id,
                    concept_id=concept_id,
                    resource_id=_resource_id(spec.sponsor, title),
                    position=index,
                )
            for idea_position, idea in enumerate(concept.ideas):
                idea_id = _uid(spec.sponsor, "change-idea", code, _slug(idea.title))
                ideas.append((idea_id, idea))
                content.add(
                    ChangeIdea,
                    sponsor_id=sponsor_id,
                    id=idea_id,
                    concept_id=concept_id,
                    title=idea.title,
                    description=idea.description,
                    position=idea_position,
                    created_at=at,
                    updated_at=at,
                )
                for index, title in enumerate(idea.resources):
                    content.add(
                        ChangeIdeaResource,
                        sponsor_id=sponsor_id,
                        idea_id=idea_id,
                        resource_id=_resource_id(spec.sponsor, title),
                        position=index,
                    )
        content.ideas[code] = ideas


# --- PDSA cycles -------------------------------------------------------------------------------


def _last_active_month(team: TeamSpec) -> int:
    """The last month a team works in: before it withdraws or pauses, else the current month."""
    last = MONTHS  # the current month (data run to MONTHS - 1)
    if team.withdrawn_index is not None:
        last = min(last, team.withdrawn_index - 1)
    for index, note in team.notes:
        if "paused" in note:
            last = min(last, index - 1)
    return last


def _idea_order(
    ideas: list[tuple[uuid.UUID, IdeaSpec]], number: int
) -> list[tuple[uuid.UUID, IdeaSpec]]:
    """The team's first idea is the change it noted at LS1 (even teams) or another noted one;
    then the others in package order."""
    noted = {idea.note: (idea_id, idea) for idea_id, idea in ideas if idea.note is not None}
    first_note = (number // 2) % 4 if number % 2 == 0 else (number // 2 + 2) % 4
    first = noted.get(first_note, ideas[0])
    return [first, *(pair for pair in ideas if pair != first)]


def _acts(effect: float, chain: int) -> list[PdsaAct]:
    """The act decisions of a chain of cycles, by how well the team is doing."""
    if effect >= 0.95:
        return [PdsaAct.ADAPT, PdsaAct.ADOPT, PdsaAct.EXPAND]
    if effect >= 0.75:
        return [PdsaAct.ADAPT, PdsaAct.ADAPT, PdsaAct.ADOPT]
    if effect >= 0.5:
        return [PdsaAct.ADAPT, PdsaAct.ADOPT] if chain % 2 == 0 else [PdsaAct.ABANDON]
    return [PdsaAct.ABANDON] if chain % 2 else [PdsaAct.ADAPT, PdsaAct.ABANDON]


_SCOPES = ("one clinician for one week", "two clinicians for two weeks", "the whole team")
_SIZES = (5, 15, 40)


def _cycle_texts(idea: IdeaSpec, stage: int, act: PdsaAct | None, success: float) -> Row:
    """Plan, do, study and act text of the ``stage``-th cycle of a chain."""
    scope, size = _SCOPES[min(stage, 2)], _SIZES[min(stage, 2)]
    predicted = 80 if stage else 60
    observed = max(20, min(100, round(predicted * success)))
    texts: Row = {
        "title": f"{idea.title} ({scope})",
        "aim": f"Can we do this with {scope}? {idea.description}",
        "prediction": f"At least {predicted}% of about {size} eligible patients will get it.",
        "plan": f"Test with {scope}; the day-to-day lead tallies eligible patients on a log.",
        "what_happened": "",
        "study": "",
        "act_notes": "",
    }
    if act is None:
        return texts
    texts["what_happened"] = (
        f"Ran as planned with {scope}; {observed}% of eligible patients got it. "
        + ("Staff found it fit the visit flow." if observed >= predicted else "Busy days slipped.")
    )
    texts["study"] = f"{observed}% against a prediction of {predicted}%: " + (
        "as predicted or better." if observed >= predicted else "below the prediction."
    )
    texts["act_notes"] = {
        PdsaAct.ADOPT: "Make it standard work and watch the measure.",
        PdsaAct.ADAPT: "Change the workflow step that failed and test again on a larger scale.",
        PdsaAct.ABANDON: "Stop: the team will test a different idea from the package.",
        PdsaAct.EXPAND: "Spread to every clinician and to the sister site.",
    }[act]
    return texts


def _cycles(content: _Content, team: TeamSpec, number: int) -> Iterator[Row]:
    """Rows of one team's cycles (measure links added by the caller)."""
    collaborative: CollaborativeSpec = COLLABORATIVE_BY_CODE[team.collaborative]
    sponsor = collaborative.sponsor
    team_id = _uid(sponsor, "team", _team_code(team))
    calendar, rng = content.calendar, content.rng
    gap = 2 if team.effect >= 0.9 else 3 if team.effect >= 0.6 else 4
    last_month = _last_active_month(team)
    order = _idea_order(content.ideas[team.collaborative], number)
    chain, month = 0, collaborative.ls1_index
    while month <= last_month and chain < len(order):
        idea_id, idea = order[chain]
        previous: uuid.UUID | None = None
        for stage, act in enumerate(_acts(team.effect, chain)):
            start = calendar.month(month + stage // 2) + timedelta(days=3 + 14 * (stage % 2))
            start += timedelta(days=number % 4)
            if start >= calendar.today or month + stage // 2 > last_month:
                break
            end = start + timedelta(days=6 + 7 * stage)
            decided = end < calendar.today - timedelta(days=3)
            success = 0.7 + 0.4 * team.effect + rng.uniform(-0.1, 0.1)
            cycle_id = _uid(sponsor, "pdsa", _team_code(team), str(chain), str(stage))
            at = calendar.at(start - timedelta(days=2))
            yield {
                "sponsor_id": _sponsor_id(sponsor),
                "id": cycle_id,
                "team_id": team_id,
                "change_idea_id": idea_id,
                "follows_id": previous,
                "start_date": start,
                "end_date": end,
                "act": act if decided else None,
                "created_by": ACTOR,
                "updated_by": ACTOR,
                "created_at": at,
                "updated_at": calendar.at(end + timedelta(days=2)) if decided else at,
                "measures": idea.measures,
                **_cycle_texts(idea, stage, act if decided else None, success),
            }
            previous = cycle_id
        chain += 1
        month += gap


def _add_cycles(content: _Content) -> None:
    for number, team in _numbered_teams():
        sponsor = COLLABORATIVE_BY_CODE[team.collaborative].sponsor
        for row in _cycles(content, team, number):
            measures = row.pop("measures")
            content.add(PdsaCycle, **row)
            for code in measures:
                content.add(
                    PdsaCycleMeasure,
                    sponsor_id=row["sponsor_id"],
                    cycle_id=row["id"],
                    measure_id=_uid(sponsor, "measure", code),
                )


# --- IHI Assessment Scale ----------------------------------------------------------------------


def _floor_half(value: float) -> float:
    return math.floor(value * 2 + 1e-9) / 2


def faculty_score(team: TeamSpec, index: int) -> float:
    """The faculty's score of a team in month ``index`` (from prework on)."""
    collaborative = COLLABORATIVE_BY_CODE[team.collaborative]
    ls1 = collaborative.ls1_index
    if index < ls1 - 1:
        return 1.0
    if index < ls1:
        return 1.5
    progress = _progress(index, ls1, team.effect)
    score = 2.0 + 2.0 * progress
    ramp_done = ls1 + 4  # _progress reaches the team's effect after RAMP_MONTHS (4)
    if progress >= 0.9 and index >= ramp_done + 4:
        score += 0.5
    if team.effect >= 1.05 and index >= ramp_done + 8:
        score += 0.5
    return min(5.0, max(1.0, _floor_half(score)))


def _add_assessments(content: _Content) -> None:
    calendar = content.calendar
    for number, team in _numbered_teams():
        collaborative = COLLABORATIVE_BY_CODE[team.collaborative]
        sponsor = collaborative.sponsor
        team_code = _team_code(team)
        last = min(MONTHS - 1, _last_active_month(team))
        modest = number % 3 == 0  # a third of the teams rate themselves lower, not higher
        for index in range(collaborative.start_index, last + 1):
            faculty = faculty_score(team, index)
            early = index < collaborative.ls1_index + 6
            offset = -0.5 if modest and index >= collaborative.ls1_index else 0.5 if early else 0
            self_score = min(5.0, max(0.5, faculty + offset))
            # Scored in the first days of the next month, after the data are in.
            at = calendar.at(calendar.month(index + 1) + timedelta(days=6 + number % 5))
            for rater, score in (
                (AssessmentRater.FACULTY, faculty),
                (AssessmentRater.SELF, self_score),
            ):
                content.add(
                    Assessment,
                    sponsor_id=_sponsor_id(sponsor),
                    id=_uid(sponsor, "assessment", team_code, calendar.period(index), rater),
                    team_id=_uid(sponsor, "team", team_code),
                    period=calendar.period(index),
                    rater=rater,
                    score=score,
                    justification=(
                        LEVEL_NOTES[score]
                        if rater is AssessmentRater.FACULTY
                        else f"Team's view: {LEVELS[score].lower()}."
                    ),
                    recorded_by=ACTOR,
                    created_at=at,
                    updated_at=at,
                )


# --- ACIC --------------------------------------------------------------------------------------


def _add_instrument(content: _Content, sponsor: str, definition: InstrumentDefinition) -> None:
    sponsor_id = _sponsor_id(sponsor)
    instrument_id = _uid(sponsor, "instrument", definition.code)
    version_id = _uid(sponsor, "instrument", definition.code, definition.version)
    at = content.calendar.setup_at
    content.add(
        Instrument,
        sponsor_id=sponsor_id,
        id=instrument_id,
        code=definition.code,
        name=definition.name,
        description=definition.description,
        created_at=at,
        updated_at=at,
    )
    content.add(
        InstrumentVersion,
        sponsor_id=sponsor_id,
        id=version_id,
        instrument_id=instrument_id,
        version=definition.version,
        source=definition.source,
        scale=_scale_json(definition.scale),
        min_answered_share=definition.min_answered_share,
        created_at=at,
    )
    item_position = 0
    for position, section in enumerate(definition.sections):
        section_id = _uid(str(version_id), "section", section.code)
        content.add(
            InstrumentSection,
            sponsor_id=sponsor_id,
            id=section_id,
            version_id=version_id,
            code=section.code,
            title=section.title,
            position=position,
            scale=_scale_json(section.scale) if section.scale else None,
        )
        for item in section.items:
            content.add(
                InstrumentItem,
                sponsor_id=sponsor_id,
                id=_uid(str(version_id), "item", item.code),
                version_id=version_id,
                section_id=section_id,
                code=item.code,
                label=item.label,
                position=item_position,
            )
            item_position += 1


def _waves(collaborative: CollaborativeSpec, calendar: _Calendar) -> list[tuple[SurveyWave, int]]:
    """(wave, month index) of the ACIC: baseline in prework, midpoint at LS2, final at the
    congress — each only once it has happened."""
    schedule = _schedule(collaborative, calendar)
    sessions = [start for kind, _, start, _ in schedule.phases if kind.value == "LEARNING_SESSION"]
    congress = next(start for kind, _, start, _ in schedule.phases if kind.value == "CONGRESS")

    def index_of(day: date) -> int:
        first = calendar.first_month
        return (day.year - first.year) * 12 + day.month - first.month

    waves = [
        (SurveyWave.BASELINE, collaborative.start_index),
        (SurveyWave.MIDPOINT, index_of(sessions[1])),
        (SurveyWave.FINAL, index_of(congress)),
    ]
    return [(wave, index) for wave, index in waves if index < MONTHS]


def _add_acic_responses(content: _Content, definition: InstrumentDefinition) -> None:
    calendar, rng = content.calendar, content.rng
    for number, team in _numbered_teams():
        if team.collaborative not in ACIC_COLLABORATIVES:
            continue
        collaborative = COLLABORATIVE_BY_CODE[team.collaborative]
        sponsor, team_code = collaborative.sponsor, _team_code(team)
        focus = ACIC_FOCUS[team.collaborative]
        baseline = {s.code: rng.uniform(2.5, 5.0) for s in definition.sections}
        for wave, index in _waves(collaborative, calendar):
            if index > _last_active_month(team):
                continue
            progress = _progress(index, collaborative.ls1_index, team.effect)
            answers: dict[str, float] = {}
            for section in definition.sections:
                level = baseline[section.code] + ACIC_GAIN * progress * focus[section.code]
                for item in section.items:
                    value = round(level + rng.uniform(-1.2, 1.2))
                    answers[item.code] = float(min(11, max(0, value)))
            if wave is SurveyWave.BASELINE and team_code == BLANK_AT_BASELINE[0]:
                for code in BLANK_AT_BASELINE[1]:
                    del answers[code]
            day = calendar.month(index) + timedelta(days=18 + number % 7)
            day = min(day, calendar.today - timedelta(days=1))
            content.add(
                SurveyResponse,
                sponsor_id=_sponsor_id(sponsor),
                id=_uid(sponsor, "survey", team_code, definition.code, wave.value),
                team_id=_uid(sponsor, "team", team_code),
                instrument_id=_uid(sponsor, "instrument", definition.code),
                version_id=_uid(sponsor, "instrument", definition.code, definition.version),
                wave=wave,
                wave_key=wave.value,
                administered_on=day,
                answers=answers,
                recorded_by=ACTOR,
                created_at=calendar.at(day),
                updated_at=calendar.at(day),
            )


def build_content_rows(today: date) -> dict[type[Base], list[Row]]:
    """Every content row, per model in foreign-key order (pure: no database)."""
    content = _Content(_Calendar.ending_before(today))
    _add_packages(content)
    _add_cycles(content)
    _add_assessments(content)
    acic = read_definition(bundled_instruments()[ACIC])
    for sponsor in ACIC_SPONSORS:
        _add_instrument(content, sponsor, acic)
    _add_acic_responses(content, acic)
    return content.rows


async def seed_demo_content(session: AsyncSession, *, today: date) -> ContentSummary:
    """Insert the content rows (the demo's base rows must be in the session already)."""
    rows = build_content_rows(today)
    for model in INSERT_ORDER:
        if rows[model]:
            await session.execute(insert(model), rows[model])
    return ContentSummary(
        change_concepts=len(rows[ChangeConcept]),
        change_ideas=len(rows[ChangeIdea]),
        pdsa_cycles=len(rows[PdsaCycle]),
        assessments=len(rows[Assessment]),
        survey_responses=len(rows[SurveyResponse]),
    )
