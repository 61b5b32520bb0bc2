"""Improvement content: change packages, PDSA cycles and IHI assessments — reads and writes.

Reads are scoped to one sponsor and batched for DataLoaders (results in key order). Writes take
an :class:`~db.queries.audit.Actor`, run in the caller's transaction and record an audit event
with the row before and after.

Team-level writes (PDSA cycles, assessments) take ``team_ids``: None lets the caller write for
any team of its sponsor (faculty and staff), a set restricts it to those teams (team-bound EHR
clients); a team outside the set raises :class:`TeamNotPermitted`.

Exceptions: :class:`~db.errors.NotFound` for codes and ids the sponsor does not have,
:class:`~db.errors.Conflict` for a title already used in the same concept or package,
:class:`~db.errors.InvalidInput` for values the domain refuses (dates out of order, a change
idea of another collaborative, a PDSA chain that would loop, a score off the IHI scale), all with
the input field they concern.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any

from sqlalchemy import delete, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from analytics.assessment_scale import score_problem
from db.base import utcnow
from db.enums import AssessmentRater, CareModelDomain, PdsaAct
from db.errors import Conflict, DomainError, InvalidInput, NotFound
from db.models import (
    Assessment,
    ChangeConcept,
    ChangeConceptResource,
    ChangeIdea,
    ChangeIdeaResource,
    Measure,
    PdsaCycle,
    PdsaCycleMeasure,
    Resource,
    Team,
)
from db.queries.audit import Actor, record_event, snapshot
from db.queries.collaboratives import get_collaborative_by_code
from db.queries.teams import get_team_by_code

MAX_RESOURCES = 50
"""Most catalog resources one concept or idea may link."""
MAX_MEASURES = 20
"""Most measures one PDSA cycle may name."""
MAX_CHAIN = 1_000
"""Longest chain of PDSA cycles walked when checking for loops."""


class TeamNotPermitted(DomainError):
    """The caller may write only for its own teams, and this is another one."""

    code = "FORBIDDEN"


def check_team(team: Team, team_ids: frozenset[uuid.UUID] | None, field: str = "team") -> None:
    """TeamNotPermitted unless the caller may write for ``team``."""
    if team_ids is not None and team.id not in team_ids:
        raise TeamNotPermitted("this client may write for its own teams only", field=field)


async def team_for_write(
    session: AsyncSession, actor: Actor, code: str, team_ids: frozenset[uuid.UUID] | None
) -> Team:
    """The team a write names by code, which the caller must be allowed to write for."""
    team = await get_team_by_code(session, actor.sponsor_id, code)
    if team is None:
        raise NotFound(f"no team {code!r}", field="team")
    check_team(team, team_ids)
    return team


def _grouped(rows: Sequence[Any], key: str, ids: Sequence[uuid.UUID]) -> list[list[Any]]:
    """Rows grouped by the attribute ``key``, one list per id in the order of ``ids``."""
    groups: defaultdict[uuid.UUID, list[Any]] = defaultdict(list)
    for row in rows:
        groups[getattr(row, key)].append(row)
    return [groups[i] for i in ids]


# --- change packages: reads --------------------------------------------------------------------


async def change_concepts_by_collaborative_ids(
    session: AsyncSession, sponsor_id: uuid.UUID, ids: Sequence[uuid.UUID]
) -> list[list[ChangeConcept]]:
    """Each collaborative's change concepts by position, in the order of ``ids``."""
    rows = (
        await session.scalars(
            select(ChangeConcept)
            .where(ChangeConcept.sponsor_id == sponsor_id, ChangeConcept.collaborative_id.in_(ids))
            .order_by(ChangeConcept.position, ChangeConcept.title, ChangeConcept.id)
        )
    ).all()
    return _grouped(rows, "collaborative_id", ids)


async def change_ideas_by_concept_ids(
    session: AsyncSession, sponsor_id: uuid.UUID, ids: Sequence[uuid.UUID]
) -> list[list[ChangeIdea]]:
    """Each concept's change ideas by position, in the order of ``ids``."""
    rows = (
        await session.scalars(
            select(ChangeIdea)
            .where(ChangeIdea.sponsor_id == sponsor_id, ChangeIdea.concept_id.in_(ids))
            .order_by(ChangeIdea.position, ChangeIdea.title, ChangeIdea.id)
        )
    ).all()
    return _grouped(rows, "concept_id", ids)


async def change_concepts_by_ids(
    session: AsyncSession, sponsor_id: uuid.UUID, ids: Sequence[uuid.UUID]
) -> list[ChangeConcept | None]:
    """Change concepts of one sponsor in the order of ``ids`` (None where missing)."""
    rows = (
        await session.scalars(
            select(ChangeConcept).where(
                ChangeConcept.sponsor_id == sponsor_id, ChangeConcept.id.in_(ids)
            )
        )
    ).all()
    by_id = {row.id: row for row in rows}
    return [by_id.get(i) for i in ids]


async def change_ideas_by_ids(
    session: AsyncSession, sponsor_id: uuid.UUID, ids: Sequence[uuid.UUID]
) -> list[ChangeIdea | None]:
    """Change ideas of one sponsor in the order of ``ids`` (None where missing)."""
    rows = (
        await session.scalars(
            select(ChangeIdea).where(ChangeIdea.sponsor_id == sponsor_id, ChangeIdea.id.in_(ids))
        )
    ).all()
    by_id = {row.id: row for row in rows}
    return [by_id.get(i) for i in ids]


async def resources_by_change_concept_ids(
    session: AsyncSession, sponsor_id: uuid.UUID, ids: Sequence[uuid.UUID]
) -> list[list[Resource]]:
    """Each concept's linked catalog resources in link order, in the order of ``ids``."""
    rows = (
        await session.execute(
            select(ChangeConceptResource.concept_id, Resource)
            .join(
                Resource,
                (Resource.sponsor_id == ChangeConceptResource.sponsor_id)
                & (Resource.id == ChangeConceptResource.resource_id),
            )
            .where(
                ChangeConceptResource.sponsor_id == sponsor_id,
                ChangeConceptResource.concept_id.in_(ids),
            )
            .order_by(ChangeConceptResource.position, Resource.title, Resource.id)
        )
    ).all()
    groups: defaultdict[uuid.UUID, list[Resource]] = defaultdict(list)
    for concept_id, resource in rows:
        groups[concept_id].append(resource)
    return [groups[i] for i in ids]


async def resources_by_change_idea_ids(
    session: AsyncSession, sponsor_id: uuid.UUID, ids: Sequence[uuid.UUID]
) -> list[list[Resource]]:
    """Each idea's linked catalog resources in link order, in the order of ``ids``."""
    rows = (
        await session.execute(
            select(ChangeIdeaResource.idea_id, Resource)
            .join(
                Resource,
                (Resource.sponsor_id == ChangeIdeaResource.sponsor_id)
                & (Resource.id == ChangeIdeaResource.resource_id),
            )
            .where(ChangeIdeaResource.sponsor_id == sponsor_id, ChangeIdeaResource.idea_id.in_(ids))
            .order_by(ChangeIdeaResource.position, Resource.title, Resource.id)
        )
    ).all()
    groups: defaultdict[uuid.UUID, list[Resource]] = defaultdict(list)
    for idea_id, resource in rows:
        groups[idea_id].append(resource)
    return [groups[i] for i in ids]


# --- change packages: writes -------------------------------------------------------------------


@dataclass(frozen=True)
class ChangeConceptChanges:
    """Fields of a change concept to set; None leaves a field as it is (on update)."""

    title: str | None = None
    description: str | None = None
    care_model_domains: Sequence[CareModelDomain] | None = None
    resource_ids: Sequence[uuid.UUID] | None = None
    position: int | None = None


@dataclass(frozen=True)
class ChangeIdeaChanges:
    """Fields of a change idea to set; None leaves a field as it is (on update)."""

    title: str | None = None
    description: str | None = None
    resource_ids: Sequence[uuid.UUID] | None = None
    position: int | None = None


def _domains(domains: Sequence[CareModelDomain]) -> list[str]:
    """Distinct domains in the Care Model's order."""
    chosen = set(domains)
    return [domain.value for domain in CareModelDomain if domain in chosen]


async def _check_resources(
    session: AsyncSession, sponsor_id: uuid.UUID, ids: Sequence[uuid.UUID]
) -> list[uuid.UUID]:
    """Distinct resource ids in order, every one a resource of the sponsor."""
    distinct = list(dict.fromkeys(ids))
    if len(distinct) > MAX_RESOURCES:
        raise InvalidInput(f"link at most {MAX_RESOURCES} resources", field="resources")
    if distinct:
        found = set(
            (
                await session.scalars(
                    select(Resource.id).where(
                        Resource.sponsor_id == sponsor_id, Resource.id.in_(distinct)
                    )
                )
            ).all()
        )
        if len(found) != len(distinct):
            raise NotFound("a linked resource does not exist", field="resources")
    return distinct


async def _concept_resource_ids(session: AsyncSession, concept: ChangeConcept) -> list[str]:
    ids = (
        await session.scalars(
            select(ChangeConceptResource.resource_id)
            .where(
                ChangeConceptResource.sponsor_id == concept.sponsor_id,
                ChangeConceptResource.concept_id == concept.id,
            )
            .order_by(ChangeConceptResource.position)
        )
    ).all()
    return [str(i) for i in ids]


async def _idea_resource_ids(session: AsyncSession, idea: ChangeIdea) -> list[str]:
    ids = (
        await session.scalars(
            select(ChangeIdeaResource.resource_id)
            .where(
                ChangeIdeaResource.sponsor_id == idea.sponsor_id,
                ChangeIdeaResource.idea_id == idea.id,
            )
            .order_by(ChangeIdeaResource.position)
        )
    ).all()
    return [str(i) for i in ids]


async def _link_concept_resources(
    session: AsyncSession, concept: ChangeConcept, resource_ids: Sequence[uuid.UUID]
) -> None:
    """Replace the concept's resource links (positions follow the list)."""
    await session.execute(
        delete(ChangeConceptResource).where(
            ChangeConceptResource.sponsor_id == concept.sponsor_id,
            ChangeConceptResource.concept_id == concept.id,
        )
    )
    session.add_all(
        ChangeConceptResource(
            sponsor_id=concept.sponsor_id, concept_id=concept.id, resource_id=rid, position=index
        )
        for index, rid in enumerate(resource_ids)
    )
    await session.flush()


async def _link_idea_resources(
    session: AsyncSession, idea: ChangeIdea, resource_ids: Sequence[uuid.UUID]
) -> None:
    """Replace the idea's resource links (positions follow the list)."""
    await session.execute(
        delete(ChangeIdeaResource).where(
            ChangeIdeaResource.sponsor_id == idea.sponsor_id,
            ChangeIdeaResource.idea_id == idea.id,
        )
    )
    session.add_all(
        ChangeIdeaResource(
            sponsor_id=idea.sponsor_id, idea_id=idea.id, resource_id=rid, position=index
        )
        for index, rid in enumerate(resource_ids)
    )
    await session.flush()


async def _concept_snapshot(session: AsyncSession, concept: ChangeConcept) -> dict[str, Any]:
    values = snapshot(concept)
    values["resources"] = await _concept_resource_ids(session, concept)
    return values


async def _idea_snapshot(session: AsyncSession, idea: ChangeIdea) -> dict[str, Any]:
    values = snapshot(idea)
    values["resources"] = await _idea_resource_ids(session, idea)
    return values


async def _flush_unique(session: AsyncSession, message: str) -> None:
    """Flush; a unique key taken (a title used twice) becomes a Conflict on ``title``."""
    try:
        await session.flush()
    except IntegrityError as exc:
        raise Conflict(message, field="title") from exc


async def add_change_concept(
    session: AsyncSession, actor: Actor, *, collaborative_code: str, changes: ChangeConceptChanges
) -> ChangeConcept:
    """Add a change concept to a collaborative's change package (last unless a position is
    given); audited."""
    if changes.title is None:
        raise InvalidInput("title is required", field="title")
    collaborative = await get_collaborative_by_code(session, actor.sponsor_id, collaborative_code)
    if collaborative is None:
        raise NotFound(f"no collaborative {collaborative_code!r}", field="collaborative")
    resource_ids = await _check_resources(session, actor.sponsor_id, changes.resource_ids or ())
    taken = await session.scalar(
        select(ChangeConcept.id).where(
            ChangeConcept.sponsor_id == actor.sponsor_id,
            ChangeConcept.collaborative_id == collaborative.id,
            ChangeConcept.title == changes.title,
        )
    )
    message = f"the change package already has a concept {changes.title!r}"
    if taken is not None:
        raise Conflict(message, field="title")
    position = changes.position
    if position is None:
        last = await session.scalar(
            select(func.max(ChangeConcept.position)).where(
                ChangeConcept.sponsor_id == actor.sponsor_id,
                ChangeConcept.collaborative_id == collaborative.id,
            )
        )
        position = 0 if last is None else last + 1
    concept = ChangeConcept(
        sponsor_id=actor.sponsor_id,
        id=uuid.uuid4(),
        collaborative_id=collaborative.id,
        title=changes.title,
        description=changes.description or "",
        care_model_domains=_domains(changes.care_model_domains or ()),
        position=position,
    )
    session.add(concept)
    await _flush_unique(session, message)
    await _link_concept_resources(session, concept, resource_ids)
    await record_event(
        session,
        actor,
        action="change_concept.create",
        entity_type="ChangeConcept",
        entity_id=concept.id,
        before=None,
        after=await _concept_snapshot(session, concept),
    )
    return concept


async def update_change_concept(
    session: AsyncSession, actor: Actor, concept_id: uuid.UUID, changes: ChangeConceptChanges
) -> ChangeConcept:
    """Change a concept's fields; a given resource list replaces the links; audited."""
    concept = (await change_concepts_by_ids(session, actor.sponsor_id, [concept_id]))[0]
    if concept is None:
        raise NotFound("no such change concept", field="id")
    before = await _concept_snapshot(session, concept)
    resource_ids = (
        None
        if changes.resource_ids is None
        else await _check_resources(session, actor.sponsor_id, changes.resource_ids)
    )
    if changes.title is not None:
        concept.title = changes.title
    if changes.description is not None:
        concept.description = changes.description
    if changes.care_model_domains is not None:
        concept.care_model_domains = _domains(changes.care_model_domains)
    if changes.position is not None:
        concept.position = changes.position
    concept.updated_at = utcnow()
    await _flush_unique(session, f"the change package already has a concept {concept.title!r}")
    if resource_ids is not None:
        await _link_concept_resources(session, concept, resource_ids)
    await record_event(
        session,
        actor,
        action="change_concept.update",
        entity_type="ChangeConcept",
        entity_id=concept.id,
        before=before,
        after=await _concept_snapshot(session, concept),
    )
    return concept


async def add_change_idea(
    session: AsyncSession, actor: Actor, *, concept_id: uuid.UUID, changes: ChangeIdeaChanges
) -> ChangeIdea:
    """Add a change idea under a concept (last unless a position is given); audited."""
    if changes.title is None:
        raise InvalidInput("title is required", field="title")
    concept = (await change_concepts_by_ids(session, actor.sponsor_id, [concept_id]))[0]
    if concept is None:
        raise NotFound("no such change concept", field="concept")
    resource_ids = await _check_resources(session, actor.sponsor_id, changes.resource_ids or ())
    message = f"the concept already has an idea {changes.title!r}"
    taken = await session.scalar(
        select(ChangeIdea.id).where(
            ChangeIdea.sponsor_id == actor.sponsor_id,
            ChangeIdea.concept_id == concept.id,
            ChangeIdea.title == changes.title,
        )
    )
    if taken is not None:
        raise Conflict(message, field="title")
    position = changes.position
    if position is None:
        last = await session.scalar(
            select(func.max(ChangeIdea.position)).where(
                ChangeIdea.sponsor_id == actor.sponsor_id, ChangeIdea.concept_id == concept.id
            )
        )
        position = 0 if last is None else last + 1
    idea = ChangeIdea(
        sponsor_id=actor.sponsor_id,
        id=uuid.uuid4(),
        concept_id=concept.id,
        title=changes.title,
        description=changes.description or "",
        position=position,
    )
    session.add(idea)
    await _flush_unique(session, message)
    await _link_idea_resources(session, idea, resource_ids)
    await record_event(
        session,
        actor,
        action="change_idea.create",
        entity_type="ChangeIdea",
        entity_id=idea.id,
        before=None,
        after=await _idea_snapshot(session, idea),
    )
    return idea


async def update_change_idea(
    session: AsyncSession, actor: Actor, idea_id: uuid.UUID, changes: ChangeIdeaChanges
) -> ChangeIdea:
    """Change an idea's fields; a given resource list replaces the links; audited."""
    idea = (await change_ideas_by_ids(session, actor.sponsor_id, [idea_id]))[0]
    if idea is None:
        raise NotFound("no such change idea", field="id")
    before = await _idea_snapshot(session, idea)
    resource_ids = (
        None
        if changes.resource_ids is None
        else await _check_resources(session, actor.sponsor_id, changes.resource_ids)
    )
    if changes.title is not None:
        idea.title = changes.title
    if changes.description is not None:
        idea.description = changes.description
    if changes.position is not None:
        idea.position = changes.position
    idea.updated_at = utcnow()
    await _flush_unique(session, f"the concept already has an idea {idea.title!r}")
    if resource_ids is not None:
        await _link_idea_resources(session, idea, resource_ids)
    await record_event(
        session,
        actor,
        action="change_idea.update",
        entity_type="ChangeIdea",
        entity_id=idea.id,
        before=before,
        after=await _idea_snapshot(session, idea),
    )
    return idea


# --- PDSA cycles: reads ------------------------------------------------------------------------


def cycle_period(cycle: PdsaCycle) -> str:
    """The month a cycle marks on a run chart: the month it starts (``YYYY-MM``)."""
    return f"{cycle.start_date:%Y-%m}"


_CYCLE_ORDER = (PdsaCycle.start_date, PdsaCycle.created_at, PdsaCycle.id)


async def pdsa_cycles_by_team_ids(
    session: AsyncSession, sponsor_id: uuid.UUID, ids: Sequence[uuid.UUID]
) -> list[list[PdsaCycle]]:
    """Each team's PDSA cycles, oldest start first, in the order of ``ids``."""
    rows = (
        await session.scalars(
            select(PdsaCycle)
            .where(PdsaCycle.sponsor_id == sponsor_id, PdsaCycle.team_id.in_(ids))
            .order_by(*_CYCLE_ORDER)
        )
    ).all()
    return _grouped(rows, "team_id", ids)


async def pdsa_cycles_by_ids(
    session: AsyncSession, sponsor_id: uuid.UUID, ids: Sequence[uuid.UUID]
) -> list[PdsaCycle | None]:
    """PDSA cycles of one sponsor in the order of ``ids`` (None where missing)."""
    rows = (
        await session.scalars(
            select(PdsaCycle).where(PdsaCycle.sponsor_id == sponsor_id, PdsaCycle.id.in_(ids))
        )
    ).all()
    by_id = {row.id: row for row in rows}
    return [by_id.get(i) for i in ids]


async def measure_ids_by_pdsa_cycle_ids(
    session: AsyncSession, sponsor_id: uuid.UUID, ids: Sequence[uuid.UUID]
) -> list[list[uuid.UUID]]:
    """Each cycle's linked measures (ids, by measure code), in the order of ``ids``."""
    rows = (
        await session.execute(
            select(PdsaCycleMeasure.cycle_id, PdsaCycleMeasure.measure_id)
            .join(
                Measure,
                (Measure.sponsor_id == PdsaCycleMeasure.sponsor_id)
                & (Measure.id == PdsaCycleMeasure.measure_id),
            )
            .where(PdsaCycleMeasure.sponsor_id == sponsor_id, PdsaCycleMeasure.cycle_id.in_(ids))
            .order_by(Measure.code)
        )
    ).all()
    groups: defaultdict[uuid.UUID, list[uuid.UUID]] = defaultdict(list)
    for cycle_id, measure_id in rows:
        groups[cycle_id].append(measure_id)
    return [groups[i] for i in ids]


TeamMeasure = tuple[uuid.UUID, uuid.UUID]
"""(team id, measure id): the key of a series' PDSA annotations."""


async def pdsa_cycles_by_team_measures(
    session: AsyncSession, sponsor_id: uuid.UUID, keys: Sequence[TeamMeasure]
) -> list[list[PdsaCycle]]:
    """For each (team, measure), the team's cycles linked to the measure, oldest first.

    One statement for the whole batch (every series of a dashboard): the teams and measures of
    all keys are read together and the pairs not asked for are dropped.
    """
    team_ids = {team_id for team_id, _ in keys}
    measure_ids = {measure_id for _, measure_id in keys}
    rows = (
        await session.execute(
            select(PdsaCycleMeasure.measure_id, PdsaCycle)
            .join(
                PdsaCycle,
                (PdsaCycle.sponsor_id == PdsaCycleMeasure.sponsor_id)
                & (PdsaCycle.id == PdsaCycleMeasure.cycle_id),
            )
            .where(
                PdsaCycleMeasure.sponsor_id == sponsor_id,
                PdsaCycleMeasure.measure_id.in_(measure_ids),
                PdsaCycle.team_id.in_(team_ids),
            )
            .order_by(*_CYCLE_ORDER)
        )
    ).all()
    groups: defaultdict[TeamMeasure, list[PdsaCycle]] = defaultdict(list)
    for measure_id, cycle in rows:
        groups[(cycle.team_id, measure_id)].append(cycle)
    return [groups[key] for key in keys]


# --- PDSA cycles: writes -----------------------------------------------------------------------


@dataclass(frozen=True)
class PdsaCycleChanges:
    """Fields of a PDSA cycle to set; None leaves a field as it is (on update).

    ``measure_codes``, when given, replace the linked measures.
    """

    title: str | None = None
    change_idea_id: uuid.UUID | None = None
    follows_id: uuid.UUID | None = None
    aim: str | None = None
    prediction: str | None = None
    plan: str | None = None
    start_date: date | None = None
    end_date: date | None = None
    what_happened: str | None = None
    study: str | None = None
    act: PdsaAct | None = None
    act_notes: str | None = None
    measure_codes: Sequence[str] | None = None


async def _measure_ids(
    session: AsyncSession, sponsor_id: uuid.UUID, codes: Sequence[str]
) -> list[uuid.UUID]:
    distinct = list(dict.fromkeys(codes))
    if len(distinct) > MAX_MEASURES:
        raise InvalidInput(f"link at most {MAX_MEASURES} measures", field="measures")
    if not distinct:
        return []
    rows = (
        await session.execute(
            select(Measure.code, Measure.id).where(
                Measure.sponsor_id == sponsor_id, Measure.code.in_(distinct)
            )
        )
    ).all()
    by_code = {code: measure_id for code, measure_id in rows}
    missing = [code for code in distinct if code not in by_code]
    if missing:
        raise NotFound(f"no measure {missing[0]!r}", field="measures")
    return [by_code[code] for code in distinct]


async def _check_change_idea(session: AsyncSession, team: Team, idea_id: uuid.UUID) -> ChangeIdea:
    """The idea, which must belong to the change package of the team's collaborative."""
    found = (
        await session.execute(
            select(ChangeIdea, ChangeConcept.collaborative_id)
            .join(
                ChangeConcept,
                (ChangeConcept.sponsor_id == ChangeIdea.sponsor_id)
                & (ChangeConcept.id == ChangeIdea.concept_id),
            )
            .where(ChangeIdea.sponsor_id == team.sponsor_id, ChangeIdea.id == idea_id)
        )
    ).first()
    if found is None:
        raise NotFound("no such change idea", field="changeIdea")
    idea, collaborative_id = found
    if collaborative_id != team.collaborative_id:
        raise InvalidInput(
            "the change idea belongs to another collaborative's change package",
            field="changeIdea",
        )
    return idea


async def _check_follows(
    session: AsyncSession, team: Team, follows_id: uuid.UUID, cycle_id: uuid.UUID | None
) -> None:
    """The earlier cycle exists, is the same team's, and following it makes no loop."""
    previous = (await pdsa_cycles_by_ids(session, team.sponsor_id, [follows_id]))[0]
    if previous is None:
        raise NotFound("no such PDSA cycle to follow", field="follows")
    if previous.team_id != team.id:
        raise InvalidInput("a cycle follows a cycle of the same team", field="follows")
    seen: set[uuid.UUID] = set()
    current: PdsaCycle | None = previous
    while current is not None and len(seen) < MAX_CHAIN:
        if current.id == cycle_id:
            raise InvalidInput("a cycle cannot follow itself or a cycle after it", field="follows")
        seen.add(current.id)
        if current.follows_id is None or current.follows_id in seen:
            break
        current = (await pdsa_cycles_by_ids(session, team.sponsor_id, [current.follows_id]))[0]


def _check_dates(start: date | None, end: date | None) -> None:
    if start is not None and end is not None and end < start:
        raise InvalidInput("the end date is before the start date", field="endDate")


async def _pdsa_snapshot(session: AsyncSession, cycle: PdsaCycle) -> dict[str, Any]:
    values = snapshot(cycle)
    measure_ids = (await measure_ids_by_pdsa_cycle_ids(session, cycle.sponsor_id, [cycle.id]))[0]
    values["measures"] = [str(i) for i in measure_ids]
    return values


async def _replace_measures(
    session: AsyncSession, cycle: PdsaCycle, measure_ids: Sequence[uuid.UUID]
) -> None:
    await session.execute(
        delete(PdsaCycleMeasure).where(
            PdsaCycleMeasure.sponsor_id == cycle.sponsor_id, PdsaCycleMeasure.cycle_id == cycle.id
        )
    )
    session.add_all(
        PdsaCycleMeasure(sponsor_id=cycle.sponsor_id, cycle_id=cycle.id, measure_id=measure_id)
        for measure_id in measure_ids
    )
    await session.flush()


_TEXT_FIELDS = ("title", "aim", "prediction", "plan", "what_happened", "study", "act_notes")


async def record_pdsa_cycle(
    session: AsyncSession,
    actor: Actor,
    *,
    team_code: str,
    changes: PdsaCycleChanges,
    team_ids: frozenset[uuid.UUID] | None,
) -> PdsaCycle:
    """Record a team's PDSA cycle (planned, running or finished); audited."""
    if changes.title is None:
        raise InvalidInput("title is required", field="title")
    if changes.start_date is None:
        raise InvalidInput("startDate is required", field="startDate")
    _check_dates(changes.start_date, changes.end_date)
    team = await team_for_write(session, actor, team_code, team_ids)
    if changes.change_idea_id is not None:
        await _check_change_idea(session, team, changes.change_idea_id)
    if changes.follows_id is not None:
        await _check_follows(session, team, changes.follows_id, None)
    measure_ids = await _measure_ids(session, actor.sponsor_id, changes.measure_codes or ())
    cycle = PdsaCycle(
        sponsor_id=actor.sponsor_id,
        id=uuid.uuid4(),
        team_id=team.id,
        change_idea_id=changes.change_idea_id,
        follows_id=changes.follows_id,
        start_date=changes.start_date,
        end_date=changes.end_date,
        act=changes.act,
        created_by=actor.client_id,
        updated_by=actor.client_id,
        **{field: getattr(changes, field) or "" for field in _TEXT_FIELDS},
    )
    session.add(cycle)
    await session.flush()
    await _replace_measures(session, cycle, measure_ids)
    await record_event(
        session,
        actor,
        action="pdsa_cycle.create",
        entity_type="PdsaCycle",
        entity_id=cycle.id,
        before=None,
        after=await _pdsa_snapshot(session, cycle),
    )
    return cycle


async def update_pdsa_cycle(
    session: AsyncSession,
    actor: Actor,
    cycle_id: uuid.UUID,
    changes: PdsaCycleChanges,
    *,
    team_ids: frozenset[uuid.UUID] | None,
) -> PdsaCycle:
    """Change a PDSA cycle (e.g. record what happened, the study and the act); audited."""
    cycle = (await pdsa_cycles_by_ids(session, actor.sponsor_id, [cycle_id]))[0]
    if cycle is None:
        raise NotFound("no such PDSA cycle", field="id")
    team = (
        await session.scalars(
            select(Team).where(Team.sponsor_id == cycle.sponsor_id, Team.id == cycle.team_id)
        )
    ).one()
    check_team(team, team_ids, field="id")
    before = await _pdsa_snapshot(session, cycle)
    _check_dates(changes.start_date or cycle.start_date, changes.end_date or cycle.end_date)
    if changes.change_idea_id is not None:
        await _check_change_idea(session, team, changes.change_idea_id)
        cycle.change_idea_id = changes.change_idea_id
    if changes.follows_id is not None:
        await _check_follows(session, team, changes.follows_id, cycle.id)
        cycle.follows_id = changes.follows_id
    measure_ids = (
        None
        if changes.measure_codes is None
        else await _measure_ids(session, actor.sponsor_id, changes.measure_codes)
    )
    for field in (*_TEXT_FIELDS, "start_date", "end_date", "act"):
        value = getattr(changes, field)
        if value is not None:
            setattr(cycle, field, value)
    cycle.updated_by = actor.client_id
    cycle.updated_at = utcnow()
    await session.flush()
    if measure_ids is not None:
        await _replace_measures(session, cycle, measure_ids)
    await record_event(
        session,
        actor,
        action="pdsa_cycle.update",
        entity_type="PdsaCycle",
        entity_id=cycle.id,
        before=before,
        after=await _pdsa_snapshot(session, cycle),
    )
    return cycle


# --- IHI Assessment Scale ----------------------------------------------------------------------


async def assessments_by_team_ids(
    session: AsyncSession, sponsor_id: uuid.UUID, ids: Sequence[uuid.UUID]
) -> list[list[Assessment]]:
    """Each team's assessments by period then rater (FACULTY first), in the order of ``ids``."""
    rows = (
        await session.scalars(
            select(Assessment)
            .where(Assessment.sponsor_id == sponsor_id, Assessment.team_id.in_(ids))
            .order_by(Assessment.period, Assessment.rater, Assessment.id)
        )
    ).all()
    return _grouped(rows, "team_id", ids)


async def assessments_by_ids(
    session: AsyncSession, sponsor_id: uuid.UUID, ids: Sequence[uuid.UUID]
) -> list[Assessment | None]:
    """Assessments of one sponsor in the order of ``ids`` (None where missing)."""
    rows = (
        await session.scalars(
            select(Assessment).where(Assessment.sponsor_id == sponsor_id, Assessment.id.in_(ids))
        )
    ).all()
    by_id = {row.id: row for row in rows}
    return [by_id.get(i) for i in ids]


CollaborativePeriod = tuple[uuid.UUID, str]
"""(collaborative id, period): the key of an assessment summary."""


async def assessments_by_collaborative_periods(
    session: AsyncSession, sponsor_id: uuid.UUID, keys: Sequence[CollaborativePeriod]
) -> list[list[Assessment]]:
    """For each (collaborative, period), the assessments of the collaborative's teams in that
    month, by team code then rater; one statement for the whole batch."""
    collaborative_ids = {key[0] for key in keys}
    periods = {key[1] for key in keys}
    rows = (
        await session.execute(
            select(Team.collaborative_id, Assessment)
            .join(
                Team,
                (Team.sponsor_id == Assessment.sponsor_id) & (Team.id == Assessment.team_id),
            )
            .where(
                Assessment.sponsor_id == sponsor_id,
                Team.collaborative_id.in_(collaborative_ids),
                Assessment.period.in_(periods),
            )
            .order_by(Team.code, Assessment.rater)
        )
    ).all()
    groups: defaultdict[CollaborativePeriod, list[Assessment]] = defaultdict(list)
    for collaborative_id, assessment in rows:
        groups[(collaborative_id, assessment.period)].append(assessment)
    return [groups[key] for key in keys]


@dataclass(frozen=True)
class AssessmentInput:
    """One score on the IHI Assessment Scale."""

    team_code: str
    period: str
    rater: AssessmentRater
    score: float
    justification: str = ""


def check_score(score: float) -> None:
    """InvalidInput on ``score`` unless it is a score of the IHI scale (0.5 to 5.0 by 0.5)."""
    problem = score_problem(score)
    if problem is not None:
        raise InvalidInput(problem, field="score")


async def record_assessment(
    session: AsyncSession,
    actor: Actor,
    assessment: AssessmentInput,
    *,
    team_ids: frozenset[uuid.UUID] | None,
) -> tuple[Assessment, bool]:
    """Record a team's score for a month by one rater; a second score for the same (team,
    period, rater) replaces the first (audited as ``assessment.replace``). Returns the row and
    whether it replaced one. Months after the current one cannot be scored yet."""
    check_score(assessment.score)
    if assessment.period > f"{utcnow():%Y-%m}":
        raise InvalidInput("a month that has not started cannot be assessed", field="period")
    team = await team_for_write(session, actor, assessment.team_code, team_ids)
    row = await session.scalar(
        select(Assessment).where(
            Assessment.sponsor_id == team.sponsor_id,
            Assessment.team_id == team.id,
            Assessment.period == assessment.period,
            Assessment.rater == assessment.rater,
        )
    )
    before = snapshot(row) if row is not None else None
    if row is None:
        row = Assessment(
            sponsor_id=team.sponsor_id,
            id=uuid.uuid4(),
            team_id=team.id,
            period=assessment.period,
            rater=assessment.rater,
            score=assessment.score,
            justification=assessment.justification,
            recorded_by=actor.client_id,
        )
        session.add(row)
    else:
        row.score = assessment.score
        row.justification = assessment.justification
        row.recorded_by = actor.client_id
        row.updated_at = utcnow()
    try:
        await session.flush()
    except IntegrityError as exc:  # a concurrent first score for the same key
        raise Conflict("the team was just assessed for this month; retry", field="period") from exc
    await record_event(
        session,
        actor,
        action="assessment.replace" if before is not None else "assessment.record",
        entity_type="Assessment",
        entity_id=row.id,
        before=before,
        after=snapshot(row),
    )
    return row, before is not None
