"""Survey instruments and teams' responses: loading definitions, reads, recording responses.

An instrument version is immutable once loaded, because responses are scored against it:
loading the same version again with the same structure changes nothing, with another structure
it is a :class:`~db.errors.Conflict` (load it as a new version). Loading updates the instrument's
name and description to the newest file's.

Responses are upserted per (team, instrument, wave): a second response for the same wave
replaces the first (audited as ``survey_response.replace``). Answers are checked against the
items and scales of the version; scores are computed on read (``analytics.survey_scoring``).
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import Any, Literal

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from analytics.survey_scoring import Scale, Scores, Section, score_response
from db.base import utcnow
from db.enums import SurveyWave
from db.errors import Conflict, InvalidInput, NotFound
from db.instruments import (
    MAX_ITEMS,
    InstrumentDefinition,
    SectionDefinition,
    scale_from_json,
    scale_to_json,
)
from db.models import (
    Instrument,
    InstrumentItem,
    InstrumentSection,
    InstrumentVersion,
    Sponsor,
    SurveyResponse,
)
from db.queries.audit import Actor, record_event, snapshot
from db.queries.content import team_for_write

WAVE_ORDER = {
    SurveyWave.BASELINE: 0,
    SurveyWave.MIDPOINT: 1,
    SurveyWave.DATED: 2,
    SurveyWave.FINAL: 3,
}
"""How a team's responses are listed: baseline, midpoint, dated waves by date, final."""


# --- structure ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class VersionStructure:
    """A version with its sections and items, and what scoring needs from them."""

    version: InstrumentVersion
    sections: tuple[InstrumentSection, ...]
    items: dict[uuid.UUID, tuple[InstrumentItem, ...]] = field(default_factory=dict)

    @property
    def scale(self) -> Scale:
        """The version's scale (bands the overall score and sections without their own)."""
        return scale_from_json(self.version.scale)

    def section_scale(self, section: InstrumentSection) -> Scale:
        """The scale of a section's items."""
        return scale_from_json(section.scale) if section.scale is not None else self.scale

    def item_scales(self) -> dict[str, Scale]:
        """Every item code with the scale its answers are on."""
        return {
            item.code: self.section_scale(section)
            for section in self.sections
            for item in self.items.get(section.id, ())
        }

    def scoring_sections(self) -> list[Section]:
        """The sections as ``analytics.survey_scoring`` takes them."""
        return [
            Section(
                code=section.code,
                items=tuple(item.code for item in self.items.get(section.id, ())),
                scale=self.section_scale(section),
            )
            for section in self.sections
        ]

    def score(self, answers: dict[str, Any]) -> Scores:
        """The scores of a response's answers under this version's rules."""
        return score_response(
            self.scoring_sections(),
            answers,
            scale=self.scale,
            min_answered_share=self.version.min_answered_share,
        )

    def definition_structure(self) -> dict[str, Any]:
        """The stored structure, comparable with :meth:`InstrumentDefinition.structure`."""
        return {
            "scale": scale_to_json(self.scale),
            "min_answered_share": self.version.min_answered_share,
            "sections": [
                {
                    "code": section.code,
                    "title": section.title,
                    "scale": (
                        scale_to_json(scale_from_json(section.scale)) if section.scale else None
                    ),
                    "items": [[item.code, item.label] for item in self.items.get(section.id, ())],
                }
                for section in self.sections
            ],
        }


# --- reads -------------------------------------------------------------------------------------


async def list_instruments(session: AsyncSession, sponsor_id: uuid.UUID) -> list[Instrument]:
    """A sponsor's instruments by code."""
    return list(
        (
            await session.scalars(
                select(Instrument)
                .where(Instrument.sponsor_id == sponsor_id)
                .order_by(Instrument.code)
            )
        ).all()
    )


async def get_instrument_by_code(
    session: AsyncSession, sponsor_id: uuid.UUID, code: str
) -> Instrument | None:
    """A sponsor's instrument by code."""
    return await session.scalar(
        select(Instrument).where(Instrument.sponsor_id == sponsor_id, Instrument.code == code)
    )


async def instruments_by_ids(
    session: AsyncSession, sponsor_id: uuid.UUID, ids: Sequence[uuid.UUID]
) -> list[Instrument | None]:
    """Instruments of one sponsor in the order of ``ids`` (None where missing)."""
    rows = (
        await session.scalars(
            select(Instrument).where(Instrument.sponsor_id == sponsor_id, Instrument.id.in_(ids))
        )
    ).all()
    by_id = {row.id: row for row in rows}
    return [by_id.get(i) for i in ids]


async def versions_by_instrument_ids(
    session: AsyncSession, sponsor_id: uuid.UUID, ids: Sequence[uuid.UUID]
) -> list[list[InstrumentVersion]]:
    """Each instrument's versions, oldest first (the last is the current one)."""
    rows = (
        await session.scalars(
            select(InstrumentVersion)
            .where(
                InstrumentVersion.sponsor_id == sponsor_id,
                InstrumentVersion.instrument_id.in_(ids),
            )
            .order_by(InstrumentVersion.created_at, InstrumentVersion.version)
        )
    ).all()
    groups: defaultdict[uuid.UUID, list[InstrumentVersion]] = defaultdict(list)
    for row in rows:
        groups[row.instrument_id].append(row)
    return [groups[i] for i in ids]


async def structures_by_version_ids(
    session: AsyncSession, sponsor_id: uuid.UUID, ids: Sequence[uuid.UUID]
) -> list[VersionStructure | None]:
    """Each version with its sections and items (three statements for the whole batch)."""
    versions = (
        await session.scalars(
            select(InstrumentVersion).where(
                InstrumentVersion.sponsor_id == sponsor_id, InstrumentVersion.id.in_(ids)
            )
        )
    ).all()
    sections = (
        await session.scalars(
            select(InstrumentSection)
            .where(
                InstrumentSection.sponsor_id == sponsor_id,
                InstrumentSection.version_id.in_(ids),
            )
            .order_by(InstrumentSection.position)
        )
    ).all()
    items = (
        await session.scalars(
            select(InstrumentItem)
            .where(InstrumentItem.sponsor_id == sponsor_id, InstrumentItem.version_id.in_(ids))
            .order_by(InstrumentItem.position)
        )
    ).all()
    sections_of: defaultdict[uuid.UUID, list[InstrumentSection]] = defaultdict(list)
    for section in sections:
        sections_of[section.version_id].append(section)
    items_of: defaultdict[uuid.UUID, list[InstrumentItem]] = defaultdict(list)
    for item in items:
        items_of[item.section_id].append(item)
    by_id = {
        version.id: VersionStructure(
            version=version,
            sections=tuple(sections_of[version.id]),
            items={s.id: tuple(items_of[s.id]) for s in sections_of[version.id]},
        )
        for version in versions
    }
    return [by_id.get(i) for i in ids]


def _sorted_responses(rows: Sequence[tuple[str, SurveyResponse]]) -> list[SurveyResponse]:
    def key(pair: tuple[str, SurveyResponse]) -> tuple[str, int, date, str]:
        code, response = pair
        day = response.administered_on or date.min
        return (code, WAVE_ORDER[response.wave], day, str(response.id))

    return [response for _, response in sorted(rows, key=key)]


async def survey_responses_by_team_ids(
    session: AsyncSession, sponsor_id: uuid.UUID, ids: Sequence[uuid.UUID]
) -> list[list[SurveyResponse]]:
    """Each team's responses by instrument code, then wave (see :data:`WAVE_ORDER`)."""
    rows = (
        await session.execute(
            select(Instrument.code, SurveyResponse)
            .join(
                Instrument,
                (Instrument.sponsor_id == SurveyResponse.sponsor_id)
                & (Instrument.id == SurveyResponse.instrument_id),
            )
            .where(SurveyResponse.sponsor_id == sponsor_id, SurveyResponse.team_id.in_(ids))
        )
    ).all()
    groups: defaultdict[uuid.UUID, list[tuple[str, SurveyResponse]]] = defaultdict(list)
    for code, response in rows:
        groups[response.team_id].append((code, response))
    return [_sorted_responses(groups[i]) for i in ids]


async def survey_responses_by_ids(
    session: AsyncSession, sponsor_id: uuid.UUID, ids: Sequence[uuid.UUID]
) -> list[SurveyResponse | None]:
    """Responses of one sponsor in the order of ``ids`` (None where missing)."""
    rows = (
        await session.scalars(
            select(SurveyResponse).where(
                SurveyResponse.sponsor_id == sponsor_id, SurveyResponse.id.in_(ids)
            )
        )
    ).all()
    by_id = {row.id: row for row in rows}
    return [by_id.get(i) for i in ids]


# --- loading definitions -----------------------------------------------------------------------


@dataclass(frozen=True)
class LoadOutcome:
    """What loading a definition into one sponsor did."""

    instrument: Instrument
    version: InstrumentVersion
    status: Literal["created", "unchanged"]


async def _flush_load(session: AsyncSession, definition: InstrumentDefinition) -> None:
    try:
        await session.flush()
    except IntegrityError as exc:  # a concurrent load of the same instrument or version
        raise Conflict(f"{definition.code!r} is being loaded concurrently", field="code") from exc


async def load_instrument(
    session: AsyncSession,
    sponsor_id: uuid.UUID,
    definition: InstrumentDefinition,
    *,
    actor: Actor | None,
) -> LoadOutcome:
    """Store a definition in one sponsor: a new instrument and/or a new version, or nothing when
    this exact version is there already. Audited when an ``actor`` is given (the demo seed
    loads without one)."""
    instrument = await get_instrument_by_code(session, sponsor_id, definition.code)
    before = snapshot(instrument) if instrument is not None else None
    if instrument is not None:
        existing = await session.scalar(
            select(InstrumentVersion).where(
                InstrumentVersion.sponsor_id == sponsor_id,
                InstrumentVersion.instrument_id == instrument.id,
                InstrumentVersion.version == definition.version,
            )
        )
        if existing is not None:
            structure = (await structures_by_version_ids(session, sponsor_id, [existing.id]))[0]
            assert structure is not None
            if structure.definition_structure() != definition.structure():
                raise Conflict(
                    f"version {definition.version} of {definition.code!r} exists with another "
                    "structure; responses are scored against it, so load the change as a new "
                    "version",
                    field="version",
                )
            return LoadOutcome(instrument, existing, "unchanged")
        instrument.name = definition.name
        instrument.description = definition.description
        instrument.updated_at = utcnow()
    else:
        instrument = Instrument(
            sponsor_id=sponsor_id,
            id=uuid.uuid4(),
            code=definition.code,
            name=definition.name,
            description=definition.description,
        )
        session.add(instrument)
    await _flush_load(session, definition)
    version = InstrumentVersion(
        sponsor_id=sponsor_id,
        id=uuid.uuid4(),
        instrument_id=instrument.id,
        version=definition.version,
        source=definition.source,
        scale=scale_to_json(definition.scale),
        min_answered_share=definition.min_answered_share,
    )
    session.add(version)
    # Flushed level by level: the unit of work knows no relationships to order the inserts by.
    await _flush_load(session, definition)
    sections: list[tuple[InstrumentSection, SectionDefinition]] = []
    for position, section_definition in enumerate(definition.sections):
        section = InstrumentSection(
            sponsor_id=sponsor_id,
            id=uuid.uuid4(),
            version_id=version.id,
            code=section_definition.code,
            title=section_definition.title,
            position=position,
            scale=scale_to_json(section_definition.scale) if section_definition.scale else None,
        )
        session.add(section)
        sections.append((section, section_definition))
    await _flush_load(session, definition)
    item_position = 0
    for section, section_definition in sections:
        for item_definition in section_definition.items:
            session.add(
                InstrumentItem(
                    sponsor_id=sponsor_id,
                    id=uuid.uuid4(),
                    version_id=version.id,
                    section_id=section.id,
                    code=item_definition.code,
                    label=item_definition.label,
                    position=item_position,
                )
            )
            item_position += 1
    await _flush_load(session, definition)
    if actor is not None:
        after = snapshot(instrument)
        after["version"] = snapshot(version)
        after["sections"] = definition.structure()["sections"]
        await record_event(
            session,
            actor,
            action="instrument.load",
            entity_type="Instrument",
            entity_id=instrument.id,
            before=before,
            after=after,
        )
    return LoadOutcome(instrument, version, "created")


# --- responses ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class SurveyResponseInput:
    """A team's answers in one wave; ``version`` None means the instrument's current version,
    an answer's value None means "not answered" (as leaving the item out)."""

    team_code: str
    instrument_code: str
    wave: SurveyWave
    administered_on: date | None
    answers: Sequence[tuple[str, float | None]]
    version: str | None = None


def wave_key(wave: SurveyWave, administered_on: date | None) -> str:
    """The key that makes one response per (team, instrument, wave): the wave's name, or the
    ISO date of a DATED wave (which needs one)."""
    if wave is SurveyWave.DATED:
        if administered_on is None:
            raise InvalidInput("a DATED wave needs its administeredOn date", field="administeredOn")
        return administered_on.isoformat()
    return wave.value


async def _version_of(
    session: AsyncSession, instrument: Instrument, version: str | None
) -> InstrumentVersion:
    found = await versions_by_instrument_ids(session, instrument.sponsor_id, [instrument.id])
    versions = found[0]
    if version is None:
        if not versions:
            raise NotFound(f"{instrument.code!r} has no version", field="instrument")
        return versions[-1]
    for row in versions:
        if row.version == version:
            return row
    raise NotFound(f"{instrument.code!r} has no version {version!r}", field="version")


def _answers(
    structure: VersionStructure, answers: Sequence[tuple[str, float | None]]
) -> dict[str, float]:
    """The answered items as stored, after checking codes and values against the version."""
    if len(answers) > MAX_ITEMS:
        raise InvalidInput(f"at most {MAX_ITEMS} answers", field="answers")
    scales = structure.item_scales()
    stored: dict[str, float] = {}
    seen: set[str] = set()
    for code, value in answers:
        if code in seen:
            raise InvalidInput(f"item {code!r} is answered twice", field="answers")
        seen.add(code)
        scale = scales.get(code)
        if scale is None:
            raise InvalidInput(f"the instrument version has no item {code!r}", field="answers")
        if value is None:
            continue
        problem = scale.problem(value)
        if problem is not None:
            raise InvalidInput(f"item {code!r}: {problem}", field="answers")
        stored[code] = value
    return stored


async def record_survey_response(
    session: AsyncSession,
    actor: Actor,
    response: SurveyResponseInput,
    *,
    team_ids: frozenset[uuid.UUID] | None,
) -> tuple[SurveyResponse, bool]:
    """Record (or replace) a team's response in one wave; returns it and whether it replaced
    one. Audited."""
    key = wave_key(response.wave, response.administered_on)
    if response.administered_on is not None and response.administered_on > utcnow().date():
        raise InvalidInput("administeredOn is in the future", field="administeredOn")
    team = await team_for_write(session, actor, response.team_code, team_ids)
    instrument = await get_instrument_by_code(session, actor.sponsor_id, response.instrument_code)
    if instrument is None:
        raise NotFound(f"no instrument {response.instrument_code!r}", field="instrument")
    version = await _version_of(session, instrument, response.version)
    structure = (await structures_by_version_ids(session, actor.sponsor_id, [version.id]))[0]
    assert structure is not None
    answers = _answers(structure, response.answers)
    row = await session.scalar(
        select(SurveyResponse).where(
            SurveyResponse.sponsor_id == team.sponsor_id,
            SurveyResponse.team_id == team.id,
            SurveyResponse.instrument_id == instrument.id,
            SurveyResponse.wave_key == key,
        )
    )
    before = snapshot(row) if row is not None else None
    if row is None:
        row = SurveyResponse(
            sponsor_id=team.sponsor_id,
            id=uuid.uuid4(),
            team_id=team.id,
            instrument_id=instrument.id,
            version_id=version.id,
            wave=response.wave,
            wave_key=key,
            administered_on=response.administered_on,
            answers=answers,
            recorded_by=actor.client_id,
        )
        session.add(row)
    else:
        row.version_id = version.id
        row.administered_on = response.administered_on
        row.answers = answers
        row.recorded_by = actor.client_id
        row.updated_at = utcnow()
    try:
        await session.flush()
    except IntegrityError as exc:  # a concurrent first response for the same wave
        raise Conflict("the team just answered this wave; retry", field="wave") from exc
    await record_event(
        session,
        actor,
        action="survey_response.replace" if before is not None else "survey_response.record",
        entity_type="SurveyResponse",
        entity_id=row.id,
        before=before,
        after=snapshot(row),
    )
    return row, before is not None


CLI_ACTOR = "cli"
"""``actor_client_id`` of audit events written by ``collabx`` commands."""


async def load_into_sponsors(
    session: AsyncSession, definition: InstrumentDefinition, sponsor_slugs: Sequence[str]
) -> list[tuple[str, LoadOutcome]]:
    """``collabx instruments load``: the definition into the sponsors named (every sponsor when
    none is), each load audited as done by the CLI. NotFound for an unknown slug."""
    query = select(Sponsor).order_by(Sponsor.slug)
    if sponsor_slugs:
        query = query.where(Sponsor.slug.in_(sponsor_slugs))
    sponsors = list((await session.scalars(query)).all())
    missing = sorted(set(sponsor_slugs) - {sponsor.slug for sponsor in sponsors})
    if missing:
        raise NotFound(f"no sponsor {missing[0]!r}", field="sponsor")
    if not sponsors:
        raise NotFound("there is no sponsor to load the instrument into", field="sponsor")
    outcomes = []
    for sponsor in sponsors:
        actor = Actor(client_id=CLI_ACTOR, kind="CLI", sponsor_id=sponsor.id)
        outcome = await load_instrument(session, sponsor.id, definition, actor=actor)
        outcomes.append((sponsor.slug, outcome))
    return outcomes
