"""``node(id:)`` for improvement content: change concepts and ideas, PDSA cycles, assessments,
instruments and their versions, survey responses (all need ``program:read``).

Each resolves through its DataLoader (scoped to the caller's sponsor). A team-bound client gets
null for another team's cycle, assessment or response, as for a missing object.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable

from schema.assessments.types import Assessment
from schema.change_package.types import ChangeConcept, ChangeIdea
from schema.context import Info
from schema.instruments.types import Instrument, InstrumentVersion, SurveyResponse
from schema.node import Node
from schema.pdsa.types import PdsaCycle
from schema.team_access import may_read_team

CONTENT_NODE_SCOPE = "program:read"


async def _change_concept(info: Info, row_id: uuid.UUID) -> Node | None:
    row = await info.context.loaders.change_concept_by_id.load(row_id)
    return ChangeConcept.from_model(row) if row is not None else None


async def _change_idea(info: Info, row_id: uuid.UUID) -> Node | None:
    row = await info.context.loaders.change_idea_by_id.load(row_id)
    return ChangeIdea.from_model(row) if row is not None else None


async def _pdsa_cycle(info: Info, row_id: uuid.UUID) -> Node | None:
    row = await info.context.loaders.pdsa_cycle_by_id.load(row_id)
    if row is None or not may_read_team(info, row.team_id):
        return None
    return PdsaCycle.from_model(row)


async def _assessment(info: Info, row_id: uuid.UUID) -> Node | None:
    row = await info.context.loaders.assessment_by_id.load(row_id)
    if row is None or not may_read_team(info, row.team_id):
        return None
    return Assessment.from_model(row)


async def _instrument(info: Info, row_id: uuid.UUID) -> Node | None:
    row = await info.context.loaders.instrument_by_id.load(row_id)
    return Instrument.from_model(row) if row is not None else None


async def _instrument_version(info: Info, row_id: uuid.UUID) -> Node | None:
    structure = await info.context.loaders.instrument_structure_by_version_id.load(row_id)
    return InstrumentVersion.from_model(structure.version) if structure is not None else None


async def _survey_response(info: Info, row_id: uuid.UUID) -> Node | None:
    row = await info.context.loaders.survey_response_by_id.load(row_id)
    if row is None or not may_read_team(info, row.team_id):
        return None
    return SurveyResponse.from_model(row)


CONTENT_NODES: dict[str, Callable[[Info, uuid.UUID], Awaitable[Node | None]]] = {
    "ChangeConcept": _change_concept,
    "ChangeIdea": _change_idea,
    "PdsaCycle": _pdsa_cycle,
    "Assessment": _assessment,
    "Instrument": _instrument,
    "InstrumentVersion": _instrument_version,
    "SurveyResponse": _survey_response,
}
"""Each content type ``node`` resolves, with its fetcher (scope :data:`CONTENT_NODE_SCOPE`)."""
